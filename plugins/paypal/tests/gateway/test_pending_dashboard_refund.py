"""A refund made in PayPal's dashboard that PayPal holds PENDING (an eCheck's): the ledger holds it
as an accepted refund of its own, from PAYMENT.REFUND.PENDING or from reconcile's reading, so what
is left to refund leaves it out, and PayPal's decision (its webhook, or a reading) settles that
one transaction."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import Money, PaymentService, StateError
from paywire.ledger import TransactionStatus

RETURN_URL = "https://shop.example/paypal/return"
_DECIDED = {"COMPLETED": "PAYMENT.CAPTURE.REFUNDED", "FAILED": "PAYMENT.REFUND.FAILED"}
S = TransactionStatus


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


@pytest.mark.parametrize("heard", ["webhook", "reconcile"])
@pytest.mark.parametrize("decided", ["COMPLETED", "FAILED"])
def test_a_pending_dashboard_refund_is_held_until_paypal_decides(
        paypal: Any, service: PaymentService, heard: str, decided: str) -> None:
    payment = service.sale("paypal", eur("30.00"), source="paypal", return_url=RETURN_URL)
    paypal.app.approve(payment.reference, "refund_pending")
    payment = service.complete(payment.id)
    capture = payment.references["capture"]
    dashboard = paypal.run("refund", reference=capture, amount=eur("20.00"))  # beside paywire
    assert dashboard.accepted
    if heard == "webhook":
        paypal.deliver(service, "PAYMENT.REFUND.PENDING")
    else:
        assert service.reconcile(payment_id=payment.id).clean
    [refund] = [t for t in service.list_transactions(payment.id) if t.kind == "refund"]
    assert (refund.status, refund.provider_reference, refund.amount, refund.origin) == (
        S.ACCEPTED, dashboard.reference, eur("20.00"), heard)
    with pytest.raises(StateError) as refused:  # PayPal holds 10.00 unrefunded
        service.refund(payment.id, eur("10.01"))
    assert refused.value.code == "refund_exceeds_captured"
    paypal.app.settle_refund(dashboard.reference, decided)
    if heard == "webhook":
        paypal.deliver(service, _DECIDED[decided])
    else:
        service.reconcile(payment_id=payment.id)
    paypal.deliver(service, "PAYMENT.REFUND.PENDING")  # late: PayPal decided it, it reopens nothing
    done = decided == "COMPLETED"
    assert [(t.status, t.provider_reference) for t in service.list_transactions(payment.id) if t.kind == "refund"] == [
        (S.SUCCEEDED if done else S.FAILED, dashboard.reference)]
    assert service.get_payment(payment.id).refunded == (eur("20.00") if done else eur("0.00"))
    assert service.reconcile(payment_id=payment.id).clean
    with pytest.raises(StateError):
        service.refund(payment.id, eur("10.01") if done else eur("30.01"))
    service.refund(payment.id, eur("10.00") if done else eur("30.00"))  # all PayPal holds: taken
