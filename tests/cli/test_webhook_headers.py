"""`paywire verify-webhook`: a header line not in 'Name: value' form is named by where it is, never
quoted: a line pasted there may be the webhook secret itself, which the error printed in full."""

from __future__ import annotations

from pathlib import Path

from tests.cli.test_cli import paywire

SECRET = "acme_whsec_Pasted0Here7"


def _shop(tmp_path: Path) -> Path:
    (tmp_path / "paywire.toml").write_text('[methods.cards]\nprovider = "acme"\nbase_url = "http://127.0.0.1:1"\n')
    (tmp_path / "event.json").write_bytes(b'{"id": "evt_1"}')
    (tmp_path / "headers.txt").write_text(f"Acme-Timestamp: 1\n{SECRET}\n")
    return tmp_path


def test_a_malformed_header_line_is_named_not_quoted(tmp_path: Path) -> None:
    shop = _shop(tmp_path)
    env = {"PAYWIRE_CARDS_API_KEY": "acme_test_key", "PAYWIRE_CARDS_WEBHOOK_SECRET": SECRET}
    for args, where in ((("--headers", "headers.txt"), "line 2 of headers file 'headers.txt'"),
                        (("-H", "Acme-Timestamp: 1", "-H", SECRET), "--header number 2")):
        for flags in ((), ("--json",)):
            result = paywire(*flags, "verify-webhook", "cards", "event.json", *args, cwd=shop, env=env)
            assert result.returncode == 2, result.stderr
            assert f"{where} is not in 'Name: value' form" in result.stdout + result.stderr
            assert SECRET not in result.stdout + result.stderr
