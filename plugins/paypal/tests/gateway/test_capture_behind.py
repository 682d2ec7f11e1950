"""A capture PayPal refuses as more than the authorization allows, because a capture made without
paywire (no event yet) took part of it: the ledger is behind PayPal, and after the refusal it
counts that capture. Real emulator on loopback."""

from __future__ import annotations

import pytest

from paywire import Money, StateError


@pytest.mark.parametrize("asked", ["70.00", None])
def test_a_capture_refused_for_an_outside_capture_leaves_the_ledgers_totals_at_paypals(paypal, service, asked):
    payment = service.authorize("paypal", Money.of("100.00", "EUR"), source=paypal.app.vault_card(),
                                idempotency_key=paypal.key())
    paypal.run("capture", reference=payment.references["authorization"], amount=Money.of("50.00", "EUR"),
               final=False, idempotency_key=paypal.key())
    with pytest.raises(StateError) as refused:  # 50.00 and this would pass PayPal's 115% overage limit
        service.capture(payment.id, Money.of(asked, "EUR") if asked else None, idempotency_key=paypal.key())
    assert refused.value.code == "MAX_CAPTURE_AMOUNT_EXCEEDED"
    assert refused.value.state_conflict and refused.value.details["reconciled"] is True
    later = service.get_payment(payment.id)
    held = paypal.run("fetch", reference=later.reference)
    assert (later.authorized, later.captured, later.refunded) == (held.authorized, held.captured, held.refunded)
