"""Versioned schema migrations, written once for both SQL dialects.

Each migration is a numbered list of statements. A backend applies the missing ones in order
inside one transaction that first takes an exclusive lock (SQLite: BEGIN IMMEDIATE; PostgreSQL:
an advisory lock), records each version in `paywire_schema`, and commits: running it twice is a
no-op and workers starting together apply each migration exactly once.

Append-only history is enforced in the database itself (triggers), not only by the code that
writes: a transaction row cannot be deleted, and only an open (pending, unknown, accepted) row may
change, and then only in its outcome columns. Two changes of a finished row are allowed, both
from the outcome model: a row without a provider reference may learn it (nothing else changing),
and reconciliation's conclusion "not applied" gives way to the request's own late answer.

Migrations are a public contract: a ledger written by any earlier release is upgraded in place,
every row kept as it was. Money is integer minor units with its currency, and the
payment invariant refunded <= captured <= authorized is a CHECK constraint.
"""

from __future__ import annotations

import re

import attrs

__all__ = ["COMPATIBLE_TABLE", "LEDGER_TABLES", "MIGRATIONS", "Migration", "statements"]


@attrs.frozen
class Migration:
    """One numbered step of the schema. `compatible_with`: the oldest schema version whose
    release may still run on a ledger this step upgraded, for a step that only adds what such a
    release neither reads nor has to keep in step with what it writes (a table of its own); None,
    as for every step so far: only releases that know this step. Recorded in
    `paywire_schema_compatible` with the step, so that a release that does not know it can tell
    (workers of the previous release restarted during an upgrade, or a release rolled back)."""

    version: int
    description: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]
    compatible_with: int | None = None


# Created with the first step that declares `compatible_with`; read by every release from schema 5.
COMPATIBLE_TABLE = ("CREATE TABLE IF NOT EXISTS paywire_schema_compatible "
                    "(version INTEGER PRIMARY KEY, oldest INTEGER NOT NULL)")


_V1_STATUSES = "'pending', 'succeeded', 'failed', 'action_required', 'unknown'"
_V2_STATUSES = _V1_STATUSES + ", 'accepted'"


def _transactions_table(name: str, boolean: str, false: str, statuses: str, extra: str = "") -> str:
    """The transactions table; `extra` holds the columns later migrations added (a rebuild, as
    SQLite's must be, restates the whole table)."""
    return f"""CREATE TABLE {name} (
            id TEXT PRIMARY KEY,
            payment_id TEXT REFERENCES paywire_payments (id),
            method TEXT NOT NULL,
            kind TEXT NOT NULL,
            currency TEXT,
            amount_minor BIGINT,
            status TEXT NOT NULL,
            idempotency_key TEXT NOT NULL,
            attempt INTEGER NOT NULL,
            fingerprint TEXT NOT NULL,
            provider_reference TEXT,
            parent_id TEXT,
            origin TEXT NOT NULL,
            error_type TEXT,
            error_code TEXT,
            error_message TEXT,
            retryable {boolean} NOT NULL DEFAULT {false},
            token TEXT,
            request TEXT NOT NULL,
            response TEXT NOT NULL,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            finished_at BIGINT,{extra}
            CONSTRAINT paywire_transactions_key UNIQUE (method, idempotency_key, attempt),
            CONSTRAINT paywire_transactions_status CHECK (
                status IN ({statuses})
            )
        )"""


def _tables(boolean: str, false: str, without_rowid: str) -> tuple[str, ...]:
    # Every index costs a page write per commit on the hot path (two commits per operation), so
    # there are only those that lookups need: by id, order, key, payment, and open transactions.
    return (
        f"""CREATE TABLE paywire_payments (
            id TEXT PRIMARY KEY,
            method TEXT NOT NULL,
            flow TEXT NOT NULL,
            currency TEXT NOT NULL,
            amount_minor BIGINT NOT NULL,
            state TEXT NOT NULL,
            authorized_minor BIGINT NOT NULL DEFAULT 0,
            captured_minor BIGINT NOT NULL DEFAULT 0,
            refunded_minor BIGINT NOT NULL DEFAULT 0,
            observed_authorized_minor BIGINT NOT NULL DEFAULT 0,
            observed_captured_minor BIGINT NOT NULL DEFAULT 0,
            observed_refunded_minor BIGINT NOT NULL DEFAULT 0,
            capture_closed {boolean} NOT NULL DEFAULT {false},
            voided {boolean} NOT NULL DEFAULT {false},
            failed {boolean} NOT NULL DEFAULT {false},
            reference TEXT,
            refs TEXT NOT NULL DEFAULT '{{}}',
            order_id TEXT,
            customer_reference TEXT,
            token TEXT,
            action_url TEXT,
            action_return_url TEXT,
            action_kind TEXT,
            created_at BIGINT NOT NULL,
            updated_at BIGINT NOT NULL,
            CONSTRAINT paywire_payments_totals CHECK (
                0 <= refunded_minor AND refunded_minor <= captured_minor
                AND captured_minor <= authorized_minor
            )
        )""",
        "CREATE INDEX paywire_payments_order ON paywire_payments (order_id)",
        "CREATE INDEX paywire_payments_created ON paywire_payments (created_at)",
        _transactions_table("paywire_transactions", boolean, false, _V1_STATUSES),
        "CREATE INDEX paywire_transactions_payment ON paywire_transactions (payment_id, created_at)",
        "CREATE INDEX paywire_transactions_open ON paywire_transactions (status, updated_at)"
        " WHERE status IN ('pending', 'unknown')",
        f"""CREATE TABLE paywire_references (
            method TEXT NOT NULL,
            reference TEXT NOT NULL,
            payment_id TEXT NOT NULL REFERENCES paywire_payments (id),
            PRIMARY KEY (method, reference)
        ){without_rowid}""",
        """CREATE TABLE paywire_events (
            provider TEXT NOT NULL,
            event_id TEXT NOT NULL,
            method TEXT NOT NULL,
            type TEXT NOT NULL,
            kind TEXT NOT NULL,
            reference TEXT,
            refs TEXT NOT NULL,
            currency TEXT,
            amount_minor BIGINT,
            total_minor BIGINT,
            status TEXT NOT NULL,
            payment_id TEXT,
            note TEXT,
            received_at BIGINT NOT NULL,
            applied_at BIGINT,
            PRIMARY KEY (provider, event_id)
        )""",
        "CREATE INDEX paywire_events_waiting ON paywire_events (status, payment_id)",
        f"""CREATE TABLE paywire_event_references (
            provider TEXT NOT NULL,
            event_id TEXT NOT NULL,
            method TEXT NOT NULL,
            reference TEXT NOT NULL,
            PRIMARY KEY (provider, event_id, reference)
        ){without_rowid}""",
        "CREATE INDEX paywire_event_references_ref ON paywire_event_references (method, reference)",
    )


# The columns that say what a transaction *was*; they never change, even while it is open.
_IDENTITY = ("id", "payment_id", "method", "kind", "currency", "amount_minor", "idempotency_key",
             "attempt", "fingerprint", "origin", "parent_id", "created_at")


def _sqlite_guards() -> tuple[str, ...]:
    changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in _IDENTITY)
    return (
        """CREATE TRIGGER paywire_transactions_no_delete BEFORE DELETE ON paywire_transactions
        BEGIN SELECT RAISE(ABORT, 'paywire ledger history is append-only'); END""",
        f"""CREATE TRIGGER paywire_transactions_no_rewrite BEFORE UPDATE ON paywire_transactions
        WHEN OLD.status NOT IN ('pending', 'unknown') OR {changed}
        BEGIN SELECT RAISE(ABORT, 'a finished paywire transaction cannot change'); END""",
    )


def _postgres_guards() -> tuple[str, ...]:
    changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in _IDENTITY)
    return (
        f"""CREATE FUNCTION paywire_transactions_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                RAISE EXCEPTION 'paywire ledger history is append-only' USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            IF OLD.status NOT IN ('pending', 'unknown') OR {changed} THEN
                RAISE EXCEPTION 'a finished paywire transaction cannot change' USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END $$""",
        """CREATE TRIGGER paywire_transactions_guard BEFORE UPDATE OR DELETE ON paywire_transactions
        FOR EACH ROW EXECUTE FUNCTION paywire_transactions_guard()""",
    )


_OPEN = "('pending', 'unknown', 'accepted')"


# The columns migration 2's guard held still while a finished row learns its reference, and every
# column but the reference, which migration 4's guard holds still (migration 2's let the rest of
# the row be rewritten in the same statement).
_KEPT_V2 = ("status", "settled_by", "error_code", "retryable", "token")
_KEPT_V4 = ("status", "settled_by", "error_type", "error_code", "error_message", "retryable", "token", "request",
            "response", "updated_at", "finished_at", "settle_after")


def _finished_row_may_change(same: str, kept: tuple[str, ...]) -> str:
    """The two ways a finished row may still change (see the module docstring); `same` is the
    dialect's null-safe equality, `kept` what must not change while the row learns its reference."""
    late_answer = "(OLD.status = 'failed' AND OLD.settled_by = 'reconcile' AND NEW.settled_by = 'answer')"
    unchanged = " AND ".join(f"NEW.{column} {same} OLD.{column}" for column in kept)
    learns_reference = f"(OLD.provider_reference IS NULL AND NEW.provider_reference IS NOT NULL AND {unchanged})"
    return f"({late_answer} OR {learns_reference})"


def _sqlite_rewrite_guard(kept: tuple[str, ...]) -> str:
    changed = " OR ".join(f"NEW.{c} IS NOT OLD.{c}" for c in _IDENTITY)
    return f"""CREATE TRIGGER paywire_transactions_no_rewrite BEFORE UPDATE ON paywire_transactions
        WHEN {changed} OR (OLD.status NOT IN {_OPEN} AND NOT {_finished_row_may_change("IS", kept)})
        BEGIN SELECT RAISE(ABORT, 'a finished paywire transaction cannot change'); END"""


def _postgres_guard_function(kept: tuple[str, ...]) -> str:
    changed = " OR ".join(f"NEW.{c} IS DISTINCT FROM OLD.{c}" for c in _IDENTITY)
    return f"""CREATE OR REPLACE FUNCTION paywire_transactions_guard() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'DELETE' THEN
                RAISE EXCEPTION 'paywire ledger history is append-only' USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            IF {changed} OR (OLD.status NOT IN {_OPEN}
                             AND NOT {_finished_row_may_change("IS NOT DISTINCT FROM", kept)}) THEN
                RAISE EXCEPTION 'a finished paywire transaction cannot change' USING ERRCODE = 'integrity_constraint_violation';
            END IF;
            RETURN NEW;
        END $$"""


_V1_COLUMNS = (
    "id, payment_id, method, kind, currency, amount_minor, status, idempotency_key, attempt, fingerprint, "
    "provider_reference, parent_id, origin, error_type, error_code, error_message, retryable, token, "
    "request, response, created_at, updated_at, finished_at"
)
_OPEN_INDEX = (
    f"CREATE INDEX paywire_transactions_open ON paywire_transactions (status, updated_at) WHERE status IN {_OPEN}"
)


def _sqlite_v2() -> tuple[str, ...]:
    # SQLite cannot alter a CHECK constraint: the table is rebuilt, every row copied as it was
    # (DROP TABLE fires no trigger), then its indexes and guards are made again.
    return (
        _transactions_table("paywire_transactions_v2", "INTEGER", "0", _V2_STATUSES,
                            "\n            settle_after BIGINT,\n            settled_by TEXT,"),
        f"INSERT INTO paywire_transactions_v2 ({_V1_COLUMNS}) SELECT {_V1_COLUMNS} FROM paywire_transactions",  # noqa: S608 - constant columns
        "DROP TABLE paywire_transactions",
        "ALTER TABLE paywire_transactions_v2 RENAME TO paywire_transactions",
        "CREATE INDEX paywire_transactions_payment ON paywire_transactions (payment_id, created_at)",
        _OPEN_INDEX,
        """CREATE TRIGGER paywire_transactions_no_delete BEFORE DELETE ON paywire_transactions
        BEGIN SELECT RAISE(ABORT, 'paywire ledger history is append-only'); END""",
        _sqlite_rewrite_guard(_KEPT_V2),
    )


def _postgres_v2() -> tuple[str, ...]:
    return (
        "ALTER TABLE paywire_transactions ADD COLUMN settle_after BIGINT, ADD COLUMN settled_by TEXT",
        "ALTER TABLE paywire_transactions DROP CONSTRAINT paywire_transactions_status",
        f"ALTER TABLE paywire_transactions ADD CONSTRAINT paywire_transactions_status CHECK (status IN ({_V2_STATUSES}))",
        "DROP INDEX paywire_transactions_open",
        _OPEN_INDEX,
        _postgres_guard_function(_KEPT_V2),
    )


def _looks(without_rowid: str) -> tuple[str, ...]:
    # Reconciliation's schedule, not history: rows are replaced and removed as transactions settle.
    return (f"""CREATE TABLE paywire_reconcile_looks (
            transaction_id TEXT PRIMARY KEY,
            looks INTEGER NOT NULL,
            next_at BIGINT NOT NULL
        ){without_rowid}""",)


def _owed_reads(without_rowid: str) -> tuple[str, ...]:
    # The payments an answer or an event said the ledger is behind, until a read from the provider
    # settles them; a schedule as the looks are, not history. Few rows at any time: reconciliation
    # reads them by their next look, through the index, never scanning payments or transactions.
    return (f"""CREATE TABLE paywire_owed_reads (
            payment_id TEXT PRIMARY KEY REFERENCES paywire_payments (id),
            looks INTEGER NOT NULL,
            next_at BIGINT NOT NULL
        ){without_rowid}""",
            "CREATE INDEX paywire_owed_reads_next ON paywire_owed_reads (next_at, payment_id)")


def _waiting_owe_reads() -> tuple[str, ...]:
    # Release 6 schedules a read of every payment that starts waiting for its buyer, `buyer_wait`
    # (an hour by default) after it began waiting (`paywire.service.waiting`); a payment an earlier
    # release left waiting had none, and would wait for ever were its provider's event lost. The
    # same mark, counted from its last change: one read of each, through the owed reads' index.
    return ("""INSERT INTO paywire_owed_reads (payment_id, looks, next_at)
            SELECT id, 0, updated_at + 3600000000 FROM paywire_payments
            WHERE state = 'action_required'
            AND NOT EXISTS (SELECT 1 FROM paywire_owed_reads o WHERE o.payment_id = paywire_payments.id)""",)


def _closing_events(boolean: str) -> tuple[str, ...]:
    # Whether the event's capture was final at the provider (`WebhookEvent.closes_capture`), kept
    # for an event applied after it waited (unmatched or deferred). NULL on the rows an earlier
    # release wrote, which kept no such word: read as not closing, as that release applied them.
    return (f"ALTER TABLE paywire_events ADD COLUMN closes_capture {boolean}",)


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "payments, append-only transactions, references, webhook events",
        sqlite=_tables("INTEGER", "0", " WITHOUT ROWID") + _sqlite_guards(),
        postgresql=_tables("BOOLEAN", "FALSE", "") + _postgres_guards(),
    ),
    Migration(
        2,
        "the outcome model: accepted transactions, each request's settle_after, what settled it",
        sqlite=_sqlite_v2(),
        postgresql=_postgres_v2(),
    ),
    Migration(
        3,
        "reconciliation's schedule: how often each open transaction was looked at, and when next",
        sqlite=_looks(" WITHOUT ROWID"),
        postgresql=_looks(""),
    ),
    Migration(
        4,
        "a finished transaction that learns its provider reference changes in nothing else",
        sqlite=("DROP TRIGGER paywire_transactions_no_rewrite", _sqlite_rewrite_guard(_KEPT_V4)),
        postgresql=(_postgres_guard_function(_KEPT_V4),),
    ),
    Migration(
        5,
        "payments that owe a read from the provider, and when reconciliation reads them next",
        sqlite=_owed_reads(" WITHOUT ROWID"),
        postgresql=_owed_reads(""),
    ),
    Migration(
        6,
        "payments an earlier release left waiting for their buyer owe a read an hour after their last change",
        sqlite=_waiting_owe_reads(),
        postgresql=_waiting_owe_reads(),
    ),
    Migration(
        7,
        "webhook events keep whether their capture was final, for when they are applied after waiting",
        sqlite=_closing_events("INTEGER"),
        postgresql=_closing_events("BOOLEAN"),
    ),
)


# Every table a migration creates: a place holding one of them but no `paywire_schema` is no ledger.
LEDGER_TABLES: tuple[str, ...] = tuple(dict.fromkeys(
    name for migration in MIGRATIONS for statement in migration.sqlite
    for name in re.findall(r"^CREATE TABLE (\w+)", statement.strip())))


def statements(migration: Migration, dialect: str) -> tuple[str, ...]:
    if dialect == "sqlite":
        return migration.sqlite
    if dialect == "postgresql":
        return migration.postgresql
    raise ValueError(f"unknown SQL dialect {dialect!r}")
