"""Configuration as a user writes it: every mistake is one line naming the setting and what is
allowed (with the closest known key for a typo); environment overrides work without a file."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import attrs
import pytest
from hypothesis import given
from hypothesis import strategies as st

from paywire import ConfigurationError, Gateway, MethodConfig, Money, Plugins, Subject, UnsupportedOperation
from paywire.plugins import PluginWarning
from paywire.subject import Address, Order
from tests.core.fake_gateway import FAKE, FakePlugin


@pytest.fixture
def plugins() -> Plugins:
    plugins = Plugins()
    plugins.register(FakePlugin(), "fake")
    return plugins


def load(tmp_path: Path, plugins: Plugins, text: str) -> Gateway:
    path = tmp_path / "paywire.toml"
    path.write_text(text)
    return Gateway.from_config(path, plugins=plugins)


@pytest.mark.parametrize(("toml", "message"), [
    ('[paywire]\nledgr = "sqlite:///x.db"', "unknown setting 'ledgr' in [paywire]; did you mean 'ledger'?"),
    ("[methods.fake]\ntimeout = { conect = 5 }", "unknown setting 'conect' in [methods.fake.timeout]; did you mean 'connect'?"),
    ("[methods.fake]\ntitel = 'Card'", "unknown setting 'titel' in [methods.fake]; did you mean 'title'?"),
    ("[methods.fake]\ncan_refnd = false", "did you mean 'can_refund'?"),
    ("[methods.fake.capabilities]\nvoid_ = false", "did you mean 'void'?"),
    ("[method.fake]\n", "unknown setting 'method' in the configuration's top level; did you mean 'methods'?"),
])
def test_an_unknown_key_anywhere_names_it_and_the_closest_known_one(tmp_path, plugins, toml, message) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load(tmp_path, plugins, toml)
    assert message in str(caught.value)


def test_an_unknown_provider_option_suggests_the_declared_one(tmp_path) -> None:
    plugins = Plugins()

    class WithOptions:
        from paywire import hookimpl

        @hookimpl
        def register_gateways(self, register) -> None:
            register(FAKE._replace(options=("return_url", "webhook_tolerance")))

    plugins.register(WithOptions(), "fake")
    with pytest.raises(ConfigurationError, match=r"unknown setting 'retrun_url' in \[methods.fake.options\].*"
                                                 r"did you mean 'return_url'\?"):
        load(tmp_path, plugins, "[methods.fake.options]\nretrun_url = 'https://shop.example/back'")
    assert load(tmp_path, plugins, "[methods.fake.options]\nreturn_url = 'https://x.example'").methods.get("fake")


@pytest.mark.parametrize(("toml", "message"), [
    ("timeout = 5", "method 'fake': timeout = 5 is not allowed; write a table of seconds: timeout = { connect = 5, read = 30 }"),
    ("timeout = { read = -1 }", "timeout.read = -1 is not allowed; write a positive number of seconds"),
    ("timeout = { connect = 5, read = inf }", "timeout.read = inf is not allowed; write a positive number of "
                                              "seconds, at most 86400 (a day)"),
    ("timeout = { read = 1e300 }", "timeout.read = 1e+300 is not allowed"),
    ("timeout = { connect = nan }", "timeout.connect = nan is not allowed"),
    ('min_total = "abc"', "min_total = 'abc' is not allowed; write the order total as a decimal string such as '10.00'"),
    ('currencies = ["EURO"]', "currencies = 'EURO' is not allowed; write ISO 4217 currency codes such as 'EUR'"),
    ('currencies = ["eur"]', "(codes are upper case: 'EUR')"),
    ('currencies = "EUR"', "write a list of ISO 4217 currency codes such as ['EUR']"),
    ('countries = ["XX"]', "countries = 'XX' is not allowed; write ISO 3166-1 alpha-2 country codes such as 'DE'"),
    ('environment = "production"', "environment = 'production' is not allowed; use one of 'sandbox', 'live'"),
    ('payment_action = "capture"', "payment_action = 'capture' is not allowed; use one of 'authorize', 'authorize_capture'"),
    ('active = "yes"', "active = 'yes' is not allowed; write true or false"),
    ('sort_order = "1"', "sort_order = '1' is not allowed; write a whole number"),
    ('min_total = "10"\nmax_total = "5"', "min_total 10 is above max_total 5"),
    ('credentials = "fk_live_TopSecretKey123"', "credentials = <a str, not shown> is not allowed; write a table"),
    ('credentials = { api_key = ["fk_live_TopSecretKey123"] }',
     "credentials.api_key = <a list, not shown> is not allowed; write a non-empty string, or better leave it out "
     "of the file and set PAYWIRE_FAKE_API_KEY"),
    ('base_url = 42', "base_url = 42 is not allowed"),
    # An item that is no code, and no hashable value either (it was a TypeError).
    ('currencies = [["EUR"]]', "currencies = ['EUR'] is not allowed; write ISO 4217 currency codes such as 'EUR'"),
    ('countries = [{ code = "DE" }]', "countries = {'code': 'DE'} is not allowed; write ISO 3166-1 alpha-2"),
])
def test_a_wrong_type_or_value_is_one_line_saying_what_is_allowed(tmp_path, plugins, toml, message) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load(tmp_path, plugins, f"[methods.fake]\n{toml}\n")
    text = str(caught.value)
    assert message in text and "\n" not in text and "Attribute" not in text and "TopSecretKey" not in text


def test_methods_built_in_code_are_checked_the_same_way() -> None:
    with pytest.raises(ConfigurationError, match="environment = 'production' is not allowed"):
        MethodConfig(code="x", environment="production")
    with pytest.raises(ConfigurationError, match="codes are upper case: 'DE'"):
        MethodConfig(code="x", countries=["de"])
    # Taken, these failed every availability check (decimal.InvalidOperation) or every request.
    with pytest.raises(ConfigurationError, match="min_total = 'ten euros' is not allowed; write the order total"):
        MethodConfig(code="x", min_total="ten euros")
    with pytest.raises(ConfigurationError, match="max_total = '-5' is not allowed"):
        MethodConfig(code="x", max_total=-5)
    with pytest.raises(ConfigurationError, match="read_timeout = inf is not allowed"):
        MethodConfig(code="x", read_timeout=float("inf"))
    assert MethodConfig(code="x", min_total=10, max_total="99.50", read_timeout=86400).limits("EUR") == (
        Money.of("10", "EUR"), Money.of("99.50", "EUR"))


def test_limits_built_in_code_that_no_total_meets_are_refused_as_from_a_file(tmp_path, plugins) -> None:
    """`min_total` above `max_total` offered the method for no total at all; from a file it was
    refused, built in code (or changed with attrs.evolve) it was taken."""
    with pytest.raises(ConfigurationError, match=r"^method 'x': min_total 10 is above max_total 5, so no order total could use it; "
                                                 r"lower min_total or raise max_total$"):
        MethodConfig(code="x", min_total="10", max_total="5")
    with pytest.raises(ConfigurationError, match=r"min_total 500\.01 is above max_total 500, "):
        attrs.evolve(MethodConfig(code="x", max_total=500), min_total="500.01")
    assert MethodConfig(code="x", min_total="0", max_total="0.00").limits("EUR") == (Money.zero("EUR"),) * 2


@given(low=st.decimals(min_value=0, max_value=10**6, places=2), high=st.decimals(min_value=0, max_value=10**6, places=2))
def test_limits_are_refused_alike_from_a_file_and_from_code(low: Decimal, high: Decimal) -> None:
    """One check for both ways of configuring a method: the same limits are taken, or refused
    with the same message, whichever way they come; taken, some total is available."""
    def outcome(build: Callable[[], MethodConfig]) -> str:
        try:
            build()
        except ConfigurationError as error:
            return str(error)
        return "taken"

    from_file = outcome(lambda: MethodConfig.from_mapping("x", {"min_total": str(low), "max_total": str(high)}))
    assert from_file == outcome(lambda: MethodConfig(code="x", min_total=str(low), max_total=str(high)))
    assert (from_file == "taken") == (low <= high), from_file
    if low <= high:
        method = MethodConfig(code="x", min_total=str(low), max_total=str(high))
        assert method.available_for(country=None, amount=Money.of(str(low), "EUR"))


def test_a_provider_that_is_not_installed_fails_when_the_configuration_loads(tmp_path, plugins) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load(tmp_path, plugins, "[methods.cards]\nprovider = 'braintree'\n")
    assert "method 'cards' names provider 'braintree', which is not installed; install it: pip install " \
           "paywire-braintree" in str(caught.value)


def test_environment_overrides_apply_without_a_configuration_file(monkeypatch, plugins) -> None:
    monkeypatch.setenv("PAYWIRE_FAKE_BASE_URL", "http://127.0.0.1:4242")
    monkeypatch.setenv("PAYWIRE_FAKE_ENVIRONMENT", "sandbox")
    monkeypatch.delenv("PAYWIRE_CONFIG", raising=False)
    monkeypatch.chdir(Path(__file__).parent)  # no paywire.toml here
    method = Gateway.from_config(plugins=plugins).method("fake")
    assert (method.settings.base_url, method.config.environment) == ("http://127.0.0.1:4242", "sandbox")
    monkeypatch.setenv("PAYWIRE_FAKE_ENVIRONMENT", "prod")
    with pytest.raises(ConfigurationError, match=r"environment \(from PAYWIRE_FAKE_ENVIRONMENT\) = 'prod'"):
        Gateway.from_config(plugins=plugins)


@pytest.mark.parametrize("value", ["fake_nope", "fake_nope other_nope", "fake_nope,  other_nope"])
def test_plugins_allow_list_separated_by_commas_or_spaces_warns_about_names_not_installed(monkeypatch, value) -> None:
    monkeypatch.setenv("PAYWIRE_PLUGINS", value)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        Plugins().load_entry_points()
    names = sorted(str(w.message).split("'")[1] for w in caught if issubclass(w.category, PluginWarning))
    assert names == sorted(value.replace(",", " ").split())


def test_plugins_allow_list_separated_by_spaces_loads_each_name(monkeypatch) -> None:
    from importlib import metadata

    installed = sorted(ep.name for ep in metadata.entry_points(group="paywire"))[:2]
    if len(installed) < 2:
        pytest.skip("needs two installed paywire plugins (package(core) has none; the all session has several)")
    monkeypatch.setenv("PAYWIRE_PLUGINS", " ".join(installed))
    assert sorted(info.name for info in Plugins().load_entry_points().loaded) == installed


# -- availability is enforced, not only shown ---------------------------------------------------
@pytest.mark.parametrize(("settings", "subject", "why"), [
    ({"currencies": ["USD"]}, Subject(amount=Money.of("5.00", "EUR"), source="tok"), "does not take EUR"),
    ({"min_total": "10.00"}, Subject(amount=Money.of("5.00", "EUR"), source="tok"), "below its min_total 10.00"),
    ({"max_total": "100"}, Subject(amount=Money.of("100.01", "EUR"), source="tok"), "above its max_total 100"),
    ({"countries": ["DE"]}, Subject(amount=Money.of("5.00", "EUR"), source="tok",
                                     order=Order(id="A-1", billing=Address(country="FR"))), "not offered in FR"),
])
def test_an_operation_outside_the_methods_availability_is_refused_before_sending(echo, plugins, settings, subject,
                                                                                  why) -> None:
    app, url = echo
    config = MethodConfig.from_mapping("fake", {"base_url": url, "credentials": {"api_key": "k_123456"}, **settings})
    gateway = Gateway([config], plugins=plugins)
    with pytest.raises(UnsupportedOperation, match=why) as caught:
        gateway.execute("fake", "sale", subject)
    assert caught.value.code == "method_unavailable" and app.seen == []


@pytest.mark.parametrize("settings", [{"currencies": ["EUR"]}, {"max_total": "100"}])
def test_an_order_total_in_another_currency_than_the_payment_is_refused_not_checked_instead(echo, plugins, tmp_path,
                                                                                            settings) -> None:
    """The limits apply to the money charged: an order total of 50.00 EUR let a method offered
    only in EUR, or up to 100, send a payment of 5000.00 USD."""
    from paywire import InvalidRequest, PaymentService, SQLiteLedger

    app, url = echo
    config = MethodConfig.from_mapping("fake", {"base_url": url, "credentials": {"api_key": "k_123456"}, **settings})
    gateway = Gateway([config], plugins=plugins)
    order = Order(id="A-1", amount=Money.of("50.00", "EUR"))
    with pytest.raises(InvalidRequest, match=r"order total 50\.00 EUR is not in the currency of the payment, USD"):
        gateway.execute("fake", "sale", Subject(amount=Money.of("5000.00", "USD"), source="tok", order=order))
    service = PaymentService(gateway, SQLiteLedger(str(tmp_path / "ledger.db")))
    with pytest.raises(InvalidRequest) as caught:
        service.sale("fake", Money.of("5000.00", "USD"), source="tok", order=order)
    assert (caught.value.param, caught.value.code) == ("order.amount", "currency_mismatch")
    assert service.list_payments() == [] and app.seen == []
    assert service.sale("fake", Money.of("50.00", "EUR"), source="tok", order=order).state == "captured"
    service.ledger.close()


def test_the_payment_service_records_nothing_for_an_unavailable_method(echo, plugins, tmp_path) -> None:
    from paywire import PaymentService, SQLiteLedger

    app, url = echo
    config = MethodConfig.from_mapping("fake", {"base_url": url, "credentials": {"api_key": "k_123456"},
                                                "min_total": "10.00", "countries": ["DE"]})
    service = PaymentService(Gateway([config], plugins=plugins), SQLiteLedger(str(tmp_path / "ledger.db")))
    with pytest.raises(UnsupportedOperation, match=r"below its min_total 10\.00; nothing was sent"):
        service.sale("fake", Money.of("9.99", "EUR"), source="tok", order_id="A-1")
    with pytest.raises(UnsupportedOperation, match="not offered in FR"):
        service.sale("fake", Money.of("20.00", "EUR"), source="tok",
                     order=Order(id="A-2", amount=Money.of("20.00", "EUR"), billing=Address(country="FR")))
    assert service.list_payments() == [] and service.list_transactions() == [] and app.seen == []
    assert service.sale("fake", Money.of("10.00", "EUR"), source="tok", order_id="A-3").state == "captured"
    service.ledger.close()


@pytest.mark.parametrize(("context", "message"), [
    ({"currency": "eur"}, "currency codes are upper case: 'EUR'"),
    ({"country": "de"}, "did you mean 'DE'?"),
    ({"country": "XX"}, "country 'XX' is not an ISO 3166-1 alpha-2 code"),
])
def test_a_checkout_context_in_the_wrong_case_is_refused_not_matched_against_nothing(plugins, context, message) -> None:
    from paywire import InvalidRequest

    with pytest.raises(InvalidRequest, match=message):
        Gateway(plugins=plugins).available_methods(**context)


@pytest.mark.parametrize(("context", "param", "message"), [
    ({"amount": 19.99}, "amount", "must be Money, not float 19.99"),
    ({"amount": Decimal("19.99"), "currency": "EUR"}, "amount", "must be Money, not Decimal"),
    ({"amount": Money.of("19.99", "EUR"), "currency": "USD"}, "currency", "is in EUR but currency USD was asked for"),
])
def test_a_checkout_amount_that_is_no_money_or_in_another_currency_is_an_invalid_request(plugins, context, param,
                                                                                        message) -> None:
    """A float amount failed with an AttributeError; two currencies were a ConfigurationError,
    though nothing in the configuration was wrong."""
    from paywire import InvalidRequest

    with pytest.raises(InvalidRequest, match=message) as caught:
        Gateway(plugins=plugins).available_methods(**context)
    assert caught.value.param == param


def test_a_credential_written_among_a_methods_options_shows_masked_in_every_repr(tmp_path: Path,
                                                                                 plugins: Plugins) -> None:
    """`[methods.x.options]` is no place for a secret, but one written there by mistake (a key
    meant for `[methods.x.credentials]`) must not show in the reprs a log or a traceback prints."""
    gateway = load(tmp_path, plugins, """
        [methods.fake]
        environment = "sandbox"
        base_url = "https://api.fake.test"
        [methods.fake.options]
        webhook_secret = "opt-webhook-s3cret-55e1"
        api_key = "opt-api-key-91d0c7"
        region = "eu"
    """)
    method = gateway.method("fake")
    for shown in (repr(method.config), str(method.config), repr(method.settings), repr(attrs.evolve(method.settings))):
        assert "opt-webhook-s3cret-55e1" not in shown and "opt-api-key-91d0c7" not in shown, shown
        assert "'region': 'eu'" in shown  # what is no secret still shows
    assert method.settings.option("api_key") == "opt-api-key-91d0c7"  # the plugin still reads it


@pytest.mark.parametrize("value", ["'1h'", "-1", "inf", "true"])
def test_buyer_wait_is_a_number_of_seconds(tmp_path, plugins, value) -> None:
    with pytest.raises(ConfigurationError, match=r"\[paywire\] buyer_wait must be a number of seconds"):
        load(tmp_path, plugins, f"[paywire]\nbuyer_wait = {value}\n[methods.fake]\n")


def test_the_payment_service_waits_for_buyers_as_configured_unless_told(tmp_path, plugins) -> None:
    from paywire import PaymentService, SQLiteLedger

    gateway = load(tmp_path, plugins, "[paywire]\nbuyer_wait = 600\n[methods.fake]\n")
    with SQLiteLedger(str(tmp_path / "ledger.db")) as ledger:
        assert PaymentService(gateway, ledger).buyer_wait == 600.0
        assert PaymentService(gateway, ledger, buyer_wait=0).buyer_wait == 0.0
        assert PaymentService(load(tmp_path, plugins, "[methods.fake]\n"), ledger).buyer_wait == 3600.0
