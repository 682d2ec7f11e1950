"""Checks of a payment service's ledger that hold whatever the provider: for a plugin's own tests
of the ledger following its provider (the payment service's side of what the contract kit
checks at the gateway)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from paywire.errors import StateError
from paywire.ledger.model import Payment, Transaction
from paywire.money import Money
from paywire.service import rules
from paywire.service.payments import PaymentService
from paywire.service.webhooks import reported_waiting

__all__ = ["offers_at_most", "reconciled_again_changes_nothing"]


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


def offers_at_most(service: PaymentService, payment_id: str, *, refund: int | None, capture: int | None) -> None:
    """Assert that the service's money rules refuse a refund of one minor unit more than `refund`
    and, on an authorization, a capture of one more than `capture`: the most the provider would
    take in one refund and one capture, in minor units (None: not checked). The rules are asked
    directly, nothing is sent, with what events waiting for an operation in flight report, so
    the ledger never offers what the provider no longer holds."""
    payment, txns = service.get_payment(payment_id), service.list_transactions(payment_id)
    caps = service.gateway.method(payment.method).capabilities
    with service.ledger.unit() as u:
        refunds, captures = reported_waiting(u, payment, "refund"), reported_waiting(u, payment, "capture")
    if refund is not None:
        _refuses("refund", refund, payment, txns,
                 lambda over: rules.check_refund(payment, txns, over, caps, reported=lambda: refunds))
    if capture is not None and payment.flow == "authorize":
        _refuses("capture", capture, payment, txns,
                 lambda over: rules.check_capture(payment, txns, over, caps, reported=lambda: captures))


def _refuses(kind: str, most: int, payment: Payment, txns: list[Transaction], check: Callable[[Money], object]) -> None:
    try:
        check(Money(most + 1, payment.currency))
    except StateError:
        return
    raise AssertionError(f"a {kind} of more than the provider's {most} is offered", payment, txns)
