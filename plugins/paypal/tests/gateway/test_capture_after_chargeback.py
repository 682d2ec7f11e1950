"""A capture PayPal took back after it completed (DENIED for a chargeback or a buyer's complaint,
PAYMENT.CAPTURE.DENIED) still consumed its part of the authorization: PayPal does not reopen an
authorization for money the buyer's bank took back, so the money is not capturable again, at
PayPal nor in the ledger, which refuses such a capture before anything is sent. Real emulator on
loopback, the service on SQLite."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import Money, PaymentService, PaywireError, StateError
from paywire.testing.emulator import Fault

DENIED = "PAYMENT.CAPTURE.DENIED"


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def _charged_back(paypal: Any, service: PaymentService, captured: str, via: str) -> Any:
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    payment = service.capture(payment.id, eur(captured), final=False, idempotency_key=paypal.key())
    paypal.app.deny_capture(payment.references["capture"])
    if via == "webhook":
        paypal.deliver(service, DENIED)
    else:
        service.reconcile(payment_id=payment.id)
    return service.get_payment(payment.id)


def _authorization(paypal: Any, payment: Any) -> Any:
    return paypal.app.authorizations[payment.references["authorization"]]


def test_paypal_keeps_a_charged_back_capture_against_its_authorization(paypal: Any, service: PaymentService) -> None:
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    payment = service.capture(payment.id, eur("100.00"), idempotency_key=paypal.key())
    paypal.app.deny_capture(payment.references["capture"])
    assert _authorization(paypal, payment).status == "CAPTURED"
    held = paypal.run("fetch", reference=payment.reference)
    assert held.capturable == eur("0.00")
    refused = paypal.attempt("capture", reference=payment.references["authorization"], amount=eur("100.00"))
    assert getattr(refused, "code", None) == "AUTHORIZATION_ALREADY_CAPTURED"


@pytest.mark.parametrize("via", ["webhook", "reconcile"])
def test_a_fully_captured_authorization_charged_back_is_not_captured_again(
        paypal: Any, service: PaymentService, via: str) -> None:
    payment = _charged_back(paypal, service, "100.00", via)
    assert (payment.captured, payment.capturable, payment.refundable) == (eur("0.00"), eur("0.00"), eur("0.00"))
    sent = len(paypal.api_sent)
    with pytest.raises(StateError) as refused:
        service.capture(payment.id, eur("100.00"), idempotency_key=paypal.key())
    assert refused.value.code in ("capture_closed", "capture_exceeds_authorized")
    with pytest.raises(StateError):
        service.refund(payment.id, eur("10.00"), idempotency_key=paypal.key())
    assert len(paypal.api_sent) == sent  # refused before anything was sent
    assert [t.kind for t in service.list_transactions(payment.id)].count("capture") == 1


@pytest.mark.parametrize("via", ["webhook", "reconcile"])
def test_the_rest_of_a_partly_captured_authorization_stays_capturable_after_a_chargeback(
        paypal: Any, service: PaymentService, via: str) -> None:
    payment = _charged_back(paypal, service, "40.00", via)
    assert _authorization(paypal, payment).status == "PARTIALLY_CAPTURED"
    assert paypal.run("fetch", reference=payment.reference).capturable == eur("60.00")
    assert (payment.captured, payment.refundable) == (eur("0.00"), eur("0.00"))
    sent = len(paypal.api_sent)
    for amount in ("100.00", "60.01"):  # PayPal refuses the first (past its overage limit); the ledger offers neither
        with pytest.raises(StateError) as refused:
            service.capture(payment.id, eur(amount), idempotency_key=paypal.key())
        assert refused.value.code == "capture_exceeds_authorized"
    assert len(paypal.api_sent) == sent
    payment = service.capture(payment.id, idempotency_key=paypal.key())  # what is left: the authorization's rest
    assert payment.captured == eur("60.00")
    assert _authorization(paypal, payment).status == "CAPTURED"
    sent = len(paypal.api_sent)
    with pytest.raises(StateError):
        service.capture(payment.id, eur("1.00"), idempotency_key=paypal.key())
    assert len(paypal.api_sent) == sent
    assert not service.reconcile(payment_id=payment.id).mismatches
    payment = service.get_payment(payment.id)
    held = paypal.run("fetch", reference=payment.reference)
    assert (payment.captured, payment.refunded, payment.capturable) == (held.captured, held.refunded, held.capturable)


@pytest.mark.parametrize("flow", ["sale", "authorize"])
def test_a_refund_whose_answer_was_lost_racing_a_reversal(paypal: Any, service: PaymentService, flow: str) -> None:
    """A refund PayPal made but whose answer was lost, then PayPal reverses the rest of the capture
    (PAYMENT.CAPTURE.REVERSED, a refund of it): the ledger ends with PayPal's totals, counts each
    refund once, and refuses a further refund or capture before sending it."""
    source = paypal.app.vault_card()
    if flow == "sale":
        payment = service.sale("paypal", eur("100.00"), source=source, idempotency_key=paypal.key())
    else:
        payment = service.authorize("paypal", eur("100.00"), source=source, idempotency_key=paypal.key())
        payment = service.capture(payment.id, eur("100.00"), idempotency_key=paypal.key())
    paypal.app.inject(Fault(kind="drop_after", path="/refund$"))
    with pytest.raises(PaywireError):
        service.refund(payment.id, eur("30.00"), idempotency_key=paypal.key())
    paypal.app.clear_faults()
    paypal.app.reverse_capture(payment.references["capture"])
    paypal.deliver(service, "PAYMENT.CAPTURE.REVERSED")
    service.reconcile(payment_id=payment.id)
    payment = service.get_payment(payment.id)
    held = paypal.run("fetch", reference=payment.reference)
    assert (payment.captured, payment.refunded) == (held.captured, held.refunded) == (eur("100.00"), eur("100.00"))
    assert (payment.capturable, payment.refundable) == (eur("0.00"), eur("0.00"))
    sent = len(paypal.api_sent)
    with pytest.raises(StateError):
        service.refund(payment.id, eur("1.00"), idempotency_key=paypal.key())
    with pytest.raises(StateError):
        service.capture(payment.id, eur("1.00"), idempotency_key=paypal.key())
    assert len(paypal.api_sent) == sent
    assert not service.reconcile(payment_id=payment.id).mismatches


@pytest.mark.parametrize("via", ["webhook", "reconcile"])
def test_an_authorization_its_charged_back_capture_took_all_of_is_not_voided(
        paypal: Any, service: PaymentService, via: str) -> None:
    """PayPal refuses to void an authorization its captures took all of (PREVIOUSLY_CAPTURED),
    one of them charged back since or not: the ledger refuses it before sending."""
    payment = _charged_back(paypal, service, "100.00", via)
    sent = len(paypal.api_sent)
    with pytest.raises(StateError):
        service.void(payment.id, idempotency_key=paypal.key())
    assert len(paypal.api_sent) == sent
    assert _authorization(paypal, payment).status == "CAPTURED"


@pytest.mark.parametrize("via", ["webhook", "reconcile"])
def test_the_rest_of_an_authorization_is_voided_after_a_chargeback(
        paypal: Any, service: PaymentService, via: str) -> None:
    payment = _charged_back(paypal, service, "40.00", via)
    payment = service.void(payment.id, idempotency_key=paypal.key())
    assert _authorization(paypal, payment).status == "VOIDED"
    assert payment.captured == eur("0.00")
    assert not service.reconcile(payment_id=payment.id).mismatches
