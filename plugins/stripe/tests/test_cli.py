"""`python -m paywire_stripe.emulator`: a separate process serving the same emulator."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import stripe
import trustme

from paywire.testing.emulator import failed_starts


def _start(*args: str, env: dict[str, str] | None = None) -> tuple[subprocess.Popen[str], str, list[str]]:
    process = subprocess.Popen(
        [sys.executable, "-m", "paywire_stripe.emulator", "--host", "127.0.0.1", "--port", "0", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, **(env or {})},
    )
    assert process.stdout is not None
    lines = []
    for _ in range(5):
        line = process.stdout.readline()
        lines.append(line)
        found = re.search(r"listening on (\S+)", line)
        if found:
            return process, found.group(1), lines
    process.kill()
    raise AssertionError(f"the emulator did not start: {lines}")


@pytest.fixture
def stop() -> Iterator[list[subprocess.Popen[str]]]:
    processes: list[subprocess.Popen[str]] = []
    yield processes
    for process in processes:
        process.terminate()
        process.wait(timeout=5)


def test_cli_serves_http_and_prints_a_generated_webhook_secret(stop: list[Any], sdk_payment: Any) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRIPE_EMULATOR_")}
    process, url, lines = _start(env=env)
    stop.append(process)
    assert any(re.search(r"webhook signing secret is whsec_\w+", line) for line in lines)
    client = stripe.StripeClient("sk_test_cli", base_addresses={"api": url}, max_network_retries=0)
    intent = sdk_payment(client, "pm_card_visa", payment_method_types=["card"])
    assert intent.status == "succeeded"


def test_cli_serves_https_with_a_configured_key(
    stop: list[Any], tmp_path: Path, monkeypatch: Any, sdk_payment: Any
) -> None:
    ca = trustme.CA()
    cert = ca.issue_cert("127.0.0.1")
    cert.cert_chain_pems[0].write_to_path(str(tmp_path / "cert.pem"))
    cert.private_key_pem.write_to_path(str(tmp_path / "key.pem"))
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    process, url, lines = _start(
        "--certfile",
        str(tmp_path / "cert.pem"),
        "--keyfile",
        str(tmp_path / "key.pem"),
        env={"STRIPE_EMULATOR_API_KEY": "sk_test_only", "STRIPE_EMULATOR_WEBHOOK_SECRET": "whsec_x"},
    )
    stop.append(process)
    assert url.startswith("https://")
    assert not any("whsec_x" in line for line in lines)
    monkeypatch.setattr(stripe, "ca_bundle_path", str(tmp_path / "ca.pem"))
    with pytest.raises(stripe.AuthenticationError):
        stripe.StripeClient("sk_test_other", base_addresses={"api": url}, max_network_retries=0).v1.customers.list()
    client = stripe.StripeClient("sk_test_only", base_addresses={"api": url}, max_network_retries=0)
    intent = sdk_payment(client, "pm_card_threeDSecure2Required", payment_method_types=["card"])
    assert intent.next_action.type == "use_stripe_sdk"  # confirmed without a return_url
    assert intent.next_action.use_stripe_sdk["stripe_js"].startswith(url + "/redirect/authenticate/")


def test_cli_help_is_answered_before_anything_is_printed() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("STRIPE_EMULATOR_")}
    result = subprocess.run([sys.executable, "-m", "paywire_stripe.emulator", "--help"], capture_output=True,
                            text=True, timeout=60, env=env)
    assert result.returncode == 0 and result.stdout.startswith("usage: python -m paywire_stripe.emulator")
    assert "whsec_" not in result.stdout and "STRIPE_EMULATOR_WEBHOOK_SECRET" in result.stdout
    for option in ("--host", "--port", "--certfile", "--keyfile", "--webhook-url"):
        assert option in result.stdout


def test_cli_a_port_in_use_or_a_missing_certificate_is_one_line() -> None:
    for message, result in failed_starts("paywire_stripe.emulator"):
        assert result.returncode == 1 and message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
