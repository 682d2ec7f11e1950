"""A refund or capture made in the Control Panel that Braintree has not decided holds its amount:
a refund waiting for its refund authorization (AUTHORIZED) or its settlement (SETTLEMENT_PENDING)
against the sale, so Braintree refuses a refund of more than the sale has left beside it (91521);
a bank account's partial capture (SETTLEMENT_PENDING) against the authorization, so it refuses a
capture of more than is left beside it (91522). What the service lets be refunded or captured
should leave them out, refusing before anything is sent."""

from __future__ import annotations

import pytest

from paywire import Money, PaymentService, StateError
from paywire_braintree.emulator import BraintreeEmulator


@pytest.mark.parametrize(("source", "status"), [("paywire-emulator-refund-authorized-nonce", "AUTHORIZED"),
                                                 ("paywire-emulator-refund-pending-nonce", "SETTLEMENT_PENDING")])
def test_a_pending_control_panel_refund_is_not_offered_to_refund_again(
        service: PaymentService, emulator: BraintreeEmulator, source: str, status: str) -> None:
    payment = service.sale("braintree", Money(10000, "EUR"), source=source, order_id="p", idempotency_key="p")
    with emulator.lock:
        credit = emulator.operations.refund({"transactionId": payment.reference, "refund": {"amount": "30.00"}},
                                            origin="CONTROL_PANEL")
    assert credit.status == status
    service.reconcile(payment_id=payment.id)  # records it accepted: its order id is the sale's, and its key
    calls = len(emulator.calls)
    with pytest.raises(StateError) as refused:
        service.refund(payment.id, Money(7001, "EUR"), idempotency_key="more")  # Braintree holds 70.00
    assert refused.value.code == "refund_exceeds_captured"  # refused before anything was sent
    assert len(emulator.calls) == calls


def test_a_pending_control_panel_capture_is_not_offered_to_capture_again(
        service: PaymentService, emulator: BraintreeEmulator) -> None:
    payment = service.authorize("braintree", Money(10000, "EUR"), source="paywire-emulator-bank-account-nonce",
                                order_id="c", idempotency_key="c")
    with emulator.lock:
        capture = emulator.operations.partial_capture({"transactionId": payment.reference,
                                                       "transaction": {"amount": "30.00"}})
    assert capture.status == "SETTLEMENT_PENDING"
    service.reconcile(payment_id=payment.id)
    calls = len(emulator.calls)
    with pytest.raises(StateError) as refused:
        service.capture(payment.id, Money(7001, "EUR"), idempotency_key="more")  # Braintree has 70.00 left
    assert refused.value.code == "capture_exceeds_authorized"  # refused before anything was sent
    assert len(emulator.calls) == calls
