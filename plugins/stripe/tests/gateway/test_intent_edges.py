"""PaymentIntent edges where what Stripe's answer says and what Stripe holds can part: an error
naming an intent that holds money, and a capture of more than the charge's `amount`."""

from __future__ import annotations

import json
from collections.abc import Generator
from typing import Any

import pytest

from paywire import Declined, Money, OutcomeUnknown, PaymentService, Response, Subject, hookimpl
from paywire.service.outcome import is_unknown


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def card_error(intent_status: str) -> Response:
    """A 402 decline whose error embeds its PaymentIntent in `intent_status`."""
    body = {"error": {
        "type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
        "message": "Your card was declined.", "charge": "ch_edge_1",
        "payment_intent": {"id": "pi_edge_1", "object": "payment_intent", "status": intent_status,
                           "amount": 1000, "currency": "eur", "client_secret": "pi_edge_1_secret_x"},
    }}
    return Response(402, {"content-type": "application/json", "request-id": "req_edge"}, json.dumps(body).encode())


@pytest.mark.parametrize("command", ["authorize", "sale"])
@pytest.mark.parametrize("status", ["succeeded", "requires_capture", "processing"])
def test_an_error_naming_an_intent_that_holds_money_is_never_a_decline(stripe: Any, command: str, status: str) -> None:
    """Stripe's error object embeds the intent as it stands. One that is `succeeded`,
    `requires_capture` or `processing` holds (or is taking) the buyer's money: the request took
    effect whatever the status line says, so the outcome is unknown (fetch settles it), never the
    failure a decline is recorded as."""
    with stripe.recorder.answering(card_error(status)), pytest.raises(OutcomeUnknown) as unsure:
        stripe.run(command, stripe.payment(eur("10.00")))
    assert is_unknown(unsure.value)
    assert unsure.value.reference == "pi_edge_1" and unsure.value.details["payment_intent"] == "pi_edge_1"
    assert unsure.value.code == "card_declined"


def test_a_decline_naming_an_intent_that_holds_nothing_stays_a_decline(stripe: Any) -> None:
    with stripe.recorder.answering(card_error("requires_payment_method")), pytest.raises(Declined) as declined:
        stripe.authorize(eur("10.00"))
    assert not is_unknown(declined.value) and declined.value.reference == "pi_edge_1"


def test_a_refund_declined_with_its_paid_intent_embedded_stays_a_decline(stripe: Any) -> None:
    """A refund's error may embed its PaymentIntent, `succeeded` as any refundable one is: that
    says nothing of the refund, whose decline stands."""
    paid = stripe.sale(eur("10.00"))
    with stripe.recorder.answering(card_error("succeeded")), pytest.raises(Declined) as declined:
        stripe.run("refund", stripe.on(paid.reference, eur("4.00")))
    assert not is_unknown(declined.value) and declined.value.code == "card_declined"


def test_an_overcapture_made_outside_paywire_claims_no_refund(stripe: Any, app: Any) -> None:
    """An overcapture (https://docs.stripe.com/payments/overcapture) captures more than the
    authorized `amount`. Nothing was released then, so nothing of `amount_refunded` stands for a
    release: read back, the payment has captured all of it and refunded nothing."""
    authorized = stripe.authorize(eur("10.00"))
    with app.lock:  # captured in Stripe's dashboard, 12.00 of a 10.00 authorization
        intent = app.store.payment_intents[authorized.reference]
        intent.update(status="succeeded", amount_received=1200, amount_capturable=0)
        app.store.charges[intent["latest_charge"]].update(captured=True, amount_captured=1200)
    found = stripe.fetch(authorized.reference)
    assert (found.captured, found.refunded) == (eur("12.00"), eur("0.00"))
    assert [(op.kind, op.amount) for op in found.operations] == [("capture", eur("12.00"))]


class DeclineAnswer:
    """Stripe authorizes, and its answer is a 402 `card_error` embedding the intent as it stands
    (held): the status line and the object disagree."""

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str, transfer: Any) -> Generator[None, Response, Response]:
        response: Response = yield
        if command != "authorize":
            return response
        intent = json.loads(response.body)
        body = {"error": {"type": "card_error", "code": "card_declined", "decline_code": "generic_decline",
                          "message": "Your card was declined.", "payment_intent": intent}}
        return Response(402, response.headers, json.dumps(body).encode())


def test_an_authorization_answered_as_a_decline_is_reconciled_to_what_stripe_holds(
    service: PaymentService, gateway: Any, app: Any,
) -> None:
    gateway.plugins.register(DeclineAnswer(), name="decline_answer")
    with pytest.raises(OutcomeUnknown) as unsure:
        service.authorize("stripe", eur("10.00"), source="pm_card_visa", order_id="A-402",
                          idempotency_key="held-but-declined")
    payment_id = unsure.value.payment_id
    assert payment_id is not None
    assert [t.status for t in service.list_transactions(payment_id)] == ["unknown"]
    service.reconcile(payment_id=payment_id)
    payment = service.get_payment(payment_id)
    assert (payment.state, payment.authorized) == ("authorized", eur("10.00"))
    assert app.get(payment.reference)["status"] == "requires_capture"


def captured_elsewhere(app: Any, reference: str, *, received: int, capturable: int, status: str,
                       refunded: int = 0) -> None:
    """Stripe's intent and charge after captures made outside paywire (its dashboard, another
    integration), which the emulator does not make: an overcapture or a multicapture."""
    with app.lock:
        intent = app.store.payment_intents[reference]
        intent.update(status=status, amount_received=received, amount_capturable=capturable)
        app.store.charges[intent["latest_charge"]].update(captured=True, amount_captured=received,
                                                          amount_refunded=refunded)


def test_an_overcaptured_payment_is_read_as_authorized_for_what_was_captured(service: PaymentService, app: Any) -> None:
    """The authorization covered the overcapture: read back, the payment's authorized total is
    what Stripe captured, and reconciling finds nothing the ledger and Stripe disagree on."""
    payment = service.authorize("stripe", eur("10.00"), source="pm_card_visa", order_id="A-over",
                                idempotency_key="overcaptured")
    captured_elsewhere(app, payment.reference, received=1200, capturable=0, status="succeeded")
    report = service.reconcile(payment_id=payment.id)
    read = service.get_payment(payment.id)
    assert report.mismatches == ()
    assert (read.state, read.authorized, read.captured, read.refunded) == (
        "captured", eur("12.00"), eur("12.00"), eur("0.00"))


def test_a_multicaptured_authorization_is_read_as_held_in_full(service: PaymentService, app: Any) -> None:
    """After a non-final capture of a multicapture the intent stays `requires_capture`: it holds
    what is still capturable plus what was captured, and a refund of the captured part is a
    refund, not a release (nothing was released yet)."""
    payment = service.authorize("stripe", eur("10.00"), source="pm_card_visa", order_id="A-multi",
                                idempotency_key="multicaptured")
    captured_elsewhere(app, payment.reference, received=600, capturable=400, status="requires_capture", refunded=100)
    found = service.gateway.execute("stripe", "fetch", Subject(reference=payment.reference))
    assert (found.authorized, found.captured, found.refunded, found.capturable) == (
        eur("10.00"), eur("6.00"), eur("1.00"), eur("4.00"))
    report = service.reconcile(payment_id=payment.id)
    assert report.mismatches == ()
    read = service.get_payment(payment.id)
    assert (read.authorized, read.captured) == (eur("10.00"), eur("6.00"))
