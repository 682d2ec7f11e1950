"""PayPal's overage on both ledgers: a capture made in PayPal's dashboard above its authorization
(up to 115%), its event, a refund of all it took and PayPal taking a capture back leave each
ledger as PayPal holds the payment, and every reconciliation clean."""

from __future__ import annotations

import pytest

from paywire import Gateway, Money, PaymentService, Subject
from paywire.ledger import Ledger
from paywire.testing.sandbox import Sandbox

# The core package's own session installs no plugin.
paywire_paypal = pytest.importorskip("paywire_paypal", reason="needs the PayPal plugin (the all session has it)")


def _deliver(sandbox: Sandbox, service: PaymentService, event_type: str) -> None:
    event = next(e for e in reversed(sandbox.app.events) if e["event_type"] == event_type)
    body, headers = sandbox.app.signed_event(event)
    service.receive_webhook("paypal", headers, body)


def _as_paypal_holds(gateway: Gateway, service: PaymentService, payment_id: str) -> tuple[Money, Money, Money]:
    report = service.reconcile(payment_id=payment_id)
    assert report.clean, report
    payment = service.get_payment(payment_id)
    held = gateway.execute("paypal", "fetch", Subject(reference=payment.reference))
    assert (payment.authorized, payment.captured, payment.refunded) == (held.authorized, held.captured, held.refunded)
    return payment.authorized, payment.captured, payment.refunded


def test_an_over_capture_its_event_and_its_refund_leave_the_ledger_as_paypal_holds_it(
    paypal: tuple[Sandbox, Gateway], ledger: Ledger,
) -> None:
    sandbox, gateway = paypal
    service = PaymentService(gateway, ledger)
    payment = service.authorize("paypal", Money.of("100.00", "EUR"), source=sandbox.sources["ok"])
    gateway.execute("paypal", "capture", Subject(reference=payment.references["authorization"],
                                                 amount=Money.of("115.00", "EUR"), final=True))
    _deliver(sandbox, service, "PAYMENT.CAPTURE.COMPLETED")
    taken = Money.of("115.00", "EUR")
    assert _as_paypal_holds(gateway, service, payment.id) == (taken, taken, Money.zero("EUR"))
    service.refund(payment.id, taken)
    assert _as_paypal_holds(gateway, service, payment.id) == (taken, taken, taken)
    assert service.get_payment(payment.id).state == "refunded"


def test_an_over_capture_paypal_takes_back_leaves_the_authorization_as_paypal_holds_it(
    paypal: tuple[Sandbox, Gateway], ledger: Ledger,
) -> None:
    sandbox, gateway = paypal
    service = PaymentService(gateway, ledger)
    payment = service.authorize("paypal", Money.of("100.00", "EUR"), source=sandbox.sources["ok"])
    capture = gateway.execute("paypal", "capture", Subject(reference=payment.references["authorization"],
                                                 amount=Money.of("110.00", "EUR"), final=True))
    _deliver(sandbox, service, "PAYMENT.CAPTURE.COMPLETED")
    service.reconcile(payment_id=payment.id)
    sandbox.app.deny_capture(capture.reference)
    _deliver(sandbox, service, "PAYMENT.CAPTURE.DENIED")
    later = service.get_payment(payment.id)
    assert (later.authorized, later.captured) == (Money.of("100.00", "EUR"), Money.zero("EUR"))
    assert _as_paypal_holds(gateway, service, payment.id)[:2] == (Money.of("100.00", "EUR"), Money.zero("EUR"))
