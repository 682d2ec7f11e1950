"""A refund event that waits for a refund of the service's own whose answer was lost: it may be
that refund, or another made beside paywire (Stripe's dashboard). Until reconciliation says which,
a new refund counts both as spent, so the service never offers what Stripe may no longer hold;
once it knows, what is left is offered again."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import Money, OutcomeUnknown, Payment, PaymentService, StateError

_RETURN = "https://shop.example/r"


def _lost_refund(service: PaymentService, app: Any, amount: int, source: str = "pm_card_visa") -> Payment:
    """A sale of 100.00 from `source` with a refund of `amount` that Stripe made and whose answer
    was lost (on "pm_card_pendingRefund" its refunds stay pending)."""
    payment = service.sale("stripe", Money(10000, "EUR"), source=source, return_url=_RETURN)
    app.fail_after_executing(r"^/v1/refunds$")  # Stripe's own 500 after refunding, kept under the key
    with pytest.raises(OutcomeUnknown):
        service.refund(payment.id, Money(amount, "EUR"))
    return payment


def _beside_a_lost_refund(service: PaymentService, app: Any, api: Any, deliver_all: Any, amount: int) -> Payment:
    """A lost refund of 1.00 and a dashboard refund of `amount`, their events delivered (both wait)."""
    payment = _lost_refund(service, app, 100)
    api.post("/v1/refunds", {"payment_intent": payment.reference, "amount": amount})
    deliver_all(set())
    return payment


def _stripe_left(app: Any) -> int:
    return 10000 - sum(r["amount"] for r in app.store.refunds.values() if r["status"] == "succeeded")


def test_the_lost_refunds_own_event_holds_its_amount_twice_until_reconciled(
        service: PaymentService, app: Any, deliver_all: Any) -> None:
    payment = _lost_refund(service, app, 100)
    assert "deferred" in deliver_all(set())  # refund.created for it: it may be another refund
    with pytest.raises(StateError) as refused:
        service.refund(payment.id, Money(9801, "EUR"))  # Stripe would take it: the event is this refund
    assert refused.value.code == "refund_exceeds_captured"
    assert "reconcile" in str(refused.value) and "1.00 EUR" in str(refused.value)
    assert len(app.store.refunds) == 1  # nothing was sent
    assert len(service.reconcile(payment_id=payment.id).settled) == 1  # it names the lost refund
    refunds = [t for t in service.list_transactions(payment.id) if t.kind == "refund"]
    assert [(t.status, t.amount) for t in refunds] == [("succeeded", Money(100, "EUR"))]  # one operation, once
    refunded = service.refund(payment.id, Money(9900, "EUR"))
    assert refunded.refunded == Money(10000, "EUR") and _stripe_left(app) == 0


def test_once_reconciled_what_stripe_holds_is_offered_again(
        service: PaymentService, app: Any, api: Any, deliver_all: Any) -> None:
    payment = _beside_a_lost_refund(service, app, api, deliver_all, 250)
    with pytest.raises(StateError) as refused:
        service.refund(payment.id, Money(9651, "EUR"))  # 100.00 - 1.00 - 2.50 + 0.01
    assert refused.value.code == "refund_exceeds_captured" and len(app.store.refunds) == 2  # nothing sent
    service.reconcile(payment_id=payment.id)
    assert service.get_payment(payment.id).refunded == Money(350, "EUR")
    refunded = service.refund(payment.id, Money(9650, "EUR"))
    assert refunded.refunded == Money(10000, "EUR") and _stripe_left(app) == 0
    assert len(app.store.refunds) == 3


def test_refunding_the_rest_while_an_event_waits_is_refused_not_guessed(
        service: PaymentService, app: Any, api: Any, deliver_all: Any) -> None:
    payment = _beside_a_lost_refund(service, app, api, deliver_all, 100)
    # "Everything left" is 98.00 or 99.00 as the waiting event is another refund or the lost one.
    with pytest.raises(StateError) as refused:
        service.refund(payment.id)
    assert refused.value.code == "refund_exceeds_captured"
    assert len(app.store.refunds) == 2
    service.reconcile(payment_id=payment.id)
    assert service.refund(payment.id).refunded == Money(10000, "EUR")
    assert _stripe_left(app) == 0


def test_a_refund_within_what_stripe_may_hold_is_sent(
        service: PaymentService, app: Any, api: Any, deliver_all: Any) -> None:
    # Both refunds' events wait (either may be the lost one, whose own event is among them): the
    # most Stripe may have refunded is their sum and the lost refund's, 3.00.
    payment = _beside_a_lost_refund(service, app, api, deliver_all, 100)
    with pytest.raises(StateError) as refused:
        service.refund(payment.id, Money(9701, "EUR"))
    assert refused.value.code == "refund_exceeds_captured" and len(app.store.refunds) == 2  # nothing sent
    service.refund(payment.id, Money(9700, "EUR"))
    assert _stripe_left(app) == 100 and len(app.store.refunds) == 3
    service.reconcile(payment_id=payment.id)
    assert service.get_payment(payment.id).refundable == Money(100, "EUR")


def test_a_pending_dashboard_refund_waiting_on_a_lost_refund_is_held_as_refunding(
        service: PaymentService, app: Any, api: Any, deliver_all: Any) -> None:
    # Refunds on this card stay pending: the lost refund and the dashboard's are both held by Stripe.
    payment = _lost_refund(service, app, 100, source="pm_card_pendingRefund")
    api.post("/v1/refunds", {"payment_intent": payment.reference, "amount": 6000})
    deliver_all(set())
    with pytest.raises(StateError) as refused:  # Stripe holds 39.00 not refunded or being refunded
        service.refund(payment.id, Money(3901, "EUR"))
    assert refused.value.code == "refund_exceeds_captured" and len(app.store.refunds) == 2  # nothing sent
    service.reconcile(payment_id=payment.id)
    refunds = sorted((t.status, t.amount.minor) for t in service.list_transactions(payment.id)
                     if t.kind == "refund" and t.amount is not None)
    assert refunds == [("accepted", 100), ("accepted", 6000)]  # each once, in flight
    service.refund(payment.id, Money(3900, "EUR"))
    assert len(app.store.refunds) == 3


def test_a_dashboard_refunds_pending_and_refunded_events_waiting_count_it_once(
        service: PaymentService, app: Any, api: Any, deliver_all: Any) -> None:
    payment = _lost_refund(service, app, 100, source="pm_card_pendingRefund")
    dashboard = api.ok("POST", "/v1/refunds", {"payment_intent": payment.reference, "amount": 6000})["id"]
    app.settle(dashboard, True)
    deliver_all(set())  # its refund.created (pending) and its refund.updated (succeeded) both wait
    # At most 1.00 (the lost refund), 1.00 (its event, which may be another) and 60.00: 38.00 left.
    with pytest.raises(StateError) as refused:
        service.refund(payment.id, Money(3801, "EUR"))
    assert refused.value.code == "refund_exceeds_captured" and len(app.store.refunds) == 2
    service.refund(payment.id, Money(3800, "EUR"))
    assert len(app.store.refunds) == 3
