"""A bank account's authorization captured whole in Braintree's Control Panel (the authorization
itself submitted for settlement, no partial captures), which Braintree holds SETTLEMENT_PENDING
and notifies nothing of until it settles or is declined. It is no longer AUTHORIZED, so Braintree
takes no further capture of it: once a reading finds it so, the service offers none either,
refusing before anything is sent; declined at settlement, the authorization is spent (Braintree
captures a transaction only while it is AUTHORIZED), so nothing is offered then either."""

from __future__ import annotations

import pytest
from graphql import GraphQLError

from paywire import Money, PaymentService, StateError
from paywire_braintree.emulator import BraintreeEmulator


def _panel_whole_capture(service: PaymentService, emulator: BraintreeEmulator, key: str) -> str:
    payment = service.authorize("braintree", Money(10000, "EUR"), source="paywire-emulator-bank-account-nonce",
                                order_id=key, idempotency_key=key)
    with emulator.lock:
        whole = emulator.operations.capture({"transactionId": payment.reference})
    assert whole.status == "SETTLEMENT_PENDING"
    return payment.id


def _refused(service: PaymentService, emulator: BraintreeEmulator, payment_id: str, key: str,
             code: str = "capture_closed") -> None:
    calls = len(emulator.calls)
    with pytest.raises(StateError) as refused:
        service.capture(payment_id, Money(100, "EUR"), idempotency_key=key)
    assert refused.value.code == code  # refused before anything was sent
    assert len(emulator.calls) == calls
    assert [t for t in service.list_transactions(payment_id) if t.kind == "capture"] == []


def test_a_pending_control_panel_whole_capture_closes_capture(
        service: PaymentService, emulator: BraintreeEmulator) -> None:
    payment_id = _panel_whole_capture(service, emulator, "cp-whole")
    report = service.reconcile(payment_id=payment_id)
    assert report.clean, report  # the authorization stands, its capture undecided: nothing captured yet
    payment = service.get_payment(payment_id)
    assert (payment.authorized, payment.captured) == (Money(10000, "EUR"), Money(0, "EUR"))
    _refused(service, emulator, payment_id, "cp-whole-more")


@pytest.mark.parametrize("outcome", ["SETTLED", "SETTLEMENT_DECLINED"])
def test_a_decided_control_panel_whole_capture_leaves_nothing_to_capture(
        service: PaymentService, emulator: BraintreeEmulator, outcome: str) -> None:
    payment_id = _panel_whole_capture(service, emulator, f"cp-whole-{outcome}")
    service.reconcile(payment_id=payment_id)
    with emulator.lock:
        transaction = emulator.transactions[service.get_payment(payment_id).reference or ""]
    emulator.settle(transaction.id, outcome)
    report = service.reconcile(payment_id=payment_id)
    assert report.clean, report
    payment = service.get_payment(payment_id)
    assert payment.captured == (Money(10000, "EUR") if outcome == "SETTLED" else Money(0, "EUR"))
    # declined, the hold is released (`handlers.released_whole`): the payment is over
    _refused(service, emulator, payment_id, f"cp-whole-{outcome}-more",
             "capture_closed" if outcome == "SETTLED" else "payment_final")


def test_a_pending_control_panel_whole_capture_is_not_offered_a_void(
        service: PaymentService, emulator: BraintreeEmulator) -> None:
    """The payment reads authorized, nothing captured yet, and nothing capturable: Braintree voids
    only an AUTHORIZED or SUBMITTED_FOR_SETTLEMENT transaction (or a PayPal one SETTLEMENT_PENDING),
    so it refuses to void this one, and the service refuses first, before anything is sent."""
    payment_id = _panel_whole_capture(service, emulator, "cp-whole-void")
    assert service.reconcile(payment_id=payment_id).clean
    calls = len(emulator.calls)
    with pytest.raises(StateError) as refused:
        service.void(payment_id, idempotency_key="cp-whole-void-void")
    assert refused.value.code == "void_after_capture"
    assert len(emulator.calls) == calls
    assert [t for t in service.list_transactions(payment_id) if t.kind == "void"] == []
    with emulator.lock, pytest.raises(GraphQLError, match="can only be voided"):
        emulator.operations.reverse({"transactionId": service.get_payment(payment_id).reference})
