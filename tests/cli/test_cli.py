"""The command line through its real entry point (the installed `paywire` script)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from paywire.ledger import SQLiteLedger
from paywire.testing.emulator import EmulatorServer, Fault
from paywire_acme.emulator import AcmeEmulator
from tests.ledger.test_ledger_url_passwords import PASSWORD, URLS
from tests.serve.dbproxy import DatabaseProxy

SCRIPT = shutil.which("paywire", path=os.path.dirname(sys.executable)) or shutil.which("paywire")


def paywire(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert SCRIPT, "the paywire console script is not installed"
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PAYWIRE_")} | (env or {})
    return subprocess.run([SCRIPT, *args], cwd=cwd, env=environment, capture_output=True, text=True, timeout=120)


@pytest.fixture
def shop(tmp_path: Path, acme: AcmeEmulator) -> Path:
    (tmp_path / "paywire.toml").write_text(f"""
[paywire]
ledger = "sqlite:///{tmp_path / 'ledger.db'}"

[methods.cards]
provider = "acme"
title = "Cards"
base_url = "{acme.base_url}"
sort_order = 2
countries = ["DE", "FR"]

[methods.invoice]
provider = "acme"
title = "Pay later"
base_url = "{acme.base_url}"
sort_order = 1
min_total = "50.00"
""")
    return tmp_path


SECRETS = {"PAYWIRE_CARDS_API_KEY": "acme_test_key", "PAYWIRE_CARDS_WEBHOOK_SECRET": "acme_whsec",
           "PAYWIRE_INVOICE_API_KEY": "acme_test_key"}


def test_plugins_lists_installed_providers(tmp_path: Path) -> None:
    result = paywire("--json", "plugins", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    gateways = {g["gateway"]: g for g in json.loads(result.stdout)["gateways"]}
    assert gateways["acme"]["distribution"] == "paywire-acme"
    assert "capture_multiple" in gateways["acme"]["capabilities"]
    text = paywire("plugins", cwd=tmp_path)
    assert "Acme Pay" in text.stdout and text.returncode == 0


def test_methods_in_sort_order_with_availability(shop: Path) -> None:
    result = paywire("--json", "methods", "--country", "DE", "--currency", "EUR", "--amount", "20.00", cwd=shop)
    rows = json.loads(result.stdout)
    assert [(r["method"], r["available"]) for r in rows] == [("invoice", False), ("cards", True)]
    result = paywire("--json", "methods", "--country", "US", "--currency", "EUR", "--amount", "80.00", cwd=shop)
    assert [(r["method"], r["available"]) for r in json.loads(result.stdout)] == [("invoice", True), ("cards", False)]


def test_authorize_capture_refund_show_and_list(shop: Path, acme: AcmeEmulator) -> None:
    result = paywire("--json", "authorize", "cards", "30.00", "EUR", "--source", "tok_ok", "--order-id", "A-1",
                     cwd=shop, env=SECRETS)
    assert result.returncode == 0, result.stderr
    payment = json.loads(result.stdout)
    assert payment["state"] == "authorized" and payment["authorized"]["minor"] == 3000
    pid = payment["id"]
    captured = json.loads(paywire("--json", "capture", pid, "12.00", cwd=shop, env=SECRETS).stdout)
    assert captured["captured"] == {"amount": "12.00", "currency": "EUR", "minor": 1200}
    refunded = json.loads(paywire("--json", "refund", pid, "2.50", cwd=shop, env=SECRETS).stdout)
    assert refunded["refunded"]["minor"] == 250
    shown = json.loads(paywire("--json", "show", pid, cwd=shop, env=SECRETS).stdout)
    assert [t["kind"] for t in shown["transactions"]] == ["authorize", "capture", "refund"]
    assert all(t["status"] == "succeeded" for t in shown["transactions"])
    listed = json.loads(paywire("--json", "payments", cwd=shop, env=SECRETS).stdout)
    assert [p["id"] for p in listed] == [pid]
    table = paywire("show", pid, cwd=shop, env=SECRETS).stdout
    assert "partially_refunded" in table and "12.00 EUR" in table
    assert acme.payments[payment["reference"]]["captured"] == 1200


def test_pay_follows_the_methods_payment_action(shop: Path, acme: AcmeEmulator) -> None:
    with (shop / "paywire.toml").open("a") as config:
        config.write(f"""
[methods.direct]
provider = "acme"
base_url = "{acme.base_url}"
payment_action = "authorize_capture"

[methods.held]
provider = "acme"
base_url = "{acme.base_url}"
payment_action = "authorize_capture"
can_sale = false
""")
    env = SECRETS | {"PAYWIRE_DIRECT_API_KEY": "acme_test_key", "PAYWIRE_HELD_API_KEY": "acme_test_key"}
    later = paywire("--json", "pay", "cards", "30.00", "EUR", "--source", "tok_ok", "--order-id", "A-1",
                    cwd=shop, env=env)
    assert later.returncode == 0, later.stderr
    assert (json.loads(later.stdout)["state"], json.loads(later.stdout)["captured"]["minor"]) == ("authorized", 0)
    now = paywire("--json", "pay", "direct", "5.00", "EUR", "--source", "tok_ok", "--idempotency-key", "order-A-2",
                  cwd=shop, env=env)
    assert now.returncode == 0, now.stderr
    sold = json.loads(now.stdout)
    assert (sold["state"], sold["captured"]["minor"]) == ("captured", 500)
    again = paywire("pay", "direct", "5.00", "EUR", "--source", "tok_ok", "--idempotency-key", "order-A-2", "--json",
                    cwd=shop, env=env)
    assert again.returncode == 0 and json.loads(again.stdout)["id"] == sold["id"], again.stderr
    assert len(acme.payments) == 2  # the retry replayed: no second payment at the provider
    refused = paywire("pay", "held", "5.00", "EUR", "--source", "tok_ok", cwd=shop, env=env)
    assert refused.returncode == 2 and "payment_action = 'authorize_capture'" in refused.stderr
    assert len(refused.stderr.strip().splitlines()) == 1 and "Traceback" not in refused.stderr
    assert len(acme.payments) == 2
    listed = json.loads(paywire("--json", "payments", cwd=shop, env=env).stdout)
    assert sorted(p["method"] for p in listed) == ["cards", "direct"]
    usage = paywire("pay", "direct", "5.00", "EUR", cwd=shop, env=env)
    assert usage.returncode == 2 and "--source" in usage.stderr


def test_user_errors_are_one_line_with_the_right_exit_code(shop: Path) -> None:
    cases = [
        (("authorize", "cards", "19.999", "EUR", "--source", "tok_ok"), 2, "more decimals than EUR"),
        (("authorize", "cards", "19.99", "EURO", "--source", "tok_ok"), 2, "ISO 4217"),
        (("authorize", "nope", "19.99", "EUR", "--source", "tok_ok"), 3, "unknown payment method 'nope'"),
        (("authorize", "cards", "1.00", "EUR", "--source", "4242424242424242"), 2, "raw card number"),
        (("capture", "pay_missing"), 2, "no payment 'pay_missing'"),
    ]
    SQLiteLedger(shop / "ledger.db").close()  # `capture` needs a ledger to find no payment in
    for args, code, message in cases:
        result = paywire(*args, cwd=shop, env=SECRETS)
        assert result.returncode == code, (args, result.stderr)
        assert message in result.stderr and "Traceback" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1
    missing = paywire("authorize", "cards", "1.00", "EUR", "--source", "tok_ok", cwd=shop)
    assert missing.returncode == 3 and "PAYWIRE_CARDS_API_KEY" in missing.stderr
    declined = paywire("authorize", "cards", "1.00", "EUR", "--source", "tok_decline", cwd=shop, env=SECRETS)
    assert declined.returncode == 1 and "Declined" in declined.stderr
    refused = paywire("refund", json.loads(paywire("--json", "sale", "cards", "5.00", "EUR", "--source", "tok_ok",
                                                   cwd=shop, env=SECRETS).stdout)["id"], "6.00", cwd=shop, env=SECRETS)
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    bad_config = paywire("--config", str(shop / "missing.toml"), "methods", cwd=shop)
    assert bad_config.returncode == 3 and "does not exist" in bad_config.stderr
    usage = paywire("capture", cwd=shop)
    assert usage.returncode == 2


def test_verify_webhook(shop: Path, acme: AcmeEmulator) -> None:
    paywire("sale", "cards", "5.00", "EUR", "--source", "tok_ok", cwd=shop, env=SECRETS)
    body, headers = acme.events[-1]
    (shop / "event.json").write_bytes(body)
    (shop / "headers.txt").write_text("\n".join(f"{k}: {v}" for k, v in headers.items()))
    ok = paywire("--json", "verify-webhook", "cards", "event.json", "--headers", "headers.txt", cwd=shop, env=SECRETS)
    assert ok.returncode == 0, ok.stderr
    assert json.loads(ok.stdout)["kind"] == "captured"
    after = paywire("verify-webhook", "cards", "event.json", "--headers", "headers.txt", "--json", cwd=shop,
                    env=SECRETS)  # `--json` after the command, as with every other command
    assert after.returncode == 0 and json.loads(after.stdout) == json.loads(ok.stdout), after
    (shop / "event.json").write_bytes(body.replace(b"500", b"501"))
    tampered = paywire("verify-webhook", "cards", "event.json", "--headers", "headers.txt", cwd=shop, env=SECRETS)
    assert tampered.returncode == 1 and "signature" in tampered.stderr


def test_reconcile_with_nothing_to_do(shop: Path) -> None:
    SQLiteLedger(shop / "ledger.db").close()  # a ledger with nothing in it (where there is none: exit 3, below)
    result = paywire("reconcile", cwd=shop, env=SECRETS)
    assert result.returncode == 0 and "0 settled" in result.stdout


def test_demo_runs_every_flow(tmp_path: Path) -> None:
    result = paywire("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "flows behaved" in result.stdout and "FAILED" not in result.stdout
    as_json = paywire("--json", "demo", cwd=tmp_path)
    flows = json.loads(as_json.stdout)["flows"]
    assert {f["flow"] for f in flows} >= {"sale", "void", "declined card", "timeout settled by reconciliation",
                                         "webhooks received and applied"}
    assert all(f["ok"] for f in flows)


def test_commands_that_only_read_never_create_a_ledger(shop: Path) -> None:
    for args in (("payments",), ("transactions", "--status", "accepted"), ("show", "pay_missing")):
        result = paywire(*args, cwd=shop, env=SECRETS)
        assert result.returncode == 3, (args, result.stdout, result.stderr)
        assert "no ledger at" in result.stderr and "Traceback" not in result.stderr
    assert not (shop / "ledger.db").exists()


def test_an_operation_refused_before_sending_records_nothing(shop: Path, acme: AcmeEmulator) -> None:
    config = (shop / "paywire.toml").read_text()
    (shop / "broken.toml").write_text(config.replace('title = "Cards"', f'title = "Cards"\nca_certs = "{shop / "no-such-ca.pem"}"'))
    refusals = [
        (("authorize", "cards", "1.00", "EUR", "--source", "4242 4242 4242 4242"), SECRETS, 2),  # a card number
        (("authorize", "cards", "1.00", "EUR", "--source", "tok_ok"), {}, 3),  # a missing secret
        (("--config", str(shop / "broken.toml"), "authorize", "cards", "1.00", "EUR", "--source", "tok_ok"),
         SECRETS, 3),  # certificates that cannot be loaded
    ]
    for args, env, code in refusals:
        result = paywire(*args, cwd=shop, env=env)
        assert result.returncode == code, (args, result.stderr)
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert not (shop / "ledger.db").exists()  # nothing recorded, not even an empty ledger made
    assert acme.payments == {}
    assert "ca_certs" in paywire(*refusals[2][0], cwd=shop, env=SECRETS).stderr


# -- errors: one line (or one JSON object), each kind its own exit code -------------------------------
def test_bad_credentials_and_a_reused_key_have_their_own_exit_codes(shop: Path) -> None:
    bad_key = paywire("authorize", "cards", "5.00", "EUR", "--source", "tok_ok", cwd=shop,
                      env={**SECRETS, "PAYWIRE_CARDS_API_KEY": "wrong"})
    assert bad_key.returncode == 6 and "AuthenticationError" in bad_key.stderr
    first = paywire("authorize", "cards", "5.00", "EUR", "--source", "tok_ok", "--idempotency-key", "k1", cwd=shop, env=SECRETS)
    assert first.returncode == 0, first.stderr
    reused = paywire("authorize", "cards", "6.00", "EUR", "--source", "tok_ok", "--idempotency-key", "k1", cwd=shop, env=SECRETS)
    assert reused.returncode == 7 and "IdempotencyConflict" in reused.stderr
    waiting = json.loads(paywire("--json", "authorize", "cards", "5.00", "EUR", "--source", "tok_3ds", cwd=shop,
                                 env=SECRETS).stdout)
    unfinished = paywire("complete", waiting["id"], cwd=shop, env=SECRETS)  # Acme refuses it (422): a bad request
    assert unfinished.returncode == 2 and "the buyer has not completed the challenge" in unfinished.stderr
    for result in (bad_key, reused, unfinished):
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr


BROKEN_PLUGIN = '''
from paywire import GatewayDefinition, hookimpl

def build(settings):
    raise RuntimeError("boom in the plugin")

@hookimpl
def register_gateways(register):
    register(GatewayDefinition(code="broken", title="Broken", build=build, endpoints={"sandbox": "http://127.0.0.1:9"}))
'''


def test_an_unexpected_error_is_one_line_with_an_exit_code_of_its_own(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "zz_broken-0.dist-info").mkdir(parents=True)
    (site / "zz_broken-0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: zz-broken\nVersion: 0\n")
    (site / "zz_broken-0.dist-info" / "entry_points.txt").write_text("[paywire]\nbroken = zz_broken_mod\n")
    (site / "zz_broken_mod.py").write_text(BROKEN_PLUGIN)
    env = {"PYTHONPATH": str(site), "PAYWIRE_LEDGER": f"sqlite:///{tmp_path / 'l.db'}"}
    result = paywire("authorize", "broken", "1.00", "EUR", "--source", "tok_ok", cwd=tmp_path, env=env)
    assert result.returncode == 70, result.stderr
    assert result.stderr.strip() == ("paywire: RuntimeError: boom in the plugin (an unexpected error inside paywire; "
                                     "please report it)")
    as_json = paywire("authorize", "broken", "1.00", "EUR", "--source", "tok_ok", "--json", cwd=tmp_path, env=env)
    assert json.loads(as_json.stdout)["error"] == {
        "type": "RuntimeError", "exit_code": 70,
        "message": "boom in the plugin (an unexpected error inside paywire; please report it)"}


def test_plugins_names_a_plugin_that_failed_to_load_and_exits_3(tmp_path: Path) -> None:
    site = tmp_path / "site"
    (site / "zz_missing-0.dist-info").mkdir(parents=True)
    (site / "zz_missing-0.dist-info" / "METADATA").write_text("Metadata-Version: 2.1\nName: zz-missing\nVersion: 0\n")
    (site / "zz_missing-0.dist-info" / "entry_points.txt").write_text("[paywire]\nmissing = zz_no_such_module\n")
    env = {"PYTHONPATH": str(site)}
    text = paywire("plugins", cwd=tmp_path, env=env)
    assert text.returncode == 3, text
    assert "Acme Pay" in text.stdout  # the others are still listed
    assert "failed to load missing (zz-missing)" in text.stderr and "zz_no_such_module" in text.stderr, text.stderr
    as_json = paywire("--json", "plugins", cwd=tmp_path, env=env)
    listed = json.loads(as_json.stdout)
    assert as_json.returncode == 3 and "acme" in {g["gateway"] for g in listed["gateways"]}
    assert [(f["plugin"], f["distribution"]) for f in listed["failures"]] == [("missing", "zz-missing")]


def test_plugins_never_prints_a_credential_or_a_card_number_a_failed_plugin_quoted(tmp_path: Path) -> None:
    site = tmp_path / "site"
    info = site / "zz_leaks-0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: zz-leaks\nVersion: 0\n")
    (info / "entry_points.txt").write_text("[paywire]\nleaks = zz_leaks_mod\n")
    (site / "zz_leaks_mod.py").write_text(
        "raise RuntimeError('PAYWIRE_LEAKS_API_KEY sk_live_51Hx9QzLmNoPqRsTuV refused for 4111-1111-1111-1111')\n")
    env = {"PYTHONPATH": str(site)}
    text = paywire("plugins", cwd=tmp_path, env=env)
    as_json = paywire("--json", "plugins", cwd=tmp_path, env=env)
    assert text.returncode == as_json.returncode == 3, text
    assert "failed to load leaks (zz-leaks): RuntimeError: PAYWIRE_LEAKS_API_KEY" in text.stderr, text.stderr
    assert [f["plugin"] for f in json.loads(as_json.stdout)["failures"]] == ["leaks"]
    for shown in (text.stdout, text.stderr, as_json.stdout, as_json.stderr):
        assert "sk_live_51Hx9QzLmNoPqRsTuV" not in shown and "4111-1111-1111-1111" not in shown, shown


def test_json_works_before_or_after_the_command_and_errors_are_json_too(shop: Path) -> None:
    before = paywire("--json", "methods", cwd=shop)
    after = paywire("methods", "--json", cwd=shop)
    assert before.returncode == after.returncode == 0 and json.loads(before.stdout) == json.loads(after.stdout)
    SQLiteLedger(shop / "ledger.db").close()  # `capture` needs a ledger to find no payment in
    for args, code in ((("capture", "pay_missing", "--json"), 2), (("--json", "payments", "--state", "bogus"), 2),
                       (("authorize", "--json"), 2)):
        result = paywire(*args, cwd=shop, env=SECRETS)
        error = json.loads(result.stdout)["error"]
        assert result.returncode == error["exit_code"] == code and error["message"], (args, result)
        assert result.stderr == ""
    positional = paywire("capture", "--", "--json", cwd=shop, env=SECRETS)  # a payment id, not the option
    assert positional.returncode == 2 and positional.stdout == "", positional
    assert "no payment '--json'" in positional.stderr, positional.stderr


def test_an_abbreviated_json_option_makes_errors_json_too(shop: Path) -> None:
    """argparse takes `--js` (any prefix of `--json`) for `--json`: the command printed JSON, and
    its error a line of text on stderr, so a script reading stdout found nothing to parse."""
    assert json.loads(paywire("--js", "methods", cwd=shop).stdout)  # what argparse makes of it
    SQLiteLedger(shop / "ledger.db").close()
    for args, code in ((("--js", "show", "pay_missing"), 2), (("capture", "pay_missing", "--jso"), 2),
                       (("--j", "payments", "--limit", "0"), 2)):
        result = paywire(*args, cwd=shop, env=SECRETS)
        assert result.stderr == "", (args, result.stderr)
        error = json.loads(result.stdout)["error"]
        assert result.returncode == error["exit_code"] == code, (args, result)


def test_a_closed_stdout_ends_quietly(shop: Path) -> None:
    paywire("sale", "cards", "5.00", "EUR", "--source", "tok_ok", cwd=shop, env=SECRETS)
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PAYWIRE_")} | SECRETS
    process = subprocess.Popen([SCRIPT, "--json", "transactions"], cwd=shop, env=environment,  # type: ignore[list-item]
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()  # the reader is gone before paywire writes a byte (`| head -0`)
    stderr = process.stderr.read()
    assert process.wait(timeout=120) == 0 and stderr == b""


def closed_stdout(*args: str, cwd: Path, buffered: bool) -> tuple[int, bytes]:
    """Run `paywire *args` with its reader gone before it writes a byte (`| head -0`): its exit
    code and stderr."""
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PAYWIRE_")} | SECRETS
    environment.pop("PYTHONUNBUFFERED", None)
    if not buffered:
        environment["PYTHONUNBUFFERED"] = "1"
    process = subprocess.Popen([SCRIPT, *args], cwd=cwd, env=environment,  # type: ignore[list-item]
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    stderr = process.stderr.read()
    return process.wait(timeout=120), stderr


@pytest.mark.parametrize("buffered", [True, False])
def test_a_closed_stdout_keeps_the_exit_code_of_what_happened(shop: Path, acme: AcmeEmulator, buffered: bool) -> None:
    """The reader going away hides the output, never the outcome: a failure or an unknown
    outcome printed (as JSON) to a closed stdout is still its own exit code, not 0 (or 120)."""
    acme.inject(Fault("drop_after", path="payments", method="POST", times=10))  # applied, never answered
    code, stderr = closed_stdout("--json", "sale", "cards", "5.00", "EUR", "--source", "tok_ok", cwd=shop,
                                 buffered=buffered)
    assert acme.payments and code == 5, (code, stderr)
    code, stderr = closed_stdout("--json", "capture", "pay_missing", cwd=shop, buffered=buffered)
    assert code == 2 and stderr == b"", (code, stderr)
    acme.clear_faults()
    code, stderr = closed_stdout("--json", "authorize", "cards", "5.00", "EUR", "--source", "tok_3ds", cwd=shop,
                                 buffered=buffered)
    assert code == 8 and stderr == b"", (code, stderr)
    code, stderr = closed_stdout("--json", "transactions", cwd=shop, buffered=buffered)
    assert code == 0 and stderr == b"", (code, stderr)


@pytest.mark.parametrize("args", [
    ("payments", "--ledger", "postgresql://shop:s3cret-pw@127.0.0.1:1/db"),  # global options go first
    ("--json", "payments", "--ledger", "postgresql://shop:s3cret-pw@127.0.0.1:1/db"),
    ("transactions", "--ledger=postgresql://shop:s3cret-pw@127.0.0.1:1/db"),
    ("--json", "payments", "--state", "4242424242424242"),
])
def test_a_usage_error_masks_the_passwords_and_card_numbers_it_quotes(tmp_path: Path, args: tuple[str, ...]) -> None:
    result = paywire(*args, cwd=tmp_path)
    printed = result.stdout + result.stderr
    assert result.returncode == 2 and "***" in printed, result
    assert "s3cret-pw" not in printed and "4242424242424242" not in printed, result


def test_an_empty_idempotency_key_is_refused_not_taken_for_none(shop: Path, acme: AcmeEmulator) -> None:
    """`--idempotency-key "$KEY"` with KEY unset: taken as no key, each retry of a sale whose
    outcome is unknown was a new sale, charged again. It is a usage error, before anything is
    opened or sent."""
    for key in ("", "  "):
        result = paywire("sale", "cards", "5.00", "EUR", "--source", "tok_ok", "--idempotency-key", key, cwd=shop,
                         env=SECRETS)
        assert result.returncode == 2 and "argument --idempotency-key" in result.stderr, result.stderr
        assert "is empty or blank" in result.stderr and len(result.stderr.strip().splitlines()) == 1
    assert acme.payments == {} and not (shop / "ledger.db").exists()


def test_an_operation_that_leaves_the_payment_waiting_for_the_buyer_is_exit_8(shop: Path) -> None:
    """Nothing is paid while the buyer has not finished 3-D Secure: `paywire authorize ... && ship`
    must not ship. The payment is shown, with where to send the buyer."""
    as_json = paywire("--json", "authorize", "cards", "5.00", "EUR", "--source", "tok_3ds", cwd=shop, env=SECRETS)
    payment = json.loads(as_json.stdout)
    assert payment["state"] == "action_required" and payment["redirect_url"] and payment["action"] == "redirect"
    assert as_json.returncode == 8 and as_json.stderr == ""
    as_text = paywire("sale", "cards", "5.00", "EUR", "--source", "tok_3ds", cwd=shop, env=SECRETS)
    assert as_text.returncode == 8 and "action_required" in as_text.stdout and "redirect_url" in as_text.stdout
    shown = paywire("show", payment["id"], cwd=shop, env=SECRETS)  # reading is not waiting: done
    assert shown.returncode == 0 and "action_required" in shown.stdout


def test_a_bad_amount_or_a_mistyped_payment_id_changes_nothing_and_says_so(shop: Path) -> None:
    bad = paywire("authorize", "cards", "19.999", "EUR", "--source", "tok_ok", cwd=shop, env=SECRETS)
    assert bad.returncode == 2 and not (shop / "ledger.db").exists()  # no ledger made for a refused amount
    paywire("sale", "cards", "5.00", "EUR", "--source", "tok_ok", cwd=shop, env=SECRETS)
    mistyped = paywire("--json", "transactions", "pay_mistyped", cwd=shop, env=SECRETS)
    assert mistyped.returncode == 2, mistyped  # as `show` says: not an empty list
    assert "no payment 'pay_mistyped'" in json.loads(mistyped.stdout)["error"]["message"]


@pytest.mark.parametrize(("args", "message"), [
    (("payments", "--state", "bogus"), "argument --state: invalid choice: 'bogus'"),
    (("transactions", "--status", "bogus"), "argument --status: invalid choice: 'bogus'"),
    (("methods", "--country", "XX"), "country 'XX' is not an ISO 3166-1 alpha-2 code"),
    (("methods", "--country", "de"), "did you mean 'DE'?"),
    (("methods", "--currency", "eur", "--amount", "5"), "currency codes are upper case: 'EUR'"),
    (("authorize", "cards", "1e3", "EUR", "--source", "tok_ok"), "'1e3' is not a plain decimal number"),
    (("payments", "--limit", "0"), "'0' is not a whole number above zero"),
    (("reconcile", "--stale-after", "-5"), "unrecognized arguments: --stale-after"),
    (("payments", "--limit", "99999999999999999999"), "'99999999999999999999' is too large"),
    (("payments", "--limit", "-5"), "argument --limit: '-5' is not a whole number above zero"),
    (("capture", "pay_x", "--final", "--not-final"), "argument --not-final: not allowed with argument --final"),
    (("capture", "pay_x", "--not-final", "--final"), "argument --final: not allowed with argument --not-final"),
    (("serve", "--port", "70000"), "argument --port: '70000' is not a port number (0 to 65535)"),
    (("serve", "--port", "-1"), "argument --port: '-1' is not a port number (0 to 65535)"),
    (("serve", "--interval", "nan"), "argument --interval: 'nan' is not a number of seconds above zero"),
    (("serve", "--interval", "-1"), "argument --interval: '-1' is not a number of seconds above zero"),
    (("serve", "--backoff-first", "inf"), "argument --backoff-first: 'inf' is not a number of seconds above zero"),
    (("serve", "--backoff-cap", "0"), "argument --backoff-cap: '0' is not a number of seconds above zero"),
])
def test_bad_option_values_are_refused_in_one_line(shop: Path, args: tuple[str, ...], message: str) -> None:
    result = paywire(*args, cwd=shop, env=SECRETS)
    assert result.returncode == 2 and message in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_ledger_urls_that_cannot_work_are_one_line_naming_the_url(tmp_path: Path) -> None:
    cases = [
        (f"sqlite:///{tmp_path}/no/such/dir/x.db", "the directory"),
        ("sqlite://relative.db", "has a host part"),
        ("", "the ledger URL is empty"),
        ("sqlite:////proc/x/y.db", "does not exist; create it"),
        ("sqlite:////proc/y.db", "cannot open '/proc/y.db'"),
        ("postgresql://paywire:s3cret-pw@127.0.0.1:1/db", "is PostgreSQL running and reachable at 127.0.0.1:1?"),
    ]
    for url, message in cases:
        result = paywire("--ledger", url, "authorize", "acme", "1.00", "EUR", "--source", "tok_ok", cwd=tmp_path,
                         env={"PAYWIRE_ACME_API_KEY": "acme_test_key"})
        assert result.returncode == 3 and message in result.stderr, (url, result.stderr)
        assert len(result.stderr.strip().splitlines()) == 1 and "s3cret-pw" not in result.stderr
    assert not (tmp_path / "no").exists()


def test_plugin_allow_list_with_spaces_and_a_name_not_installed(tmp_path: Path) -> None:
    result = paywire("--json", "plugins", cwd=tmp_path, env={"PAYWIRE_PLUGINS": "acme no_such_plugin"})
    assert result.returncode == 0
    assert [g["gateway"] for g in json.loads(result.stdout)["gateways"]] == ["acme"]
    assert result.stderr.strip() == ("paywire: warning: PAYWIRE_PLUGINS names 'no_such_plugin', which is not an "
                                     "installed paywire plugin (installed: " + result.stderr.split("(installed: ")[1].strip())


def test_complete_before_the_buyer_approved_a_paypal_order_says_so(tmp_path: Path) -> None:
    pytest.importorskip("paywire_paypal", reason="PayPal's buyer approval: installed in the all session only")
    from paywire.plugins import default_plugins
    from paywire.testing.sandbox import load_sandbox

    sandbox = load_sandbox(default_plugins().gateway("paypal"))
    with EmulatorServer(sandbox.app) as server:
        (tmp_path / "paywire.toml").write_text(f'[paywire]\nledger = "sqlite:///{tmp_path / "l.db"}"\n'
                                               f'[methods.paypal]\nbase_url = "{server.url}"\n')
        env = {f"PAYWIRE_PAYPAL_{name.upper()}": value for name, value in sandbox.credentials.items()}
        order = json.loads(paywire("--json", "authorize", "paypal", "5.00", "EUR", "--source", "paypal",
                                   "--return-url", "https://shop.example/back", cwd=tmp_path, env=env).stdout)
        assert order["state"] == "action_required" and order["redirect_url"]
        result = paywire("--json", "complete", order["id"], cwd=tmp_path, env=env)
    error = json.loads(result.stdout)["error"]
    assert result.returncode == error["exit_code"] == 8
    assert error["type"] == "BuyerActionRequired" and error["redirect_url"] == order["redirect_url"]
    assert f"send them to {order['redirect_url']}" in error["message"]


def test_an_allow_list_that_allows_no_installed_plugin_says_so(tmp_path: Path) -> None:
    result = paywire("plugins", cwd=tmp_path, env={"PAYWIRE_PLUGINS": "no_such_plugin"})
    assert result.returncode == 0
    assert "No gateway plugins loaded: PAYWIRE_PLUGINS='no_such_plugin' allows none of the installed ones" in result.stdout


def test_an_accepted_operation_is_shown_as_accepted_until_the_provider_decides(shop: Path, acme: AcmeEmulator) -> None:
    sale = paywire("--json", "sale", "cards", "5.00", "EUR", "--source", "tok_async", cwd=shop, env=SECRETS)
    assert sale.returncode == 0, sale.stderr
    payment = json.loads(sale.stdout)
    assert payment["captured"]["minor"] == 0  # not counted while the provider decides
    listed = json.loads(paywire("--json", "transactions", "--status", "accepted", cwd=shop, env=SECRETS).stdout)
    assert [(t["payment_id"], t["kind"], t["status"]) for t in listed] == [(payment["id"], "sale", "accepted")]
    assert listed[0]["settle_after"] is not None
    assert "accepted" in paywire("show", payment["id"], cwd=shop, env=SECRETS).stdout


def test_unreadable_webhook_header_files_are_usage_errors(shop: Path) -> None:
    """A headers or body file that is missing, not JSON after all, or not text, is the caller's
    mistake (exit 2, one line naming the file), not an unexpected error inside paywire."""
    (shop / "event.json").write_bytes(b"{}")
    (shop / "broken.json").write_text('{"Acme-Signature": ')
    (shop / "binary.txt").write_bytes(b"\xff\xfe: x")
    (shop / "list.json").write_text('{"a": 1} [2]')
    for name in ("broken.json", "binary.txt", "list.json", "missing.txt"):
        result = paywire("verify-webhook", "cards", "event.json", "--headers", name, cwd=shop, env=SECRETS)
        assert result.returncode == 2, (name, result.stderr)
        assert name in result.stderr and "unexpected error" not in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    missing = paywire("verify-webhook", "cards", "no-such-event.json", cwd=shop, env=SECRETS)
    assert missing.returncode == 2 and "cannot read body file 'no-such-event.json'" in missing.stderr, missing.stderr


def test_a_config_path_that_is_a_directory_or_not_text_is_a_configuration_error(tmp_path: Path) -> None:
    (tmp_path / "folder").mkdir()
    (tmp_path / "binary.toml").write_bytes(b"\xff\xfe[paywire]\n")
    for name, message in (("folder", "cannot read"), ("binary.toml", "not UTF-8")):
        result = paywire("--config", str(tmp_path / name), "methods", cwd=tmp_path)
        assert result.returncode == 3, (name, result.stderr)
        assert message in result.stderr and name in result.stderr and "unexpected error" not in result.stderr
        assert len(result.stderr.strip().splitlines()) == 1


# -- a ledger that does not exist is refused by every command but those that start payments ----------
ON_EXISTING_PAYMENTS = [("capture", "pay_x"), ("capture", "pay_x", "1.00"), ("void", "pay_x"),
                        ("refund", "pay_x"), ("refund", "pay_x", "1.00"), ("complete", "pay_x"), ("reconcile",),
                        ("reconcile", "--payment-id", "pay_x")]


@pytest.mark.parametrize("args", ON_EXISTING_PAYMENTS)
def test_commands_on_existing_payments_never_create_a_ledger(shop: Path, args: tuple[str, ...]) -> None:
    """A mistyped ledger path is no ledger: a capture, void, refund, complete or reconcile there
    made a new, empty one (file and tables) and then said "no payment" (or reconciled nothing,
    exit 0), so the typo looked like a missing payment, or like a clean ledger, and left a file."""
    mistyped = shop / "ledgr.db"
    for extra in ((), ("--ledger", f"sqlite:///{mistyped}"), ("--ledger", f"sqlite:///{shop / 'typo' / 'l.db'}")):
        result = paywire(*extra, *args, cwd=shop, env=SECRETS)
        assert result.returncode == 3, (extra, result.stdout, result.stderr)
        named = extra[1].removeprefix("sqlite:///") if extra else str(shop / "ledger.db")
        assert f"no ledger at {named!r}" in result.stderr, result.stderr
        assert len(result.stderr.strip().splitlines()) == 1 and "Traceback" not in result.stderr
    as_json = paywire("--json", *args, cwd=shop, env=SECRETS)
    error = json.loads(as_json.stdout)["error"]
    assert as_json.returncode == error["exit_code"] == 3 and error["type"] == "ConfigurationError"
    assert sorted(p.name for p in shop.iterdir()) == ["paywire.toml"]  # no file, no -wal, no directory


def test_commands_that_start_payments_still_create_the_ledger(shop: Path) -> None:
    assert paywire("sale", "cards", "5.00", "EUR", "--source", "tok_ok", cwd=shop, env=SECRETS).returncode == 0
    assert (shop / "ledger.db").exists()
    result = paywire("reconcile", cwd=shop, env=SECRETS)
    assert result.returncode == 0 and "0 settled" in result.stdout, result


@pytest.fixture
def unmade_schema(postgres_dsn: str) -> Iterator[tuple[str, Callable[[], bool]]]:
    """A PostgreSQL schema name no ledger has, and whether it still does not exist (dropped after
    the test, should a command have made it)."""
    import psycopg

    schema = f"pwtest_{os.getpid()}_cli_{os.urandom(4).hex()}"

    def absent() -> bool:
        with psycopg.connect(postgres_dsn) as conn:
            return conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() == (0,)

    yield schema, absent
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.mark.postgres
def test_commands_on_existing_payments_never_create_a_postgresql_schema(
        shop: Path, postgres_dsn: str, unmade_schema: tuple[str, Callable[[], bool]]) -> None:
    schema, absent = unmade_schema
    for args in ON_EXISTING_PAYMENTS:
        result = paywire("--ledger", f"{postgres_dsn}?schema={schema}", *args, cwd=shop, env=SECRETS)
        assert result.returncode == 3 and f"no ledger in schema {schema!r}" in result.stderr, (args, result)
        assert absent(), args


@pytest.mark.postgres
def test_a_ledger_database_refusing_writes_is_a_retryable_exit_4_and_nothing_is_sent(
        shop: Path, acme: AcmeEmulator, postgres_dsn: str, unmade_schema: tuple[str, Callable[[], bool]]) -> None:
    """The ledger's database takes no writes (its sessions read-only, as on a standby after a
    failover): the capture is refused before it is sent, exit 4 in one line, not 70; run again
    once the database takes writes, it is made."""
    schema, _ = unmade_schema
    ledger = f"{postgres_dsn}?schema={schema}"
    authorized = paywire("--json", "--ledger", ledger, "authorize", "cards", "30.00", "EUR", "--source", "tok_ok",
                         cwd=shop, env=SECRETS)
    assert authorized.returncode == 0, authorized.stderr
    payment = json.loads(authorized.stdout)
    read_only = f"{ledger}&options=-c%20default_transaction_read_only%3Don"
    refused = paywire("--json", "--ledger", read_only, "capture", payment["id"], "12.00", cwd=shop, env=SECRETS)
    error = json.loads(refused.stdout)["error"]
    assert refused.returncode == error["exit_code"] == 4, refused
    assert error["type"] == "LedgerUnavailable" and error["code"] == "ledger_unavailable", error
    assert "read-only transaction" in error["message"] and "was not sent" in error["message"], error
    assert acme.payments[payment["reference"]]["captured"] == 0
    captured = paywire("--json", "--ledger", ledger, "capture", payment["id"], "12.00", cwd=shop, env=SECRETS)
    assert captured.returncode == 0 and json.loads(captured.stdout)["captured"]["minor"] == 1200, captured


@pytest.mark.postgres
@pytest.mark.parametrize("command", ["show", "payments", "transactions", "capture", "reconcile"])
def test_a_ledger_database_gone_while_a_command_reads_it_is_a_retryable_exit_4_naming_it(
        shop: Path, acme: AcmeEmulator, postgres_dsn: str, unmade_schema: tuple[str, Callable[[], bool]],
        command: str) -> None:
    """The database goes away (a restart, a failover) once the ledger is open, just as the command
    reads the payment: exit 4 in one line saying that the ledger's database is unavailable, why,
    and to try again once it is back, not exit 70 ("an unexpected error inside paywire; please
    report it"); nothing is sent, and the URL's password shows nowhere. Run again, it works."""
    schema, _ = unmade_schema
    password = "pw-never-printed-9d2e"  # PostgreSQL's trust authentication takes it and ignores it
    authorized = paywire("--json", "--ledger", f"{postgres_dsn}?schema={schema}", "authorize", "cards", "30.00", "EUR",
                         "--source", "tok_ok", cwd=shop, env=SECRETS)
    assert authorized.returncode == 0, authorized.stderr
    payment = json.loads(authorized.stdout)
    args = {"show": ("show", payment["id"]), "payments": ("payments",),
            "transactions": ("transactions", payment["id"]),
            "capture": ("capture", payment["id"], "12.00"), "reconcile": ("reconcile", "--payment-id", payment["id"])}
    proxy = DatabaseProxy(postgres_dsn.replace("postgres@", f"postgres:{password}@"))
    try:
        ledger = f"{proxy.dsn}?schema={schema}"
        proxy.down_at(b"FROM paywire_payments")  # opening the ledger reads only its schema's version
        gone = paywire("--ledger", ledger, *args[command], cwd=shop, env=SECRETS)
        assert gone.returncode == 4, gone
        (line,) = gone.stderr.splitlines()
        assert line.startswith("paywire: LedgerUnavailable: the ledger's database is unavailable ("), line
        assert "server closed the connection" in line and "again once it is back" in line, line
        assert "please report it" not in line and password not in gone.stderr + gone.stdout, line
        assert acme.payments[payment["reference"]]["captured"] == 0
        proxy.up()
        again = paywire("--ledger", ledger, *args[command], cwd=shop, env=SECRETS)
        assert again.returncode == 0, again
    finally:
        proxy.close()


@pytest.mark.parametrize("args", [("--help",), ("capture", "--help"), ("--json", "serve", "--help")])
@pytest.mark.parametrize("buffered", [True, False])
def test_help_to_a_closed_stdout_is_exit_0(tmp_path: Path, args: tuple[str, ...], buffered: bool) -> None:
    """`paywire --help | head -0`: argparse prints the help and exits from inside parse_args; the
    text left buffered met the closed pipe at interpreter exit (exit 120, "Exception ignored")."""
    code, stderr = closed_stdout(*args, cwd=tmp_path, buffered=buffered)
    assert code == 0 and stderr == b"", (code, stderr)


# -- an unknown outcome says how to settle it, and following that advice charges once ----------------
@pytest.mark.parametrize("keyed", [False, True])
def test_an_unknown_outcome_names_the_key_that_makes_running_it_again_safe(shop: Path, acme: AcmeEmulator,
                                                                          keyed: bool) -> None:
    """A sale whose answer was lost (the provider applied it) is exit 5. Running the same command
    again without a key makes a new payment, charged a second time, so the error names the key
    the sale was sent with and the reconcile command; running it again with that key charges
    nothing more and gives the payment."""
    key = ("--idempotency-key", "order-77") if keyed else ()
    acme.inject(Fault("drop_after", path="payments", method="POST", times=10))
    lost = paywire("--json", "sale", "cards", "5.00", "EUR", "--source", "tok_ok", *key, cwd=shop, env=SECRETS)
    error = json.loads(lost.stdout)["error"]
    assert lost.returncode == error["exit_code"] == 5 and error["type"] == "OutcomeUnknown", lost
    used = error["idempotency_key"]
    assert used == ("order-77" if keyed else f"paywire-{error['payment_id']}-sale-1")
    assert f"run the same command again with --idempotency-key {used}" in error["message"]
    assert f"'paywire reconcile --payment-id {error['payment_id']}'" in error["message"]
    text = paywire("sale", "cards", "5.00", "EUR", "--source", "tok_ok", *key, cwd=shop, env=SECRETS)
    assert text.returncode == 5 and "run the same command again with --idempotency-key" in text.stderr, text.stderr
    assert (f"--idempotency-key {used} " in text.stderr) == keyed  # without the key: another sale, its own key
    assert len(text.stderr.strip().splitlines()) == 1
    acme.clear_faults()
    again = paywire("--json", "sale", "cards", "5.00", "EUR", "--source", "tok_ok", "--idempotency-key", used,
                    cwd=shop, env=SECRETS)
    assert again.returncode == 0, again
    assert json.loads(again.stdout)["id"] == error["payment_id"]
    assert len(acme.payments) == (1 if keyed else 2)  # without a key, the second run above was a second sale


def test_an_unknown_capture_says_to_run_it_again_with_its_key(shop: Path, acme: AcmeEmulator) -> None:
    payment = json.loads(paywire("--json", "authorize", "cards", "8.00", "EUR", "--source", "tok_ok", cwd=shop,
                                 env=SECRETS).stdout)
    acme.inject(Fault("drop_after", path="capture", method="POST", times=10))
    lost = paywire("--json", "capture", payment["id"], cwd=shop, env=SECRETS)
    error = json.loads(lost.stdout)["error"]
    assert lost.returncode == 5 and error["idempotency_key"] == f"paywire-{payment['id']}-capture-1", lost
    assert f"--idempotency-key {error['idempotency_key']}" in error["message"]
    acme.clear_faults()
    again = paywire("--json", "capture", payment["id"], "--idempotency-key", error["idempotency_key"], cwd=shop,
                    env=SECRETS)
    assert again.returncode == 0, again
    assert json.loads(again.stdout)["captured"]["minor"] == 800 and acme.payments[payment["reference"]]["captured"] == 800


def _unusable_methods(shop: Path) -> list[tuple[tuple[str, ...], dict[str, str]]]:
    config = (shop / "paywire.toml").read_text()
    (shop / "inactive.toml").write_text(config.replace('title = "Cards"', 'title = "Cards"\nactive = false'))
    (shop / "no-ca.toml").write_text(config.replace('title = "Cards"', f'title = "Cards"\nca_certs = "{shop / "no.pem"}"'))
    sale = ("sale", "cards", "5.00", "EUR", "--source", "tok_ok")
    return [(("sale", "nope", "5.00", "EUR", "--source", "tok_ok"), SECRETS),  # an unknown method
            (sale, {}),  # a missing secret
            (("--config", str(shop / "inactive.toml"), *sale), SECRETS),
            (("--config", str(shop / "no-ca.toml"), *sale), SECRETS)]


def test_a_method_that_cannot_work_creates_no_ledger(shop: Path, acme: AcmeEmulator) -> None:
    """`authorize` and `sale` create the ledger where there is none, but a method that cannot
    work whatever the payment (unknown, inactive, a missing secret, certificates that cannot be
    read) is refused before it is opened: no file is left behind by a configuration error."""
    for args, env in _unusable_methods(shop):
        result = paywire(*args, cwd=shop, env=env)
        assert result.returncode in (2, 3) and len(result.stderr.strip().splitlines()) == 1, (args, result.stderr)
        assert not (shop / "ledger.db").exists(), (args, result.stderr)
    assert acme.payments == {}


@pytest.mark.postgres
def test_a_method_that_cannot_work_creates_no_postgresql_schema(
        shop: Path, postgres_dsn: str, unmade_schema: tuple[str, Callable[[], bool]]) -> None:
    schema, absent = unmade_schema
    for args, env in _unusable_methods(shop):
        result = paywire("--ledger", f"{postgres_dsn}?schema={schema}", *args, cwd=shop, env=env)
        assert result.returncode in (2, 3), (args, result.stderr)
        assert absent(), args


def _interruptible(*args: str) -> list[str]:
    """The command line run so that Ctrl-C (SIGINT) interrupts it: started from a shell without job
    control (a CI runner's background job), the tests inherit SIGINT ignored, and Python started
    with it ignored keeps ignoring it. The child is reset to the default before the command runs."""
    assert SCRIPT
    reset = "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL); os.execv(sys.argv[1], sys.argv[1:])"
    return [sys.executable, "-c", reset, SCRIPT, *args]


@pytest.mark.parametrize("stop", ["SIGINT", "SIGTERM"])
def test_a_stop_while_the_provider_is_asked_names_the_key_that_settles_it(
        shop: Path, acme: AcmeEmulator, stop: str) -> None:
    """Stopped after the provider applied the sale, before its answer: by Ctrl-C the process
    exited 130 printing nothing (no JSON under --json), and by SIGTERM (`timeout`, a job
    cancelled) it died printing nothing, exit -15, with the sale left unknown in the ledger: a
    script's only way on was running it again without a key, a second charge. Either is told as
    an unknown outcome, exit 5, naming the key that settles it."""
    import signal

    acme.inject(Fault("hold", path="payments", method="POST"))
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PAYWIRE_")} | SECRETS
    assert SCRIPT
    command = ["--json", "sale", "cards", "5.00", "EUR", "--source", "tok_ok"]
    with subprocess.Popen(_interruptible(*command) if stop == "SIGINT" else [SCRIPT, *command], cwd=shop,
                          env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert acme.wait_until_held(timeout=60)  # the sale applied at the provider, its answer held
            proc.send_signal(getattr(signal, stop))
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
            acme.release_held()
    assert out, (proc.returncode, err)
    error = json.loads(out)["error"]
    assert proc.returncode == error["exit_code"] == 5 and error["type"] == "OutcomeUnknown", (out, err)
    used = error["idempotency_key"]
    assert f"run the same command again with --idempotency-key {used}" in error["message"]
    again = paywire("--json", "sale", "cards", "5.00", "EUR", "--source", "tok_ok", "--idempotency-key", used,
                    cwd=shop, env=SECRETS)
    assert again.returncode == 0 and json.loads(again.stdout)["id"] == error["payment_id"], again
    assert len(acme.payments) == 1


def test_a_credential_written_among_a_methods_settings_says_where_it_goes(tmp_path: Path) -> None:
    """`api_key = "..."` under [methods.cards] was "unknown setting 'api_key'", followed by the
    list of settings: nothing said that credentials go in the environment or a credentials table."""
    (tmp_path / "paywire.toml").write_text('[methods.cards]\nprovider = "acme"\napi_key = "acme_live_s3cr3t_value"\n')
    result = paywire("--json", "methods", cwd=tmp_path)
    error = json.loads(result.stdout)["error"]
    assert result.returncode == error["exit_code"] == 3, result
    assert "PAYWIRE_CARDS_API_KEY" in error["message"] and "[methods.cards.credentials]" in error["message"]
    assert "s3cr3t" not in result.stdout + result.stderr


def test_demo_errors_are_configuration_errors_and_json_under_json(tmp_path: Path) -> None:
    """No plugin with a sandbox printed a line of text (nothing on stdout under --json); a
    --ledger-file that is a folder or not a database was "an unexpected error inside paywire"
    (exit 70), a bug to report, when it is the caller's path."""
    (tmp_path / "notes.db").write_text("not a database\n" * 100)
    (tmp_path / "folder").mkdir()
    cases = [((), {"PAYWIRE_PLUGINS": "acme_tagger"}, "sandbox")]
    cases += [(("--ledger-file", str(tmp_path / name)), {}, name) for name in ("notes.db", "folder")]
    for args, env, named in cases:
        result = paywire("--json", "demo", *args, cwd=tmp_path, env=env)
        error = json.loads(result.stdout)["error"]
        assert result.returncode == error["exit_code"] == 3 and error["type"] == "ConfigurationError", result
        assert named in error["message"] and "unexpected error" not in error["message"]


@pytest.mark.parametrize(("options", "args"), [("", ("--backoff-first", "1000")),
                                               ("[paywire.serve]\nintervall = 1\n", ())],
                         ids=["command line", "paywire.toml"])
def test_a_serve_option_that_cannot_work_creates_no_ledger(tmp_path: Path, options: str,
                                                           args: tuple[str, ...]) -> None:
    """The ledger was opened, and so created (a file, a PostgreSQL schema and its tables), before
    the serve options were checked and refused."""
    ledger = tmp_path / "ledger.db"
    (tmp_path / "paywire.toml").write_text(f'[paywire]\nledger = "sqlite:///{ledger}"\n{options}')
    result = paywire("--json", "serve", *args, cwd=tmp_path)
    error = json.loads(result.stdout)["error"]
    assert result.returncode == error["exit_code"] == 3 and "[paywire.serve]" in error["message"], result
    assert not ledger.exists()


def test_ctrl_c_elsewhere_is_exit_130_with_one_line_json_under_json(shop: Path, acme: AcmeEmulator) -> None:
    """Interrupted outside an operation (here: reconcile asking the provider), the process exited
    130 printing nothing: no JSON for a script reading stdout under --json."""
    import signal

    sale = json.loads(paywire("--json", "sale", "cards", "5.00", "EUR", "--source", "tok_async", cwd=shop,
                              env=SECRETS).stdout)
    acme.inject(Fault("hold", method="GET"))
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PAYWIRE_")} | SECRETS
    assert SCRIPT
    with subprocess.Popen(_interruptible("--json", "reconcile", "--payment-id", sale["id"]), cwd=shop, env=environment,
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert acme.wait_until_held(timeout=60)  # reconcile is asking the provider
            proc.send_signal(signal.SIGINT)
            out, err = proc.communicate(timeout=60)
        finally:
            proc.kill()
            acme.release_held()
    assert json.loads(out) == {"error": {"type": "Interrupted", "message": "interrupted before it finished",
                                         "exit_code": 130}}, (out, err)
    assert proc.returncode == 130 and err == ""


@pytest.mark.parametrize("host", ["127.1", "2130706433", "0x7f.0.0.1", "[::ffff:127.0.0.1]", "0.0.0.0", "localhost."])
def test_a_live_method_on_loopback_written_in_another_form_is_a_configuration_error(
        tmp_path: Path, acme: AcmeEmulator, host: str) -> None:
    """Only `127.0.0.1`, `::1` and `localhost` counted as loopback: a live method whose endpoint
    wrote the same address as the resolver also takes it (127.1, a number, hex, IPv4-mapped, the
    unspecified address, a trailing dot) was used, and an operation was sent to this machine."""
    port = acme.base_url.rsplit(":", 1)[1]
    (tmp_path / "paywire.toml").write_text(f'[paywire]\nledger = "sqlite:///{tmp_path / "ledger.db"}"\n\n'
                                           f'[methods.cards]\nprovider = "acme"\nenvironment = "live"\n'
                                           f'base_url = "https://{host}:{port}"\n')
    result = paywire("--json", "sale", "cards", "5.00", "EUR", "--source", "tok_ok", cwd=tmp_path, env=SECRETS)
    error = json.loads(result.stdout)["error"]
    assert result.returncode == error["exit_code"] == 3 and error["type"] == "ConfigurationError", result
    assert "loopback address in the live environment" in error["message"]
    assert not (tmp_path / "ledger.db").exists()


@pytest.mark.parametrize(("methods", "named"), [
    ('[methods.cards-eu]\nprovider = "acme"\n\n[methods.cards_eu]\nprovider = "acme"\n', "'cards-eu' and 'cards_eu'"),
    ('[methods.Cards]\nprovider = "acme"\n\n[methods.cards]\nprovider = "acme"\n', "'Cards' and 'cards'"),
    ('[methods."cards eu"]\nprovider = "acme"\n', "method code 'cards eu'"),
    ('[methods."cards/eu"]\nprovider = "acme"\n', "method code 'cards/eu'"),
    ('[methods.""]\nprovider = "acme"\n', "method code ''"),
], ids=["dash and underscore", "case", "space", "slash", "empty"])
def test_a_method_code_that_cannot_have_credentials_of_its_own_is_a_configuration_error(
        tmp_path: Path, methods: str, named: str) -> None:
    """Two methods whose codes differ only by case or by '-' and '_' read the same
    PAYWIRE_<CODE>_API_KEY and PAYWIRE_<CODE>_ENVIRONMENT, so one account's credentials and
    environment served both without a word; a code with a space or a dot asked for a variable no
    shell sets, and an empty one or one with a '/' could never receive a webhook."""
    (tmp_path / "paywire.toml").write_text(methods)
    result = paywire("--json", "methods", cwd=tmp_path)
    error = json.loads(result.stdout)["error"]
    assert result.returncode == error["exit_code"] == 3 and error["type"] == "ConfigurationError", result
    assert named in error["message"] and "Traceback" not in result.stderr


@pytest.fixture
def database_proxy(postgres_dsn: str) -> Iterator[DatabaseProxy]:
    proxy = DatabaseProxy(postgres_dsn)
    yield proxy
    proxy.close()


@pytest.mark.postgres
def test_a_sale_sent_while_the_ledger_went_away_is_exit_5_naming_its_key(
        tmp_path: Path, acme: AcmeEmulator, database_proxy: DatabaseProxy) -> None:
    """The provider applied the sale; the ledger went away before its answer was recorded. The
    payment service said the outcome is unknown and named the key, but the command line read the
    ledger again to add its advice, and that read's driver error replaced the unknown outcome:
    exit 70, "an unexpected error inside paywire", no key, and a sale run again without one
    charged a second time."""
    proxy = database_proxy
    schema = f"pwtest_{os.getpid()}_cli_gone"
    (tmp_path / "paywire.toml").write_text(f'[paywire]\nledger = "{proxy.dsn}?schema={schema}"\n\n[methods.cards]\n'
                                           f'provider = "acme"\nbase_url = "{acme.base_url}"\n')
    acme.inject(Fault("hold", path="payments", method="POST"))
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PAYWIRE_")} | SECRETS
    assert SCRIPT
    with subprocess.Popen([SCRIPT, "--json", "sale", "cards", "5.00", "EUR", "--source", "tok_ok"], cwd=tmp_path,
                          env=environment, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
        try:
            assert acme.wait_until_held(timeout=60)  # the sale applied at the provider, its answer held
            proxy.down()
            acme.release_held()
            out, err = proc.communicate(timeout=120)
        finally:
            proc.kill()
            acme.release_held()
            proxy.up()
    error = json.loads(out)["error"]
    assert proc.returncode == error["exit_code"] == 5 and error["type"] == "OutcomeUnknown", (out, err)
    key = f"paywire-{error['payment_id']}-sale-1"
    assert key in error["message"] and "unexpected error" not in error["message"]
    again = paywire("--json", "sale", "cards", "5.00", "EUR", "--source", "tok_ok", "--idempotency-key", key,
                    cwd=tmp_path, env=SECRETS)
    assert again.returncode in (0, 7) and json.loads(again.stdout).get("error", {}).get("code") in (None, "in_progress")
    assert len(acme.payments) == 1  # run again with its key (done, or still in progress): charged once


@pytest.mark.parametrize("provider", ["stripe", "paypal"])
def test_void_cancels_a_payment_waiting_for_its_buyer_or_says_why_not_and_reconcile_reads_the_waiting(
        tmp_path: Path, provider: str) -> None:
    pytest.importorskip(f"paywire_{provider}", reason=f"{provider}'s buyer action: installed in the all session only")
    from paywire.plugins import default_plugins
    from paywire.testing.sandbox import load_sandbox

    sandbox = load_sandbox(default_plugins().gateway(provider))
    with EmulatorServer(sandbox.app) as server:
        (tmp_path / "paywire.toml").write_text(f'[paywire]\nledger = "sqlite:///{tmp_path / "l.db"}"\nbuyer_wait = 0\n'
                                               f'[methods.{provider}]\nbase_url = "{server.url}"\n')
        env = {f"PAYWIRE_{provider.upper()}_{name.upper()}": value for name, value in sandbox.credentials.items()}
        waiting = json.loads(paywire("--json", "authorize", provider, "5.00", "EUR", "--source",
                                     sandbox.sources["buyer_action"], "--return-url", "https://shop.example/back",
                                     cwd=tmp_path, env=env).stdout)
        assert waiting["state"] == "action_required"
        voided = paywire("--json", "void", waiting["id"], "--idempotency-key", "cancel-1", cwd=tmp_path, env=env)
        reconciled = paywire("--json", "reconcile", cwd=tmp_path, env=env)
    if provider == "stripe":
        assert voided.returncode == 0 and json.loads(voided.stdout)["state"] == "voided"
    else:
        error = json.loads(voided.stdout)["error"]
        assert voided.returncode == error["exit_code"] and error["type"] == "UnsupportedOperation"
        assert error["code"] == "no_cancel_waiting" and "nothing was sent" in error["message"]
    assert reconciled.returncode == 0 and json.loads(reconciled.stdout)["caught_up"] == [waiting["id"]]


# -- a first operation refused before sending creates no ledger ---------------------------------------
@pytest.mark.parametrize("operation", ["pay", "authorize", "sale"])
@pytest.mark.parametrize(("args", "message"), [
    (("cards", "0", "EUR"), "the amount must be above zero, got 0.00 EUR; write a positive amount"),
    (("cards", "-5", "EUR"), "the amount must be above zero, got -5.00 EUR; write a positive amount"),
    (("invoice", "5.00", "EUR"), "5.00 EUR is below its min_total 50.00"),
    (("cards", "5.00", "EUR", "--order-id", "o" * 1100), "order_id is longer than the 1024 bytes"),
    (("cards", "5.00", "EUR", "--order-id", ""), "order_id is empty; pass None (or leave the option out)"),
    (("cards", "5.00", "EUR", "--return-url", ""), "return_url is empty; pass None (or leave the option out)"),
])
def test_a_first_operation_the_service_refuses_creates_no_ledger(
        shop: Path, acme: AcmeEmulator, operation: str, args: tuple[str, ...], message: str) -> None:
    """An amount of zero or less, a method not offered for the total, an order id the ledger cannot
    keep: refused before anything is sent, so nothing changes, not even a new, empty ledger file
    (they were refused by the payment service once the ledger was opened, and so created)."""
    for json_flag in ((), ("--json",)):
        result = paywire(*json_flag, operation, *args, "--source", "tok_ok", cwd=shop, env=SECRETS)
        assert result.returncode == 2, result
        said = json.loads(result.stdout)["error"]["message"] if json_flag else result.stderr
        assert message in said and "Traceback" not in result.stderr, said
        assert not (shop / "ledger.db").exists()
    assert acme.payments == {}


@pytest.mark.parametrize("amount", ["0", "-5", "-0.01"])
def test_methods_refuses_an_order_total_of_zero_or_less(shop: Path, amount: str) -> None:
    """No payment can be made of such a total: it was answered exit 0 with methods offered."""
    result = paywire("--json", "methods", "--amount", amount, "--currency", "EUR", cwd=shop, env=SECRETS)
    assert result.returncode == 2, result
    error = json.loads(result.stdout)["error"]
    assert "the amount must be above zero" in error["message"] and "write a positive amount" in error["message"]
    assert result.stderr == ""


@pytest.mark.parametrize(("table", "message"), [
    ('[methods.cards]\nprovider = "acme"\nbase_urll = "http://127.0.0.1:1"\n', "unknown setting 'base_urll'"),
    ('[methods.cards]\nprovider = "acme"\napi_key = "sk_inline_value"\n', "a credential is not a setting"),
    ('[paywire]\nledgr = "sqlite:///x.db"\n', "ledgr"),
])
def test_a_configuration_error_names_the_file_to_fix(tmp_path: Path, table: str, message: str) -> None:
    """A setting refused names the file it is in (it named only the table: with PAYWIRE_CONFIG
    pointing elsewhere, which file was meant was left to guess), and never quotes an inline secret."""
    (tmp_path / "shop.toml").write_text(table)
    result = paywire("--config", str(tmp_path / "shop.toml"), "methods", cwd=tmp_path)
    assert result.returncode == 3, result
    assert f"configuration file {str(tmp_path / 'shop.toml')!r}: " in result.stderr and message in result.stderr
    assert "sk_inline_value" not in result.stderr + result.stdout
    assert len(result.stderr.strip().splitlines()) == 1


@pytest.mark.parametrize("url", URLS[:4] + URLS[5:6] + URLS[-3:])  # a ledger URL's password (tests/ledger)
def test_the_command_line_prints_no_ledger_password(url: str, tmp_path: Path) -> None:
    for flags in ((), ("--json",)):
        result = paywire(*flags, "--ledger", url, "authorize", "acme", "1.00", "EUR", "--source", "tok_ok",
                         cwd=tmp_path, env={"PAYWIRE_ACME_API_KEY": "acme_test_key"})
        assert result.returncode == 3, result.stderr
        assert PASSWORD not in result.stdout + result.stderr, flags
        if flags:
            json.loads(result.stdout or result.stderr)


@pytest.mark.parametrize("port", ["abc", "99999"])
def test_a_ledger_url_port_that_is_no_port_is_a_configuration_error(port: str, tmp_path: Path) -> None:
    """Exit 3 with one line naming the port, the password masked; it was exit 70, "an unexpected
    error inside paywire", from urllib's ValueError."""
    url = f"postgresql://shop:{PASSWORD}@127.0.0.1:{port}/test"
    for flags in ((), ("--json",)):
        result = paywire(*flags, "--ledger", url, "payments", cwd=tmp_path)
        assert result.returncode == 3, result
        shown = result.stdout + result.stderr
        assert f"the port {port!r}" in shown and "shop:***@" in shown and PASSWORD not in shown
        assert "Traceback" not in shown and len(shown.strip().splitlines()) == 1
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("netloc", ["shop:Pw9xSecret@127.0.0.1:abc", "127.0.0.1:99999", "exa mple.com"])
def test_a_base_url_no_request_can_be_sent_to_changes_nothing(netloc: str, tmp_path: Path) -> None:
    """A method's base_url with a port that is no port, or a host no request can name: exit 3 with
    one line, no ledger created (the operation was recorded, then left unknown: exit 5)."""
    (tmp_path / "paywire.toml").write_text(f'[paywire]\nledger = "sqlite:///{tmp_path / "ledger.db"}"\n\n'
                                           f'[methods.cards]\nprovider = "acme"\nbase_url = "https://{netloc}"\n')
    result = paywire("authorize", "cards", "10.00", "EUR", "--source", "tok_ok", cwd=tmp_path,
                     env={"PAYWIRE_CARDS_API_KEY": "acme_test_key"})
    assert result.returncode == 3, result
    assert "ConfigurationError" in result.stderr and "Pw9xSecret" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1 and not (tmp_path / "ledger.db").exists()


@pytest.mark.skipif(not os.path.exists("/dev/zero"), reason="needs /dev/zero, an endless file")
@pytest.mark.parametrize("option", ["body", "--headers"])
def test_a_webhook_file_larger_than_any_webhook_is_refused_without_reading_it_all(shop: Path, option: str) -> None:
    """`/dev/zero` (or a stream that does not end) was read whole: a MemoryError, exit 70, once
    the process ran out of memory. The process is given 1 GiB of address space here, so that a
    read without a bound fails fast instead of taking the machine's memory."""
    import resource

    def limited() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30))

    (shop / "event.json").write_bytes(b"{}")
    files = ["/dev/zero"] if option == "body" else ["event.json", "--headers", "/dev/zero"]
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PAYWIRE_")} | SECRETS
    assert SCRIPT
    result = subprocess.run([SCRIPT, "verify-webhook", "cards", *files], cwd=shop, env=environment,
                            capture_output=True, text=True, timeout=120, preexec_fn=limited)
    assert result.returncode == 2, result.stderr
    assert "/dev/zero" in result.stderr and "1048576 bytes" in result.stderr, result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def test_a_base_url_read_with_its_line_break_changes_nothing(tmp_path: Path, acme: AcmeEmulator) -> None:
    """PAYWIRE_<CODE>_BASE_URL set from a file keeps its line break: the request went to
    /%0D%0A/v1/payments and was recorded failed; now exit 3, and no ledger is made."""
    (tmp_path / "paywire.toml").write_text(f'[paywire]\nledger = "sqlite:///{tmp_path / "ledger.db"}"\n\n'
                                           '[methods.cards]\nprovider = "acme"\n')
    result = paywire("authorize", "cards", "10.00", "EUR", "--source", "tok_ok", cwd=tmp_path,
                     env={"PAYWIRE_CARDS_API_KEY": "acme_test_key", "PAYWIRE_CARDS_BASE_URL": f"{acme.base_url}/\r\n"})
    assert result.returncode == 3 and "control character" in result.stderr, result
    assert not (tmp_path / "ledger.db").exists() and acme.payments == {}
