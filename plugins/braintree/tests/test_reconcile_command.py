"""`paywire reconcile`, run from cron instead of `paywire serve`, finishes a sale Braintree holds
authorized but never submitted for settlement (answered AUTHORIZING, authorized later) as the
Janitor does: a resend under its key, recorded from Braintree's answer only. The command itself,
as a process, against the emulator over loopback HTTP and the shop's SQLite ledger."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from paywire import Money, PaymentService
from paywire.testing.emulator import EmulatorServer, Fault
from paywire.testing.sandbox import Sandbox
from paywire_braintree.emulator import BraintreeEmulator

from .conftest import ServiceFactory

EUR = "EUR"
AUTHORIZING_CHARGE = "paywire-emulator-authorizing-charge-nonce"
SCRIPT = shutil.which("paywire", path=os.path.dirname(sys.executable)) or shutil.which("paywire")


@pytest.fixture
def reconcile(sandbox: Sandbox, emulator: BraintreeEmulator, tmp_path: Path) -> Any:
    """`paywire --json reconcile` on the test's ledger (tmp_path/ledger.db) and emulator: (exit code, report)."""
    assert SCRIPT, "the paywire console script is not installed"
    accounts = ", ".join(f'{code} = "{account}"' for code, account in sandbox.options["merchant_accounts"].items())
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PAYWIRE_")} | {
        f"PAYWIRE_BRAINTREE_{name.upper()}": value for name, value in sandbox.credentials.items()}
    with EmulatorServer(emulator) as server:
        (tmp_path / "paywire.toml").write_text(
            f'[paywire]\nledger = "sqlite:///{tmp_path / "ledger.db"}"\n'
            f'[methods.braintree]\nbase_url = "{server.url}"\nenvironment = "sandbox"\n'
            f"[methods.braintree.options]\nmerchant_accounts = {{ {accounts} }}\n")

        def run() -> tuple[int, dict[str, Any]]:
            done = subprocess.run([SCRIPT, "--json", "reconcile"], cwd=tmp_path, env=environment,
                                  capture_output=True, text=True, timeout=120)
            assert done.stdout, done.stderr
            return done.returncode, json.loads(done.stdout)
        yield run


def _authorized_sale(service: PaymentService, emulator: BraintreeEmulator, key: str) -> tuple[str, str, str]:
    """A sale Braintree answered AUTHORIZING, then authorized and holds unsubmitted: (its payment,
    its transaction in the ledger, Braintree's id)."""
    emulator.settlement = "batch"
    payment = service.sale("braintree", Money.of("12.00", EUR), source=AUTHORIZING_CHARGE, order_id=key,
                           idempotency_key=key)
    (txn,) = service.list_transactions(payment.id)
    assert txn.status == "accepted"
    reference = payment.reference or ""
    emulator.settle(reference)
    assert emulator.transactions[reference].status == "AUTHORIZED"
    return payment.id, txn.id, reference


def test_a_reconcile_run_submits_an_unfinished_sale_once_and_counts_it_captured_from_the_answer(
        services: ServiceFactory, emulator: BraintreeEmulator, reconcile: Any) -> None:
    service = services()
    payment_id, txn_id, reference = _authorized_sale(service, emulator, "cron-1")

    code, report = reconcile()
    assert code == 0, report
    assert report["resent"] == [txn_id]
    assert [(s["transaction"], s["status"]) for s in report["settled"]] == [(txn_id, "succeeded")]
    assert report["unresolved"] == [] and report["errors"] == []
    assert emulator.transactions[reference].status == "SUBMITTED_FOR_SETTLEMENT"
    assert service.get_transaction(txn_id).status == "succeeded"
    payment = service.get_payment(payment_id)
    assert payment.captured == Money.of("12.00", EUR) and payment.state == "captured"

    again = reconcile()
    assert again[0] == 0 and again[1]["resent"] == [] and again[1]["settled"] == []
    assert emulator.transactions[reference].status == "SUBMITTED_FOR_SETTLEMENT"
    assert service.get_payment(payment_id).captured == Money.of("12.00", EUR)


@pytest.mark.parametrize("lost", ["landed, its answer lost", "never reached Braintree"])
def test_a_lost_resend_leaves_the_sale_open_and_the_next_run_settles_it_as_braintree_holds_it(
        services: ServiceFactory, emulator: BraintreeEmulator, reconcile: Any, lost: str) -> None:
    service = services()
    payment_id, txn_id, reference = _authorized_sale(service, emulator, f"cron-{lost[:5]}")
    landed = lost.startswith("landed")
    emulator.inject(Fault("drop_after", path="captureTransaction") if landed
                    else Fault("status", status=503, path="captureTransaction"))

    code, report = reconcile()
    assert code == 5, report  # left open: the shop's cron sees it
    assert report["resent"] == [txn_id]
    assert [s["transaction"] for s in report["unresolved"]] == [txn_id] and report["settled"] == []
    assert service.get_transaction(txn_id).status == "unknown", "sent, no answer: never failed"
    assert emulator.transactions[reference].status == ("SUBMITTED_FOR_SETTLEMENT" if landed else "AUTHORIZED")
    assert service.get_payment(payment_id).captured == Money.of("0", EUR), "counted only from an answer"

    code, report = reconcile()
    assert code == 0, report
    assert report["resent"] == ([] if landed else [txn_id]), "read submitted: nothing sent again"
    assert emulator.transactions[reference].status == "SUBMITTED_FOR_SETTLEMENT"
    assert service.get_transaction(txn_id).status == "succeeded"
    assert service.get_payment(payment_id).captured == Money.of("12.00", EUR)


def test_a_sale_braintree_declined_after_authorizing_is_concluded_without_a_resend(
        services: ServiceFactory, emulator: BraintreeEmulator, reconcile: Any) -> None:
    service = services()
    emulator.settlement = "batch"
    payment = service.sale("braintree", Money.of("12.00", EUR), source=AUTHORIZING_CHARGE, order_id="cron-d",
                           idempotency_key="cron-d")
    emulator.settle(payment.reference or "", "PROCESSOR_DECLINED")

    code, report = reconcile()
    assert code == 0, report
    assert report["resent"] == []
    assert [s["status"] for s in report["settled"]] == ["failed"]
    assert service.get_payment(payment.id).captured == Money.of("0", EUR)
