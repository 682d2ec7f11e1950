"""PaymentIntents: statuses and transitions, capture, cancel, update, list, search, expansion."""

from __future__ import annotations

from typing import Any

import pytest


def test_created_without_payment_method_requires_one(api: Any) -> None:
    intent = api.intent(description="Order A-1", receipt_email="buyer@example.com")
    assert intent["object"] == "payment_intent"
    assert intent["id"].startswith("pi_") and intent["client_secret"].startswith(intent["id"] + "_secret_")
    assert (intent["status"], intent["amount"], intent["amount_capturable"], intent["amount_received"]) == (
        "requires_payment_method",
        1000,
        0,
        0,
    )
    assert (intent["latest_charge"], intent["last_payment_error"], intent["next_action"]) == (None, None, None)
    assert intent["livemode"] is False and intent["payment_method_types"] == ["card"]


def test_created_with_payment_method_requires_confirmation_and_gets_a_new_pm_id(api: Any) -> None:
    intent = api.intent(payment_method="pm_card_visa")
    assert intent["status"] == "requires_confirmation"
    assert intent["payment_method"].startswith("pm_") and intent["payment_method"] != "pm_card_visa"


def test_confirm_with_automatic_capture_succeeds_with_a_captured_charge(api: Any) -> None:
    intent = api.intent(payment_method="pm_card_visa", confirm=True, capture_method="automatic")
    assert (intent["status"], intent["amount_received"], intent["amount_capturable"]) == ("succeeded", 1000, 0)
    charge = api.ok("GET", f"/v1/charges/{intent['latest_charge']}")
    assert charge["captured"] and charge["paid"] and charge["status"] == "succeeded"
    assert (charge["amount"], charge["amount_captured"], charge["amount_refunded"], charge["refunded"]) == (
        1000,
        1000,
        0,
        False,
    )
    assert charge["payment_intent"] == intent["id"] and charge["payment_method"] == intent["payment_method"]
    assert charge["payment_method_details"]["card"]["last4"] == "4242"


def test_confirm_in_a_second_call(api: Any) -> None:
    intent = api.intent(payment_method="pm_card_mastercard")
    confirmed = api.ok("POST", f"/v1/payment_intents/{intent['id']}/confirm")
    assert confirmed["status"] == "succeeded"
    again = api.post(f"/v1/payment_intents/{intent['id']}/confirm")
    assert (again.status, again.error["code"]) == (400, "payment_intent_unexpected_state")
    assert again.error["message"] == (
        "You cannot confirm this PaymentIntent because it has already succeeded after being previously confirmed."
    )
    assert again.error["payment_intent"]["id"] == intent["id"]


def test_confirm_can_supply_the_payment_method(api: Any) -> None:
    intent = api.intent()
    confirmed = api.ok("POST", f"/v1/payment_intents/{intent['id']}/confirm", {"payment_method": "pm_card_amex"})
    assert confirmed["status"] == "succeeded"


def test_confirm_without_payment_method_is_refused(api: Any) -> None:
    intent = api.intent()
    response = api.post(f"/v1/payment_intents/{intent['id']}/confirm")
    assert response.error["code"] == "payment_intent_unexpected_state"
    assert "missing a payment method" in response.error["message"]


def test_manual_capture_authorizes_then_captures(api: Any) -> None:
    intent = api.intent(payment_method="pm_card_visa", confirm=True, capture_method="manual")
    assert (intent["status"], intent["amount_capturable"], intent["amount_received"]) == ("requires_capture", 1000, 0)
    charge = api.ok("GET", f"/v1/charges/{intent['latest_charge']}")
    assert (charge["captured"], charge["amount_captured"], charge["balance_transaction"]) == (False, 0, None)
    captured = api.ok("POST", f"/v1/payment_intents/{intent['id']}/capture")
    assert (captured["status"], captured["amount_received"], captured["amount_capturable"]) == ("succeeded", 1000, 0)
    charge = api.ok("GET", f"/v1/charges/{intent['latest_charge']}", {"expand": ["balance_transaction"]})
    assert (charge["captured"], charge["amount_captured"]) == (True, 1000)
    assert charge["balance_transaction"]["amount"] == 1000


def test_partial_capture_releases_the_remainder(api: Any) -> None:
    intent = api.intent(payment_method="pm_card_visa", confirm=True, capture_method="manual", amount=1000)
    captured = api.ok("POST", f"/v1/payment_intents/{intent['id']}/capture", {"amount_to_capture": 600})
    assert (captured["status"], captured["amount_received"], captured["amount_capturable"]) == ("succeeded", 600, 0)
    charge = api.ok("GET", f"/v1/charges/{intent['latest_charge']}")
    assert (charge["amount_captured"], charge["amount_refunded"], charge["refunded"]) == (600, 400, False)


def test_capturing_more_than_capturable_is_refused(api: Any) -> None:
    intent = api.intent(payment_method="pm_card_visa", confirm=True, capture_method="manual", amount=1000)
    response = api.post(f"/v1/payment_intents/{intent['id']}/capture", {"amount_to_capture": 1001})
    assert (response.status, response.error["code"], response.error["param"]) == (
        400,
        "amount_too_large",
        "amount_to_capture",
    )
    assert api.ok("GET", f"/v1/payment_intents/{intent['id']}")["status"] == "requires_capture"


@pytest.mark.parametrize("capture_method", ["automatic", None])
def test_capture_outside_requires_capture_is_refused(api: Any, capture_method: str | None) -> None:
    intent = api.intent(
        payment_method="pm_card_visa", confirm=capture_method is not None, capture_method=capture_method
    )
    response = api.post(f"/v1/payment_intents/{intent['id']}/capture")
    assert response.error["code"] == "payment_intent_unexpected_state"
    assert response.error["message"] == (
        f"This PaymentIntent could not be captured because it has a status of {intent['status']}. Only a "
        "PaymentIntent with one of the following statuses may be captured: requires_capture."
    )


def test_cancel_with_a_reason(api: Any) -> None:
    intent = api.intent()
    canceled = api.ok(
        "POST", f"/v1/payment_intents/{intent['id']}/cancel", {"cancellation_reason": "requested_by_customer"}
    )
    assert (canceled["status"], canceled["cancellation_reason"]) == ("canceled", "requested_by_customer")
    assert canceled["canceled_at"] is not None


def test_canceling_an_authorization_releases_it(api: Any) -> None:
    intent = api.intent(payment_method="pm_card_visa", confirm=True, capture_method="manual")
    canceled = api.ok("POST", f"/v1/payment_intents/{intent['id']}/cancel")
    assert (canceled["status"], canceled["amount_capturable"]) == ("canceled", 0)
    charge = api.ok("GET", f"/v1/charges/{intent['latest_charge']}")
    assert (charge["refunded"], charge["amount_refunded"], charge["captured"]) == (True, 1000, False)


@pytest.mark.parametrize("version", ["2023-08-16", "2025-03-31.basil"])
def test_an_authorization_left_uncaptured_expires_into_a_canceled_intent(api: Any, app: Any, version: str) -> None:
    """Stripe's "Place a hold on a payment method": an authorization not captured in time is
    released and the intent canceled by Stripe (`automatic`; `expired` from 2025-03-31.basil, which
    books no Refund for it); capturing it afterwards is refused."""
    app.api_version = version
    intent = api.intent(payment_method="pm_card_visa", confirm=True, capture_method="manual")
    app.expire(intent["id"])
    expired = api.ok("GET", f"/v1/payment_intents/{intent['id']}")
    reason = "expired" if version >= "2025-03-31" else "automatic"
    assert (expired["status"], expired["cancellation_reason"], expired["amount_capturable"]) == ("canceled", reason, 0)
    types = [event["type"] for event in app.store.events.values()]
    assert types[-2:] == ["charge.expired", "payment_intent.canceled"]
    bookings = [r for r in app.store.refunds.values() if r["payment_intent"] == intent["id"]]
    assert [r["reason"] for r in bookings] == ([] if reason == "expired" else ["expired_uncaptured_charge"])
    refused = api.post(f"/v1/payment_intents/{intent['id']}/capture")
    assert (refused.status, refused.error["code"]) == (400, "payment_intent_unexpected_state")
    with pytest.raises(ValueError):
        app.expire(intent["id"])  # only an uncaptured authorization lapses


@pytest.mark.parametrize("then", ["succeeded", "canceled"])
def test_cancel_is_refused_once_succeeded_or_canceled(api: Any, then: str) -> None:
    intent = api.intent(payment_method="pm_card_visa", confirm=then == "succeeded")
    if then == "canceled":
        api.ok("POST", f"/v1/payment_intents/{intent['id']}/cancel")
    response = api.post(f"/v1/payment_intents/{intent['id']}/cancel")
    assert response.error["message"] == (
        f"You cannot cancel this PaymentIntent because it has a status of {then}. Only a PaymentIntent with one of "
        "the following statuses may be canceled: requires_payment_method, requires_capture, requires_confirmation, "
        "requires_action, processing."
    )


def test_update_before_confirmation_and_its_limits_after(api: Any) -> None:
    intent = api.intent(amount=1000)
    updated = api.ok("POST", f"/v1/payment_intents/{intent['id']}", {"amount": 2500, "description": "more"})
    assert (updated["amount"], updated["description"]) == (2500, "more")
    with_pm = api.ok("POST", f"/v1/payment_intents/{intent['id']}", {"payment_method": "pm_card_visa"})
    assert with_pm["status"] == "requires_confirmation"
    api.ok("POST", f"/v1/payment_intents/{intent['id']}/confirm")
    refused = api.post(f"/v1/payment_intents/{intent['id']}", {"amount": 3000})
    assert (refused.error["code"], refused.error["param"]) == ("payment_intent_unexpected_state", "amount")
    assert api.ok("POST", f"/v1/payment_intents/{intent['id']}", {"metadata": {"shipped": "yes"}})["metadata"] == {
        "shipped": "yes"
    }


def test_retrieve_unknown_intent_is_404(api: Any) -> None:
    response = api.get("/v1/payment_intents/pi_nope")
    assert (response.status, response.error["code"], response.error["param"]) == (404, "resource_missing", "intent")
    assert response.error["message"] == "No such payment_intent: 'pi_nope'"


def test_retrieve_checks_a_client_secret(api: Any) -> None:
    intent = api.intent()
    assert api.get(f"/v1/payment_intents/{intent['id']}", {"client_secret": intent["client_secret"]}).status == 200
    assert api.get(f"/v1/payment_intents/{intent['id']}", {"client_secret": "wrong"}).error["param"] == "client_secret"


def test_expand_latest_charge_customer_and_payment_method(api: Any) -> None:
    customer = api.ok("POST", "/v1/customers", {"email": "a@example.com"})
    intent = api.intent(customer=customer["id"], payment_method="pm_card_visa", confirm=True)
    body = api.ok(
        "GET",
        f"/v1/payment_intents/{intent['id']}",
        {"expand": ["latest_charge", "customer", "payment_method", "latest_charge.payment_intent"]},
    )
    assert body["customer"]["email"] == "a@example.com"
    assert body["payment_method"]["card"]["brand"] == "visa"
    assert body["latest_charge"]["payment_intent"]["id"] == intent["id"]


def test_list_is_newest_first_with_cursor_pagination(api: Any) -> None:
    ids = [api.intent(amount=1000 + i)["id"] for i in range(5)]
    first = api.ok("GET", "/v1/payment_intents", {"limit": 2})
    assert [pi["id"] for pi in first["data"]] == ids[::-1][:2] and first["has_more"] is True
    assert first["object"] == "list" and first["url"] == "/v1/payment_intents"
    second = api.ok("GET", "/v1/payment_intents", {"limit": 2, "starting_after": first["data"][-1]["id"]})
    assert [pi["id"] for pi in second["data"]] == ids[::-1][2:4]
    back = api.ok("GET", "/v1/payment_intents", {"limit": 2, "ending_before": second["data"][0]["id"]})
    assert [pi["id"] for pi in back["data"]] == ids[::-1][:2]
    assert api.get("/v1/payment_intents", {"limit": 101}).error["param"] == "limit"


def test_list_filters_by_customer(api: Any) -> None:
    customer = api.ok("POST", "/v1/customers")
    mine = api.intent(customer=customer["id"])
    api.intent()
    listed = api.ok("GET", "/v1/payment_intents", {"customer": customer["id"]})
    assert [pi["id"] for pi in listed["data"]] == [mine["id"]]


def test_search_by_metadata_finds_an_intent_by_its_idempotency_marker(api: Any) -> None:
    wanted = api.intent(metadata={"paywire_key": "order-A-1001-auth"})
    api.intent(metadata={"paywire_key": "order-A-1002-auth"})
    found = api.ok("GET", "/v1/payment_intents/search", {"query": "metadata['paywire_key']:'order-A-1001-auth'"})
    assert found["object"] == "search_result" and found["next_page"] is None
    assert [pi["id"] for pi in found["data"]] == [wanted["id"]]


def test_search_combines_clauses_and_pages(api: Any) -> None:
    for amount in (1000, 2000, 3000):
        api.intent(amount=amount, metadata={"batch": "b"})
    both = api.ok(
        "GET",
        "/v1/payment_intents/search",
        {"query": "metadata['batch']:'b' AND amount>1500 AND status:'requires_payment_method'"},
    )
    assert sorted(pi["amount"] for pi in both["data"]) == [2000, 3000]
    either = api.ok("GET", "/v1/payment_intents/search", {"query": "amount:1000 OR amount:3000"})
    assert sorted(pi["amount"] for pi in either["data"]) == [1000, 3000]
    page = api.ok("GET", "/v1/payment_intents/search", {"query": "metadata['batch']:'b'", "limit": 2})
    assert page["has_more"] is True and page["next_page"]
    rest = api.ok(
        "GET", "/v1/payment_intents/search", {"query": "metadata['batch']:'b'", "limit": 2, "page": page["next_page"]}
    )
    assert len(rest["data"]) == 1 and rest["has_more"] is False
    negated = api.ok("GET", "/v1/payment_intents/search", {"query": "-amount:1000 AND metadata['batch']:'b'"})
    assert len(negated["data"]) == 2


@pytest.mark.parametrize(
    "query, fragment",
    [
        ("colour:'blue'", "unsupported search field"),
        ("amount:1 AND status:'x' OR currency:'usd'", "cannot be combined"),
        ("metadata:'x'", "only metadata takes a key"),
        ("nonsense", "could not parse"),
    ],
)
def test_search_refuses_bad_queries(api: Any, query: str, fragment: str) -> None:
    response = api.get("/v1/payment_intents/search", {"query": query})
    assert response.status == 400 and fragment in response.error["message"]


def test_dynamic_payment_methods_need_a_return_url_when_confirming(api: Any) -> None:
    response = api.post(
        "/v1/payment_intents", {"amount": 1000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True}
    )
    assert response.status == 400 and "you must provide a `return_url`" in response.error["message"]
    assert api.ok("GET", "/v1/payment_intents")["data"] == []  # refused before anything was created
    with_url = api.ok(
        "POST",
        "/v1/payment_intents",
        {
            "amount": 1000,
            "currency": "usd",
            "confirm": True,
            "payment_method": "pm_card_visa",
            "return_url": "https://shop.example/done",
        },
    )
    assert with_url["status"] == "succeeded"
    assert with_url["automatic_payment_methods"] == {"allow_redirects": "always", "enabled": True}
    no_redirects = api.ok(
        "POST",
        "/v1/payment_intents",
        {
            "amount": 1000,
            "currency": "usd",
            "confirm": True,
            "payment_method": "pm_card_visa",
            "automatic_payment_methods": {"enabled": True, "allow_redirects": "never"},
        },
    )
    assert no_redirects["status"] == "succeeded"


def test_older_api_versions_default_to_card_only(api: Any) -> None:
    intent = api.ok(
        "POST",
        "/v1/payment_intents",
        {"amount": 1000, "currency": "usd", "payment_method": "pm_card_visa", "confirm": True},
        headers={"Stripe-Version": "2022-11-15"},
    )
    assert (intent["status"], intent["automatic_payment_methods"], intent["capture_method"]) == (
        "succeeded",
        None,
        "automatic",
    )


def test_capture_method_defaults_to_automatic_async_from_2024_04_10(api: Any) -> None:
    intent = api.ok(
        "POST",
        "/v1/payment_intents",
        {"amount": 1000, "currency": "usd", "payment_method_types": ["card"]},
        headers={"Stripe-Version": "2024-06-20"},
    )
    assert intent["capture_method"] == "automatic_async"


def test_automatic_payment_methods_and_payment_method_types_are_exclusive(api: Any) -> None:
    response = api.post(
        "/v1/payment_intents",
        {
            "amount": 1000,
            "currency": "usd",
            "payment_method_types": ["card"],
            "automatic_payment_methods": {"enabled": True},
        },
    )
    assert "only specify one of these parameters" in response.error["message"]


def test_off_session_requires_confirm(api: Any) -> None:
    response = api.post(
        "/v1/payment_intents",
        {"amount": 1000, "currency": "usd", "off_session": True, "payment_method_types": ["card"]},
    )
    assert (response.status, response.error["param"]) == (400, "off_session")


def test_payment_method_data_with_a_test_token(api: Any) -> None:
    intent = api.intent(
        confirm=True,
        payment_method_data={"type": "card", "card": {"token": "tok_visa"}, "billing_details": {"name": "Jenny Rosen"}},
    )
    assert intent["status"] == "succeeded"
    pm = api.ok("GET", f"/v1/payment_methods/{intent['payment_method']}")
    assert pm["billing_details"]["name"] == "Jenny Rosen"


def test_raw_card_numbers_are_refused(api: Any) -> None:
    response = api.post(
        "/v1/payment_intents",
        {
            "amount": 1000,
            "currency": "usd",
            "payment_method_types": ["card"],
            "payment_method_data": {
                "type": "card",
                "card": {"number": "4242424242424242", "exp_month": 12, "exp_year": 2034, "cvc": "123"},
            },
        },
    )
    assert response.status == 400 and "Sending credit card numbers directly" in response.error["message"]
