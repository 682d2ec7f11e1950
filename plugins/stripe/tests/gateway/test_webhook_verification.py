"""Stripe-Signature verification: genuine deliveries pass; tampered, stale, future-dated, malformed,
oversized or wrongly signed ones are refused before anything reads them."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paywire import ConfigurationError, Secret, WebhookVerificationError
from paywire_stripe.signature import compute_signature, signature_header
from paywire_stripe.webhook import StripeWebhookVerifier

NOW = 1_700_000_000
BODY = json.dumps({"id": "evt_1", "object": "event", "type": "payment_intent.created", "created": NOW,
                   "data": {"object": {"id": "pi_1", "object": "payment_intent", "amount": 1000,
                                       "currency": "eur", "status": "requires_payment_method"}}}).encode()


def verifier(*secrets: str, **options: Any) -> StripeWebhookVerifier:
    return StripeWebhookVerifier([Secret(s) for s in secrets], clock=lambda: NOW, **options)


def refused(check: StripeWebhookVerifier, header: str | None, body: bytes = BODY) -> str:
    headers = {} if header is None else {"stripe-signature": header}
    with pytest.raises(WebhookVerificationError) as error:
        check(headers, body)
    assert error.value.provider == "stripe" and not error.value.retryable
    return str(error.value.code)


def test_a_delivery_from_the_emulator_verifies_through_the_gateway(
    gateway: Any, app: Any, api: Any, receiver: Any
) -> None:
    app.webhook_url = receiver.url
    api.intent(payment_method="pm_card_visa", confirm=True, capture_method="manual")
    deliveries = receiver.wait_for(3)
    for headers, body in deliveries:
        event = gateway.parse_webhook("stripe", headers, body)
        assert event.id == json.loads(body)["id"] and event.provider == "stripe"
    assert [json.loads(body)["type"] for _, body in deliveries] == [
        "payment_intent.created", "charge.succeeded", "payment_intent.amount_capturable_updated"]


def test_a_signature_within_the_tolerance_either_way_verifies() -> None:
    check = verifier("whsec_a")
    for at in (NOW - 300, NOW, NOW + 300):
        assert check({"stripe-signature": signature_header("whsec_a", at, BODY)}, BODY).id == "evt_1"


def test_a_stale_or_future_signature_is_refused() -> None:
    check = verifier("whsec_a")
    assert refused(check, signature_header("whsec_a", NOW - 301, BODY)) == "timestamp_stale"
    assert refused(check, signature_header("whsec_a", NOW + 301, BODY)) == "timestamp_future"


def test_the_tolerance_is_an_option(gateway_at: Any, server: Any, webhook_secret: str) -> None:
    gateway = gateway_at(server.url, options={"webhook_tolerance": 10})
    stale = signature_header(webhook_secret, int(time.time()) - 11, BODY)
    with pytest.raises(WebhookVerificationError) as error:
        gateway.parse_webhook("stripe", {"Stripe-Signature": stale}, BODY)
    assert error.value.code == "timestamp_stale"


@pytest.mark.parametrize("tolerance", [float("nan"), float("inf"), 0, -300, "300", True])
def test_a_tolerance_that_is_no_positive_finite_number_of_seconds_is_a_configuration_error(
        gateway_at: Any, server: Any, webhook_secret: str, tolerance: Any) -> None:
    """nan or inf would verify a delivery signed years ago: the replay window gone without a word."""
    gateway = gateway_at(server.url, options={"webhook_tolerance": tolerance})
    ancient = signature_header(webhook_secret, int(time.time()) - 10 * 365 * 86400, BODY)
    with pytest.raises(ConfigurationError, match="webhook_tolerance"):
        gateway.parse_webhook("stripe", {"Stripe-Signature": ancient}, BODY)


@pytest.mark.parametrize("limit", [1.5, float("inf"), 0, -1, "1048576", None, True])
def test_a_body_limit_that_is_no_positive_whole_number_of_bytes_is_a_configuration_error(
        gateway_at: Any, server: Any, webhook_secret: str, limit: Any) -> None:
    gateway = gateway_at(server.url, options={"webhook_max_bytes": limit})
    header = signature_header(webhook_secret, int(time.time()), BODY)
    with pytest.raises(ConfigurationError, match="webhook_max_bytes"):
        gateway.parse_webhook("stripe", {"Stripe-Signature": header}, BODY)


def test_the_body_limit_is_an_option(gateway_at: Any, server: Any, webhook_secret: str) -> None:
    gateway = gateway_at(server.url, options={"webhook_max_bytes": len(BODY) - 1})
    with pytest.raises(WebhookVerificationError) as error:
        gateway.parse_webhook("stripe", {"Stripe-Signature": signature_header(webhook_secret, int(time.time()), BODY)},
                              BODY)
    assert error.value.code == "too_large"


def test_a_tampered_body_or_timestamp_is_refused() -> None:
    check = verifier("whsec_a")
    header = signature_header("whsec_a", NOW, BODY)
    assert refused(check, header, BODY.replace(b"1000", b"9000")) == "signature_mismatch"
    assert refused(check, header, BODY + b"\n") == "signature_mismatch"
    assert refused(check, header.replace(f"t={NOW}", f"t={NOW + 1}")) == "signature_mismatch"


def test_another_secret_is_refused() -> None:
    assert refused(verifier("whsec_a"), signature_header("whsec_b", NOW, BODY)) == "signature_mismatch"


def test_during_a_rotation_any_configured_secret_and_any_v1_verifies(
    gateway_at: Any, server: Any, api_key: str
) -> None:
    new = compute_signature("whsec_new", NOW, BODY)
    old = compute_signature("whsec_old", NOW, BODY)
    assert verifier("whsec_new")({"stripe-signature": f"t={NOW},v1={old},v1={new}"}, BODY).id == "evt_1"
    assert verifier("whsec_old", "whsec_new")({"stripe-signature": f"t={NOW},v1={old}"}, BODY).id == "evt_1"
    gateway = gateway_at(server.url, credentials={"secret_key": api_key, "webhook_secret": "whsec_old, whsec_new"})
    fresh = signature_header("whsec_old", int(time.time()), BODY)
    assert gateway.parse_webhook("stripe", {"stripe-signature": fresh}, BODY).id == "evt_1"


def test_other_schemes_are_ignored_but_are_not_enough() -> None:
    v0 = compute_signature("whsec_a", NOW, BODY)
    check = verifier("whsec_a")
    assert check({"stripe-signature": f"t={NOW},v0=abc,v1={v0}"}, BODY).id == "evt_1"
    assert refused(check, f"t={NOW},v0={v0}") == "signature_malformed"


@pytest.mark.parametrize("header", [
    "", "garbage", f"t={NOW}", "v1=abc", f"t={NOW},t={NOW},v1=abc", f"t=-{NOW},v1=abc", f"t={NOW}.5,v1=abc",
    f"t={NOW},v1", f"t={NOW},,v1=abc", f"t={NOW}, v1=abc", f" t={NOW},v1=abc", "t=" + "9" * 20 + ",v1=abc",
    f"t={NOW},v1=sïgnature", "A" * 8192,
])
def test_a_malformed_signature_header_is_refused(header: str) -> None:
    sign = compute_signature("whsec_a", NOW, BODY)
    code = refused(verifier("whsec_a"), header.replace("abc", sign))
    assert code in ("signature_missing", "signature_malformed")


def test_a_missing_header_is_refused() -> None:
    assert refused(verifier("whsec_a"), None) == "signature_missing"


def test_an_oversized_body_is_refused_before_any_hmac() -> None:
    check = verifier("whsec_a", max_bytes=100)
    assert refused(check, signature_header("whsec_a", NOW, BODY), BODY) == "too_large"


def test_a_body_that_is_not_a_stripe_event_is_refused_even_when_signed() -> None:
    check = verifier("whsec_a")
    for body in (b"not json", b"[]", b'{"object": "event"}', b'{"id": "evt_1", "object": "event", "type": "x"}',
                 b'{"id": "evt_1", "object": "charge", "type": "x", "data": {"object": {}}}'):
        assert refused(check, signature_header("whsec_a", NOW, body), body) == "malformed"


_JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=4),
                     lambda inner: st.lists(inner, max_size=2) | st.dictionaries(st.text(max_size=4), inner, max_size=2),
                     max_leaves=4)
_AMOUNTS = ("amount", "amount_captured", "amount_received", "amount_capturable", "amount_refunded")


@given(
    kind=st.sampled_from(["payment_intent", "charge", "refund"]),
    event_type=st.sampled_from(["payment_intent.succeeded", "payment_intent.amount_capturable_updated",
                                "charge.succeeded", "charge.captured", "refund.created", "charge.refund.updated"]),
    amounts=st.fixed_dictionaries({}, optional=dict.fromkeys(_AMOUNTS, _JSON)),
    status=st.sampled_from(["succeeded", "failed", "pending", "requires_capture"]),
)
def test_a_signed_event_of_any_shape_is_an_event_or_refused_as_malformed(
    kind: str, event_type: str, amounts: dict[str, Any], status: str
) -> None:
    """A signed event whose amounts are a list or an object (Stripe never sends one, so only a
    leaked secret could) raised TypeError out of the verifier, a 500 where a refusal is due: the
    amount reached a cache that hashes its arguments before anything checked it was an integer."""
    obj = {"id": "x_1", "object": kind, "currency": "eur", "status": status, "captured": True,
           "payment_intent": "pi_1", **amounts}
    body = json.dumps({"id": "evt_1", "object": "event", "type": event_type, "created": NOW,
                       "data": {"object": obj}}).encode()
    try:
        event = verifier("whsec_a")({"stripe-signature": signature_header("whsec_a", NOW, body)}, body)
    except WebhookVerificationError as refused:
        assert refused.code == "malformed"
    else:
        assert event.id == "evt_1"
        assert event.amount is None or isinstance(event.amount.minor, int)


def test_a_signed_body_nested_too_deep_to_read_is_refused_as_malformed() -> None:
    """JSON nested deeper than the decoder recurses raised RecursionError out of the verifier (a 500)."""
    body = b'{"id": "evt_1", "object": "event", "type": "charge.captured", "data": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    assert refused(verifier("whsec_a", max_bytes=len(body)), signature_header("whsec_a", NOW, body), body) == "malformed"


def test_secrets_show_nowhere(gateway: Any, webhook_secret: str) -> None:
    verifier_repr = repr(gateway.method("stripe").webhook_verifier())
    with pytest.raises(WebhookVerificationError) as error:
        gateway.parse_webhook("stripe", {"stripe-signature": signature_header("whsec_other", NOW, BODY)}, BODY)
    for text in (verifier_repr, str(error.value), repr(error.value), repr(error.value.details)):
        assert webhook_secret not in text


def test_a_missing_webhook_secret_is_named(gateway_at: Any, server: Any, api_key: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYWIRE_STRIPE_WEBHOOK_SECRET", raising=False)
    gateway = gateway_at(server.url, credentials={"secret_key": api_key})
    with pytest.raises(ConfigurationError) as missing:
        gateway.parse_webhook("stripe", {"stripe-signature": "t=1,v1=a"}, BODY)
    assert "PAYWIRE_STRIPE_WEBHOOK_SECRET" in str(missing.value)
    with pytest.raises(ConfigurationError):
        StripeWebhookVerifier([])
