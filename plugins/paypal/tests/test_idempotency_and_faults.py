"""PayPal-Request-Id, Prefer, debug ids, negative testing, and injected faults in PayPal's shape."""

from __future__ import annotations

import threading

import urllib3

from paywire.testing.emulator import Fault

ORDER = {"intent": "CAPTURE", "purchase_units": [{"amount": {"currency_code": "USD", "value": "10.00"}}]}


def test_same_request_id_creates_one_order_and_replays_it_with_200(api):
    headers = {"PayPal-Request-Id": "order-A-1001"}
    first = api.post("/v2/checkout/orders", ORDER, headers=headers)
    second = api.post("/v2/checkout/orders", ORDER, headers=headers)
    assert (first.status, second.status) == (201, 200)
    assert first.json()["id"] == second.json()["id"]
    assert len(api.app.orders) == 1


def test_replay_ignores_a_different_body_and_shows_the_latest_status(api):
    headers = {"PayPal-Request-Id": "order-A-1002"}
    first = api.post("/v2/checkout/orders", ORDER, headers=headers).json()
    api.app.approve(first["id"])
    other = {**ORDER, "intent": "AUTHORIZE"}
    replay = api.post("/v2/checkout/orders", other, headers=headers)
    assert replay.status == 200
    assert (replay.json()["id"], replay.json()["status"]) == (first["id"], "APPROVED")
    assert len(api.app.orders) == 1


def test_request_ids_are_per_endpoint_and_absent_ids_duplicate(api):
    api.post("/v2/checkout/orders", ORDER, headers={"PayPal-Request-Id": "k1"})
    order_id = api.approved_order()
    capture = api.post(f"/v2/checkout/orders/{order_id}/capture", headers={"PayPal-Request-Id": "k1"})
    assert capture.status == 201
    api.post("/v2/checkout/orders", ORDER)
    api.post("/v2/checkout/orders", ORDER)
    assert len(api.app.orders) == 4


def test_retried_capture_after_a_dropped_connection_captures_once(api):
    auth = api.authorization("50.00")
    path = f"/v2/payments/authorizations/{auth['id']}/capture"
    api.app.inject(Fault("drop_after", path=path))
    headers = {"PayPal-Request-Id": "capture-1"}
    try:
        api.post(path, {"amount": {"currency_code": "USD", "value": "20.00"}}, headers=headers)
        raise AssertionError("the connection should have dropped")
    except urllib3.exceptions.HTTPError:
        pass
    assert len(api.app.captures) == 1  # it took effect
    retry = api.post(path, {"amount": {"currency_code": "USD", "value": "20.00"}}, headers=headers)
    assert retry.status == 200
    assert retry.json()["id"] == next(iter(api.app.captures))
    assert len(api.app.captures) == 1


def test_failed_attempts_are_not_remembered(api):
    order_id = api.create_order()["id"]
    headers = {"PayPal-Request-Id": "capture-early"}
    assert api.post(f"/v2/checkout/orders/{order_id}/capture", headers=headers).issue == "ORDER_NOT_APPROVED"
    api.app.approve(order_id)
    assert api.post(f"/v2/checkout/orders/{order_id}/capture", headers=headers).status == 201


def test_void_and_refund_replays(api):
    auth = api.authorization()
    headers = {"PayPal-Request-Id": "void-1"}
    assert api.post(f"/v2/payments/authorizations/{auth['id']}/void", headers=headers).status == 204
    assert api.post(f"/v2/payments/authorizations/{auth['id']}/void", headers=headers).status == 204
    capture = api.capture()
    headers = {"PayPal-Request-Id": "refund-1"}
    first = api.post(
        f"/v2/payments/captures/{capture['id']}/refund",
        {"amount": {"currency_code": "USD", "value": "1.00"}},
        headers=headers,
    )
    again = api.post(
        f"/v2/payments/captures/{capture['id']}/refund",
        {"amount": {"currency_code": "USD", "value": "1.00"}},
        headers=headers,
    )
    assert (first.status, again.status, first.json()["id"]) == (201, 200, again.json()["id"])
    assert len(api.app.refunds) == 1


def test_request_id_longer_than_108_characters_is_refused(api):
    response = api.post("/v2/checkout/orders", ORDER, headers={"PayPal-Request-Id": "x" * 109})
    assert (response.status, response.issue) == (400, "INVALID_STRING_LENGTH")
    assert response.json()["details"][0]["location"] == "header"


def test_prefer_minimal_and_representation_on_captures(api):
    auth = api.authorization()
    path = f"/v2/payments/authorizations/{auth['id']}/capture"
    minimal = api.post(
        path, {"amount": {"currency_code": "USD", "value": "1.00"}}, headers={"Prefer": "return=minimal"}
    )
    assert set(minimal.json()) == {"id", "status", "links"}
    full = api.post(
        path, {"amount": {"currency_code": "USD", "value": "1.00"}}, headers={"Prefer": "return=representation"}
    )
    assert {"amount", "seller_receivable_breakdown", "supplementary_data"} <= set(full.json())


def test_every_response_carries_a_debug_id(api):
    responses = [
        api.oauth(),
        api.oauth(secret="wrong"),
        api.post("/v2/checkout/orders", ORDER),
        api.get("/v2/checkout/orders/NOPE"),
        api.get("/nowhere", auth=False),
        api.get("/_paywire/calls", auth=False),
    ]
    debug_ids = [r.headers.get("Paypal-Debug-Id") for r in responses]
    assert all(debug_ids) and len(set(debug_ids)) == len(debug_ids)
    assert responses[3].json()["debug_id"] == debug_ids[3]


def test_unknown_paths_are_resource_not_found(api):
    response = api.get("/v2/unknown", auth=False)
    assert (response.status, response.json()["name"]) == (404, "RESOURCE_NOT_FOUND")


def test_paypal_mock_response_header_forces_an_error(api):
    order_id = api.approved_order()
    response = api.post(
        f"/v2/checkout/orders/{order_id}/capture",
        headers={"PayPal-Mock-Response": '{"mock_application_codes": "INSTRUMENT_DECLINED"}'},
    )
    assert (response.status, response.issue) == (422, "INSTRUMENT_DECLINED")
    assert not api.app.captures
    forbidden = api.get(
        f"/v2/checkout/orders/{order_id}",
        headers={"PayPal-Mock-Response": '{"mock_application_codes": "PERMISSION_DENIED"}'},
    )
    assert (forbidden.status, forbidden.json()["name"]) == (403, "NOT_AUTHORIZED")
    assert api.post(f"/v2/checkout/orders/{order_id}/capture").status == 201


def test_injected_server_errors_are_in_paypals_shape(api):
    api.app.inject(Fault("status", status=500, path="/v2/checkout/orders$"))
    response = api.post("/v2/checkout/orders", ORDER)
    assert response.status == 500
    assert response.json()["name"] == "INTERNAL_SERVER_ERROR"
    assert response.json()["debug_id"] == response.headers["Paypal-Debug-Id"]
    assert not api.app.orders  # nothing happened
    assert api.post("/v2/checkout/orders", ORDER).status == 201  # the fault was for one request


def test_injected_rate_limit_has_retry_after(api):
    api.token()
    api.app.inject(Fault("status", status=429, retry_after=7))
    response = api.get("/v2/checkout/orders/ANY")
    assert (response.status, response.headers["Retry-After"]) == (429, "7")
    assert response.json()["name"] == "RATE_LIMIT_REACHED"


def test_injected_unavailable_via_the_control_endpoint(api):
    api.token()
    control = api.request("POST", "/_paywire/faults", {"kind": "status", "status": 503, "method": "POST"}, auth=False)
    assert control.status == 200
    response = api.post("/v2/checkout/orders", ORDER)
    assert (response.status, response.json()["name"]) == (503, "SERVICE_UNAVAILABLE")


def test_injected_latency_delays_but_answers(api):
    import time

    api.token()
    api.app.inject(Fault("latency", seconds=0.2, path="/v2/checkout/orders$"))
    started = time.monotonic()
    assert api.post("/v2/checkout/orders", ORDER).status == 201
    assert time.monotonic() - started >= 0.2


def test_concurrent_captures_never_exceed_the_overage_limit(api):
    from concurrent.futures import ThreadPoolExecutor

    auth = api.authorization("100.00")
    path = f"/v2/payments/authorizations/{auth['id']}/capture"
    api.token()
    with ThreadPoolExecutor(max_workers=16) as pool:
        statuses = list(
            pool.map(lambda _: api.post(path, {"amount": {"currency_code": "USD", "value": "10.00"}}).status, range(20))
        )
    # The tenth capture reaches the authorized amount and closes the authorization (CAPTURED).
    assert statuses.count(201) == 10
    assert sum(c.amount_minor for c in api.app.captures.values()) == 10_000


def test_concurrent_requests_with_one_request_id_capture_once(api):
    from concurrent.futures import ThreadPoolExecutor

    auth = api.authorization("100.00")
    path = f"/v2/payments/authorizations/{auth['id']}/capture"
    api.token()
    headers = {"PayPal-Request-Id": "same-everywhere"}
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(
            pool.map(
                lambda _: api.post(path, {"amount": {"currency_code": "USD", "value": "5.00"}}, headers=headers),
                range(8),
            )
        )
    assert len(api.app.captures) == 1
    assert [r.status for r in responses].count(201) == 1
    for response in responses:
        assert response.status in (200, 201) or (response.status, response.issue) == (
            409,
            "PREVIOUS_REQUEST_IN_PROGRESS",
        )


def test_a_repeat_while_the_first_is_held_in_flight_is_409_previous_request_in_progress(api):
    """The first capture is held once applied, before its PayPal-Request-Id keeps its answer: a
    repeat meets the id in flight, in PayPal's documented 409 shape; once the first is answered,
    the repeat gets its capture."""
    auth = api.authorization("100.00")
    path = f"/v2/payments/authorizations/{auth['id']}/capture"
    api.token()
    body = {"amount": {"currency_code": "USD", "value": "5.00"}}
    headers = {"PayPal-Request-Id": "held-id"}
    api.app.inject(Fault(kind="hold", contains="held-id"))
    firsts = []
    first = threading.Thread(target=lambda: firsts.append(api.post(path, body, headers=headers)))
    first.start()
    try:
        assert api.app.wait_until_held()
        repeat = api.post(path, body, headers=headers)
    finally:
        api.app.release_held()
        first.join()
    assert repeat.status == 409
    error = repeat.json()
    assert (error["name"], error["message"]) == (
        "RESOURCE_CONFLICT", "The server has detected a conflict while processing this request.")
    assert error["details"] == [{
        "issue": "PREVIOUS_REQUEST_IN_PROGRESS",
        "description": "A previous request on this resource is currently in progress. Please wait for sometime and "
                       "try again. It is best to space out the initial and the subsequent request(s) to avoid "
                       "receiving this error.",
    }]
    assert error["debug_id"] == repeat.headers["Paypal-Debug-Id"]
    assert firsts[0].status == 201
    again = api.post(path, body, headers=headers)
    assert again.json()["id"] == firsts[0].json()["id"] and len(api.app.captures) == 1
