"""A captured event about a capture the ledger does not hold, while a capture of the service's own
is in flight without its reference (its answer lost): the event may be that capture's, so it
waits, unless it says its capture was final (`closes_capture`) and the one in flight was sent not
final (the provider reports finality as asked): then it is a capture made beside paywire, recorded
at once. Only that word excludes one: an event that says nothing of finality (a plugin that never
sets the flag) waits as before."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import EventKind, Money, OutcomeUnknown, StateError
from paywire.ledger import EventStatus
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import FakePayApp


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def _lost_capture(service: PaymentService, app: FakePayApp, payment_id: str, *, final: bool) -> str:
    """A capture of 30.00 whose answer is lost (the provider made it): its transaction's id."""
    app.inject(Fault("drop_after", path="/captures$", method="POST"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.capture(payment_id, eur("30.00"), final=final)
    app.clear_faults()
    assert lost.value.transaction_id
    return lost.value.transaction_id


def _captured_beside(service: PaymentService, app: FakePayApp, reference: str, *, closes: bool) -> Any:
    """The captured event of a capture of 20.00 made in the provider's dashboard, delivered twice."""
    headers, body = app.event("evt_beside", EventKind.CAPTURED, "cap_beside", amount=2_000,
                              references={"capture": "cap_beside", "payment": reference}, closes_capture=closes)
    first = service.receive_webhook("fakepay", headers, body)
    assert service.receive_webhook("fakepay", headers, body).status == "duplicate"
    return first


def _refused_closed(service: PaymentService, payment_id: str) -> None:
    with pytest.raises(StateError) as refused:
        service.capture(payment_id, eur("0.01"), final=False)
    assert refused.value.code == "capture_closed", refused.value


def test_a_final_capture_event_beside_a_lost_capture_sent_not_final_is_recorded_at_once(
        service: PaymentService, app: FakePayApp) -> None:
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    _lost_capture(service, app, payment.id, final=False)
    assert _captured_beside(service, app, payment.reference or "", closes=True).status == EventStatus.APPLIED
    payment = service.get_payment(payment.id)
    assert (payment.captured, payment.capture_closed) == (eur("20.00"), True)
    (beside,) = [t for t in service.list_transactions(payment.id) if t.origin == "webhook"]
    assert (beside.provider_reference, beside.request.get("final")) == ("cap_beside", True)
    _refused_closed(service, payment.id)
    service.reconcile(payment_id=payment.id)  # names the lost one: the provider made it
    payment = service.get_payment(payment.id)
    assert (payment.captured, payment.capture_closed) == (eur("50.00"), True)
    assert len([t for t in service.list_transactions(payment.id) if t.kind == "capture"]) == 2


def test_a_capture_event_saying_nothing_of_finality_waits_for_a_lost_capture(
        service: PaymentService, app: FakePayApp) -> None:
    """A plugin that never says a capture was final (the default) loses nothing but the closing:
    the event may be the lost capture's, so it waits, and closes nothing."""
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    _lost_capture(service, app, payment.id, final=False)
    assert _captured_beside(service, app, payment.reference or "", closes=False).status == EventStatus.DEFERRED
    payment = service.get_payment(payment.id)
    assert (payment.captured, payment.capture_closed) == (eur("0.00"), False)


def test_a_final_capture_event_waits_for_a_lost_capture_sent_final_and_closes_meanwhile(
        service: PaymentService, app: FakePayApp) -> None:
    """The lost capture asked to be final: the event may be its own, so it waits; a final capture
    took the authorization, whichever it is, so the capture is closed meanwhile."""
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    _lost_capture(service, app, payment.id, final=True)
    assert _captured_beside(service, app, payment.reference or "", closes=True).status == EventStatus.DEFERRED
    payment = service.get_payment(payment.id)
    assert (payment.captured, payment.capture_closed) == (eur("0.00"), True)
    assert not [t for t in service.list_transactions(payment.id) if t.origin == "webhook"]
    _refused_closed(service, payment.id)
