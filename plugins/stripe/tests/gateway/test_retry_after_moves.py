"""An authorize, sale or capture whose answer was lost, and whose PaymentIntent then moved on at
Stripe before the shop retried it under its key (the authorization expired or was canceled, the
payment was captured or refunded in the dashboard; no event reached the shop): Stripe answers the
retry with the answer it stored, the intent as it was then. The ledger must not take that for the
payment now: after the retry it holds what Stripe holds. Real emulator on loopback."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from paywire import Money, OutcomeUnknown, PaymentService
from paywire.testing.emulator import Fault


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def _move(app: Any, api: Any, intent: str, move: str) -> None:
    """What Stripe, or someone in the dashboard, does to the intent (a move Stripe refuses in the
    state the intent is in does nothing)."""
    if move == "expire":
        if app.get(intent)["status"] == "requires_capture":
            app.expire(intent)
    elif move == "cancel":
        api.post(f"/v1/payment_intents/{intent}/cancel", {})
    elif move == "capture":
        api.post(f"/v1/payment_intents/{intent}/capture", {"amount_to_capture": 3000})
    else:
        api.post("/v1/refunds", {"payment_intent": intent, "amount": 1000})


def _lost_then_retried(service: PaymentService, app: Any, api: Any, flow: str, moves: list[str],
                       key: str) -> str:
    """A first operation whose answer is lost, moved on by `moves`, then retried under its key;
    returns the payment's id."""
    app.inject(Fault(kind="drop_after", path=r"^/v1/payment_intents$"))
    start = service.sale if flow == "sale" else service.authorize
    with pytest.raises(OutcomeUnknown) as lost:
        start("stripe", eur("50.00"), source="pm_card_visa", order_id=key, idempotency_key=key)
    intent = list(app.store.payment_intents)[-1]  # the one the lost request made
    for move in moves:
        _move(app, api, intent, move)
    start("stripe", eur("50.00"), source="pm_card_visa", order_id=key, idempotency_key=key)
    return lost.value.payment_id or ""


def _totals_match(service: PaymentService, stripe: Any, payment_id: str) -> None:
    payment = service.get_payment(payment_id)
    held = stripe.fetch(payment.reference)
    assert (payment.authorized, payment.captured, payment.refunded) == (held.authorized, held.captured,
                                                                        held.refunded), held.state


@pytest.mark.parametrize(("flow", "moves", "state"), [
    ("authorize", ["expire"], "voided"),
    ("authorize", ["cancel"], "voided"),
    ("authorize", ["capture"], "captured"),
    ("authorize", ["capture", "refund"], "partially_refunded"),
    ("sale", ["refund"], "partially_refunded"),
])
def test_a_retry_answered_with_the_intent_as_it_was_leaves_the_payment_as_stripe_holds_it(
        service: PaymentService, stripe: Any, app: Any, api: Any, flow: str, moves: list[str], state: str) -> None:
    payment_id = _lost_then_retried(service, app, api, flow, moves, "order-moved-1")
    assert service.get_payment(payment_id).state == state
    _totals_match(service, stripe, payment_id)
    assert len(app.store.payment_intents) == 1  # the retry made nothing new


def test_a_capture_retried_after_a_refund_in_the_dashboard_leaves_the_refund_counted(
        service: PaymentService, stripe: Any, app: Any, api: Any) -> None:
    payment = service.authorize("stripe", eur("50.00"), source="pm_card_visa", idempotency_key="order-moved-2")
    app.inject(Fault(kind="drop_after", path=r"/capture$"))
    with pytest.raises(OutcomeUnknown):
        service.capture(payment.id, eur("30.00"), idempotency_key="capture-moved-2")
    api.post("/v1/refunds", {"payment_intent": payment.reference, "amount": 1000})
    service.capture(payment.id, eur("30.00"), idempotency_key="capture-moved-2")
    later = service.get_payment(payment.id)
    assert (later.state, later.captured, later.refunded) == ("partially_refunded", eur("30.00"), eur("10.00"))
    _totals_match(service, stripe, payment.id)


def test_a_fresh_operation_sends_one_request(service: PaymentService, app: Any) -> None:
    """Only a resend reads the intent, and only an answer naming a state past what the operation
    made reads the payment: a first send costs one request, as before."""
    calls = len(app.calls)
    payment = service.authorize("stripe", eur("50.00"), source="pm_card_visa", idempotency_key="order-fresh-3")
    payment = service.capture(payment.id, eur("30.00"))
    payment = service.refund(payment.id, eur("10.00"))
    assert [method for method, _ in app.calls[calls:]] == ["POST", "POST", "POST"]
    assert (payment.state, payment.refunded) == ("partially_refunded", eur("10.00"))


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@example(flow="authorize", moves=["expire"])
@example(flow="sale", moves=["refund", "refund"])
@given(flow=st.sampled_from(["sale", "authorize"]),
       moves=st.lists(st.sampled_from(["expire", "cancel", "capture", "refund"]), max_size=3))
def test_after_any_moves_a_retry_under_the_key_leaves_the_ledgers_totals_at_stripes(
        service: PaymentService, stripe: Any, app: Any, api: Any, flow: str, moves: list[str]) -> None:
    """Whatever happened to the intent between the lost answer and the retry, the ledger's totals
    after the retry are Stripe's: never an authorization or capture Stripe no longer holds, nor a
    refund it does not count."""
    key = f"order-{len(app.store.payment_intents)}"
    _totals_match(service, stripe, _lost_then_retried(service, app, api, flow, moves, key))


def test_a_resend_whose_intent_cannot_be_read_stays_unknown_and_reconcile_settles_it(
        service: PaymentService, stripe: Any, app: Any, api: Any) -> None:
    """Stripe's stored answer alone says nothing of the intent now: without the read, the outcome
    stays unknown (never the authorization as it was), and reconciliation reads it later."""
    app.inject(Fault(kind="drop_after", path=r"^/v1/payment_intents$"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.authorize("stripe", eur("50.00"), source="pm_card_visa", idempotency_key="order-unread-4")
    app.expire(list(app.store.payment_intents)[-1])
    app.inject(Fault(kind="status", status=500, method="GET", path=r"^/v1/payment_intents/", times=10))
    with pytest.raises(OutcomeUnknown):
        service.authorize("stripe", eur("50.00"), source="pm_card_visa", idempotency_key="order-unread-4")
    payment_id = lost.value.payment_id or ""
    assert service.get_payment(payment_id).authorized == eur("0.00")
    app.clear_faults()
    service.reconcile(payment_id=payment_id)
    assert service.get_payment(payment_id).state == "voided"
    _totals_match(service, stripe, payment_id)
