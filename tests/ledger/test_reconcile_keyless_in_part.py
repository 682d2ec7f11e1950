"""Reconciliation by operations the provider lists without the keys they were sent with (matched
by amount), where the provider may apply a capture or refund in part: an operation of one open
transaction's amount may be a larger one's, applied in part. Which took effect cannot be told,
so neither is settled on the amount match: the smaller one is not recorded succeeded for an
operation that may be another's, and the larger one is not concluded not applied."""

from __future__ import annotations

from pathlib import Path

import pytest

from paywire import Money
from paywire.command.result import CommandResult, ProviderOperation, ProviderState
from paywire.ledger import SQLiteLedger, TransactionStatus
from tests.ledger.ledger_rows import authorized, history, row, settle_reading, write

S = TransactionStatus


@pytest.mark.parametrize("kind", ["capture", "refund"])
def test_an_operation_of_one_amount_may_be_a_larger_one_applied_in_part(tmp_path: Path, kind: str) -> None:
    ledger = SQLiteLedger(tmp_path / "ledger.db")
    try:
        payment = authorized(10_000)
        rows = history(payment, kind)
        larger, smaller = row(payment, kind, 3_000, S.UNKNOWN), row(payment, kind, 2_000, S.UNKNOWN)
        write(ledger, payment, *rows, larger, smaller)
        # The provider applied the larger one in part (20.00 of 30.00); the smaller one never landed.
        listed = ProviderOperation(kind=kind, reference=f"{kind}_1", amount=Money(2_000, "EUR"), status="succeeded")
        captured = 10_000 if kind == "refund" else 2_000
        reading = CommandResult(reference="fp_1", state=ProviderState.PARTIALLY_CAPTURED,
                                authorized=Money(10_000, "EUR"), captured=Money(captured, "EUR"),
                                refunded=Money(2_000 if kind == "refund" else 0, "EUR"), operations=(listed,))
        settle_reading(ledger, payment, reading)
        assert ledger.get_transaction(larger.id).status != S.FAILED  # type: ignore[union-attr]
        assert ledger.get_transaction(smaller.id).status != S.SUCCEEDED  # type: ignore[union-attr]
    finally:
        ledger.close()


def test_the_larger_one_listed_in_full_still_settles_both(tmp_path: Path) -> None:
    """Both listed at what they asked: each is the operation of its own amount."""
    ledger = SQLiteLedger(tmp_path / "ledger.db")
    try:
        payment = authorized(10_000)
        larger, smaller = row(payment, "capture", 3_000, S.UNKNOWN), row(payment, "capture", 2_000, S.UNKNOWN)
        write(ledger, payment, *history(payment, "capture"), larger, smaller)
        listed = (ProviderOperation(kind="capture", reference="cap_1", amount=Money(2_000, "EUR"), status="succeeded"),
                  ProviderOperation(kind="capture", reference="cap_2", amount=Money(3_000, "EUR"), status="succeeded"))
        reading = CommandResult(reference="fp_1", state=ProviderState.PARTIALLY_CAPTURED,
                                authorized=Money(10_000, "EUR"), captured=Money(5_000, "EUR"),
                                refunded=Money(0, "EUR"), operations=listed)
        settle_reading(ledger, payment, reading)
        assert [ledger.get_transaction(t.id).status for t in (larger, smaller)] == [S.SUCCEEDED, S.SUCCEEDED]  # type: ignore[union-attr]
        assert ledger.get_payment(payment.id).captured == Money(5_000, "EUR")  # type: ignore[union-attr]
    finally:
        ledger.close()
