"""A capture Stripe refuses because a capture made without paywire (the dashboard; no event yet)
took the authorization: the ledger is behind Stripe, and after the refusal it counts that
capture, whether the capture was a first send or a retry under its key of one that never
arrived. Real emulator on loopback."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import Money, OutcomeUnknown, PaymentService, StateError
from paywire.testing.emulator import Fault


@pytest.mark.parametrize("retried", [False, True])
@pytest.mark.parametrize("asked", [60, None])
def test_a_capture_refused_for_an_outside_capture_leaves_the_ledgers_totals_at_stripes(
        service: PaymentService, stripe: Any, app: Any, api: Any, asked: int | None, retried: bool) -> None:
    payment = service.authorize("stripe", Money.of("100", "EUR"), source="pm_card_visa",
                                return_url="https://shop.example/r")
    amount = None if asked is None else Money.of(str(asked), "EUR")
    key = f"capture-{payment.id}"
    if retried:  # its first send never reached Stripe, and its answer is a 500
        app.inject(Fault(kind="status", status=500, path=r"/capture$"))
        with pytest.raises(OutcomeUnknown):
            service.capture(payment.id, amount, idempotency_key=key)
    api.post(f"/v1/payment_intents/{payment.reference}/capture", {"amount_to_capture": 5000})
    with pytest.raises(StateError) as refused:
        service.capture(payment.id, amount, idempotency_key=key)
    assert refused.value.state_conflict and refused.value.details["reconciled"] is True
    later = service.get_payment(payment.id)
    held = stripe.fetch(later.reference)
    assert (later.authorized, later.captured, later.refunded) == (held.authorized, held.captured, held.refunded)
