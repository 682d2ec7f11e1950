"""A refund made in Braintree's Control Panel that Braintree holds SETTLEMENT_PENDING (not yet
submitted, nothing given back). Braintree notifies nothing of a refund until it settles or is
declined, so only reconcile's reading finds it: it is recorded as an accepted refund of its own,
so what is left to refund leaves it out, and Braintree's decision (its notification, or a later
reading) settles that one transaction."""

from __future__ import annotations

import pytest

from paywire import Money, PaymentService, StateError
from paywire.ledger import TransactionStatus
from paywire_braintree.emulator import BraintreeEmulator
from paywire_braintree.emulator.webhooks import notification_body

EUR = "EUR"
_FORM = {"content-type": "application/x-www-form-urlencoded"}
S = TransactionStatus


def eur(value: str) -> Money:
    return Money.of(value, EUR)


@pytest.mark.parametrize("heard", ["notification", "reconcile"])
@pytest.mark.parametrize("settled", [True, False], ids=["settled", "declined"])
def test_a_pending_control_panel_refund_is_held_until_braintree_decides(
        service: PaymentService, emulator: BraintreeEmulator, heard: str, settled: bool) -> None:
    case = f"{heard}-{settled}"
    payment = service.sale("braintree", eur("30.00"), source="paywire-emulator-refund-pending-nonce",
                           order_id=f"P-{case}", idempotency_key=f"pending-cp-{case}")
    reference = payment.reference or ""
    assert emulator.transactions[reference].status == "SETTLED"  # the emulator settles sales at once
    with emulator.lock:
        credit = emulator.operations.refund({"transactionId": reference, "refund": {"amount": "20.00"}},
                                            origin="CONTROL_PANEL")
        assert credit.status == "SETTLEMENT_PENDING"
    assert service.reconcile(payment_id=payment.id).clean
    [refund] = [t for t in service.list_transactions(payment.id) if t.kind == "refund"]
    assert (refund.status, refund.provider_reference, refund.amount, refund.origin) == (
        S.ACCEPTED, credit.id, eur("20.00"), "reconcile")
    with pytest.raises(StateError) as refused:  # Braintree holds 10.00 unrefunded
        service.refund(payment.id, eur("10.01"), idempotency_key=f"pending-cp-over-{case}")
    assert refused.value.code == "refund_exceeds_captured"
    emulator.settle(credit.id, "SETTLED" if settled else "SETTLEMENT_DECLINED")
    if heard == "notification":
        with emulator.lock:
            body = notification_body(emulator.public_key, emulator.private_key,
                                     "transaction_settled" if settled else "transaction_settlement_declined",
                                     emulator.transactions[credit.id])
        service.receive_webhook("braintree", _FORM, body)
    report = service.reconcile(payment_id=payment.id)
    assert report.clean, report
    assert [(t.status, t.provider_reference) for t in service.list_transactions(payment.id) if t.kind == "refund"] == [
        (S.SUCCEEDED if settled else S.FAILED, credit.id)]
    assert service.get_payment(payment.id).refunded == (eur("20.00") if settled else eur("0.00"))
    with pytest.raises(StateError):
        service.refund(payment.id, eur("10.01") if settled else eur("30.01"), idempotency_key=f"pending-cp-no-{case}")
    service.refund(payment.id, eur("10.00") if settled else eur("30.00"), idempotency_key=f"pending-cp-left-{case}")
