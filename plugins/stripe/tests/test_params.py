"""Form decoding and parameter validation: Stripe's messages for unknown, missing and malformed
parameters, and the parameter tables checked against Stripe's OpenAPI spec."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paywire_stripe.emulator.form import decode, split_key
from paywire_stripe.emulator.params import ENDPOINTS


def test_split_key_reads_brackets() -> None:
    assert split_key("metadata[order_id]") == ["metadata", "order_id"]
    assert split_key("payment_method_types[]") == ["payment_method_types", ""]
    assert split_key("a[b][c]") == ["a", "b", "c"]
    assert split_key("broken[key") == ["broken[key"]


def test_decode_nests_hashes_and_lists() -> None:
    tree = decode(
        [
            ("metadata[a]", "1"),
            ("expand[0]", "latest_charge"),
            ("payment_method_types[]", "card"),
            ("payment_method_types[]", "link"),
            ("shipping[address][city]", "Paris"),
        ]
    )
    assert tree == {
        "metadata": {"a": "1"},
        "expand": {"0": "latest_charge"},
        "payment_method_types": ["card", "link"],
        "shipping": {"address": {"city": "Paris"}},
    }


def test_unknown_top_level_parameter_is_refused_with_its_name(api: Any) -> None:
    response = api.post("/v1/payment_intents", {"amount": 1000, "currency": "usd", "colour": "blue"})
    assert response.status == 400
    assert response.error == {
        "code": "parameter_unknown",
        "doc_url": "https://stripe.com/docs/error-codes/parameter-unknown",
        "message": "Received unknown parameter: colour",
        "param": "colour",
        "type": "invalid_request_error",
    }


def test_unknown_nested_parameter_is_named_with_brackets(api: Any) -> None:
    response = api.post(
        "/v1/payment_intents",
        {"amount": 1000, "currency": "usd", "automatic_payment_methods": {"enabled": True, "colour": "x"}},
    )
    assert response.error["message"] == "Received unknown parameter: automatic_payment_methods[colour]"
    assert response.error["param"] == "automatic_payment_methods[colour]"


def test_unknown_query_parameters_are_refused_too(api: Any) -> None:
    assert api.get("/v1/payment_intents", {"colour": "blue"}).error["param"] == "colour"


def test_missing_required_parameter(api: Any) -> None:
    response = api.post("/v1/payment_intents", {"currency": "usd"})
    assert (response.status, response.error["code"], response.error["message"]) == (
        400,
        "parameter_missing",
        "Missing required param: amount.",
    )


@pytest.mark.parametrize(
    "params, message, param",
    [
        (
            {"capture_method": "later"},
            "Invalid capture_method: must be one of automatic, automatic_async, or manual",
            "capture_method",
        ),
        (
            {"setup_future_usage": "often"},
            "Invalid setup_future_usage: must be one of off_session or on_session",
            "setup_future_usage",
        ),
        ({"amount": "ten"}, "Invalid integer: ten", "amount"),
        ({"amount": "0"}, "This value must be greater than or equal to 1.", "amount"),
        ({"confirm": "yes"}, "Invalid boolean: yes", "confirm"),
        (
            {"statement_descriptor_suffix": "X" * 23},
            "Invalid string: XXXXXXXXXXXXXXXXXXXXXXX...; must be at most 22 characters",
            "statement_descriptor_suffix",
        ),
        (
            {"automatic_payment_methods": {"enabled": True, "allow_redirects": "sometimes"}},
            "Invalid automatic_payment_methods[allow_redirects]: must be one of always or never",
            "automatic_payment_methods[allow_redirects]",
        ),
    ],
)
def test_wrong_types_and_enum_values_are_refused(api: Any, params: dict[str, Any], message: str, param: str) -> None:
    response = api.post("/v1/payment_intents", {"amount": 1000, "currency": "usd", **params})
    assert response.status == 400
    assert (response.error["message"], response.error["param"]) == (message, param)


def test_cancellation_reason_enum(api: Any) -> None:
    intent = api.intent()
    response = api.post(f"/v1/payment_intents/{intent['id']}/cancel", {"cancellation_reason": "bored"})
    assert response.error["message"] == (
        "Invalid cancellation_reason: must be one of duplicate, fraudulent, requested_by_customer, or abandoned"
    )


def test_empty_string_for_a_parameter_that_cannot_be_unset(api: Any) -> None:
    response = api.post("/v1/payment_intents", [("amount", ""), ("currency", "usd")])
    assert response.error["code"] == "parameter_invalid_empty"
    assert response.error["message"].startswith("You passed an empty string for 'amount'.")


def test_list_parameters_accept_indexed_and_bracket_forms(api: Any) -> None:
    intent = api.intent(payment_method="pm_card_visa", confirm=True)
    for pairs in ([("expand[0]", "latest_charge")], [("expand[]", "latest_charge")]):
        body = api.ok("GET", f"/v1/payment_intents/{intent['id']}", pairs)
        assert body["latest_charge"]["object"] == "charge"


def test_metadata_is_kept_merged_and_unset(api: Any) -> None:
    intent = api.intent(metadata={"order": "A-1", "note": "x"})
    assert intent["metadata"] == {"order": "A-1", "note": "x"}
    updated = api.ok("POST", f"/v1/payment_intents/{intent['id']}", [("metadata[note]", ""), ("metadata[new]", "1")])
    assert updated["metadata"] == {"order": "A-1", "new": "1"}
    cleared = api.ok("POST", f"/v1/payment_intents/{intent['id']}", [("metadata", "")])
    assert cleared["metadata"] == {}


def test_metadata_limits(api: Any) -> None:
    too_many = {f"k{i}": "v" for i in range(51)}
    assert api.post("/v1/customers", {"metadata": too_many}).status == 400
    assert api.post("/v1/customers", {"metadata": {"k" * 41: "v"}}).status == 400
    assert api.post("/v1/customers", {"metadata": {"k": "v" * 501}}).status == 400
    assert api.post("/v1/customers", {"metadata": {"k" * 40: "v" * 500}}).status == 200


def test_expanding_an_unexpandable_field_is_refused(api: Any) -> None:
    intent = api.intent()
    response = api.get(f"/v1/payment_intents/{intent['id']}", {"expand": ["amount"]})
    assert (response.status, response.error["message"]) == (400, "This property cannot be expanded (amount).")


def test_list_expansion_needs_the_data_prefix(api: Any) -> None:
    api.intent(payment_method="pm_card_visa", confirm=True)
    response = api.get("/v1/payment_intents", {"expand": ["latest_charge"]})
    assert "You may want to try expanding 'data.latest_charge' instead." in response.error["message"]
    body = api.ok("GET", "/v1/payment_intents", {"expand": ["data.latest_charge"]})
    assert body["data"][0]["latest_charge"]["object"] == "charge"


# -- the tables against Stripe's OpenAPI description --------------------------------------------------
ROUTES = {
    "payment_intents.create": ("/v1/payment_intents", "post"),
    "payment_intents.list": ("/v1/payment_intents", "get"),
    "payment_intents.search": ("/v1/payment_intents/search", "get"),
    "payment_intents.retrieve": ("/v1/payment_intents/{intent}", "get"),
    "payment_intents.update": ("/v1/payment_intents/{intent}", "post"),
    "payment_intents.confirm": ("/v1/payment_intents/{intent}/confirm", "post"),
    "payment_intents.capture": ("/v1/payment_intents/{intent}/capture", "post"),
    "payment_intents.cancel": ("/v1/payment_intents/{intent}/cancel", "post"),
    "refunds.create": ("/v1/refunds", "post"),
    "refunds.list": ("/v1/refunds", "get"),
    "refunds.retrieve": ("/v1/refunds/{refund}", "get"),
    "refunds.update": ("/v1/refunds/{refund}", "post"),
    "charges.retrieve": ("/v1/charges/{charge}", "get"),
    "charges.list": ("/v1/charges", "get"),
    "customers.create": ("/v1/customers", "post"),
    "customers.list": ("/v1/customers", "get"),
    "customers.retrieve": ("/v1/customers/{customer}", "get"),
    "customers.update": ("/v1/customers/{customer}", "post"),
    "customers.delete": ("/v1/customers/{customer}", "delete"),
    "customers.payment_methods": ("/v1/customers/{customer}/payment_methods", "get"),
    "payment_methods.create": ("/v1/payment_methods", "post"),
    "payment_methods.list": ("/v1/payment_methods", "get"),
    "payment_methods.retrieve": ("/v1/payment_methods/{payment_method}", "get"),
    "payment_methods.update": ("/v1/payment_methods/{payment_method}", "post"),
    "payment_methods.attach": ("/v1/payment_methods/{payment_method}/attach", "post"),
    "payment_methods.detach": ("/v1/payment_methods/{payment_method}/detach", "post"),
    "setup_intents.create": ("/v1/setup_intents", "post"),
    "setup_intents.list": ("/v1/setup_intents", "get"),
    "setup_intents.retrieve": ("/v1/setup_intents/{intent}", "get"),
    "setup_intents.update": ("/v1/setup_intents/{intent}", "post"),
    "setup_intents.confirm": ("/v1/setup_intents/{intent}/confirm", "post"),
    "setup_intents.cancel": ("/v1/setup_intents/{intent}/cancel", "post"),
    "events.list": ("/v1/events", "get"),
    "events.retrieve": ("/v1/events/{id}", "get"),
}
# Parameters added to Stripe's API after the 2023-08-16 spec that the emulator also accepts.
NEWER = {"allow_redisplay", "payment_method_configuration"}


def _spec_parameters(spec: dict[str, Any], path: str, method: str) -> set[str]:
    operation = spec["paths"][path][method]
    names = {p["name"] for p in operation.get("parameters", []) if p["in"] == "query"}
    body = operation.get("requestBody", {}).get("content", {}).get("application/x-www-form-urlencoded", {})
    return names | set(body.get("schema", {}).get("properties", {}))


def test_every_endpoint_table_matches_stripes_spec(specs: Path) -> None:
    spec = json.loads((specs / "spec3.json").read_text())
    assert set(ROUTES) == set(ENDPOINTS)
    for endpoint, (path, method) in ROUTES.items():
        documented = _spec_parameters(spec, path, method)
        known = set(ENDPOINTS[endpoint].fields)
        assert known - NEWER <= documented, (endpoint, known - documented)
        assert documented <= known, (endpoint, documented - known)


def test_required_parameters_match_stripes_spec(specs: Path) -> None:
    spec = json.loads((specs / "spec3.json").read_text())
    for endpoint, (path, method) in ROUTES.items():
        operation = spec["paths"][path][method]
        body = operation.get("requestBody", {}).get("content", {}).get("application/x-www-form-urlencoded", {})
        required = set(body.get("schema", {}).get("required", []))
        required |= {p["name"] for p in operation.get("parameters", []) if p["in"] == "query" and p.get("required")}
        assert set(ENDPOINTS[endpoint].required) == required, endpoint


def test_nested_empty_values_become_null_and_addresses_are_complete(api: Any) -> None:
    customer = api.ok("POST", "/v1/customers", [("address[city]", "Paris"), ("address[line2]", "")])
    assert customer["address"] == {
        "city": "Paris",
        "country": None,
        "line1": None,
        "line2": None,
        "postal_code": None,
        "state": None,
    }
    intent = api.intent(shipping={"name": "Jenny", "address": {"line1": "1 Rue"}})
    assert intent["shipping"]["address"]["line1"] == "1 Rue" and intent["shipping"]["carrier"] is None
    assert (
        api.post("/v1/payment_intents", {"amount": 1000, "currency": "usd", "shipping": {"name": "J"}}).error["message"]
        == "Missing required param: shipping[address]."
    )


KEY_ALPHABET = st.characters(blacklist_characters="[]", blacklist_categories=("Cs", "Cc"))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    metadata=st.dictionaries(
        st.text(KEY_ALPHABET, min_size=1, max_size=40),
        st.text(st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=500),
        max_size=10,
    )
)
def test_metadata_round_trips_through_the_form_encoding(api: Any, metadata: dict[str, str]) -> None:
    customer = api.ok("POST", "/v1/customers", {"metadata": metadata})
    assert customer["metadata"] == metadata
    assert api.ok("GET", f"/v1/customers/{customer['id']}")["metadata"] == metadata


@pytest.mark.parametrize("amount", ["\u0661\u0660\u0660\u0660", "\uff11\uff10\uff10\uff10", "1_000", " 1000", "+1000", "1e3"])
def test_an_integer_is_ascii_digits_only(api: Any, amount: str) -> None:
    """Stripe reads integers of ASCII digits; Python's `int` and `\\d` would take other scripts'
    digits (Arabic-Indic, full-width) as the same number, which Stripe refuses."""
    response = api.post("/v1/payment_intents", {"amount": amount, "currency": "usd"})
    assert (response.status, response.error["code"], response.error["param"]) == (400, "parameter_invalid_integer",
                                                                                   "amount")
