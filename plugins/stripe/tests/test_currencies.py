"""Stripe's currency rules: supported codes, zero- and three-decimal amounts, ISK/UGX, minimums."""

from __future__ import annotations

from typing import Any

import pytest

from paywire_stripe.emulator.currencies import display


def _create(api: Any, amount: int, currency: str) -> Any:
    return api.post("/v1/payment_intents", {"amount": amount, "currency": currency, "payment_method_types": ["card"]})


def test_unsupported_currency_lists_what_stripe_supports(api: Any) -> None:
    response = _create(api, 1000, "xyz")
    assert response.status == 400
    assert response.error["param"] == "currency"
    assert response.error["message"].startswith(
        "Invalid currency: xyz. Stripe currently supports these currencies: usd, aed"
    )


def test_currency_codes_are_case_insensitive_and_answered_in_lower_case(api: Any) -> None:
    assert _create(api, 1000, "EUR").body["currency"] == "eur"


@pytest.mark.parametrize(
    "amount, currency, message",
    [
        (49, "usd", "Amount must be at least $0.50 usd"),
        (29, "gbp", "Amount must be at least £0.30 gbp"),
        (49, "jpy", "Amount must be at least ¥50 jpy"),
        (17499, "huf", "Amount must be at least 175.00 huf"),
    ],
)
def test_amounts_below_the_minimum_charge_are_too_small(api: Any, amount: int, currency: str, message: str) -> None:
    response = _create(api, amount, currency)
    assert (response.status, response.error["code"], response.error["param"]) == (400, "amount_too_small", "amount")
    assert response.error["message"] == message
    assert _create(api, amount + 1, currency).status == 200


def test_zero_decimal_amounts_are_whole_units(api: Any) -> None:
    intent = _create(api, 500, "jpy").body
    assert (intent["amount"], intent["currency"]) == (500, "jpy")


@pytest.mark.parametrize("currency", ["isk", "ugx"])
def test_isk_and_ugx_are_sent_with_two_decimals_that_are_always_00(api: Any, currency: str) -> None:
    assert _create(api, 50000, currency).status == 200
    response = _create(api, 50050, currency)
    assert response.error["code"] == "invalid_charge_amount_no_decimal_compatible"
    assert "must be evenly divisible by 100" in response.error["message"]


@pytest.mark.parametrize("currency", ["bhd", "jod", "kwd", "omr", "tnd"])
def test_three_decimal_amounts_must_end_in_zero(api: Any, currency: str) -> None:
    assert _create(api, 5120, currency).status == 200
    response = _create(api, 5124, currency)
    assert (response.error["code"], response.error["param"]) == ("invalid_charge_amount", "amount")


def test_three_decimal_rule_applies_to_captures_and_refunds(api: Any) -> None:
    intent = api.intent(
        amount=10000, currency="kwd", payment_method="pm_card_visa", confirm=True, capture_method="manual"
    )
    assert api.post(f"/v1/payment_intents/{intent['id']}/capture", {"amount_to_capture": 5005}).error["code"] == (
        "invalid_charge_amount"
    )
    api.ok("POST", f"/v1/payment_intents/{intent['id']}/capture", {"amount_to_capture": 5000})
    assert api.post("/v1/refunds", {"payment_intent": intent["id"], "amount": 1001}).error["code"] == (
        "invalid_charge_amount"
    )
    assert api.ok("POST", "/v1/refunds", {"payment_intent": intent["id"], "amount": 1000})["amount"] == 1000


@pytest.mark.parametrize("currency", ["huf", "twd"])
def test_huf_and_twd_charge_ordinary_two_decimal_amounts(api: Any, currency: str) -> None:
    assert _create(api, 1234567, currency).status == 200


def test_amounts_above_eight_digits_are_too_large(api: Any) -> None:
    assert _create(api, 99999999, "usd").status == 200
    response = _create(api, 100000000, "usd")
    assert (response.error["code"], response.error["message"]) == (
        "amount_too_large",
        "Amount must be no more than $999,999.99",
    )


def test_display_formats_amounts_like_stripes_messages() -> None:
    assert display(1050, "usd") == "$10.50"
    assert display(100000, "jpy") == "¥100,000"
    assert display(5120, "kwd") == "5.120 kwd"
