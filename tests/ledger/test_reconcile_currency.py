"""A reading whose captures or refunds are in another currency than the payment's (a provider
holding the money in its merchant account's currency, or a plugin mapping the wrong field): the
operation may be the open transaction (its key, its reference say so), but what it applied cannot
be told in the payment's terms, so the transaction is left open, to check by hand, instead of
recorded as applying all it asked, or failed for want of an operation in its currency."""

from __future__ import annotations

from pathlib import Path

import pytest

from paywire import Money
from paywire.command.result import CommandResult, ProviderOperation, ProviderState
from paywire.ledger import SQLiteLedger, TransactionStatus
from tests.ledger.ledger_rows import authorized, history, row, settle_reading, write

S = TransactionStatus


@pytest.mark.parametrize("named_by", ["key", "amount"])
def test_a_capture_listed_in_another_currency_stays_open(tmp_path: Path, named_by: str) -> None:
    ledger = SQLiteLedger(tmp_path / "ledger.db")
    try:
        payment = authorized(5_000)
        capture = row(payment, "capture", 2_000, S.UNKNOWN)
        write(ledger, payment, *history(payment, "capture"), capture)
        listed = ProviderOperation(kind="capture", reference="cap_1", amount=Money(2_000, "USD"), status="succeeded",
                                   idempotency_key=capture.idempotency_key if named_by == "key" else None)
        reading = CommandResult(reference="fp_1", state=ProviderState.PARTIALLY_CAPTURED,
                                authorized=Money(5_000, "EUR"), operations=(listed,))
        _, settled, _ = settle_reading(ledger, payment, reading)
        assert ledger.get_transaction(capture.id).status == S.UNKNOWN  # type: ignore[union-attr]
        (decision,) = [s for s in settled if s.transaction_id == capture.id]
        assert decision.status is None and "USD" in decision.note and "check it by hand" in decision.note
        assert ledger.get_payment(payment.id).captured == Money(0, "EUR")  # type: ignore[union-attr]
    finally:
        ledger.close()
