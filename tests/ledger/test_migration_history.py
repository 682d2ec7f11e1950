"""Every schema a release wrote is upgraded to this one on SQLite and PostgreSQL: each row and
column kept as written, the new columns empty, and the schema (tables, indexes, constraints,
guards) then the same as a fresh ledger's.

An old ledger is built by that release's own migrations, which `MIGRATIONS` keeps unchanged
(pinned below by digest), and filled through plain SQL as that release's columns allow: every
payment state, every transaction kind in every status it knew (with and without settle_after
where it had one), events in every status, references, looks, and text that is neither ASCII
nor short.
"""

from __future__ import annotations

import hashlib
import itertools
import json
from collections.abc import Callable
from typing import Any

import pytest

from paywire.errors import ConfigurationError
from paywire.ledger import EventStatus, Ledger, PaymentState, TransactionKind, TransactionStatus, _sql, open_ledger
from paywire.ledger.migrations import MIGRATIONS, Migration
from tests.ledger.test_migrations import _write, schema, written_by
from tests.ledger.test_storage_conformance import raw

# sha256 of each shipped migration's statements (joined by NUL): a ledger written by a release
# holds exactly these, so they are never edited; a change of schema is a new migration.
SHIPPED = {
    (1, "sqlite"): "ea37bc7b13071e7b7e2c6183bca2944a04df8a7403f3600db5f5819b5a64691a",
    (1, "postgresql"): "875d6746afb014bf0bc23e3c328f54bd009e027ad429c05d27ea642954326c0f",
    (2, "sqlite"): "9c8918243bd1940e4138dc1cac39aec2bb203788ba2425ad5f36530bd6eaf31a",
    (2, "postgresql"): "f8dab635d652155ab8e93d2cb003c1cd448a9b58fdd2a7d8491b783b36163556",
    (3, "sqlite"): "4031d8ea76340bf8e01a3ebf8ed7e4eab6006c92e3dd160bfd630757ded03336",
    (3, "postgresql"): "a5e96d68146c4c3b0b7129ad3371a3d9249adb31fc2915965ed495d29ee4e9c5",
    (4, "sqlite"): "6b9a0b1c2b2994a7cb9574aac46575287efbe459c794ac4ae8c94f05e79722cc",
    (4, "postgresql"): "312b48595fc9b4f54dad7b530b0c4f6b8e91752281e9b57bf75190ba2cca344e",
    (5, "sqlite"): "b45ef33bd38a5452a7769fcfe1f9cf05df664d85fd1a526f5af273273fce6277",
    (5, "postgresql"): "ba10ecf13edc135a8164e9b3871d37a52f35f070217a868f81f6c4d009d5a455",
    (6, "sqlite"): "45b3c0470f25ddf44264b52002a441f074cf2ebb4edfead32ae9b9e051258dbc",
    (6, "postgresql"): "45b3c0470f25ddf44264b52002a441f074cf2ebb4edfead32ae9b9e051258dbc",
    (7, "sqlite"): "0532cc2ca7c68e6ab4a7e563c026d658ae380f60b13e777d9485a898a849408e",
    (7, "postgresql"): "9d4c648c5836db9c99463453b554023ea73c2d49992a3aa2c7e4b9552e558813",
}
OLD_VERSIONS = [m.version for m in MIGRATIONS[:-1]]


def test_shipped_migrations_are_never_rewritten() -> None:
    for migration in MIGRATIONS:
        for dialect in ("sqlite", "postgresql"):
            digest = hashlib.sha256("\x00".join(getattr(migration, dialect)).encode()).hexdigest()
            assert SHIPPED.get((migration.version, dialect), digest) == digest, (migration.version, dialect)


T = 1_764_000_000_000_000  # microseconds since the epoch, as the ledger stores times
ODD = "Zoë · 支付 · 🧾 · \u202eRTL\u202c · e\u0301 · tab\t nl\n quote ' \" \\ % _ ? $1"
LONG = ("ünïcødé-€-" * 20_000)[:200_000]  # only where no index holds it (a btree entry is at most ~2.7 kB)
STATUSES = {1: ("pending", "succeeded", "failed", "action_required", "unknown")}
TABLES = {  # every table a release wrote, in a stable order
    "paywire_payments": "id", "paywire_transactions": "id", "paywire_references": "method, reference",
    "paywire_events": "provider, event_id", "paywire_event_references": "provider, event_id, reference",
    "paywire_reconcile_looks": "transaction_id", "paywire_owed_reads": "payment_id",
}
NEW_COLUMNS = {  # empty on an upgraded row
    2: {"paywire_transactions": ("settle_after", "settled_by")},
    7: {"paywire_events": ("closes_capture",)},
}


def event_columns(version: int) -> str:
    """The columns of `paywire_events` a release that wrote schema `version` wrote."""
    return _sql.EVENT_COLUMNS if version >= 7 else _sql.EVENT_COLUMNS.rsplit(", ", 1)[0]


def _statuses(version: int) -> tuple[str, ...]:
    return STATUSES[1] + (("accepted",) if version >= 2 else ())


def _fill(version: int) -> Callable[[Ledger], None]:
    def fill(old: Ledger) -> None:
        states = sorted(v for k, v in vars(PaymentState).items() if k.isupper() and isinstance(v, str))
        payments = [
            (f"pay_{state}", "fakepay", "sale" if n % 2 else "authorize", "EUR", 10_000, state, 10_000, 5_000, n * 100,
             10_000 - n, n, 0, bool(n % 2), n % 3 == 0, state == "failed", f"fp_{state}",
             json.dumps({"payment": f"fp_{state}", "note": ODD}), ODD if n == 0 else f"A-{n}",
             LONG if n == 1 else ODD, f"tok_{n}" if n % 2 else None,
             f"https://bank.example/3ds?q={ODD}" if state == "action_required" else None, None,
             "redirect" if state == "action_required" else None, T + n, T + n + 7)
            for n, state in enumerate(states)]
        _write(old, f"INSERT INTO paywire_payments ({_sql.PAYMENT_COLUMNS}) VALUES ({', '.join(['?'] * 25)})",
               payments)
        kinds = sorted(v for k, v in vars(TransactionKind).items() if k.isupper() and isinstance(v, str))
        rows = []
        for n, (kind, status, later) in enumerate(itertools.product(kinds, _statuses(version), (False, True))):
            if later and version < 2:
                continue
            finished = status not in TransactionStatus.OPEN
            row = (f"txn_{kind}_{status}_{int(later)}", None if kind in ("vault", "unvault") else payments[n % len(payments)][0],
                   "fakepay", kind, None if kind == "void" else ("JPY" if n % 5 == 0 else "EUR"),
                   None if kind == "void" else (2**63 - 1 if n == 5 else 100 + n), status, f"k-{n}-{ODD}", 1 + n % 3, f"{n:064x}",
                   f"ref_{n}" if n % 2 else None, "txn_capture_succeeded_0" if kind == "refund" else None,
                   "webhook" if n % 7 == 0 else "service", "OutcomeUnknown" if status in ("unknown", "failed") else None,
                   "declined" if status == "failed" else None, LONG if n == 3 else (ODD if status != "succeeded" else None),
                   bool(n % 2), f"tok_{n}" if kind == "vault" else None,
                   json.dumps({"command": kind, "text": ODD, "n": n}, separators=(",", ":")),
                   json.dumps({"status": status, "long": LONG if n == 4 else ""}, separators=(",", ":")),
                   T + n, T + n + 1, T + n + 2 if finished else None)
            if version >= 2:
                row += (T + 60_000_000 * n if later else None,
                        ("answer", "reconcile", "webhook")[n % 3] if finished else None)
            rows.append(row)
        columns = _sql.TRANSACTION_COLUMNS if version >= 2 else _sql.TRANSACTION_COLUMNS.rsplit(", ", 2)[0]
        _write(old, f"INSERT INTO paywire_transactions ({columns}) VALUES ({', '.join(['?'] * len(rows[0]))})", rows)
        _write(old, "INSERT INTO paywire_references (method, reference, payment_id) VALUES (?, ?, ?)",
               [("fakepay", "fp_pending", "pay_pending"), ("fakepay", ODD, "pay_pending"),
                ("fakepay", "fp_authorized", "pay_authorized")])
        events = sorted(v for k, v in vars(EventStatus).items() if k.isupper() and isinstance(v, str))
        _write(old, f"INSERT INTO paywire_events ({event_columns(version)}) VALUES ({', '.join(['?'] * 15)})",
               [("fakepay", f"evt_{status}_{ODD}", "fakepay", "payment.captured", "captured",
                 f"cap_{n}" if n else None, json.dumps({"payment": "fp_pending", "x": ODD}), "EUR" if n else None,
                 500 if n else None, 700 if n == 1 else None, status,
                 None if status == "unmatched" else "pay_pending", ODD if n else LONG, T + n,
                 T + n + 1 if status == "applied" else None) for n, status in enumerate(events)])
        _write(old, "INSERT INTO paywire_event_references (provider, event_id, method, reference) VALUES (?, ?, ?, ?)",
               [("fakepay", f"evt_{status}_{ODD}", "fakepay", ref) for status in events for ref in ("fp_pending", ODD)])
        if version >= 3:
            _write(old, "INSERT INTO paywire_reconcile_looks (transaction_id, looks, next_at) VALUES (?, ?, ?)",
                   [("txn_capture_unknown_0", 3, T + 3_600_000_000), ("txn_refund_pending_1", 1, T)])
        if version >= 5:
            _write(old, "INSERT INTO paywire_owed_reads (payment_id, looks, next_at) VALUES (?, ?, ?)",
                   [("pay_authorized", 0, T), ("pay_voided", 4, T + 900_000_000)])

    return fill


def _query(ledger: Ledger, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    conn = ledger.connection()  # type: ignore[attr-defined]
    return [tuple(r) for r in ledger.execute(conn, sql, params).fetchall()]  # type: ignore[attr-defined]


def _columns(ledger: Ledger, table: str) -> list[str]:
    if ledger.dialect == "sqlite":  # type: ignore[attr-defined]
        return [r[0] for r in _query(ledger, "SELECT name FROM pragma_table_info(?) ORDER BY cid", (table,))]
    return [r[0] for r in _query(ledger, "SELECT column_name FROM information_schema.columns WHERE table_schema = "
                                         "current_schema() AND table_name = ? ORDER BY ordinal_position", (table,))]


def _every_row(ledger: Ledger) -> dict[str, list[dict[str, tuple[str, Any]]]]:
    """Every column of every row, with its Python type (a bool must stay a bool, an int an int)."""
    found = {}
    for table, order in TABLES.items():
        names = _columns(ledger, table)
        if names:
            rows = _query(ledger, f"SELECT {', '.join(names)} FROM {table} ORDER BY {order}")
            found[table] = [{n: (type(v).__name__, v) for n, v in zip(names, row, strict=True)} for row in rows]
    return found


def _catalog(ledger: Ledger) -> dict[tuple[str, str], str]:
    """The ledger's schema as the database states it: tables, indexes, constraints, triggers,
    functions and column types, with the ledger's own schema name left out."""
    if ledger.dialect == "sqlite":  # type: ignore[attr-defined]
        return {(kind, name): " ".join((sql or "").split()) for kind, name, sql in _query(
            ledger, "SELECT type, name, sql FROM sqlite_master WHERE name NOT LIKE 'sqlite_%'")}
    here = "s.nspname = current_schema()"
    queries = {
        "index": f"SELECT c.relname, pg_get_indexdef(c.oid) FROM pg_class c JOIN pg_namespace s ON s.oid = "
                 f"c.relnamespace WHERE c.relkind = 'i' AND {here}",
        "trigger": f"SELECT t.tgname, pg_get_triggerdef(t.oid) FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
                   f"JOIN pg_namespace s ON s.oid = c.relnamespace WHERE NOT t.tgisinternal AND {here}",
        "function": f"SELECT p.proname, pg_get_functiondef(p.oid) FROM pg_proc p JOIN pg_namespace s ON s.oid = "
                    f"p.pronamespace WHERE {here}",
        "constraint": f"SELECT c.relname || '.' || k.conname, pg_get_constraintdef(k.oid) FROM pg_constraint k "
                      f"JOIN pg_class c ON c.oid = k.conrelid JOIN pg_namespace s ON s.oid = c.relnamespace WHERE {here}",
        "column": "SELECT table_name || '.' || column_name, data_type || ' ' || coalesce(column_default, '') || ' ' "
                  "|| is_nullable FROM information_schema.columns WHERE table_schema = current_schema()",
    }
    name = ledger.schema or ""  # type: ignore[attr-defined]
    return {(kind, str(n)): str(d).replace(f"{name}.", "") for kind, sql in queries.items()
            for n, d in _query(ledger, sql)}


@pytest.mark.parametrize("version", OLD_VERSIONS)
def test_every_row_of_every_older_schema_is_kept_column_by_column(ledger_url: str, version: int) -> None:
    with schema(version):
        old = open_ledger(written_by(version, ledger_url, _fill(version)))
        before = _every_row(old)
        old.close()
    kinds = [v for k, v in vars(TransactionKind).items() if k.isupper() and isinstance(v, str)]
    assert len(before["paywire_transactions"]) == len(kinds) * len(_statuses(version)) * (2 if version >= 2 else 1)
    ledger = open_ledger(ledger_url)
    try:
        after = _every_row(ledger)
        new = {table: columns for v, added in NEW_COLUMNS.items() if v > version for table, columns in added.items()}
        # the one row a migration adds: migration 6's owed read of a payment left waiting for its buyer
        owed = {row["payment_id"][1] for row in before.get("paywire_owed_reads", ())}
        marks = {row["id"][1]: (0, row["updated_at"][1] + 3_600_000_000) for row in before["paywire_payments"]
                 if row["state"][1] == "action_required" and row["id"][1] not in owed and version < 6}
        added = [row for row in after["paywire_owed_reads"] if row["payment_id"][1] in marks]
        assert (bool(marks) or version >= 6) and {
            row["payment_id"][1]: (row["looks"][1], row["next_at"][1]) for row in added} == marks
        after["paywire_owed_reads"] = [row for row in after["paywire_owed_reads"] if row not in added]
        for table, rows in before.items():
            assert len(after[table]) == len(rows), table
            for was, now in zip(rows, after[table], strict=True):
                assert {c: now[c] for c in was} == was, table
                assert {c: v for c, v in now.items() if c not in was} == {c: ("NoneType", None)
                                                                           for c in new.get(table, ())}
        # and the current code reads each of them as written
        for row in after["paywire_transactions"]:
            stored = ledger.get_transaction(row["id"][1])
            assert stored is not None and (stored.status, stored.error_message) == (row["status"][1],
                                                                                    row["error_message"][1])
        assert len(ledger.list_payments(limit=100)) == len(before["paywire_payments"])
        assert len(ledger.list_events(limit=100)) == len(before["paywire_events"])
    finally:
        ledger.close()


@pytest.mark.parametrize("version", OLD_VERSIONS)
def test_an_upgraded_schema_is_the_fresh_one(ledger_url: str, fresh_ledger_url: Callable[[], str],
                                             version: int) -> None:
    """Upgraded from any older schema, the ledger's tables, indexes, constraints and guards are
    stated by the database exactly as on a fresh ledger, and the guards act as on one."""
    upgraded = open_ledger(written_by(version, ledger_url, _fill(version)))
    fresh = open_ledger(fresh_ledger_url())
    try:
        assert _catalog(upgraded) == _catalog(fresh)
        for sql in ("DELETE FROM paywire_transactions WHERE id = 'txn_capture_pending_0'",
                    "UPDATE paywire_transactions SET error_message = 'x' WHERE id = 'txn_capture_succeeded_0'",
                    "UPDATE paywire_transactions SET amount_minor = 1 WHERE id = 'txn_capture_pending_0'"):
            with pytest.raises(Exception, match=r"append-only|cannot change"):
                raw(upgraded, sql)
        raw(upgraded, "UPDATE paywire_transactions SET status = 'succeeded' WHERE id = 'txn_capture_unknown_0'")
    finally:
        upgraded.close()
        fresh.close()


_FAILS_PART_WAY = Migration(  # its second statement fails on a row the ledger holds
    len(MIGRATIONS) + 1, "a constraint an old row violates",
    sqlite=("CREATE TABLE paywire_later (x INTEGER)",
            "CREATE TRIGGER paywire_later_guard BEFORE DELETE ON paywire_events BEGIN SELECT 1; END",
            "UPDATE paywire_events SET status = NULL"),
    postgresql=("CREATE TABLE paywire_later (x INTEGER)",
                "ALTER TABLE paywire_events ADD CONSTRAINT paywire_later_check CHECK (status = 'applied')"),
)


@pytest.mark.parametrize("version", OLD_VERSIONS)
def test_a_migration_failing_part_way_leaves_the_old_schema_and_says_which_failed(ledger_url: str,
                                                                                 version: int) -> None:
    """Every missing migration runs in one transaction: one that fails part-way leaves the ledger
    exactly as it was (schema, version and rows), and the error names the migration, the
    database's reason and the version the ledger stays at, not a file or a server to check."""
    with schema(version):
        old = open_ledger(written_by(version, ledger_url, _fill(version)))
        before = (_catalog(old), _every_row(old))
        old.close()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_sql, "MIGRATIONS", (*MIGRATIONS, _FAILS_PART_WAY))
        with pytest.raises(ConfigurationError) as failed:
            open_ledger(ledger_url)
    message = str(failed.value)
    assert f"migration {_FAILS_PART_WAY.version} ({_FAILS_PART_WAY.description})" in message
    assert f"version {version}" in message and "constraint" in message.lower()
    assert "writable" not in message and "check the URL" not in message
    with schema(version):
        old = open_ledger(ledger_url)
        assert old.schema_version() == version and (_catalog(old), _every_row(old)) == before
        old.close()
    ledger = open_ledger(ledger_url)  # the release itself still upgrades it
    try:
        assert ledger.schema_version() == MIGRATIONS[-1].version
    finally:
        ledger.close()


@pytest.mark.postgres
def test_a_ledger_an_earlier_release_kept_under_a_schema_name_cut_short_is_found(postgres_dsn: str) -> None:
    """Earlier releases took a schema name longer than PostgreSQL's 63 bytes, and PostgreSQL kept
    the ledger under the name cut short. This release refuses the long name (two names alike that
    far would share tables, not locks); its error must send the shop to the ledger it has, not
    to a new, empty one under some shorter name."""
    import os
    import secrets

    import psycopg

    long = f"pwtest_{os.getpid()}_{secrets.token_hex(4)}_" + "é" * 30
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        row = conn.execute("SELECT %s::name", (long,)).fetchone()  # where PostgreSQL puts `long`
    assert row is not None and row[0] != long
    kept = str(row[0])
    written_by(3, f"{postgres_dsn}?schema={kept}", _fill(3))
    with pytest.raises(ConfigurationError) as refused:
        open_ledger(f"{postgres_dsn}?schema={long}")
    assert f"schema {kept!r}" in str(refused.value)
    ledger = open_ledger(f"{postgres_dsn}?schema={kept}")
    try:
        assert ledger.schema_version() == MIGRATIONS[-1].version and ledger.get_payment("pay_pending") is not None
    finally:
        ledger.close()
