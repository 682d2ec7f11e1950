"""Recording an operation the provider undid after it succeeded: a refund that failed later
(Stripe's `refund.failed` for a refund that had succeeded, a refund a bank returned), a capture or
a sale declined at settlement (Braintree's `transaction_settlement_declined`). Append-only history
cannot turn the operation itself into a failure, so a reversal transaction records it, and the
totals count the operation no more.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Final

from paywire.ledger.interface import LedgerUnit
from paywire.ledger.model import Payment, SettledBy, Transaction, TransactionKind, TransactionStatus, replace
from paywire.money import Money
from paywire.service.held import held_minor
from paywire.service.keys import fingerprint, new_id
from paywire.service.rules import reauthorized
from paywire.webhook import EventKind

__all__ = ["FLOOR_READ", "fail_open_refund", "floor_dropped", "reverse", "reversible", "succeeded_first",
           "totals_trusted", "undo_waits"]

K = TransactionKind
S = TransactionStatus
# The response summary's key, on a refund reconciliation recorded undecided: the refunded total
# (minor units) of the reading that listed it so, which became the payment's floor.
FLOOR_READ: Final = "refunded_read"


def reversible(payment: Payment, txn: Transaction) -> bool:
    """Whether `txn` moved money a provider can undo after it succeeded: a refund, a capture, or
    the first operation of a sale."""
    return txn.status == TransactionStatus.SUCCEEDED and txn.amount is not None and (
        txn.kind in (K.REFUND, K.CAPTURE) or (payment.flow == K.SALE and txn.kind in K.INITIAL))


def succeeded_first(payment: Payment, txn: Transaction) -> Transaction | None:
    """`txn` as succeeded, if the provider failed it after it was open (by an event, or listing it
    failed to reconciliation) and it is of a kind the provider can undo; else None. Such a
    failure may be a decline or the undoing of an operation that succeeded meanwhile (and was
    counted in a running total); an event saying it succeeded, or was reversed, tells: it did.
    Not a failure the provider answered the request with, nor reconciliation's conclusion that
    the request never landed (retryable: no word of the provider's)."""
    if txn.status != TransactionStatus.FAILED or txn.retryable or not txn.provider_reference \
            or txn.settled_by not in (SettledBy.WEBHOOK, SettledBy.RECONCILE):
        return None
    done = replace(txn, status=TransactionStatus.SUCCEEDED)
    return done if reversible(payment, done) else None


# What an event naming an object the ledger does not hold yet may undo once it does, by the event's
# kind: a reversed one a capture (its refunds with it) or a refund; a failed one only a refund (one
# naming a capture that succeeded changes nothing, see `webhooks._failed_event`). A running total of
# those kinds may have counted the object while the provider held it.
_UNDOES: Final[Mapping[str, frozenset[str]]] = {
    EventKind.REVERSED: frozenset({K.CAPTURE, K.REFUND}),
    EventKind.FAILED: frozenset({K.REFUND}),
}
_FLOORS: Final = {K.CAPTURE: "observed_captured", K.REFUND: "observed_refunded"}


def totals_trusted(u: LedgerUnit, payment: Payment, txns: Sequence[Transaction], kind: str) -> bool:
    """Whether a running total of `kind` (capture or refund) an event reports can raise the
    payment's floor: not once the provider undid an operation of it, since the event may predate
    that (a total never moves backwards otherwise), nor once it failed one of that kind after it
    was open (`succeeded_first`: it may have succeeded and been counted meanwhile, and its own
    success event, which would say so, may come after the stale total), nor while an event that
    may undo an object such a total counted waits for it (`undo_waits`). Reconciliation, which
    reads the provider now, still sets the floors."""
    if any(t.kind == K.REVERSAL or (t.kind == kind and succeeded_first(payment, t)) for t in txns):
        return False
    return not any(kind in _UNDOES.get(e.kind, ()) for e in u.waiting_events(methods=(), payment_id=payment.id))


def undo_waits(payment: Payment, event_kind: str) -> Payment:
    """The payment once a reversed or failed event about it first waits for the object it names
    (one no transaction holds yet, its own event or answer still to come), or a failed one fails a
    refund still open (which may have succeeded first; see `fail_open_refund`): a running total applied
    before may have counted that object (a capture declined at settlement, a refund the provider
    reported done and then failed), and by how much cannot be told until the ledger holds it. The
    floors of the totals it may be in are dropped (with an authorized floor that may be the
    captured total, see `_authorized_floor`), so the ledger claims what its own transactions
    hold, never more than the provider. An object that never succeeded (a refund declined while
    pending) was in no total: then the ledger claims less until reconciliation reads the
    provider's totals (a failed refund leaves later totals untrusted, see `totals_trusted`).
    `reverse` undoes the object once it comes."""
    zero = Money.zero(payment.currency)
    dropped = {_FLOORS[kind]: zero for kind in _UNDOES[event_kind] if getattr(payment, _FLOORS[kind]) != zero}
    if "observed_captured" in dropped:
        dropped["observed_authorized"] = _authorized_floor(payment, zero)
    return replace(payment, **dropped) if dropped else payment


def fail_open_refund(payment: Payment, refund: Transaction, txns: Sequence[Transaction], event_kind: str) -> Payment:
    """The payment once an event fails `refund`, still open (`txns`: as the unit found them). It
    may have succeeded first and been counted by a total applied since, so the floors it may be in
    are dropped (`undo_waits`), unless the refunded floor is still the total a reading read while
    the provider listed the refund undecided (`_read_without`): a decided refund is never undecided
    again, so neither that total nor any read before it counted the refund, and its failure takes
    nothing back from the floor (dropped, the ledger would offer what the provider refuses)."""
    return payment if _read_without(payment, refund, txns) else undo_waits(payment, event_kind)


def _read_without(payment: Payment, refund: Transaction, txns: Sequence[Transaction]) -> bool:
    """Whether the payment's refunded floor stands on the reading that recorded `refund`
    undecided (`FLOOR_READ`: the total it set as the floor, which cannot count it) and on nothing
    written since: the payment's `updated_at` is still that reading's (every write of the payment
    gives it a new one, as `PaymentService._settle_fetched` checks), the floor is no more than that
    total, and no reversal was recorded (the only write that lowers a floor a later total raised).
    Anything else (a total an event raised, a later reading, a refund its pending event recorded)
    may count the refund: not known, the floor drops."""
    read = refund.response.get(FLOOR_READ)
    return (refund.status == S.ACCEPTED and refund.origin == "reconcile" and type(read) is int
            and refund.updated_at == payment.updated_at and payment.observed_refunded.minor <= read
            and not any(t.kind == K.REVERSAL for t in txns))


def floor_dropped(held: Payment, payment: Payment, before: Sequence[Transaction], after: Sequence[Transaction]) -> bool:
    """Whether the unit that turned `held` (its transactions `before`) into `payment` (`after`)
    failed a refund that was open and brought the refunded floor down (`fail_open_refund`): the
    floor may or may not have counted the refund, so the ledger may offer to refund what the
    provider no longer holds, and only the provider can say what it holds refunded now."""
    opened = {t.id for t in before if t.kind == K.REFUND and t.open}
    return payment.observed_refunded < held.observed_refunded and any(
        t.id in opened and t.status == S.FAILED for t in after)


def _authorized_floor(payment: Payment, captured: Money) -> Money:
    """The provider-reported authorized floor once the captured one comes down to `captured`. A
    provider whose captures may go over their authorization (PayPal's overage) reports as
    authorized what the authorization covers: what its captures took, when more than its amount.
    So an authorized floor no higher than the captured one may be that total, and comes down
    with it; the ledger's own authorization still counts (`rules.derive`), and reconciliation
    reads the provider's again. Not once a reauthorization replaced the ledger's own
    (`rules.reauthorized`): the floor is all that says what it holds, and the provider keeps the
    undone capture against it (its capture consumed it, `rules.consumed`)."""
    if reauthorized(payment.references):
        return payment.observed_authorized
    if payment.observed_authorized <= payment.observed_captured:
        return min(payment.observed_authorized, captured)
    return payment.observed_authorized


def _lowered(floor: Money, amount: Money, *, reported: bool) -> Money:
    """The floor once the provider undid an operation of `amount`. A total that counted it is at
    least its amount, so one below it that the provider `reported` as it is stands: it was
    reported without the operation. One that an earlier reversal lowered is no such total: it
    may still count this operation (a total of 0.75 counting one capture of 0.75, lowered by an
    undone 0.25 to 0.50), so below the amount nothing of it stands. Never more than the provider
    holds; less (a floor reconciliation read after the earlier reversal) until it reads again."""
    if floor.minor >= amount.minor:
        return floor - amount
    return floor if reported else Money.zero(floor.currency)


def reverse(u: LedgerUnit, payment: Payment, txn: Transaction, *, origin: str, note: str) -> Payment:
    """Record that the provider undid `txn` (once: a second report changes nothing) and lower the
    provider-reported floors by what it applied (`held_minor`: less than its amount when the
    provider applied it in part; `_lowered`), so the ledger claims no more than the provider holds,
    nor less. A sale undone leaves nothing authorized: the payment failed.
    After a capture or sale is undone, see `totals_trusted`.
    Returns the payment to derive and store."""
    txns = u.transactions(payment.id)  # as held now: a caller may undo several in one unit
    if txn.amount is None or any(t.kind == K.REVERSAL and t.parent_id == txn.id for t in txns):
        return payment
    applied = Money(held_minor(txn), txn.amount.currency)  # what the totals counted of it
    at = u.now()
    u.insert_transaction(Transaction(
        id=new_id("txn"), payment_id=payment.id, method=payment.method, kind=K.REVERSAL,
        amount=applied, status=TransactionStatus.SUCCEEDED,
        idempotency_key=f"reversal-{txn.id}",  # one per operation, whichever report comes first
        fingerprint=fingerprint(K.REVERSAL, payment.method, payment.id, {txn.kind: txn.id}),
        parent_id=txn.id, origin=origin, request={txn.kind: txn.provider_reference or txn.id},
        response={"note": note}, created_at=at, updated_at=at, finished_at=at,
        settled_by=SettledBy.WEBHOOK if origin == "webhook" else SettledBy.RECONCILE,
    ))
    # No reversal lowered a floor before: each is a total the provider reported (or zero).
    reported = not any(t.kind == K.REVERSAL for t in txns)
    if txn.kind == K.REFUND:
        return replace(payment, observed_refunded=_lowered(payment.observed_refunded, applied, reported=reported))
    # Its refunds gave back no money either (the totals count them no more, `rules.derive`), and
    # which of the refunds a reported refunded total counted cannot be told: that total is dropped
    # (the ledger's own refunds still count; reconciliation reads the provider's again). From now
    # on a running total in an event may predate the reversal (`totals_trusted`).
    captured = _lowered(payment.observed_captured, applied, reported=reported)
    if txn.kind == K.CAPTURE:
        payment = replace(payment, observed_authorized=_authorized_floor(payment, captured))
    payment = replace(payment, observed_captured=captured, observed_refunded=Money.zero(payment.currency))
    if txn.kind in K.INITIAL:
        payment = replace(payment, observed_authorized=_lowered(payment.observed_authorized, applied,
                                                                   reported=reported),
                          failed=True)
    return payment
