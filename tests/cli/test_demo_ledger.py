"""`paywire demo --ledger-file` named the shop's own ledger by mistake: refused before anything
writes to it. A demo ledger kept before is still taken."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

from paywire_acme.emulator import AcmeEmulator
from tests.cli.test_cli import SECRETS, paywire


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_the_demo_refuses_a_shops_ledger_and_writes_nothing_to_it(tmp_path: Path, acme: AcmeEmulator) -> None:
    """The demo added its payments (captured, refunded, under method codes such as "stripe") to
    the shop's ledger, where `payments` and `reconcile` take them for the shop's."""
    ledger = tmp_path / "shop.db"
    (tmp_path / "paywire.toml").write_text(f"""
[paywire]
ledger = "sqlite:///{ledger}"

[methods.cards]
provider = "acme"
base_url = "{acme.base_url}"
""")
    sale = paywire("--json", "sale", "cards", "5.00", "EUR", "--source", "tok_ok", "--order-id", "A-1001",
                   cwd=tmp_path, env=SECRETS)
    assert sale.returncode == 0, sale.stderr
    paid = json.loads(sale.stdout)["id"]
    before = _digest(ledger)
    for flags in ((), ("--json",)):
        result = paywire(*flags, "demo", "--ledger-file", str(ledger), cwd=tmp_path)
        assert result.returncode == 3, (result.stdout, result.stderr)
        told = json.loads(result.stdout)["error"]["message"] if flags else result.stderr
        assert "holds payments the demo did not make" in told and paid in told
    assert _digest(ledger) == before
    listed = paywire("--json", "payments", cwd=tmp_path)
    assert [p["id"] for p in json.loads(listed.stdout)] == [paid]


def test_a_demo_ledger_kept_before_is_taken_again(tmp_path: Path) -> None:
    kept = tmp_path / "demo.db"
    first = paywire("--json", "demo", "--ledger-file", str(kept), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    again = paywire("--json", "demo", "--ledger-file", str(kept), cwd=tmp_path)
    assert again.returncode == 0, again.stderr
