"""A capture event that waits for a capture of the service's own whose answer was lost: it may be
that capture, or another made beside paywire (PayPal's dashboard). Until reconciliation says
which, a new capture counts both as taken, so the service never offers what PayPal would refuse
(its captures of an authorization add up to at most its overage limit, 115% here: 115.00 of
100.00); once it knows, what is left is offered again. Real emulator on loopback."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import Money, OutcomeUnknown, PaymentService, StateError
from paywire.testing.emulator import Fault

from .test_ledger_follows_paypal import Dashboard


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def _beside_a_lost_capture(paypal: Any, service: PaymentService) -> str:
    """An authorization of 100.00, a capture of 25.00 by the service whose answer was lost, and
    one of 25.00 in the dashboard; both events delivered. Returns the payment's id."""
    app = paypal.app
    payment = service.authorize("paypal", eur("100.00"), source=app.vault_card(), idempotency_key=paypal.key())
    app.inject(Fault(kind="drop_after", path="/capture$"))
    with pytest.raises(OutcomeUnknown):
        service.capture(payment.id, eur("25.00"), final=False, idempotency_key=paypal.key())
    app.clear_faults()
    authorization = payment.references["authorization"]
    assert Dashboard(paypal.url).post(f"/v2/payments/authorizations/{authorization}/capture",
                                      {"amount": {"currency_code": "EUR", "value": "25.00"}}) == 201
    for event in [e for e in app.events if e["event_type"] == "PAYMENT.CAPTURE.COMPLETED"]:
        body, headers = app.signed_event(event)
        service.receive_webhook("paypal", headers, body)
    return payment.id


def test_a_capture_beyond_what_paypal_may_still_take_is_refused_until_reconciled(
        paypal: Any, service: PaymentService) -> None:
    payment_id = _beside_a_lost_capture(paypal, service)
    sent = paypal.calls("/capture", "POST")
    with pytest.raises(StateError) as refused:  # PayPal would refuse it: 50.00 of its 115.00 are taken
        service.capture(payment_id, eur("65.01"), final=False, idempotency_key=paypal.key())
    assert refused.value.code == "capture_exceeds_authorized" and "reconcile" in str(refused.value)
    # Both events wait (either may be the lost capture's): 25.00 in flight, 50.00 reported.
    with pytest.raises(StateError) as refused:
        service.capture(payment_id, eur("25.01"), final=False, idempotency_key=paypal.key())
    assert refused.value.code == "capture_exceeds_authorized" and "reconcile" in str(refused.value)
    assert paypal.calls("/capture", "POST") == sent  # nothing was sent

    service.reconcile(payment_id=payment_id)
    assert service.get_payment(payment_id).captured == eur("50.00")
    captured = service.capture(payment_id, eur("50.00"), final=False, idempotency_key=paypal.key())
    assert captured.captured == eur("100.00")


def test_a_capture_within_what_paypal_may_still_take_is_sent(paypal: Any, service: PaymentService) -> None:
    payment_id = _beside_a_lost_capture(paypal, service)
    captured = service.capture(payment_id, eur("25.00"), final=False, idempotency_key=paypal.key())
    assert captured.captured == eur("25.00")  # the events still wait: reconciliation places them
    service.reconcile(payment_id=payment_id)
    assert service.get_payment(payment_id).captured == eur("75.00")
