"""The command line on a standard output that cannot encode every character (an ASCII locale, a
`PYTHONIOENCODING`): a method's title or an order id in another script is written escaped, and
the exit code stays that of what the command did."""

from __future__ import annotations

from pathlib import Path

import pytest

from paywire_acme.emulator import AcmeEmulator
from tests.cli.test_cli import SECRETS, paywire

ASCII_OUTPUTS = {
    "PYTHONIOENCODING=ascii": {"PYTHONIOENCODING": "ascii"},
    "LC_ALL=C without UTF-8 mode": {"LC_ALL": "C", "LANG": "C", "PYTHONUTF8": "0", "PYTHONCOERCECLOCALE": "0"},
}


@pytest.fixture
def shop(tmp_path: Path, acme: AcmeEmulator) -> Path:
    (tmp_path / "paywire.toml").write_text(f"""
[paywire]
ledger = "sqlite:///{tmp_path / 'ledger.db'}"

[methods.cards]
provider = "acme"
title = "Karten über Acme, in €"
base_url = "{acme.base_url}"
""", encoding="utf-8")
    return tmp_path


@pytest.mark.parametrize("output", ASCII_OUTPUTS)
def test_a_title_the_output_cannot_encode_is_written_escaped(shop: Path, output: str) -> None:
    result = paywire("methods", cwd=shop, env=ASCII_OUTPUTS[output])
    assert result.returncode == 0, result.stderr
    assert "Karten \\xfcber Acme, in \\u20ac" in result.stdout


def test_a_sale_made_is_exit_0_whatever_the_output_cannot_encode(shop: Path, acme: AcmeEmulator) -> None:
    """The sale was charged, then printing its order id failed: exit 70, "an unexpected error",
    and a script that runs it again charges the buyer twice."""
    result = paywire("sale", "cards", "5.00", "EUR", "--source", "tok_ok", "--order-id", "Bestellung-ü",
                     cwd=shop, env=SECRETS | ASCII_OUTPUTS["PYTHONIOENCODING=ascii"])
    assert result.returncode == 0, result.stderr
    assert "Bestellung-\\xfc" in result.stdout and "captured" in result.stdout
    assert len(acme.payments) == 1
