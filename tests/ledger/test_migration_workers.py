"""Workers of a new release starting together on a PostgreSQL ledger an old release wrote, each a
process of its own: one upgrades it while the others wait for the migrations' lock and then find
it done; the one upgrading, cut off half-way (`pg_terminate_backend`), leaves the old ledger
whole and says the database failed (retryable), and the next worker upgrades it. The order is
set by locks a test session holds, never by timing.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from paywire.ledger import open_ledger
from paywire.ledger.migrations import MIGRATIONS
from tests.ledger.support import wait_until
from tests.ledger.test_migration_history import _every_row, _fill
from tests.ledger.test_migrations import schema, written_by

psycopg = pytest.importorskip("psycopg", reason="the PostgreSQL ledger's tests need psycopg")

# Opens the ledger and prints what came of it, as one JSON line.
_START = """
import json, sys
from paywire.ledger import open_ledger
try:
    ledger = open_ledger(sys.argv[1])
    print(json.dumps({"version": ledger.schema_version()}))
    ledger.close()
except Exception as exc:
    print(json.dumps({"error": type(exc).__name__, "code": getattr(exc, "code", None), "message": str(exc)}))
"""


def _blocked_by(dsn: str, pid: int) -> list[int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", (pid,))
        return [int(row[0]) for row in rows]


@pytest.mark.postgres
def test_workers_starting_together_upgrade_once_and_one_cut_off_half_way_leaves_the_old_ledger(
        postgres_dsn: str) -> None:
    import os
    import secrets

    name = f"pwtest_{os.getpid()}_{secrets.token_hex(4)}_Up"  # a name PostgreSQL must quote
    url = f"{postgres_dsn}?schema={name}"
    with schema(1):
        old = open_ledger(written_by(1, url, _fill(1)))
        before = _every_row(old)
        old.close()
    lock = f"paywire:migrate:{name}"
    with psycopg.connect(postgres_dsn, autocommit=True) as gate, psycopg.connect(postgres_dsn) as table:
        gate.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (lock,))
        # The worker upgrading stops at the first migration touching the payments, earlier ones done.
        table.execute(f'LOCK TABLE "{name}".paywire_payments IN ACCESS EXCLUSIVE MODE')
        workers = [subprocess.Popen([sys.executable, "-c", _START, url], stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True) for _ in range(4)]
        try:
            gate_pid, table_pid = gate.info.backend_pid, table.info.backend_pid
            wait_until(lambda: len(_blocked_by(postgres_dsn, gate_pid)) == 4, "every worker waits for the lock",
                       timeout=120)  # four interpreters starting on a loaded machine
            gate.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (lock,))
            wait_until(lambda: len(_blocked_by(postgres_dsn, table_pid)) == 1, "one worker upgrades it")
            (first,) = _blocked_by(postgres_dsn, table_pid)
            wait_until(lambda: len(_blocked_by(postgres_dsn, first)) == 3, "the others wait for it")
            assert gate.execute("SELECT pg_terminate_backend(%s)", (first,)).fetchone() == (True,)
            wait_until(lambda: len(_blocked_by(postgres_dsn, table_pid)) == 1
                       and _blocked_by(postgres_dsn, table_pid) != [first], "the next worker upgrades it")
            # The cut-off upgrade left nothing: the next one's is under way, not committed.
            assert gate.execute(f'SELECT version FROM "{name}".paywire_schema').fetchall() == [(1,)]
            assert gate.execute("SELECT count(*) FROM information_schema.columns WHERE table_schema = %s AND "
                                "column_name = 'settle_after'", (name,)).fetchone() == (0,)
            table.commit()
            answers = [json.loads(worker.communicate(timeout=120)[0]) for worker in workers]
        finally:
            for worker in workers:
                if worker.poll() is None:
                    worker.kill()
                    worker.communicate()
    cut_off = [answer for answer in answers if "error" in answer]
    assert len(cut_off) == 1 and [a for a in answers if "error" not in a] == [{"version": MIGRATIONS[-1].version}] * 3
    assert (cut_off[0]["error"], cut_off[0]["code"]) == ("LedgerUnavailable", "ledger_unavailable"), cut_off
    assert "try again" in cut_off[0]["message"]
    ledger = open_ledger(url)
    try:
        versions = ledger.execute(ledger.connection(),  # type: ignore[attr-defined]
                                  "SELECT version FROM paywire_schema ORDER BY version").fetchall()
        assert [tuple(v) for v in versions] == [(m.version,) for m in MIGRATIONS]  # each applied once
        after = _every_row(ledger)
    finally:
        ledger.close()
    for table_name, rows in before.items():
        kept = after[table_name]
        if table_name == "paywire_owed_reads":
            kept = [row for row in kept if row["payment_id"] in {was["payment_id"] for was in rows}]
        assert [{c: now[c] for c in was} for was, now in zip(rows, kept, strict=True)] == rows, table_name
