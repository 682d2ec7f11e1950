"""PayPal lets captures add up to more than their authorization (its overage: 115%, at most USD 75
more, `capture_overage_percent`); the authorization keeps its amount. The ledger keeps
captured <= authorized, so PayPal's reading counts as authorized what the authorization now
covers: its amount, or what its captures took above it. Made outside paywire (the dashboard),
or by paywire while it did not know of an outside capture, such a capture leaves the ledger as
PayPal holds it, and reconciliation clean. Real emulator on loopback."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import Money, PaymentService, StateError


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def _over_captured(paypal: Any, service: PaymentService, value: str = "100.01", *,
                   final: bool = True) -> tuple[str, str]:
    """A payment authorized for 100.00 and captured for `value` in PayPal's dashboard (a final
    capture unless `final` is False), its event received: the payment's id and the capture's."""
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    capture = paypal.run("capture", reference=payment.references["authorization"], amount=eur(value), final=final,
                         idempotency_key=paypal.key())
    paypal.deliver(service, "PAYMENT.CAPTURE.COMPLETED")
    return payment.id, capture.reference


def _as_paypal_holds(paypal: Any, service: PaymentService, payment_id: str) -> None:
    report = service.reconcile(payment_id=payment_id)
    payment = service.get_payment(payment_id)
    held = paypal.run("fetch", reference=payment.reference)
    assert (payment.authorized, payment.captured, payment.refunded) == (held.authorized, held.captured,
                                                                        held.refunded), report
    assert report.clean, report


def test_a_dashboard_capture_over_the_authorization_leaves_the_ledger_as_paypal_holds_it(
    paypal: Any, service: PaymentService
) -> None:
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    paypal.run("capture", reference=payment.references["authorization"], amount=eur("100.01"), final=True,
               idempotency_key=paypal.key())
    paypal.deliver(service, "PAYMENT.CAPTURE.COMPLETED")
    report = service.reconcile(payment_id=payment.id)
    held = paypal.run("fetch", reference=payment.reference)
    later = service.get_payment(payment.id)
    assert (later.authorized, later.captured) == (held.authorized, held.captured), report
    assert report.clean, report


def test_paypal_reports_as_authorized_what_the_authorization_covers(paypal: Any, service: PaymentService) -> None:
    """Its amount until its captures take more; then what they took (115.00 on 100.00)."""
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    authorization = payment.references["authorization"]
    paypal.run("capture", reference=authorization, amount=eur("60.00"), final=False, idempotency_key=paypal.key())
    held = paypal.run("fetch", reference=payment.reference)
    assert (held.state, held.authorized, held.captured) == ("partially_captured", eur("100.00"), eur("60.00"))
    paypal.run("capture", reference=authorization, amount=eur("55.00"), final=False, idempotency_key=paypal.key())
    held = paypal.run("fetch", reference=payment.reference)
    assert (held.state, held.authorized, held.captured) == ("captured", eur("115.00"), eur("115.00"))


@pytest.mark.parametrize(("final", "code"), [(False, "capture_exceeds_authorized"), (True, "capture_closed")])
def test_the_over_captures_event_alone_leaves_nothing_to_capture(paypal: Any, service: PaymentService, final: bool,
                                                                 code: str) -> None:
    """Refused by what is left, and by the capture's being final where it was (PayPal's
    authorization is CAPTURED either way)."""
    payment_id, _ = _over_captured(paypal, service, final=final)
    payment = service.get_payment(payment_id)
    assert (payment.state, payment.authorized, payment.captured) == ("captured", eur("100.01"), eur("100.01"))
    sent = paypal.calls("/capture")
    with pytest.raises(StateError) as refused:
        service.capture(payment_id, eur("0.01"), idempotency_key=paypal.key())
    assert refused.value.code == code
    assert paypal.calls("/capture") == sent
    _as_paypal_holds(paypal, service, payment_id)


def test_paywire_captures_no_more_than_is_authorized_and_not_captured(paypal: Any, service: PaymentService) -> None:
    """The overage is the merchant's agreement with PayPal (none under PSD2), which paywire cannot
    see: a capture above what remains is refused before it is sent."""
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    with pytest.raises(StateError) as refused:
        service.capture(payment.id, eur("100.01"), idempotency_key=paypal.key())
    assert refused.value.code == "capture_exceeds_authorized"
    assert paypal.calls("/capture") == 0
    assert service.get_payment(payment.id).captured == eur("0.00")


def test_a_capture_made_while_behind_an_outside_one_may_land_in_the_overage(
    paypal: Any, service: PaymentService
) -> None:
    """50.00 captured in the dashboard, unheard of: paywire's 60.00 is within what it knows to
    remain, and PayPal takes it (110.00 of 100.00, within 115%)."""
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    paypal.run("capture", reference=payment.references["authorization"], amount=eur("50.00"), final=False,
               idempotency_key=paypal.key())
    service.capture(payment.id, eur("60.00"), idempotency_key=paypal.key())
    _as_paypal_holds(paypal, service, payment.id)
    assert service.get_payment(payment.id).captured == eur("110.00")


def test_an_over_capture_is_refunded_up_to_what_it_took(paypal: Any, service: PaymentService) -> None:
    payment_id, _ = _over_captured(paypal, service, "110.00")
    sent = paypal.calls("/refund")
    with pytest.raises(StateError) as refused:
        service.refund(payment_id, eur("110.01"), idempotency_key=paypal.key())
    assert refused.value.code == "refund_exceeds_captured" and paypal.calls("/refund") == sent
    service.refund(payment_id, eur("105.00"), idempotency_key=paypal.key())
    service.refund(payment_id, eur("5.00"), idempotency_key=paypal.key())
    payment = service.get_payment(payment_id)
    assert (payment.state, payment.captured, payment.refunded) == ("refunded", eur("110.00"), eur("110.00"))
    _as_paypal_holds(paypal, service, payment_id)


@pytest.mark.parametrize("heard", ["event and reading", "reading"])
def test_an_over_capture_paypal_takes_back_leaves_the_ledger_no_more_than_paypal_holds(
    paypal: Any, service: PaymentService, heard: str
) -> None:
    """Once a reading counted the overage as authorized, PayPal taking the capture back (a
    chargeback) lowers what the authorization covers to its amount again, before any reading."""
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    capture = paypal.run("capture", reference=payment.references["authorization"], amount=eur("110.00"), final=True,
                         idempotency_key=paypal.key())
    if heard == "event and reading":
        paypal.deliver(service, "PAYMENT.CAPTURE.COMPLETED")
    service.reconcile(payment_id=payment.id)
    assert service.get_payment(payment.id).authorized == eur("110.00")
    paypal.app.deny_capture(capture.reference)
    paypal.deliver(service, "PAYMENT.CAPTURE.DENIED")
    later, held = service.get_payment(payment.id), paypal.run("fetch", reference=payment.reference)
    assert held.authorized == eur("100.00")
    assert later.authorized <= held.authorized and later.captured <= held.captured, (later, held)
    _as_paypal_holds(paypal, service, payment.id)
