"""HTTPS: the gateway talks to the emulator over TLS with a test CA, and refuses one it does not trust."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import ConfigurationError, Money, OutcomeUnknown, ProviderState, Subject, TransportError


def payment(key: str) -> Subject:
    return Subject(amount=Money.of("10.00", "EUR"), source="pm_card_visa", idempotency_key=key,
                   return_url="https://shop.example/return")


def test_a_payment_lifecycle_over_https_with_a_trusted_test_ca(gateway_at: Any, tls_server: Any, ca_file: str) -> None:
    assert tls_server.url.startswith("https://")
    gateway = gateway_at(tls_server.url, ca_certs=ca_file)
    authorized = gateway.execute("stripe", "authorize", payment("tls-1"))
    captured = gateway.execute("stripe", "capture", Subject(reference=authorized.reference, idempotency_key="tls-2"))
    refunded = gateway.execute("stripe", "refund", Subject(reference=authorized.reference,
                                                           amount=Money.of("4.00", "EUR"), idempotency_key="tls-3"))
    assert (captured.state, refunded.state) == (ProviderState.CAPTURED, ProviderState.PARTIALLY_REFUNDED)
    assert gateway.execute("stripe", "fetch", Subject(reference=authorized.reference)).refunded == Money.of("4.00", "EUR")


def test_3ds_redirects_point_at_the_https_emulator(gateway_at: Any, tls_server: Any, ca_file: str) -> None:
    gateway = gateway_at(tls_server.url, ca_certs=ca_file)
    started = gateway.execute("stripe", "authorize", Subject(
        amount=Money.of("10.00", "EUR"), source="pm_card_threeDSecure2Required", idempotency_key="tls-3ds",
        return_url="https://shop.example/return"))
    assert started.action.redirect_url.startswith(tls_server.url + "/redirect/authenticate/")


def test_an_untrusted_certificate_is_a_tls_error_with_nothing_sent(gateway_at: Any, tls_server: Any, app: Any) -> None:
    gateway = gateway_at(tls_server.url)  # the system's CAs do not know the test CA
    with pytest.raises(TransportError) as failed:
        gateway.execute("stripe", "authorize", payment("tls-4"))
    assert not isinstance(failed.value, OutcomeUnknown) and not failed.value.may_have_been_sent
    assert "TLS" in str(failed.value) and app.calls == []


def test_plain_http_is_only_for_loopback_in_the_sandbox(gateway_at: Any) -> None:
    with pytest.raises(ConfigurationError):
        gateway_at("http://api.stripe.com").execute("stripe", "authorize", payment("tls-5"))
    with pytest.raises(ConfigurationError):
        gateway_at("http://127.0.0.1:1", environment="live").execute("stripe", "authorize", payment("tls-6"))
