"""3-D Secure: an intent in requires_action is "needs buyer action" with Stripe's redirect, and
`complete` finishes it once the buyer passed the challenge."""

from __future__ import annotations

import json
from typing import Any

import pytest

from paywire import BuyerActionRequired, Customer, Declined, Money, ProviderState, Response, Subject
from paywire_stripe.sandbox import handle_next_action, pass_challenge

THREE_D_SECURE = "pm_card_threeDSecure2Required"


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def test_authorize_that_needs_3ds_returns_the_redirect_and_the_return_url(stripe: Any) -> None:
    started = stripe.authorize(eur("50.00"), THREE_D_SECURE)
    intent = stripe.app.get(started.reference)
    assert intent["status"] == "requires_action"
    assert started.action_required and started.state == ProviderState.ACTION_REQUIRED
    assert started.action.redirect_url == intent["next_action"]["redirect_to_url"]["url"]
    assert started.action.return_url == "https://shop.example/return"
    assert started.references["payment"] == started.reference
    assert started.amount is None and started.authorized == eur("0.00")


def test_complete_after_the_challenge_reports_the_authorization(stripe: Any, form: Any) -> None:
    started = stripe.authorize(eur("50.00"), THREE_D_SECURE)
    pass_challenge(started.action.redirect_url)
    done = stripe.run("complete", stripe.on(started.reference, eur("50.00")))
    transfer = stripe.sent()[-1]
    assert transfer.method == "GET" and form(transfer) == {"expand[0]": "latest_charge"}
    assert done.succeeded and done.reference == started.reference
    assert (done.state, done.amount, done.authorized) == (ProviderState.AUTHORIZED, eur("50.00"), eur("50.00"))
    assert stripe.run("capture", stripe.on(done.reference)).captured == eur("50.00")


def test_complete_after_a_3ds_sale_reports_the_capture(stripe: Any) -> None:
    started = stripe.sale(eur("50.00"), THREE_D_SECURE)
    stripe.app.complete_challenge(started.reference)
    done = stripe.run("complete", stripe.on(started.reference, eur("50.00")))
    assert (done.state, done.captured) == (ProviderState.CAPTURED, eur("50.00"))


def test_complete_before_the_buyer_acted_is_refused_and_keeps_waiting(stripe: Any) -> None:
    started = stripe.authorize(eur("50.00"), THREE_D_SECURE)
    with pytest.raises(BuyerActionRequired) as waiting:
        stripe.run("complete", stripe.on(started.reference, eur("50.00")))
    assert waiting.value.redirect_url == started.action.redirect_url and not waiting.value.retryable
    assert stripe.fetch(started.reference).state == ProviderState.ACTION_REQUIRED


def test_a_failed_challenge_completes_as_a_decline(stripe: Any) -> None:
    started = stripe.authorize(eur("50.00"), THREE_D_SECURE)
    stripe.app.complete_challenge(started.reference, succeed=False)
    with pytest.raises(Declined) as declined:
        stripe.run("complete", stripe.on(started.reference, eur("50.00")))
    assert declined.value.code == "payment_intent_authentication_failure"
    assert stripe.fetch(started.reference).state == ProviderState.FAILED


def test_an_intent_waiting_for_confirmation_is_confirmed_by_complete(stripe: Any, api: Any, form: Any) -> None:
    intent = api.intent(payment_method=THREE_D_SECURE, confirmation_method="manual", capture_method="manual",
                        confirm=True, return_url="https://shop.example/return")
    stripe.app.complete_challenge(intent["id"])
    assert stripe.app.get(intent["id"])["status"] == "requires_confirmation"
    done = stripe.run("complete", stripe.on(intent["id"], eur("10.00"), return_url="https://shop.example/return"))
    confirm = stripe.sent()[-1]
    assert confirm.method == "POST" and confirm.url.endswith(f"/v1/payment_intents/{intent['id']}/confirm")
    assert form(confirm) == {"return_url": "https://shop.example/return", "expand[0]": "latest_charge"}
    assert (done.state, done.authorized) == (ProviderState.AUTHORIZED, Money.of("10.00", "USD"))


def test_complete_of_a_canceled_intent_is_a_final_refusal(stripe: Any) -> None:
    """Nobody can finish a canceled intent and it holds nothing: as final as a decline, with
    Stripe's `cancellation_reason` as the decline code."""
    started = stripe.authorize(eur("50.00"), THREE_D_SECURE)
    stripe.run("void", stripe.on(started.reference, reason="abandoned"))
    with pytest.raises(Declined) as refused:
        stripe.run("complete", stripe.on(started.reference, eur("50.00")))
    assert (refused.value.code, refused.value.decline_code, refused.value.retryable) == (
        "payment_intent_unexpected_state", "abandoned", False)
    assert stripe.fetch(started.reference).state == ProviderState.FAILED


def test_a_vaulted_card_that_needs_3ds_is_declined_off_session(stripe: Any) -> None:
    stored = stripe.run("vault", Subject(source=THREE_D_SECURE, customer=Customer(email="b@shop.example"),
                                         idempotency_key=stripe.key()))
    with pytest.raises(Declined) as declined:
        stripe.authorize(eur("10.00"), stored.token, vaulted=True,
                         customer=Customer(reference=stored.references["customer"]))
    assert (declined.value.code, declined.value.decline_code) == ("authentication_required",
                                                                   "authentication_required")
    assert not declined.value.retryable


def test_an_intent_left_to_stripe_js_is_an_action_for_its_sdk_with_the_client_secret_kept_from_view(
        stripe: Any, caplog: Any) -> None:
    """Confirmed without a return_url, Stripe asks for Stripe.js (`use_stripe_sdk`), not a redirect:
    the result still names the intent, and hands over the client secret Stripe.js takes, unshown."""
    import logging

    caplog.set_level(logging.DEBUG)
    secret = "pi_sdk0000_secret_Sdk0000000000"
    intent = {"id": "pi_sdk0000", "object": "payment_intent", "status": "requires_action", "amount": 1000,
              "currency": "eur", "amount_capturable": 0, "amount_received": 0, "latest_charge": None,
              "client_secret": secret, "next_action": {"type": "use_stripe_sdk", "use_stripe_sdk": {}}}
    answer = Response(200, {"content-type": "application/json"}, json.dumps(intent).encode())
    with stripe.recorder.answering(answer):
        started = stripe.authorize(eur("10.00"), THREE_D_SECURE, return_url=None)
    assert started.action_required and started.reference == "pi_sdk0000"
    assert (started.action.kind, started.action.redirect_url, started.action.client_secret) == (
        "use_stripe_sdk", "", secret)
    assert secret not in repr(started) and secret not in caplog.text


def test_without_return_url_the_emulator_leaves_3ds_to_stripe_js(stripe: Any) -> None:
    started = stripe.authorize(eur("50.00"), THREE_D_SECURE, return_url=None)
    intent = stripe.app.get(started.reference)
    assert (intent["status"], intent["next_action"]["type"]) == ("requires_action", "use_stripe_sdk")
    assert started.action.kind == "use_stripe_sdk" and started.action.client_secret == intent["client_secret"]
    handle_next_action(stripe.app, started.action.client_secret)
    done = stripe.run("complete", stripe.on(started.reference, eur("50.00")))
    assert (done.state, done.authorized) == (ProviderState.AUTHORIZED, eur("50.00"))


def test_the_ledger_keeps_the_client_secret_of_a_redirect_only_while_the_buyer_must_be_sent_there(
    stripe: Any, tmp_path: Any,
) -> None:
    """Stripe's redirect carries a client secret. The transaction's history (and logs) keep it
    masked; the payment keeps the redirect whole while it waits for the buyer (where to send them,
    from any request), and drops it once the wait ends."""
    from paywire import PaymentService, SQLiteLedger

    with SQLiteLedger(str(tmp_path / "ledger.db")) as ledger:
        service = PaymentService(stripe.gateway, ledger)
        payment = service.authorize("stripe", eur("20.00"), source=THREE_D_SECURE, idempotency_key="auth-3ds",
                                    return_url="https://shop.example/return")
        url = payment.action.redirect_url
        assert "_secret_" in url  # Stripe's redirect, as the buyer needs it
        (txn,) = service.list_transactions(payment.id)
        stored = json.dumps(dict(txn.response))
        assert "_secret_" not in stored and "client_secret=***" in stored
        assert service.get_payment(payment.id).action.redirect_url == url
        pass_challenge(url)
        done = service.complete(payment.id)
        assert done.state == "authorized" and done.action is None
        assert service.get_payment(payment.id).action is None
        kept = [json.dumps([dict(t.request), dict(t.response)]) for t in service.list_transactions(payment.id)]
        assert not [text for text in kept if "_secret_" in text]
