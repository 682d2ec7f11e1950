"""The webhook signature helper matches Stripe's scheme, checked against the official SDK's verifier."""

from __future__ import annotations

import hashlib
import hmac
import json
import time

import pytest
import stripe

from paywire_stripe.signature import compute_signature, signature_header


def test_signature_is_hmac_sha256_of_timestamp_dot_body_keyed_by_the_whole_secret() -> None:
    body = b'{"id": "evt_1"}'
    expected = hmac.new(b"whsec_abc", b"1700000000." + body, hashlib.sha256).hexdigest()
    assert compute_signature("whsec_abc", 1700000000, body) == expected
    assert signature_header("whsec_abc", 1700000000, body) == f"t=1700000000,v1={expected}"


def test_the_official_sdk_accepts_the_header() -> None:
    body = json.dumps(
        {
            "id": "evt_1",
            "object": "event",
            "type": "payment_intent.succeeded",
            "data": {"object": {"id": "pi_1", "object": "payment_intent"}},
        }
    ).encode()
    now = int(time.time())
    event = stripe.Webhook.construct_event(body, signature_header("whsec_abc", now, body), "whsec_abc")
    assert event.id == "evt_1"


@pytest.mark.parametrize(
    "secret, timestamp, body", [("whsec_other", 0, b"x"), ("whsec_abc", 1, b"x"), ("whsec_abc", 0, b"y")]
)
def test_a_different_secret_timestamp_or_body_changes_the_signature(secret: str, timestamp: int, body: bytes) -> None:
    assert compute_signature(secret, timestamp, body) != compute_signature("whsec_abc", 0, b"x")


def test_the_sdk_rejects_a_tampered_body() -> None:
    body = b'{"id": "evt_1", "object": "event"}'
    header = signature_header("whsec_abc", int(time.time()), body)
    with pytest.raises(stripe.SignatureVerificationError):
        stripe.Webhook.construct_event(body.replace(b"evt_1", b"evt_2"), header, "whsec_abc")
