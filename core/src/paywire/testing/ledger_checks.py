"""Checks of a payment service's ledger that hold whatever the provider: for a plugin's own tests
of the ledger following its provider (the payment service's side of what the contract kit
checks at the gateway)."""

from __future__ import annotations

from typing import Any

from paywire.ledger.model import Payment
from paywire.service.payments import PaymentService

__all__ = ["reconciled_again_changes_nothing"]


def reconciled_again_changes_nothing(service: PaymentService, payment_id: str) -> None:
    """Assert that reconciling a payment the provider left as it was is clean and changes none of
    its totals, states or transactions: reconciliation is idempotent."""
    def state(payment: Payment) -> tuple[Any, ...]:
        return (payment.authorized, payment.captured, payment.refunded, payment.state, payment.observed_authorized,
                payment.observed_captured, payment.observed_refunded, payment.capture_closed, payment.voided,
                payment.failed)

    def history() -> list[tuple[Any, ...]]:
        return [(t.id, t.status, t.provider_reference, t.amount) for t in service.list_transactions(payment_id)]

    before, transactions = state(service.get_payment(payment_id)), history()
    assert service.reconcile(payment_id=payment_id).clean
    assert (state(service.get_payment(payment_id)), history()) == (before, transactions)
