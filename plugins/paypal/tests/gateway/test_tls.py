"""The same gateway over HTTPS: a certificate for 127.0.0.1 from a test CA the method trusts."""

from __future__ import annotations

import pytest

from paywire import EventKind, Money, ProviderState, TransportError, WebhookVerificationError


@pytest.fixture
def tls_paypal(serve_paypal, tls_context, ca_bundle):
    return serve_paypal(ssl_context=tls_context, ca_certs=ca_bundle, options={"webhook_ca_certs": ca_bundle})


def test_a_payment_runs_over_https_with_the_trusted_test_ca(tls_paypal):
    assert tls_paypal.url.startswith("https://127.0.0.1:")
    authorization = tls_paypal.authorized("50.00")
    capture = tls_paypal.run("capture", reference=authorization.reference, amount=Money.of("20.00", "EUR"),
                             idempotency_key=tls_paypal.key())
    tls_paypal.run("refund", reference=capture.reference, idempotency_key=tls_paypal.key())
    fetched = tls_paypal.run("fetch", reference=authorization.references["payment"])
    assert (fetched.state, fetched.captured, fetched.refunded) == (
        ProviderState.REFUNDED, Money.of("20.00", "EUR"), Money.of("20.00", "EUR"))
    assert all(transfer.url.startswith("https://") for transfer in tls_paypal.sent)


def test_an_untrusted_server_certificate_is_refused_before_anything_is_sent(tls_paypal):
    gateway = tls_paypal.gateway_with(ca_certs=None)
    with pytest.raises(TransportError) as raised:
        tls_paypal.run("sale", gateway=gateway, amount=Money.of("5.00", "EUR"), source="paypal",
                       idempotency_key=tls_paypal.key())
    assert not raised.value.may_have_been_sent and "TLS" in str(raised.value)
    assert tls_paypal.calls() == 0


def test_webhooks_verify_with_a_certificate_fetched_over_https(tls_paypal):
    tls_paypal.captured()
    event = next(e for e in reversed(tls_paypal.app.events) if e["event_type"] == "PAYMENT.CAPTURE.COMPLETED")
    body, headers = tls_paypal.app.signed_event(event)
    assert headers["PAYPAL-CERT-URL"].startswith("https://127.0.0.1:")
    assert tls_paypal.gateway.parse_webhook("paypal", headers, body).kind == EventKind.CAPTURED
    untrusting = tls_paypal.gateway_with(options={})
    with pytest.raises(WebhookVerificationError) as raised:
        untrusting.parse_webhook("paypal", headers, body)
    assert raised.value.code == "certificate_unavailable"


def test_the_api_mode_asks_paypal_over_https(tls_paypal, ca_bundle):
    tls_paypal.captured()
    event = next(e for e in reversed(tls_paypal.app.events) if e["event_type"] == "PAYMENT.CAPTURE.COMPLETED")
    body, headers = tls_paypal.app.signed_event(event)
    gateway = tls_paypal.gateway_with(options={"webhook_verification": "api", "webhook_ca_certs": ca_bundle})
    assert gateway.parse_webhook("paypal", headers, body).kind == EventKind.CAPTURED
    assert tls_paypal.calls("verify-webhook-signature") == 1


def test_the_token_survives_expiry_over_https(tls_paypal):
    authorization = tls_paypal.authorized()
    tls_paypal.app.expire_tokens()
    assert tls_paypal.run("void", reference=authorization.reference, idempotency_key=tls_paypal.key()).state == (
        ProviderState.VOIDED)
    assert tls_paypal.calls("/v1/oauth2/token") == 2
