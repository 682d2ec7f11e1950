"""`void()` of a payment waiting for 3-D Secure cancels its PaymentIntent (Stripe allows a cancel in
requires_action), so a buyer who walks away leaves no open intent; the official SDK reads the
intent as cancelled. A buyer finishing 3-D Secure first, and a cancel whose answer is lost, end
with the ledger holding what Stripe holds."""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import stripe as stripe_sdk

from paywire import Money, OutcomeUnknown, PaymentService, StateError
from paywire.ledger import PaymentState, TransactionStatus
from paywire.testing.emulator import Fault

THREE_D_SECURE = "pm_card_threeDSecure2Required"
RETURN = "https://shop.example/return"


def _waiting(service: PaymentService, kind: str = "authorize") -> Any:
    payment = getattr(service, kind)("stripe", Money.of("30.00", "EUR"), source=THREE_D_SECURE, return_url=RETURN)
    assert payment.state == PaymentState.ACTION_REQUIRED
    return payment


def test_void_of_a_payment_waiting_for_3ds_cancels_its_intent(
        service: PaymentService, recorder: Any, client: stripe_sdk.StripeClient) -> None:
    payment = _waiting(service)
    mark = len(recorder.sent)
    voided = service.void(payment.id, reason="abandoned", idempotency_key="cancel-A-1")
    assert voided.state == PaymentState.VOIDED and voided.authorized.minor == 0
    (sent,) = [r.transfer for r in recorder.sent[mark:]]
    assert (sent.method, urlsplit(sent.url).path) == ("POST", f"/v1/payment_intents/{payment.reference}/cancel")
    assert parse_qs(sent.body.decode())["cancellation_reason"] == ["abandoned"]
    assert sent.headers["Idempotency-Key"]
    intent = client.v1.payment_intents.retrieve(payment.reference)  # the SDK, as a witness
    assert (intent.status, intent.cancellation_reason, intent.next_action) == ("canceled", "abandoned", None)
    kinds = [(t.kind, t.status) for t in service.list_transactions(payment.id)]
    assert kinds == [("authorize", TransactionStatus.ACTION_REQUIRED), ("void", TransactionStatus.SUCCEEDED)]
    assert service.reconcile(payment_id=payment.id).clean
    assert service.get_payment(payment.id).state == PaymentState.VOIDED


@pytest.mark.parametrize("kind", ["authorize", "sale"])
def test_a_buyer_who_finished_3ds_before_the_cancel_leaves_the_ledger_as_stripe_holds_it(
        service: PaymentService, app: Any, kind: str) -> None:
    payment = _waiting(service, kind)
    app.complete_challenge(payment.reference)  # the buyer was faster; Stripe's event is not here yet
    if kind == "authorize":  # the cancel releases the authorization
        assert service.void(payment.id).state == PaymentState.VOIDED
        assert app.get(payment.reference)["status"] == "canceled"
    else:  # a paid sale cannot be cancelled: refused, and the payment read from Stripe
        with pytest.raises(StateError) as refused:
            service.void(payment.id)
        assert refused.value.details["reconciled"] is True
        assert service.get_payment(payment.id).captured == Money.of("30.00", "EUR")
    assert service.reconcile(payment_id=payment.id).clean


def test_a_completion_is_refused_while_a_cancel_is_in_flight_and_the_lost_cancel_is_settled(
        service: PaymentService, app: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    payment = _waiting(service)
    app.inject(Fault(kind="drop_after", path=r"/cancel$"))
    with pytest.raises(OutcomeUnknown):
        service.void(payment.id)
    assert app.get(payment.reference)["status"] == "canceled"  # it landed; the answer was lost
    with pytest.raises(StateError) as refused:
        service.complete(payment.id)
    assert refused.value.code == "void_in_flight"
    (void,) = [t for t in service.list_transactions(payment.id) if t.kind == "void"]
    assert void.status == TransactionStatus.UNKNOWN and void.settle_after is not None
    early = service.reconcile()  # Stripe holds the intent failed (cancelled, nothing held): the cancel may still land
    assert [s.kind for s in early.unresolved] == ["void"] and not early.settled
    assert service.get_payment(payment.id).authorized.minor == 0
    # The cancel's longest life (Stripe's outcome window among it) is over: the service's clock moves on.
    later = void.settle_after + timedelta(seconds=1)
    monkeypatch.setattr(service.ledger, "now", lambda: later)
    report = service.reconcile()
    assert [(s.kind, s.status) for s in report.settled] == [("void", TransactionStatus.SUCCEEDED)]
    settled = service.get_payment(payment.id)
    assert settled.authorized.minor == 0 and settled.state in PaymentState.FINAL and settled.action is None


def test_a_cancel_waits_for_a_completion_in_flight(service: PaymentService, app: Any, recorder: Any) -> None:
    payment = _waiting(service)
    app.complete_challenge(payment.reference)
    app.inject(Fault(kind="drop_after", path=r"^/v1/payment_intents/pi_[^/]+$", method="GET"))
    with pytest.raises(OutcomeUnknown):
        service.complete(payment.id)
    sent = len(recorder.sent)
    with pytest.raises(StateError) as refused:
        service.void(payment.id)
    assert refused.value.code == "complete_in_flight" and len(recorder.sent) == sent  # nothing sent
    assert service.complete(payment.id).state == PaymentState.AUTHORIZED  # the same call, its key reused
    assert service.void(payment.id).state == PaymentState.VOIDED  # now an authorization: released
    assert app.get(payment.reference)["status"] == "canceled"
