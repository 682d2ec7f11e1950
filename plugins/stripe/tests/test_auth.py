"""API keys: Bearer and Basic like the SDKs and curl, Stripe's 401 shape, keys never echoed whole."""

from __future__ import annotations

import base64
from typing import Any

import pytest

from paywire_stripe.emulator import StripeEmulator
from paywire_stripe.emulator.auth import mask


def test_bearer_key_is_accepted(api: Any) -> None:
    assert api.get("/v1/payment_intents").status == 200


def test_basic_auth_with_the_key_as_user_name_is_accepted_as_curl_sends_it(api: Any, api_key: str) -> None:
    token = base64.b64encode(f"{api_key}:".encode()).decode()
    response = api.get("/v1/payment_intents", key=None, headers={"Authorization": f"Basic {token}"})
    assert response.status == 200


def test_missing_key_is_401_in_stripes_shape(api: Any) -> None:
    response = api.get("/v1/payment_intents", key=None)
    assert response.status == 401
    assert response.error["type"] == "invalid_request_error"
    assert response.error["message"].startswith("You did not provide an API key.")
    assert response.headers["WWW-Authenticate"] == 'Basic realm="Stripe"'
    assert response.headers["Request-Id"].startswith("req_")


@pytest.mark.parametrize(
    "key, expected",
    [
        ("sk_live_abcdefghijklmnop1234", "Invalid API Key provided: sk_live_****************1234"),
        ("pk_test_abcdefghijklmnop1234", "This API call cannot be made with a publishable API key."),
        ("not_a_key_at_all_1234", "Invalid API Key provided: "),
        ("sk_test_", "Invalid API Key provided: "),
    ],
)
def test_live_publishable_and_malformed_keys_are_refused(api: Any, key: str, expected: str) -> None:
    response = api.get("/v1/payment_intents", key=key)
    assert response.status == 401
    assert response.error["message"].startswith(expected)
    assert "abcdefghijklmnop" not in response.raw.decode()


def test_a_configured_key_is_the_only_one_accepted() -> None:
    app = StripeEmulator(api_key="sk_test_only_this_one")
    with app.serve() as server:
        from urllib3 import PoolManager

        pool = PoolManager(retries=False)
        wrong = pool.request("GET", server.url + "/v1/customers", headers={"Authorization": "Bearer sk_test_other"})
        right = pool.request(
            "GET", server.url + "/v1/customers", headers={"Authorization": "Bearer sk_test_only_this_one"}
        )
    assert (wrong.status, right.status) == (401, 200)
    assert "only_this_one" not in repr(app) and "sk_test" not in repr(app)


def test_mask_keeps_the_mode_prefix_and_last_four() -> None:
    assert mask("sk_test_4eC39HqLyjWDarjtT1zdp7dc") == "sk_test_********************p7dc"
    assert mask("sk_test_x") == "sk_test_****"


def test_control_and_3ds_paths_need_no_key(api: Any) -> None:
    assert api.get("/_paywire/calls", key=None).status == 200


def test_an_invalid_stripe_version_is_refused(api: Any) -> None:
    response = api.get("/v1/payment_intents", headers={"Stripe-Version": "yesterday"})
    assert response.status == 400
    assert response.error["message"] == "Invalid Stripe API version: yesterday"


def test_stripe_version_is_echoed(api: Any) -> None:
    assert api.get("/v1/customers", headers={"Stripe-Version": "2024-06-20"}).headers["Stripe-Version"] == "2024-06-20"
    assert api.get("/v1/customers").headers["Stripe-Version"] == "2023-08-16"


def test_unknown_urls_answer_stripes_404(api: Any) -> None:
    response = api.get("/v1/nothing_here")
    assert response.status == 404
    assert response.error["message"].startswith("Unrecognized request URL (GET: /v1/nothing_here).")
