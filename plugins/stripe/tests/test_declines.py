"""Declining test cards: 402 card_error with Stripe's codes, the intent back to requires_payment_method."""

from __future__ import annotations

from typing import Any

import pytest

DECLINES = [
    ("pm_card_chargeDeclined", "card_declined", "generic_decline", "Your card was declined."),
    (
        "pm_card_chargeDeclinedInsufficientFunds",
        "card_declined",
        "insufficient_funds",
        "Your card has insufficient funds.",
    ),
    ("pm_card_chargeDeclinedLostCard", "card_declined", "lost_card", "Your card was declined."),
    ("pm_card_chargeDeclinedStolenCard", "card_declined", "stolen_card", "Your card was declined."),
    ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card", "Your card has expired."),
    ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect."),
    (
        "pm_card_chargeDeclinedProcessingError",
        "processing_error",
        "processing_error",
        "An error occurred while processing your card. Try again in a little bit.",
    ),
    ("tok_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds", "Your card has insufficient funds."),
]


@pytest.mark.parametrize("payment_method, code, decline_code, message", DECLINES)
def test_decline_answers_402_and_resets_the_intent(
    api: Any, payment_method: str, code: str, decline_code: str, message: str
) -> None:
    response = api.post(
        "/v1/payment_intents",
        {
            "amount": 1000,
            "currency": "usd",
            "payment_method": payment_method,
            "payment_method_types": ["card"],
            "confirm": True,
        },
    )
    assert response.status == 402
    assert response.headers["Stripe-Should-Retry"] == "false"
    error = response.error
    assert (error["type"], error["code"], error["decline_code"], error["message"]) == (
        "card_error",
        code,
        decline_code,
        message,
    )
    assert error["doc_url"] == f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"
    assert error["charge"].startswith("ch_") and error["payment_method"]["object"] == "payment_method"
    intent = error["payment_intent"]
    assert (intent["status"], intent["payment_method"], intent["amount_capturable"]) == (
        "requires_payment_method",
        None,
        0,
    )
    assert intent["last_payment_error"]["decline_code"] == decline_code
    assert intent["latest_charge"] == error["charge"]
    charge = api.ok("GET", f"/v1/charges/{error['charge']}")
    assert (charge["status"], charge["paid"], charge["failure_code"], charge["outcome"]["type"]) == (
        "failed",
        False,
        code,
        "issuer_declined",
    )
    stored = api.ok("GET", f"/v1/payment_intents/{intent['id']}")
    assert stored["status"] == "requires_payment_method"


def test_a_declined_intent_can_be_retried_with_another_card(api: Any) -> None:
    declined = api.post(
        "/v1/payment_intents",
        {
            "amount": 1000,
            "currency": "usd",
            "confirm": True,
            "payment_method": "pm_card_chargeDeclined",
            "payment_method_types": ["card"],
        },
    )
    intent_id = declined.error["payment_intent"]["id"]
    retried = api.ok("POST", f"/v1/payment_intents/{intent_id}/confirm", {"payment_method": "pm_card_visa"})
    assert (retried["status"], retried["last_payment_error"]) == ("succeeded", None)


def test_charge_customer_fail_attaches_but_declines_charges(api: Any) -> None:
    response = api.off_session_payment("pm_card_chargeCustomerFail")
    assert (response.status, response.error["decline_code"]) == (402, "generic_decline")


def test_decline_events(api: Any, app: Any) -> None:
    api.post(
        "/v1/payment_intents",
        {
            "amount": 1000,
            "currency": "usd",
            "payment_method": "pm_card_chargeDeclined",
            "payment_method_types": ["card"],
            "confirm": True,
        },
    )
    assert [e["type"] for e in app.store.events.values()] == [
        "payment_intent.created",
        "charge.failed",
        "payment_intent.payment_failed",
    ]
