"""The payment state machine and its money rules, as pure functions of a payment and its history.

The service calls the checks inside a locked ledger unit, before anything is recorded or sent,
so a refused operation changes nothing. Amounts still in flight (pending or unknown) count as
spent: if every one of them succeeds, the totals still satisfy
refunded <= captured <= authorized. Totals are recomputed from the succeeded transactions and the
provider-reported floors every time, never incremented, so replays cannot double count.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from functools import lru_cache
from typing import Any, Final, NamedTuple

from paywire.command.result import REAUTHORIZATION_UNDECIDED, REAUTHORIZED
from paywire.errors import InvalidRequest, StateError, UnsupportedOperation
from paywire.gateway_definition import Capabilities
from paywire.ledger.model import Payment, PaymentState, Transaction, TransactionKind, TransactionStatus, updated
from paywire.money import Money
from paywire.service.held import HELD, held_minor
from paywire.service.inputs import require_money

__all__ = [
    "behind",
    "capturable",
    "capture_parents",
    "check_capture",
    "check_complete",
    "check_refund",
    "check_void",
    "closed_by_declined",
    "consumed",
    "derive",
    "in_flight",
    "reauthorized",
    "refund_target",
]

K = TransactionKind
S = TransactionStatus

# Money is immutable and the totals the rules build are the same few amounts again and again (none
# in flight; the payment's amount): shared, their currency is not validated anew on every check.
_money = lru_cache(maxsize=1024)(Money)


def _minor(txn: Transaction, currency: str) -> int:
    """A transaction's amount in minor units of the payment's currency (0 when it has none)."""
    amount = txn.amount
    if amount is None:
        return 0
    if amount.currency != currency:  # what Money arithmetic would refuse; the ledger never stores it
        raise ValueError(f"transaction {txn.id} is in {amount.currency}, its payment in {currency}")
    return amount.minor


class InFlight(NamedTuple):
    """What pending or unknown transactions may still add (made on every check: a named tuple,
    immutable, costs less to make than a frozen attrs class)."""

    captures: Money
    refunds: Money
    void: bool
    initial: bool


def in_flight(payment: Payment, txns: Sequence[Transaction]) -> InFlight:
    """What pending or unknown transactions may still add."""
    currency = payment.currency
    captures = refunds = 0
    void = initial = False
    for t in txns:
        if t.status not in S.OPEN:
            continue
        if t.kind == K.CAPTURE:
            captures += _minor(t, currency)
        elif t.kind == K.REFUND:
            refunds += _minor(t, currency)
        elif t.kind == K.VOID:
            void = True
        elif t.kind in K.INITIAL:
            initial = True
    return InFlight(_money(captures, currency), _money(refunds, currency), void, initial)


def waits(payment: Payment) -> bool:
    """Whether the payment waits for its buyer. The provider need not say what the buyer is to do
    (a reading of a payment waiting for approval may name no link), so an action is not required:
    the state recorded says it."""
    return payment.action is not None or payment.state == PaymentState.ACTION_REQUIRED


def derive(payment: Payment, txns: Sequence[Transaction], *, waiting: bool | None = None, **changes: Any) -> Payment:
    """The payment with `changes` made, and totals and state recomputed from its succeeded
    transactions and the provider-reported floors (`observed_*`); never below either, so nothing
    counts twice. One new `Payment` for both: building it is the costly part. `waiting`: the
    provider's latest answer or reading about the payment says it waits for the buyer (True) or
    not (False), with or without an action; by default it waits while it did, or when an action
    is given."""

    currency = payment.amount.currency
    own_authorized = own_captured = own_refunded = 0  # minor units, summed in one pass
    undone = _undone(txns)
    for t in txns:
        amount, kind = t.amount, t.kind
        if t.status != S.SUCCEEDED or amount is None or kind not in _TOTALLED or t.id in undone:
            continue
        if amount.currency != currency:
            _minor(t, currency)  # raises: what Money arithmetic would refuse
        # What the provider applied (`held_minor`, spelt out: every outcome): a first operation
        # may hold less than asked, a capture or refund be honoured in part; never more than asked.
        noted = t.response.get(HELD)
        held = noted if type(noted) is int and 0 < noted < amount.minor else amount.minor
        if kind in K.INITIAL:  # authorize and complete establish one authorization
            if held > own_authorized:
                own_authorized = held
        elif kind == K.CAPTURE:
            own_captured += held
        elif kind == K.REFUND:
            own_refunded += held
    get = changes.get  # the payment as changed: only the fields read here, no merged copy of all
    if payment.flow == K.SALE:
        own_captured += own_authorized
    elif reauthorized(get("references", payment.references)):
        own_authorized = 0  # what the reauthorization holds replaced it: the provider's report says
    refunded = max(own_refunded, get("observed_refunded", payment.observed_refunded).minor)
    captured = max(own_captured, get("observed_captured", payment.observed_captured).minor, refunded)
    authorized = max(own_authorized, get("observed_authorized", payment.observed_authorized).minor, captured)
    action, failed, voided = get("action", payment.action), get("failed", payment.failed), get("voided", payment.voided)
    # An authorization ends the wait, and so does a payment ending failed or voided: nobody is sent
    # to the redirect any more, so its secrets are not kept.
    if waiting is None:
        waiting = action is not None or payment.state == PaymentState.ACTION_REQUIRED
    ended = not waiting or authorized > 0 or failed or voided
    changes["state"] = _state(authorized, captured, refunded, failed=failed, voided=voided,
                              closed=get("capture_closed", payment.capture_closed), waiting=not ended)
    # A total left unchanged stays the same `Money` (spelt out, not a call per total: every outcome)
    current = payment.authorized
    changes["authorized"] = current if current.minor == authorized else _money(authorized, current.currency)
    current = payment.captured
    changes["captured"] = current if current.minor == captured else _money(captured, current.currency)
    current = payment.refunded
    changes["refunded"] = current if current.minor == refunded else _money(refunded, current.currency)
    changes["action"] = None if ended else action
    return updated(payment, changes)  # `changes` is this call's own: no copy for `replace`


_NOTHING_UNDONE: frozenset[str | None] = frozenset()
_TOTALLED: Final = K.INITIAL | {K.CAPTURE, K.REFUND}  # the kinds whose amounts `derive` sums


def _undone(txns: Sequence[Transaction]) -> frozenset[str | None]:
    """The ids of the transactions the provider undid after they succeeded (see `reversal`), and
    of the refunds of a capture or sale it undid: no money was there to give back. A refund names
    its capture by parent, by the capture its event named, or, acting on the payment (no parent:
    the capture was known only from a running total), by the object it was sent to."""
    for t in txns:  # a loop, not any() over a generator: asked on every outcome, and rarely true
        if t.kind == K.REVERSAL:
            break
    else:
        return _NOTHING_UNDONE
    undone = {t.parent_id for t in txns if t.kind == K.REVERSAL and t.status == S.SUCCEEDED}
    objects = {t.provider_reference for t in txns if t.id in undone and t.kind != K.REFUND and t.provider_reference}
    return frozenset(undone | {t.id for t in txns if t.kind == K.REFUND and (
        t.parent_id in undone or t.request.get("capture") in objects
        or (t.parent_id is None and t.request.get("reference") in objects))})


def reauthorized(references: Mapping[str, str]) -> bool:
    """Whether the authorization captures act on renews another (`REAUTHORIZED`): a reauthorization
    holds its own amount, more or less than the first operation asked, so what the payment holds
    is what the provider reported of it (`observed_authorized`, set when the ledger learnt of it:
    `webhooks.apply_event`, reconciliation's reading), never what the first operation asked."""
    renews = references.get(REAUTHORIZED)
    return renews is not None and renews != references.get("authorization")


def state_of(p: Payment) -> str:
    return _state(p.authorized.minor, p.captured.minor, p.refunded.minor, failed=p.failed, voided=p.voided,
                  closed=p.capture_closed, waiting=waits(p))


def _state(authorized: int, captured: int, refunded: int, *, failed: bool, voided: bool, closed: bool,
           waiting: bool) -> str:
    if authorized == 0:
        if failed:
            return PaymentState.FAILED
        if voided:
            return PaymentState.VOIDED
        return PaymentState.ACTION_REQUIRED if waiting else PaymentState.PENDING
    if voided and captured == 0:
        return PaymentState.VOIDED
    closed = closed or captured >= authorized
    if refunded > 0:
        return PaymentState.REFUNDED if closed and refunded >= captured else PaymentState.PARTIALLY_REFUNDED
    if captured > 0:
        return PaymentState.CAPTURED if closed else PaymentState.PARTIALLY_CAPTURED
    return PaymentState.AUTHORIZED


# How far along its life a payment is, by state (the ledger's `PaymentState` and the provider's
# `ProviderState` share these names); voided and failed are ends no operation moves on from.
_PROGRESS = {
    PaymentState.AUTHORIZED: 1, PaymentState.PARTIALLY_CAPTURED: 2, PaymentState.CAPTURED: 3,
    PaymentState.PARTIALLY_REFUNDED: 4, PaymentState.REFUNDED: 5, PaymentState.VOIDED: 6, PaymentState.FAILED: 6,
}


def behind(payment: Payment, state: str | None) -> bool:
    """Whether the provider's payment, in `state`, is further on than the ledger's `payment` after
    an operation it answered: it moved on since (voided, expired, captured or refunded before a
    retry under the operation's key found what an earlier attempt made). An answer to the
    operation just made names the state it made, never one further on."""
    return _PROGRESS.get(state or "", 0) > _PROGRESS.get(payment.state, 0)


_TOTALS: Final = {K.CAPTURE: "captured", K.REFUND: "refunded"}  # the running total each kind raises


def on_floor(payment: Payment) -> bool:
    """Whether a captured or refunded total of the payment may stand on a provider-reported floor
    (`observed_*`): only then can an operation recorded succeeded fail to raise it (`absorbed`)."""
    return payment.observed_captured.minor > 0 or payment.observed_refunded.minor > 0


def newly_succeeded(before: Sequence[Transaction], after: Sequence[Transaction]) -> list[Transaction]:
    """The captures and refunds in `after` (a payment's transactions once a unit recorded an
    answer or an event) that succeeded in that unit, by `before` (as the unit found them), and
    stand (not undone in it)."""
    done = {t.id for t in before if t.status == S.SUCCEEDED}
    undone = {t.parent_id for t in after if t.kind == K.REVERSAL}
    return [t for t in after if t.kind in _TOTALS and t.status == S.SUCCEEDED and t.id not in done
            and t.id not in undone]


def absorbed(before: Payment, after: Payment, settled: Sequence[Transaction]) -> bool:
    """Whether captures or refunds just recorded succeeded (`settled`: by the operation's answer,
    or by the provider's event, which also records one made beside paywire) raised their
    running total by less than their amounts: the total stood on a provider-reported floor
    (`observed_*`, a reading of the provider's totals) counting operations the ledger holds no
    transaction for (made beside it, e.g. in the provider's dashboard), so the floor stands for
    them and the new amounts are not added to it. Only the provider can say the total now: what
    is left to capture or refund would otherwise count those amounts twice."""
    for kind, total in _TOTALS.items():
        if getattr(before, f"observed_{total}").minor <= 0:
            continue
        amount = sum(held_minor(t) for t in settled
                     if t.kind == kind and t.status == S.SUCCEEDED and t.amount is not None)
        if amount and getattr(after, total).minor - getattr(before, total).minor < amount:
            return True
    return False


# -- checks ---------------------------------------------------------------------------------------
def _usable(payment: Payment, operation: str) -> None:
    if payment.state in PaymentState.FINAL:
        raise StateError(
            f"cannot {operation} payment {payment.id}: it is {payment.state}, a final state; nothing was sent",
            code="payment_final",
        )


def _amount(payment: Payment, amount: Money, operation: str, *, defaulted: bool = False) -> None:
    """`defaulted`: the amount is what is left (the caller gave none), so zero means nothing is."""
    require_money(amount, operation)
    if amount.currency != payment.currency:
        raise InvalidRequest(
            f"cannot {operation} {amount} on payment {payment.id} in {payment.currency}; nothing was sent",
            param="amount", code="currency_mismatch",
        )
    if amount.minor <= 0 and defaulted:
        done = "captured" if operation == "capture" else "refunded"
        raise StateError(f"nothing is left to {operation} on payment {payment.id}: all of it is {done} or being "
                         f"{done}; nothing was sent", code=f"nothing_to_{operation}")
    if amount.minor <= 0:
        raise InvalidRequest(f"the {operation} amount must be positive, got {amount}", param="amount")


def _capable(caps: Capabilities, flag: str, method: str, what: str) -> None:
    if not getattr(caps, flag):
        raise UnsupportedOperation(
            f"payment method {method!r} does not support {what}; nothing was sent", code=f"no_{flag}"
        )


def consumed(payment: Payment, txns: Sequence[Transaction], caps: Capabilities) -> Money:
    """What captures of the payment's authorization took of it that the provider undid since, where
    the provider keeps such a capture against its authorization (`Capabilities.undone_capture_consumes`):
    no longer captured, yet not authorized again. PayPal leaves an authorization whose capture was
    charged back as its captures left it (CAPTURED stays CAPTURED): capturing that money again
    would be refused, or collect it twice. Elsewhere the provider's reading says (`reconcile`)."""
    if not caps.undone_capture_consumes or payment.flow != K.AUTHORIZE or not any(t.kind == K.REVERSAL for t in txns):
        return _money(0, payment.currency)
    undone = _undone(txns)
    return _money(sum(min(_minor(t, payment.currency), held_minor(t)) for t in txns
                      if t.kind == K.CAPTURE and t.status == S.SUCCEEDED and t.amount is not None and t.id in undone),
                  payment.currency)


def capturable(payment: Payment, txns: Sequence[Transaction], caps: Capabilities) -> Money:
    """What the provider still lets be captured of the payment, ignoring operations in flight:
    `Payment.capturable` less what captures undone since took of it (`consumed`)."""
    left = payment.capturable - consumed(payment, txns, caps)
    return left if left.minor > 0 else _money(0, payment.currency)


class Reported(NamedTuple):
    """What events waiting for an operation in flight report (`webhooks.reported_waiting`): the
    money they name, and (for a capture) whether one voided the authorization."""

    amount: Money | None
    voided: bool = False


_UNREPORTED: Final = Reported(None)


def check_capture(payment: Payment, txns: Sequence[Transaction], amount: Money, caps: Capabilities, *,
                  defaulted: bool = False, reported: Callable[[], Reported] | None = None) -> None:
    """Refuse an impossible capture. `reported`, asked only while a capture or first operation is
    in flight: captures the provider reported whose events wait for it count as taken beside it,
    as `check_refund` counts refunds (a provider that lets captures go over their authorization,
    PayPal's overage, would otherwise take what the buyer never authorized); an authorization the
    provider reported voided so takes no further capture."""
    _capable(caps, "capture", payment.method, "capture")
    _usable(payment, "capture")
    _amount(payment, amount, "capture", defaulted=defaulted)
    if payment.flow == K.SALE:
        raise StateError(f"payment {payment.id} is a sale and was captured when it was made", code="already_captured")
    if payment.state in (PaymentState.PENDING, PaymentState.ACTION_REQUIRED):
        raise StateError(f"payment {payment.id} is {payment.state}: nothing is authorized yet", code="not_authorized")
    flight = in_flight(payment, txns)
    if flight.void or payment.voided:
        raise StateError(f"payment {payment.id} is being voided; it cannot be captured", code="void_in_flight")
    told = reported() if reported is not None and (flight.captures.minor or flight.initial) else _UNREPORTED
    if told.voided:
        raise StateError(f"payment {payment.id} cannot be captured: the provider reported its authorization voided in "
                         "an event that waits for the capture in flight whose answer is unknown; reconcile the payment "
                         "(reconcile(payment_id=...)) to learn what that capture took; nothing was sent",
                         code="void_in_flight")
    if not caps.capture_multiple and (payment.captured.minor > 0 or flight.captures.minor > 0):
        raise UnsupportedOperation(
            f"payment method {payment.method!r} allows one capture per payment and payment {payment.id} "
            "already has one; nothing was sent", code="no_capture_multiple",
        )
    if payment.capture_closed:
        raise StateError(f"payment {payment.id} allows no further capture (a final capture was made)",
                         code="capture_closed")
    if REAUTHORIZATION_UNDECIDED in payment.references:
        raise StateError(f"payment {payment.id} cannot be captured: the provider has not created the reauthorization "
                         f"{payment.references[REAUTHORIZATION_UNDECIDED]} of its authorization (it reviews it, or "
                         "denied it), and takes no capture meanwhile; nothing was sent", code="not_authorized")
    for t in txns:  # a loop, not any() over a generator: asked on every capture
        if t.kind == K.CAPTURE and t.status in S.OPEN and t.request.get("final"):
            raise StateError(f"payment {payment.id} has a final capture in flight; no further capture until it is "
                             "settled", code="capture_closed")
    # minor units: cheap on every capture; captures undone since still took their part (`consumed`,
    # none where the provider does not keep them against the authorization)
    taken = consumed(payment, txns, caps).minor if caps.undone_capture_consumes else 0
    uncaptured = payment.authorized.minor - payment.captured.minor - taken
    remaining = uncaptured - flight.captures.minor
    why = ""
    if told.amount is not None and told.amount.minor > 0:
        remaining -= told.amount.minor
        why = (f", nor reported captured ({told.amount}) in an event that waits for the capture in flight whose "
               "answer is unknown; reconcile the payment (reconcile(payment_id=...)) to learn which capture it is")
    if amount.minor > remaining:
        raise StateError(
            f"cannot capture {amount} on payment {payment.id}: only {Money(max(remaining, 0), payment.currency)} is "
            f"authorized and not yet captured (or being captured){why}; nothing was sent",
            code="capture_exceeds_authorized",
        )
    if not caps.capture_partial and amount.minor != uncaptured:
        raise UnsupportedOperation(
            f"payment method {payment.method!r} cannot capture part of an authorization: capture "
            f"{Money(uncaptured, payment.currency)} or void; nothing was sent", code="no_capture_partial",
        )


def closed_by_declined(txn: Transaction, caps: Capabilities) -> bool:
    """Whether `txn`, failed by the provider's word about the object it made (its event, its
    reading listing it, or a retry's answer naming what it found under the key: the transaction
    holds that object's reference), is a final capture that closed its authorization for good
    (`Capabilities.declined_final_capture_closes`): the provider took the request, which released
    the rest, and then declined the capture (at settlement, or its processor did)."""
    return (caps.declined_final_capture_closes and txn.kind == K.CAPTURE and txn.status == S.FAILED
            and bool(txn.request.get("final")) and txn.provider_reference is not None)


def check_void(payment: Payment, txns: Sequence[Transaction], caps: Capabilities) -> None:
    _capable(caps, "void", payment.method, "void")
    _usable(payment, "void")
    flight = in_flight(payment, txns)
    if payment.captured.minor > 0 or flight.captures.minor > 0:
        _releasable(payment, txns, flight, caps)
    elif payment.capture_closed:
        # Nothing captured in the ledger, yet the authorization takes no more: a capture the
        # provider holds undecided took it (Braintree's Control Panel capture of all of it, a bank
        # account's, SETTLEMENT_PENDING), or a final capture released the rest and was undone since.
        raise StateError(f"payment {payment.id} has nothing left to void: a capture took its authorization or "
                         "released the rest, and no further capture is possible; nothing was sent",
                         code="void_after_capture")
    elif consumed(payment, txns, caps).minor > 0 and capturable(payment, txns, caps).minor == 0:
        raise StateError(f"payment {payment.id} has nothing left to void: its captures took all of its authorization "
                         "(one the provider undid since still took its part); nothing was sent",
                         code="void_after_capture")
    elif payment.state == PaymentState.ACTION_REQUIRED:
        _cancellable(payment, flight, caps)
    elif payment.state != PaymentState.AUTHORIZED:
        raise StateError(f"payment {payment.id} is {payment.state}: only an authorization, or a payment waiting for "
                         "its buyer, can be voided", code="not_authorized")
    if flight.void:
        raise StateError(f"payment {payment.id} is already being voided", code="void_in_flight")


def _releasable(payment: Payment, txns: Sequence[Transaction], flight: InFlight, caps: Capabilities) -> None:
    """A void of a payment with a capture releases what its authorization has left, where the
    provider allows it (`void_after_capture`): the captures stand. Not while a capture is in
    flight (the provider may take the rest with it), nor once nothing is left to release."""
    if not caps.void_after_capture:
        raise StateError(f"payment {payment.id} has a capture; refund it instead of voiding", code="void_after_capture")
    if flight.captures.minor > 0:
        raise StateError(f"payment {payment.id} is being captured; void what is left once that capture is settled; "
                         "nothing was sent", code="capture_in_flight")
    if capturable(payment, txns, caps).minor == 0:
        raise StateError(f"payment {payment.id} has nothing left to void: its captures took all of its authorization, "
                         "or a final capture or a void released the rest; refund what was captured instead; nothing "
                         "was sent", code="void_after_capture")


def _cancellable(payment: Payment, flight: InFlight, caps: Capabilities) -> None:
    """A void of a payment waiting for its buyer cancels it at the provider: only where the
    provider can (`cancel_waiting`), and not while a completion is in flight (its outcome first)."""
    if not caps.cancel_waiting:
        raise UnsupportedOperation(
            f"payment method {payment.method!r} cannot cancel payment {payment.id} while it waits for its buyer: the "
            "provider has no cancel for it; nothing was sent. Do not complete it: it takes no money unless it is "
            "completed, and reconcile() (or the Janitor) records it failed once the provider reports it lapsed",
            code="no_cancel_waiting")
    if flight.initial:
        raise StateError(f"payment {payment.id} is being completed; void it once that is settled",
                         code="complete_in_flight")


def _named(refund: Transaction) -> str | None:
    """The provider object a refund without a parent gives money back from: the capture its event
    named (recorded before the ledger held that capture), or, acting on the payment, the object it
    was sent to (`refund_target`). Once the ledger holds that capture, the refund is its own."""
    return refund.request.get("capture") or refund.request.get("reference")


def capture_parents(payment: Payment, txns: Sequence[Transaction]) -> list[tuple[Transaction, Money]]:
    """Captured transactions (captures, or the sale) with what is left to refund on each, newest
    first. A refund counts against its parent, or, without one, the capture it names (`_named`)."""
    undone = _undone(txns)
    parents = [
        t for t in txns
        if t.status == S.SUCCEEDED and t.amount is not None and t.id not in undone
        and (t.kind == K.CAPTURE or (payment.flow == K.SALE and t.kind in K.INITIAL))
    ]
    # A refund succeeded spent what the provider returned; one in flight, all it asked.
    refunds = [t for t in txns if t.kind == K.REFUND and t.amount is not None
               and (t.status == S.SUCCEEDED or t.open) and t.id not in undone]
    result = []
    for parent in reversed(parents):
        ref = parent.provider_reference
        spent = sum(held_minor(t) if t.status == S.SUCCEEDED else t.amount.minor for t in refunds
                    if t.amount is not None and (t.parent_id == parent.id
                                                 or (t.parent_id is None and ref is not None and _named(t) == ref)))
        result.append((parent, Money(held_minor(parent) - spent, payment.currency)))
    return result


def refund_target(payment: Payment, parent: Transaction | None) -> str | None:
    """The provider object a refund of `parent` acts on; without one (or where a capture settled by
    reconciliation lacks its own id), the payment's latest capture, else the payment itself."""
    known = parent.provider_reference if parent else None
    return known or payment.references.get("capture") or payment.reference


def _taken_back(txns: Sequence[Transaction], parents: Sequence[tuple[Transaction, Money]]) -> frozenset[str]:
    """The provider objects of captures (or a sale) the provider undid that no standing one also names."""
    if not any(t.kind == K.REVERSAL for t in txns):
        return frozenset()
    undone = {t.parent_id for t in txns if t.kind == K.REVERSAL and t.status == S.SUCCEEDED}
    standing = {p.provider_reference for p, _ in parents}
    return frozenset(t.provider_reference for t in txns if t.id in undone and t.kind != K.REFUND
                     and t.provider_reference and t.provider_reference not in standing)


def check_refund(payment: Payment, txns: Sequence[Transaction], amount: Money,
                 caps: Capabilities, *, defaulted: bool = False,
                 reported: Callable[[], Reported] | None = None) -> Transaction | None:
    """Refuse an impossible refund; otherwise the captured transaction it refunds, or None for
    money the provider reported captured without a capture the ledger holds (its running total
    from an event or reconciliation: a capture made in the provider's dashboard, a 3-D Secure
    sale finished before `complete()`): the refund then acts on the payment, unless a capture is
    in flight and no capture or charge of the payment is known, or the capture it would go to
    (`refund_target`) is one the provider took back (either waits for reconciliation).

    `reported`, asked only while a refund is in flight: refunds the provider reported whose events
    wait for it (`webhooks.reported_waiting`) count as spent beside it: either may be the other,
    but never offering what the provider may no longer hold comes first, so until reconciliation
    names the refund in flight a refund the provider would take may be refused."""
    _capable(caps, "refund", payment.method, "refunds")
    _usable(payment, "refund")
    if payment.captured.minor == 0:
        raise StateError(f"payment {payment.id} has nothing captured to refund", code="nothing_captured")
    _amount(payment, amount, "refund", defaulted=defaulted)
    flight = in_flight(payment, txns)
    if not caps.refund_multiple and (payment.refunded.minor > 0 or flight.refunds.minor > 0):
        raise UnsupportedOperation(
            f"payment method {payment.method!r} allows one refund per payment; nothing was sent",
            code="no_refund_multiple",
        )
    remaining = payment.captured - payment.refunded - flight.refunds
    told = ""
    waiting = reported().amount if reported is not None and flight.refunds.minor else None
    if waiting is not None and waiting.minor > 0:
        remaining -= waiting
        told = (f", nor reported refunded ({waiting}) in an event that waits for the refund in flight whose answer "
                "is unknown; reconcile the payment (reconcile(payment_id=...)) to learn which refund it is")
    if amount > remaining:
        raise StateError(
            f"cannot refund {amount} on payment {payment.id}: only {max(remaining, Money.zero(payment.currency))} "
            f"is captured and not yet refunded (or being refunded){told}; nothing was sent",
            code="refund_exceeds_captured",
        )
    if not caps.refund_partial and amount != payment.captured - payment.refunded:
        raise UnsupportedOperation(
            f"payment method {payment.method!r} cannot refund part of a payment: refund "
            f"{payment.captured - payment.refunded}; nothing was sent", code="no_refund_partial",
        )
    parents = capture_parents(payment, txns)
    for parent, left in parents:
        if left >= amount:
            return parent
    # What is refundable beyond what the captures the ledger holds have left.
    beyond = remaining.minor - sum(max(left.minor, 0) for _, left in parents)
    if beyond >= amount.minor:
        if flight.captures.minor > 0 and not (payment.references.get("capture") or payment.references.get("charge")):
            # No capture or charge of it is known to send the refund to, and the money may be a
            # capture of the service's own whose answer is still to come: the refund would act on
            # the payment object, which a provider that refunds captures refuses.
            raise StateError(
                f"cannot refund {amount} on payment {payment.id} yet: a capture of it is in flight and the "
                "captured money is known only from the provider's running total, with no capture to refund; "
                "reconcile the payment first (reconcile(payment_id=...)); nothing was sent",
                code="capture_in_flight",
            )
        target = refund_target(payment, None)
        if target in _taken_back(txns, parents):
            # The money is known only from the provider's running total, and the capture the refund
            # would act on gave it back (a chargeback, a settlement declined): the provider refuses it.
            raise StateError(
                f"cannot refund {amount} on payment {payment.id} yet: the captured money left is known only from the "
                f"provider's running total, and the capture a refund of the payment acts on ({target}) is one the "
                "provider took back; reconcile the payment (reconcile(payment_id=...)) to learn which capture holds "
                "the money, or refund it at the provider; nothing was sent",
                code="capture_taken_back",
            )
        return None
    most = max([*(left for _, left in parents), Money(max(beyond, 0), payment.currency)])
    raise StateError(
        f"cannot refund {amount} on payment {payment.id} in one refund: no single capture has that much "
        f"left (at most {most}); split the refund", code="refund_exceeds_capture",
    )


def check_complete(payment: Payment, txns: Sequence[Transaction], caps: Capabilities) -> None:
    _usable(payment, "complete")
    if payment.state != PaymentState.ACTION_REQUIRED:
        raise StateError(
            f"payment {payment.id} is {payment.state}: only a payment waiting for buyer action can be completed",
            code="not_action_required",
        )
    flight = in_flight(payment, txns)
    if flight.initial:
        raise StateError(f"payment {payment.id} is already being completed", code="complete_in_flight")
    if flight.void:
        raise StateError(f"payment {payment.id} is being cancelled (voided); it cannot be completed",
                         code="void_in_flight")
