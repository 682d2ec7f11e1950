"""A capture PayPal reverses (a chargeback decided for the buyer) through the payment service: the
ledger then claims what PayPal holds, from PAYMENT.CAPTURE.REVERSED or by reconciliation, never
the captured money PayPal took back. Real emulator on loopback."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import Money, PaymentService, StateError, WebhookVerificationError

REVERSED = "PAYMENT.CAPTURE.REVERSED"


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def _at_paypal(paypal: Any, service: PaymentService, payment_id: str) -> None:
    payment = service.get_payment(payment_id)
    held = paypal.run("fetch", reference=payment.reference)
    assert (payment.captured, payment.refunded, payment.state) == (held.captured, held.refunded, held.state)


@pytest.mark.parametrize("via", ["webhook", "reconcile", "both"])
@pytest.mark.parametrize("refunded_before", [None, "30.00"])
def test_a_reversed_sale_leaves_nothing_claimed(
    paypal: Any, service: PaymentService, via: str, refunded_before: str | None
) -> None:
    payment = service.sale("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    if refunded_before:
        service.refund(payment.id, eur(refunded_before), idempotency_key=paypal.key())
    capture = paypal.run("fetch", reference=payment.reference).references["capture"]
    paypal.app.reverse_capture(capture)
    if via in ("webhook", "both"):
        paypal.deliver(service, REVERSED)
    if via in ("reconcile", "both"):
        assert not service.reconcile(payment_id=payment.id).mismatches
    later = service.get_payment(payment.id)
    assert (later.captured, later.refunded, later.state) == (eur("100.00"), eur("100.00"), "refunded")
    _at_paypal(paypal, service, payment.id)
    with pytest.raises(StateError):  # nothing is left to refund: refused before anything is sent
        service.refund(payment.id, eur("1.00"), idempotency_key=paypal.key())


def test_a_reversed_partial_capture_gives_back_that_capture_only(paypal: Any, service: PaymentService) -> None:
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    service.capture(payment.id, eur("40.00"), final=False, idempotency_key=paypal.key())
    service.capture(payment.id, eur("25.00"), final=False, idempotency_key=paypal.key())
    first = next(
        op
        for op in paypal.run("fetch", reference=payment.reference).operations
        if op.kind == "capture" and op.amount == eur("40.00")
    )
    paypal.app.reverse_capture(first.reference)
    paypal.deliver(service, REVERSED)
    later = service.get_payment(payment.id)
    assert (later.captured, later.refunded) == (eur("65.00"), eur("40.00"))
    _at_paypal(paypal, service, payment.id)
    assert not service.reconcile(payment_id=payment.id).mismatches


def test_the_reversal_event_is_confirmed_from_paypal(paypal: Any, service: PaymentService) -> None:
    """The event's refund is read from PayPal: a reversal PayPal does not hold moves nothing."""
    payment = service.sale("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    capture = paypal.run("fetch", reference=payment.reference).references["capture"]
    paypal.app.reverse_capture(capture)
    event = next(e for e in reversed(paypal.app.events) if e["event_type"] == REVERSED)
    assert event["resource_type"] == "refund" and event["resource"]["status"] == "COMPLETED"
    forged = {**event, "id": "WH-FORGED", "resource": {**event["resource"], "id": "NOSUCHREFUND"}}
    body, headers = paypal.app.signed_event(forged)
    with pytest.raises(WebhookVerificationError):
        service.receive_webhook("paypal", headers, body)
    assert service.get_payment(payment.id).refunded == eur("0.00")


@pytest.mark.parametrize("via", ["webhook", "reconcile"])
@pytest.mark.parametrize("flow", ["sale", "authorize"])
def test_a_completed_capture_paypal_denies_later_is_undone_in_the_ledger(
    paypal: Any, service: PaymentService, via: str, flow: str
) -> None:
    """PayPal takes the money of a completed capture back (DENIED, reason CHARGEBACK) and says so
    with PAYMENT.CAPTURE.DENIED: the ledger records the capture undone, as reconciliation does."""
    source = paypal.app.vault_card()
    if flow == "sale":
        payment = service.sale("paypal", eur("100.00"), source=source, idempotency_key=paypal.key())
    else:
        payment = service.authorize("paypal", eur("100.00"), source=source, idempotency_key=paypal.key())
        service.capture(payment.id, eur("40.00"), final=False, idempotency_key=paypal.key())
    capture = paypal.run("fetch", reference=payment.reference).references["capture"]
    paypal.app.deny_capture(capture)
    if via == "webhook":
        paypal.deliver(service, "PAYMENT.CAPTURE.DENIED")
    else:
        service.reconcile(payment_id=payment.id)
    later = service.get_payment(payment.id)
    assert later.captured == eur("0.00")
    assert any(t.kind == "reversal" for t in service.list_transactions(payment.id))
    _at_paypal(paypal, service, payment.id)
    assert not service.reconcile(payment_id=payment.id).mismatches
