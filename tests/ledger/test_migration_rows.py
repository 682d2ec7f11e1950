"""Every migration keeps every row bit for bit, whatever the row holds: hypothesis builds ledgers of
every older schema through that release's own migrations and plain SQL (any text PostgreSQL can
keep, the whole BIGINT range, NULLs wherever the schema allows them, every status that release
knew), upgrades them to this release, and compares each column of each row with its type, on
SQLite and PostgreSQL. `test_migration_history` pins one broad ledger; this varies the rows.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paywire.ledger import EventStatus, Ledger, PaymentState, TransactionKind, _sql, open_ledger
from paywire.ledger.migrations import MIGRATIONS
from tests.ledger.test_migration_history import NEW_COLUMNS, OLD_VERSIONS, _every_row, _statuses, event_columns
from tests.ledger.test_migrations import _write, written_by

BIGINT = st.integers(-(2**63), 2**63 - 1)
# Microseconds since the epoch, either side of it; migration 6 counts an hour on from a payment's
# last change, so a time within an hour of BIGINT's end is none a ledger holds.
TIME = st.integers(-(2**62), 2**62)
TEXT = st.text(st.characters(codec="utf-8", exclude_characters="\x00"), max_size=40)  # what PostgreSQL keeps


def _constants(holder: type) -> list[str]:
    return sorted(v for k, v in vars(holder).items() if k.isupper() and isinstance(v, str))


def _maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.none() | strategy


@st.composite
def old_ledgers(draw: st.DrawFn) -> tuple[int, dict[str, list[tuple[Any, ...]]]]:
    """A schema version older than this release's, and rows for each table it has."""
    version = draw(st.sampled_from(OLD_VERSIONS))
    payments = []
    for n in range(draw(st.integers(1, 4))):
        refunded, captured, authorized = sorted(draw(st.integers(0, 2**63 - 1)) for _ in range(3))
        payments.append((
            f"pay_{n}_{draw(TEXT)}", draw(TEXT), draw(TEXT), draw(TEXT), draw(BIGINT),
            draw(st.sampled_from(_constants(PaymentState))), authorized, captured, refunded,
            draw(BIGINT), draw(BIGINT), draw(BIGINT), draw(st.booleans()), draw(st.booleans()), draw(st.booleans()),
            draw(_maybe(TEXT)), draw(TEXT), draw(_maybe(TEXT)), draw(_maybe(TEXT)), draw(_maybe(TEXT)),
            draw(_maybe(TEXT)), draw(_maybe(TEXT)), draw(_maybe(TEXT)), draw(TIME), draw(TIME)))
    ids = [p[0] for p in payments]
    transactions = []
    for n in range(draw(st.integers(0, 6))):
        row: tuple[Any, ...] = (
            f"txn_{n}_{draw(TEXT)}", draw(_maybe(st.sampled_from(ids))), draw(TEXT),
            draw(st.sampled_from(_constants(TransactionKind))), draw(_maybe(TEXT)), draw(_maybe(BIGINT)),
            draw(st.sampled_from(_statuses(version))), f"{n}-{draw(TEXT)}", draw(st.integers(1, 2**31 - 1)),
            draw(TEXT), draw(_maybe(TEXT)), draw(_maybe(TEXT)), draw(TEXT), draw(_maybe(TEXT)), draw(_maybe(TEXT)),
            draw(_maybe(TEXT)), draw(st.booleans()), draw(_maybe(TEXT)), draw(TEXT), draw(TEXT), draw(TIME),
            draw(TIME), draw(_maybe(TIME)))
        if version >= 2:
            row += (draw(_maybe(TIME)), draw(_maybe(TEXT)))
        transactions.append(row)
    references = [(draw(TEXT), f"ref_{n}_{draw(TEXT)}", draw(st.sampled_from(ids))) for n in range(draw(st.integers(0, 3)))]
    events = [(draw(TEXT), f"evt_{n}_{draw(TEXT)}", draw(TEXT), draw(TEXT), draw(TEXT), draw(_maybe(TEXT)),
               draw(TEXT), draw(_maybe(TEXT)), draw(_maybe(BIGINT)), draw(_maybe(BIGINT)),
               draw(st.sampled_from(_constants(EventStatus))), draw(_maybe(TEXT)), draw(_maybe(TEXT)), draw(TIME),
               draw(_maybe(TIME))) for n in range(draw(st.integers(0, 3)))]
    rows = {"paywire_payments": payments, "paywire_transactions": transactions, "paywire_references": references,
            "paywire_events": events,
            "paywire_event_references": [(e[0], e[1], draw(TEXT), draw(TEXT)) for e in events if draw(st.booleans())]}
    if version >= 3:
        rows["paywire_reconcile_looks"] = [(t[0], draw(st.integers(0, 2**31 - 1)), draw(TIME))
                                           for t in transactions if draw(st.booleans())]
    if version >= 5:
        rows["paywire_owed_reads"] = [(p, draw(st.integers(0, 2**31 - 1)), draw(TIME))
                                      for p in ids if draw(st.booleans())]
    return version, rows


_INSERTS = {
    "paywire_payments": _sql.PAYMENT_COLUMNS,
    "paywire_references": "method, reference, payment_id",
    "paywire_event_references": "provider, event_id, method, reference",
    "paywire_reconcile_looks": "transaction_id, looks, next_at",
    "paywire_owed_reads": "payment_id, looks, next_at",
}


def _fill(version: int, rows: dict[str, list[tuple[Any, ...]]]) -> Callable[[Ledger], None]:
    def fill(old: Ledger) -> None:
        for table, values in rows.items():
            if not values:
                continue
            columns = _INSERTS.get(table) or (event_columns(version) if table == "paywire_events"
                                              else _sql.TRANSACTION_COLUMNS if version >= 2
                                              else _sql.TRANSACTION_COLUMNS.rsplit(", ", 2)[0])
            _write(old, f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['?'] * len(values[0]))})", values)

    return fill


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow,
                                 HealthCheck.data_too_large])
@given(old=old_ledgers())
def test_every_migration_keeps_every_row_bit_for_bit(fresh_ledger_url: Callable[[], str],
                                                    old: tuple[int, dict[str, list[tuple[Any, ...]]]]) -> None:
    version, rows = old
    url = fresh_ledger_url()
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_sql, "MIGRATIONS", MIGRATIONS[:version])
        written = open_ledger(written_by(version, url, _fill(version, rows)))
        before = _every_row(written)
        written.close()
    assert {table: len(found) for table, found in before.items() if table in rows} == {
        table: len(values) for table, values in rows.items()}
    ledger = open_ledger(url)
    try:
        assert ledger.schema_version() == MIGRATIONS[-1].version
        after = _every_row(ledger)
    finally:
        ledger.close()
    # Migration 6's one addition (to a ledger older than it): an owed read of each payment left
    # waiting for its buyer, an hour on.
    owed = {row["payment_id"][1] for row in before.get("paywire_owed_reads", ())}
    marks = {row["id"][1]: (0, row["updated_at"][1] + 3_600_000_000) for row in before["paywire_payments"]
             if row["state"][1] == PaymentState.ACTION_REQUIRED and row["id"][1] not in owed and version < 6}
    added = [row for row in after["paywire_owed_reads"] if row["payment_id"][1] in marks]
    assert {row["payment_id"][1]: (row["looks"][1], row["next_at"][1]) for row in added} == marks
    after["paywire_owed_reads"] = [row for row in after["paywire_owed_reads"] if row not in added]
    new = {table: columns for v, tables in NEW_COLUMNS.items() if v > version for table, columns in tables.items()}
    for table, was in before.items():
        assert [{c: now[c] for c in row} for row, now in zip(was, after[table], strict=True)] == was, table
        assert all({c: v for c, v in now.items() if c not in was[0]} == dict.fromkeys(new.get(table, ()),
                                                                                    ("NoneType", None))
                   for now in after[table]) if was else after[table] == [], table
