"""A capture or refund the provider accepted and then applied in part (FakePay's `tok_async`: the
bank decides each later; `decide(..., applied=)` honours part of it), learnt from its event or
from a reconciliation: the payment counts what was applied, never what was asked, and what is
left to capture or refund follows what the provider holds."""

from __future__ import annotations

import pytest

from paywire.ledger import EventStatus, TransactionStatus
from paywire.service import PaymentService
from tests.ledger.fakepay import FakePayApp
from tests.ledger.support import agree, eur, only

S = TransactionStatus


def _accepted_capture(service: PaymentService) -> tuple[str, str]:
    """A 50.00 authorization with a capture of 20.00 the bank decides later: (payment, capture object)."""
    payment = service.authorize("fakepay", eur("50.00"), source="tok_async")
    payment = service.capture(payment.id, eur("20.00"), final=False)
    capture = only(service.list_transactions(payment.id), "capture")
    assert capture.status == S.ACCEPTED and capture.provider_reference
    return payment.id, capture.provider_reference


@pytest.mark.parametrize("learnt", ["event", "reconcile"])
def test_a_capture_applied_in_part_counts_what_the_provider_captured(service: PaymentService, app: FakePayApp,
                                                                     learnt: str) -> None:
    payment_id, capture = _accepted_capture(service)
    headers, body = app.decide(capture, applied=1_000)
    if learnt == "event":
        assert service.receive_webhook("fakepay", headers, body).status == EventStatus.APPLIED
    else:
        assert service.reconcile(payment_id=payment_id).mismatches == ()
    payment = service.get_payment(payment_id)
    assert (payment.captured, payment.capturable, payment.refundable) == (eur("10.00"), eur("40.00"), eur("10.00"))
    agree(service, app, payment_id)
    assert service.reconcile(payment_id=payment_id).mismatches == ()
    assert service.get_payment(payment_id).captured == eur("10.00")


@pytest.mark.parametrize("learnt", ["event", "reconcile"])
def test_a_refund_applied_in_part_counts_what_the_provider_returned(service: PaymentService, app: FakePayApp,
                                                                    learnt: str) -> None:
    payment_id, capture = _accepted_capture(service)
    headers, body = app.decide(capture)
    assert service.receive_webhook("fakepay", headers, body).status == EventStatus.APPLIED
    payment = service.refund(payment_id, eur("8.00"))
    refund = only(service.list_transactions(payment_id), "refund")
    assert refund.status == S.ACCEPTED and refund.provider_reference
    headers, body = app.decide(refund.provider_reference, applied=400)
    if learnt == "event":
        assert service.receive_webhook("fakepay", headers, body).status == EventStatus.APPLIED
    else:
        assert service.reconcile(payment_id=payment_id).mismatches == ()
    payment = service.get_payment(payment_id)
    assert (payment.captured, payment.refunded, payment.refundable) == (eur("20.00"), eur("4.00"), eur("16.00"))
    agree(service, app, payment_id)
    service.refund(payment_id)  # all that is left on the capture, 16.00: its refund is accepted
    last = service.list_transactions(payment_id)[-1]
    assert (last.kind, last.amount, last.status) == ("refund", eur("16.00"), S.ACCEPTED)
    headers, body = app.decide(last.provider_reference or "")
    assert service.receive_webhook("fakepay", headers, body).status == EventStatus.APPLIED
    assert service.get_payment(payment_id).refunded == eur("20.00")
    agree(service, app, payment_id)
