"""A capture event that waits for a capture of the service's own whose answer was lost: it may be
that capture, or another made in PayPal's dashboard. PayPal lets captures go over their
authorization (its overage), so a capture the ledger offered from what it thought was left could
take money the buyer never authorized; until reconciliation says which it is, a new capture counts
both as taken. Real emulator on loopback."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import Money, OutcomeUnknown, Payment, PaymentService, StateError
from paywire.testing.emulator import Fault


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def _lost_capture(paypal: Any, service: PaymentService, value: str) -> Payment:
    """An authorization of 100.00 with a capture of `value` that PayPal made and whose answer was lost."""
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    paypal.app.inject(Fault(kind="drop_after", method="POST", path="/capture$"))
    with pytest.raises(OutcomeUnknown):
        service.capture(payment.id, eur(value), final=False, idempotency_key=paypal.key())
    return payment


def _beside_a_lost_capture(paypal: Any, service: PaymentService) -> tuple[Payment, list[str]]:
    """A lost capture of 30.00 and a dashboard capture of 30.00, their events delivered: the
    payment, and what became of the events."""
    payment = _lost_capture(paypal, service, "30.00")
    paypal.run("capture", reference=payment.references["authorization"], amount=eur("30.00"), final=False,
               idempotency_key=paypal.key())
    return payment, _deliver_captures(paypal, service)


def _deliver_captures(paypal: Any, service: PaymentService) -> list[str]:
    statuses = []
    for event in [e for e in paypal.app.events if e["event_type"] == "PAYMENT.CAPTURE.COMPLETED"]:
        body, headers = paypal.app.signed_event(event)
        statuses.append(service.receive_webhook("paypal", headers, body).status)
    return statuses


def test_a_dashboard_capture_waiting_on_a_lost_capture_is_not_offered_to_capture_again(
        paypal: Any, service: PaymentService) -> None:
    payment, statuses = _beside_a_lost_capture(paypal, service)
    assert statuses == ["deferred", "deferred"]
    captures = len(paypal.app.captures)
    with pytest.raises(StateError) as refused:  # PayPal would take it: 115.00 of a 100.00 authorization
        service.capture(payment.id, eur("55.00"), final=False, idempotency_key=paypal.key())
    assert refused.value.code == "capture_exceeds_authorized"
    assert len(paypal.app.captures) == captures  # nothing was sent
    service.reconcile(payment_id=payment.id)
    assert service.get_payment(payment.id).captured == eur("60.00")
    assert service.capture(payment.id, idempotency_key=paypal.key()).captured == eur("100.00")


def test_the_lost_captures_own_event_holds_its_amount_twice_until_reconciled(
        paypal: Any, service: PaymentService) -> None:
    payment = _lost_capture(paypal, service, "30.00")
    assert _deliver_captures(paypal, service) == ["deferred"]
    with pytest.raises(StateError) as refused:  # PayPal holds 70.00 uncaptured: the event is this capture
        service.capture(payment.id, eur("40.01"), final=False, idempotency_key=paypal.key())
    assert refused.value.code == "capture_exceeds_authorized"
    assert "reconcile" in str(refused.value) and "30.00 EUR" in str(refused.value)
    assert len(paypal.app.captures) == 1
    service.capture(payment.id, eur("40.00"), final=False, idempotency_key=paypal.key())  # within either way
    service.reconcile(payment_id=payment.id)
    payment = service.get_payment(payment.id)
    assert payment.captured == eur("70.00")
    assert [(t.status, t.amount) for t in service.list_transactions(payment.id) if t.kind == "capture"] == [
        ("succeeded", eur("30.00")), ("succeeded", eur("40.00"))]  # one capture at PayPal, one in the ledger
    assert service.capture(payment.id, idempotency_key=paypal.key()).captured == eur("100.00")
    assert len(paypal.app.captures) == 3


def test_capturing_the_rest_while_an_event_waits_is_refused_not_guessed(
        paypal: Any, service: PaymentService) -> None:
    payment, _ = _beside_a_lost_capture(paypal, service)
    # "All that is left" is 40.00 or 70.00 as the waiting event is another capture or the lost one.
    with pytest.raises(StateError) as refused:
        service.capture(payment.id, idempotency_key=paypal.key())
    assert refused.value.code == "capture_exceeds_authorized"
    assert len(paypal.app.captures) == 2
