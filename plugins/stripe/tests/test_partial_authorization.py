"""Partial authorization as https://docs.stripe.com/payments/partial-authorization describes it:
`pm_card_debit_partialAuthorization` (4000058400000071) is authorized for 70% of the amount,
rounded down, only when the PaymentIntent asks for it
(`payment_method_options[card][request_partial_authorization]=if_available`), with manual or
automatic capture; the intent's and the charge's `amount` are then what was approved, the card
says what was asked. Unasked (or `never`), the card is declined for insufficient funds."""

from __future__ import annotations

from typing import Any

import pytest
import stripe

PARTIAL = "pm_card_debit_partialAuthorization"
ASK = {"card": {"request_partial_authorization": "if_available"}}


def _pay(api: Any, amount: int, card: str = PARTIAL, currency: str = "usd", **params: Any) -> Any:
    return api.post(
        "/v1/payment_intents",
        {
            "amount": amount,
            "currency": currency,
            "payment_method": card,
            "payment_method_types": ["card"],
            "confirm": True,
            "expand": ["latest_charge"],
            **params,
        },
    )


@pytest.mark.parametrize("capture_method", ["manual", "automatic"])
def test_asked_for_partial_authorization_the_card_authorizes_seventy_percent(
    api: Any, app: Any, capture_method: str
) -> None:
    answer = _pay(api, 10001, capture_method=capture_method, payment_method_options=ASK)
    assert answer.status == 200, answer.body
    intent, manual = answer.body, capture_method == "manual"
    assert (intent["status"], intent["amount"], intent["amount_capturable"], intent["amount_received"]) == (
        ("requires_capture", 7000, 7000, 0) if manual else ("succeeded", 7000, 0, 7000)
    )
    assert intent["payment_method_options"]["card"]["request_partial_authorization"] == "if_available"
    charge = intent["latest_charge"]
    assert (charge["amount"], charge["amount_captured"], charge["captured"]) == (
        7000,
        0 if manual else 7000,
        not manual,
    )
    card = charge["payment_method_details"]["card"]
    assert (card["amount_authorized"], card["amount_requested"], card["partial_authorization"]) == (
        7000,
        10001,
        {"status": "partially_authorized"},
    )
    assert (card["last4"], card["funding"]) == ("0071", "debit")
    assert app.store.payment_intents[intent["id"]]["amount"] == 7000  # as stored, not only as answered


@pytest.mark.parametrize("options", [None, {"card": {"request_partial_authorization": "never"}}])
def test_unasked_the_card_is_declined_for_insufficient_funds(api: Any, options: Any) -> None:
    params = {"payment_method_options": options} if options else {}
    answer = _pay(api, 10000, capture_method="manual", **params)
    assert answer.status == 402
    assert (answer.error["code"], answer.error["decline_code"]) == ("card_declined", "insufficient_funds")
    intent = answer.error["payment_intent"]
    assert (intent["status"], intent["amount"], intent["amount_capturable"]) == ("requires_payment_method", 10000, 0)


def test_a_full_authorization_asked_to_be_partial_says_so(api: Any) -> None:
    intent = _pay(api, 10000, card="pm_card_visa", capture_method="manual", payment_method_options=ASK).body
    assert (intent["amount"], intent["amount_capturable"]) == (10000, 10000)
    card = intent["latest_charge"]["payment_method_details"]["card"]
    assert (card["amount_authorized"], card["amount_requested"], card["partial_authorization"]) == (
        10000,
        10000,
        {"status": "fully_authorized"},
    )


def test_an_unasked_charge_carries_no_partial_authorization(api: Any) -> None:
    card = _pay(api, 10000, card="pm_card_visa").body["latest_charge"]["payment_method_details"]["card"]
    assert "partial_authorization" not in card and card["amount_authorized"] == 10000


def test_a_declined_attempt_asked_to_be_partial_says_so(api: Any) -> None:
    answer = _pay(api, 10000, card="pm_card_chargeDeclined", payment_method_options=ASK)
    assert answer.status == 402
    charge = api.ok("GET", f"/v1/charges/{answer.error['charge']}")
    assert charge["payment_method_details"]["card"]["partial_authorization"] == {"status": "declined"}


def test_a_partial_authorization_below_the_minimum_charge_is_declined(api: Any) -> None:
    answer = _pay(api, 71, capture_method="manual", payment_method_options=ASK)  # 70% is 49 cents, under $0.50
    assert answer.status == 402 and answer.error["decline_code"] == "insufficient_funds"
    assert _pay(api, 72, capture_method="manual", payment_method_options=ASK).body["amount_capturable"] == 50


@pytest.mark.parametrize(
    ("currency", "amount", "held"), [("jpy", 1001, 700), ("isk", 10100, 7000), ("kwd", 10010, 7000)]
)
def test_what_is_approved_is_an_amount_stripe_can_charge(api: Any, currency: str, amount: int, held: int) -> None:
    intent = _pay(api, amount, currency=currency, capture_method="manual", payment_method_options=ASK).body
    assert (intent["amount"], intent["amount_capturable"]) == (held, held)


def test_a_partially_authorized_intent_captures_and_refunds_no_more_than_approved(api: Any) -> None:
    intent = _pay(api, 10000, capture_method="manual", payment_method_options=ASK).body
    too_much = api.post(f"/v1/payment_intents/{intent['id']}/capture", {"amount_to_capture": 7001})
    assert too_much.status == 400
    captured = api.ok("POST", f"/v1/payment_intents/{intent['id']}/capture", {"expand": ["latest_charge"]})
    assert (captured["status"], captured["amount_received"], captured["latest_charge"]["amount_refunded"]) == (
        "succeeded",
        7000,
        0,
    )
    assert api.post("/v1/refunds", {"payment_intent": intent["id"], "amount": 7001}).status == 400
    assert api.ok("POST", "/v1/refunds", {"payment_intent": intent["id"]})["amount"] == 7000


def test_the_sdk_reads_a_partial_authorization(client: stripe.StripeClient) -> None:
    params: Any = {
        "amount": 10000,
        "currency": "usd",
        "payment_method": PARTIAL,
        "payment_method_types": ["card"],
        "payment_method_options": ASK,
        "capture_method": "manual",
        "confirm": True,
        "expand": ["latest_charge"],
    }
    intent = client.v1.payment_intents.create(params=params)
    card: Any = intent.latest_charge.payment_method_details.card  # type: ignore[union-attr]
    assert (intent.amount, intent.amount_capturable, card.amount_authorized) == (7000, 7000, 7000)
    assert card["partial_authorization"]["status"] == "partially_authorized"  # not in the SDK's GA types
    unasked: Any = {name: value for name, value in params.items() if name != "payment_method_options"}
    with pytest.raises(stripe.CardError) as declined:
        client.v1.payment_intents.create(params=unasked)
    assert declined.value.code == "card_declined"
    assert declined.value.error and declined.value.error.decline_code == "insufficient_funds"
