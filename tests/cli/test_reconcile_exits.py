"""`paywire reconcile`'s exit codes on real SQLite and PostgreSQL ledgers: 0 when it leaves nothing
open, 5 while anything is; stopped while it asks the provider (Ctrl-C, SIGTERM from `timeout` or
a job cancelled), one line saying so (JSON under --json), exit 130, nothing of the pass written,
and the next run settles what it left."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
from pathlib import Path

import pytest

from paywire.testing.emulator import Fault
from paywire_acme.emulator import AcmeEmulator
from tests.cli.test_cli import SCRIPT, SECRETS, _interruptible, paywire


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def shop(request: pytest.FixtureRequest, tmp_path: Path, acme: AcmeEmulator) -> Path:
    if request.param == "sqlite":
        ledger = f"sqlite:///{tmp_path / 'ledger.db'}"
    else:  # the schema is dropped with the others this process made (tests/ledger/conftest.py)
        ledger = f"{request.getfixturevalue('postgres_dsn')}?schema=pwtest_{os.getpid()}_{secrets.token_hex(4)}"
    (tmp_path / "paywire.toml").write_text(f"""
[paywire]
ledger = "{ledger}"

[methods.cards]
provider = "acme"
base_url = "{acme.base_url}"
""")
    return tmp_path


def _stopped(shop: Path, acme: AcmeEmulator, stop: str, *command: str) -> tuple[int, str, str]:
    """Run `command` until the provider holds its request, then send `stop`."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PAYWIRE_")} | SECRETS
    assert SCRIPT
    args = _interruptible(*command) if stop == "SIGINT" else [SCRIPT, *command]
    with subprocess.Popen(args, cwd=shop, env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True) as proc:
        try:
            assert acme.wait_until_held(timeout=60)
            proc.send_signal(getattr(signal, stop))
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
            acme.release_held()
    return proc.returncode, out, err


def _open(shop: Path) -> list[dict[str, object]]:
    listed = paywire("--json", "transactions", "--status", "unknown", "--status", "pending", cwd=shop, env=SECRETS)
    assert listed.returncode == 0, listed.stderr
    found: list[dict[str, object]] = json.loads(listed.stdout)
    return found


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_a_reconcile_stopped_while_the_provider_is_asked_writes_nothing_and_says_so(
        shop: Path, acme: AcmeEmulator, stop: str) -> None:
    """By SIGTERM it died printing nothing, exit -15, even under --json: a script had nothing to
    parse, where Ctrl-C was told as exit 130."""
    acme.inject(Fault("hold", path="payments", method="POST"))
    code, out, _ = _stopped(shop, acme, "SIGTERM", "--json", "sale", "cards", "5.00", "EUR", "--source", "tok_ok")
    assert code == 5, out  # the sale applied at the provider, its answer never read
    (unknown,) = _open(shop)
    acme.inject(Fault("hold", path="payments", method="GET"))
    code, out, err = _stopped(shop, acme, stop, "--json", "reconcile")
    assert out.count("\n") == 1, (out, err)
    error = json.loads(out)["error"]
    assert code == error["exit_code"] == 130 and error["type"] == "Interrupted", (code, out, err)
    assert "Traceback" not in err
    assert _open(shop) == [unknown]  # nothing of the interrupted pass was written
    settled = paywire("--json", "reconcile", cwd=shop, env=SECRETS)
    assert settled.returncode == 0, settled
    assert [s["status"] for s in json.loads(settled.stdout)["settled"]] == ["succeeded"]
    assert _open(shop) == [] and len(acme.payments) == 1


def test_a_reconcile_that_leaves_an_outcome_open_is_exit_5_and_0_once_settled(
        shop: Path, acme: AcmeEmulator) -> None:
    acme.inject(Fault("drop_after", path="payments", method="POST", times=10))
    lost = paywire("--json", "sale", "cards", "5.00", "EUR", "--source", "tok_ok", cwd=shop, env=SECRETS)
    assert lost.returncode == 5, lost.stderr
    acme.clear_faults()
    acme.inject(Fault("status", status=503, path="payments", method="GET", times=100))
    unreachable = paywire("--json", "reconcile", cwd=shop, env=SECRETS)
    report = json.loads(unreachable.stdout)
    assert unreachable.returncode == 5 and report["errors"] and not report["settled"], unreachable
    acme.clear_faults()
    settled = paywire("--json", "reconcile", cwd=shop, env=SECRETS)
    assert settled.returncode == 0 and len(json.loads(settled.stdout)["settled"]) == 1, settled
