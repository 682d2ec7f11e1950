"""Plugin discovery through real entry points (distributions written into a sys.path folder)."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from paywire import ConfigurationError, PluginError, Plugins
from paywire.plugins import PluginWarning
from paywire.security import Secret

GOOD = '''
from paywire import Capabilities, CommandPool, GatewayDefinition, hookimpl

@hookimpl
def register_gateways(register):
    register(GatewayDefinition(code="{code}", title="{code}", build=lambda s: CommandPool({{}}),
                               endpoints={{"sandbox": "https://sandbox.example"}}))
'''


def install(site: Path, dist: str, name: str, module: str, source: str) -> None:
    """Write a minimal installed distribution: a module and a dist-info with the entry point."""
    (site / f"{module}.py").write_text(textwrap.dedent(source))
    info = site / f"{dist.replace('-', '_')}-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {dist}\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(f"[paywire]\n{name} = {module}\n")


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.delenv("PAYWIRE_PLUGINS", raising=False)
    monkeypatch.delenv("PAYWIRE_DISABLE_PLUGINS", raising=False)
    return tmp_path


def test_broken_plugins_are_reported_by_name_and_distribution_while_others_load(site: Path) -> None:
    install(site, "pw-good", "zz_good", "zz_good_mod", GOOD.format(code="zz_good"))
    install(site, "pw-crashes", "zz_crash", "zz_crash_mod", "raise RuntimeError('boom at import')")
    install(site, "pw-badsig", "zz_badsig", "zz_badsig_mod", """
        from paywire import hookimpl

        @hookimpl
        def get_secret(gateway, provider, name, unexpected_argument):
            return None
    """)
    install(site, "pw-unknown", "zz_unknown", "zz_unknown_mod", """
        from paywire import hookimpl

        @hookimpl
        def register_gatewayz(register):
            pass
    """)
    plugins = Plugins().load_entry_points()
    failures = {failure.name: failure for failure in plugins.failures}
    assert {"zz_crash", "zz_badsig", "zz_unknown"} <= set(failures)
    assert failures["zz_crash"].distribution == "pw-crashes" and "boom at import" in failures["zz_crash"].reason
    assert "unexpected_argument" in failures["zz_badsig"].reason
    assert "register_gatewayz" in failures["zz_unknown"].reason
    assert "zz_good" in plugins.gateways()
    assert plugins.owner("zz_good").distribution == "pw-good"  # type: ignore[union-attr]


def test_allow_and_deny_lists(site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    install(site, "pw-one", "zz_one", "zz_one_mod", GOOD.format(code="zz_one"))
    install(site, "pw-two", "zz_two", "zz_two_mod", GOOD.format(code="zz_two"))
    monkeypatch.setenv("PAYWIRE_PLUGINS", "zz_one")
    assert "zz_two" not in Plugins().load_entry_points().gateways()
    assert "zz_one" in Plugins().load_entry_points().gateways()
    monkeypatch.delenv("PAYWIRE_PLUGINS")
    monkeypatch.setenv("PAYWIRE_DISABLE_PLUGINS", "zz_one, other")
    with pytest.warns(PluginWarning, match="PAYWIRE_DISABLE_PLUGINS names 'other', which is not an installed"):
        gateways = Plugins().load_entry_points().gateways()
    assert "zz_one" not in gateways and "zz_two" in gateways


def test_two_plugins_claiming_one_gateway_code_is_an_error_neither_is_used_and_the_others_load(site: Path) -> None:
    install(site, "pw-a", "zz_a", "zz_a_mod", GOOD.format(code="zz_same"))
    install(site, "pw-b", "zz_b", "zz_b_mod", GOOD.format(code="zz_same"))
    install(site, "pw-good", "zz_good", "zz_good_mod", GOOD.format(code="zz_good"))
    plugins = Plugins().load_entry_points()
    assert "zz_good" in plugins.gateways() and "zz_same" not in plugins.gateways()
    failures = {failure.name: failure for failure in plugins.failures}
    assert {failures["zz_a"].distribution, failures["zz_b"].distribution} == {"pw-a", "pw-b"}
    assert all("'zz_same' is registered by both" in failures[name].reason for name in ("zz_a", "zz_b"))
    with pytest.raises(ConfigurationError, match=r"'zz_same' is registered by both 'zz_.' and 'zz_.'"):
        plugins.gateway("zz_same")


def test_a_plugin_whose_registration_fails_is_reported_and_stops_no_other(site: Path) -> None:
    """Its code imports and matches the hook specifications; registering raises, or hands over
    something that is not a definition (and a definition registered before that is not kept)."""
    install(site, "pw-good", "zz_good", "zz_good_mod", GOOD.format(code="zz_good"))
    install(site, "pw-raises", "zz_raises", "zz_raises_mod", """
        from paywire import hookimpl

        @hookimpl
        def register_gateways(register):
            raise RuntimeError("could not build its definition")
    """)
    install(site, "pw-half", "zz_half", "zz_half_mod", GOOD.format(code="zz_half") + """
@hookimpl
def register_gateways(register):
    register(GatewayDefinition(code="zz_half", title="half", build=lambda s: CommandPool({})))
    register({"code": "zz_dict"})
""")
    plugins = Plugins().load_entry_points()
    assert sorted(code for code in plugins.gateways() if code.startswith("zz_")) == ["zz_good"]
    failures = {failure.name: failure for failure in plugins.failures}
    assert failures["zz_raises"].distribution == "pw-raises"
    assert failures["zz_raises"].reason == "register_gateways raised RuntimeError: could not build its definition"
    assert "takes a GatewayDefinition, not dict" in failures["zz_half"].reason
    with pytest.raises(ConfigurationError, match=r"failed to load \(pw-raises\): register_gateways raised"):
        plugins.gateway("zz_raises")


LEAKY_TEXT = "key sk_live_51Hx9QzLmNoPqRsTuV refused; card 4242 4242 4242 4242; {known}"


def test_a_failure_never_shows_a_credential_or_a_card_number_the_plugins_error_quoted(site: Path) -> None:
    """A plugin's exception may quote what it read (its key, a card number from a fixture, a
    credential paywire holds): the failure, which `paywire plugins` prints and `gateway()` raises
    again, keeps them masked, as every log record and error is."""
    known = Secret("plugin-known-secret-81c4e2")
    text = LEAKY_TEXT.format(known=known.reveal())
    install(site, "pw-leaks", "zz_leaks", "zz_leaks_mod", f"raise RuntimeError({text!r})")
    install(site, "pw-leaks-late", "zz_leaks_late", "zz_leaks_late_mod", f"""
        from paywire import hookimpl

        @hookimpl
        def register_gateways(register):
            raise ValueError({text!r})
    """)
    plugins = Plugins().load_entry_points()
    plugins.gateways()
    failures = {failure.name: failure for failure in plugins.failures}
    assert failures["zz_leaks"].reason.startswith("RuntimeError: key ")
    assert failures["zz_leaks_late"].reason.startswith("register_gateways raised ValueError: key ")
    for failure in (failures["zz_leaks"], failures["zz_leaks_late"]):
        shown = repr(failure)
        assert failure.distribution in ("pw-leaks", "pw-leaks-late")
        for secret in ("sk_live_51Hx9QzLmNoPqRsTuV", "4242 4242 4242 4242", known.reveal()):
            assert secret not in shown, failure.name
    with pytest.raises(ConfigurationError, match="failed to load") as raised:
        plugins.gateway("zz_leaks")
    assert "sk_live_51Hx9QzLmNoPqRsTuV" not in str(raised.value)


def test_loading_twice_registers_once(site: Path) -> None:
    install(site, "pw-once", "zz_once", "zz_once_mod", GOOD.format(code="zz_once"))
    plugins = Plugins().load_entry_points().load_entry_points()
    assert [info.name for info in plugins.loaded].count("zz_once") == 1


def test_unknown_provider_names_what_is_installed() -> None:
    with pytest.raises(ConfigurationError, match="no gateway provider 'nope'"):
        Plugins().gateway("nope")


def test_in_process_registration_is_validated() -> None:
    class Wrong:
        from paywire import hookimpl

        @hookimpl
        def send_transfer(self, transfer, not_a_spec_argument):  # type: ignore[no-untyped-def]
            return None

    plugins = Plugins()
    with pytest.raises(PluginError, match="not_a_spec_argument"):
        plugins.register(Wrong(), "wrong")
    assert plugins.loaded == []



def test_build_and_webhook_given_as_module_function_load_when_first_needed() -> None:
    from paywire import GatewayDefinition, MethodConfig, hookimpl
    from paywire.gateway import Gateway
    from paywire.gateway_definition import load_reference
    from tests.core import fake_gateway

    class Lazy:
        @hookimpl
        def register_gateways(self, register):  # type: ignore[no-untyped-def]
            register(GatewayDefinition(code="lazy", title="Lazy", build="tests.core.fake_gateway:build",
                                       webhook="paywire_no_such_module:build_verifier"))

    plugins = Plugins()
    plugins.register(Lazy(), "lazy")
    definition = plugins.gateway("lazy")
    assert load_reference(definition, definition.build, "build") is fake_gateway.build
    gateway = Gateway([MethodConfig(code="lazy", base_url="http://127.0.0.1:9", credentials={"api_key": "k"})],
                      plugins=plugins)
    assert "sale" in gateway.method("lazy").commands  # built by the named function
    with pytest.raises(PluginError, match="gateway 'lazy': its webhook 'paywire_no_such_module:build_verifier' "
                                         "cannot be loaded"):
        gateway.method("lazy").webhook_verifier()
