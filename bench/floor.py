"""The plain-driver floor: what an operation's two ledger transactions cost written by hand.

The same tables (the paywire schema, with its indexes), the same commits and durability as the
ledger (the pending unit waits for the disk, the outcome unit does not; SQLite in WAL with the
ledger's `synchronous`, PostgreSQL at READ COMMITTED with the payment's row locked), and only the
statements the design needs:

- authorize: BEGIN; is the key taken?; insert the payment; insert its pending transaction; COMMIT;
  send; BEGIN; record the outcome; update the payment; COMMIT;
- capture: BEGIN; the payment and its transactions (locked); insert the pending capture; COMMIT;
  send; BEGIN; record the outcome; update the payment; COMMIT.

No Python objects, no summaries, no rules: the floor a ledger on these drivers cannot go below.
"""

from __future__ import annotations

import itertools
import os
import sqlite3
from collections.abc import Callable
from typing import Any

_PAYMENT_COLUMNS = ("id, method, flow, currency, amount_minor, state, authorized_minor, captured_minor, refunded_minor, "
                    "observed_authorized_minor, observed_captured_minor, observed_refunded_minor, capture_closed, "
                    "voided, failed, refs, created_at, updated_at")
_TRANSACTION_COLUMNS = ("id, payment_id, method, kind, currency, amount_minor, status, idempotency_key, attempt, "
                        "fingerprint, origin, retryable, request, response, created_at, updated_at")


class Floor:
    """Hand-written ledger transactions on a plain connection (sqlite3 or psycopg)."""

    def __init__(self, connect: Callable[[], Any], *, postgres: bool, durable_sql: str | None = None) -> None:
        self._connect = connect
        self._postgres = postgres
        self._conn: Any = None
        self._pid = 0
        self._ids = itertools.count()
        self._tag = os.urandom(4).hex()
        mark = "%s" if postgres else "?"
        lock = " FOR UPDATE" if postgres else ""
        self._begin = "BEGIN" if postgres else "BEGIN IMMEDIATE"
        self._relaxed = "SET LOCAL synchronous_commit TO OFF" if postgres else None
        self._key_taken = f"SELECT 1 FROM paywire_transactions WHERE method = {mark} AND idempotency_key = {mark}"
        self._insert_payment = (f"INSERT INTO paywire_payments ({_PAYMENT_COLUMNS}) VALUES "
                                f"({', '.join([mark] * 18)})")
        self._insert_transaction = (f"INSERT INTO paywire_transactions ({_TRANSACTION_COLUMNS}) VALUES "
                                    f"({', '.join([mark] * 16)})")
        self._payment = (f"SELECT state, authorized_minor, captured_minor, reference FROM paywire_payments "
                         f"WHERE id = {mark}{lock}")
        self._history = (f"SELECT id, kind, status, amount_minor FROM paywire_transactions WHERE payment_id = {mark} "
                         "ORDER BY created_at, id")
        self._outcome = (f"UPDATE paywire_transactions SET status = {mark}, provider_reference = {mark}, "
                         f"response = {mark}, updated_at = {mark}, finished_at = {mark} WHERE id = {mark}")
        self._update_payment = (f"UPDATE paywire_payments SET state = {mark}, authorized_minor = {mark}, "
                                f"captured_minor = {mark}, reference = {mark}, updated_at = {mark} WHERE id = {mark}")

    def _connection(self) -> Any:
        if self._conn is None or self._pid != os.getpid():
            self._conn, self._pid = self._connect(), os.getpid()
        return self._conn

    def _unit(self, durable: bool) -> Any:
        conn = self._connection()
        conn.execute(self._begin)
        if not durable and self._relaxed:
            conn.execute(self._relaxed)
        return conn

    def authorize(self, send: Callable[[], Any], amount: int = 1999, now: int = 1_700_000_000_000_000) -> str:
        n = next(self._ids)
        payment, txn, key = f"fpay_{self._tag}_{n}", f"ftxn_{self._tag}_{n}_a", f"floor-{self._tag}-{n}"
        conn = self._unit(True)
        conn.execute(self._key_taken, ("benchpay", key)).fetchone()
        conn.execute(self._insert_payment, (payment, "benchpay", "authorize", "EUR", amount, "pending", 0, 0, 0,
                                            0, 0, 0, False, False, False, "{}", now, now))
        conn.execute(self._insert_transaction, (txn, payment, "benchpay", "authorize", "EUR", amount, "pending", key,
                                                1, "f" * 16, "api", False, '{"amount":1999}', "{}", now, now))
        conn.execute("COMMIT")
        reference = send().reference
        conn = self._unit(False)
        conn.execute(self._outcome, ("succeeded", reference, f'{{"reference":"{reference}"}}', now, now, txn))
        conn.execute(self._update_payment, ("authorized", amount, 0, reference, now, payment))
        conn.execute("COMMIT")
        return payment

    def capture(self, payment: str, send: Callable[[], Any], amount: int = 1999,
                now: int = 1_700_000_000_000_001) -> None:
        txn = f"{payment}_c".replace("fpay", "ftxn")
        conn = self._unit(True)
        payment_reference = conn.execute(self._payment, (payment,)).fetchone()[3]
        conn.execute(self._history, (payment,)).fetchall()
        conn.execute(self._insert_transaction, (txn, payment, "benchpay", "capture", "EUR", amount, "pending",
                                                f"{payment}-capture-1", 1, "f" * 16, "api", False,
                                                '{"amount":1999}', "{}", now, now))
        conn.execute("COMMIT")
        reference = send().reference
        conn = self._unit(False)
        conn.execute(self._outcome, ("succeeded", reference, f'{{"reference":"{reference}"}}', now, now, txn))
        conn.execute(self._update_payment, ("captured", amount, amount, payment_reference, now, payment))
        conn.execute("COMMIT")

    def close(self) -> None:
        if self._conn is not None and self._pid == os.getpid():
            self._conn.close()
        self._conn = None


def sqlite_floor(path: str, synchronous: str = "NORMAL") -> Floor:
    """The floor on an SQLite file already holding the paywire schema, set up as the ledger is."""
    def connect() -> sqlite3.Connection:
        conn = sqlite3.connect(path, isolation_level=None, timeout=30)
        conn.execute("PRAGMA journal_mode = WAL")
        conn.execute(f"PRAGMA synchronous = {synchronous}")
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute("PRAGMA wal_autocheckpoint = 10000")
        return conn
    return Floor(connect, postgres=False)


def postgres_floor(dsn: str, schema: str) -> Floor:
    """The floor on a PostgreSQL schema already holding the paywire tables."""
    def connect() -> Any:
        import psycopg

        conn = psycopg.connect(dsn, autocommit=True)
        conn.execute(f'SET search_path TO "{schema}"')
        return conn
    return Floor(connect, postgres=True)
