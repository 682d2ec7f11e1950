"""Configuration, method availability and the gateway facade."""

from __future__ import annotations

from pathlib import Path

import pytest

from paywire import (
    ConfigurationError,
    Gateway,
    InvalidRequest,
    MethodConfig,
    Money,
    PaymentMethodList,
    Plugins,
    Subject,
    UnsupportedOperation,
)
from tests.core.fake_gateway import FakePlugin


@pytest.fixture
def plugins() -> Plugins:
    plugins = Plugins()
    plugins.register(FakePlugin(), "fake")
    return plugins


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "paywire.toml"
    path.write_text(text)
    return path


def test_from_toml_with_secret_from_the_environment(tmp_path, echo, plugins, monkeypatch) -> None:
    _app, url = echo
    monkeypatch.setenv("PAYWIRE_CARDS_API_KEY", "env-api-key-1")
    config = write(tmp_path, f"""
[methods.cards]
provider = "fake"
title = "Cards"
base_url = "{url}"
can_void = false
timeout = {{ connect = 1.5, read = 4 }}
""")
    gateway = Gateway.from_config(config, plugins=plugins)
    method = gateway.method("cards")
    assert method.settings.timeout.connect == 1.5 and not method.capabilities.void
    result = gateway.execute("cards", "sale", Subject(amount=Money.of("5.00", "EUR"), source="tok"))
    assert result.raw["headers"]["authorization"] == "Bearer env-api-key-1"
    assert "env-api-key-1" not in repr(method.settings)


def test_missing_secret_names_the_variable(echo, plugins, monkeypatch) -> None:
    _, url = echo
    monkeypatch.delenv("PAYWIRE_FAKE_API_KEY", raising=False)
    gateway = Gateway([MethodConfig(code="fake", base_url=url)], plugins=plugins)
    with pytest.raises(ConfigurationError, match="PAYWIRE_FAKE_API_KEY"):
        gateway.execute("fake", "sale", Subject(amount=Money.of("1", "EUR"), source="tok"))


def test_unsupported_currency_is_refused_before_sending(echo, plugins) -> None:
    app, url = echo
    gateway = Gateway([MethodConfig(code="fake", base_url=url, credentials={"api_key": "k-123456"})], plugins=plugins)
    with pytest.raises(InvalidRequest, match="does not accept KWD"):
        gateway.execute("fake", "sale", Subject(amount=Money.of("1.000", "KWD"), source="tok"))
    assert app.seen == []


def test_unknown_command_names_what_is_offered(echo, plugins) -> None:
    _, url = echo
    gateway = Gateway([MethodConfig(code="fake", base_url=url, credentials={"api_key": "k-123456"})], plugins=plugins)
    with pytest.raises(UnsupportedOperation, match="offers: sale"):
        gateway.execute("fake", "refund", Subject())


def test_live_environment_refuses_loopback_and_plain_http(plugins) -> None:
    gateway = Gateway([MethodConfig(code="fake", environment="live", base_url="http://127.0.0.1:1")], plugins=plugins)
    with pytest.raises(ConfigurationError, match="live"):
        gateway.method("fake")
    ok = Gateway([MethodConfig(code="fake", environment="live")], plugins=plugins)
    assert ok.method("fake").settings.base_url == "https://api.fake.example"
    no_sandbox = Gateway([MethodConfig(code="fake")], plugins=plugins)
    with pytest.raises(ConfigurationError, match="no sandbox endpoint"):
        no_sandbox.method("fake")


def test_bad_configuration_is_a_clear_error(tmp_path, plugins) -> None:
    with pytest.raises(ConfigurationError, match="unknown setting 'colour'"):
        Gateway.from_config({"methods": {"x": {"provider": "fake", "colour": "red"}}}, plugins=plugins)
    with pytest.raises(ConfigurationError, match="not valid TOML"):
        Gateway.from_config(write(tmp_path, "[methods"), plugins=plugins)
    with pytest.raises(ConfigurationError, match="does not exist"):
        Gateway.from_config(tmp_path / "missing.toml", plugins=plugins)
    with pytest.raises(ConfigurationError, match="payment_action"):
        Gateway.from_config({"methods": {"x": {"payment_action": "steal"}}}, plugins=plugins)
    with pytest.raises(ConfigurationError, match=r"min_total = 1\.5 is not allowed; write the order total as a decimal"):
        MethodConfig.from_mapping("x", {"min_total": 1.5})
    with pytest.raises(ConfigurationError, match="unknown payment method 'nope'"):
        Gateway([MethodConfig(code="fake")], plugins=plugins).method("nope")


def test_environment_overrides_endpoint(monkeypatch, plugins) -> None:
    monkeypatch.setenv("PAYWIRE_FAKE_BASE_URL", "http://127.0.0.1:4242")
    gateway = Gateway.from_config({"methods": {"fake": {}}}, plugins=plugins)
    assert gateway.method("fake").settings.base_url == "http://127.0.0.1:4242"


def test_payment_method_list_in_sort_order_for_a_checkout_context() -> None:
    methods = PaymentMethodList([
        MethodConfig(code="b", sort_order=2, countries=["DE", "AT"], currencies=["EUR"]),
        MethodConfig(code="a", sort_order=1, min_total="10.00", max_total="500"),
        MethodConfig(code="c", sort_order=0, active=False),
        MethodConfig(code="d", sort_order=3, provider="fake"),
    ])
    eur = Money.of("20.00", "EUR")
    assert [m.code for m in methods.available(country="DE", amount=eur)] == ["a", "b", "d"]
    assert [m.code for m in methods.available(country="FR", amount=eur)] == ["a", "d"]
    assert [m.code for m in methods.available(country="DE", amount=Money.of("5.00", "EUR"))] == ["b", "d"]
    assert [m.code for m in methods.available(amount=Money.of("20.000", "KWD"), supported={"fake": frozenset({"EUR"})})] == ["a"]
    with pytest.raises(ConfigurationError, match="configured twice"):
        PaymentMethodList([MethodConfig(code="a"), MethodConfig(code="a")])


def test_gateway_without_configuration_offers_every_installed_provider(plugins) -> None:
    gateway = Gateway(plugins=plugins)
    assert [m.code for m in gateway.methods] == ["fake"]
    assert [m.code for m in gateway.available_methods(currency="KWD")] == []
    assert [m.code for m in gateway.available_methods(currency="EUR")] == ["fake"]
