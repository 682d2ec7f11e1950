"""PAYMENT.AUTHORIZATION.CREATED of an authorization delivered after its reauthorization's (PayPal
retries a delivery for days, and a reauthorization comes from day 4 on): the ledger keeps
capturing the reauthorization. PayPal refuses a capture of an authorization it reauthorized
("capture <reauthorization> instead"), so an event moving the ledger back to the original would
make the service offer, and send, captures PayPal refuses until the payment is reconciled. Real
emulator on loopback, the service on SQLite."""

from __future__ import annotations

from typing import Any

from paywire import Money, PaymentService
from paywire.ledger import PaymentState

from .conftest import deliver_about

CREATED = "PAYMENT.AUTHORIZATION.CREATED"


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def test_the_original_authorizations_late_event_leaves_captures_on_its_reauthorization(
        paypal: Any, service: PaymentService) -> None:
    app = paypal.app
    payment = service.authorize("paypal", eur("100.00"), source=app.vault_card(), idempotency_key=paypal.key())
    original = payment.references["authorization"]
    paypal.days_pass(4)  # past the honor period: PayPal reauthorizes
    renewed = paypal.run("reauthorize", reference=original, amount=eur("100.00"), idempotency_key=paypal.key())
    deliver_about(paypal, service, CREATED, renewed.reference)
    assert service.get_payment(payment.id).references["authorization"] == renewed.reference

    deliver_about(paypal, service, CREATED, original)  # late: its first delivery failed
    assert service.get_payment(payment.id).references["authorization"] == renewed.reference
    captured = service.capture(payment.id, eur("30.00"), final=False, idempotency_key=paypal.key())
    assert (captured.state, captured.captured) == (PaymentState.PARTIALLY_CAPTURED, eur("30.00"))
    with app.lock:
        assert [app.captures[c].amount_minor for c in app.authorizations[renewed.reference].capture_ids] == [3000]
    assert not service.reconcile(payment_id=payment.id).mismatches
