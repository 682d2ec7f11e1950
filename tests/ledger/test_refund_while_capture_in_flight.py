"""A refund of money known only from the provider's running total, while a capture of the
payment is in flight and no capture reference is known: the refund would act on the payment
object, which a provider that refunds captures (FakePay, PayPal, Braintree) refuses. The ledger
refuses first and says to reconcile."""

from __future__ import annotations

import pytest

from paywire import EventKind, OutcomeUnknown
from paywire.errors import StateError
from paywire.ledger.model import TransactionKind
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import FakePayApp
from tests.ledger.support import eur, ledger_totals


def _lost_capture_and_its_total(service: PaymentService, app: FakePayApp) -> str:
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    app.inject(Fault("drop_after", path="/captures$"))
    with pytest.raises(OutcomeUnknown):
        service.capture(payment.id, eur("100.00"), final=False)  # applied, answer lost
    app.clear_faults()
    # the provider's running total, and the capture's own event (which waits for the capture in flight)
    service.receive_webhook("fakepay", *app.event("evt_total", EventKind.CAPTURED, payment.reference or "",
                                                  total=10_000))
    for headers, body in app.outbox:
        service.receive_webhook("fakepay", headers, body)
    assert service.get_payment(payment.id).refundable == eur("100.00")
    return payment.id


def test_a_refund_on_the_payment_while_its_capture_is_unknown_is_refused_before_sending(
        service: PaymentService, app: FakePayApp) -> None:
    payment_id = _lost_capture_and_its_total(service, app)
    before = (len(app.refusals), len(app.refunds), service.list_transactions(payment_id))
    with pytest.raises(StateError) as refused:
        service.refund(payment_id, eur("100.00"))
    assert refused.value.code == "capture_in_flight"
    assert "reconcile" in str(refused.value)
    assert (len(app.refusals), len(app.refunds), service.list_transactions(payment_id)) == before


def test_once_reconciled_the_refund_goes_to_the_capture(service: PaymentService, app: FakePayApp) -> None:
    payment_id = _lost_capture_and_its_total(service, app)
    service.reconcile(payment_id=payment_id)  # the capture settles, with its reference
    payment = service.refund(payment_id, eur("100.00"))
    [capture] = [t for t in service.list_transactions(payment_id) if t.kind == TransactionKind.CAPTURE]
    [refund] = [t for t in service.list_transactions(payment_id) if t.kind == TransactionKind.REFUND]
    assert (refund.status, refund.parent_id) == ("succeeded", capture.id)
    assert app.refusals == []
    assert ledger_totals(payment) == app.totals(payment.reference or "") == (10_000, 10_000, 10_000)
