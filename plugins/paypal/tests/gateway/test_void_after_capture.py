"""A void after a partial capture: PayPal voids the authorization (VOIDED, 200 with it or 204)
and releases what it had left; the captures stand and can be refunded, and a later capture of it
is AUTHORIZATION_VOIDED. The ledger records the release (nothing more to capture, the captured
money as it was), and refuses a void of a payment nothing is left of before sending it. Real
emulator on loopback."""

from __future__ import annotations

import pytest

from paywire import Money, OutcomeUnknown, ProviderState, StateError
from paywire.ledger import PaymentState, TransactionKind, TransactionStatus
from paywire.testing.emulator import Fault
from paywire.testing.ledger_checks import reconciled_again_changes_nothing

EUR = "EUR"


def eur(value: str) -> Money:
    return Money.of(value, EUR)


def test_paypal_voids_a_partly_captured_authorization_and_refuses_its_captures(paypal):
    authorization = paypal.authorized("100.00").reference
    capture = paypal.run("capture", reference=authorization, amount=eur("30.00"), final=False,
                         idempotency_key=paypal.key())
    voided = paypal.run("void", reference=authorization, idempotency_key=paypal.key())
    assert (voided.status, voided.state, voided.reference) == ("succeeded", ProviderState.VOIDED, authorization)
    assert voided.raw["status"] == "VOIDED"
    fetched = paypal.run("fetch", reference=voided.references["payment"])
    assert (fetched.state, fetched.authorized, fetched.captured) == (ProviderState.CAPTURED, eur("100.00"),
                                                                     eur("30.00"))
    assert fetched.capturable == Money.zero(EUR)
    with pytest.raises(StateError) as refused:
        paypal.run("capture", reference=authorization, amount=eur("10.00"), idempotency_key=paypal.key())
    assert refused.value.code == "AUTHORIZATION_VOIDED"
    refund = paypal.run("refund", reference=capture.reference, amount=eur("30.00"), idempotency_key=paypal.key())
    assert refund.succeeded and refund.amount == eur("30.00")


def test_a_void_after_a_partial_capture_releases_the_rest_in_the_ledger(paypal, service):
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    authorization = payment.references["authorization"]
    service.capture(payment.id, eur("30.00"), final=False, idempotency_key=paypal.key())
    payment = service.void(payment.id, idempotency_key=paypal.key())
    with paypal.app.lock:
        assert paypal.app.authorizations[authorization].status == "VOIDED"
    void = service.list_transactions(payment.id)[-1]
    assert (void.kind, void.status) == (TransactionKind.VOID, TransactionStatus.SUCCEEDED)
    assert (payment.state, payment.authorized, payment.captured, payment.capturable) == (
        PaymentState.CAPTURED, eur("100.00"), eur("30.00"), Money.zero(EUR))
    assert payment.capture_closed and not payment.voided

    captures = paypal.calls("/capture")
    with pytest.raises(StateError) as refused:  # refused by the ledger: nothing is sent
        service.capture(payment.id, eur("10.00"), idempotency_key=paypal.key())
    assert refused.value.code == "capture_closed"
    with pytest.raises(StateError) as again:
        service.void(payment.id, idempotency_key=paypal.key())
    assert again.value.code == "void_after_capture"
    assert paypal.calls("/capture") == captures and paypal.calls("/void") == 1

    payment = service.refund(payment.id, eur("10.00"), idempotency_key=paypal.key())
    assert (payment.state, payment.captured, payment.refunded) == (PaymentState.PARTIALLY_REFUNDED, eur("30.00"),
                                                                   eur("10.00"))
    payment = service.refund(payment.id, idempotency_key=paypal.key())  # the rest of what was captured
    assert (payment.state, payment.refunded) == (PaymentState.REFUNDED, eur("30.00"))
    assert not service.reconcile(payment_id=payment.id).mismatches
    reconciled_again_changes_nothing(service, payment.id)
    payment = service.get_payment(payment.id)
    paypal.deliver(service, "PAYMENT.AUTHORIZATION.VOIDED")  # PayPal's event, late: changes nothing
    assert service.get_payment(payment.id) == payment


def test_a_void_after_a_partial_capture_is_sent_once_and_answered_without_a_read(paypal, service):
    """The void's answer (the authorization VOIDED) is what it made, not PayPal having moved on."""
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    service.capture(payment.id, eur("30.00"), final=False, idempotency_key=paypal.key())
    reads = paypal.calls("/v2/checkout/orders/", "GET")
    service.void(payment.id, idempotency_key=paypal.key())
    assert paypal.calls("/void") == 1
    assert paypal.calls("/v2/checkout/orders/", "GET") == reads


def test_a_void_of_a_fully_captured_payment_is_refused_before_sending(paypal, service):
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    service.capture(payment.id, eur("100.00"), final=False, idempotency_key=paypal.key())
    with pytest.raises(StateError) as refused:
        service.void(payment.id, idempotency_key=paypal.key())
    assert refused.value.code == "void_after_capture"
    assert paypal.calls("/void") == 0
    assert service.get_payment(payment.id).captured == eur("100.00")


def test_a_void_event_after_a_partial_capture_settles_a_void_whose_answer_was_lost(paypal, service):
    """The void reached PayPal but its answer was lost (unknown): PayPal's
    PAYMENT.AUTHORIZATION.VOIDED says it voided the authorization, which settles the void."""
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    service.capture(payment.id, eur("30.00"), final=False, idempotency_key=paypal.key())
    paypal.app.inject(Fault(kind="drop_after", path="/void$"))
    with pytest.raises(OutcomeUnknown):
        service.void(payment.id, idempotency_key=paypal.key())
    assert service.list_transactions(payment.id)[-1].status == TransactionStatus.UNKNOWN
    paypal.deliver(service, "PAYMENT.AUTHORIZATION.VOIDED")
    payment = service.get_payment(payment.id)
    assert service.list_transactions(payment.id)[-1].status == TransactionStatus.SUCCEEDED
    assert (payment.state, payment.captured, payment.capturable) == (PaymentState.CAPTURED, eur("30.00"),
                                                                     Money.zero(EUR))
