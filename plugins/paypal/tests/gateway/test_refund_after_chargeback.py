"""A refund PayPal refuses because the capture's money was taken back (a chargeback or a buyer's
complaint whose PAYMENT.CAPTURE.DENIED event the shop never received): the refusal says the ledger
is behind PayPal, so the service records it and reads PayPal for the payment, and the ledger no
longer claims a capture PayPal does not hold; when that read fails, the payment owes one and
`reconcile()` makes it."""

from __future__ import annotations

import pytest

from paywire import Money, StateError
from paywire.testing.emulator import Fault

_REFUSED = {"CHARGEBACK": "REFUND_NOT_PERMITTED_DUE_TO_CHARGEBACK", "BUYER_COMPLAINT": "REFUND_NOT_ALLOWED"}


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def _taken_back(paypal, service, flow, reason):
    if flow == "sale":
        payment = service.sale("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    else:
        payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(),
                                    idempotency_key=paypal.key())
        payment = service.capture(payment.id, eur("100.00"), idempotency_key=paypal.key())
    paypal.app.deny_capture(payment.references["capture"], reason)  # its event never reaches the shop
    return payment


def _held(paypal, payment):
    held = paypal.run("fetch", reference=payment.reference)
    return held.authorized, held.captured, held.refunded


@pytest.mark.parametrize("reason", sorted(_REFUSED))
@pytest.mark.parametrize("flow", ["sale", "authorize"])
def test_a_refund_refused_for_a_capture_taken_back_leaves_the_payment_as_paypal_holds_it(
        paypal, service, flow, reason):
    payment = _taken_back(paypal, service, flow, reason)
    with pytest.raises(StateError) as refused:
        service.refund(payment.id, eur("10.00"), idempotency_key=paypal.key())
    assert refused.value.code == _REFUSED[reason]
    assert refused.value.state_conflict and refused.value.details["reconciled"] is True
    [refund] = [t for t in service.list_transactions(payment.id) if t.kind == "refund"]
    assert (refund.status, refund.error_code) == ("failed", _REFUSED[reason])
    payment = service.get_payment(payment.id)
    assert (payment.captured, payment.refundable) == (eur("0.00"), eur("0.00"))
    assert (payment.authorized, payment.captured, payment.refunded) == _held(paypal, payment)
    assert service.ledger.owed_reads(payment_id=payment.id) == {}


def test_a_refund_refused_after_a_chargeback_whose_read_fails_is_read_by_reconcile(paypal, service):
    payment = _taken_back(paypal, service, "sale", "CHARGEBACK")
    paypal.app.inject(Fault(kind="status", status=503, method="GET", path=r"^/v2/checkout/orders/", times=10))
    with pytest.raises(StateError) as refused:
        service.refund(payment.id, eur("10.00"), idempotency_key=paypal.key())
    assert refused.value.details["reconciled"] is False
    assert service.get_payment(payment.id).captured == eur("100.00")  # nothing read yet: as recorded
    assert payment.id in service.ledger.owed_reads(payment_id=payment.id)
    paypal.app.clear_faults()
    report = service.reconcile()  # no payment named: the mark is what makes it read
    assert report.caught_up == (payment.id,) and not report.errors
    payment = service.get_payment(payment.id)
    assert (payment.captured, payment.refundable) == (eur("0.00"), eur("0.00"))
    assert (payment.authorized, payment.captured, payment.refunded) == _held(paypal, payment)
