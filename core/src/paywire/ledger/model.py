"""What the ledger keeps: payments, the transactions run on them, and received webhook events.

Values are frozen: the service derives a new `Payment` for every change and the ledger stores it,
so nothing outside a locked ledger unit can mutate shared state by accident.
"""

from __future__ import annotations

import json
from collections.abc import Callable, ItemsView, Iterator, KeysView, Mapping, ValuesView
from datetime import UTC, datetime, timedelta
from json.encoder import c_make_encoder, encode_basestring_ascii  # type: ignore[attr-defined]
from types import MappingProxyType
from typing import Any, Final, TypeVar

import attrs

from paywire.command.result import REAUTHORIZATION_UNDECIDED
from paywire.money import Money
from paywire.subject import BuyerAction

__all__ = [
    "EventStatus",
    "Look",
    "Payment",
    "PaymentState",
    "SettledBy",
    "StoredEvent",
    "Transaction",
    "TransactionKind",
    "TransactionStatus",
    "now",
]


# The longest life assumed for a request recorded before the ledger kept `settle_after`.
LEGACY_LIFE: Final = timedelta(minutes=10)


def now() -> datetime:
    """This host's clock: the current time in UTC, at the microsecond resolution the ledger
    stores. The service keeps time by its ledger's clock instead (`Ledger.now`), which is this
    one only where the database is on this host."""
    return datetime.now(UTC)


def _canonical_encoder() -> Callable[[Any], str]:
    """The one JSON form paywire writes (sorted keys, no spaces): stored summaries and
    fingerprints alike. `JSONEncoder.encode` builds a new C encoder on every call; this one is
    built once. It keeps no record of containers seen (a record shared by threads would report
    a cycle where two threads encode one value): a cyclic value raises RecursionError instead."""
    if c_make_encoder is None:  # an interpreter without json's C accelerator
        return json.JSONEncoder(sort_keys=True, separators=(",", ":"), default=_plain).encode
    # markers (none kept), default, string encoder, indent, key and item separators, sort_keys,
    # skipkeys, allow_nan: what the JSONEncoder above passes, bar the markers.
    encode = c_make_encoder(None, _plain, encode_basestring_ascii, None, ":", ",", True, False, True)
    return lambda value: "".join(encode(value, 0))


def _plain(value: object) -> object:
    """A value JSON has no form for, in one that depends only on what it holds: any mapping as an
    object (its keys sorted), a set as a list in a fixed order, anything else (`Money`, a
    datetime) as its str. A mapping's or a set's str would depend on insertion order, on string
    hashing (which differs between processes) or on the object's address, and so would every
    fingerprint of it: the same call under its key would be taken for a conflict."""
    if isinstance(value, Mapping):
        return dict(value)
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=canonical_json)
    return str(value)


canonical_json = _canonical_encoder()


def _frozen(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    if type(value) is StoredJSON:  # by exact type: an isinstance check on an ABC costs more than this call
        return value
    return MappingProxyType(dict(value or {}))


_Record = TypeVar("_Record", "Payment", "Transaction")


def replace(record: _Record, **changes: Any) -> _Record:
    """`record` with `changes`, like `attrs.evolve`, without passing every field through
    `__init__` again: the service derives a new payment and transaction in every operation, and
    rebuilding their twenty-odd fields was about 4% of what the ledger adds to one. Converters
    still run on the fields changed; an unknown name is refused as `evolve` refuses it."""
    return updated(record, changes)


def updated(record: _Record, changes: dict[str, Any]) -> _Record:
    """`replace(record, **changes)` for a dict of changes the caller made for it, and gives up:
    the converted values are written into it. A dict literal is built at once, where keyword
    arguments are gathered one by one (the outcome of every operation makes one of each)."""
    cls = type(record)
    names, converters = _shapes.get(cls) or _shape(cls)  # known after the first: no call to ask
    if not names.issuperset(changes):
        raise TypeError(f"{cls.__name__} has no field {sorted(set(changes) - names)[0]!r}")
    for name, convert in converters.items():  # a record has two at most: no set built to intersect
        if name in changes:
            changes[name] = convert(changes[name])
    new = object.__new__(cls)
    state = new.__dict__
    state.update(record.__dict__)
    state.update(changes)
    return new


def restored(cls: type[_Record], fields: dict[str, Any]) -> _Record:
    """A record as a ledger row holds it: every field given, each already in its final form
    (read-only JSON, `Money`, datetimes), so nothing is left for `__init__` to convert. Decoding
    rows is the ledger's most frequent work: the fields come as one dict (a literal at the
    caller, built at once), not as keyword arguments, which are gathered into a dict field by
    field and then copied."""
    record = object.__new__(cls)
    record.__dict__.update(fields)
    return record


def build(cls: type[_Record], **fields: Any) -> _Record:
    """`cls(**fields)`, made as `replace` makes a record: the defaults and converted fields set
    in the instance's dict at once, not passed one by one through `__init__`. The service builds
    a new payment and transaction for every first operation, and a transaction for every
    follow-up. A record missing a field, or given one it lacks, goes through `__init__`, which
    says what is wrong."""
    names, converters = _shape(cls)
    defaults, required = _defaults(cls)
    if not names.issuperset(fields) or not required.issubset(fields):
        return cls(**fields)
    for name, convert in converters.items():
        if name in fields:
            fields[name] = convert(fields[name])
    record = object.__new__(cls)
    state = record.__dict__
    state.update(defaults)
    state.update(fields)
    return record


_IMMUTABLE = (MappingProxyType, str, int, bool, type(None), tuple, frozenset)
_defaults_of: dict[type, tuple[dict[str, Any], frozenset[str]]] = {}


def _defaults(cls: type) -> tuple[dict[str, Any], frozenset[str]]:
    """A record class's defaults as `__init__` would set them (converted; a factory's value made
    once, which only an immutable value allows), and the fields that have none."""
    known = _defaults_of.get(cls)
    if known is None:
        defaults: dict[str, Any] = {}
        required = set()
        for field in attrs.fields(cls):
            default = field.default
            if default is attrs.NOTHING:
                required.add(field.name)
                continue
            if isinstance(default, attrs.Factory) and default.takes_self:  # type: ignore[arg-type]
                raise TypeError(f"{cls.__name__}.{field.name}'s default depends on the record; use {cls.__name__}()")
            value = default.factory() if isinstance(default, attrs.Factory) else default  # type: ignore[arg-type]
            value = field.converter(value) if field.converter is not None else value
            if type(value) not in _IMMUTABLE:
                raise TypeError(f"{cls.__name__}.{field.name}'s default cannot be shared; use {cls.__name__}()")
            defaults[field.name] = value
        known = _defaults_of[cls] = (defaults, frozenset(required))
    return known


_shapes: dict[type, tuple[frozenset[str], dict[str, Any]]] = {}


def _shape(cls: type) -> tuple[frozenset[str], dict[str, Any]]:
    """A record class's field names, and the converters of those that have one."""
    shape = _shapes.get(cls)
    if shape is None:
        fields = attrs.fields(cls)
        shape = _shapes[cls] = (frozenset(f.name for f in fields),
                                {f.name: f.converter for f in fields if f.converter is not None})
    return shape


class StoredJSON(Mapping[str, Any]):
    """A read-only JSON object as the ledger stored it, decoded on first use and written back as
    the same text: most transactions a unit reads are only counted (amounts, statuses), their
    summaries never opened, and a payment's references rarely change."""

    __slots__ = ("_decoded", "text")

    def __init__(self, text: str) -> None:
        self.text = text
        self._decoded: dict[str, Any] | None = None

    def _value(self) -> dict[str, Any]:
        if self._decoded is None:
            self._decoded = json.loads(self.text)
        return self._decoded

    # Each use below reads the decoded dict itself once it is there: `_value`'s call only to decode
    # (a unit's summaries are asked several times each, in every operation).
    def __getitem__(self, key: str) -> Any:
        decoded = self._decoded
        return (decoded if decoded is not None else self._value())[key]

    def __iter__(self) -> Iterator[str]:
        decoded = self._decoded
        return iter(decoded if decoded is not None else self._value())

    def __len__(self) -> int:
        decoded = self._decoded
        return len(decoded if decoded is not None else self._value())

    def __repr__(self) -> str:
        return repr(self._value())

    # The dict's own (read-only) views and comparison, rather than Mapping's key-by-key ones.
    def __contains__(self, key: object) -> bool:
        decoded = self._decoded
        return key in (decoded if decoded is not None else self._value())

    def get(self, key: str, default: Any = None) -> Any:
        # Without a backslash in the text every key is written as it is, in quotes: a key whose
        # quoted form is not there is absent, and a summary asked only for a key it lacks (a
        # response's "held", a request's "final") need not be decoded.
        decoded = self._decoded
        if decoded is None:
            if type(key) is str and f'"{key}"' not in self.text and "\\" not in self.text:
                return default
            decoded = self._value()
        return decoded.get(key, default)

    def keys(self) -> KeysView[str]:
        decoded = self._decoded
        return (decoded if decoded is not None else self._value()).keys()

    def values(self) -> ValuesView[Any]:
        decoded = self._decoded
        return (decoded if decoded is not None else self._value()).values()

    def items(self) -> ItemsView[str, Any]:
        decoded = self._decoded
        return (decoded if decoded is not None else self._value()).items()

    def __eq__(self, other: object) -> bool:
        return self._value() == (other._value() if isinstance(other, StoredJSON) else other)

    __hash__ = None  # type: ignore[assignment]  # like dict's


class PaymentState:
    """Where a payment stands. Derived from its totals and flags, never set by hand."""

    PENDING: Final = "pending"  # the first operation has not succeeded (in flight, unknown, retryable)
    ACTION_REQUIRED: Final = "action_required"  # waiting for the buyer; `complete` resumes it
    AUTHORIZED: Final = "authorized"
    PARTIALLY_CAPTURED: Final = "partially_captured"  # more captures possible
    CAPTURED: Final = "captured"  # nothing more can be captured
    PARTIALLY_REFUNDED: Final = "partially_refunded"
    REFUNDED: Final = "refunded"
    VOIDED: Final = "voided"
    FAILED: Final = "failed"  # the first operation was declined or refused

    FINAL: Final = frozenset({"refunded", "voided", "failed"})


class TransactionStatus:
    """Where one operation stands; `paywire.service.lifecycle` says what moves it and docs/ledger.md
    shows that table."""

    PENDING: Final = "pending"  # recorded, about to be (or being) sent
    SUCCEEDED: Final = "succeeded"
    FAILED: Final = "failed"  # the provider did not and will not apply it
    ACTION_REQUIRED: Final = "action_required"
    UNKNOWN: Final = "unknown"  # may have taken effect; reconcile or retry with the same key
    ACCEPTED: Final = "accepted"  # the provider took it and decides later (webhook or fetch settles it)

    OPEN: Final = frozenset({"pending", "unknown", "accepted"})  # in flight: the only statuses a row may leave


class SettledBy:
    """What recorded a transaction's outcome. Only reconciliation's conclusion that a request was
    not applied can be overturned, by the request's own late answer."""

    ANSWER: Final = "answer"  # the provider's answer to the request itself
    RECONCILE: Final = "reconcile"  # read from the provider by `fetch`
    WEBHOOK: Final = "webhook"  # a verified provider event
    CALLER: Final = "caller"  # the caller, who checked with the provider (`PaymentService.settle_vault`)


class TransactionKind:
    AUTHORIZE: Final = "authorize"
    SALE: Final = "sale"
    COMPLETE: Final = "complete"
    CAPTURE: Final = "capture"
    VOID: Final = "void"
    REFUND: Final = "refund"
    VAULT: Final = "vault"
    UNVAULT: Final = "unvault"
    # The provider undid a succeeded refund later (it failed at the bank): `parent_id` names the
    # refund; recorded from a verified event or a fetch, never sent.
    REVERSAL: Final = "reversal"

    INITIAL: Final = frozenset({"authorize", "sale", "complete"})  # establish the authorization


class EventStatus:
    APPLIED: Final = "applied"  # matched to a payment and applied (possibly as a no-op)
    DEFERRED: Final = "deferred"  # matched, but waits until in-flight operations settle
    UNMATCHED: Final = "unmatched"  # no payment known for its references yet


@attrs.frozen(kw_only=True, slots=False)
class Payment:
    """One payment and its running totals.

    `authorized`, `captured` and `refunded` always satisfy refunded <= captured <= authorized.
    They are the larger of what the ledger's own succeeded transactions add up to and what the
    provider reported (`observed_*`, from webhooks and reconciliation), so a late or repeated
    report never counts money twice and never moves a total backwards. Once the authorization
    captures act on is a reauthorization (`references["reauthorized"]`), `authorized` is what
    the provider reported of it alone: it replaced what the first operation asked.

    :param flow: "authorize" (capture later) or "sale" (captured at once).
    :param reference: the provider's primary payment object (what `fetch` and `complete` read).
    :param references: every provider id known for the payment ("payment", "authorization", ...).
    :param action: what the buyer must do while the state is action_required.
    :param capture_closed: no further capture is possible (a final capture released the rest).
    """

    id: str
    method: str
    flow: str
    amount: Money
    state: str
    authorized: Money
    captured: Money
    refunded: Money
    observed_authorized: Money
    observed_captured: Money
    observed_refunded: Money
    capture_closed: bool = False
    voided: bool = False
    failed: bool = False
    reference: str | None = None
    references: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen)
    order_id: str | None = None
    customer_reference: str | None = None
    token: str | None = None
    action: BuyerAction | None = None
    created_at: datetime
    updated_at: datetime

    @property
    def currency(self) -> str:
        return self.amount.currency

    @property
    def capturable(self) -> Money:
        """What could still be captured, ignoring operations in flight."""
        if self.capture_closed or self.voided or REAUTHORIZATION_UNDECIDED in self.references:
            return Money.zero(self.currency)  # the last: the provider takes none until it decides
        return self.authorized - self.captured

    @property
    def refundable(self) -> Money:
        """What could still be refunded, ignoring operations in flight."""
        return self.captured - self.refunded


@attrs.frozen(kw_only=True, slots=False)
class Transaction:
    """One operation on a payment, in the order it happened. Rows are never deleted, and only a
    pending or unknown row may change (to its outcome), which the database itself enforces.

    :param idempotency_key: sent to the provider; a retry of the same operation reuses it.
    :param attempt: 1, or more when the same key was retried after a retryable failure.
    :param fingerprint: a hash of the parameters, to tell a replay from a conflicting reuse.
    :param parent_id: for a refund, the capture (or sale) transaction it refunds.
    :param origin: "service" for operations paywire sent, "webhook" for ones the provider reported.
    :param request: a redacted summary of what was asked (enough to resend it with the same key).
    :param response: a redacted summary of the answer or error.
    :param settle_after: when the request can no longer land (its longest life after it was
        sent): only then may it count as abandoned, or be concluded not applied.
    :param settled_by: what recorded the outcome (a `SettledBy` value).
    """

    id: str
    payment_id: str | None
    method: str
    kind: str
    amount: Money | None
    status: str
    idempotency_key: str
    attempt: int = 1
    fingerprint: str
    provider_reference: str | None = None
    parent_id: str | None = None
    origin: str = "service"
    error_type: str | None = None
    error_code: str | None = None
    error_message: str | None = None
    retryable: bool = False
    token: str | None = None
    request: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen)
    response: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen)
    created_at: datetime
    updated_at: datetime
    finished_at: datetime | None = None
    settle_after: datetime | None = None
    settled_by: str | None = None

    @property
    def open(self) -> bool:
        """Pending, unknown or accepted: its effect is not known yet."""
        return self.status in TransactionStatus.OPEN

    def resendable(self, at: datetime) -> bool:
        """Unknown, or pending past its longest life at `at` (its worker stopped): sending it
        again with its key is how it is retried. An accepted one is held by the provider: never
        resent."""
        if self.status == TransactionStatus.UNKNOWN:
            return True
        return self.status == TransactionStatus.PENDING and self.expired(at)

    def expired(self, at: datetime) -> bool:
        """Whether the request can no longer land at `at` (its `settle_after` has passed): `at`
        is the ledger's clock (`Ledger.now`), which `settle_after` was written by, never this
        host's own. A row written before the ledger kept `settle_after` gets a generous life
        from its last update."""
        deadline = self.settle_after or self.updated_at + LEGACY_LIFE
        return at >= deadline


@attrs.frozen
class Look:
    """Reconciliation's record of an open transaction: how often it was looked at, and when it
    may be looked at next (kept in the ledger, shared by every worker)."""

    looks: int
    next_at: datetime


@attrs.frozen(kw_only=True)
class StoredEvent:
    """A verified webhook event as received, stored once per (provider, event id)."""

    provider: str
    event_id: str
    method: str
    type: str
    kind: str
    reference: str | None = None
    references: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen)
    amount: Money | None = None
    total: Money | None = None
    status: str
    payment_id: str | None = None
    note: str | None = None
    received_at: datetime
    applied_at: datetime | None = None
    # The event's capture was final at the provider (`WebhookEvent.closes_capture`), stored with
    # it (migration 7) so that an event applied after it waited, unmatched (its payment not known
    # yet) or deferred, closes the capture by the same rules as one applied as it is received.
    # False for an event stored before the ledger kept it: applied as that release applied it.
    closes_capture: bool = False

    @property
    def all_references(self) -> tuple[str, ...]:
        """The ids that match the event to a payment: not those of objects payments share."""
        from paywire.webhook import SHARED_REFERENCES

        shared = {ref for name, ref in self.references.items() if name in SHARED_REFERENCES}
        refs = [self.reference] if self.reference and self.reference not in shared else []
        refs.extend(ref for ref in self.references.values() if ref and ref not in refs and ref not in shared)
        return tuple(refs)
