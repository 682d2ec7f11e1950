"""Refunds made beside paywire (Stripe's dashboard) that the ledger cannot place yet: one Stripe
has not decided (`pending`), and one whose event waits for a lost refund of the service's own.
Stripe holds either against the charge, so less is left to refund; what the service lets be
refunded should leave them out, refusing before anything is sent."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import Money, OutcomeUnknown, PaymentService, StateError

_RETURN = "https://shop.example/r"


def test_a_pending_dashboard_refund_is_not_offered_to_refund_again(
        service: PaymentService, app: Any, api: Any, deliver_all: Any) -> None:
    payment = service.sale("stripe", Money(10000, "EUR"), source="pm_card_pendingRefund", return_url=_RETURN)
    api.post("/v1/refunds", {"payment_intent": payment.reference, "amount": 6000})
    deliver_all(set())
    assert service.reconcile(payment_id=payment.id).clean
    with pytest.raises(StateError) as refused:
        service.refund(payment.id, Money(4001, "EUR"))
    assert refused.value.code == "refund_exceeds_captured"  # refused before anything was sent
    # The only refund the ledger holds is the dashboard's, accepted (in flight): none of the service's.
    [dashboard] = app.store.refunds
    assert [(t.origin, t.status, t.provider_reference, t.amount) for t in service.list_transactions(payment.id)
            if t.kind == "refund"] == [("webhook", "accepted", dashboard, Money(6000, "EUR"))]
    assert len(app.store.refunds) == 1


def test_a_dashboard_refund_waiting_on_a_lost_refund_is_not_offered_to_refund_again(
        service: PaymentService, app: Any, api: Any, deliver_all: Any) -> None:
    payment = service.sale("stripe", Money(10000, "EUR"), source="pm_card_visa", return_url=_RETURN)
    app.fail_after_executing(r"^/v1/refunds$")  # Stripe's own 500 after refunding, kept under the key
    with pytest.raises(OutcomeUnknown):
        service.refund(payment.id, Money(100, "EUR"))
    api.post("/v1/refunds", {"payment_intent": payment.reference, "amount": 100})
    deliver_all(set())
    with pytest.raises(StateError) as refused:
        service.refund(payment.id, Money(9801, "EUR"))  # Stripe holds 98.00 unrefunded
    assert refused.value.code == "refund_exceeds_captured"  # refused before anything was sent
    assert len(app.store.refunds) == 2
