"""Customers, PaymentMethods (attach, detach, list, reuse rules) and SetupIntents."""

from __future__ import annotations

from typing import Any

import pytest


def test_customer_create_retrieve_update_delete(api: Any) -> None:
    customer = api.ok(
        "POST", "/v1/customers", {"email": "jenny@example.com", "name": "Jenny Rosen", "metadata": {"account": "42"}}
    )
    assert customer["id"].startswith("cus_") and customer["object"] == "customer"
    assert (customer["email"], customer["name"], customer["metadata"]) == (
        "jenny@example.com",
        "Jenny Rosen",
        {"account": "42"},
    )
    assert api.ok("GET", f"/v1/customers/{customer['id']}")["email"] == "jenny@example.com"
    assert api.ok("POST", f"/v1/customers/{customer['id']}", {"name": "J. Rosen"})["name"] == "J. Rosen"
    deleted = api.ok("DELETE", f"/v1/customers/{customer['id']}")
    assert deleted == {"id": customer["id"], "object": "customer", "deleted": True}
    assert api.ok("GET", f"/v1/customers/{customer['id']}")["deleted"] is True
    assert (
        api.post("/v1/payment_intents", {"amount": 1000, "currency": "usd", "customer": customer["id"]}).error[
            "message"
        ]
        == f"No such customer: '{customer['id']}'"
    )


def test_list_customers_by_email(api: Any) -> None:
    api.ok("POST", "/v1/customers", {"email": "a@example.com"})
    b = api.ok("POST", "/v1/customers", {"email": "b@example.com"})
    assert [c["id"] for c in api.ok("GET", "/v1/customers", {"email": "b@example.com"})["data"]] == [b["id"]]


def test_attaching_a_test_payment_method_yields_a_new_reusable_id(api: Any) -> None:
    customer = api.ok("POST", "/v1/customers")
    pm = api.ok("POST", "/v1/payment_methods/pm_card_visa/attach", {"customer": customer["id"]})
    assert pm["id"].startswith("pm_") and pm["id"] != "pm_card_visa"
    assert (pm["customer"], pm["type"], pm["card"]["brand"], pm["card"]["last4"]) == (
        customer["id"],
        "card",
        "visa",
        "4242",
    )
    for _ in range(2):  # reusable: charged twice, off-session, without the buyer
        intent = api.intent(customer=customer["id"], payment_method=pm["id"], confirm=True, off_session=True)
        assert intent["status"] == "succeeded"


def test_list_a_customers_payment_methods_both_ways(api: Any) -> None:
    customer = api.ok("POST", "/v1/customers")
    visa = api.ok("POST", "/v1/payment_methods/pm_card_visa/attach", {"customer": customer["id"]})
    amex = api.ok("POST", "/v1/payment_methods/pm_card_amex/attach", {"customer": customer["id"]})
    api.ok("POST", "/v1/payment_methods/pm_card_visa/attach", {"customer": api.ok("POST", "/v1/customers")["id"]})
    nested = api.ok("GET", f"/v1/customers/{customer['id']}/payment_methods")
    flat = api.ok("GET", "/v1/payment_methods", {"customer": customer["id"], "type": "card"})
    assert [pm["id"] for pm in nested["data"]] == [pm["id"] for pm in flat["data"]] == [amex["id"], visa["id"]]
    assert nested["url"] == f"/v1/customers/{customer['id']}/payment_methods"


def test_detach_and_the_reuse_rules(api: Any) -> None:
    customer = api.ok("POST", "/v1/customers")
    pm = api.ok("POST", "/v1/payment_methods/pm_card_visa/attach", {"customer": customer["id"]})
    detached = api.ok("POST", f"/v1/payment_methods/{pm['id']}/detach")
    assert detached["customer"] is None
    assert api.get(f"/v1/customers/{customer['id']}/payment_methods").body["data"] == []
    again = api.post(f"/v1/payment_methods/{pm['id']}/detach")
    assert "not attached to a customer" in again.error["message"]
    reuse = api.post(f"/v1/payment_methods/{pm['id']}/attach", {"customer": customer["id"]})
    assert "may not be used again" in reuse.error["message"]


def test_an_unattached_payment_method_pays_once(api: Any) -> None:
    pm = api.ok("POST", "/v1/payment_methods", {"type": "card", "card": {"token": "tok_visa"}})
    assert api.intent(payment_method=pm["id"], confirm=True)["status"] == "succeeded"
    response = api.post(
        "/v1/payment_intents",
        {
            "amount": 1000,
            "currency": "usd",
            "payment_method": pm["id"],
            "payment_method_types": ["card"],
            "confirm": True,
        },
    )
    assert response.status == 400 and "It may not be used again" in response.error["message"]


def test_a_customers_payment_method_needs_that_customer(api: Any) -> None:
    owner = api.ok("POST", "/v1/customers")
    other = api.ok("POST", "/v1/customers")
    pm = api.ok("POST", "/v1/payment_methods/pm_card_visa/attach", {"customer": owner["id"]})
    for customer in (None, other["id"]):
        response = api.post(
            "/v1/payment_intents",
            {
                "amount": 1000,
                "currency": "usd",
                "payment_method": pm["id"],
                "customer": customer,
                "payment_method_types": ["card"],
                "confirm": True,
            },
        )
        assert (response.status, response.error["param"]) == (400, "payment_method")


def test_attaching_to_another_customer_is_refused(api: Any) -> None:
    first, second = api.ok("POST", "/v1/customers"), api.ok("POST", "/v1/customers")
    pm = api.ok("POST", "/v1/payment_methods/pm_card_visa/attach", {"customer": first["id"]})
    assert api.ok("POST", f"/v1/payment_methods/{pm['id']}/attach", {"customer": first["id"]})["id"] == pm["id"]
    assert api.post(f"/v1/payment_methods/{pm['id']}/attach", {"customer": second["id"]}).status == 400


def test_attaching_a_declining_card_fails_like_stripe_validates_it(api: Any) -> None:
    customer = api.ok("POST", "/v1/customers")
    response = api.post("/v1/payment_methods/pm_card_chargeDeclined/attach", {"customer": customer["id"]})
    assert (response.status, response.error["type"], response.error["decline_code"]) == (
        402,
        "card_error",
        "generic_decline",
    )


def test_attach_needs_a_customer_and_known_payment_method(api: Any) -> None:
    assert api.post("/v1/payment_methods/pm_card_visa/attach").error["message"] == "Missing required param: customer."
    customer = api.ok("POST", "/v1/customers")
    missing = api.post("/v1/payment_methods/pm_nope/attach", {"customer": customer["id"]})
    assert (missing.status, missing.error["message"]) == (404, "No such PaymentMethod: 'pm_nope'")


def test_customer_created_with_a_default_payment_method(api: Any) -> None:
    customer = api.ok("POST", "/v1/customers")
    pm = api.ok("POST", "/v1/payment_methods/pm_card_visa/attach", {"customer": customer["id"]})
    updated = api.ok(
        "POST", f"/v1/customers/{customer['id']}", {"invoice_settings": {"default_payment_method": pm["id"]}}
    )
    assert updated["invoice_settings"]["default_payment_method"] == pm["id"]
    expanded = api.ok("GET", f"/v1/customers/{customer['id']}", {"expand": ["invoice_settings.default_payment_method"]})
    assert expanded["invoice_settings"]["default_payment_method"]["id"] == pm["id"]


def test_update_payment_method_billing_details_and_metadata(api: Any) -> None:
    pm = api.ok("POST", "/v1/payment_methods", {"type": "card", "card": {"token": "tok_mastercard"}})
    updated = api.ok(
        "POST",
        f"/v1/payment_methods/{pm['id']}",
        {"billing_details": {"name": "Jenny", "address": {"city": "Paris"}}, "metadata": {"a": "b"}},
    )
    assert (updated["billing_details"]["name"], updated["billing_details"]["address"]["city"]) == ("Jenny", "Paris")
    assert updated["metadata"] == {"a": "b"} and updated["card"]["brand"] == "mastercard"


def test_only_card_payment_methods(api: Any) -> None:
    response = api.post("/v1/payment_methods", {"type": "sepa_debit", "sepa_debit": {"iban": "DE89"}})
    assert (response.status, response.error["param"]) == (400, "type")


# -- SetupIntents ---------------------------------------------------------------------------------------
def test_setup_intent_saves_a_card_for_off_session_use(api: Any) -> None:
    customer = api.ok("POST", "/v1/customers")
    setup = api.ok(
        "POST",
        "/v1/setup_intents",
        {
            "customer": customer["id"],
            "payment_method": "pm_card_visa",
            "confirm": True,
            "usage": "off_session",
            "payment_method_types": ["card"],
        },
    )
    assert (setup["status"], setup["usage"], setup["object"]) == ("succeeded", "off_session", "setup_intent")
    pm = api.ok("GET", f"/v1/payment_methods/{setup['payment_method']}")
    assert pm["customer"] == customer["id"]
    intent = api.intent(customer=customer["id"], payment_method=pm["id"], confirm=True, off_session=True)
    assert intent["status"] == "succeeded"


def test_setup_intent_created_then_confirmed(api: Any) -> None:
    setup = api.ok("POST", "/v1/setup_intents", {"payment_method_types": ["card"]})
    assert setup["status"] == "requires_payment_method" and setup["client_secret"].startswith(setup["id"])
    confirmed = api.ok("POST", f"/v1/setup_intents/{setup['id']}/confirm", {"payment_method": "pm_card_visa"})
    assert confirmed["status"] == "succeeded"
    assert api.ok("GET", f"/v1/setup_intents/{setup['id']}")["status"] == "succeeded"
    again = api.post(f"/v1/setup_intents/{setup['id']}/confirm")
    assert again.error["code"] == "setup_intent_unexpected_state"


def test_setup_intent_with_a_declining_card(api: Any) -> None:
    response = api.post(
        "/v1/setup_intents",
        {
            "payment_method": "pm_card_chargeDeclinedInsufficientFunds",
            "confirm": True,
            "payment_method_types": ["card"],
        },
    )
    assert (response.status, response.error["decline_code"]) == (402, "insufficient_funds")
    setup = response.error["setup_intent"]
    assert (setup["status"], setup["last_setup_error"]["code"]) == ("requires_payment_method", "card_declined")


@pytest.mark.parametrize("version_header, needs_return_url", [({}, True), ({"Stripe-Version": "2023-02-16"}, False)])
def test_setup_intent_return_url_follows_the_api_version(
    api: Any, version_header: dict[str, str], needs_return_url: bool
) -> None:
    response = api.post(
        "/v1/setup_intents", {"payment_method": "pm_card_visa", "confirm": True}, headers=version_header
    )
    assert (response.status == 400) == needs_return_url


def test_setup_intent_cancel(api: Any) -> None:
    setup = api.ok("POST", "/v1/setup_intents", {"payment_method_types": ["card"]})
    canceled = api.ok("POST", f"/v1/setup_intents/{setup['id']}/cancel", {"cancellation_reason": "abandoned"})
    assert (canceled["status"], canceled["cancellation_reason"]) == ("canceled", "abandoned")
    assert api.post(f"/v1/setup_intents/{setup['id']}/confirm", {"payment_method": "pm_card_visa"}).status == 400
    assert api.get("/v1/setup_intents/seti_nope").error["message"] == "No such setupintent: 'seti_nope'"
