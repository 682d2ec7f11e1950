"""The outcome model as documented is the outcome model in the code."""

from __future__ import annotations

from pathlib import Path

from paywire.ledger.model import TransactionStatus
from paywire.service.lifecycle import OUTCOME_MODEL, outcome_table

ROOT = Path(__file__).resolve().parents[2]


def test_docs_show_the_outcome_model_as_the_code_holds_it() -> None:
    assert outcome_table() in (ROOT / "docs" / "ledger.md").read_text(encoding="utf-8")


def test_every_status_has_one_row_and_the_open_ones_count_as_in_flight() -> None:
    statuses = {value for name, value in vars(TransactionStatus).items() if name.isupper() and isinstance(value, str)}
    assert [o.status for o in OUTCOME_MODEL] == list(dict.fromkeys(o.status for o in OUTCOME_MODEL))
    assert {o.status for o in OUTCOME_MODEL} == statuses
    assert {o.status for o in OUTCOME_MODEL if o.money == "in flight"} == TransactionStatus.OPEN
