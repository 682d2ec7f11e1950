"""Idempotency as Stripe: replay, conflicts, in-flight duplicates, and what is (not) stored."""

from __future__ import annotations

import threading
from typing import Any

import pytest
import stripe
import urllib3

from paywire.testing.emulator import Fault

PARAMS = {
    "amount": 1000,
    "currency": "usd",
    "payment_method": "pm_card_visa",
    "payment_method_types": ["card"],
    "confirm": True,
}


def test_same_key_same_body_replays_the_stored_response(api: Any, app: Any) -> None:
    first = api.post("/v1/payment_intents", PARAMS, idempotency_key="key-1")
    second = api.post("/v1/payment_intents", PARAMS, idempotency_key="key-1")
    assert first.status == second.status == 200
    assert first.raw == second.raw
    assert "Idempotent-Replayed" not in first.headers
    assert second.headers["Idempotent-Replayed"] == "true"
    assert second.headers["Original-Request"] == first.headers["Request-Id"] != second.headers["Request-Id"]
    assert first.headers["Idempotency-Key"] == "key-1"
    assert len(app.store.payment_intents) == 1
    assert app.calls.count(("POST", "/v1/payment_intents")) == 1


def test_parameter_order_does_not_matter(api: Any) -> None:
    pairs = [("amount", "1000"), ("currency", "usd"), ("payment_method_types[0]", "card")]
    first = api.post("/v1/payment_intents", pairs, idempotency_key="k")
    second = api.post("/v1/payment_intents", list(reversed(pairs)), idempotency_key="k")
    assert second.headers.get("Idempotent-Replayed") == "true" and first.body["id"] == second.body["id"]


def test_same_key_different_parameters_is_an_idempotency_error(api: Any) -> None:
    api.post("/v1/payment_intents", PARAMS, idempotency_key="key-2")
    response = api.post("/v1/payment_intents", {**PARAMS, "amount": 2000}, idempotency_key="key-2")
    assert response.status == 400
    assert response.error["type"] == "idempotency_error"
    assert response.error["message"] == (
        "Keys for idempotent requests can only be used with the same parameters they were first used with. Try "
        "using a key other than 'key-2' if you meant to execute a different request."
    )


def test_same_key_on_another_endpoint_is_an_idempotency_error(api: Any) -> None:
    api.post("/v1/customers", {}, idempotency_key="key-3")
    response = api.post("/v1/payment_intents", PARAMS, idempotency_key="key-3")
    assert response.error["type"] == "idempotency_error"
    assert "('POST /v1/customers' vs 'POST /v1/payment_intents')" in response.error["message"]


def _held_first(api: Any, app: Any, key: str) -> tuple[threading.Thread, dict[str, Any]]:
    """POST PARAMS under `key`, held at the emulator once applied, its key still claimed."""
    app.inject(Fault("hold", contains=key))
    results: dict[str, Any] = {}
    thread = threading.Thread(
        target=lambda: results.update(first=api.post("/v1/payment_intents", PARAMS, idempotency_key=key))
    )
    thread.start()
    assert app.wait_until_held()
    return thread, results


def test_a_concurrent_duplicate_gets_409_while_the_first_is_in_flight(api: Any, app: Any) -> None:
    thread, results = _held_first(api, app, "key-4")
    try:
        duplicate = api.post("/v1/payment_intents", PARAMS, idempotency_key="key-4")
    finally:
        app.release_held()
        thread.join()
    assert duplicate.status == 409
    assert (duplicate.error["type"], duplicate.error["code"]) == ("idempotency_error", "idempotency_key_in_use")
    assert duplicate.error["message"] == (
        "There is currently another in-progress request using this Idempotent Key (that probably means you submitted "
        "twice, and the other request is still going through): key-4. Please try again later."
    )
    assert duplicate.headers["Stripe-Should-Retry"] == "true"
    assert results["first"].status == 200
    replay = api.post("/v1/payment_intents", PARAMS, idempotency_key="key-4")
    assert replay.headers["Idempotent-Replayed"] == "true" and replay.body["id"] == results["first"].body["id"]
    assert len(app.store.payment_intents) == 1


def test_a_request_held_in_flight_does_not_stop_the_others(api: Any, app: Any) -> None:
    """Stripe keeps a key in use, not the account: other requests are answered meanwhile."""
    thread, results = _held_first(api, app, "key-held")
    try:
        other = api.post("/v1/payment_intents", PARAMS, idempotency_key="key-other")
        read = api.get(f"/v1/payment_intents/{other.body['id']}")
    finally:
        app.release_held()
        thread.join()
    assert (other.status, read.status, results["first"].status) == (200, 200, 200)
    assert len(app.store.payment_intents) == 2


def test_declines_are_stored_and_replayed(api: Any, app: Any) -> None:
    declined = {**PARAMS, "payment_method": "pm_card_chargeDeclined"}
    first = api.post("/v1/payment_intents", declined, idempotency_key="key-5")
    second = api.post("/v1/payment_intents", declined, idempotency_key="key-5")
    assert first.status == second.status == 402
    assert second.headers["Idempotent-Replayed"] == "true" and first.raw == second.raw
    assert len(app.store.payment_intents) == 1


def test_parameter_errors_are_not_stored_so_a_corrected_retry_runs(api: Any) -> None:
    bad = api.post("/v1/payment_intents", {**PARAMS, "colour": "blue"}, idempotency_key="key-6")
    assert bad.status == 400
    good = api.post("/v1/payment_intents", PARAMS, idempotency_key="key-6")
    assert good.status == 200 and "Idempotent-Replayed" not in good.headers


def test_an_injected_error_status_is_not_stored(api: Any, app: Any) -> None:
    app.inject(Fault("status", status=500, path=r"^/v1/payment_intents$"))
    failed = api.post("/v1/payment_intents", PARAMS, idempotency_key="key-7")
    assert failed.status == 500
    retried = api.post("/v1/payment_intents", PARAMS, idempotency_key="key-7")
    assert retried.status == 200 and "Idempotent-Replayed" not in retried.headers
    assert len(app.store.payment_intents) == 1


def test_a_dropped_answer_after_the_operation_is_replayed_on_retry(api: Any, app: Any) -> None:
    app.inject(Fault("drop_after", path=r"^/v1/payment_intents$"))
    with pytest.raises(urllib3.exceptions.ProtocolError):
        api.post("/v1/payment_intents", PARAMS, idempotency_key="key-8")
    assert len(app.store.payment_intents) == 1  # it happened, the caller just did not hear back
    retried = api.post("/v1/payment_intents", PARAMS, idempotency_key="key-8")
    assert retried.headers["Idempotent-Replayed"] == "true"
    assert retried.body["id"] == next(iter(app.store.payment_intents)) and retried.body["status"] == "succeeded"
    assert len(app.store.payment_intents) == 1


def test_keys_are_ignored_on_get_and_scoped_per_account(api: Any) -> None:
    first = api.get("/v1/payment_intents", idempotency_key="key-9")
    assert "Idempotent-Replayed" not in api.get("/v1/payment_intents", idempotency_key="key-9").headers
    assert first.status == 200
    api.post("/v1/customers", {}, idempotency_key="key-10")
    other_account = api.post(
        "/v1/customers", {"email": "x@example.com"}, idempotency_key="key-10", headers={"Stripe-Account": "acct_other"}
    )
    assert other_account.status == 200 and "Idempotent-Replayed" not in other_account.headers


def test_keys_longer_than_255_characters_are_refused(api: Any) -> None:
    assert api.post("/v1/customers", {}, idempotency_key="k" * 256).status == 400
    assert api.post("/v1/customers", {}, idempotency_key="k" * 255).status == 200


def test_events_record_the_request_and_its_key(api: Any, app: Any) -> None:
    response = api.post("/v1/customers", {}, idempotency_key="key-11")
    (event,) = app.events_of_type("customer.created")
    assert event["request"] == {"id": response.headers["Request-Id"], "idempotency_key": "key-11"}


def test_stripes_own_server_error_after_executing_is_kept_under_the_key(api: Any, app: Any, client: Any) -> None:
    """Stripe keeps the answer of an endpoint that began executing, "including 500 errors": the
    payment was made, and a retry with the key gets the same `api_error` again, the SDK's too."""
    app.fail_after_executing(r"^/v1/payment_intents$")
    first = api.post("/v1/payment_intents", PARAMS, idempotency_key="key-500")
    again = api.post("/v1/payment_intents", PARAMS, idempotency_key="key-500")
    assert (first.status, first.error["type"], first.headers["Stripe-Should-Retry"]) == (500, "api_error", "false")
    assert (again.raw, again.headers["Idempotent-Replayed"]) == (first.raw, "true")
    (intent,) = app.store.payment_intents.values()
    assert intent["status"] == "succeeded"
    with pytest.raises(stripe.APIError):
        client.v1.payment_intents.create(params=PARAMS, options={"idempotency_key": "key-500"})  # type: ignore[arg-type]
    assert len(app.store.payment_intents) == 1 and api.post("/v1/payment_intents", PARAMS).status == 200
