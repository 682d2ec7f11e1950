"""PayPal's PENDING captures and refunds through the payment service: recorded accepted (in flight,
counted nowhere), then settled by PayPal's later decision, from its webhook or by reconciliation,
once; a lost answer is found by reconciliation as PayPal holds it."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import Money, OutcomeUnknown, PaymentService
from paywire.ledger import TransactionStatus
from paywire.testing.emulator import Fault

RETURN_URL = "https://shop.example/paypal/return"
_EVENTS = {"COMPLETED": "PAYMENT.CAPTURE.REFUNDED", "FAILED": "PAYMENT.REFUND.FAILED",
           "CANCELLED": "PAYMENT.REFUND.CANCELLED", "DECLINED": "PAYMENT.CAPTURE.DENIED"}


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def _approved(paypal: Any, service: PaymentService, payer: str, *, sale: bool) -> Any:
    start = service.sale if sale else service.authorize
    payment = start("paypal", eur("30.00"), source="paypal", return_url=RETURN_URL)
    paypal.app.approve(payment.reference, payer)
    return service.complete(payment.id)


@pytest.mark.parametrize("via", ["webhook", "reconcile"])
@pytest.mark.parametrize("decided", ["COMPLETED", "DECLINED"])
def test_a_pending_capture_is_in_flight_until_paypal_decides(paypal: Any, service: PaymentService, via: str,
                                                             decided: str) -> None:
    payment = _approved(paypal, service, "pending", sale=False)
    payment = service.capture(payment.id, eur("20.00"), final=False)
    capture = service.list_transactions(payment.id)[-1]
    assert capture.status == TransactionStatus.ACCEPTED and payment.captured == eur("0.00")
    paypal.app.settle_capture(capture.provider_reference, decided)
    if via == "webhook":
        paypal.deliver(service, "PAYMENT.CAPTURE.COMPLETED" if decided == "COMPLETED" else _EVENTS[decided])
    else:
        service.reconcile(payment_id=payment.id)
    payment = service.get_payment(payment.id)
    captured = eur("20.00") if decided == "COMPLETED" else eur("0.00")
    assert (service.get_transaction(capture.id).status, payment.captured, payment.authorized) == (
        TransactionStatus.SUCCEEDED if decided == "COMPLETED" else TransactionStatus.FAILED, captured, eur("30.00"))
    assert service.reconcile(payment_id=payment.id).clean


@pytest.mark.parametrize("via", ["webhook", "reconcile"])
@pytest.mark.parametrize("decided", ["COMPLETED", "FAILED", "CANCELLED"])
def test_a_pending_refund_whose_answer_was_lost_follows_paypals_decision(paypal: Any, service: PaymentService,
                                                                         via: str, decided: str) -> None:
    payment = _approved(paypal, service, "refund_pending", sale=True)
    paypal.app.inject(Fault(kind="drop_after", path="/refund$"))
    with pytest.raises(OutcomeUnknown):
        service.refund(payment.id, eur("10.00"))
    service.reconcile(payment_id=payment.id)  # PayPal holds it PENDING: accepted, counted nowhere
    refund = service.list_transactions(payment.id)[-1]
    assert (refund.status, service.get_payment(payment.id).refunded) == (TransactionStatus.ACCEPTED, eur("0.00"))
    paypal.app.settle_refund(refund.provider_reference, decided)
    if via == "webhook":
        paypal.deliver(service, _EVENTS[decided])
    service.reconcile(payment_id=payment.id)
    paypal.deliver(service, "PAYMENT.REFUND.PENDING")  # the pending event, late, decides nothing
    done = decided == "COMPLETED"
    payment = service.get_payment(payment.id)
    assert (service.get_transaction(refund.id).status, payment.refunded) == (
        TransactionStatus.SUCCEEDED if done else TransactionStatus.FAILED, eur("10.00") if done else eur("0.00"))
    assert service.reconcile(payment_id=payment.id).clean
