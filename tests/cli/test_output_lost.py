"""The command line on a standard output that fails (`/dev/full`: a full disk): what the command
did is still its exit code, one line on standard error says the output is lost, and never a
traceback; a success whose output is lost is 74, neither 0 (a listing silently cut short) nor 70
(a payment made, told as a bug)."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from paywire.ledger import SQLiteLedger
from paywire.testing.emulator import Fault
from paywire_acme.emulator import AcmeEmulator
from tests.cli.test_cli import SCRIPT, SECRETS

pytestmark = pytest.mark.skipif(not os.path.exists("/dev/full"), reason="no /dev/full here to fill stdout with")


@pytest.fixture
def shop(tmp_path: Path, acme: AcmeEmulator) -> Path:
    (tmp_path / "paywire.toml").write_text(f"""
[paywire]
ledger = "sqlite:///{tmp_path / 'ledger.db'}"

[methods.cards]
provider = "acme"
base_url = "{acme.base_url}"
""")
    return tmp_path


def _to_a_full_disk(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    assert SCRIPT
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PAYWIRE_")} | SECRETS
    with open("/dev/full", "w") as full:
        return subprocess.run([SCRIPT, *args], cwd=cwd, env=environment, stdout=full, stderr=subprocess.PIPE,
                              text=True, timeout=120)


def _told(result: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in result.stderr, result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("paywire: standard output could not be written (")


@pytest.mark.parametrize("flags", [(), ("--json",)])
def test_a_sale_made_whose_output_is_lost_is_74_not_a_bug(shop: Path, acme: AcmeEmulator,
                                                          flags: tuple[str, ...]) -> None:
    result = _to_a_full_disk(*flags, "sale", "cards", "5.00", "EUR", "--source", "tok_ok", cwd=shop)
    assert result.returncode == 74, result.stderr
    _told(result)
    assert len(acme.payments) == 1
    listed = _to_a_full_disk("payments", cwd=shop)
    assert listed.returncode == 74, listed.stderr


def test_an_unknown_outcome_whose_json_is_lost_is_still_5(shop: Path, acme: AcmeEmulator) -> None:
    """Its error's JSON could not be written: a traceback and exit 1, "the payment failed", for a
    sale the provider applied."""
    acme.inject(Fault("drop_after", path="payments", method="POST", times=10))
    result = _to_a_full_disk("--json", "sale", "cards", "5.00", "EUR", "--source", "tok_ok", cwd=shop)
    assert result.returncode == 5, result.stderr
    _told(result)
    assert "the exit code (5) is still what the command did" in result.stderr


def test_an_error_whose_json_is_lost_keeps_its_exit_code(shop: Path) -> None:
    SQLiteLedger(shop / "ledger.db").close()  # a ledger to find no such payment in
    result = _to_a_full_disk("--json", "capture", "pay_missing", "1.00", cwd=shop)
    assert result.returncode == 2, result.stderr
    _told(result)
