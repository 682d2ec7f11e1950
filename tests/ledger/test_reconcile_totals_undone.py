"""Reconciliation from running totals alone, when the provider's total is below what the
ledger's succeeded operations applied: the provider undid one of them since (a refund that failed
at the bank after it succeeded, a capture declined at settlement), which a total cannot name. An
open operation may then have applied all the same, so it is not concluded not applied: it stays
open, to check by hand, and the payment is reported."""

from __future__ import annotations

from pathlib import Path

import pytest

from paywire import Money
from paywire.command.result import CommandResult, ProviderState
from paywire.ledger import SQLiteLedger, TransactionStatus
from tests.ledger.ledger_rows import authorized, history, row, settle_reading, write

S = TransactionStatus


@pytest.mark.parametrize("kind", ["capture", "refund"])
def test_an_open_operation_is_not_failed_when_the_total_is_below_the_ledgers(tmp_path: Path, kind: str) -> None:
    ledger = SQLiteLedger(tmp_path / "ledger.db")
    try:
        payment = authorized(10_000)
        rows = history(payment, kind)
        undone = row(payment, kind, 3_000, S.SUCCEEDED, provider_reference=f"{kind}_0")  # undone since at the provider
        lost = row(payment, kind, 2_000, S.UNKNOWN)  # applied, its answer lost
        write(ledger, payment, *rows, undone, lost)
        reading = CommandResult(reference="fp_1", state=ProviderState.PARTIALLY_CAPTURED,
                                authorized=Money(10_000, "EUR"),
                                captured=Money(10_000 if kind == "refund" else 2_000, "EUR"),
                                refunded=Money(2_000 if kind == "refund" else 0, "EUR"))
        _, decisions, mismatches = settle_reading(ledger, payment, reading)
        assert ledger.get_transaction(lost.id).status == S.UNKNOWN  # type: ignore[union-attr]
        (decision,) = [d for d in decisions if d.transaction_id == lost.id]
        assert decision.status is None and "check it by hand" in decision.note
        assert [m.field for m in mismatches] == [{"capture": "captured", "refund": "refunded"}[kind]]
    finally:
        ledger.close()
