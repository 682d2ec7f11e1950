"""Writes that leave columns empty (a payment without a buyer action, a pending transaction, an
answer without an error or a token) write them NULL in the statement itself, and flags as the
dialect stores them: every mix of empty and filled columns, and of flags, reads back as written,
on every backend."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import attrs
import pytest

from paywire.ledger import Ledger, PaymentState, TransactionStatus
from paywire.ledger.model import SettledBy
from paywire.subject import BuyerAction
from tests.ledger.test_storage_conformance import T0, payment, txn

_ACTION = BuyerAction("https://pay.example/3ds/1", "https://shop.example/back", "redirect")
_LATER = T0 + timedelta(seconds=1)
_OUTCOME_COLUMNS: dict[str, Any] = {
    "provider_reference": "fp_1", "error_type": "Declined", "error_code": "card_declined",
    "error_message": "the card was declined", "token": "tok_1", "finished_at": _LATER, "settled_by": SettledBy.ANSWER,
}


@pytest.mark.parametrize(("first", "then"), [(None, _ACTION), (_ACTION, None), (None, None)])
def test_a_payment_reads_back_as_written_with_or_without_its_buyer_action(
        ledger: Ledger, first: BuyerAction | None, then: BuyerAction | None) -> None:
    state = PaymentState.ACTION_REQUIRED if first else PaymentState.PENDING
    written = payment(action=first, state=state, capture_closed=True, voided=False, failed=True)
    with ledger.unit() as u:
        u.insert_payment(written)
    assert ledger.get_payment(written.id) == written
    changed = attrs.evolve(written, action=then, failed=False, voided=True, updated_at=_LATER,
                           state=PaymentState.ACTION_REQUIRED if then else PaymentState.VOIDED)
    with ledger.unit() as u:
        u.update_payment(changed)
    assert ledger.get_payment(written.id) == changed


@pytest.mark.parametrize("filled", [(), tuple(_OUTCOME_COLUMNS), *((name,) for name in _OUTCOME_COLUMNS)])
def test_a_transaction_reads_back_as_inserted_whichever_outcome_columns_it_fills(
        ledger: Ledger, filled: tuple[str, ...]) -> None:
    inserted = txn(status=TransactionStatus.FAILED if filled else TransactionStatus.PENDING,
                   retryable=bool(filled), **{name: _OUTCOME_COLUMNS[name] for name in filled})
    with ledger.unit() as u:
        u.insert_payment(payment())
        u.insert_transaction(inserted)
    assert ledger.get_transaction(inserted.id) == inserted


@pytest.mark.parametrize("answer", [
    {"status": TransactionStatus.SUCCEEDED},
    {"status": TransactionStatus.SUCCEEDED, "token": "tok_1"},
    {"status": TransactionStatus.FAILED, "error_type": "Declined", "error_code": "card_declined",
     "error_message": "the card was declined", "retryable": True},
    {"status": TransactionStatus.FAILED, "error_message": "refused"},
])
def test_an_outcome_reads_back_as_recorded_with_or_without_an_error_or_a_token(
        ledger: Ledger, answer: dict[str, Any]) -> None:
    pending = txn()
    with ledger.unit() as u:
        u.insert_payment(payment())
        u.insert_transaction(pending)
    finished = attrs.evolve(pending, provider_reference="fp_1", response={"status": answer["status"]},
                            updated_at=_LATER, finished_at=_LATER, settled_by=SettledBy.ANSWER, **answer)
    with ledger.unit() as u:
        assert u.finish_transaction(finished, claimed_at=pending.updated_at)
    assert ledger.get_transaction(pending.id) == finished
