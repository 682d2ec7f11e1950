"""A final capture made in PayPal's dashboard while the authorization's answer is on its way back:
its PAYMENT.CAPTURE.COMPLETED (`final_capture`) comes before the ledger knows the order or the
authorization it names, and is stored unmatched. Applied once the authorization is recorded, it
closes the payment's capture as it would have on receipt (PayPal's authorization is CAPTURED), so
no further capture is sent. Real emulator on loopback, the service on SQLite."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import Money, PaymentService, StateError, Transfer, hookimpl

from .test_ledger_follows_paypal import Dashboard


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


class CaptureDuringAuthorize:
    """Once PayPal answered the order's creation (authorized), the merchant captures 30.00 of it,
    final, in the dashboard, and PayPal's event about that capture is delivered twice."""

    def __init__(self, paypal: Any, service: PaymentService) -> None:
        self.paypal, self.service = paypal, service
        self.receipts: list[str] = []

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str, transfer: Transfer) -> Any:
        response = yield
        if command == "authorize" and transfer.method == "POST" and not self.receipts:
            app = self.paypal.app
            (authorization,) = app.authorizations
            Dashboard(self.paypal.url).capture(app, authorization, "30.00", final=True)
            event = next(e for e in reversed(app.events) if e["event_type"] == "PAYMENT.CAPTURE.COMPLETED")
            body, headers = app.signed_event(event)
            self.receipts += [self.service.receive_webhook("paypal", headers, body).status for _ in range(2)]
        return response


def test_a_final_dashboard_capture_whose_event_came_before_its_payment_closes_the_capture(
        paypal: Any, service: PaymentService) -> None:
    hook = CaptureDuringAuthorize(paypal, service)
    paypal.gateway.plugins.register(hook, name="capture-during-authorize")
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    assert hook.receipts == ["unmatched", "duplicate"]
    assert (payment.captured, payment.capture_closed) == (eur("30.00"), True)
    (capture,) = [t for t in service.list_transactions(payment.id) if t.kind == "capture"]
    assert (capture.origin, capture.request.get("final")) == ("webhook", True)
    paypal.deliver(service, "PAYMENT.CAPTURE.COMPLETED")  # again: applied once
    assert len([t for t in service.list_transactions(payment.id) if t.kind == "capture"]) == 1
    captures = paypal.calls("/capture", "POST")
    with pytest.raises(StateError) as refused:
        service.capture(payment.id, eur("0.01"), final=False, idempotency_key=paypal.key())
    assert refused.value.code == "capture_closed", refused.value
    assert paypal.calls("/capture", "POST") == captures  # nothing was sent
    report = service.reconcile(payment_id=payment.id)  # PayPal's reading agrees
    assert report.clean and not report.mismatches, report
    assert service.get_payment(payment.id).captured == eur("30.00")
