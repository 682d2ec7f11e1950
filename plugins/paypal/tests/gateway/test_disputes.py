"""A payer's dispute of a capture (CUSTOMER.DISPUTE.*): PayPal names the dispute by `dispute_id`
(its resource has no `id`), so the events are taken as they come, never refused as malformed
(refused, PayPal would deliver them again for days). Opening or deciding one for the shop moves
no money the ledger counts; one decided for the buyer counts once, as PayPal's reversal of the
capture (PAYMENT.CAPTURE.REVERSED), whatever order the events come in."""

from __future__ import annotations

import pytest

from paywire import EventKind, Money


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def _held(paypal, payment):
    held = paypal.run("fetch", reference=payment.reference)
    return held.authorized, held.captured, held.refunded


def _totals(payment):
    return payment.authorized, payment.captured, payment.refunded


@pytest.mark.parametrize("mode", ["offline", "api"])
def test_dispute_events_verify_in_either_mode(paypal, mode):
    capture = paypal.captured("20.00").references["capture"]
    dispute = paypal.app.open_dispute(capture)
    body, headers = paypal.app.signed_event(paypal.app.events[-1])
    gateway = paypal.gateway_with(options={"webhook_verification": mode})
    try:
        event = gateway.parse_webhook("paypal", headers, body)
    finally:
        gateway.close()
    assert (event.type, event.kind, event.reference, event.amount) == (
        "CUSTOMER.DISPUTE.CREATED", EventKind.OTHER, dispute, None)
    assert event.references == {"dispute": dispute, "capture": capture}


@pytest.mark.parametrize("buyer_wins", [False, True])
def test_dispute_events_are_taken_and_only_the_reversal_moves_money(paypal, service, buyer_wins):
    payment = service.sale("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    payment = service.refund(payment.id, eur("30.00"), idempotency_key=paypal.key())
    dispute = paypal.app.open_dispute(payment.references["capture"])
    paypal.app.resolve_dispute(dispute, buyer_wins)
    disputes = [e for e in paypal.app.events if e["event_type"].startswith("CUSTOMER.DISPUTE.")]
    assert [e["event_type"] for e in disputes] == ["CUSTOMER.DISPUTE.CREATED", "CUSTOMER.DISPUTE.RESOLVED"]
    for event in disputes:
        body, headers = paypal.app.signed_event(event)
        parsed = paypal.gateway.parse_webhook("paypal", headers, body)
        assert (parsed.kind, parsed.reference, parsed.references["dispute"]) == (EventKind.OTHER, dispute, dispute)
        assert parsed.references["capture"] == payment.references["capture"]
        receipt = service.receive_webhook("paypal", headers, body)
        assert (receipt.status, receipt.payment_id) == ("applied", payment.id)
        assert _totals(service.get_payment(payment.id)) == (eur("100.00"), eur("100.00"), eur("30.00"))
    reversed_ = [e for e in paypal.app.events if e["event_type"] == "PAYMENT.CAPTURE.REVERSED"]
    assert len(reversed_) == int(buyer_wins)
    for event in reversed_ * 2:  # delivered twice: counted once
        body, headers = paypal.app.signed_event(event)
        service.receive_webhook("paypal", headers, body)
    payment = service.get_payment(payment.id)
    assert _totals(payment) == (eur("100.00"), eur("100.00"), eur("100.00") if buyer_wins else eur("30.00"))
    assert _totals(payment) == _held(paypal, payment)
    assert service.reconcile(payment_id=payment.id).clean
    assert _totals(service.get_payment(payment.id)) == _totals(payment)


def test_a_dispute_event_before_its_capture_is_known_waits_unmatched_and_changes_nothing(paypal, service):
    payment = service.sale("paypal", eur("50.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    other = paypal.captured("20.00")  # a capture of a payment the ledger does not hold
    paypal.app.open_dispute(other.references["capture"])
    event = next(e for e in reversed(paypal.app.events) if e["event_type"] == "CUSTOMER.DISPUTE.CREATED")
    body, headers = paypal.app.signed_event(event)
    receipt = service.receive_webhook("paypal", headers, body)
    assert (receipt.status, receipt.payment_id) == ("unmatched", None)
    assert _totals(service.get_payment(payment.id)) == (eur("50.00"), eur("50.00"), eur("0.00"))
    assert service.receive_webhook("paypal", headers, body).status == "duplicate"
