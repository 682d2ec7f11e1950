"""What the plugin registers: the definition read at discovery, the commands built on first use,
the sandbox, and the configuration errors a shop meets first."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

import paywire_stripe
from paywire import Capabilities, ConfigurationError, Gateway, Money, Plugins, ProviderState, Subject
from paywire.testing.emulator import EmulatorServer
from paywire.testing.sandbox import load_sandbox


def test_the_plugin_registers_stripe_with_its_capabilities_and_currencies() -> None:
    plugins = Plugins()
    plugins.register(paywire_stripe, name="stripe")
    definition = plugins.gateway("stripe")
    assert definition is paywire_stripe.STRIPE
    assert definition.capabilities == Capabilities(capture_multiple=False, vault=True, buyer_action=True,
                                                   webhooks=True, cancel_waiting=True)
    assert definition.secrets == ("secret_key", "webhook_secret")
    assert definition.endpoints == {"live": "https://api.stripe.com", "sandbox": "https://api.stripe.com"}
    assert definition.accepts("EUR") and definition.accepts("JPY") and not definition.accepts("IQD")


def test_discovery_imports_only_the_definition() -> None:
    code = ("import sys, paywire_stripe; "
            "print(sorted(m for m in sys.modules if m.startswith(('paywire_stripe', 'attrs', 'urllib3', 'ssl'))))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "['paywire_stripe', 'paywire_stripe.currencies']"


def test_the_pool_offers_every_command_of_the_contract(gateway: Any) -> None:
    assert sorted(gateway.method("stripe").commands) == [
        "authorize", "capture", "complete", "fetch", "refund", "sale", "unvault", "vault", "void"]


def test_a_missing_secret_key_is_named_when_the_method_is_first_used(
    gateway_at: Any, server: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("PAYWIRE_STRIPE_SECRET_KEY", raising=False)
    gateway = gateway_at(server.url, credentials={})
    with pytest.raises(ConfigurationError) as missing:
        gateway.execute("stripe", "fetch", Subject(reference="pi_1"))
    assert "PAYWIRE_STRIPE_SECRET_KEY" in str(missing.value)


def test_the_secret_key_can_come_from_the_environment(
    gateway_at: Any, server: Any, api_key: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PAYWIRE_STRIPE_SECRET_KEY", api_key)
    gateway = gateway_at(server.url, credentials={})
    result = gateway.execute("stripe", "sale", Subject(amount=Money.of("5.00", "EUR"), source="pm_card_visa"))
    assert result.state == ProviderState.CAPTURED


def test_no_repr_shows_a_secret(gateway: Any, api_key: str, webhook_secret: str, stripe: Any) -> None:
    stripe.authorize(Money.of("5.00", "EUR"))
    method = gateway.method("stripe")
    shown = [repr(gateway), repr(method), repr(method.settings), repr(method.config), repr(method.commands),
             *(repr(command) for command in method.commands.values()), repr(method.webhook_verifier()),
             *(repr(transfer) for transfer in stripe.sent())]
    for text in shown:
        assert api_key not in text and webhook_secret not in text


def test_the_sandbox_runs_payments_with_stripes_test_cards() -> None:
    sandbox = load_sandbox(paywire_stripe.STRIPE)
    assert sandbox.sources["ok"] == "pm_card_visa" and set(sandbox.credentials) == {"secret_key", "webhook_secret"}
    with EmulatorServer(sandbox.app) as server:
        plugins = Plugins()
        plugins.register(paywire_stripe, name="stripe")
        with Gateway([sandbox.method("stripe", server.url)], plugins=plugins) as gateway:
            started = gateway.execute("stripe", "authorize", Subject(
                amount=Money.of("20.00", "EUR"), source=sandbox.sources["buyer_action"], idempotency_key="sb-1",
                return_url="https://shop.example/return"))
            sandbox.act_as_buyer(started.action.redirect_url)
            done = gateway.execute("stripe", "complete", Subject(reference=started.reference, idempotency_key="sb-2"))
            assert done.state == ProviderState.AUTHORIZED
            with pytest.raises(Exception, match="declined"):
                gateway.execute("stripe", "authorize", Subject(amount=Money.of("20.00", "EUR"),
                                                               source=sandbox.sources["decline"]))


def test_each_sandbox_has_its_own_credentials() -> None:
    first, second = load_sandbox(paywire_stripe.STRIPE), load_sandbox(paywire_stripe.STRIPE)
    assert first.credentials["secret_key"] != second.credentials["secret_key"]
    assert first.credentials["secret_key"].startswith("sk_test_")


@pytest.mark.parametrize("url", ["/shop/back", "https:///back", "https://shop.example/a b",
                                 "https://shop.example/\nx", "javascript:alert(1)", "data:text/html,x",
                                 "VBScript:x", "", 42])
def test_a_configured_return_url_is_checked_as_a_per_call_one_is(gateway_at: Any, server: Any, url: Any) -> None:
    """A bad default would reach Stripe only after an operation falling back on it was recorded."""
    gateway = gateway_at(server.url, options={"return_url": url})
    with pytest.raises(ConfigurationError, match="option return_url is not an absolute URL") as refused:
        gateway.method("stripe").commands
    assert not isinstance(url, str) or not url or url not in str(refused.value)


@pytest.mark.parametrize("url", ["https://shop.example/checkout/return", "myapp://return"])
def test_a_configured_return_url_a_buyer_can_come_back_to_is_taken(gateway_at: Any, server: Any, url: str) -> None:
    assert "sale" in gateway_at(server.url, options={"return_url": url}).method("stripe").commands
