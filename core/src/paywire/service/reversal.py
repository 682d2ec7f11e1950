"""Recording a refund the provider undid after it succeeded (Stripe's `refund.failed` for a refund
that had succeeded, a refund a bank returned): append-only history cannot turn the refund itself
into a failure, so a reversal transaction records it, and the totals count the refund no more.
"""

from __future__ import annotations

from collections.abc import Sequence

from paywire.ledger.interface import LedgerUnit
from paywire.ledger.model import Payment, SettledBy, Transaction, TransactionKind, TransactionStatus, now, replace
from paywire.money import Money
from paywire.service.keys import fingerprint, new_id

__all__ = ["reverse_refund"]


def reverse_refund(u: LedgerUnit, payment: Payment, txns: Sequence[Transaction], refund: Transaction, *,
                   origin: str, note: str) -> Payment:
    """Record that the provider undid `refund` (once: a second report changes nothing) and lower
    the provider-reported refunded floor by its amount where that floor can have counted it, so
    the ledger claims no more than the provider holds. Returns the payment to derive and store."""
    if refund.amount is None or any(t.kind == TransactionKind.REVERSAL and t.parent_id == refund.id for t in txns):
        return payment
    at = now()
    u.insert_transaction(Transaction(
        id=new_id("txn"), payment_id=payment.id, method=payment.method, kind=TransactionKind.REVERSAL,
        amount=refund.amount, status=TransactionStatus.SUCCEEDED,
        idempotency_key=f"reversal-{refund.id}",  # one per refund, whichever report comes first
        fingerprint=fingerprint(TransactionKind.REVERSAL, payment.method, payment.id, {"refund": refund.id}),
        parent_id=refund.id, origin=origin, request={"refund": refund.provider_reference or refund.id},
        response={"note": note}, created_at=at, updated_at=at, finished_at=at,
        settled_by=SettledBy.WEBHOOK if origin == "webhook" else SettledBy.RECONCILE,
    ))
    # A reported total that counted the refund is at least its amount; one below it was reported
    # without it (after the provider undid it, say), and stands as it is.
    floor = payment.observed_refunded.minor
    if floor >= refund.amount.minor:
        floor -= refund.amount.minor
    return replace(payment, observed_refunded=Money(floor, payment.currency))
