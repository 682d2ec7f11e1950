"""The caller's values the service refuses before anything is read, recorded or sent.

An amount must be `Money`. Text the ledger keeps in a column of its own (an idempotency key, an
order id, a customer reference, a vaulted token, a payment id) must be a `str` without a NUL
character, which PostgreSQL would end the text at (two keys differing after it would be one key,
and a retry under the key as given would be another request to the provider), and encodable as
UTF-8 (a return URL is kept too, with the buyer's action). An idempotency key also travels in an
HTTP header: printable ASCII only, or the request could not be written after it was recorded; it
is never empty or blank; and a new operation's has no spaces at either end (HTTP drops them:
`require_unpadded_key`) and is never in paywire's own key space (see `require_callers_key`).
Other values must be of the type the API names: the plugin reading them would fail untyped, or
send them as the provider reads them.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from urllib.parse import urlsplit

from paywire.errors import InvalidRequest
from paywire.ledger.model import PaymentState, TransactionStatus
from paywire.money import Money
from paywire.step_keys import OWN_KEYS
from paywire.subject import Customer
from paywire.webhook import WebhookEvent

__all__ = ["MOST_ROWS", "PAYMENT_STATES", "TRANSACTION_STATUSES", "UNSTORABLE_EVENT", "require_callers_key", "require_choice",
           "require_count", "require_customer", "require_event", "require_indexed",
           "require_instance", "require_key", "require_metadata", "require_money", "require_options", "require_return_url",
           "require_source", "require_str", "require_text", "require_unpadded_key"]

UNSTORABLE_EVENT = "unstorable_event"  # the code of a verified event the ledger cannot keep
# The longest text kept in an indexed column (an event's ids, an idempotency key, an order id), in
# UTF-8 bytes: PostgreSQL's btree holds an index row of at most 2704 bytes, and some rows hold two
# such values (an event id and a reference). SQLite has no such bound; the same limit on both keeps
# a ledger movable between them. Providers' ids are tens of characters.
MAX_INDEXED_BYTES = 1024


MOST_ROWS = 2**63 - 1  # a LIMIT or OFFSET both ledgers take: the largest signed 64-bit int
PAYMENT_STATES = tuple(value for name, value in vars(PaymentState).items() if name.isupper() and isinstance(value, str))
TRANSACTION_STATUSES = tuple(value for name, value in vars(TransactionStatus).items()
                             if name.isupper() and isinstance(value, str))


def require_count(count: object, param: str) -> None:
    """Refuse a count of rows (a limit, an offset) that is not a whole number both ledgers take:
    PostgreSQL refuses a negative LIMIT, SQLite reads it as none; past 64 bits both fail untyped."""
    if type(count) is not int or not 0 <= count <= MOST_ROWS:
        raise InvalidRequest(f"{param} must be an int from 0 to {MOST_ROWS}, not {count!r}", param=param)


def require_choice(value: object, allowed: tuple[str, ...], param: str) -> None:
    """Refuse a state or status that does not exist (None passes): a typo would match nothing,
    and an empty answer would say there is nothing in that state."""
    if value is not None and value not in allowed:
        raise InvalidRequest(f"{param} {value!r} is not one of {', '.join(allowed)}", param=param)


def require_money(amount: object, operation: str) -> None:
    """Refuse an amount that is not `Money` (a float, an int, a string)."""
    if not isinstance(amount, Money):
        raise InvalidRequest(f"the {operation} amount must be Money, not {type(amount).__name__}: give "
                             f"Money.of(\"10.00\", currency) or Money(minor_units, currency); nothing was sent",
                             param="amount")


def require_str(value: object, param: str, code: str | None = None) -> None:
    """Refuse what is not text that can be sent (None passes: the value is optional): any other
    type would reach the plugin, which fails on it untyped, or sends it as the provider reads it."""
    if value is None:
        return
    if not isinstance(value, str):
        raise InvalidRequest(f"{param} must be a str, not {type(value).__name__}; nothing was recorded or sent",
                             param=param, code=code)
    if not value.isascii():
        try:
            value.encode()
        except UnicodeEncodeError:
            raise InvalidRequest(f"{param} is not valid Unicode text (a lone surrogate); nothing was recorded or "
                                 "sent", param=param, code=code) from None


def require_text(value: object, param: str, code: str | None = None) -> None:
    """Refuse what a ledger column cannot keep as given (None passes: the value is optional)."""
    require_str(value, param, code)
    if isinstance(value, str) and "\x00" in value:
        raise InvalidRequest(f"{param} holds a NUL character, which the ledger cannot keep; nothing was recorded "
                             "or sent", param=param, code=code)


def require_indexed(value: object, param: str, code: str | None = None) -> None:
    """`require_text`, and at most `MAX_INDEXED_BYTES` long: the ledger looks the value up by an
    index, and PostgreSQL refuses a longer one as it writes (SQLite would keep it)."""
    require_text(value, param, code)
    if isinstance(value, str) and len(value) > MAX_INDEXED_BYTES // 4 and len(value.encode()) > MAX_INDEXED_BYTES:
        raise InvalidRequest(f"{param} is longer than the {MAX_INDEXED_BYTES} bytes (in UTF-8) the ledger keeps; "
                             "nothing was recorded or sent", param=param, code=code)


def require_not_empty(value: object, param: str) -> None:
    """Refuse "" where None means none: it is most often an unset template variable, and
    providers take it as none too, so what was recorded would differ from what was meant."""
    if value == "":
        raise InvalidRequest(f"{param} is empty; pass None (or leave the option out) for none, or the value meant; "
                             "nothing was recorded or sent", param=param)


# Schemes whose URL runs in the page that follows it instead of loading one.
_SCRIPT_SCHEMES = frozenset({"javascript", "vbscript", "data"})
_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")


def require_return_url(url: object) -> None:
    """Refuse a return URL no provider can send the buyer back to (relative, an http(s) URL
    without a host, spaces or control characters in it) or that runs in the shop's page
    (`javascript:`): the provider would refuse it after the operation was recorded, or send the
    buyer to it. An app's own scheme (`myapp://return`, as mobile SDKs pass) is taken. The error
    never quotes the URL: it may hold what the card-number guard would refuse."""
    require_text(url, "return_url")
    if not isinstance(url, str):
        return
    try:
        parts = urlsplit(url)
        scheme = parts.scheme.lower()
        bad = (not scheme or scheme in _SCRIPT_SCHEMES or _SPACE_OR_CONTROL.search(url) is not None
               or (scheme in ("http", "https") and not parts.hostname))
    except ValueError:  # e.g. an unclosed [ of an IPv6 host
        bad = True
    if bad:
        raise InvalidRequest("return_url is not an absolute URL a buyer can be sent back to: give one such as "
                             "'https://shop.example/checkout/return' (no spaces; not javascript: or data:); nothing "
                             "was recorded or sent", param="return_url")


def require_metadata(metadata: object) -> None:
    """Refuse metadata that is not a mapping of text to text, as providers keep it."""
    if metadata is None:
        return
    if not isinstance(metadata, Mapping):
        raise InvalidRequest(f"metadata must be a mapping of str to str, not {type(metadata).__name__}; nothing "
                             "was recorded or sent", param="metadata")
    for name, value in metadata.items():
        for param, text in (("metadata key", name), (f"metadata[{name!r}]", value)):
            if not isinstance(text, str):
                raise InvalidRequest(f"{param} must be a str, not {type(text).__name__}; nothing was recorded or "
                                     "sent", param="metadata")
            require_str(text, param)


def require_options(options: object) -> None:
    """Refuse options that are not a mapping, or that hold a number no provider reads: an int past
    64 bits (one past 4300 digits cannot even be written as text, for the request's fingerprint)
    or a float that is no number (JSON has no NaN: the provider would be sent what it refuses)."""
    require_instance(options, Mapping, "options")
    if options is not None and _unreadable_number(options):
        raise InvalidRequest("options hold a number no provider reads (an int past 64 bits, NaN or an infinity); "
                             "nothing was recorded or sent", param="options")


def _unreadable_number(value: object) -> bool:
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return not -(2**63) <= value < 2**63
    if isinstance(value, float):
        return not math.isfinite(value)
    if isinstance(value, Mapping):
        return any(_unreadable_number(item) for item in value.values())
    if isinstance(value, (list, tuple, set, frozenset)):
        return any(_unreadable_number(item) for item in value)
    return False


def require_instance(value: object, kind: type, param: str) -> None:
    """Refuse a value of another type than the API takes (None passes): the code that reads it
    would fail untyped (an AttributeError), or read it as something else."""
    if value is not None and not isinstance(value, kind):
        raise InvalidRequest(f"{param} must be a {kind.__name__}, not {type(value).__name__}; nothing was recorded "
                             "or sent", param=param)


def require_customer(customer: object, param: str = "customer") -> None:
    """Refuse a buyer that is not a `Customer` of text fields (None passes): a field of another
    type reaches the plugin's builders and the card-number guard, which fail on it untyped. The
    reference is kept in a ledger column of its own."""
    require_instance(customer, Customer, param)
    if isinstance(customer, Customer):
        for name in ("email", "name", "phone", "id"):
            require_str(getattr(customer, name), f"{param}.{name}")
        require_text(customer.reference, f"{param}.reference")


def require_source(source: object, param: str = "source") -> None:
    """Refuse a payment method (`source`: a token, a nonce, a vaulted method's id) that is missing,
    empty or blank: it names no method, so the provider would be asked about none (an id left out
    of a URL addresses another resource) and its refusal recorded, or the ledger would keep it as
    a token no charge can use."""
    require_text(source, param)
    if not isinstance(source, str) or not source.strip():
        raise InvalidRequest(f"{param} {source!r} names no payment method: give the token, nonce or vaulted "
                             "method's id; nothing was recorded or sent", param=param)


def require_key(key: object) -> None:
    """Refuse an idempotency key that no HTTP header can carry as given, and an empty or blank one:
    taken as no key, a retry under it (a variable that was not set, each time) would be a new
    operation, charged again."""
    require_indexed(key, "idempotency_key")
    if isinstance(key, str) and not key.strip():
        raise InvalidRequest(f"idempotency_key {key!r} is empty or blank: give this operation's key (the same one on "
                             "every retry of it), or none at all; nothing was sent", param="idempotency_key")
    if isinstance(key, str) and not (key.isascii() and key.isprintable()):
        raise InvalidRequest(f"idempotency_key {key!r} must be printable ASCII (it is sent as an HTTP header); "
                             "nothing was sent", param="idempotency_key")


def require_callers_key(key: str) -> None:
    """Refuse a new operation's key in paywire's own space (`OWN_KEYS`), where the keys of a
    command's steps are made (`step_key`): the provider would refuse the one sent second as a key
    used for another request, and leave it unknown. The payment service asks only about a key its
    ledger holds no operation under: one recorded by a release that did not keep the space apart
    is still that operation's."""
    if key.startswith(OWN_KEYS):
        raise InvalidRequest(f"idempotency_key {key!r} begins with {OWN_KEYS!r}, which paywire keeps for the keys it "
                             "makes for the steps of a command; give a key that does not; nothing was recorded or "
                             "sent", param="idempotency_key", code="idempotency_key_reserved")


def require_unpadded_key(key: str) -> None:
    """Refuse a new operation's key with spaces at either end: HTTP drops them from the header, so
    the provider reads another key, the one without them, and answers a second operation under it
    with the first's (PayPal: the order it made, held by two payments). Asked, as
    `require_callers_key`, only about a key the ledger holds no operation under."""
    if key != key.strip(" \t"):
        raise InvalidRequest(f"idempotency_key {key!r} begins or ends with spaces, which HTTP drops from the header: "
                             f"the provider would read it as {key.strip(' ')!r}; give it without them; nothing was "
                             "recorded or sent", param="idempotency_key", code="idempotency_key_padded")


def require_event(event: WebhookEvent) -> None:
    """Refuse a verified event whose ids the ledger cannot keep as given: no delivery of it will
    ever be stored, so it is refused (the endpoint answers 400), not failed again and again."""
    for param, value in (("event id", event.id), ("event type", event.type), ("event kind", event.kind),
                         ("event reference", event.reference), *((f"event reference {name!r}", ref)
                                                                 for name, ref in event.references.items())):
        require_indexed(value, param, UNSTORABLE_EVENT)
    # The ledger keeps no event without them; and it applies each id once, so an empty id would
    # make every later event without one a duplicate, dropped.
    for param, value in (("event id", event.id or None), ("event type", event.type), ("event kind", event.kind)):
        if value is None:
            raise InvalidRequest(f"{param} is missing; nothing was recorded or sent", param=param,
                                 code=UNSTORABLE_EVENT)
    # The ledger keeps one currency per event: a total in another than the amount's would be read
    # back in the amount's (and a payment checked on the total would be given the amount as its own).
    if event.amount is not None and event.total is not None and event.amount.currency != event.total.currency:
        raise InvalidRequest(f"the event's amount {event.amount} and its total {event.total} are in different "
                             "currencies; nothing was recorded or sent", param="event amount", code=UNSTORABLE_EVENT)
    # An event reports money moved or held, never less than none: a refund of -5.00 would be kept
    # as an operation of the payment's history that took money back in.
    for param, money in (("event amount", event.amount), ("event total", event.total)):
        if money is not None and money.minor < 0:
            raise InvalidRequest(f"the {param} {money} is negative, which no payment event reports; nothing was "
                                 "recorded or sent", param=param, code=UNSTORABLE_EVENT)
