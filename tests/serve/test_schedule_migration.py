"""Migration 3 (reconciliation's schedule) upgrades a ledger of the previous release (schema 2,
with its rows) in place on SQLite and PostgreSQL; the looks it keeps round-trip."""

from __future__ import annotations

from datetime import timedelta

import pytest

from paywire.ledger import Ledger, TransactionStatus, open_ledger
from paywire.ledger.migrations import MIGRATIONS
from paywire.ledger.model import Look, now
from tests.ledger.conftest import backend, ledger_url  # noqa: F401 - fixtures
from tests.ledger.test_migrations import _snapshot, snapshot_of, written_by
from tests.ledger.test_storage_conformance import payment, txn


@pytest.fixture
def release_2(ledger_url: str) -> str:  # noqa: F811 - the fixture
    """A ledger URL holding schema 2 (the release before the schedule) and rows in it."""
    def fill(old: Ledger) -> None:
        with old.unit() as u:
            u.insert_payment(payment(references={"payment": "fp_1"}))
            u.insert_transaction(txn("txn_open", key="k-open", status=TransactionStatus.ACCEPTED, settle_after=now()))
            u.insert_transaction(txn("txn_done", key="k-done", status=TransactionStatus.SUCCEEDED, finished_at=now()))

    return written_by(2, ledger_url, fill)


def test_the_schedule_migration_keeps_every_row_and_its_looks_round_trip(release_2: str) -> None:
    before = snapshot_of(2, release_2)
    ledger = open_ledger(release_2)
    try:
        assert ledger.schema_version() == MIGRATIONS[-1].version >= 3
        assert _snapshot(ledger) == before and len(before["transactions"]) == 2
        assert ledger.looks(["txn_open", "txn_done"]) == {}
        at = now().replace(microsecond=0)
        with ledger.unit() as u:
            u.set_looks({"txn_open": Look(1, at)})
        with ledger.unit() as u:
            assert u.looks(["txn_open"]) == {"txn_open": Look(1, at)}
            u.set_looks({"txn_open": Look(2, at + timedelta(seconds=30))})  # replaced, not added
        assert ledger.looks(["txn_open"] * 3 + [f"txn_{i}" for i in range(600)]) == {
            "txn_open": Look(2, at + timedelta(seconds=30))}
        with ledger.unit() as u:
            u.set_looks({"txn_open": None})
        assert ledger.looks(["txn_open"]) == {}
        assert open_ledger(release_2).schema_version() == MIGRATIONS[-1].version  # a second start: no-op
    finally:
        ledger.close()
