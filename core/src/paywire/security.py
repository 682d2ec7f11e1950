"""Security rules in one place: hidden secrets, no raw card numbers, https only, redaction.

These checks run on every request the pipeline builds, so a plugin cannot forget them.
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import json
import logging
import operator
import re
import socket
import threading
from collections.abc import Callable, Iterable, Mapping
from datetime import date, datetime, timedelta
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, quote_plus, unquote_plus, urlsplit

import attrs
from urllib3.exceptions import LocationParseError
from urllib3.util import parse_url

from paywire.card_numbers import (
    MIN_DIGITS,
    find_card_number,
    find_card_span,
    luhn_valid,
    mask_card_numbers,
    may_hold_card_numbers,
)
from paywire.errors import ConfigurationError, InvalidRequest
from paywire.memo import Memo
from paywire.money import Money

__all__ = [
    "RedactingFilter",
    "Secret",
    "check_endpoint",
    "find_card_number",
    "get_logger",
    "is_loopback",
    "luhn_valid",
    "masked_url",
    "redact",
    "refuse_card_numbers",
    "secret_variants",
    "sensitive_key",
    "shown_options",
    "shown_url",
]

_MASK = "***"
# Every secret value ever wrapped, so redaction also masks secrets of no recognisable shape
# (a PayPal client secret, an OAuth access token). Replaced, never changed in place: a redaction
# on another thread walks the set it found.
_known_secrets: frozenset[str] = frozenset()
_secrets_version = 0
_secrets_lock = threading.Lock()


def secret_variants(secret: str) -> set[str]:
    """The forms a secret takes in text: as is, percent-encoded, JSON-escaped, as a repr writes it
    (a quote, a backslash or a control character escaped, as text or as bytes), and base64-encoded
    (Basic authorization, `base64(user:secret)`) wherever it starts in what is encoded."""
    escaped = json.dumps(secret)[1:-1]
    return {secret, quote(secret, safe=""), quote_plus(secret), escaped, escaped.replace("/", "\\/"),
            repr(secret)[1:-1], repr(secret.encode())[2:-1], *_base64_cores(secret)}


def _base64_cores(secret: str) -> set[str]:
    """What base64 writes for `secret` whatever precedes it: at each of the three byte offsets
    the text between the characters the neighbours also shape (long enough secrets only)."""
    data = secret.encode()
    cores = set()
    for offset in range(3):
        encoded = base64.b64encode(b"\0" * offset + data).decode()
        start = -(-offset * 4 // 3)  # the first character not shaped by the bytes before the secret
        end = (offset + len(data)) // 3 * 4  # the last whole group of the secret's own bytes
        core = encoded[start:end]
        if len(core) >= 8:
            cores.add(core)
    return cores


def _writable(value: str) -> bool:
    """Whether UTF-8 can write `value`: text decoded from other bytes (os.environ's
    surrogateescape) holds lone surrogates it cannot."""
    try:
        value.encode()
    except UnicodeEncodeError:
        return False
    return True


class Secret:
    """A credential that never shows itself: repr, str and format print a mask.

    Call `reveal()` at the one place that must send it.
    """

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        global _known_secrets, _secrets_version
        if not isinstance(value, str) or not value:
            raise ConfigurationError("a secret must be a non-empty string")
        if not _writable(value):
            # Raised here, with no error chained: Python's encoding error holds the whole value.
            raise ConfigurationError(
                "a secret holds bytes that are not UTF-8 (read from a file or an environment variable "
                "written in another encoding); write it as UTF-8 text"
            )
        self._value = value
        if len(value) >= 6 and value not in _known_secrets:
            forms = {form for form in secret_variants(value) if len(form) >= 6}  # as text writes it, encoded too
            with _secrets_lock:
                _known_secrets = _known_secrets | forms
                _secrets_version += 1  # after the set: texts redacted before may hold it

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __repr__

    def __format__(self, spec: str) -> str:
        return repr(self)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __reduce__(self) -> Any:
        raise TypeError("a Secret cannot be pickled")


# -- card numbers -------------------------------------------------------------------------------
# A field's path as nested (parent, how, step) triples, rendered only for the error: most requests
# hold no card number, so naming every field they carry would be wasted work.
_Path = tuple[Any, str, Any] | None


_CLEAN: Any = object()  # what `_card_field` answers for a tree without card numbers
# paywire's own values, whose text never comes from the caller as written (an amount, a time, a
# masked credential): not walked.
_OWN_VALUES: tuple[type, ...] = (Money, datetime, date, timedelta, Secret)


@functools.cache
def _field_names(cls: type) -> tuple[str, ...]:
    return tuple(field.name for field in attrs.fields(cls)) if attrs.has(cls) else ()


_SHORT_INT = 10 ** (MIN_DIGITS - 1)


@functools.cache
def _field_values(cls: type) -> Callable[[Any], tuple[Any, ...]]:
    """The values of an attrs class's fields in one call (none for other classes)."""
    names = _field_names(cls)
    if len(names) > 1:
        return operator.attrgetter(*names)
    if names:
        return lambda value: (getattr(value, names[0]),)
    return lambda value: ()


def _texts(value: Any, out: list[str]) -> None:
    """Append to `out` every text `_card_field` looks at in `value` (strings, mapping keys that
    are strings, integers as `str` writes them) that is long enough to hold a card number and not
    already known to hold none (`_clean_texts`, asked where the text is met: most are known).

    The same walk, except that the usual containers are recognised by exact type first, and any
    other class by a decision made once per class (no ABC check per value): this runs twice on
    every request."""
    cls: type = type(value)
    if cls is str:
        if len(value) >= MIN_DIGITS and value not in _clean_texts:
            out.append(value)
    elif cls is dict or cls is MappingProxyType:
        _mapping_texts(value, out)
    elif cls is list or cls is tuple:
        _item_texts(value, out)
    elif value is None or cls is bool:
        return
    elif cls is int:
        if not -_SHORT_INT < value < _SHORT_INT:
            _add_text(str(value), out)
    else:
        fields = _attrs_fields.get(cls)
        if fields is not None:
            _item_texts(fields(value), out)
        else:
            _walk_of(cls)(value, out)


def _add_text(text: str, out: list[str]) -> None:
    if text not in _clean_texts:
        out.append(text)


@functools.cache
def _walk_of(cls: type) -> Callable[[Any, list[str]], None]:
    """How `_texts` walks a value of `cls` (a subclass of str or int, a mapping, a sequence or a
    set, an attrs value, paywire's own values, then anything else, in that order of precedence,
    as `_card_field` decides)."""
    fields = _field_values(cls)
    if issubclass(cls, str):
        return lambda value, out: _add_text(value, out) if len(value) >= MIN_DIGITS else None
    if issubclass(cls, int):
        return lambda value, out: _add_text(str(value), out)  # an enum's digits are what str() writes
    if issubclass(cls, Mapping):
        return _mapping_texts
    if issubclass(cls, (list, tuple, set, frozenset)):
        return _item_texts
    if attrs.has(cls):
        _attrs_fields[cls] = fields  # read by the walks themselves from now on: no call for the walk
        return lambda value, out: _item_texts(fields(value), out)
    if issubclass(cls, _OWN_VALUES):
        return lambda value, out: None
    return _str_text


def _str_text(value: Any, out: list[str]) -> None:
    """Any other value (a float, a Decimal, bytes, a dataclass) as the ledger and JSON write it."""
    text = _number_text(value) if isinstance(value, float) else str(value)
    if len(text) >= MIN_DIGITS:
        _add_text(text, out)


def _number_text(value: float) -> str:
    """A float as its digits (4111111111111111.0 holds the number its integer part does)."""
    return str(int(value)) if value.is_integer() else repr(value)


# Exact types `_texts` finds nothing in (None, flags, paywire's own values): the walks below
# skip them, and go straight into the usual containers, without a call to `_texts` for each, as
# most of a subject's and a request's values are one or the other.
_SILENT: frozenset[type] = frozenset({type(None), bool, *_OWN_VALUES})
# The fields' values of each attrs class met so far (filled by `_walk_of`): a walk reads them
# itself, without calling the class's walk.
_attrs_fields: dict[type, Callable[[Any], tuple[Any, ...]]] = {}


def _mapping_texts(mapping: Mapping[Any, Any], out: list[str]) -> None:
    """The keys here, then the values as any items (a key's text comes in one order or another:
    the screen reads them all)."""
    for key in mapping:
        if type(key) is str:
            if len(key) >= MIN_DIGITS and key not in _clean_texts:
                out.append(key)
        else:  # written as text on the wire and in the ledger all the same
            _texts(key, out)
    _item_texts(mapping.values(), out)


def _item_texts(items: Iterable[Any], out: list[str]) -> None:
    for item in items:
        if item is None:  # most of an attrs value's fields: told apart before its type is read
            continue
        cls: type = type(item)
        if cls is str:  # the next most: no call for them
            if len(item) >= MIN_DIGITS and item not in _clean_texts:
                out.append(item)
        elif cls in _SILENT:
            continue
        elif cls is int:
            if not -_SHORT_INT < item < _SHORT_INT:
                _add_text(str(item), out)
        elif cls is list or cls is tuple:
            if item:
                _item_texts(item, out)
        elif cls is dict or cls is MappingProxyType:
            if item:
                _mapping_texts(item, out)
        else:  # none of the types `_texts` tells apart itself: straight to the class's walk
            fields = _attrs_fields.get(cls)
            if fields is not None:
                _item_texts(fields(item), out)
            else:
                _walk_of(cls)(item, out)


def _card_field(value: Any, path: _Path) -> Any:
    """The path of the first string (or integer) holding a card number in a tree of mappings,
    sequences and attrs values, or `_CLEAN`; mapping keys are values too (a metadata key is
    caller-controlled). Run only when `_texts` found a candidate, to name the field."""
    if value is None or value.__class__ is bool:
        return _CLEAN
    if isinstance(value, str):
        return path if find_card_span(value) is not None or _escaped_card(value) else _CLEAN
    if isinstance(value, int):
        return path if find_card_span(str(value)) is not None else _CLEAN
    if isinstance(value, (dict, Mapping)):
        for key, item in value.items():
            where = (path, "key", key if isinstance(key, str) else str(key))
            if _card_field(key, None) is not _CLEAN:
                return (where, "the key", None)
            found = _card_field(item, where)
            if found is not _CLEAN:
                return found
    elif isinstance(value, (list, tuple, set, frozenset)):
        for index, item in enumerate(value):
            found = _card_field(item, (path, "index", index))
            if found is not _CLEAN:
                return found
    elif attrs.has(cls := type(value)):
        for name in _field_names(cls):
            found = _card_field(getattr(value, name), (path, "key", name))
            if found is not _CLEAN:
                return found
    elif not isinstance(value, _OWN_VALUES):
        text = _number_text(value) if isinstance(value, float) else str(value)
        return path if find_card_span(text) is not None else _CLEAN
    return _CLEAN


def _render(path: _Path) -> str:
    """`a.b[0].c`, card numbers in keys masked (the error names the field, never the number)."""
    if path is None:
        return ""
    parent, how, step = path
    head = _render(parent)
    if how == "the key":
        return f"{head} (the key)"
    if how == "index":
        return f"{head}[{step}]"
    name = mask_card_numbers(step) if isinstance(step, str) else str(step)
    return f"{head}.{name}" if head else name


def refuse_card_numbers(values: Any, *, headers: Mapping[str, str] | None = None,
                        wire: Iterable[bytes | str | None] = ()) -> None:
    """Refuse anything carrying a raw card number (PAN): the backend must only ever see tokens.

    `values` is a tree of what the caller gave (a request, a `Subject`), checked decoded;
    `headers` are checked by name; `wire` holds encoded forms (a URL, a form body), checked after
    percent-decoding. The error names the field, never the number.

    Every text is first screened at once (`may_hold_card_numbers`); most requests hold nothing
    that could be a card number, and only those that do are searched field by field.
    """
    texts: list[str] = []  # those not known to be clean (most are: keys, constant headers, return URLs)
    _texts(values, texts)
    if headers:
        for text in headers.values():
            if text not in _clean_texts:
                texts.append(text)
    if not texts:
        for part in wire:
            if part and part not in _clean_wire:
                break
        else:
            return
    parts = [part for part in wire if part and part not in _clean_wire]
    decoded = [_unquote(part) for part in parts]
    escaped = [_unquote(text) for text in texts if "%" in text or "+" in text]
    if not may_hold_card_numbers(texts + escaped + decoded):
        for text in texts:
            _remember_clean(_clean_texts, text)
        for part in parts:
            _remember_clean(_clean_wire, part)
        return
    path = _card_field(values, None)
    if path is not _CLEAN:
        name = _render(path)
        raise _refused(f"field {name!r}", name)
    for name, value in (headers or {}).items():
        if find_card_span(value) is not None:
            raise _refused(f"header {name!r}", name)
    for text in decoded:
        if find_card_span(text) is not None:
            raise _refused("the encoded request", None)


# Texts known to hold no card number, and encoded parts (URLs, form bodies) known to hold none
# once decoded: the same keys, constant headers, URLs and return addresses come in request after
# request, and the answer depends on the text alone. Plain sets, bounded as a `Memo` is: `in` on
# a set costs less than on a dict, and much less than on a dict's subclass.
_clean_texts: set[str] = set()
_clean_wire: set[bytes | str] = set()
_CLEAN_SIZE, _CLEAN_LONGEST = 4096, 256


def _remember_clean(known: set[Any], text: str | bytes) -> None:
    """Keep `text` as known clean when it is short; forget them all when the set is full."""
    if len(text) <= _CLEAN_LONGEST:
        if len(known) >= _CLEAN_SIZE:
            known.clear()
        known.add(text)


def _refused(where: str, param: str | None) -> InvalidRequest:
    return InvalidRequest(
        f"{where} holds a raw card number; send a payment method token from the provider's "
        "client-side library instead (nothing was sent or stored)",
        param=param,
        code="raw_card_number",
    )


def _unquote(part: bytes | str) -> str:
    return unquote_plus(part.decode("utf-8", "replace") if isinstance(part, bytes) else part)


def _escaped_card(text: str) -> bool:
    """Whether `text` holds a card number once percent-decoded, as a URL the caller wrote (a
    return URL's query) is read by whoever follows it."""
    return ("%" in text or "+" in text) and find_card_span(_unquote(text)) is not None


# -- endpoints ----------------------------------------------------------------------------------
# An IPv4 address as the resolver also takes it: fewer than four parts, hex or octal parts
# (127.1, 2130706433, 0x7f.1, 0177.0.0.1 all connect to 127.0.0.1).
_IPV4_SHORTHAND = re.compile(r"(?:0x[0-9a-f]*|[0-9]+)(?:\.(?:0x[0-9a-f]*|[0-9]+)){0,3}")


def is_loopback(host: str) -> bool:
    """Whether connecting to `host` reaches this machine, in any form a URL may write it:
    `localhost` (a trailing dot, a subdomain), a loopback address in the resolver's shorthands or
    IPv4-mapped (`::ffff:127.0.0.1`), or the unspecified address (`0.0.0.0`, `::`), which Linux
    connects to the local host. A live endpoint may be none of them."""
    name = host.strip("[]").rstrip(".").lower()
    if name == "localhost" or name.endswith(".localhost"):
        return True
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        if not _IPV4_SHORTHAND.fullmatch(name):
            return False
        try:
            address = ipaddress.ip_address(socket.inet_aton(name))
        except OSError:
            return False
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return address.is_loopback or address.is_unspecified


def check_endpoint(url: str, *, environment: str) -> None:
    """https only; plain http and loopback only in the sandbox environment (emulators)."""
    shown = masked_url(url)
    try:
        parts = urlsplit(url)
        hostname = parts.hostname
    except ValueError:  # e.g. an unclosed [ of an IPv6 host
        hostname = None
    if hostname is None or parts.scheme not in ("https", "http"):
        raise ConfigurationError(f"endpoint {shown!r} is not an absolute http(s) URL")
    _check_address(url, shown)
    loopback = is_loopback(hostname)
    if environment == "live" and loopback:
        raise ConfigurationError(
            f"endpoint {shown!r} is a loopback address in the live environment; "
            "set environment = 'sandbox' to use a local emulator"
        )
    if parts.scheme == "http" and not (loopback and environment == "sandbox"):
        raise ConfigurationError(
            f"endpoint {shown!r} uses plain http; use https (http is allowed only for loopback "
            "emulators in the sandbox environment)"
        )


_SPACE_OR_CONTROL = re.compile(r"[\s\x00-\x1f\x7f]")


def _check_address(url: str, shown: str) -> None:
    """Refuse a space or a control character anywhere (a URL read from a file or a variable keeps
    its newline), a port that is no TCP port and a host no request can name: found only as the
    request is written, after the operation was recorded, they would leave it unknown, or send it
    to another path (`/%0D%0A/v1/payments`)."""
    if _SPACE_OR_CONTROL.search(url):
        raise ConfigurationError(f"endpoint {shown!r} holds a space or a control character (a line break read with "
                                 "it from a file or a variable?); fix base_url")
    try:
        port = urlsplit(url).port
    except ValueError:
        port = 0
    if port == 0:
        raise ConfigurationError(f"endpoint {shown!r} has a port that is not a number from 1 to 65535; fix base_url")
    try:
        parse_url(url)
    except LocationParseError:
        raise ConfigurationError(f"endpoint {shown!r} has a host no request can be sent to (a space or a control "
                                 "character in it); fix base_url") from None


# The password of a URL's userinfo, up to the last @: a password is often written unencoded, and
# a /, # or ? in it would end urlsplit's host part early and leave it in the text.
_USERINFO_PASSWORD = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*://[^:/?#@]*:)(.*)@(?=[^@]*$)", re.DOTALL)
# A password given as a query parameter (libpq takes any of its keywords there), or as a keyword
# of a libpq DSN (`host=... password=...`); libpq's `sslpassword` (the passphrase of the client
# certificate's key) is one too.
_PASSWORD_PARAMETER = re.compile(r"(?i)(\b(?:ssl)?password\s*=\s*)('[^']*'|[^&\s]*)")


def masked_url(url: str) -> str:
    """`url` (or a libpq keyword string) with any password replaced by ***, for messages."""
    return _PASSWORD_PARAMETER.sub(r"\1***", _USERINFO_PASSWORD.sub(r"\1***@", url))


def shown_url(url: str | None) -> str:
    """A URL as a repr shows it: its password masked."""
    return repr(masked_url(url) if url else url)


def url_passwords(url: str) -> list[str]:
    """The passwords `url` gives (as `masked_url` finds them), to mask wherever else they show."""
    found = [match.group(2) for match in _USERINFO_PASSWORD.finditer(url)]
    found += [match.group(2).strip("'") for match in _PASSWORD_PARAMETER.finditer(url)]
    return [password for password in found if password]


# -- redaction ----------------------------------------------------------------------------------
_SENSITIVE_KEY = re.compile(
    r"(authorization|secret|password|passwd|token|api[_-]?key|client[_-]?secret|cvc|cvv|"
    r"card[_-]?number|signature|cookie)",
    re.IGNORECASE,
)
_SECRET_SHAPES = re.compile(
    r"\b(?:(?:sk|rk|pk)_(?:test|live)_[0-9A-Za-z]{6,}|whsec_(?:[0-9A-Za-z+/=]|%[0-9A-Fa-f]{2}){6,}"
    # A client secret (Stripe's `pi_..._secret_...`, `src_client_secret_...`), e.g. in the query
    # of a buyer's redirect URL: it lets whoever holds it act on that payment.
    r"|[a-z]+_(?:client|[0-9A-Za-z]{6,})_secret_[0-9A-Za-z]{6,}"
    r"|Bearer\s+[^\s,;\"']+|Basic\s+[A-Za-z0-9+/=]{6,})"
)


def redact(value: Any) -> Any:
    """A copy of `value` with secrets and card numbers masked, for logs and the ledger."""
    cls = type(value)
    if cls is str:  # the usual values first, by exact type: no ABC check for them
        version = _secrets_version  # `_redact_text`'s look-up, here: most texts were redacted before
        cached = _redacted.get(value)
        if cached is not None and cached[0] == version:
            return cached[1]
        return _redact_text(value)
    if cls is dict or (value is not None and cls is not bool and cls is not int and isinstance(value, Mapping)):
        return {key: _MASK if sensitive_key(key) else redact(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(item) for item in value]
    if isinstance(value, Secret):
        return _MASK
    if isinstance(value, str):
        return _redact_text(value)
    return value


def shown_options(options: Mapping[str, Any]) -> str:
    """A method's provider options as a repr shows them: redacted, so a credential written among
    them (`webhook_secret` under options instead of credentials) shows masked."""
    return repr(redact(options))


# Whether a mapping key names a secret, by key: summaries use the same few keys again and again.
_sensitive_keys: Memo[str, bool] = Memo()


def sensitive_key(key: Any) -> bool:
    """Whether a mapping key names a secret: `redact` masks its value whatever it holds."""
    if type(key) is not str:
        return isinstance(key, str) and _SENSITIVE_KEY.search(key) is not None
    known = _sensitive_keys.get(key)
    if known is None:
        known = _sensitive_keys.remember(key, _SENSITIVE_KEY.search(key) is not None, key)
    return known


# Texts as redacted, by the secrets known then: the same ids and states come back in every
# summary (a payment's reference, "succeeded"), and each costs three scans.
_redacted: Memo[str, tuple[int, str]] = Memo()


_TEXT_USERINFO = re.compile(r"(://[^/?#@\s:]*:)[^/?#@\s]+@")


@functools.lru_cache(maxsize=1)
def _longest_first(known: frozenset[str]) -> tuple[str, ...]:
    """The known secrets in the order they are masked (worked out once per set)."""
    return tuple(sorted(known, key=len, reverse=True))


def _redact_text(value: str) -> str:
    version = _secrets_version  # before the set: a set newer than its version only masks more
    cached = _redacted.get(value)
    if cached is not None and cached[0] == version:
        return cached[1]
    # Known secrets first, the longest first: a shape or a shorter secret masking part of one
    # would leave the rest of it in the text, no longer whole to be found.
    masked = value
    for secret in _longest_first(_known_secrets):
        if secret in masked:
            masked = masked.replace(secret, _MASK)
    masked = _SECRET_SHAPES.sub(_MASK, masked)
    if "@" in masked:  # a URL's password (user:password@host)
        masked = _TEXT_USERINFO.sub(rf"\1{_MASK}@", masked)
    masked = mask_card_numbers(masked, _MASK)
    _redacted.remember(value, (version, masked), value)
    return masked


class RedactingFilter(logging.Filter):
    """A logging filter that masks secrets and card numbers in messages, arguments and tracebacks.

    Every paywire logger comes from `get_logger`, which installs it; add it to any handler of
    your own that sees payment data.
    """

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.args, tuple):
            record.args = tuple(redact(arg) for arg in record.args)
        elif isinstance(record.args, Mapping):
            record.args = redact(record.args)
        if record.args:
            record.msg = record.getMessage()
            record.args = None
        if isinstance(record.msg, str):
            record.msg = redact(record.msg)
        if record.exc_info and not record.exc_text:
            # The stack trace stays (operators need it); the error texts in it are redacted too.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
        return True


def get_logger(name: str) -> logging.Logger:
    """A `paywire.*` logger whose records are redacted before any handler sees them."""
    logger = logging.getLogger(name)
    if not any(isinstance(f, RedactingFilter) for f in logger.filters):
        logger.addFilter(RedactingFilter())
    return logger
