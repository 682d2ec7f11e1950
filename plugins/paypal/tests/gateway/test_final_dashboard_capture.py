"""A capture made in PayPal's dashboard closes the payment's capture in the ledger only where PayPal
says it was final (`final_capture`), as PayPal's authorization is then CAPTURED: a capture that was
not final leaves the rest to capture, and so does a final capture's event naming a capture the
ledger holds already. Real emulator on loopback, the service on SQLite."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import Money, OutcomeUnknown, PaymentService, StateError
from paywire.testing.emulator import Fault


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def _authorized(paypal: Any, service: PaymentService) -> tuple[str, str]:
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    return payment.id, payment.references["authorization"]


def _closed(service: PaymentService, payment_id: str) -> None:
    with pytest.raises(StateError) as refused:
        service.capture(payment_id, eur("0.01"), final=False)
    assert refused.value.code == "capture_closed", refused.value


def test_a_dashboard_capture_that_was_not_final_leaves_the_rest_to_capture(
        paypal: Any, service: PaymentService) -> None:
    payment_id, authorization = _authorized(paypal, service)
    paypal.run("capture", reference=authorization, amount=eur("30.00"), final=False)
    paypal.deliver(service, "PAYMENT.CAPTURE.COMPLETED")
    payment = service.get_payment(payment_id)
    assert (payment.state, payment.captured, payment.capture_closed) == ("partially_captured", eur("30.00"), False)
    assert service.capture(payment_id, eur("70.00"), final=True).captured == eur("100.00")


def test_a_final_dashboard_capture_closes_the_capture_as_paypal_holds_it(paypal: Any, service: PaymentService) -> None:
    payment_id, authorization = _authorized(paypal, service)
    paypal.run("capture", reference=authorization, amount=eur("30.00"), final=True)
    paypal.deliver(service, "PAYMENT.CAPTURE.COMPLETED")
    payment = service.get_payment(payment_id)
    assert (payment.state, payment.captured, payment.capture_closed) == ("captured", eur("30.00"), True)
    _closed(service, payment_id)
    report = service.reconcile(payment_id=payment_id)  # PayPal's reading agrees
    assert report.clean and not report.mismatches, report
    service.refund(payment_id, eur("30.00"))  # what was captured stands


def test_the_event_of_the_services_own_capture_closes_nothing_it_did_not(paypal: Any, service: PaymentService) -> None:
    """The ledger holds the capture: what it asked (not final) is what PayPal made."""
    payment_id, _ = _authorized(paypal, service)
    service.capture(payment_id, eur("30.00"), final=False, idempotency_key=paypal.key())
    paypal.deliver(service, "PAYMENT.CAPTURE.COMPLETED")
    assert not service.get_payment(payment_id).capture_closed
    service.capture(payment_id, eur("70.00"), final=True)


def test_a_final_dashboard_capture_beside_a_lost_capture_closes_at_once(
        paypal: Any, service: PaymentService) -> None:
    """A capture of the service's own whose answer was lost was sent not final: the final
    capture's event cannot be that one (PayPal echoes `final_capture` as asked), so it does not
    wait for it: no further capture from then on, and reconciliation names the lost one."""
    payment_id, authorization = _authorized(paypal, service)
    paypal.app.inject(Fault(kind="drop_after", path="/capture$"))
    with pytest.raises(OutcomeUnknown):
        service.capture(payment_id, eur("20.00"), final=False, idempotency_key=paypal.key())
    paypal.app.clear_faults()
    paypal.run("capture", reference=authorization, amount=eur("30.00"), final=True)
    statuses = []
    for event in [e for e in paypal.app.events if e["event_type"] == "PAYMENT.CAPTURE.COMPLETED"]:
        body, headers = paypal.app.signed_event(event)
        statuses.append(service.receive_webhook("paypal", headers, body).status)
    assert statuses == ["deferred", "applied"]  # the lost capture's own waits for it
    _closed(service, payment_id)
    service.reconcile(payment_id=payment_id)
    payment = service.get_payment(payment_id)
    assert (payment.captured, payment.capture_closed) == (eur("50.00"), True)
    _closed(service, payment_id)
