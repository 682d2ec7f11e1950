"""Webhooks: Stripe event objects, signed, delivered in order to a real receiver; the events API."""

from __future__ import annotations

import json
import threading
import time
from typing import Any

import stripe

from paywire_stripe.signature import signature_header


def _types(deliveries: list[tuple[dict[str, str], bytes]]) -> list[str]:
    return [json.loads(body)["type"] for _, body in deliveries]


def test_events_are_delivered_signed_and_in_order(api: Any, app: Any, receiver: Any, webhook_secret: str) -> None:
    app.webhook_url = receiver.url
    intent = api.intent(payment_method="pm_card_visa", confirm=True, capture_method="manual")
    api.ok("POST", f"/v1/payment_intents/{intent['id']}/capture", {"amount_to_capture": 500})
    api.ok("POST", "/v1/refunds", {"payment_intent": intent["id"], "amount": 200})
    deliveries = receiver.wait_for(7)
    assert _types(deliveries) == [
        "payment_intent.created",
        "charge.succeeded",
        "payment_intent.amount_capturable_updated",
        "charge.captured",
        "payment_intent.succeeded",
        "refund.created",
        "charge.refunded",
    ]
    for headers, body in deliveries:
        stamp = int(headers["stripe-signature"].split(",")[0][2:])
        assert headers["stripe-signature"] == signature_header(webhook_secret, stamp, body)
        assert abs(stamp - time.time()) < 60
        event = stripe.Webhook.construct_event(body, headers["stripe-signature"], webhook_secret)
        assert event.object == "event" and event.livemode is False
    assert app.wait_for_webhooks(30)
    assert [status for status, _ in app.webhook_deliveries] == [200] * 7


def _delivering() -> set[threading.Thread]:
    return {thread for thread in threading.enumerate() if thread.name == "stripe-emulator-webhooks"}


def test_delivering_leaves_no_thread_behind(api: Any, app: Any, receiver: Any) -> None:
    """Each emulator that delivered a webhook kept its delivering thread waiting for more, for
    good (a dozen alive by the end of a run). It ends once nothing is left to deliver, and the
    next event starts another, still delivered in order."""
    before = _delivering()
    app.webhook_url = receiver.url
    for batch in range(2):
        intent = api.intent(payment_method="pm_card_visa", confirm=True)
        assert app.wait_for_webhooks(30)
        for thread in _delivering() - before:
            thread.join(30)
        assert len(_delivering()) == len(before), f"threads left delivering after batch {batch}"
        events = [json.loads(body) for _, body in receiver.wait_for(3 * (batch + 1))[3 * batch:]]
        assert [(event["type"], event["data"]["object"]["id"]) for event in events if event["type"].startswith(
            "payment_intent.")] == [("payment_intent.created", intent["id"]), ("payment_intent.succeeded", intent["id"])]
    assert [status for status, _ in app.webhook_deliveries] == [200] * 6


def test_event_shape(api: Any, app: Any) -> None:
    intent = api.intent(payment_method="pm_card_visa", confirm=True)
    (event,) = app.events_of_type("payment_intent.succeeded")
    assert event["id"].startswith("evt_")
    assert set(event) == {
        "id",
        "object",
        "api_version",
        "created",
        "data",
        "livemode",
        "pending_webhooks",
        "request",
        "type",
    }
    assert (event["object"], event["api_version"], event["livemode"]) == ("event", "2023-08-16", False)
    assert event["data"]["object"]["id"] == intent["id"] and event["data"]["object"]["status"] == "succeeded"
    (created,) = app.events_of_type("payment_intent.created")
    assert created["data"]["object"]["status"] == "requires_confirmation"  # a snapshot, not the live object


def test_signed_event_gives_the_exact_bytes_and_headers(api: Any, app: Any, webhook_secret: str) -> None:
    api.ok("POST", "/v1/customers", {"email": "a@example.com"})
    (event,) = app.events_of_type("customer.created")
    body, headers = app.signed_event(event, timestamp=1_700_000_000)
    assert json.loads(body) == event
    assert headers["Stripe-Signature"] == signature_header(webhook_secret, 1_700_000_000, body)
    assert headers["Content-Type"].startswith("application/json")
    assert app.signed_event(event["id"], timestamp=1_700_000_000) == (body, headers)


def test_events_api_retrieves_and_filters(api: Any, app: Any) -> None:
    intent = api.intent(payment_method="pm_card_visa", confirm=True)
    api.ok("POST", "/v1/refunds", {"payment_intent": intent["id"]})
    (succeeded,) = app.events_of_type("payment_intent.succeeded")
    assert api.ok("GET", f"/v1/events/{succeeded['id']}") == succeeded
    assert api.get("/v1/events/evt_nope").error["message"] == "No such event: 'evt_nope'"
    listed = api.ok("GET", "/v1/events", {"type": "charge.*"})
    assert [e["type"] for e in listed["data"]] == ["charge.refunded", "charge.succeeded"]
    both = api.ok("GET", "/v1/events", {"types": ["refund.created", "payment_intent.created"]})
    assert sorted(e["type"] for e in both["data"]) == ["payment_intent.created", "refund.created"]


def test_a_failing_receiver_is_recorded_and_can_be_redelivered(api: Any, app: Any, receiver: Any) -> None:
    app.webhook_url = receiver.url
    receiver.status = 500
    api.ok("POST", "/v1/customers", {})
    assert app.wait_for_webhooks(30)
    assert app.webhook_deliveries[0][0] == 500
    (event,) = app.events_of_type("customer.created")
    assert event["pending_webhooks"] == 1
    receiver.status = 200
    app.redeliver(event["id"])
    assert app.wait_for_webhooks(30)
    assert app.webhook_deliveries[-1][0] == 200
    assert app.get(event["id"])["pending_webhooks"] == 0
    assert len(receiver.wait_for(2)) == 2


def test_an_unreachable_receiver_does_not_block_the_api(api: Any, app: Any) -> None:
    app.webhook_url = "http://127.0.0.1:9/unreachable"
    api.ok("POST", "/v1/customers", {})
    assert app.wait_for_webhooks(30)
    assert app.webhook_deliveries == [(None, app.signed_event(app.events_of_type("customer.created")[0])[0])]


def test_events_cover_customers_payment_methods_and_cancellations(api: Any, app: Any) -> None:
    customer = api.ok("POST", "/v1/customers")
    pm = api.ok("POST", "/v1/payment_methods/pm_card_visa/attach", {"customer": customer["id"]})
    api.ok("POST", f"/v1/payment_methods/{pm['id']}/detach")
    intent = api.intent()
    api.ok("POST", f"/v1/payment_intents/{intent['id']}/cancel")
    api.ok("DELETE", f"/v1/customers/{customer['id']}")
    assert [e["type"] for e in app.store.events.values()] == [
        "customer.created",
        "payment_method.attached",
        "payment_method.detached",
        "payment_intent.created",
        "payment_intent.canceled",
        "customer.deleted",
    ]
