"""An answer the ledger refuses to record, twice: the database itself refuses the write (a trigger
stands in for a full disk or a revoked grant), not a lock held too long (`LedgerBusy`, see
test_ledger_contention.py). The request was sent, so its outcome is unknown: the caller gets
`OutcomeUnknown` naming the transaction, which stays open (never failed) and is settled from the
provider once the database takes writes again."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager

import pytest

from paywire import OutcomeUnknown
from paywire.ledger import Ledger, PostgresLedger, SQLiteLedger, TransactionStatus
from paywire.service import PaymentService
from tests.ledger.fakepay import FakePayApp
from tests.ledger.support import eur, step_past_life, unrecorded_capture_settles_later

S = TransactionStatus
_PG_REFUSE = """
CREATE FUNCTION "{schema}".refuse_writes() RETURNS trigger LANGUAGE plpgsql AS
$$ BEGIN RAISE EXCEPTION 'writes refused'; END $$;
CREATE TRIGGER refuse_writes BEFORE UPDATE ON "{schema}".paywire_transactions
FOR EACH ROW EXECUTE FUNCTION "{schema}".refuse_writes();
"""
_PG_ALLOW = 'DROP TRIGGER refuse_writes ON "{schema}".paywire_transactions; DROP FUNCTION "{schema}".refuse_writes();'


@pytest.fixture
def refusing(ledger: Ledger, request: pytest.FixtureRequest) -> Callable[[], AbstractContextManager[None]]:
    """While open: every update of a transaction row fails in the database."""
    @contextmanager
    def refuse() -> Iterator[None]:
        if isinstance(ledger, SQLiteLedger):
            with sqlite3.connect(ledger.path, isolation_level=None) as conn:
                conn.execute("CREATE TRIGGER refuse_writes BEFORE UPDATE ON paywire_transactions "
                             "BEGIN SELECT RAISE(ABORT, 'writes refused'); END")
            try:
                yield
            finally:
                with sqlite3.connect(ledger.path, isolation_level=None) as conn:
                    conn.execute("DROP TRIGGER refuse_writes")
            return
        import psycopg

        assert isinstance(ledger, PostgresLedger) and ledger.schema
        with psycopg.connect(request.getfixturevalue("postgres_dsn"), autocommit=True) as conn:
            conn.execute(_PG_REFUSE.format(schema=ledger.schema))
            try:
                yield
            finally:
                conn.execute(_PG_ALLOW.format(schema=ledger.schema))
    return refuse


def test_an_answer_the_database_refuses_to_record_is_unknown_and_settled_later_never_failed(
        patient: PaymentService, app: FakePayApp, refusing: Callable[[], AbstractContextManager[None]],
        monkeypatch: pytest.MonkeyPatch) -> None:
    service = patient  # the capture's answer is read however loaded the machine; its life is stepped past
    payment = service.authorize("fakepay", eur("50.00"), source="tok_ok")
    with refusing(), pytest.raises(OutcomeUnknown) as raised:
        service.capture(payment.id, eur("20.00"), idempotency_key="capture-1")
    error = raised.value
    assert "writes refused" in str(error) and "could not be recorded" in str(error), error
    assert error.__cause__ is not None and "writes refused" in str(error.__cause__)
    step_past_life(service, [error.transaction_id or ""], monkeypatch)
    unrecorded_capture_settles_later(service, app, payment.id, error)
