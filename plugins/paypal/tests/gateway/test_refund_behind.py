"""A refund PayPal refuses as more than the capture has left, because a refund made without
paywire (no event yet) took part of it: the ledger is behind PayPal, and after the refusal it
counts that refund. Real emulator on loopback."""

from __future__ import annotations

import pytest

from paywire import Money, StateError


@pytest.mark.parametrize("asked", ["60.00", None])
def test_a_refund_refused_for_an_outside_refund_leaves_the_ledgers_totals_at_paypals(paypal, service, asked):
    payment = service.sale("paypal", Money.of("100.00", "EUR"), source=paypal.app.vault_card(),
                           idempotency_key=paypal.key())
    capture = paypal.run("fetch", reference=payment.reference).references["capture"]
    paypal.run("refund", reference=capture, amount=Money.of("50.00", "EUR"), idempotency_key=paypal.key())
    with pytest.raises(StateError) as refused:
        service.refund(payment.id, Money.of(asked, "EUR") if asked else None, idempotency_key=paypal.key())
    assert refused.value.state_conflict and refused.value.details["reconciled"] is True
    later = service.get_payment(payment.id)
    held = paypal.run("fetch", reference=later.reference)
    assert (later.captured, later.refunded) == (held.captured, held.refunded)
