"""The payment service: every operation recorded before it is sent, and its outcome after.

Each operation runs in three steps:

1. In one locked ledger unit: find the idempotency key (the caller's, or one derived from the
   payment and the operation's place in its history), check the state machine and the money
   invariants with in-flight amounts counted as spent, and record the transaction as pending.
   A refused operation raises here and leaves no trace.
2. Send it through the gateway with that key (no ledger lock is held meanwhile).
3. In another locked unit: record the outcome (succeeded, accepted, action_required, failed or
   unknown) and recompute the payment.

Outcomes a caller can tell apart:

- success returns the updated `Payment`; an answer naming a state further on than the operation
  makes (a retry under the key finding what the lost attempt made, since voided, expired or
  refunded), and any answer to a resend (which may be the provider's stored answer to the first
  attempt), is recorded, and the payment is then read from the provider as below, so the ledger
  never claims the hold or capture the provider no longer has;
- buyer action returns the `Payment` in state action_required, with `payment.action.redirect_url`;
  send the buyer there and call `complete(payment.id)` when they return (an action left to the
  provider's client SDK has no URL: `payment.action.kind` names it, and `client_secret`, in this
  returned `Payment` only, is what that SDK takes; `payment.action` is None when the provider
  named no action, as a reading of a waiting payment may not);
- an operation the provider accepted and decides later returns the `Payment` with that
  transaction "accepted": it counts as in flight until a webhook or `reconcile()` settles it;
- a decline raises `Declined` (its `reference`, when the declined request left an object the buyer
  may still pay, such as Stripe's PaymentIntent, becomes the payment's reference, so the
  provider's later events about it find the payment; a retry under its key reads that payment
  from the provider before raising the stored decline again, and answers the payment if the buyer
  paid it since); a retryable failure raises
  `RateLimited`/`TransportError`, or a `ProviderUnavailable` for a 5xx the provider says it did
  not apply (retry the same call: the same key is reused); an unknown outcome `OutcomeUnknown`
  (a timeout, a dropped connection, a 5xx: retry the same call under its key, which the error
  names: an authorize, sale (or pay) or vault made without a key is a new one when called again
  without it; or let `reconcile()` settle it, which no vault or unvault can be: the error says what can).
  Every error raised by an operation carries `error.payment_id` and `error.transaction_id` (also
  in `error.details`).
- a refusal saying the provider's payment is not as the ledger holds it (`error.state_conflict`:
  an authorization that lapsed, or was voided, captured or refunded elsewhere, and no event yet)
  is recorded failed and raised, as refused; before raising, the service reads the provider for
  the payment as `reconcile(payment_id=...)` does, so the ledger never claims a hold the provider
  no longer has. `error.details["reconciled"]` says whether that read settled it (a void refused
  because the hold lapsed then leaves the payment voided, as the void would have).
- `StateError` / `UnsupportedOperation` / `InvalidRequest` / `ConfigurationError` raised before
  sending (the operation is rehearsed up to the moment its request would leave, inside the
  ledger unit that would record it) mean nothing was recorded or sent (a `ConfigurationError` with
  `code="account_unknown"` is retryable: a `get_secret` hook failed to tell which methods share the
  caller's key); `IdempotencyConflict` means the key was used for different parameters, or on
  another method of the same provider account (the provider's keys are the account's), or, with
  `code="in_progress"`, that its first request is still running after `wait_timeout`.
- `LedgerBusy` (retryable) means the ledger could not take its locks in time before anything was
  sent: nothing was recorded or sent. `LedgerUnavailable` (retryable) means its database could not
  be reached or refused the write (see the error) before anything was sent; so do the reads, a
  replay under a key whose recorded outcome cannot be read back (naming that operation's payment
  and transaction) and a webhook not stored. After sending, any failure to record the answer, or
  to read the outcome it waits for (these, or any other), surfaces as `OutcomeUnknown`: the
  transaction stays open, never failed.
"""

from __future__ import annotations

import functools
import hmac
import operator
import time
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import Any, NamedTuple

import attrs

from paywire.command.gateway_command import after_unsure
from paywire.command.result import VOID_TARGET, CommandResult, ProviderState
from paywire.errors import (
    BuyerActionRequired,
    ConfigurationError,
    Declined,
    IdempotencyConflict,
    InvalidRequest,
    LedgerBusy,
    LedgerUnavailable,
    OutcomeUnknown,
    PaywireError,
    StateError,
    UnsupportedOperation,
)
from paywire.gateway import Gateway, Rehearsal
from paywire.gateway_definition import Capabilities
from paywire.ledger.interface import Ledger, LedgerIntegrityError, LedgerUnit
from paywire.ledger.model import (
    EventStatus,
    Look,
    Payment,
    PaymentState,
    SettledBy,
    StoredEvent,
    Transaction,
    TransactionKind,
    TransactionStatus,
    replace,
    restored,
)
from paywire.money import Money
from paywire.security import _MASK, get_logger, redact, refuse_card_numbers, sensitive_key
from paywire.service import rules
from paywire.service.held import unreadable
from paywire.service.inputs import (
    PAYMENT_STATES,
    TRANSACTION_STATUSES,
    require_callers_key,
    require_choice,
    require_count,
    require_customer,
    require_event,
    require_indexed,
    require_instance,
    require_key,
    require_metadata,
    require_money,
    require_not_empty,
    require_options,
    require_return_url,
    require_source,
    require_str,
    require_text,
    require_unpadded_key,
)
from paywire.service.keys import derived_key, fingerprint, new_id, same_operation
from paywire.service.outage import reads, unavailable
from paywire.service.outcome import attach, failed, is_unknown, rebuild_error, settled_by_caller, succeeded, unknown
from paywire.service.reconcile import MatchReport, Mismatch, ReconcileReport, Settlement, settle, unfinished
from paywire.service.reversal import floor_dropped
from paywire.service.schedule import Backoff, is_due
from paywire.service.waiting import DEFAULT_BUYER_WAIT, checked, due, watch
from paywire.service.webhooks import apply_event, apply_waiting, reported_waiting
from paywire.subject import BuyerAction, Customer, Order, Subject
from paywire.webhook import EventKind, WebhookEvent

__all__ = ["Notification", "PaymentService", "WebhookReceipt"]

log = get_logger("paywire.service")


def _masked(value: object) -> bool:
    """Whether redaction masked something in a stored request summary."""
    if isinstance(value, str):
        return _MASK in value
    if isinstance(value, Mapping):
        return any(_masked(item) for item in value.values())
    if isinstance(value, (list, tuple)):
        return any(_masked(item) for item in value)
    return False


def _buyer(customer: Customer | None) -> dict[str, str | None]:
    """The buyer's details a vault's fingerprint covers, though the ledger keeps them nowhere:
    the provider makes a new customer from them, so the same key used for another buyer is
    another vault (see `keys.same_operation` for fingerprints written without them)."""
    return {name: getattr(customer, name, None) for name in ("email", "name", "phone")}


def _ask_the_provider(kind: str) -> str:
    """What a caller does about an open vault or unvault that nothing here can settle."""
    if kind == TransactionKind.VAULT:
        return ("check with the provider whether it stored the payment method, then record what it found with "
                "settle_vault(transaction_id, token=...) or settle_vault(transaction_id, nothing_stored=True)")
    return "check with the provider whether it took effect"


def _require_callers_record_agrees(txn: Transaction, outcome: CommandResult | BaseException) -> None:
    """Refuse to hand a call whose late answer arrived after the caller settled its vault
    (`settle_vault`) the caller's finding as the provider's answer, when the two disagree: a
    success naming a token the provider never answered with, or a failure although the provider
    stored the method. The caller's record stands (it was written first, and nothing here knows
    which is right); the call is told, and it is logged, so someone checks with the provider."""
    if isinstance(outcome, CommandResult):
        answered = "stored the payment method"
        agrees = txn.status == S.SUCCEEDED and outcome.token == txn.token
    elif is_unknown(outcome):
        return  # the answer tells nothing the caller's record contradicts
    else:
        answered = "refused the vault"
        agrees = txn.status == S.FAILED
    if agrees:
        return
    recorded = "another payment method" if txn.status == S.SUCCEEDED else "that nothing was stored"
    log.warning("vault transaction %s: the provider's late answer disagrees with what the caller recorded with "
                "settle_vault()", txn.id)
    raise attach(OutcomeUnknown(
        f"the provider answered this vault's request late: it {answered}, but the caller had recorded {recorded} "
        f"with settle_vault() for transaction {txn.id}; the caller's record stands: check with the provider which "
        "is right, then vault() again under a new key or unvault() what should not be stored",
        code="settled_by_caller"), txn.payment_id, txn.id)


def _why(error: BaseException) -> str:
    return f"{type(error).__name__}: {redact(str(error))}"


def _undone_captures(txns: Sequence[Transaction]) -> frozenset[str | None]:
    """The captures among `txns` the provider undid: their reversal is recorded, or it failed them
    by its word about the object each made (its event, or its reading listing it), having held
    them undecided (Braintree's bank account capture declined at settlement from
    SETTLEMENT_PENDING): made, each asked its part of the authorization."""
    captures = {t.id for t in txns if t.kind == TransactionKind.CAPTURE}
    made = {t.id for t in txns if t.kind == TransactionKind.CAPTURE and t.status == TransactionStatus.FAILED
            and not t.retryable and t.provider_reference
            and t.settled_by in (SettledBy.WEBHOOK, SettledBy.RECONCILE)}
    return frozenset({t.parent_id for t in txns if t.kind == TransactionKind.REVERSAL and t.parent_id in captures}
                     | made)


def _offers_undone(payment: Payment, txns: Sequence[Transaction], before: frozenset[str | None]) -> bool:
    """Whether the provider undid a capture of an authorization (one not in `before`, the
    captures undone until then) whose captures, standing or undone, asked for all of it, and
    the ledger now offers to capture again what they asked for. Whether the authorization
    still holds that is the provider's to say: Braintree's capture declined at settlement
    consumed it (one of all of it left nothing held)."""
    if payment.flow != TransactionKind.AUTHORIZE or payment.capturable.minor <= 0:
        return False
    undone = _undone_captures(txns)
    asked = sum(t.amount.minor for t in txns if t.kind == TransactionKind.CAPTURE and t.amount is not None
                and (t.status == TransactionStatus.SUCCEEDED or t.id in undone))
    return not undone <= before and asked >= payment.authorized.minor

K = TransactionKind
S = TransactionStatus


def _owes_read(outcome: CommandResult | BaseException, txn: Transaction, payment: Payment, resent: bool) -> bool:
    """Whether an operation's recorded outcome says the ledger is behind the provider, so its
    payment owes a read (`PaymentService._catch_up`): a refusal saying the provider's payment is
    not as the ledger holds it (`state_conflict`), or a success that names a state further on than
    the operation makes (`rules.behind`), or answers a resend (perhaps the provider's stored answer
    to the first attempt, the payment as it was then). A success its payment's total could not
    take in says so too (`rules.absorbed`, which `_absorbed` asks of every unit that records
    one)."""
    if isinstance(outcome, PaywireError):
        return outcome.state_conflict and txn.status == S.FAILED
    if isinstance(outcome, CommandResult) and txn.kind == K.VOID and outcome.state == ProviderState.VOIDED:
        # What a void makes, also of a payment with captures (its authorization voided, the
        # captures standing): the ledger is not behind for that.
        return resent and txn.status == S.SUCCEEDED
    return (isinstance(outcome, CommandResult) and txn.status == S.SUCCEEDED
            and (resent or rules.behind(payment, outcome.state)))


def _absorbed(u: LedgerUnit, before: Payment, txns: Sequence[Transaction], payment: Payment) -> bool:
    """Whether the unit that turned the locked payment from `before` (with `txns`) into `payment`
    recorded captures or refunds succeeded that its totals could not take in (`rules.absorbed`):
    the operation's own, and any an event recorded or settled in it (an accepted one the provider
    decided, one made in its dashboard). Asked of the ledger only when a total stands on a floor."""
    return rules.on_floor(before) and rules.absorbed(before, payment, rules.newly_succeeded(txns, u.transactions(payment.id)))


def _looked(u: LedgerUnit, owner: str | None, txns: Sequence[Transaction], at: datetime) -> None:
    """Record `reconcile()`'s look at `txns` at `at`, in a unit holding their payment's lock: one
    still open is next looked at from `at` on, unless the schedule already says later (a
    Janitor's backoff or lease, kept); a settled one's look is forgotten, and so is that of every
    other transaction of the payment the unit settled (`reconcile(limit)` may not have listed it)."""
    current = u.transactions(owner) if owner is not None else txns
    still = {t.id for t in current if t.status in (S.UNKNOWN, S.ACCEPTED)}
    ids = [t.id for t in txns]
    looks = u.looks([t.id for t in current] if owner is not None else ids)
    u.set_looks({**{i: None for i in looks if i not in still},
                 **{i: None if i not in still else Look(looks[i].looks, max(looks[i].next_at, at)) if i in looks
                    else Look(0, at) for i in ids}})


def _leased(look: Look, lease: datetime) -> Look:
    """`look`, due no sooner than `lease` (while a worker's read may still be under way)."""
    return Look(look.looks, max(look.next_at, lease))


_LEDGER_ORDER = operator.attrgetter("created_at", "id")  # how the ledger lists a payment's transactions
_UNGIVEN: tuple[object, ...] = (None, "", {})  # a request summary leaves out what was not given (built once, not per value)
_SENT = frozenset({"amount", "currency"})  # a request summary's own words for what was sent, not redacted
_AS_GIVEN, _MASKED, _OWN_WORDS = "as given", "masked", "own words"  # how a request summary keeps a parameter (`_kept`)
_EMPTY: Mapping[str, Any] = MappingProxyType({})  # a new record's references or answer: read-only, so one is shared
_STEP_KEYS = "step_keys"  # a vault's request summary: "own", its steps' keys are `step_key`'s
_ANSWERED = frozenset({S.SUCCEEDED, S.ACTION_REQUIRED, S.ACCEPTED})  # the caller gets the payment
_UNPAID = frozenset({PaymentState.PENDING, PaymentState.ACTION_REQUIRED, PaymentState.FAILED})
_FETCHES = 3  # times the provider is asked about a payment that keeps changing meanwhile
_OPEN_SCAN = 100_000  # open transactions read to find an unvault's earlier attempt (they are few)
_UNREAD = "nothing was changed or sent: try again once it is back"  # a read outside an operation
_UNSTORED = ("the delivery was not stored (of several events, those stored before it are duplicates when it comes "
             "again): have the provider deliver it again once it is back")
_ABANDONED = ("no outcome was recorded within the request's longest life: its worker stopped between sending "
              "and recording")


def _kept(name: str) -> str:
    """How a request summary keeps parameter `name`: in its own words (`_SENT`), masked (a name
    that says it is secret, whatever its value) or as given, redacted."""
    if name in _SENT:
        return _OWN_WORDS
    return _MASKED if sensitive_key(name) else _AS_GIVEN


# `_kept` by parameter name: the service's own few names, asked again in every operation.
_KEPT: dict[str, str] = {}


@attrs.frozen
class WebhookReceipt:
    """What `receive_webhook` did with an event.

    `status` is "applied", "deferred" (matched; waits for an operation in flight), "unmatched"
    (stored; no payment known yet) or "duplicate" (this event id was received before).
    """

    provider: str
    event_id: str
    kind: str
    status: str
    payment_id: str | None = None


@attrs.frozen
class Notification:
    """What `receive_notification` did with one delivery: a receipt per event, and the body the
    provider expects back (empty: any 2xx will do)."""

    receipts: tuple[WebhookReceipt, ...]
    acknowledgement: bytes = b""
    content_type: str = "text/plain"


# What a follow-up sends (its amount and parameters), decided from the payment as locked.
_Resolve = Callable[[Payment, Sequence[Transaction], Capabilities], tuple[Money | None, dict[str, Any]]]


class _Op(NamedTuple):
    """One operation as the caller asked for it; `params` are what is sent (and fingerprinted).

    A follow-up names its payment and `resolve`s its method, amount and parameters inside the
    locked unit, so the payment is read once, under the lock.

    This and the other per-operation values below are named tuples: immutable all the same, and
    made for every operation at a fraction of a frozen attrs class's cost (which sets each field
    through `object.__setattr__`).
    """

    kind: str
    method: str
    payment_id: str | None
    amount: Money | None
    params: Mapping[str, Any]
    key: str | None
    create: Payment | None = None
    fingerprint: str | None = None  # set when resending a stored transaction as it was
    order: Order | None = None
    customer: Customer | None = None
    resolve: _Resolve | None = None
    defaulted: bool = False  # the caller left the amount to `resolve`
    finish_only: bool = False  # only a resend of an earlier attempt: never a new request (`resend_unfinished`)


class _Known(NamedTuple):
    """A payment and its transactions as a unit left them, and the ledger's mark of that unit:
    the outcome unit reads them afresh only if something was committed since."""

    payment: Payment
    txns: list[Transaction]
    mark: object


class _Plan(NamedTuple):
    action: str  # "send", "wait" or "replay"
    txn: Transaction
    op: _Op | None = None  # the operation as resolved, when it is sent
    rehearsal: Rehearsal | None = None  # what is sent, as rehearsed
    known: _Known | None = None  # the payment as the plan's unit left it, when it can tell
    resent: bool = False  # the transaction was sent before, and that send may have taken effect


class PaymentService:
    """Payments through any gateway, kept in a ledger.

    :param gateway: the configured gateway (any provider plugin that meets the command contract).
    :param ledger: where payments and transactions are kept (`SQLiteLedger`, `PostgresLedger`).
    :param margin: seconds added to a request's longest life (every attempt the retry policy
        allows at the method's full timeouts, for every request of the command, plus the
        provider's own window) to give its `settle_after`: before it, a pending transaction is
        taken as still being sent, and `reconcile()` never concludes that it was not applied.
        `settle_after` is written and read by the ledger's clock (`Ledger.now`, the database
        server's on PostgreSQL), so hosts whose own clocks disagree still agree on it.
    :param buyer_wait: seconds a payment may wait for its buyer (3-D Secure, an approval) before
        `reconcile()` and the Janitor read it from the provider (`paywire.service.waiting`): the
        provider's lost webhook then leaves none waiting for ever. None: the configuration's
        `[paywire] buyer_wait`, else an hour. It is counted from when the payment began waiting.
    :param wait_timeout: how long a duplicate request waits for the first one to finish.

    Example::

        service = PaymentService(Gateway.from_config(), SQLiteLedger("paywire.db"))
        payment = service.pay("stripe", Money.of("19.99", "EUR"), source="pm_card_visa",
                              order_id="A-1001", idempotency_key="order-A-1001-pay")  # payment_action "authorize"
        payment = service.capture(payment.id, Money.of("10.00", "EUR"))
        payment = service.refund(payment.id, Money.of("5.00", "EUR"))
    """

    def __init__(self, gateway: Gateway, ledger: Ledger, *, margin: float = 30.0,
                 wait_timeout: float = 30.0, poll_interval: float = 0.02,
                 buyer_wait: float | None = None) -> None:
        self.gateway = gateway
        self.ledger = ledger
        self.margin = margin
        self.buyer_wait = checked(gateway.settings.get("buyer_wait", DEFAULT_BUYER_WAIT) if buyer_wait is None
                                  else buyer_wait)
        self.wait_timeout = wait_timeout
        self.poll_interval = poll_interval
        self._siblings_of: dict[str, tuple[str, ...]] = {}  # the gateway's methods never change
        # `Gateway.longest_life` by (method, command): fixed by the method's settings, asked for
        # every transaction recorded (the margin, which a caller may change, is added each time).
        self._lives: dict[tuple[str, str], float] = {}
        self._caps: dict[str, Capabilities] = {}  # `Method.capabilities` by method: fixed by its configuration

    def __repr__(self) -> str:
        return f"PaymentService({self.ledger!r})"

    # -- operations --------------------------------------------------------------------------------
    def authorize(self, method: str, amount: Money, *, source: str, order_id: str | None = None,
                  order: Order | None = None, customer: Customer | None = None,
                  idempotency_key: str | None = None, return_url: str | None = None,
                  metadata: Mapping[str, str] | None = None, options: Mapping[str, Any] | None = None) -> Payment:
        """Reserve `amount` on the buyer's payment method (`source`: a token); capture later."""
        return self._initial(K.AUTHORIZE, method, amount, source=source, order_id=order_id, order=order,
                             customer=customer, key=idempotency_key, return_url=return_url,
                             metadata=metadata, options=options)

    def sale(self, method: str, amount: Money, *, source: str, order_id: str | None = None,
             order: Order | None = None, customer: Customer | None = None, idempotency_key: str | None = None,
             return_url: str | None = None, metadata: Mapping[str, str] | None = None,
             options: Mapping[str, Any] | None = None) -> Payment:
        """Authorize and capture `amount` at once."""
        return self._initial(K.SALE, method, amount, source=source, order_id=order_id, order=order,
                             customer=customer, key=idempotency_key, return_url=return_url,
                             metadata=metadata, options=options)

    def pay(self, method: str, amount: Money, *, source: str, order_id: str | None = None,
            order: Order | None = None, customer: Customer | None = None, idempotency_key: str | None = None,
            return_url: str | None = None, metadata: Mapping[str, str] | None = None,
            options: Mapping[str, Any] | None = None) -> Payment:
        """Place the payment as the method's configured `payment_action` says (Magento's payment
        action): "authorize" reserves `amount` to capture later, as `authorize` does;
        "authorize_capture" captures it at once, as `sale` does. The shop then needs no code of
        its own per method, and the setting is what decides.

        A method configured with an action it cannot make (its provider has no sale, or the
        configuration switched it off: `can_sale = false`) is refused with `UnsupportedOperation`
        before anything is recorded or sent. A retry under the same key is the same operation only
        while the setting is unchanged: a key first sent as the other action is an `IdempotencyConflict`."""
        kind = self._payment_action(method)
        return self._initial(kind, method, amount, source=source, order_id=order_id, order=order,
                             customer=customer, key=idempotency_key, return_url=return_url,
                             metadata=metadata, options=options)

    def _payment_action(self, method: str) -> str:
        """The operation `pay` makes on `method`: its configured payment action, if the method can make it."""
        runtime = self.gateway.method(method)
        action = runtime.config.payment_action
        kind = K.SALE if action == "authorize_capture" else K.AUTHORIZE
        if not getattr(runtime.capabilities, kind):
            raise UnsupportedOperation(
                f"payment method {method!r} is configured with payment_action = {action!r} but does not support "
                f"{kind} (its provider cannot, or can_{kind} = false): set payment_action to what it supports; "
                "nothing was recorded or sent", code=f"no_{kind}")
        return kind

    def charge_vaulted(self, method: str, token: str, amount: Money, *, customer: Customer | None = None,
                       capture: bool = True, order_id: str | None = None, idempotency_key: str | None = None,
                       metadata: Mapping[str, str] | None = None) -> Payment:
        """Charge a vaulted payment method without the buyer (off-session): no buyer action is
        possible, so a card that needs one is declined. `customer.reference` names the provider's
        customer where the provider needs it.

        `capture` (a sale by default) does not follow the method's `payment_action`, which says
        what placing an order at checkout does (`pay`): an off-session charge (a renewal, a
        charge after delivery) has nothing left to ship and capture, and an authorization left
        uncaptured lapses with the money never collected. Give `capture=False` to hold it."""
        require_instance(capture, bool, "capture")  # a str such as "no" is true: a sale, not an authorization
        return self._initial(K.SALE if capture else K.AUTHORIZE, method, amount, source=token, order_id=order_id,
                             order=None, customer=customer, key=idempotency_key, return_url=None,
                             metadata=metadata, options=None, vaulted=True)

    def complete(self, payment_id: str, *, options: Mapping[str, Any] | None = None,
                 idempotency_key: str | None = None) -> Payment:
        """Finish a payment after the buyer acted (3-D Secure, approval). `options` carries what
        the buyer's return brought that the provider needs to finish (e.g. Adyen's
        `redirectResult`); it reaches the plugin as `subject.options`.

        After a decline (of the first operation, or of a completion) it answers the payment once
        the buyer paid what the declined request left (a Stripe PaymentIntent, with another card):
        the provider is read first, so that is known before its event comes. Refused otherwise;
        for a payment naming what the request left, `error.details["reconciled"]` says whether
        that read was made."""
        require_options(options)
        given = {"options": dict(options)} if options else {}
        try:
            return self._follow_up(K.COMPLETE, payment_id, idempotency_key,
                                   lambda payment, _, __: (payment.amount, given))
        except StateError as exc:
            if exc.code not in ("not_action_required", "payment_final"):
                raise
            # The buyer finished, after an action or a decline (paying what the declined request
            # left with another card, as Stripe lets them), and the provider's event said so
            # before the buyer came back, or the provider is read now: the payment is what
            # completing it would have made.
            payment, checked = self._paid_since(self.get_payment(payment_id))
            exc.details.update(checked)
            waited = any(t.kind in K.INITIAL and t.status in (S.ACTION_REQUIRED, S.FAILED)
                         for t in self.list_transactions(payment_id))
            if payment.authorized.minor and payment.state not in PaymentState.FINAL and waited:
                return payment
            raise

    def capture(self, payment_id: str, amount: Money | None = None, *, final: bool | None = None,
                idempotency_key: str | None = None) -> Payment:
        """Capture `amount` (all that is left when None) of an authorization.

        `final` (default: unless the method allows several captures) releases what remains.
        """
        if amount is not None:
            require_money(amount, K.CAPTURE)
        require_instance(final, bool, "final")  # a str such as "no" is true

        def resolve(payment: Payment, txns: Sequence[Transaction],
                    caps: Capabilities) -> tuple[Money | None, dict[str, Any]]:
            due = rules.capturable(payment, txns, caps) - rules.in_flight(payment, txns).captures if amount is None else amount
            return due, {"final": bool(not caps.capture_multiple if final is None else final)}

        return self._follow_up(K.CAPTURE, payment_id, idempotency_key, resolve, defaulted=amount is None)

    def void(self, payment_id: str, *, reason: str | None = None, idempotency_key: str | None = None) -> Payment:
        """Release an authorization that has no capture, or cancel a payment still waiting for its
        buyer where the method's gateway declares `cancel_waiting` (elsewhere that is refused with
        `UnsupportedOperation`, code `no_cancel_waiting`, before anything is recorded or sent).
        Where it declares `void_after_capture`, also release what a partly captured authorization
        has left: the captures stand (and can be refunded), nothing more can be captured."""
        require_str(reason, "reason")
        return self._follow_up(K.VOID, payment_id, idempotency_key, lambda *_: (None, {"reason": reason}))

    def refund(self, payment_id: str, amount: Money | None = None, *, reason: str | None = None,
               idempotency_key: str | None = None) -> Payment:
        """Refund `amount` (when None, everything captured that is not refunded or being refunded)."""
        if amount is not None:
            require_money(amount, K.REFUND)
        require_str(reason, "reason")

        def resolve(payment: Payment, txns: Sequence[Transaction],
                    caps: Capabilities) -> tuple[Money | None, dict[str, Any]]:
            due = payment.refundable - rules.in_flight(payment, txns).refunds if amount is None else amount
            return due, {"reason": reason}

        return self._follow_up(K.REFUND, payment_id, idempotency_key, resolve, defaulted=amount is None)

    def vault(self, method: str, source: str, *, customer: Customer | None = None,
              idempotency_key: str | None = None) -> Transaction:
        """Store a payment method for later charges; the succeeded transaction's `token` is the
        reusable token and `provider_reference` the provider's customer id, if it made one.

        Without a key, each call is a new vault, as a first payment is (the source alone need not
        tell one buyer's request from another's: PayPal's "paypal"): give a key to make its
        retries safe."""
        params = self._vault_params(source, customer)
        self._require_vault(method, K.VAULT)
        txn = self._execute(_Op(K.VAULT, method, None, None, params, idempotency_key, customer=customer))
        assert isinstance(txn, Transaction)
        return txn

    def unvault(self, method: str, token: str, *, customer: Customer | None = None,
                idempotency_key: str | None = None) -> Transaction:
        """Remove a stored payment method. Naming `customer.reference`, a token another customer
        holds is refused (`InvalidRequest`, code `customer_mismatch`) and stays stored: the
        provider's deletion names no customer, so the token is read first (a read that gets no
        answer deleted nothing: a retryable failure). Without a key, calling it again for the
        token after an unknown outcome is that unvault's retry, under its key (see `_open_unvault`)."""
        params = self._vault_params(token, customer)
        self._require_vault(method, K.UNVAULT)
        key = idempotency_key or self._open_unvault(method, params)
        txn = self._execute(_Op(K.UNVAULT, method, None, None, params, key, customer=customer))
        assert isinstance(txn, Transaction)
        return txn

    def _require_vault(self, method: str, kind: str) -> None:
        """Refuse a vault or unvault on a method that keeps no payment methods (its provider has
        no vault, or the configuration switched it off: `can_vault = false`) before anything is
        recorded or sent."""
        if not self._capabilities(method).vault:
            raise UnsupportedOperation(f"payment method {method!r} does not support {kind} (it keeps no payment "
                                       "methods; see its can_vault setting); nothing was recorded or sent",
                                       code="no_vault")

    @staticmethod
    def _vault_params(source: str, customer: Customer | None) -> dict[str, Any]:
        require_source(source)
        require_customer(customer)
        return {"source": source, "customer_reference": customer.reference if customer else None,
                "customer_id": customer.id if customer else None}

    @reads("the unvault was not sent: try again once it is back")
    def _open_unvault(self, method: str, params: Mapping[str, Any]) -> str | None:
        """The key of an unvault of this token on `method` that has no outcome yet (unknown, or
        still being sent). A new key would make the call a new request: the provider, which
        deleted the method the first time, refuses it as not found, and the unvault was recorded
        failed although the method is gone. Only open ones are matched: a token that is vaulted
        again after its deletion (a provider that lets the shop name it) is deleted again."""
        fields = {"amount": None, "currency": None, **params}  # as `_begin` fingerprints it
        fp = fingerprint(K.UNVAULT, method, None, fields)
        found = [t for t in self.ledger.list_transactions(statuses=[S.UNKNOWN, S.PENDING], limit=_OPEN_SCAN)
                 if t.kind == K.UNVAULT and t.payment_id is None and t.method == method
                 and same_operation(t.fingerprint, fp, K.UNVAULT, method, None, fields)]
        return found[-1].idempotency_key if found else None

    def retry(self, transaction_id: str) -> Payment | Transaction:
        """Send an unknown, abandoned or retryably failed transaction again, with its original key.

        The provider deduplicates by the key, so an operation that did take effect is not
        repeated. Returns what the operation returns (a `Payment`, or the vault `Transaction`).
        """
        return self._send_again(self.get_transaction(transaction_id), finish_only=False)

    def resend_unfinished(self, transaction_id: str) -> Payment | Transaction:
        """Finish a first operation the provider holds made but unfinished (reconciliation's
        `Settlement.resend`, `CommandResult.unfinished`): the Janitor's resend. Unlike `retry()`
        it is never a new request, so a request the ledger does not keep whole (the order's or
        buyer's details) is resent too, with what the ledger keeps: only an unknown or abandoned
        attempt is sent again, as a resend (`CommandContext.resent`), whose command finds what the
        earlier one made under the key and finishes it, and writes nothing where it finds
        nothing (its outcome stays unknown). A transaction settled meanwhile is answered as
        recorded, a retryably failed one too (never a new attempt)."""
        txn = self.get_transaction(transaction_id)
        if txn.kind not in (K.AUTHORIZE, K.SALE):
            raise attach(InvalidRequest(
                f"transaction {txn.id} is a {txn.kind}: only a first operation is finished by a resend; call "
                "retry() (nothing was sent)", param="transaction_id"), txn.payment_id, txn.id)
        # Whether reconciliation marked it is decided on the row as locked (`_begin`): read here,
        # another worker's resend could be between its claim and its outcome.
        return self._send_again(txn, finish_only=True)

    @staticmethod
    def _require_unfinished(txn: Transaction) -> None:
        """Refuse a finish-only resend of `txn`, read under its key's and payment's locks, unless
        it is settled or reconciliation marked it made but unfinished at the provider."""
        if txn.open and not unfinished(txn):
            # What the ledger keeps is resent only to a provider known to hold the operation made:
            # one that never arrived would be made from it, without the details it does not keep.
            raise attach(StateError(
                f"transaction {txn.id} is not known to be made but unfinished at the provider: reconcile() finds "
                "that out; until it has, call retry() (nothing was sent)", code="not_unfinished"),
                txn.payment_id, txn.id)

    def _send_again(self, txn: Transaction, *, finish_only: bool) -> Payment | Transaction:
        if txn.origin != "service":
            raise InvalidRequest(f"transaction {txn.id} was reported by the provider; there is nothing to resend",
                                 param="transaction_id")
        params = {k: v for k, v in txn.request.items()
                  if k not in ("reference", "command", "amount_defaulted", "unstored", _STEP_KEYS)}
        if not finish_only and (_masked(params) or txn.request.get("unstored")) and (
                txn.resendable(self.ledger.now()) or (txn.status == S.FAILED and txn.retryable)):
            # The ledger keeps the request redacted, and not all of it (see `_request_summary`):
            # sending what it kept under the key would be another request (refused by the
            # provider as a reused key, or applied without what the caller gave). A resend that
            # only finishes what the provider holds needs none of it (`resend_unfinished`).
            raise attach(InvalidRequest(
                f"transaction {txn.id}'s request is not stored whole (values masked as secrets, or the order's "
                "or buyer's details), so it cannot be resent as it was; call the operation again with its "
                f"parameters and idempotency key {txn.idempotency_key!r}; nothing was sent", param="transaction_id",
                code="request_not_stored",
            ), txn.payment_id, txn.id)
        scope = None if txn.kind in (K.AUTHORIZE, K.SALE) else txn.payment_id
        return self._execute(_Op(txn.kind, txn.method, scope, txn.amount, params, txn.idempotency_key,
                                 fingerprint=txn.fingerprint, finish_only=finish_only))

    @reads("nothing was recorded: settle it again once it is back")
    def settle_vault(self, transaction_id: str, *, token: str | None = None, customer_reference: str | None = None,
                     nothing_stored: bool = False) -> Transaction:
        """Record what the caller found at the provider about a vault whose outcome is unknown:
        the payment method it stored, as `token` (and `customer_reference`, the customer the vault
        made, if it made one), or `nothing_stored=True`; exactly one of the two. Returns the vault
        transaction as recorded, settled by the caller (`settled_by` "caller").

        `reconcile()` cannot ask the provider about a vault (it is no payment), and one whose
        provider keeps no idempotency key for it (Braintree) cannot be sent again: it stays
        unknown, reported by every `reconcile()`, until the caller checks with the provider and
        records what it found here. Nothing is sent.

        Only an unknown vault is settled, once: any other transaction, or a vault settled
        meanwhile (its late answer, another call), raises `InvalidRequest` or `StateError` and
        changes nothing. `nothing_stored` is refused while the vault's request may still land."""
        require_text(transaction_id, "transaction_id")
        require_instance(nothing_stored, bool, "nothing_stored")  # a str such as "no" is true
        if nothing_stored:
            if token is not None or customer_reference is not None:
                raise InvalidRequest("give either the token the provider stored or nothing_stored=True, not both; "
                                     "nothing was recorded", param="nothing_stored")
        elif token is None:
            raise InvalidRequest("give the token of the payment method the provider stored, or nothing_stored=True "
                                 "if it stored none; nothing was recorded", param="token")
        else:
            require_source(token, "token")
            require_text(customer_reference, "customer_reference")
            if isinstance(customer_reference, str) and not customer_reference.strip():
                raise InvalidRequest(f"customer_reference {customer_reference!r} is empty or blank: give the "
                                     "provider's customer id, or none; nothing was recorded",
                                     param="customer_reference")
            refuse_card_numbers({"token": token, "customer_reference": customer_reference})
        txn = self.get_transaction(transaction_id)
        with self.ledger.unit() as u:
            # The key's lock, as a resend of the vault under its key takes it: the two queue.
            u.lock_key(self._account(txn.method), txn.idempotency_key)
            current = u.transaction(txn.id)
            assert current is not None
            at = u.now()
            self._require_unknown_vault(current, nothing_stored, at)
            settled = settled_by_caller(current, token, customer_reference, at)
            if not u.overrule(settled, status=S.UNKNOWN):  # its late answer was recorded meanwhile
                raise self._not_settled(settled, "it was settled meanwhile (its late answer recorded)")
            u.set_looks({txn.id: None})
        return settled

    @staticmethod
    def _require_unknown_vault(txn: Transaction, nothing_stored: bool, at: datetime) -> None:
        """Refuse to settle `txn` by the caller unless it is a vault whose outcome is unknown (and,
        to record that nothing was stored, whose request can no longer land at `at`)."""
        if txn.kind != K.VAULT:
            raise attach(InvalidRequest(
                f"transaction {txn.id} is a {txn.kind}, not a vault: settle_vault() records only a vault's outcome "
                "(reconcile() settles a payment's operations); nothing was recorded",
                param="transaction_id", code="not_a_vault"), txn.payment_id, txn.id)
        if txn.status == S.PENDING:
            raise PaymentService._not_settled(txn, "its request is still being sent, or its worker stopped; wait for "
                                                   "its outcome (reconcile() marks it unknown once its request can "
                                                   "no longer land)")
        if txn.status != S.UNKNOWN:
            raise PaymentService._not_settled(txn, f"it is already {txn.status}"
                                                   + (f" (settled by {txn.settled_by})" if txn.settled_by else "")
                                                   + ", and only an unknown vault is")
        if nothing_stored and not txn.expired(at):
            raise PaymentService._not_settled(
                txn, f"its request may still land until {txn.settle_after:%Y-%m-%d %H:%M:%S} UTC, and store the "
                     "payment method then; check with the provider again after that")

    @staticmethod
    def _not_settled(txn: Transaction, why: str) -> StateError:
        error = StateError(f"vault transaction {txn.id} cannot be settled by the caller: {why}; nothing was "
                           "recorded", code="not_unknown")
        attach(error, txn.payment_id, txn.id)
        return error

    # -- reads ----------------------------------------------------------------------------------
    @reads(_UNREAD)
    def get_payment(self, payment_id: str) -> Payment:
        require_text(payment_id, "payment_id")  # PostgreSQL's ledger refuses a NUL untyped, SQLite's finds none
        payment = self.ledger.get_payment(payment_id)
        if payment is None:
            raise InvalidRequest(f"no payment {payment_id!r} in the ledger", param="payment_id",
                                 code="payment_not_found")
        return payment

    @reads(_UNREAD)
    def list_payments(self, *, method: str | None = None, state: str | None = None, order_id: str | None = None,
                      limit: int = 100, offset: int = 0) -> list[Payment]:
        for param, value in (("method", method), ("state", state), ("order_id", order_id)):
            require_text(value, param)
        require_choice(state, PAYMENT_STATES, "state")
        require_count(limit, "limit")
        require_count(offset, "offset")
        return self.ledger.list_payments(method=method, state=state, order_id=order_id, limit=limit, offset=offset)

    @reads(_UNREAD)
    def get_transaction(self, transaction_id: str) -> Transaction:
        require_text(transaction_id, "transaction_id")
        txn = self.ledger.get_transaction(transaction_id)
        if txn is None:
            raise InvalidRequest(f"no transaction {transaction_id!r} in the ledger", param="transaction_id",
                                 code="transaction_not_found")
        return txn

    @reads(_UNREAD)
    def list_transactions(self, payment_id: str | None = None, *, statuses: Sequence[str] = ()) -> list[Transaction]:
        require_text(payment_id, "payment_id")
        if isinstance(statuses, str):  # a sequence of letters, each matching nothing
            raise InvalidRequest(f"statuses must be a list of statuses, not the str {statuses!r}: "
                                 f"write [{statuses!r}]", param="statuses")
        for status in statuses:
            require_text(status, "statuses")
            require_choice(status, TRANSACTION_STATUSES, "statuses")
        return self.ledger.list_transactions(payment_id=payment_id, statuses=statuses)

    # -- the engine -----------------------------------------------------------------------------
    def _capabilities(self, method: str) -> Capabilities:
        caps = self._caps.get(method)
        if caps is None:
            caps = self._caps[method] = self.gateway.method(method).capabilities
        return caps

    def _initial(self, kind: str, method: str, amount: Money, *, source: str, order_id: str | None,
                 order: Order | None, customer: Customer | None, key: str | None, return_url: str | None,
                 metadata: Mapping[str, str] | None, options: Mapping[str, Any] | None,
                 vaulted: bool = False) -> Payment:
        # The usual inputs pass without a call: `Money` itself, and a token in ASCII (text,
        # not blank, without a NUL: what `require_source` passes, without its three calls); anything
        # else is asked in full.
        if type(amount) is not Money:
            require_money(amount, kind)
        if not (type(source) is str and source.isascii() and "\x00" not in source and source.strip()):
            require_source(source)
        # The optional inputs are checked only when given (each check passes None), in the same order.
        if order is not None:
            require_instance(order, Order, "order")
        if customer is not None:
            require_customer(customer)
        if options is not None:
            require_options(options)
        if order_id is not None:
            require_indexed(order_id, "order_id")
        if return_url is not None:
            require_not_empty(return_url, "return_url")
            require_return_url(return_url)  # kept with the buyer's action, in a column of its own
        if metadata is not None:
            require_metadata(metadata)
        if order is not None:
            require_indexed(order.id, "order.id")
            require_customer(order.customer, "order.customer")
        if amount.minor <= 0:
            raise InvalidRequest(f"the amount must be positive, got {amount}", param="amount")
        if order_id is not None:
            require_not_empty(order_id, "order_id")
        if order is not None:
            require_not_empty(order.id, "order.id")
        if order is not None and order_id is not None and order.id != order_id:
            raise InvalidRequest(f"order_id {order_id!r} differs from order.id {order.id!r}", param="order_id")
        caps = self._capabilities(method)
        if not getattr(caps, kind):
            raise UnsupportedOperation(f"payment method {method!r} does not support {kind}; nothing was sent",
                                       code=f"no_{kind}")
        if vaulted and not caps.vault:
            raise UnsupportedOperation(f"payment method {method!r} cannot charge vaulted payment methods",
                                       code="no_vault")
        order_id = order.id if order is not None else order_id
        buyer = customer or (order.customer if order is not None else None)
        params = {
            "source": source, "order_id": order_id, "return_url": return_url, "vaulted": vaulted,
            "customer_reference": buyer.reference if buyer else None, "customer_id": buyer.id if buyer else None,
            "metadata": dict(metadata or {}), "options": dict(options or {}),
        }
        at = self.ledger.now()
        zero = Money.zero(amount.currency)
        # Every field given, each in its final form (no converter to run, no default to fill in):
        # made as a ledger row's payment is, without `build`'s checks of what was given.
        payment = restored(Payment, {
            "id": new_id("pay"), "method": method, "flow": K.SALE if kind == K.SALE else K.AUTHORIZE, "amount": amount,
            "state": PaymentState.PENDING, "authorized": zero, "captured": zero, "refunded": zero,
            "observed_authorized": zero, "observed_captured": zero, "observed_refunded": zero,
            "capture_closed": False, "voided": False, "failed": False, "reference": None, "references": _EMPTY,
            "order_id": order_id, "customer_reference": buyer.reference if buyer else None,
            "token": source if vaulted else None, "action": None, "created_at": at, "updated_at": at,
        })
        result = self._execute(_Op(kind, method, None, amount, params, key, create=payment, order=order,
                                   customer=buyer))
        assert isinstance(result, Payment)
        return result

    def _follow_up(self, kind: str, payment_id: str, key: str | None, resolve: _Resolve, *,
                   defaulted: bool = False) -> Payment:
        require_text(payment_id, "payment_id")
        result = self._execute(_Op(kind, "", payment_id, None, {}, key, resolve=resolve, defaulted=defaulted))
        assert isinstance(result, Payment)
        return result

    @staticmethod
    def _resolved(op: _Op, payment: Payment, txns: Sequence[Transaction], caps: Capabilities,
                  earlier: Transaction | None = None) -> _Op:
        """`op` with its amount and parameters decided on the payment as locked. An amount left
        to the default that the key's operation (`earlier`) was also sent with is that
        operation's: what is left now no longer counts what that operation spent."""
        assert op.resolve is not None
        amount, params = op.resolve(payment, txns, caps)
        if (op.defaulted and earlier is not None and earlier.kind == op.kind and earlier.payment_id == op.payment_id
                and earlier.request.get("amount_defaulted") is True):
            amount = earlier.amount
        if amount is not None:
            params = {**params, "amount": amount.format(), "currency": amount.currency}
        return _Op(op.kind, payment.method, op.payment_id, amount, params, op.key, defaulted=op.defaulted)

    def _execute(self, op: _Op) -> Payment | Transaction:
        if op.key is not None:
            require_key(op.key)
        try:
            try:
                plan = self._begin(op)
            except LedgerIntegrityError:
                if not op.key:
                    raise
                plan = self._begin(op)  # a duplicate recorded the key first; now it is found and waited for
        except Exception as exc:
            reason = self.ledger.unavailable(exc)
            if reason is None:
                raise
            raise LedgerUnavailable(f"the ledger's database is unavailable ({reason}); the {op.kind} was not sent: "
                                    "try again once it is back", code="ledger_unavailable") from exc
        if plan.action == "replay":
            return self._replay(plan.txn)
        if plan.action == "wait":
            return self._replay(self._wait(plan.txn))
        op = plan.op or op
        txn = plan.txn
        assert plan.rehearsal is not None
        outcome: CommandResult | BaseException
        try:
            outcome = self.gateway.perform(plan.rehearsal, resent=plan.resent)
            outcome = unreadable(txn, outcome) or outcome  # what a first operation holds must be told
        except BuyerActionRequired as exc:  # a plugin that signals buyer action by raising
            outcome = CommandResult(status="action_required",
                                    action=BuyerAction(exc.redirect_url or "", None) if exc.redirect_url else None)
        except Exception as exc:  # noqa: BLE001 - every failure is recorded before it propagates
            # A resend's proof that *it* was not applied says nothing of the send before it.
            outcome = after_unsure(exc) if plan.resent and isinstance(exc, PaywireError) else exc
        except BaseException as exc:  # KeyboardInterrupt, SystemExit: leave it unknown, then stop
            try:
                self._finish(op, txn, exc)
            except Exception:  # noqa: BLE001 - the ledger failing too: it stays pending, settled later
                # The interrupt must still stop the caller, not the ledger's error after sending.
                log.warning("%s transaction %s: interrupted after sending, and not recorded", txn.kind, txn.id)
            # what it left unknown, and the key that settles it
            exc.__dict__.update(payment_id=txn.payment_id, transaction_id=txn.id, idempotency_key=txn.idempotency_key)
            raise
        try:
            return self._answer(op, plan, txn, outcome)
        except BaseException as exc:
            if not isinstance(exc, Exception):
                # Stopped (KeyboardInterrupt, SystemExit) once the provider answered: while its
                # answer was recorded (the unit rolled back, the transaction left open, settled
                # later), or after. The stop names the transaction, as one while the provider is
                # asked does: never a stop before anything was sent, which a caller takes for
                # nothing done, and repeats without its key.
                exc.__dict__.update(payment_id=txn.payment_id, transaction_id=txn.id,
                                    idempotency_key=txn.idempotency_key)
            raise

    def _answer(self, op: _Op, plan: _Plan, txn: Transaction,
                outcome: CommandResult | BaseException) -> Payment | Transaction:
        """Record the provider's answer (or the failure) to `txn`, sent as `plan` planned, and
        answer the caller."""
        try:
            recorded = self._finish(op, txn, outcome, plan.known, resent=plan.resent)
        except Exception:  # noqa: BLE001 - e.g. a connection lost meanwhile: the unit rolled back
            # The provider's answer is in hand: record it once more, on a new connection. The unit
            # is idempotent (it writes only a transaction still pending as this call left it).
            try:
                recorded = self._finish(op, txn, outcome, resent=plan.resent)
            except Exception as lost:
                # Sent, and not recorded (the ledger busy, unreachable, refusing the write): the
                # transaction stays pending, and is settled from the provider once its request can
                # no longer land (never failed).
                said = f"the {txn.kind} was sent but its outcome could not be recorded, so it is unknown; {self._settles(txn)}"
                unknown = (OutcomeUnknown.instead_of(lost, said) if isinstance(lost, PaywireError) else
                           OutcomeUnknown(f"{type(lost).__name__}: {redact(str(lost))}; {said}"))
                raise attach(unknown, txn.payment_id, txn.id) from lost
        txn, payment, owes = recorded
        if txn.settled_by == SettledBy.CALLER:
            _require_callers_record_agrees(txn, outcome)
        if owes:
            assert payment is not None
            # The outcome stands either way. A refusal is raised, `details["reconciled"]` saying
            # whether the payment now follows the provider, else `reconcile_error` why not; a
            # success returns the payment as the provider now holds it (a resend's answer may be
            # the provider's stored answer to the first attempt, as Stripe replays it).
            why = self._catch_up(payment.id)
            if isinstance(outcome, PaywireError):
                outcome.details.update(reconciled=why is None, **({"reconcile_error": why} if why else {}))
            elif why is None:
                try:
                    payment = self.get_payment(payment.id)
                except Exception:  # noqa: BLE001 - the ledger gone again: the outcome stands, recorded
                    # Answered as this operation's unit recorded it, never as an error: a caller
                    # without its key would take an error for an operation still to make.
                    log.warning("payment %s: read back after its catch-up failed; answered as recorded", payment.id)
        return self._conclude(txn, payment, outcome)

    def _catch_up(self, payment_id: str) -> str | None:
        """Read the provider for the payment as `reconcile(payment_id=...)` does, so the ledger
        claims no more than the provider holds, when an answer says the ledger is behind it: a
        refusal saying the provider's payment is not as the ledger holds it
        (`PaywireError.state_conflict`: an authorization that lapsed), or a success naming a
        state further on than the operation made (`rules.behind`: a retry under the key finding
        what an earlier attempt made, voided, expired or refunded since), or any resend's success
        (perhaps the stored answer to the first attempt), or a received event (`_apply_received`).
        None once the payment follows the provider; otherwise why it could not be read. The unit
        that recorded what made it owe the read marked it so (`_owe_read`), and the read that
        settles it clears the mark: failing, or never made (the worker stopped), the payment stays
        as recorded until `reconcile()` or the Janitor reads it (on their schedule), or the
        provider's event."""
        try:
            self._settle_fetched(payment_id, self.ledger.now())
        except Exception as exc:  # noqa: BLE001 - the operation's own outcome is what the caller gets
            return _why(exc)
        return None

    def _settle_after(self, method: str, kind: str) -> datetime:
        """When a request of `kind` sent from now on can no longer land (see `margin`): a
        deadline by the ledger's clock, which every host sharing the ledger reads it against."""
        life = self._lives.get((method, kind))
        if life is None:
            life = self._lives[method, kind] = self.gateway.longest_life(method, kind)
        return self.ledger.deadline(life + self.margin)

    def _ready(self, u: LedgerUnit, op: _Op, txn: Transaction, payment: Payment | None,
               known: _Known | None = None, *, resent: bool = False) -> _Plan:
        """The plan to send `txn`, once rehearsed: whatever would refuse it before sending raises
        here, inside the unit that records it, so a refused operation leaves nothing behind."""
        rehearsal = self.gateway.rehearse(op.method, op.kind, self._subject(op, txn, payment), resent=resent)
        return _Plan("send", txn, op, rehearsal, known, resent)

    def _begin(self, op: _Op) -> _Plan:
        with self.ledger.unit() as u:
            payment, txns = self._lock(u, op)
            at = u.now()  # with the locks held: what other workers recorded is as of now
            # A new payment's method was asked for its capabilities a moment ago (`_initial`):
            # nothing here reads them unless it is sent again after a failure.
            caps = self._capabilities(payment.method if payment else op.method) if op.create is None else None
            if op.resolve is not None:
                assert payment is not None
                earlier = None
                if op.defaulted:  # the operation this same call made: replayed, or sent again
                    earlier = self._by_key(u, payment.method, op.key) if op.key else next(
                        (t for t in reversed(txns) if t.kind == op.kind and t.resendable(at)), None)
                assert caps is not None
                op = self._resolved(op, payment, txns, caps, earlier)
            if op.amount is not None and op.amount.minor != 0:  # `if op.amount`, without `Money.__bool__`'s calls
                fields = {"amount": op.amount.minor, "currency": op.amount.currency, **op.params}
            else:  # none, or a zero amount: fingerprinted as none, as ever
                fields = {"amount": None, "currency": None, **op.params}
            if op.kind == K.VAULT:
                fields["buyer"] = _buyer(op.customer)
            fp = op.fingerprint or fingerprint(op.kind, op.method, op.payment_id, fields)
            existing = (self._by_key(u, op.method, op.key) if op.key
                        else self._reusable(txns, op, fp, fields, at) if txns else None)
            if existing is None and op.key:  # a key the ledger holds stays its operation's (see the functions)
                require_unpadded_key(op.key)
                require_callers_key(op.key)
            if existing is not None and payment is None and existing.payment_id is not None:
                # A first operation's retry holds only its key so far; reconciliation settles the
                # transaction under its payment's lock: take that too (key, then payment) and look
                # again, or a conclusion read before this claim would overwrite the resend.
                u.payment(existing.payment_id, lock=True)
                existing = self._by_key(u, op.method, op.key) if op.key else None
            if existing is not None:
                if existing.method != op.method:  # the provider account's key, used on its other method
                    raise attach(IdempotencyConflict(
                        f"idempotency key {existing.idempotency_key!r} was used on method {existing.method!r} for a "
                        f"{existing.kind} (one provider account, one key space); use a new key for a new operation",
                        code="idempotency_key_reused",
                    ), existing.payment_id, existing.id)
                if not same_operation(existing.fingerprint, fp, op.kind, op.method, op.payment_id, fields):
                    raise attach(IdempotencyConflict(
                        f"idempotency key {existing.idempotency_key!r} was used for a different {existing.kind}; "
                        "use a new key for a new operation", code="idempotency_key_reused",
                    ), existing.payment_id, existing.id)
                if op.finish_only:  # its claim, if any, keeps the mark: a resend racing it waits for it
                    self._require_unfinished(existing)
                if existing.status == S.PENDING and not existing.expired(at):
                    return _Plan("wait", existing)
                if existing.resendable(at):  # unknown or abandoned: resend with the same key
                    at = u.now()
                    settle_after = self._settle_after(existing.method, existing.kind)
                    self._check_key_kept(existing, settle_after)
                    claimed = replace(existing, status=S.PENDING, updated_at=at, settle_after=settle_after)
                    u.update_transaction(claimed)
                    # Sent again, it is no longer open: reconciliation's schedule forgets its looks
                    # (its outcome may come with this send's answer; if not, it is due once expired).
                    u.set_looks({existing.id: None})
                    return self._ready(u, op, claimed, payment, resent=True)
                if existing.status == S.FAILED and existing.retryable and not op.finish_only:
                    attempt, locked = self._new_attempt(u, op, existing,
                                                        caps if caps is not None else self._capabilities(op.method))
                    return self._ready(u, op, attempt, locked)
                return _Plan("replay", existing)
            if op.finish_only:  # never reached: the transaction was read under this key
                raise InvalidRequest(f"no transaction under idempotency key {op.key!r} to finish; nothing was sent",
                                     param="transaction_id", code="transaction_not_found")
            txn_id = new_id("txn")
            if op.create is not None:
                u.insert_payment(op.create)
                owner, target, parent = op.create.id, None, None
            elif payment is not None:
                assert caps is not None  # read above for every operation but a new payment's
                parent = self._check(u, op, payment, txns, caps)
                owner = payment.id
                target = self._target(op.kind, payment, parent)
            else:  # vault, unvault
                owner, target, parent = txn_id, None, None
            sequence = 1 + len({t.idempotency_key for t in txns if t.kind == op.kind}) if txns else 1
            if op.create is None:  # a new payment's unit has read nothing since it took the time
                at = u.now()
            # Every field given in its final form, as `restored` takes them (the summary is this
            # unit's own dict, read-only from here on): no `build` checks, defaults or converters.
            txn = restored(Transaction, {
                "id": txn_id, "payment_id": op.create.id if op.create else op.payment_id, "method": op.method,
                "kind": op.kind, "amount": op.amount, "status": S.PENDING,
                "idempotency_key": op.key or derived_key(owner, op.kind, sequence), "attempt": 1, "fingerprint": fp,
                "provider_reference": None, "parent_id": parent.id if parent else None, "origin": "service",
                "error_type": None, "error_code": None, "error_message": None, "retryable": False, "token": None,
                "request": MappingProxyType(self._request_summary(op, target)), "response": _EMPTY,
                "created_at": at, "updated_at": at, "finished_at": None,
                "settle_after": self._settle_after(op.method, op.kind), "settled_by": None,
            })
            u.insert_transaction(txn)
            held = op.create or payment
            mark = u.mark() if held is not None else None
            known = None
            if held is not None and mark is not None:
                # In the ledger's order (created_at, then id), as a fresh read would give them.
                known = _Known(held, sorted([*txns, txn], key=_LEDGER_ORDER) if txns else [txn], mark)
            return self._ready(u, op, txn, held, known)

    def _check_key_kept(self, txn: Transaction, lands_by: datetime) -> None:
        """Refuse to resend `txn` if its request could land after the provider may have dropped
        its idempotency key (`GatewayDefinition.key_lives`): the provider would apply it again,
        a second charge if the first send took effect. Reconciliation settles it instead."""
        life = self.gateway.method(txn.method).definition.key_lives.get(txn.kind)
        if life is None or lands_by <= txn.created_at + timedelta(seconds=life):
            return
        kept = (f"keeps its idempotency key for {life / 3600:g} hours from {txn.created_at:%Y-%m-%d %H:%M:%S} UTC"
                if life else f"keeps no idempotency key for {txn.kind}")
        settle = ("run reconcile() to settle it" if txn.payment_id else
                  f"{_ask_the_provider(txn.kind)} (there is no payment to reconcile)")
        raise attach(OutcomeUnknown(
            f"the outcome of {txn.kind} transaction {txn.id} is unknown, and the provider {kept}: sent again now it "
            f"could be applied twice; {settle} (nothing was sent)",
            code="idempotency_key_expired",
        ), txn.payment_id, txn.id)

    def _by_key(self, u: LedgerUnit, method: str, key: str) -> Transaction | None:
        """The latest attempt under `key` on `method`, else on another method of its
        provider account: the provider scopes the key to the account, so it is one key there."""
        return u.transaction_by_key(method, key, siblings=self._key_space(method)[1:])

    def _account(self, method: str) -> str:
        """The name a key is locked under: one for all the methods of a provider account (their
        first code), so duplicates on two of them queue on one lock."""
        return min(self._key_space(method))

    def _key_space(self, method: str) -> tuple[str, ...]:
        """`method` and the other methods of its provider account, which share its keys. Refused
        (retryable; nothing is recorded or sent) while a `get_secret` hook fails to tell which they
        are: a key used on another method of the account would be neither found (a second payment
        holding the first's provider object) nor locked under the name the other workers use (two
        sends of one key at once)."""
        siblings = self._siblings(method)
        if method not in self._siblings_of:  # not remembered: a secrets hook failed (see `_siblings`)
            raise ConfigurationError(
                f"which methods share method {method!r}'s provider account (and so its idempotency keys) cannot "
                "be told: a get_secret hook failed; nothing was recorded or sent; retry the same call",
                code="account_unknown", retryable=True)
        return (method, *siblings)

    def _lock(self, u: LedgerUnit, op: _Op) -> tuple[Payment | None, list[Transaction]]:
        """Take the unit's locks in the fixed order (idempotency key, then payment); the payment
        the operation acts on, if any, with its transactions."""
        if op.payment_id is None:
            if op.key:
                u.lock_key(self._account(op.method), op.key)
            return None, []
        if op.key:
            method = op.method
            if not method:  # a follow-up learns its method from the payment
                payment = u.payment(op.payment_id)
                method = payment.method if payment else ""
            u.lock_key(self._account(method), op.key)
        payment, txns = u.payment_and_transactions(op.payment_id, lock=True)
        if payment is None:
            raise InvalidRequest(f"no payment {op.payment_id!r} in the ledger", param="payment_id",
                                 code="payment_not_found")
        return payment, txns

    @staticmethod
    def _reusable(txns: Sequence[Transaction], op: _Op, fp: str, fields: Mapping[str, Any],
                  at: datetime) -> Transaction | None:
        """Without a caller key, a repeated call of an operation whose outcome is unknown (or
        failed retryably) is a retry of it: it reuses that transaction's key. (Every attempt under
        a key has the key's fingerprint, so the latest attempt speaks for the key.)"""
        if not txns:  # nothing recorded on the payment yet: nothing to retry
            return None
        latest = {txn.idempotency_key: txn for txn in txns if txn.kind == op.kind}
        if not latest:  # the first of its kind on the payment (a payment's first capture): nothing to retry
            return None
        candidates = [t for t in latest.values() if (t.resendable(at) or (t.status == S.FAILED and t.retryable))
                      and same_operation(t.fingerprint, fp, op.kind, op.method, op.payment_id, fields)]
        return candidates[-1] if candidates else None

    def _new_attempt(self, u: LedgerUnit, op: _Op, previous: Transaction,
                     caps: Capabilities) -> tuple[Transaction, Payment | None]:
        """The same operation under the same key, after a retryable failure; checked afresh.
        Returns it with its payment."""
        parent = None
        payment = None
        target = previous.request.get("reference")
        if previous.payment_id is not None:
            payment = u.payment(previous.payment_id, lock=True)
            assert payment is not None
            txns = u.transactions(payment.id)
            if previous.kind in (K.AUTHORIZE, K.SALE):
                # A first operation that never took effect may be sent again; a success revives
                # a payment it had failed.
                retryable_state = payment.state in (PaymentState.PENDING, PaymentState.FAILED)
                if not retryable_state or rules.in_flight(payment, txns).initial:
                    raise attach(StateError(f"payment {payment.id} is {payment.state}; the {previous.kind} "
                                            "cannot be retried", code="not_retryable"), payment.id, previous.id)
                if payment.failed:
                    # Sent again, the first operation may take effect: the payment is pending until
                    # this attempt's outcome says otherwise, never failed (a final state) while the
                    # provider may hold it, or wait for its buyer, as reconciliation may then find.
                    payment = rules.derive(payment, txns, failed=False, updated_at=u.now())
                    u.update_payment(payment)
            else:
                parent = self._check(u, op._replace(payment_id=payment.id), payment, txns, caps)
                # A void keeps the object its key was sent to: the payment's authorization may have
                # changed since (PayPal's reauthorization), and the same key sent to another would
                # void what the first attempt never named (PayPal voids a reauthorization through
                # its original, as a resend of an unknown void does).
                if previous.kind != K.VOID or not target:
                    target = self._target(previous.kind, payment, parent)
        at = u.now()
        txn = replace(
            previous, id=new_id("txn"), status=S.PENDING, attempt=previous.attempt + 1, provider_reference=None,
            parent_id=parent.id if parent else previous.parent_id, error_type=None, error_code=None,
            error_message=None, retryable=False, token=None, response={},
            request={**previous.request, "reference": target} if target else previous.request,
            created_at=at, updated_at=at, finished_at=None, settled_by=None,
            settle_after=self._settle_after(previous.method, previous.kind),
        )
        u.insert_transaction(txn)
        return txn, payment

    def _check(self, u: LedgerUnit, op: _Op, payment: Payment, txns: Sequence[Transaction],
               caps: Capabilities) -> Transaction | None:
        if op.kind == K.CAPTURE:
            assert op.amount is not None
            rules.check_capture(payment, txns, op.amount, caps, defaulted=op.defaulted,
                                reported=lambda: reported_waiting(u, payment, K.CAPTURE))
        elif op.kind == K.VOID:
            rules.check_void(payment, txns, caps)
        elif op.kind == K.REFUND:
            assert op.amount is not None
            return rules.check_refund(payment, txns, op.amount, caps, defaulted=op.defaulted,
                                      reported=lambda: reported_waiting(u, payment, K.REFUND))
        elif op.kind == K.COMPLETE:
            rules.check_complete(payment, txns, caps)
        else:
            raise InvalidRequest(f"{op.kind} does not act on an existing payment")
        return None

    @staticmethod
    def _target(kind: str, payment: Payment, parent: Transaction | None) -> str | None:
        """The provider object the command acts on (see the command contract)."""
        if kind == K.REFUND:
            return rules.refund_target(payment, parent)
        if kind == K.VOID:
            # Where the provider voids through another object than captures act on (PayPal: a
            # reauthorization only through the authorization it renews), the plugin names it.
            return (payment.references.get(VOID_TARGET) or payment.references.get("authorization")
                    or payment.reference)
        if kind == K.CAPTURE:
            return payment.references.get("authorization") or payment.reference
        return payment.reference

    @staticmethod
    def _request_summary(op: _Op, target: str | None) -> dict[str, Any]:
        """What was asked, redacted: what the caller or the provider wrote is scanned, the amount
        and the command (paywire's own words) need not be."""
        summary: dict[str, Any] = {"command": op.kind}
        for name, value in op.params.items():  # redacted as `redact` does a mapping's items, in one pass
            if value in _UNGIVEN:
                continue
            kept = _KEPT.get(name)
            if kept is None:
                kept = _KEPT[name] = _kept(name)
            if kept is _AS_GIVEN:
                # A flag holds no text to redact: `redact` would hand it back after its type checks.
                summary[name] = value if type(value) is bool else redact(value)
            elif kept is _MASKED:
                summary[name] = _MASK
        if op.amount is not None:
            summary["amount"], summary["currency"] = op.amount.format(), op.amount.currency
        if op.defaulted:
            summary["amount_defaulted"] = True  # the same call with its key resolves to this amount again
        # What was sent but is not kept (the order's items, addresses and description, the buyer's
        # contact): `retry()` cannot send this request again as it was.
        if op.order is not None or op.customer is not None:
            unstored = [name for name, given, kept in (
                ("order", op.order, op.order and Order(id=op.order.id, amount=op.amount)),
                ("customer", op.customer, op.customer and Customer(reference=op.customer.reference, id=op.customer.id)),
            ) if given is not None and given != kept]
            if unstored:
                summary["unstored"] = unstored
        if target:
            summary["reference"] = redact(target)
        if op.kind == K.VAULT:
            summary[_STEP_KEYS] = "own"  # see `_subject`
        return summary

    def _subject(self, op: _Op, txn: Transaction, payment: Payment | None) -> Subject:
        params = op.params
        customer = op.customer
        if customer is None and (params.get("customer_reference") or params.get("customer_id")):
            customer = Customer(reference=params.get("customer_reference"), id=params.get("customer_id"))
        order_id = params.get("order_id") or (payment.order_id if payment else None)
        order = op.order or (Order(id=order_id, amount=payment.amount if payment else op.amount) if order_id else None)
        if op.kind in (K.AUTHORIZE, K.SALE):  # the most frequent: its arguments given as they are, not unpacked
            return Subject(amount=txn.amount, source=params.get("source"), order=order,
                           return_url=params.get("return_url"), vaulted=bool(params.get("vaulted")),
                           metadata=params.get("metadata") or {}, options=params.get("options") or {},
                           idempotency_key=txn.idempotency_key, customer=customer)
        common: dict[str, Any] = {"idempotency_key": txn.idempotency_key, "customer": customer}
        if op.kind == K.VAULT:
            # A vault recorded without `_STEP_KEYS`, by a release that made its steps' keys in the
            # caller's key space, is resent with those keys: new ones would make it again.
            return Subject(source=params.get("source"), earlier_step_keys=_STEP_KEYS not in txn.request, **common)
        if op.kind == K.UNVAULT:
            return Subject(source=params.get("source"), **common)
        reference = txn.request.get("reference")
        if op.kind == K.COMPLETE:
            return Subject(reference=reference, amount=txn.amount, order=order, options=params.get("options") or {},
                           **common)
        if op.kind == K.CAPTURE:
            return Subject(reference=reference, amount=txn.amount, final=bool(params.get("final", True)),
                           order=order, **common)
        return Subject(reference=reference, amount=txn.amount, reason=params.get("reason"), order=order, **common)

    def _finish(self, op: _Op, txn: Transaction, outcome: CommandResult | BaseException,
                known: _Known | None = None, *, resent: bool = False) -> tuple[Transaction, Payment | None, bool]:
        """Record the outcome and recompute the payment; both as recorded, and whether the payment
        owes a read. `known`: the payment as the pending unit left it, read again only if the
        ledger changed since. An outcome that says the ledger is behind the provider
        (`_owes_read`; `resent`: the request was sent before) marks the payment as owing a read
        in the same unit, so no stop between recording it and the read loses that."""
        # The pending record had to be durable before sending; the outcome need not be: if a
        # power loss takes it (and the mark with it), the transaction is pending again and
        # reconciliation settles it from the provider.
        with self.ledger.unit(durable=False) as u:
            recorded, payment, before = self._record(u, txn, outcome, known)
            owes = payment is not None and (_owes_read(outcome, recorded, payment, resent) or (
                before is not None and _absorbed(u, *before, payment)))
            if owes:
                assert payment is not None
                self._owe_read(u, payment)
            elif payment is not None and payment.state == PaymentState.ACTION_REQUIRED:
                watch(u, payment, self.buyer_wait, u.now())
            return recorded, payment, owes

    def _record(self, u: LedgerUnit, txn: Transaction, outcome: CommandResult | BaseException,
                known: _Known | None) -> tuple[Transaction, Payment | None,
                                               tuple[Payment, Sequence[Transaction]] | None]:
        """`_finish`'s record of the outcome, in its unit: the transaction and payment as recorded,
        and the payment with its transactions as they were before (None when the outcome was not
        written, another record of the transaction standing, or the transaction has no payment)."""
        at = u.now()
        if isinstance(outcome, CommandResult):
            finished = succeeded(txn, outcome, at)
        elif is_unknown(outcome):
            finished = unknown(txn, outcome, at)
        else:
            finished = failed(txn, outcome, at)
        payment: Payment | None
        if known is not None and u.unchanged_since(known.mark):
            payment, txns = known.payment, known.txns
            recorded = u.finish_transaction(finished, claimed_at=txn.updated_at)
        else:
            payment, txns, recorded = u.finish_locked(txn.payment_id, finished, claimed_at=txn.updated_at)
        if not recorded:
            # Changed meanwhile: taken for abandoned (unknown), concluded not applied by
            # reconciliation, sent again, or settled by a webhook. The provider's own answer
            # wins over a guess; otherwise their record stands.
            current = next((t for t in txns if t.id == txn.id), None) or u.transaction(txn.id)
            assert current is not None
            if not self._overrules(u, finished, current, txns):
                return current, payment, None
        if payment is None:
            return finished, None, None
        before = payment, txns
        # The row just written is `finished`: no need to read it back.
        txns = [finished if t.id == finished.id else t for t in txns]
        payment = self._apply(u, payment, finished, outcome, txns)
        return finished, payment, before

    def _owe_read(self, u: LedgerUnit, payment: Payment) -> None:
        """Mark the locked payment as owing a read from the provider, due once the read its
        caller makes next (`_catch_up`) can no longer be under way: no other worker reads it
        meanwhile, and one reads it after, should that read fail or never be made. A mark already
        there keeps its looks and a later next look (a Janitor's backoff)."""
        lease = self._read_lease(payment.method)
        previous = u.owed_read(payment.id)
        u.set_owed_read(payment.id, Look(previous.looks, max(previous.next_at, lease)) if previous
                        else Look(0, lease))

    def _read_lease(self, method: str) -> datetime:
        """When a read of a payment of `method` begun from now on can no longer be under way (by
        the ledger's clock, as `_settle_after`)."""
        return self.ledger.deadline(self.gateway.longest_life(method, "fetch") + self.margin)

    @staticmethod
    def _overrules(u: LedgerUnit, answer: Transaction, current: Transaction, txns: Sequence[Transaction]) -> bool:
        """Record the request's own late answer over a guess: over unknown (taken for abandoned),
        or over reconciliation's "not applied" (retryable: the provider held no such operation)
        unless a later attempt under the same key (which gets the same answer from the provider)
        already carries the outcome. Never over a failure reconciliation read from the provider
        (a refund it reports failed): that reading is newer than the answer, which may tell of a
        success the provider undid since (a refund that failed after it succeeded)."""
        if answer.status in (S.UNKNOWN, S.PENDING):
            return False
        if current.status == S.UNKNOWN:
            if answer.status == S.FAILED and current.settle_after != answer.settle_after:
                # Resent under its key since (a claim gives it a new life): this send's failure
                # says nothing of whether the resend took effect.
                return False
            return u.overrule(answer, status=S.UNKNOWN)
        later = any(t.idempotency_key == current.idempotency_key and t.attempt > current.attempt for t in txns)
        if (current.status == S.FAILED and current.settled_by == SettledBy.RECONCILE and current.retryable
                and not later and answer.settled_by == SettledBy.ANSWER):
            return u.overrule(answer, status=S.FAILED)
        return False

    def _apply(self, u: LedgerUnit, payment: Payment, txn: Transaction,
               outcome: CommandResult | BaseException, txns: Sequence[Transaction]) -> Payment:
        refs = dict(payment.references)
        changes: dict[str, Any] = {"updated_at": txn.updated_at}  # when its outcome was recorded
        if isinstance(outcome, CommandResult):
            if outcome.references:  # a follow-up's answer often names none
                for k, v in outcome.references.items():  # a loop, not a dict comprehension's call
                    if v:
                        refs[k] = v
            if txn.kind in K.INITIAL:
                primary = payment.reference or outcome.references.get("payment") or outcome.reference
                if primary:
                    refs.setdefault("payment", primary)
                    changes["reference"] = primary
                if payment.flow == K.AUTHORIZE and outcome.reference:
                    refs["authorization"] = outcome.reference
                waiting = outcome.action_required
                changes["action"] = outcome.action if waiting else None
                changes["waiting"] = waiting
                if waiting and outcome.action is None:
                    # Still waiting without a new action for the buyer (completed before they
                    # approved): where they were sent last is where they still have to go, if
                    # anywhere was named (none is made up: the payment waits all the same).
                    changes["action"] = payment.action
                changes["failed"] = False
                if payment.flow == K.SALE and outcome.succeeded:
                    changes["capture_closed"] = True
            elif txn.kind == K.CAPTURE and txn.request.get("final") and outcome.succeeded:
                # An accepted final capture closes the payment once the provider says it succeeded
                # (its event, or reconciliation); until then it is in flight, and if the provider
                # refuses it the rest of the authorization is still there to capture (unless the
                # provider made it and keeps the authorization closed: `rules.closed_by_declined`).
                changes["capture_closed"] = True
            elif txn.kind == K.VOID and outcome.succeeded and payment.captured.minor > 0:
                # A void after a capture (`void_after_capture`) released the rest: the captures
                # stand, and nothing more can be captured, as after a final capture.
                changes["capture_closed"] = True
            elif txn.kind == K.VOID and outcome.succeeded:
                # An accepted void is in flight (no capture may start meanwhile): the payment is
                # voided once the provider says so (its event, or reconciliation), and stays
                # authorized if it refuses.
                changes["voided"] = True
            customer = outcome.references.get("customer")
            if customer and not payment.customer_reference:
                changes["customer_reference"] = customer
        elif txn.status == S.FAILED and txn.kind in K.INITIAL and (txn.kind != K.COMPLETE
                                                                   or isinstance(outcome, Declined)):
            # Failed until a retry under its key (if retryable) revives it. A completion the
            # provider refused for any reason but a decline (the buyer has not approved yet, a
            # rate limit) leaves the payment waiting for its buyer, who may still finish.
            changes["failed"] = True
            if txn.provider_reference and not payment.reference:
                # What the declined request made (the buyer may still pay it): later operations act on it.
                changes["reference"] = txn.provider_reference
                refs.setdefault("payment", txn.provider_reference)
        elif txn.kind == K.CAPTURE and txn.status == S.FAILED and isinstance(outcome, PaywireError) and (
                outcome.capture_closed
                or (outcome.reference and rules.closed_by_declined(txn, self._capabilities(payment.method)))):
            # Refused as the authorization takes no further capture (the provider's word); or a
            # retry under a lost final capture's key found the capture the provider made, declined
            # since (naming it): it closed the authorization, as its event or a reading tells it.
            changes["capture_closed"] = True
        before = {payment.reference, *payment.references.values()}
        if refs != payment.references:  # unchanged, the stored text is written back as it is
            changes["references"] = refs
        payment = rules.derive(payment, txns, **changes)
        u.update_payment(payment)
        fresh: list[str] = []  # a loop, not a comprehension's call: every outcome
        for ref in (payment.reference or "", *payment.references.values(), txn.provider_reference or ""):
            if ref not in before:
                fresh.append(ref)
        u.add_references(payment.method, payment.id, fresh)
        return apply_waiting(u, payment, self._capabilities(payment.method), txns, methods=self._siblings(payment.method))

    def _conclude(self, txn: Transaction, payment: Payment | None,
                  outcome: CommandResult | BaseException) -> Payment | Transaction:
        if txn.status in _ANSWERED:
            return payment if payment is not None else self._result(txn)
        if txn.status == S.PENDING:  # sent again meanwhile: its outcome is that send's
            try:
                return self._replay(self._wait(txn))
            except (LedgerBusy, LedgerUnavailable) as lost:  # this call sent its request: never "nothing was sent"
                raise attach(OutcomeUnknown(
                    f"{_why(lost.__cause__ or lost)}; the {txn.kind} was sent, then sent again by another call before "
                    f"its answer was recorded, and that outcome could not be read, so it is unknown; {self._settles(txn)}"),
                    txn.payment_id, txn.id) from lost
        if txn.status == S.FAILED:
            # This call's own failure, or, when its answer was unknown and reconciliation or an
            # event settled the transaction failed meanwhile, what the ledger holds.
            if isinstance(outcome, PaywireError) and not is_unknown(outcome):
                raise attach(outcome, txn.payment_id, txn.id)
            raise rebuild_error(txn)
        settles = self._settles(txn)
        if isinstance(outcome, OutcomeUnknown):
            if txn.payment_id is None:
                outcome = OutcomeUnknown.instead_of(outcome, settles)
            raise attach(outcome, txn.payment_id, txn.id)
        error = OutcomeUnknown(
            f"the outcome of {txn.kind} transaction {txn.id} is unknown"
            + (f" ({type(outcome).__name__}: {redact(str(outcome))})" if isinstance(outcome, BaseException) else "")
            + f"; {settles}",
        )
        raise attach(error, txn.payment_id, txn.id) from (outcome if isinstance(outcome, BaseException) else None)

    def _result(self, txn: Transaction) -> Payment | Transaction:
        if txn.payment_id is None:
            return txn
        return self.get_payment(txn.payment_id)

    def _replay(self, txn: Transaction) -> Payment | Transaction:
        """What a call under `txn`'s key answers, sending nothing (`_stored`): the ledger's
        database unavailable meanwhile is `LedgerUnavailable` naming the operation recorded."""
        try:
            return self._stored(txn)
        except Exception as exc:
            error = unavailable(self.ledger, exc, (
                f"the {txn.kind} under idempotency key {txn.idempotency_key!r} is recorded ({txn.status}) but could "
                "not be read back; nothing was sent now: retry the same call once it is back"))
            if error is None:
                raise
            raise attach(error, txn.payment_id, txn.id) from error.__cause__

    def _stored(self, txn: Transaction) -> Payment | Transaction:
        if txn.status in _ANSWERED:
            result = self._result(txn)
            if isinstance(result, Payment) and txn.kind in K.INITIAL and result.state == PaymentState.FAILED:
                # A later operation failed it (a declined completion: the buyer failed the
                # challenge), and the buyer may have paid what it left since: answered failed, the
                # caller would take the money again. Read first, as a replay of that failure does.
                result, _ = self._paid_since(result)
            return result
        if txn.status == S.FAILED:
            error = rebuild_error(txn)
            if txn.kind in K.INITIAL and txn.payment_id:
                payment, checked = self._paid_since(self.get_payment(txn.payment_id))
                if payment.authorized.minor > 0:
                    # Paid since (the buyer finished it another way, as Stripe lets them on the
                    # same PaymentIntent after a decline): the payment as it stands answers a
                    # retry under the key, not the stored failure, which would have the caller
                    # take the money again. Nothing authorized (a payment voided unpaid too) is no
                    # payment to answer with.
                    return payment
                error.details.update(checked)
            raise error
        if txn.status == S.UNKNOWN:
            raise attach(OutcomeUnknown(f"the outcome of {txn.kind} transaction {txn.id} is unknown; {self._settles(txn)}"),
                         txn.payment_id, txn.id)
        raise attach(IdempotencyConflict(
            f"the {txn.kind} with idempotency key {txn.idempotency_key!r} is still in progress; try again shortly",
            code="in_progress", retryable=True), txn.payment_id, txn.id)

    def _paid_since(self, payment: Payment) -> tuple[Payment, dict[str, Any]]:
        """`payment` as the provider holds it, when the ledger holds it unpaid and it names what
        a refused request left there (a PaymentIntent the buyer may still pay with another card
        after a decline), read as `reconcile(payment_id=...)` does: paid since with no event yet,
        it is no longer unpaid. With the details an error answering the caller then carries:
        whether it was read (`reconciled`), else why not (`reconcile_error`); it is as the ledger
        held it when the read failed."""
        if payment.state not in _UNPAID or not payment.reference:
            return payment, {}
        why = self._catch_up(payment.id)
        if why is not None:
            return payment, {"reconciled": False, "reconcile_error": why}
        return self.get_payment(payment.id), {"reconciled": True}

    @reads("another call is sending the operation under this idempotency key, and its outcome could not be read; "
           "this call sent nothing: retry it once it is back")
    def _wait(self, txn: Transaction) -> Transaction:
        """Wait for a transaction another worker is sending to get its outcome."""
        deadline = time.monotonic() + self.wait_timeout
        delay = self.poll_interval
        while True:
            current = self.ledger.get_transaction(txn.id)
            assert current is not None
            if current.status != S.PENDING or time.monotonic() >= deadline:
                return current
            time.sleep(delay)
            delay = min(delay * 1.5, 0.25)

    # -- reconciliation -------------------------------------------------------------------------
    @reads("reconcile() stopped before asking the provider (nothing was sent): run it again once it is back")
    def reconcile(self, *, payment_id: str | None = None, limit: int = 1000) -> ReconcileReport:
        """Settle open outcomes (unknown, accepted) by asking the provider (`fetch`), and match
        waiting webhooks.

        Pending transactions past their `settle_after` (their worker stopped between sending and
        recording) are first marked unknown. An operation the provider does not hold is concluded
        not applied only after its request can no longer land; until then it stays open and the
        report says until when. With `payment_id`, that payment is fetched even when nothing is
        open, and the provider's totals become its floors (e.g. after the buyer finished 3-D
        Secure on the provider's page and no webhook came). Nothing is ever resent. Each payment
        is settled on its own, each waiting event applied on its own: one that cannot be is
        reported in `errors`, and the rest go on.

        Payments that owe a read (an answer or an event said the ledger is behind the provider,
        and the read the service made then failed or was never made: see `_catch_up`) are read
        too, even with nothing open, and so are payments that waited for their buyer longer than
        `buyer_wait` (`paywire.service.waiting`); the report's `caught_up` names those read.

        `limit` takes the open transactions looked at least recently (never first, then oldest
        first), and as many payments owing a read, the earliest next look first; each look is
        recorded in the ledger's schedule: open transactions the provider leaves undecided (a
        bank transfer's days) or cannot answer for run after run, and payments whose read keeps
        failing, never keep newer ones waiting. A look here never delays the Janitor's next one
        (`reconcile_claimed`), nor brings it forward.
        """
        require_text(payment_id, "payment_id")
        require_count(limit, "limit")
        at = self.ledger.now()
        marked: list[str] = []
        errors: list[tuple[str, str]] = []
        for txn in self.ledger.list_transactions(payment_id=payment_id, statuses=[S.PENDING], limit=limit):
            if not txn.expired(at):
                continue
            try:
                if self._abandon(txn):
                    marked.append(txn.id)
            except Exception as exc:  # noqa: BLE001 - reported per transaction; the others go on
                errors.append((txn.id, _why(exc)))
        settled: list[Settlement] = []
        unresolved: list[Settlement] = []
        mismatches: list[Mismatch] = []
        by_payment: dict[str | None, list[Transaction]] = {}
        if payment_id is not None:
            by_payment[self.get_payment(payment_id).id] = []  # asked about it: look even if nothing is open
        owed = self.ledger.owed_reads(payment_id=payment_id, limit=limit)
        if payment_id is None:
            owed = due(self.ledger, owed, at)
        for marked_id in owed:
            by_payment.setdefault(marked_id, [])
        caught_up: list[str] = []
        for txn in self.ledger.list_by_look(payment_id=payment_id, statuses=[S.UNKNOWN, S.ACCEPTED], limit=limit):
            by_payment.setdefault(txn.payment_id, []).append(txn)
        for owner, txns in by_payment.items():
            if owner is None:
                unresolved.extend(Settlement(t.id, None, t.kind, None, self._unfetchable(t)) for t in txns)
                self._look_failed(owner, txns, at)
                continue
            try:
                decisions, differences = self._settle_fetched(
                    owner, at, then=functools.partial(_looked, owner=owner, txns=txns, at=at))
            except Exception as exc:  # noqa: BLE001 - reported per payment; the others go on
                errors.append((owner, _why(exc)))
                self._look_failed(owner, txns, at)
                continue
            settled.extend(d for d in decisions if d.status is not None)
            unresolved.extend(d for d in decisions if d.status is None)
            mismatches.extend(differences)
            if owner in owed:
                caught_up.append(owner)
        try:
            matched = self.match_unmatched(limit)
        except Exception as exc:  # noqa: BLE001 - e.g. the ledger busy: what was settled is still reported
            matched = MatchReport(failures=(("events", exc),))
        errors.extend((event, _why(exc)) for event, exc in matched.failures)
        return ReconcileReport(tuple(marked), tuple(settled), tuple(unresolved), tuple(errors), matched.applied,
                               tuple(mismatches), tuple(caught_up))

    def _unfetchable(self, txn: Transaction) -> str:
        """What settles an open vault or unvault, which no payment holds for `reconcile()` to ask
        the provider about: only sending it again under its key, if the provider still keeps the
        key and the ledger the whole request; else the caller, who checks with the provider."""
        said = f"reconcile() cannot ask the provider about a {txn.kind} (it is no payment)"
        try:
            life = self.gateway.method(txn.method).definition.key_lives.get(txn.kind)
        except ConfigurationError:  # a method no longer configured: nothing can send it
            return f"{said}, and its method {txn.method!r} is not configured; {_ask_the_provider(txn.kind)}"
        if life is not None and self._settle_after(txn.method, txn.kind) > txn.created_at + timedelta(seconds=life):
            kept = (f"keeps no idempotency key for {txn.kind}" if not life else
                    f"kept its idempotency key for {txn.kind} only {life / 3600:g} hours")
            return (f"{said}, and the provider {kept}: sent again it could be applied twice, so nothing here "
                    f"settles it; {_ask_the_provider(txn.kind)}")
        if _masked(txn.request) or txn.request.get("unstored"):
            return (f"{said}; call {txn.kind}() again with its parameters and idempotency_key="
                    f"{txn.idempotency_key!r} (the ledger does not keep all of its request, so retry() cannot)")
        if txn.kind == K.VAULT:  # without its key, the same call is a new vault
            return (f"{said}; call vault() again with idempotency_key={txn.idempotency_key!r}, or "
                    "retry(transaction_id) (without that key, vault() stores the method again)")
        return f"{said}; retry the same call, or retry(transaction_id): its idempotency key is reused"

    def _settles(self, txn: Transaction) -> str:
        """What settles `txn`, whose outcome is unknown: what an error saying so tells the caller."""
        return self._resend(txn) if txn.payment_id else self._unfetchable(txn)

    @staticmethod
    def _resend(txn: Transaction) -> str:
        """How a caller resends a payment's operation whose outcome is unknown under its key. The
        same call is that only where it finds the key without being given it: a first operation
        without a key makes a new payment (a second charge, were the first applied)."""
        if txn.kind in (K.AUTHORIZE, K.SALE):
            return (f"run reconcile(), or make the same call with idempotency_key={txn.idempotency_key!r} "
                    f"(without that key, the call is a new {txn.kind})")
        return "retry the same call (the same idempotency key is reused) or run reconcile()"

    def _look_failed(self, owner: str | None, txns: Sequence[Transaction], at: datetime) -> None:
        """Record a look that settled nothing (the provider did not answer, or a vault outcome),
        so the next `reconcile(limit)` reaches the transactions, and the payments owing a read,
        behind these first."""
        try:
            with self.ledger.unit() as u:
                if owner is not None:
                    u.payment(owner, lock=True)  # no settling unit writes them meanwhile
                    read = u.owed_read(owner)
                    if read is not None:  # as `_looked` keeps a transaction's looks
                        u.set_owed_read(owner, Look(read.looks, max(read.next_at, at)))
                _looked(u, owner, txns, at)
        except Exception:  # noqa: BLE001 - the ledger failing too: the next run looks at them first again
            log.warning("could not record reconcile's look at %d transactions", len(txns))

    def _abandon(self, txn: Transaction) -> bool:
        """Mark a pending transaction past its life unknown, unless it changed meanwhile. Written
        only over the row as `txn` holds it: a vault's has no payment to lock, and a retry may
        claim it (pending again, with a new life) and send it between any read here and the write."""
        with self.ledger.unit() as u:
            if txn.payment_id:
                u.payment(txn.payment_id, lock=True)
            return u.finish_transaction(unknown(txn, None, u.now(), _ABANDONED), claimed_at=txn.updated_at)

    def _fetch(self, payment: Payment, txns: Sequence[Transaction] | None = None) -> CommandResult:
        """Ask the provider about a payment (`txns`: its transactions, when already read)."""
        order = Order(id=payment.order_id, amount=payment.amount) if payment.order_id else None
        if payment.reference:
            subject = Subject(reference=payment.reference, amount=payment.amount, order=order, flow=payment.flow)
        else:  # the first answer was lost: the provider finds it by our key (and the order)
            txns = self.ledger.list_transactions(payment_id=payment.id) if txns is None else txns
            first = next((t for t in txns if t.kind in K.INITIAL), None)
            subject = Subject(idempotency_key=first.idempotency_key if first else None, amount=payment.amount,
                              order=order, flow=payment.flow, sent_at=first.created_at if first else None)
        return self.gateway.execute(payment.method, "fetch", subject)

    def _settle_fetched(self, payment_id: str, at: datetime,
                        claimed: tuple[Payment, Sequence[Transaction]] | None = None,
                        then: Callable[[LedgerUnit], None] | None = None,
                        counted: bool = False) -> tuple[list[Settlement], list[Mismatch]]:
        """Ask the provider about the payment (no lock is held meanwhile), then settle what it
        said under the payment's lock, clear its mark of an owed read (`_owe_read`; kept when an
        event that waited records there a capture or refund the new floors cannot take in), and
        run `then` in that unit. An answer is settled only if the payment did not change while the
        provider was asked (a mark set meanwhile came with such a change): a webhook or an operation
        recorded meanwhile may be newer than the answer, which would take back what it recorded
        (the provider's totals replace the payment's floors). The provider is asked again then.
        `counted`: the claim already counted this read in the payment's mark (`reconcile_claimed`)."""
        payment, txns = claimed or (self.get_payment(payment_id), None)
        for _ in range(_FETCHES):
            result = self._fetch(payment, txns)
            with self.ledger.unit() as u:
                current = u.payment(payment_id, lock=True)
                assert current is not None
                if current.updated_at == payment.updated_at:
                    current, decisions, differences = settle(u, current, result, at,
                                                             self._capabilities(current.method))
                    read = u.owed_read(payment_id)
                    if counted and read is not None:  # `watch` counts this read itself
                        read = Look(max(0, read.looks - 1), read.next_at)
                    u.set_owed_read(payment_id, None)  # read: whatever made it owe one is settled
                    txns = u.transactions(payment_id) if rules.on_floor(current) else None
                    waited = apply_waiting(u, current, self._capabilities(current.method),
                                           methods=self._siblings(current.method))
                    if txns is not None and _absorbed(u, current, txns, waited):
                        # An event that waited (received while the provider was asked) recorded a
                        # success the answer's totals, now the floors, may not count: read again.
                        self._owe_read(u, waited)
                    else:  # still waiting for its buyer: read again later
                        watch(u, waited, self.buyer_wait, u.now(), read=read)
                    if then is not None:
                        then(u)
                    return decisions, differences
            payment, txns = current, None
        raise attach(StateError(f"payment {payment_id} changed each of the {_FETCHES} times the provider was asked "
                                "about it (webhooks or operations meanwhile); reconcile it again",
                                code="payment_busy"), payment_id, None)

    @reads("nothing of the payment was settled (nothing is ever sent): try again once it is back")
    def reconcile_claimed(self, payment_id: str, *, backoff: Backoff | None = None) -> ReconcileReport | None:
        """Reconcile one payment's due transactions unless another worker is at it (then None).

        For workers sharing a ledger (`paywire serve`'s Janitor): `reconcile()` lets two of them
        ask the provider about one payment at once. Here a short unit claims the payment's row,
        skipping it when another worker holds it (PostgreSQL's `FOR UPDATE SKIP LOCKED`), marks
        pending transactions past their `settle_after` unknown, and checks in the ledger's
        schedule (`paywire_reconcile_looks`, `paywire_owed_reads`) that one of its open
        transactions, or the read the payment owes, is due; it then records their next look as
        after the fetch's longest life (a lease), so no other worker takes them meanwhile, and
        lets the row go: the provider is asked with no lock held, so webhooks and operations on
        the payment never wait for it. A second unit settles what the provider said, under the
        payment's lock as `reconcile()` does, clears the owed read, and records each
        transaction's next look (`backoff`, default `Backoff()`) or forgets it once settled. The
        claim counts the look, and its lease runs to the next look on `backoff` when that is
        later: a worker that dies or hangs in between leaves the payment to be taken again ever
        later, up to the cap, never after every lease; the Janitor reschedules a read that fails
        without counting it again. Nothing is ever resent.
        """
        backoff = backoff or Backoff()
        at = self.ledger.now()
        with self.ledger.unit() as u:
            payment = u.claim_payment(payment_id)
            if payment is None:
                return None
            txns = u.transactions(payment_id)
            marked = tuple(t.id for t in txns if t.status == S.PENDING and t.expired(at))
            for txn in (t for t in txns if t.id in marked):
                u.update_transaction(unknown(txn, None, at, _ABANDONED))
            txns = u.transactions(payment_id) if marked else txns
            looking = [t for t in txns if t.status in (S.UNKNOWN, S.ACCEPTED)]
            looks = u.looks([t.id for t in looking])
            read = u.owed_read(payment_id)
            if not [t for t in looking if is_due(t, looks.get(t.id), at)] and (read is None or read.next_at > at):
                return ReconcileReport(marked)  # settled meanwhile, or another worker just looked
            # The look counts now, before the provider is asked: a read that kills or hangs the
            # worker still moves the payment along its backoff (waiting at least the lease)
            # instead of being taken again after every lease. A read that completes does not
            # count it again: `schedule` counts from the look before this one, and the Janitor's
            # failed look keeps this one's count.
            lease = self._read_lease(payment.method)
            u.set_looks({t.id: _leased(backoff.after(t, looks.get(t.id), at), lease) for t in looking})
            if read is not None:
                u.set_owed_read(payment_id, _leased(backoff.after(None, read, at), lease))
        def schedule(u: LedgerUnit) -> None:
            still = {t.id: t for t in u.transactions(payment_id) if t.status in (S.UNKNOWN, S.ACCEPTED)}
            u.set_looks({t.id: backoff.after(still[t.id], looks.get(t.id), u.now()) if t.id in still else None
                         for t in looking})

        decisions, differences = self._settle_fetched(payment_id, at, (payment, txns), schedule, counted=True)
        return ReconcileReport(marked, tuple(d for d in decisions if d.status is not None),
                               tuple(d for d in decisions if d.status is None), (), 0, tuple(differences),
                               (payment_id,) if read is not None else ())

    @reads("the events not applied stay stored, unmatched: run it again once it is back")
    def match_unmatched(self, limit: int = 1000) -> MatchReport:
        """Apply stored unmatched events that name a payment the ledger now knows (one whose
        reference was learnt while the event was being stored), `limit` at most; the report counts
        those applied and keeps each failure by event ("provider/event id"). One that cannot be
        applied (the ledger busy, its payment's method no longer configured) stays unmatched and
        keeps none of the others from being applied, whichever are stored after it; only a ledger
        that cannot list the events raises.

        Oldest first, until `limit` were applied or none is left. An event tried and left
        unmatched (it failed, or names no payment after all) does not count: the run reads past
        it, so that events failing for good (their payment's method removed) never keep it from
        those stored after them."""
        require_count(limit, "limit")
        applied = 0
        failures: list[tuple[str, Exception]] = []
        tried: set[tuple[str, str]] = set()
        left = 0  # events tried in this run that stayed unmatched: the next read reaches past them
        # Each event through the method it came by, and through its provider's other methods:
        # one account's webhooks may reach any of their endpoints.
        groups = {tuple(sorted((m.code, *self._siblings(m.code)))) for m in self.gateway.methods}
        while applied < limit:
            page = left + limit - applied
            found: list[StoredEvent] = []
            everything = True  # every read returned all there was
            for group in [(), *sorted(g for g in groups if len(g) > 1)]:
                read = self.ledger.matchable_events(limit=page, methods=group)
                found += read
                everything = everything and len(read) < page
            events = {(e.provider, e.event_id): e for e in sorted(found, key=lambda e: (e.received_at, e.event_id))
                      if (e.provider, e.event_id) not in tried}
            fresh = list(events.values())[:limit - applied]
            for event in fresh:
                tried.add((event.provider, event.event_id))
                try:
                    stored = self._match(event)
                    matched = stored is not None and stored.status == EventStatus.APPLIED
                except Exception as exc:  # noqa: BLE001 - the unit rolled back; the next run tries it again
                    failures.append((f"{event.provider}/{event.event_id}", exc))
                    matched = False
                applied += matched
                left += not matched
            if not fresh or (everything and len(fresh) == len(events)):
                break
        return MatchReport(applied, tuple(failures))

    def _match(self, event: StoredEvent) -> StoredEvent | None:
        """Apply one stored unmatched event to the payment it now names, if any: the event as
        stored then (applied, or deferred), None when it names none or is no longer unmatched."""
        with self.ledger.unit() as u:
            owner = self._owner(u, event.method, event.all_references)
            if owner is None:
                return None
            payment = u.payment(owner, lock=True)  # first the lock, then a fresh look at the event
            current = u.event(event.provider, event.event_id)
            if payment is None or current is None or current.status != EventStatus.UNMATCHED:
                return None
            stored, behind = self._apply_received(u, payment, attrs.evolve(current, payment_id=owner))
        if behind:
            self._catch_up(owner)  # failing, the event stands as applied: its mark has reconcile() read it later
        return stored

    # -- webhooks -------------------------------------------------------------------------------
    def _siblings(self, method: str) -> tuple[str, ...]:
        """The other methods of `method`'s provider account: one account's webhooks may reach any
        of their endpoints (one endpoint configured, or each receiving every event), and its
        idempotency keys are one key space (see `_by_key`). Another
        account's methods are never siblings: an event one account's keys verify must not change
        another account's payments. Asked on every operation, so worked out once per method."""
        siblings = self._siblings_of.get(method)
        if siblings is None:
            try:
                provider = self.gateway.methods.get(method).provider
            except ConfigurationError:  # a method no longer configured: its own events only
                siblings = ()
            else:
                same = {m.code: self._same_account(method, m.code) for m in self.gateway.methods
                        if m.provider == provider and m.code != method}
                siblings = tuple(code for code, known in same.items() if known)
                if None in same.values():  # a secrets hook failed: not one account now, asked again next time
                    return siblings
            self._siblings_of[method] = siblings
        return siblings

    def _same_account(self, one: str, other: str) -> bool | None:
        """Whether two methods of one provider act for one account: every credential both hold is
        the same, and they hold one at least (one method may lack the webhook secret the other's
        endpoint verifies with). A webhook endpoint's own credential
        (`GatewayDefinition.webhook_secrets`) that differs tells nothing: each endpoint of an
        account has its own, and each receives every event. None when a `get_secret` hook failed
        (a vault down): not known to be one account, and not to be remembered as two."""
        shared = 0
        definition = self.gateway.method(one).definition
        for name in definition.secrets:
            try:
                mine, theirs = (self.gateway.method(code).settings.secret(name).reveal() for code in (one, other))
            except ConfigurationError:
                continue
            except Exception:  # noqa: BLE001 - a get_secret hook failing: see above
                return None
            if hmac.compare_digest(mine.encode(), theirs.encode()):
                shared += 1
            elif name not in definition.webhook_secrets:
                return False
        return shared > 0

    def _owner(self, u: LedgerUnit, method: str, references: Sequence[str]) -> str | None:
        """The payment an event received through `method` names: one of that method's, else one
        of another method of the same provider."""
        for code in (method, *self._siblings(method)):
            owner = u.payment_by_reference(code, references)
            if owner is not None:
                return owner
        return None

    @reads(_UNSTORED)
    def receive_webhook(self, method: str, headers: Mapping[str, str], raw_body: bytes) -> WebhookReceipt:
        """Verify a webhook delivery holding one event through the method's plugin, store the event
        once, and apply it (`receive_notification` takes deliveries of several).

        Raises `WebhookVerificationError` (nothing stored) when it does not verify, and
        `ConfigurationError` for an unknown method.
        """
        event = self.gateway.parse_webhook(method, headers, raw_body)
        require_event(event)
        return self._receive(method, event)

    @reads(_UNSTORED)
    def receive_notification(self, method: str, headers: Mapping[str, str], raw_body: bytes) -> Notification:
        """Verify a webhook delivery through the method's plugin, however many events it holds
        (Adyen's batches), store each event once and apply it; the receipts come with the
        acknowledgement the provider expects. What the webhook endpoints call.

        A delivery that does not verify raises `WebhookVerificationError` and stores nothing.
        """
        batch = self.gateway.parse_notification(method, headers, raw_body)
        for event in batch.events:  # all of them first: a batch is not stored in part
            require_event(event)
        receipts = tuple(self._receive(method, event) for event in batch.events)
        return Notification(receipts, batch.acknowledgement, batch.content_type)

    def _receive(self, method: str, event: WebhookEvent) -> WebhookReceipt:
        stored = StoredEvent(
            provider=event.provider, event_id=event.id, method=method, type=event.type, kind=event.kind,
            reference=event.reference, references=event.references, amount=event.amount, total=event.total,
            status=EventStatus.UNMATCHED, received_at=self.ledger.now(), closes_capture=event.closes_capture,
        )
        with self.ledger.unit() as u:
            first = u.insert_event(stored)
            if first:
                owner = self._owner(u, method, stored.all_references)
                if owner is not None:
                    payment = u.payment(owner, lock=True)
                    assert payment is not None
                    applied, behind = self._apply_received(u, payment, attrs.evolve(stored, payment_id=owner))
            else:
                previous = u.event(stored.provider, stored.event_id)
        if not first:
            return self._redelivered(stored, previous)
        if owner is None:
            return self._stored_unmatched(stored)
        if behind:
            self._catch_up(owner)  # failing, the event stands as applied: its mark has reconcile() read it later
        return WebhookReceipt(stored.provider, stored.event_id, stored.kind, applied.status, owner)

    def _stored_unmatched(self, stored: StoredEvent) -> WebhookReceipt:
        """The receipt of an event just stored unmatched, applied first if a unit indexing one of
        its ids was open meanwhile: its uncommitted ids were not found, and its look for waiting
        events may have run before the event was committed. Once every such unit has ended
        (`Ledger.wait_out_references`), its ids are committed and the event is matched here, or
        it looked after the event was committed and applied it itself. The wait is outside the
        event's unit: waiting for an id, it holds nothing (a payment's lock, another id) that the
        unit holding the id may wait for."""
        unmatched = WebhookReceipt(stored.provider, stored.event_id, stored.kind, EventStatus.UNMATCHED)
        try:
            if not self.ledger.wait_out_references(stored.all_references):
                return unmatched
            applied = self._match(stored)
        except Exception as exc:  # noqa: BLE001 - it is stored: match_unmatched (the Janitor, reconcile) applies it
            log.warning("event %s/%s: stored unmatched; looking for its payment again failed (%s)",
                        stored.provider, stored.event_id, _why(exc))
            return unmatched
        if applied is None:
            return unmatched
        return WebhookReceipt(stored.provider, stored.event_id, stored.kind, applied.status, applied.payment_id)

    def _redelivered(self, stored: StoredEvent, previous: StoredEvent | None) -> WebhookReceipt:
        """The receipt of an event stored before: "duplicate". One stored unmatched is applied now
        if it names a payment since (its first delivery could not look for it again: the ledger
        busy; see `_stored_unmatched`): a redelivery (the provider's, an operator's resend) need
        not wait for the next `match_unmatched`."""
        if previous is not None and previous.status == EventStatus.UNMATCHED:
            self._match(previous)
            previous = self.ledger.get_event(stored.provider, stored.event_id)
        return WebhookReceipt(stored.provider, stored.event_id, stored.kind, "duplicate",
                              previous.payment_id if previous else None)

    def _apply_received(self, u: LedgerUnit, payment: Payment, event: StoredEvent) -> tuple[StoredEvent, bool]:
        """Apply a received event to its locked payment, then the events that waited for it (it may
        have given the payment an id they name). Returns the event as stored, and whether the
        payment must then be read from the provider (`_catch_up`), marked so in this unit
        (`_owe_read`): see `_offers_undone`; and a reversed event that undid nothing, naming no
        capture, refund or sale of the ledger's: an object only a provider-reported total counts
        (the authorization the Control Panel captured, declined at settlement), whose undoing is
        the provider's to say; and a failed event naming the authorization itself that changed
        nothing (what the provider made of it beside paywire failed, and may have spent it); and a
        capture or refund the event recorded succeeded that a total standing on a floor could not
        take in (`rules.absorbed`: an accepted one the provider decided, one made in its
        dashboard); and an open refund failed, the refunded floor it may have been counted in
        dropped (`reversal.floor_dropped`); and a refund event taking the refunds past all the
        payment held authorized (one the ledger counts failed since, its event still to come)."""
        caps = self._capabilities(payment.method)
        held, floored = payment, rules.on_floor(payment)
        watch = payment.flow == K.AUTHORIZE or event.kind == EventKind.REVERSED or floored
        before = u.transactions(payment.id) if watch else ()
        payment, applied = apply_event(u, payment, event, caps)
        if applied.status == EventStatus.APPLIED:
            payment = apply_waiting(u, payment, caps, methods=self._siblings(payment.method))
        if event.kind == EventKind.REFUNDED and 0 < held.authorized.minor < payment.refunded.minor:
            # Refunds past all the payment held authorized, which the provider never takes: one the
            # ledger counts failed since, its event still to come (Stripe fails a refund after it
            # succeeded, and it may be refunded again meanwhile). The totals raised to cover them
            # are a guess the provider's reading replaces.
            self._owe_read(u, payment)
            return applied, True
        if not watch:
            return applied, False
        after = u.transactions(payment.id)
        moved = (K.CAPTURE, K.REFUND, *(K.INITIAL if payment.flow == K.SALE else ()))
        unattributed = (event.kind == EventKind.REVERSED and applied.status == EventStatus.APPLIED
                        and sum(t.kind == K.REVERSAL for t in after) == sum(t.kind == K.REVERSAL for t in before)
                        and not any(t.kind in moved and t.provider_reference == event.reference for t in after))
        # E.g. Braintree's whole capture made in the Control Panel, declined at settlement: it
        # spent the authorization, which the ledger holds standing.
        disowned = (event.kind == EventKind.FAILED and payment.flow == K.AUTHORIZE and after == before
                    and held.authorized.minor > 0 and not payment.failed
                    and applied.status == EventStatus.APPLIED and bool(event.reference)
                    and event.reference in (payment.reference, payment.references.get("authorization")))
        behind = (unattributed or disowned or _offers_undone(payment, after, _undone_captures(before))
                  or (floored and rules.absorbed(held, payment, rules.newly_succeeded(before, after)))
                  or floor_dropped(held, payment, before, after))
        if behind:
            self._owe_read(u, payment)
        return applied, behind
