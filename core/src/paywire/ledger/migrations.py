"""Versioned schema migrations, written once for both SQL dialects.

Each migration is a numbered list of statements. A backend applies the missing ones in order
inside one transaction that first takes an exclusive lock (SQLite: BEGIN IMMEDIATE; PostgreSQL:
an advisory lock), records each version in `paywire_schema`, and commits: running it twice is a
no-op and workers starting together apply each migration exactly once.

Append-only history is enforced in the database itself (triggers), not only by the code that
writes: a transaction row cannot be deleted, and only a pending or unknown row may change, and
then only in its outcome columns. Money is integer minor units with its currency, and the
payment invariant refunded <= captured <= authorized is a CHECK constraint.
"""

from __future__ import annotations

import attrs

__all__ = ["MIGRATIONS", "Migration", "statements"]


@attrs.frozen
class Migration:
    version: int
    description: str
    sqlite: tuple[str, ...]
    postgresql: tuple[str, ...]


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
        f"""CREATE TABLE paywire_transactions (
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
            finished_at BIGINT,
            CONSTRAINT paywire_transactions_key UNIQUE (method, idempotency_key, attempt),
            CONSTRAINT paywire_transactions_status CHECK (
                status IN ('pending', 'succeeded', 'failed', 'action_required', 'unknown')
            )
        )""",
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


MIGRATIONS: tuple[Migration, ...] = (
    Migration(
        1,
        "payments, append-only transactions, references, webhook events",
        sqlite=_tables("INTEGER", "0", " WITHOUT ROWID") + _sqlite_guards(),
        postgresql=_tables("BOOLEAN", "FALSE", "") + _postgres_guards(),
    ),
)


def statements(migration: Migration, dialect: str) -> tuple[str, ...]:
    if dialect == "sqlite":
        return migration.sqlite
    if dialect == "postgresql":
        return migration.postgresql
    raise ValueError(f"unknown SQL dialect {dialect!r}")
