"""The other documents' samples run as written: docs/ledger.md's (against Stripe's emulator,
configured through a paywire.toml as a shop's would be, its printed result what the code gives),
the Stripe plugin README's (Stripe's own SDK on the emulator), and the README's `pay` function
for each outcome it tells apart."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paywire.plugins import default_plugins
from paywire.testing.emulator import EmulatorServer
from paywire.testing.sandbox import Sandbox, load_sandbox

ROOT = Path(__file__).resolve().parents[2]


def python_blocks(document: str) -> list[str]:
    return re.findall(r"```python\n(.*?)```", (ROOT / document).read_text(), re.DOTALL)


@pytest.fixture
def stripe() -> Iterator[tuple[Sandbox, str]]:
    pytest.importorskip("paywire_stripe", reason="the samples use Stripe: installed in the all session")
    sandbox = load_sandbox(default_plugins().gateway("stripe"))
    with EmulatorServer(sandbox.app) as server:
        yield sandbox, server.url


def test_the_ledger_guide_samples_run_and_show_what_they_print(
        stripe: tuple[Sandbox, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    sandbox, url = stripe
    monkeypatch.chdir(tmp_path)
    (tmp_path / "paywire.toml").write_text(f'[methods.stripe]\nenvironment = "sandbox"\nbase_url = "{url}"\n')
    for name, value in sandbox.credentials.items():
        monkeypatch.setenv(f"PAYWIRE_STRIPE_{name.upper()}", value)
    service_sample, endpoint_sample = python_blocks("docs/ledger.md")
    namespace: dict[str, Any] = {"__name__": "ledger_guide"}
    exec(compile(service_sample, "docs/ledger.md sample 0", "exec"), namespace)
    (shown, printed), = re.findall(r"^(\S.*)\n# (.*)$", service_sample, re.MULTILINE)
    assert eval(shown, namespace) == eval(printed, namespace)
    exec(compile(endpoint_sample, "docs/ledger.md sample 1", "exec"), namespace)
    assert callable(namespace["asgi_app"]) and callable(namespace["wsgi_app"])
    namespace["service"].ledger.close()


def test_the_stripe_readme_sample_runs_with_stripe_s_sdk() -> None:
    pytest.importorskip("stripe", reason="Stripe's SDK is a test tool of the Stripe plugin")
    (sample,) = python_blocks("plugins/stripe/README.md")
    exec(compile(sample, "plugins/stripe/README.md", "exec"), {"__name__": "stripe_readme"})


def test_the_readme_pay_function_tells_each_outcome_apart(stripe: tuple[Sandbox, str], tmp_path: Path) -> None:
    from paywire import Gateway, Payment, PaymentService, SQLiteLedger

    sandbox, url = stripe
    (sample,) = [block for block in python_blocks("README.md") if "def pay(" in block]
    namespace: dict[str, Any] = {"__name__": "readme_pay"}
    exec(compile(sample, "README.md pay", "exec"), namespace)
    pay = namespace["pay"]
    service = PaymentService(Gateway([sandbox.method("stripe", url)]), SQLiteLedger(str(tmp_path / "paywire.db")))
    try:
        status, payment_id = pay(service, "A-1", sandbox.sources["ok"])
        assert status == "ok" and isinstance(service.get_payment(payment_id), Payment)
        assert pay(service, "A-2", sandbox.sources["decline"]) == ("declined", "generic_decline")
        status, secret = pay(service, "A-3", sandbox.sources["buyer_action"])  # no return_url: Stripe.js acts
        assert status == "sdk" and secret and secret.startswith("pi_") and "_secret_" in secret
        waiting = service.list_payments(order_id="A-3")[0]
        assert waiting.action is not None and waiting.action.client_secret is None  # never stored
    finally:
        service.ledger.close()


@pytest.mark.parametrize(("document", "plugin"), [
    ("README.md", "paywire_stripe"), ("plugins/stripe/README.md", "paywire_stripe"),
    ("plugins/paypal/README.md", "paywire_paypal"), ("plugins/braintree/README.md", "paywire_braintree"),
])
def test_the_configuration_samples_load(document: str, plugin: str, tmp_path: Path) -> None:
    """Every key of a document's paywire.toml is one the configuration checks take, every value one
    they allow (a misspelt key or option is refused when it loads)."""
    from paywire import Gateway

    pytest.importorskip(plugin, reason="the sample configures this provider: installed in the all session")
    blocks = re.findall(r"```toml\n(.*?)```", (ROOT / document).read_text(), re.DOTALL)
    assert blocks
    for index, block in enumerate(blocks):
        path = tmp_path / f"sample-{index}.toml"
        path.write_text(block)
        gateway = Gateway.from_config(str(path))
        for code in re.findall(r"^\[methods\.([\w-]+)\]$", block, re.MULTILINE):
            assert gateway.method(code).code == code
