"""Injected faults answer in Stripe's error shape and leave state untouched (except drop_after)."""

from __future__ import annotations

import json
import time
import urllib.request
from typing import Any

from paywire.testing.emulator import Fault


def test_injected_500_is_an_api_error_safe_to_retry(api: Any, app: Any) -> None:
    app.inject(Fault("status", status=500))
    response = api.post("/v1/customers", {})
    assert response.status == 500
    assert response.error["type"] == "api_error"
    assert response.headers["Stripe-Should-Retry"] == "true"
    assert response.headers["Request-Id"].startswith("req_")
    assert app.store.customers == {}
    assert api.post("/v1/customers", {}).status == 200  # the fault was used up


def test_injected_429_is_a_rate_limit_with_retry_after(api: Any, app: Any) -> None:
    app.inject(Fault("status", status=429, retry_after=3, path=r"^/v1/payment_intents"))
    response = api.get("/v1/payment_intents")
    assert response.status == 429
    assert (response.error["type"], response.error["code"]) == ("invalid_request_error", "rate_limit")
    assert response.headers["Retry-After"] == "3"
    assert api.get("/v1/customers").status == 200


def test_latency_delays_the_answer(api: Any, app: Any) -> None:
    app.inject(Fault("latency", seconds=0.2))
    started = time.monotonic()
    assert api.get("/v1/customers").status == 200
    assert time.monotonic() - started >= 0.2


def test_faults_can_be_injected_over_http_and_are_counted_per_request(api: Any, app: Any, server: Any) -> None:
    request = urllib.request.Request(
        server.url + "/_paywire/faults",
        method="POST",
        data=json.dumps({"kind": "status", "status": 503, "times": 2}).encode(),
    )
    with urllib.request.urlopen(request) as answer:
        assert answer.status == 200
    assert [api.get("/v1/customers").status for _ in range(3)] == [503, 503, 200]
    assert app.calls == [("GET", "/v1/customers")]  # the faulted requests never reached Stripe's logic


def test_an_internal_error_would_answer_stripes_500_shape(api: Any, app: Any, monkeypatch: Any) -> None:
    from paywire_stripe.emulator import customers

    def broken(*args: Any) -> None:
        raise RuntimeError("boom")

    monkeypatch.setattr(customers, "create", broken)
    response = api.post("/v1/customers", {})
    assert (response.status, response.error["type"]) == (500, "api_error")
    assert "RuntimeError" in app.internal_errors.pop()
