"""A first operation whose answer was lost, settled by reconciliation from what Stripe's
PaymentIntent became since (the buyer's 3-D Secure, a cancellation with any reason, an expiry, a capture in the dashboard): succeeded only if Stripe holds its effect, failed
only if it moved nothing and never can, and the ledger's totals never above Stripe's."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paywire import Money, OutcomeUnknown, PaymentService
from paywire.testing.emulator import Fault
from paywire_stripe.builders import IDEMPOTENCY_KEY_FIELD
from paywire_stripe.emulator.errors import StripeError

_keys = iter(range(1, 1_000_000))
_MOVES = st.sampled_from(["challenge_ok", "challenge_fail", "expire", "capture",
                          "cancel_requested_by_customer", "cancel_abandoned", "cancel_duplicate",
                          "cancel_fraudulent"])


def _move(app: Any, api: Any, intent: str, move: str) -> None:
    """What Stripe, the buyer or the dashboard did to the intent; refused where its state forbids it."""
    try:
        if move.startswith("challenge_"):
            app.complete_challenge(intent, move == "challenge_ok")
        elif move == "expire":
            app.expire(intent)
        elif move == "capture":
            api.request("POST", f"/v1/payment_intents/{intent}/capture", {})
        else:
            api.request("POST", f"/v1/payment_intents/{intent}/cancel",
                        {"cancellation_reason": move.removeprefix("cancel_")})
    except (ValueError, StripeError):
        pass


def _expected(app: Any, intent: dict[str, Any]) -> str:
    """The lost first operation's outcome, from what the intent became."""
    status = intent["status"]
    charge = app.store.charges.get(intent["latest_charge"] or "")
    held = charge is not None and charge["status"] == "succeeded"  # an authorization was made
    if status in ("requires_capture", "succeeded") or (status == "canceled" and held):
        return "succeeded"
    if status == "requires_action":
        return "action_required"
    return "failed"  # declined, authentication failed, or canceled before anything was authorized


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(sale=st.booleans(),
       source=st.sampled_from(["pm_card_visa", "pm_card_threeDSecure2Required", "pm_card_chargeDeclined"]),
       moves=st.lists(_MOVES, max_size=3))
def test_a_lost_first_operation_is_settled_by_what_its_intent_became(
        service: PaymentService, app: Any, api: Any, sale: bool, source: str, moves: list[str]) -> None:
    key = f"lost-first-{next(_keys)}"
    app.inject(Fault("drop_after", method="POST", path=r"^/v1/payment_intents$"))
    start = service.sale if sale else service.authorize
    with pytest.raises(OutcomeUnknown) as raised:
        start("stripe", Money.of("30.00", "USD"), source=source, order_id=key, idempotency_key=key,
              return_url="https://shop.example/return")
    (intent_id,) = [i["id"] for i in app.store.payment_intents.values()
                    if i["metadata"].get(IDEMPOTENCY_KEY_FIELD) == key]
    for move in moves:
        _move(app, api, intent_id, move)
    lost = raised.value.transaction_id or ""
    payment_id = service.get_transaction(lost).payment_id or ""
    service.reconcile(payment_id=payment_id)
    intent = app.get(intent_id)
    assert service.get_transaction(lost).status == _expected(app, intent), (intent["status"], moves)
    payment = service.get_payment(payment_id)
    received = intent["amount_received"] if intent["status"] == "succeeded" else 0
    assert payment.captured == Money.minor_units(received, "USD"), (intent["status"], moves)
