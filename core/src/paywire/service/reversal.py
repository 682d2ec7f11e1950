"""Recording an operation the provider undid after it succeeded: a refund that failed later
(Stripe's `refund.failed` for a refund that had succeeded, a refund a bank returned), a capture or
a sale declined at settlement (Braintree's `transaction_settlement_declined`). Append-only history
cannot turn the operation itself into a failure, so a reversal transaction records it, and the
totals count the operation no more.
"""

from __future__ import annotations

from collections.abc import Sequence

from paywire.ledger.interface import LedgerUnit
from paywire.ledger.model import Payment, SettledBy, Transaction, TransactionKind, TransactionStatus, now, replace
from paywire.money import Money
from paywire.service.keys import fingerprint, new_id

__all__ = ["reverse", "reversible"]

K = TransactionKind


def reversible(payment: Payment, txn: Transaction) -> bool:
    """Whether `txn` moved money a provider can undo after it succeeded: a refund, a capture, or
    the first operation of a sale."""
    return txn.status == TransactionStatus.SUCCEEDED and txn.amount is not None and (
        txn.kind in (K.REFUND, K.CAPTURE) or (payment.flow == K.SALE and txn.kind in K.INITIAL))


def _lowered(floor: Money, amount: Money) -> Money:
    # A reported total that counted the operation is at least its amount; one below it was
    # reported without it (after the provider undid it, say), and stands as it is.
    return floor - amount if floor.minor >= amount.minor else floor


def reverse(u: LedgerUnit, payment: Payment, txns: Sequence[Transaction], txn: Transaction, *,
            origin: str, note: str) -> Payment:
    """Record that the provider undid `txn` (once: a second report changes nothing) and lower the
    provider-reported floors by its amount where they can have counted it, so the ledger claims no
    more than the provider holds. A sale undone leaves nothing authorized: the payment failed.
    Returns the payment to derive and store."""
    if txn.amount is None or any(t.kind == K.REVERSAL and t.parent_id == txn.id for t in txns):
        return payment
    at = now()
    u.insert_transaction(Transaction(
        id=new_id("txn"), payment_id=payment.id, method=payment.method, kind=K.REVERSAL,
        amount=txn.amount, status=TransactionStatus.SUCCEEDED,
        idempotency_key=f"reversal-{txn.id}",  # one per operation, whichever report comes first
        fingerprint=fingerprint(K.REVERSAL, payment.method, payment.id, {txn.kind: txn.id}),
        parent_id=txn.id, origin=origin, request={txn.kind: txn.provider_reference or txn.id},
        response={"note": note}, created_at=at, updated_at=at, finished_at=at,
        settled_by=SettledBy.WEBHOOK if origin == "webhook" else SettledBy.RECONCILE,
    ))
    if txn.kind == K.REFUND:
        return replace(payment, observed_refunded=_lowered(payment.observed_refunded, txn.amount))
    # Its refunds gave back no money either (the totals count them no more, `rules.derive`).
    for refund in (t for t in txns if t.kind == K.REFUND and t.parent_id == txn.id and t.amount is not None
                   and t.status == TransactionStatus.SUCCEEDED):
        assert refund.amount is not None
        payment = replace(payment, observed_refunded=_lowered(payment.observed_refunded, refund.amount))
    payment = replace(payment, observed_captured=_lowered(payment.observed_captured, txn.amount))
    if txn.kind in K.INITIAL:
        payment = replace(payment, observed_authorized=_lowered(payment.observed_authorized, txn.amount),
                          failed=True)
    return payment
