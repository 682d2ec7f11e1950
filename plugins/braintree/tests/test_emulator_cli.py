"""`python -m paywire_braintree.emulator`: its options are listed by --help, the key pair and
merchant id it accepts are printed at start, and a gateway configured with them pays through it."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator

import pytest

import paywire_braintree
from paywire import Gateway, Money, Plugins, ProviderState, Subject

pytestmark = pytest.mark.slow  # spawns the emulator's process


def test_help_lists_every_option_before_anything_else() -> None:
    shown = subprocess.run([sys.executable, "-m", "paywire_braintree.emulator", "--help"], capture_output=True,
                           text=True, timeout=60, check=True).stdout
    for option in ("--public-key", "--private-key", "--merchant-id", "--settlement", "--host", "--port",
                   "--certfile", "--webhook-url"):
        assert option in shown, option
    assert shown.startswith("usage:") and "private key" not in shown.split("options:")[0]


@pytest.fixture
def process() -> Iterator[tuple[subprocess.Popen[str], str, str]]:
    child = subprocess.Popen([sys.executable, "-m", "paywire_braintree.emulator", "--port", "0",
                              "--public-key", "cli_public", "--private-key", "cli_private_key"],
                             stdout=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        keys, listening = child.stdout.readline(), child.stdout.readline()
        yield child, keys, listening.rsplit(" ", 1)[-1].strip()
    finally:
        child.terminate()
        child.wait(10)


def test_it_prints_what_it_accepts_and_a_gateway_pays_through_it(
    process: tuple[subprocess.Popen[str], str, str]
) -> None:
    _, keys, url = process
    assert "public key cli_public" in keys and "private key cli_private_key" in keys and "merchant id" in keys
    plugins = Plugins()
    plugins.register(paywire_braintree)
    method = {"provider": "braintree", "environment": "sandbox", "base_url": url,
              "credentials": {"public_key": "cli_public", "private_key": "cli_private_key"}}
    with Gateway.from_config({"methods": {"braintree": method}}, plugins=plugins) as gateway:
        sale = gateway.execute("braintree", "sale", Subject(amount=Money.of("5.00", "USD"), source="fake-valid-nonce",
                                                            idempotency_key="cli-sale"))
    assert (sale.state, sale.amount) == (ProviderState.CAPTURED, Money.of("5.00", "USD"))
