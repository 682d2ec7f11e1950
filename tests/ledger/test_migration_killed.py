"""A worker killed (SIGKILL) while it upgrades a ledger leaves it at the old version, whole: schema
and every row as the old release wrote them, which that release still opens; the next start of
this release upgrades it. The kill comes at each statement of the upgrade in turn, in a process
of its own, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import signal
import subprocess
import sys

import pytest

from paywire.errors import ConfigurationError
from paywire.ledger import open_ledger
from paywire.ledger.migrations import MIGRATIONS
from tests.ledger.test_migration_history import _catalog, _every_row, _fill
from tests.ledger.test_migrations import schema, written_by

# Runs `open_ledger(url)` and kills itself at its ledger's `kill_at`-th statement (0: never), after
# printing how many statements it ran.
_UPGRADE = """
import os, signal, sys
from paywire.ledger import PostgresLedger, SQLiteLedger, open_ledger

url, kill_at = sys.argv[1], int(sys.argv[2])
cls = SQLiteLedger if url.startswith("sqlite") else PostgresLedger
real, count = cls.execute, 0

def execute(self, connection, sql, params=()):
    global count
    count += 1
    if count == kill_at:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(self, connection, sql, params)

cls.execute = execute
open_ledger(url).close()
print(count)
"""


def _upgrade(url: str, kill_at: int) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", _UPGRADE, url, str(kill_at)], capture_output=True, text=True,
                          timeout=120, check=False)


@pytest.mark.parametrize("version", [1, MIGRATIONS[-1].version - 1])
def test_an_upgrade_killed_at_any_statement_leaves_the_old_ledger_whole(ledger_url: str, version: int) -> None:
    with schema(version):
        old = open_ledger(written_by(version, ledger_url, _fill(version)))
        before = (_catalog(old), _every_row(old))
        old.close()
    for kill_at in range(1, 1_000):
        killed = _upgrade(ledger_url, kill_at)
        if killed.returncode == 0:  # past the last statement: the upgrade ran whole
            break
        assert killed.returncode == -signal.SIGKILL, killed.stderr
        try:
            with schema(version):  # the old release opens it as it was, unless the kill came after the commit
                old = open_ledger(ledger_url)
        except ConfigurationError as exc:
            assert "newer than this paywire release" in str(exc), kill_at
            break
        try:
            assert old.schema_version() == version, kill_at
            assert (_catalog(old), _every_row(old)) == before, kill_at
        finally:
            old.close()
    assert kill_at > len(MIGRATIONS) - version  # at least a statement per missing migration was cut
    ledger = open_ledger(ledger_url)
    try:
        assert ledger.schema_version() == MIGRATIONS[-1].version
        after = _every_row(ledger)
        for table, rows in before[1].items():
            kept = after[table]
            if table == "paywire_owed_reads":  # and migration 6's marks of the payments left waiting
                kept = [row for row in kept if row["payment_id"] in {was["payment_id"] for was in rows}]
            assert [{c: now[c] for c in was} for was, now in zip(rows, kept, strict=True)] == rows, table
    finally:
        ledger.close()
