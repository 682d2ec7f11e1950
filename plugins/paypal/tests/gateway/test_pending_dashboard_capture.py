"""A capture made in PayPal's dashboard that PayPal holds PENDING (a review, an eCheck): the ledger
holds it as an accepted capture of its own, from PAYMENT.CAPTURE.PENDING, so what is left to capture
leaves it out, and PayPal's decision (its webhook, or a reading) settles that one transaction. A
final one closes the capture as PayPal's authorization is closed: while it is pending and once it
completed, not once PayPal declined it. Real emulator on loopback, the service on SQLite."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import Money, OutcomeUnknown, PaymentService, StateError
from paywire.ledger import TransactionKind, TransactionStatus
from paywire.testing.emulator import Fault

from .conftest import RETURN_URL

_DECIDED = {"COMPLETED": "PAYMENT.CAPTURE.COMPLETED", "DECLINED": "PAYMENT.CAPTURE.DENIED"}
S = TransactionStatus


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def _pending_authorization(paypal: Any, service: PaymentService) -> str:
    """A wallet authorization of 100.00 whose captures PayPal holds PENDING until decided."""
    payment = service.authorize("paypal", eur("100.00"), source="paypal", return_url=RETURN_URL)
    paypal.app.approve(payment.reference, "pending")
    return service.complete(payment.id).id


def _captures(service: PaymentService, payment_id: str) -> list[tuple[str, str | None, Money | None, str]]:
    return [(t.status, t.provider_reference, t.amount, t.origin)
            for t in service.list_transactions(payment_id) if t.kind == TransactionKind.CAPTURE]


def _refused(service: PaymentService, payment_id: str, amount: str, code: str, *, final: bool = False) -> None:
    with pytest.raises(StateError) as refused:
        service.capture(payment_id, eur(amount), final=final)
    assert refused.value.code == code, refused.value


@pytest.mark.parametrize("heard", ["webhook", "reconcile"])
@pytest.mark.parametrize("decided", ["COMPLETED", "DECLINED"])
def test_a_pending_dashboard_capture_is_held_until_paypal_decides(
        paypal: Any, service: PaymentService, heard: str, decided: str) -> None:
    payment_id = _pending_authorization(paypal, service)
    authorization = service.get_payment(payment_id).references["authorization"]
    dashboard = paypal.run("capture", reference=authorization, amount=eur("40.00"), final=False)  # beside paywire
    assert dashboard.accepted
    paypal.deliver(service, "PAYMENT.CAPTURE.PENDING")
    assert _captures(service, payment_id) == [(S.ACCEPTED, dashboard.reference, eur("40.00"), "webhook")]
    assert service.get_payment(payment_id).captured == eur("0.00")  # PayPal may still decline it
    _refused(service, payment_id, "60.01", "capture_exceeds_authorized")  # PayPal holds 60.00 uncaptured
    assert service.reconcile(payment_id=payment_id).clean  # still pending: as recorded
    assert _captures(service, payment_id) == [(S.ACCEPTED, dashboard.reference, eur("40.00"), "webhook")]
    paypal.app.settle_capture(dashboard.reference, decided)
    if heard == "webhook":
        paypal.deliver(service, _DECIDED[decided])
    else:
        service.reconcile(payment_id=payment_id)
    paypal.deliver(service, "PAYMENT.CAPTURE.PENDING")  # late: PayPal decided it, it reopens nothing
    done = decided == "COMPLETED"
    assert _captures(service, payment_id) == [
        (S.SUCCEEDED if done else S.FAILED, dashboard.reference, eur("40.00"), "webhook")]
    assert service.get_payment(payment_id).captured == (eur("40.00") if done else eur("0.00"))
    assert service.reconcile(payment_id=payment_id).clean
    _refused(service, payment_id, "60.01" if done else "100.01", "capture_exceeds_authorized")
    service.capture(payment_id, eur("60.00") if done else eur("100.00"), final=True)  # all PayPal holds: taken


def test_a_late_pending_event_of_a_decided_dashboard_capture_records_nothing(
        paypal: Any, service: PaymentService) -> None:
    """Its completed event first (delivered out of order): the pending one after it is about a
    capture the ledger holds succeeded, and PayPal no longer holds it pending."""
    payment_id = _pending_authorization(paypal, service)
    authorization = service.get_payment(payment_id).references["authorization"]
    dashboard = paypal.run("capture", reference=authorization, amount=eur("40.00"), final=False)
    paypal.app.settle_capture(dashboard.reference, "COMPLETED")
    paypal.deliver(service, "PAYMENT.CAPTURE.COMPLETED")
    paypal.deliver(service, "PAYMENT.CAPTURE.PENDING")
    assert _captures(service, payment_id) == [(S.SUCCEEDED, dashboard.reference, eur("40.00"), "webhook")]
    assert service.get_payment(payment_id).captured == eur("40.00")
    service.capture(payment_id, eur("60.00"), final=False)  # nothing held in flight beside it


def test_a_pending_event_of_the_services_own_capture_records_no_second_capture(
        paypal: Any, service: PaymentService) -> None:
    payment_id = _pending_authorization(paypal, service)
    own = service.capture(payment_id, eur("30.00"), final=False, idempotency_key=paypal.key())
    paypal.deliver(service, "PAYMENT.CAPTURE.PENDING")
    [recorded] = _captures(service, payment_id)
    assert (recorded[0], recorded[1], recorded[3]) == (S.ACCEPTED, own.references["capture"], "service")
    _refused(service, payment_id, "70.01", "capture_exceeds_authorized")


def test_a_pending_event_of_the_services_capture_in_flight_waits_for_it(paypal: Any, service: PaymentService) -> None:
    """The capture's answer was lost: its pending event may be about it, so it waits (and counts
    beside it meanwhile); once reconciliation names it, the event is about that one."""
    payment_id = _pending_authorization(paypal, service)
    paypal.app.inject(Fault(kind="drop_after", path="/capture$"))
    with pytest.raises(OutcomeUnknown):
        service.capture(payment_id, eur("30.00"), final=False, idempotency_key=paypal.key())
    paypal.app.clear_faults()
    paypal.deliver(service, "PAYMENT.CAPTURE.PENDING")
    assert [c[0] for c in _captures(service, payment_id)] == [S.UNKNOWN]
    _refused(service, payment_id, "40.01", "capture_exceeds_authorized")  # 30.00 lost, 30.00 reported pending
    service.reconcile(payment_id=payment_id)
    [(status, reference, amount, origin)] = _captures(service, payment_id)
    (capture,) = paypal.app.captures
    assert (status, reference, amount, origin) == (S.ACCEPTED, capture, eur("30.00"), "service")
    _refused(service, payment_id, "70.01", "capture_exceeds_authorized")
    service.capture(payment_id, eur("70.00"), final=True)


@pytest.mark.parametrize("decided", ["COMPLETED", "DECLINED"])
def test_a_pending_final_dashboard_capture_closes_the_capture_unless_declined(
        paypal: Any, service: PaymentService, decided: str) -> None:
    """PayPal holds the authorization CAPTURED while a final capture of it is pending, and for good
    once it completed; declined, the authorization takes captures again."""
    payment_id = _pending_authorization(paypal, service)
    authorization = service.get_payment(payment_id).references["authorization"]
    dashboard = paypal.run("capture", reference=authorization, amount=eur("30.00"), final=True)
    paypal.deliver(service, "PAYMENT.CAPTURE.PENDING")
    _refused(service, payment_id, "0.01", "capture_closed")
    paypal.app.settle_capture(dashboard.reference, decided)
    paypal.deliver(service, _DECIDED[decided])
    _reconciled_as_decided(service, payment_id, decided)


@pytest.mark.parametrize("decided", ["COMPLETED", "DECLINED"])
@pytest.mark.parametrize("pending_event", [True, False], ids=["pending-event", "no-pending-event"])
def test_a_pending_final_dashboard_capture_reconciled_before_its_events_closes_the_capture_unless_declined(
        paypal: Any, service: PaymentService, decided: str, pending_event: bool) -> None:
    """Reconciliation records the pending capture first, final as PayPal's reading lists it (the
    capture's `final_capture`): a final capture in flight, which no further capture passes, as
    when its events record it; its events then settle it, applied once."""
    payment_id = _pending_authorization(paypal, service)
    authorization = service.get_payment(payment_id).references["authorization"]
    dashboard = paypal.run("capture", reference=authorization, amount=eur("30.00"), final=True)
    service.reconcile(payment_id=payment_id)
    assert _captures(service, payment_id) == [(S.ACCEPTED, dashboard.reference, eur("30.00"), "reconcile")]
    _refused(service, payment_id, "0.01", "capture_closed")  # PayPal takes none while it decides
    if pending_event:
        paypal.deliver(service, "PAYMENT.CAPTURE.PENDING")
        _refused(service, payment_id, "0.01", "capture_closed")
    paypal.app.settle_capture(dashboard.reference, decided)
    paypal.deliver(service, _DECIDED[decided])
    if decided == "COMPLETED":
        _refused(service, payment_id, "0.01", "capture_closed")
    _reconciled_as_decided(service, payment_id, decided)


def _reconciled_as_decided(service: PaymentService, payment_id: str, decided: str) -> None:
    """Reconciled, the payment follows PayPal: captured for good once the final capture completed;
    declined, all of the authorization is captured again (PayPal takes it)."""
    assert service.reconcile(payment_id=payment_id).clean
    if decided == "COMPLETED":
        assert service.get_payment(payment_id).state == "captured"
        _refused(service, payment_id, "0.01", "capture_closed")
    else:
        assert service.get_payment(payment_id).state == "authorized"
        service.capture(payment_id, eur("100.00"), final=True)  # all of it again: PayPal takes it
