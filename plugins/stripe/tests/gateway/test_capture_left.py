"""What an authorization has left to capture, in the ledger against Stripe's own records: Stripe
captures a PaymentIntent once and releases the rest (`amount_capturable` 0). A capture made in
the dashboard, refunded there before the ledger reads the payment, leaves the intent refunded,
not captured: once the ledger has read it, it offers nothing more to capture. Real emulator on
loopback."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import Money, PaymentService
from paywire.ledger import PaymentState

EUR = "EUR"


@pytest.mark.parametrize("refund", ["part", "all"])
def test_a_capture_and_refund_made_in_the_dashboard_leave_nothing_to_capture(
        service: PaymentService, app: Any, api: Any, refund: str) -> None:
    payment = service.authorize("stripe", Money.of("100.00", EUR), source="pm_card_visa",
                                return_url="https://shop.example/r", idempotency_key=f"left-auth-{refund}")
    intent = payment.reference or ""
    api.post(f"/v1/payment_intents/{intent}/capture", {"amount_to_capture": 3000})
    refunded = 3000 if refund == "all" else 1000
    api.post("/v1/refunds", {"payment_intent": intent, "amount": refunded})
    with app.lock:
        assert (app.store.payment_intents[intent]["status"], app.store.payment_intents[intent]["amount_capturable"]) \
            == ("succeeded", 0)
    assert not service.reconcile(payment_id=payment.id).mismatches
    payment = service.get_payment(payment.id)
    assert (payment.captured, payment.refunded) == (Money(3000, EUR), Money(refunded, EUR))
    state = PaymentState.REFUNDED if refund == "all" else PaymentState.PARTIALLY_REFUNDED
    assert (payment.state, payment.capturable) == (state, Money.zero(EUR))


def test_an_authorization_stripe_still_holds_is_offered_whole(service: PaymentService, app: Any) -> None:
    """Nothing captured yet: Stripe's `amount_capturable` is all of it, and so is the ledger's."""
    payment = service.authorize("stripe", Money.of("100.00", EUR), source="pm_card_visa",
                                return_url="https://shop.example/r", idempotency_key="left-open")
    assert not service.reconcile(payment_id=payment.id).mismatches
    payment = service.get_payment(payment.id)
    with app.lock:
        assert app.store.payment_intents[payment.reference or ""]["amount_capturable"] == 10000
    assert (payment.state, payment.capturable) == (PaymentState.AUTHORIZED, Money.of("100.00", EUR))
