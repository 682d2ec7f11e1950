"""3-D Secure: requires_action with a redirect, completed (or failed) by visiting the emulator's URL."""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import pytest
import urllib3

from paywire_stripe.sandbox import handle_next_action

RETURN_URL = "https://shop.example/orders/A-1/return"


def _challenged(api: Any, **params: Any) -> dict[str, Any]:
    params.setdefault("payment_method", "pm_card_threeDSecure2Required")
    intent = api.intent(confirm=True, return_url=RETURN_URL, **params)
    assert intent["status"] == "requires_action"
    return intent


def _visit(url: str, method: str = "GET", fields: dict[str, str] | None = None) -> urllib3.BaseHTTPResponse:
    """What the buyer's browser does: follow the link, or post the challenge form."""
    pool = urllib3.PoolManager(retries=False)
    if method == "POST":
        return pool.request(
            "POST",
            url,
            body=urlencode(fields or {}),
            redirect=False,
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
    return pool.request("GET", url, redirect=False)


def test_requires_action_with_a_redirect_to_the_emulator(api: Any, server: Any) -> None:
    intent = _challenged(api)
    action = intent["next_action"]
    assert action["type"] == "redirect_to_url"
    assert action["redirect_to_url"]["return_url"] == RETURN_URL
    assert action["redirect_to_url"]["url"].startswith(server.url + "/redirect/authenticate/src_")
    assert intent["payment_method"] is not None and intent["latest_charge"] is None


@pytest.mark.parametrize("capture_method, status", [("manual", "requires_capture"), ("automatic", "succeeded")])
def test_completing_the_challenge_resumes_the_payment(api: Any, capture_method: str, status: str) -> None:
    intent = _challenged(api, capture_method=capture_method)
    response = _visit(intent["next_action"]["redirect_to_url"]["url"])
    assert response.status == 302
    location = urlsplit(response.headers["Location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == RETURN_URL
    assert parse_qs(location.query) == {
        "payment_intent": [intent["id"]],
        "payment_intent_client_secret": [intent["client_secret"]],
        "redirect_status": ["succeeded"],
    }
    resumed = api.ok("GET", f"/v1/payment_intents/{intent['id']}", {"expand": ["latest_charge"]})
    assert (resumed["status"], resumed["next_action"]) == (status, None)
    assert resumed["latest_charge"]["payment_method_details"]["card"]["three_d_secure"]["result"] == "authenticated"


def test_failing_the_challenge_returns_to_requires_payment_method(api: Any) -> None:
    intent = _challenged(api)
    response = _visit(intent["next_action"]["redirect_to_url"]["url"], "POST", {"outcome": "fail"})
    assert parse_qs(urlsplit(response.headers["Location"]).query)["redirect_status"] == ["failed"]
    failed = api.ok("GET", f"/v1/payment_intents/{intent['id']}")
    assert (failed["status"], failed["payment_method"]) == ("requires_payment_method", None)
    assert failed["last_payment_error"]["code"] == "payment_intent_authentication_failure"


def test_without_return_url_stripe_leaves_the_challenge_to_its_sdk_and_the_page_answers_directly(
        api: Any, server: Any) -> None:
    """Nowhere to send the buyer back to: Stripe answers `use_stripe_sdk`, not a redirect, and
    Stripe.js opens the challenge page it names in a frame, which answers without a redirect."""
    intent = api.intent(confirm=True, payment_method="pm_card_authenticationRequired")
    assert intent["status"] == "requires_action"
    action = intent["next_action"]
    assert action["type"] == "use_stripe_sdk" and "redirect_to_url" not in action
    sdk = action["use_stripe_sdk"]
    assert sdk["type"] == "three_d_secure_redirect"
    assert sdk["stripe_js"].startswith(f"{server.url}/redirect/authenticate/{sdk['source']}?client_secret=")
    response = _visit(sdk["stripe_js"])
    assert response.status == 200 and b"succeeded" in response.data
    assert api.ok("GET", f"/v1/payment_intents/{intent['id']}")["status"] == "succeeded"


def test_a_setup_intent_without_return_url_is_left_to_the_sdk_too(api: Any) -> None:
    customer = api.ok("POST", "/v1/customers")
    setup = api.ok("POST", "/v1/setup_intents", {"customer": customer["id"], "confirm": True,
                                                 "payment_method": "pm_card_authenticationRequiredOnSetup",
                                                 "payment_method_types": ["card"]})
    assert (setup["status"], setup["next_action"]["type"]) == ("requires_action", "use_stripe_sdk")
    assert _visit(setup["next_action"]["use_stripe_sdk"]["stripe_js"]).status == 200
    assert api.ok("GET", f"/v1/setup_intents/{setup['id']}")["status"] == "succeeded"


@pytest.mark.parametrize("succeed, status", [(True, "requires_capture"), (False, "requires_payment_method")])
def test_handle_next_action_acts_as_stripe_js_with_the_client_secret(api: Any, app: Any, succeed: bool,
                                                                     status: str) -> None:
    intent = api.intent(confirm=True, payment_method="pm_card_threeDSecure2Required", capture_method="manual")
    with pytest.raises(ValueError):
        handle_next_action(app, intent["id"] + "_secret_wrong")
    assert app.get(intent["id"])["status"] == "requires_action"
    handle_next_action(app, intent["client_secret"], succeed=succeed)
    assert app.get(intent["id"])["status"] == status
    with pytest.raises(ValueError):
        handle_next_action(app, intent["client_secret"])  # nothing left to handle


def test_a_challenge_completes_once_and_needs_its_client_secret(api: Any) -> None:
    intent = _challenged(api)
    url = intent["next_action"]["redirect_to_url"]["url"]
    assert _visit(url.split("?")[0] + "?client_secret=wrong").status == 404
    assert api.ok("GET", f"/v1/payment_intents/{intent['id']}")["status"] == "requires_action"
    _visit(url)
    again = _visit(url + "&outcome=fail")
    assert parse_qs(urlsplit(again.headers["Location"]).query)["redirect_status"] == ["succeeded"]
    assert api.ok("GET", f"/v1/payment_intents/{intent['id']}")["status"] == "succeeded"


def test_reconfirming_replaces_the_challenge(api: Any) -> None:
    intent = _challenged(api)
    first = intent["next_action"]["redirect_to_url"]["url"]
    second = api.ok("POST", f"/v1/payment_intents/{intent['id']}/confirm")["next_action"]["redirect_to_url"]["url"]
    assert first != second
    assert _visit(first).status == 409
    assert _visit(second).status == 302


def test_manual_confirmation_waits_for_the_server_after_the_challenge(api: Any) -> None:
    intent = _challenged(api, confirmation_method="manual")
    _visit(intent["next_action"]["redirect_to_url"]["url"])
    assert api.ok("GET", f"/v1/payment_intents/{intent['id']}")["status"] == "requires_confirmation"


def test_off_session_payment_needing_authentication_is_declined(api: Any) -> None:
    response = api.off_session_payment("pm_card_authenticationRequired")
    assert response.status == 402
    assert (response.error["code"], response.error["decline_code"]) == (
        "authentication_required",
        "authentication_required",
    )
    assert response.error["payment_intent"]["status"] == "requires_payment_method"


def test_error_on_requires_action_fails_instead_of_asking(api: Any) -> None:
    response = api.post(
        "/v1/payment_intents",
        {
            "amount": 1000,
            "currency": "usd",
            "confirm": True,
            "payment_method": "pm_card_threeDSecure2Required",
            "payment_method_types": ["card"],
            "error_on_requires_action": True,
        },
    )
    assert (response.status, response.error["code"]) == (402, "authentication_required")


def test_a_card_set_up_with_authentication_pays_off_session_afterwards(api: Any, server: Any) -> None:
    customer = api.ok("POST", "/v1/customers")
    setup = api.ok(
        "POST",
        "/v1/setup_intents",
        {
            "customer": customer["id"],
            "confirm": True,
            "payment_method": "pm_card_authenticationRequiredOnSetup",
            "payment_method_types": ["card"],
            "return_url": RETURN_URL,
        },
    )
    assert setup["status"] == "requires_action"
    response = _visit(setup["next_action"]["redirect_to_url"]["url"])
    assert parse_qs(urlsplit(response.headers["Location"]).query)["setup_intent"] == [setup["id"]]
    done = api.ok("GET", f"/v1/setup_intents/{setup['id']}")
    assert done["status"] == "succeeded"
    intent = api.intent(customer=customer["id"], payment_method=done["payment_method"], confirm=True, off_session=True)
    assert intent["status"] == "succeeded"


def test_the_same_card_without_setup_is_declined_off_session(api: Any) -> None:
    response = api.off_session_payment("pm_card_authenticationRequiredOnSetup")
    assert response.error["code"] == "authentication_required"


def test_saving_during_an_authenticated_payment_enables_off_session_reuse(api: Any) -> None:
    customer = api.ok("POST", "/v1/customers")
    intent = _challenged(
        api,
        customer=customer["id"],
        setup_future_usage="off_session",
        payment_method="pm_card_authenticationRequiredOnSetup",
    )
    _visit(intent["next_action"]["redirect_to_url"]["url"])
    paid = api.ok("GET", f"/v1/payment_intents/{intent['id']}")
    pm = api.ok("GET", f"/v1/payment_methods/{paid['payment_method']}")
    assert pm["customer"] == customer["id"]
    again = api.intent(customer=customer["id"], payment_method=pm["id"], confirm=True, off_session=True)
    assert again["status"] == "succeeded"


def test_complete_challenge_from_python(api: Any, app: Any) -> None:
    intent = _challenged(api)
    assert app.complete_challenge(intent["id"], succeed=False)["status"] == "requires_payment_method"
    with pytest.raises(ValueError):
        app.complete_challenge(intent["id"])


def test_challenge_events(api: Any, app: Any) -> None:
    intent = _challenged(api, capture_method="manual")
    _visit(intent["next_action"]["redirect_to_url"]["url"])
    assert [e["type"] for e in app.store.events.values()] == [
        "payment_intent.created",
        "payment_intent.requires_action",
        "charge.succeeded",
        "payment_intent.amount_capturable_updated",
    ]
    assert app.store.events[list(app.store.events)[-1]]["request"]["id"] is None  # caused by the buyer, not the API
