# ruff: noqa: S608 - queries are assembled from constant column lists and "?" placeholders only;
# every value is a bound parameter.
"""The SQL both backends share. A backend supplies connections, the dialect's locking, and how to
recognise an integrity error; everything else (queries, row mapping, migrations) lives here, so
the two backends cannot drift apart in what they store.
"""

from __future__ import annotations

import contextlib
import json
import os
import threading
import weakref
from collections.abc import Callable, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from functools import lru_cache, partial
from operator import itemgetter
from types import MappingProxyType
from typing import Any

from paywire.errors import ConfigurationError, LedgerBusy, LedgerUnavailable
from paywire.ledger.interface import Ledger, LedgerIntegrityError, LedgerUnit
from paywire.ledger.migrations import COMPATIBLE_TABLE, LEDGER_TABLES, MIGRATIONS, Migration, statements
from paywire.ledger.model import (
    Look,
    Payment,
    StoredEvent,
    StoredJSON,
    Transaction,
    TransactionStatus,
    canonical_json,
    restored,
)
from paywire.money import Money
from paywire.subject import BuyerAction

__all__ = ["SQLLedger"]

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_MICRO = timedelta(microseconds=1)

Row = Sequence[Any]


def to_us(value: datetime) -> int:
    """A datetime as integer microseconds since the epoch (exact, unlike float timestamps)."""
    return (value - _EPOCH) // _MICRO


def from_us(value: int | None) -> datetime | None:
    return None if value is None else _EPOCH + timedelta(0, 0, value)  # positional: no keyword parsing


def _at(value: int) -> datetime:
    return _EPOCH + timedelta(0, 0, value)


def _dump(value: Mapping[str, Any]) -> str:
    if type(value) is StoredJSON:  # by exact type: no ABC check
        return value.text  # as read, unchanged
    if not value:
        return "{}"  # the response of every pending transaction
    if type(value) is MappingProxyType:  # a record's: a view of a dict (`model._frozen`), copied whole
        return canonical_json(value.copy())  # not key by key, as dict() copies a mapping of another type
    return canonical_json(dict(value))


# The text a payment's references were last written as, by the read-only mapping's identity: a
# record's mappings are views of private copies (`model._frozen`), so the text stays theirs, and
# most operations leave the references as they were (their outcome writes them again). Each entry
# holds its mapping, so its id is not reused while it is here; the payments `_PAYMENTS` keeps
# hold them anyway. Bounded: forgotten all at once when full.
_REFERENCES: dict[int, tuple[Mapping[str, Any], str]] = {}
_KEPT_REFERENCES = 1024


def _dump_references(value: Mapping[str, Any]) -> str:
    if type(value) is not MappingProxyType or not value:
        return _dump(value)
    known = _REFERENCES.get(id(value))
    if known is not None and known[0] is value:
        return known[1]
    text = canonical_json(value.copy())  # a view of a dict, copied whole (see `_dump`)
    if len(_REFERENCES) >= _KEPT_REFERENCES:
        _REFERENCES.clear()
    _REFERENCES[id(value)] = (value, text)
    return text


# Money is immutable, and a row holds the same few amounts again and again (zero, the payment's
# amount): share them instead of validating the currency anew for each of a row's seven totals.
_money = lru_cache(maxsize=4096)(Money)


PAYMENT_COLUMNS = (
    "id, method, flow, currency, amount_minor, state, authorized_minor, captured_minor, refunded_minor, "
    "observed_authorized_minor, observed_captured_minor, observed_refunded_minor, capture_closed, voided, "
    "failed, reference, refs, order_id, customer_reference, token, action_url, action_return_url, "
    "action_kind, created_at, updated_at"
)
TRANSACTION_COLUMNS = (
    "id, payment_id, method, kind, currency, amount_minor, status, idempotency_key, attempt, fingerprint, "
    "provider_reference, parent_id, origin, error_type, error_code, error_message, retryable, token, "
    "request, response, created_at, updated_at, finished_at, settle_after, settled_by"
)
EVENT_COLUMNS = (
    "provider, event_id, method, type, kind, reference, refs, currency, amount_minor, total_minor, status, "
    "payment_id, note, received_at, applied_at, closes_capture"
)


_TRANSACTION_COLUMNS_T = ", ".join(f"t.{name.strip()}" for name in TRANSACTION_COLUMNS.split(","))
_EVENT_COLUMNS_E = ", ".join(f"e.{name.strip()}" for name in EVENT_COLUMNS.split(","))


def _params(count: int) -> str:
    return ", ".join("?" * count)


@lru_cache(maxsize=64)
def _waiting_sql(methods: int, refs: int) -> str:
    """`waiting_events`' query for so many methods and references (its parameters: the payment
    id, the methods, the references)."""
    sql = f"SELECT {EVENT_COLUMNS} FROM paywire_events WHERE status = 'deferred' AND payment_id = ?"
    if methods and refs:
        sql += (
            f" UNION ALL SELECT {_EVENT_COLUMNS_E} FROM paywire_event_references r JOIN paywire_events e "
            f"ON e.provider = r.provider AND e.event_id = r.event_id WHERE r.method IN ({_params(methods)}) "
            f"AND r.reference IN ({_params(refs)}) AND e.status = 'unmatched'"
        )
    return sql


_UNMATCHED_BRANCH = (
    f" UNION ALL SELECT {_EVENT_COLUMNS_E} FROM paywire_event_references r JOIN paywire_events e "
    "ON e.provider = r.provider AND e.event_id = r.event_id WHERE r.method = ? AND r.reference = ? "
    "AND e.status = 'unmatched'"
)


@lru_cache(maxsize=64)
def waiting_sql_by_pair(pairs: int) -> str:
    """`_waiting_sql` with one branch per (method, reference) pair, each an equality lookup on
    the references' index (its parameters: the payment id, then each pair's method and
    reference). SQLite builds a temporary table for an IN list of two or more values on every
    run (about 20,000 instructions, more than a few index lookups cost); the rows are the same."""
    sql = f"SELECT {EVENT_COLUMNS} FROM paywire_events WHERE status = 'deferred' AND payment_id = ?"
    return sql + _UNMATCHED_BRANCH * pairs


_PAYMENT_WIDTH = PAYMENT_COLUMNS.count(",") + 1
_TRANSACTION_NAMES = [name.strip() for name in TRANSACTION_COLUMNS.split(",")]
_IN_ORDER = itemgetter(_TRANSACTION_NAMES.index("created_at"), _TRANSACTION_NAMES.index("id"))
_IN_ORDER_JOINED = itemgetter(_PAYMENT_WIDTH + _TRANSACTION_NAMES.index("created_at"),
                              _PAYMENT_WIDTH + _TRANSACTION_NAMES.index("id"))


@lru_cache(maxsize=16)
def _insert_references(count: int) -> str:
    """`add_references`' statement for so many references (one, after most operations)."""
    return ("INSERT INTO paywire_references (method, reference, payment_id) VALUES "
            + ", ".join(["(?, ?, ?)"] * count) + " ON CONFLICT DO NOTHING")

# Statements are built once: the drivers cache prepared statements by their text.
SELECT_PAYMENT = f"SELECT {PAYMENT_COLUMNS} FROM paywire_payments WHERE id = ?"
_INSERT_PAYMENT = f"INSERT INTO paywire_payments ({PAYMENT_COLUMNS}) VALUES ({_params(25)})"
# An update writes only what can change: assigning an indexed column, even its own value,
# rewrites that index's entry (two more pages in every outcome's commit, on SQLite).
_FIXED = {"id", "method", "flow", "currency", "amount_minor", "order_id", "created_at"}
_NAMES = [name.strip() for name in PAYMENT_COLUMNS.split(",")]
_CHANGING = itemgetter(*(i for i, name in enumerate(_NAMES) if name not in _FIXED), 0)  # then the id
_UPDATE_PAYMENT = (
    "UPDATE paywire_payments SET " + ", ".join(f"{name} = ?" for name in _NAMES if name not in _FIXED)
    + " WHERE id = ?"
)
# A payment's history is put in order (created_at, then id) here, not by ORDER BY: its index holds
# (payment_id, created_at) only, and SQLite would sort the few whole rows in a temporary B-tree
# for the id (about 18,000 instructions of each capture).
_SELECT_TRANSACTIONS = f"SELECT {TRANSACTION_COLUMNS} FROM paywire_transactions WHERE payment_id = ?"
SELECT_HISTORY = (  # a payment in every row, then one of its transactions (NULLs when it has none)
    f"SELECT p.{PAYMENT_COLUMNS.replace(', ', ', p.')}, t.{TRANSACTION_COLUMNS.replace(', ', ', t.')} "
    "FROM paywire_payments p LEFT JOIN paywire_transactions t ON t.payment_id = p.id WHERE p.id = ?"
)
_INSERT_TRANSACTION = f"INSERT INTO paywire_transactions ({TRANSACTION_COLUMNS}) VALUES ({_params(25)})"
# The outcome columns only: what a transaction was (and its request) never changes.
_OUTCOME = (
    "UPDATE paywire_transactions SET status = ?, provider_reference = ?, error_type = ?, error_code = ?, "
    "error_message = ?, retryable = ?, token = ?, response = ?, updated_at = ?, finished_at = ?, "
    "settle_after = ?, settled_by = ? "
)
_OPEN_SQL = "('pending', 'unknown', 'accepted')"  # TransactionStatus.OPEN, written out for the planners
_FINISH = _OUTCOME + "WHERE id = ? AND status = 'pending' AND updated_at = ?"
# An open transaction's outcome and its request (a resend may add what it was sent to).
_REWRITE = (_OUTCOME.replace("response = ?", "request = ?, response = ?")
            + f"WHERE id = ? AND status IN {_OPEN_SQL}")

# The columns most writes leave empty are written NULL in the statement itself, not bound: the
# sqlite3 driver binds a None through its adapter registry (a key built and looked up for each,
# about 1,200 instructions), and a payment without a buyer action, a pending transaction and an
# answer without an error or a token would bind 3, 7 and 4 of them. Each variant is taken only
# when the row holds None in every such column.
_ACTION = ("action_url", "action_return_url", "action_kind")
_INSERT_PAYMENT_NO_ACTION = (f"INSERT INTO paywire_payments ({PAYMENT_COLUMNS}) VALUES "
                             f"({', '.join('NULL' if name in _ACTION else '?' for name in _NAMES)})")
_ACTION_OF = itemgetter(*(i for i, name in enumerate(_NAMES) if name in _ACTION))
_BUT_ACTION = itemgetter(*(i for i, name in enumerate(_NAMES) if name not in _ACTION))
_CHANGING_NO_ACTION = itemgetter(*(i for i, name in enumerate(_NAMES) if name not in _FIXED and name not in _ACTION), 0)
_UPDATE_PAYMENT_NO_ACTION = (
    "UPDATE paywire_payments SET "
    + ", ".join(f"{name} = NULL" if name in _ACTION else f"{name} = ?" for name in _NAMES if name not in _FIXED)
    + " WHERE id = ?"
)
_UNSET = ("provider_reference", "error_type", "error_code", "error_message", "token", "finished_at", "settled_by")
_INSERT_PENDING = (f"INSERT INTO paywire_transactions ({TRANSACTION_COLUMNS}) VALUES "
                   f"({', '.join('NULL' if name in _UNSET else '?' for name in _TRANSACTION_NAMES)})")
_UNSET_OF = itemgetter(*(i for i, name in enumerate(_TRANSACTION_NAMES) if name in _UNSET))
_SET_OF = itemgetter(*(i for i, name in enumerate(_TRANSACTION_NAMES) if name not in _UNSET))
_NO_ERROR = ("error_type", "error_code", "error_message", "token")
_OUTCOME_NAMES = [part.split(" = ")[0] for part in _OUTCOME.removeprefix("UPDATE paywire_transactions SET ").split(", ")]
_FINISH_NO_ERROR = ("UPDATE paywire_transactions SET "
                    + ", ".join(f"{name} = NULL" if name in _NO_ERROR else f"{name} = ?" for name in _OUTCOME_NAMES)
                    + " WHERE id = ? AND status = 'pending' AND updated_at = ?")


# How a row's flags are bound, indexed by the flag: as they are, or where the dialect has no
# boolean (SQLite) as the 0 and 1 it stores, which its driver binds without looking for an adapter.
Flags = tuple[Any, Any]
_BOOLEANS: Flags = (False, True)


def payment_row(p: Payment, flags: Flags = _BOOLEANS) -> tuple[Any, ...]:
    # Here and in `transaction_row` and `_finish`, `to_us` is spelt out: the rows of every operation.
    action = p.action
    created = (p.created_at - _EPOCH) // _MICRO
    return (
        p.id, p.method, p.flow, p.amount.currency, p.amount.minor, p.state, p.authorized.minor, p.captured.minor,
        p.refunded.minor, p.observed_authorized.minor, p.observed_captured.minor, p.observed_refunded.minor,
        flags[p.capture_closed], flags[p.voided], flags[p.failed], p.reference, _dump_references(p.references), p.order_id,
        p.customer_reference, p.token, action.redirect_url if action else None,
        action.return_url if action else None, action.kind if action else None,
        created, created if p.updated_at is p.created_at else (p.updated_at - _EPOCH) // _MICRO,  # a new row's are one
    )


# Decoding is a pure function of the row and a `Payment` is immutable all the way down, so a row
# read again unchanged (the outcome unit rereads what the pending unit read) is not decoded again;
# nor is a row this process just wrote (the next operation on the payment reads what the last
# one's outcome made). Bounded: forgotten all at once when full.
_PAYMENTS: dict[tuple[Any, ...], Payment] = {}
_KEPT_PAYMENTS = 1024


def _keep_payment(row: tuple[Any, ...], payment: Payment) -> Payment:
    if len(_PAYMENTS) >= _KEPT_PAYMENTS:
        _PAYMENTS.clear()
    _PAYMENTS[row] = payment
    return payment


def payment_from_row(r: Row) -> Payment:
    row = tuple(r)
    return _PAYMENTS.get(row) or _keep_payment(row, _payment_from_row(row))


def _written(row: tuple[Any, ...], payment: Payment) -> None:
    """Remember `payment` as what `row`, just written from it, decodes to, when it is: no
    action (a new one may hold its client secret, never stored), its times in UTC as decoded.
    Whether the write commits does not matter: only a read of this very row finds it."""
    if payment.action is None and payment.created_at.tzinfo is UTC and payment.updated_at.tzinfo is UTC:
        _keep_payment(row, payment)


def _payment_from_row(r: tuple[Any, ...]) -> Payment:
    currency, money = r[3], _money
    return restored(Payment, {
        "id": r[0], "method": r[1], "flow": r[2], "amount": money(int(r[4]), currency), "state": r[5],
        "authorized": money(int(r[6]), currency), "captured": money(int(r[7]), currency),
        "refunded": money(int(r[8]), currency), "observed_authorized": money(int(r[9]), currency),
        "observed_captured": money(int(r[10]), currency), "observed_refunded": money(int(r[11]), currency),
        "capture_closed": bool(r[12]),
        "voided": bool(r[13]), "failed": bool(r[14]), "reference": r[15], "references": StoredJSON(r[16]),
        "order_id": r[17], "customer_reference": r[18], "token": r[19],
        "action": BuyerAction(r[20], r[21], r[22] or "redirect") if r[20] is not None else None,
        "created_at": _at(r[23]), "updated_at": _at(r[24]),
    })


def transaction_row(t: Transaction, flags: Flags = _BOOLEANS) -> tuple[Any, ...]:
    created = (t.created_at - _EPOCH) // _MICRO
    return (
        t.id, t.payment_id, t.method, t.kind, t.amount.currency if t.amount is not None else None,
        t.amount.minor if t.amount is not None else None, t.status, t.idempotency_key, t.attempt, t.fingerprint,
        t.provider_reference, t.parent_id, t.origin, t.error_type, t.error_code, t.error_message,
        flags[t.retryable], t.token, _dump(t.request), _dump(t.response), created,
        created if t.updated_at is t.created_at else (t.updated_at - _EPOCH) // _MICRO,  # a new row's are one
        (t.finished_at - _EPOCH) // _MICRO if t.finished_at else None,
        (t.settle_after - _EPOCH) // _MICRO if t.settle_after else None, t.settled_by,
    )


def transaction_from_row(r: Row) -> Transaction:
    # A time shared by two columns (a new row's creation and update, an answer's update and
    # finish, as `transaction_row` writes them) is decoded once: a datetime is immutable, and
    # making one costs more than the rest of a column.
    created = _EPOCH + timedelta(0, 0, r[20])  # `_at`, spelt out: every row read
    updated = created if r[21] == r[20] else _EPOCH + timedelta(0, 0, r[21])
    return restored(Transaction, {
        "id": r[0], "payment_id": r[1], "method": r[2], "kind": r[3],
        "amount": _money(int(r[5]), r[4]) if r[4] is not None else None, "status": r[6], "idempotency_key": r[7],
        "attempt": int(r[8]), "fingerprint": r[9], "provider_reference": r[10], "parent_id": r[11],
        "origin": r[12], "error_type": r[13], "error_code": r[14], "error_message": r[15],
        "retryable": bool(r[16]), "token": r[17], "request": StoredJSON(r[18]), "response": StoredJSON(r[19]),
        "created_at": created, "updated_at": updated, "finished_at": updated if r[22] == r[21] else from_us(r[22]),
        "settle_after": from_us(r[23]), "settled_by": r[24],
    })


def event_row(e: StoredEvent, flags: Flags = _BOOLEANS) -> tuple[Any, ...]:
    money = e.amount if e.amount is not None else e.total  # a zero is an amount too (Money(0) is falsy)
    currency = money.currency if money is not None else None
    return (
        e.provider, e.event_id, e.method, e.type, e.kind, e.reference, _dump(e.references), currency,
        e.amount.minor if e.amount is not None else None, e.total.minor if e.total is not None else None,
        e.status, e.payment_id, e.note, to_us(e.received_at), to_us(e.applied_at) if e.applied_at else None,
        flags[e.closes_capture],
    )


def event_from_row(r: Row) -> StoredEvent:
    currency = r[7]
    return StoredEvent(
        provider=r[0], event_id=r[1], method=r[2], type=r[3], kind=r[4], reference=r[5],
        references=json.loads(r[6]), amount=Money(int(r[8]), currency) if r[8] is not None else None,
        total=Money(int(r[9]), currency) if r[9] is not None else None, status=r[10], payment_id=r[11],
        note=r[12], received_at=_at(r[13]), applied_at=from_us(r[14]),
        closes_capture=bool(r[15]),  # NULL: stored by a release that kept no such word
    )


class SQLUnit(LedgerUnit):
    """A unit of work on one connection, and its extent (`SQLLedger.unit`): entered, it begins
    its transaction; left, it commits, or rolls back on any error. One object for both, and a
    class rather than a generator-based context manager: every operation makes two units."""

    def __init__(self, ledger: SQLLedger, durable: bool = True) -> None:
        self._ledger = ledger
        self._durable = durable
        self._conn: Any = None  # the connection, once entered
        self._execute: Callable[[str, Sequence[Any]], Any]  # its statements' runner, once entered
        self._unchecked: list[tuple[Any, str, str]] = []  # writes that must have hit one row

    def __enter__(self) -> SQLUnit:
        ledger = self._ledger
        # The thread's own dict, looked up once: each attribute of a `threading.local` is found
        # through the thread's state (about four times a plain attribute's cost).
        self._thread = thread = ledger._local.__dict__
        if thread.get("in_unit", False):
            raise RuntimeError("ledger units do not nest: finish the open unit first")
        thread["in_unit"] = True
        try:  # connecting may wait on a lock too (SQLite reads the file): LedgerBusy there as well
            connection = ledger.connection()
            ledger.begin(connection, durable=self._durable)
        except BaseException as exc:
            thread["in_unit"] = False
            refused = self._refused(exc)
            if refused is not None:
                raise refused from exc
            raise
        self._conn = connection
        self._execute = ledger.runner(connection)
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: Any) -> None:
        ledger = self._ledger
        try:
            if exc is None:
                try:
                    if self._unchecked:  # a unit that only inserted has nothing to check
                        self.check()
                    ledger.commit(self._conn)
                except BaseException as error:
                    ledger._rollback(self._conn)
                    refused = self._refused(error)
                    if refused is not None:
                        raise refused from error
                    raise
            else:
                ledger._rollback(self._conn)
                refused = self._refused(exc)
                if refused is not None:
                    raise refused from exc
        finally:
            self._thread["in_unit"] = False

    def _refused(self, exc: BaseException) -> LedgerIntegrityError | LedgerBusy | None:
        """What to raise instead of `exc` when it is a constraint the database refused, or a lock
        it could not give in time (the unit is rolled back whole: retrying it is safe)."""
        if not isinstance(exc, Exception):
            return None
        if self._ledger.is_integrity_error(exc):
            return LedgerIntegrityError(str(exc).strip())
        if self._ledger.is_busy(exc):
            return _busy(exc)
        return None

    def now(self) -> datetime:
        return self._ledger.now()

    @staticmethod
    def _rowcount(cursor: Any) -> int:
        return int(cursor.rowcount)

    def _expect_one(self, cursor: Any, problem: str, row_id: str) -> None:
        """Check that a write hit exactly one row, by COMMIT at the latest: where statements are
        batched, its count arrives with the next answer the unit waits for anyway. `problem`
        names the row (`row_id`) only if it is raised: most units raise nothing."""
        self._unchecked.append((cursor, problem, row_id))

    def check(self) -> None:
        """Raise if a write did not hit its row; the unit then rolls back."""
        for cursor, problem, row_id in self._unchecked:
            if int(cursor.rowcount) != 1:  # `_rowcount`, spelt out: every unit
                raise LedgerIntegrityError(problem.format(row_id))
        self._unchecked.clear()

    def _run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._execute(sql, params)

    def _one(self, sql: str, params: Sequence[Any]) -> Row | None:
        row: Row | None = self._run(sql, params).fetchone()
        return row

    def lock_key(self, method: str, key: str) -> None:
        self._ledger.lock_key(self._conn, method, key)

    def mark(self) -> object | None:
        return self._ledger.mark(self._conn)

    def unchanged_since(self, mark: object | None) -> bool:
        return mark is not None and self._ledger.unchanged_since(self._conn, mark)

    def payment(self, payment_id: str, *, lock: bool = False) -> Payment | None:
        row = self._one(self._ledger.select_payment_locked if lock else SELECT_PAYMENT, (payment_id,))
        return payment_from_row(row) if row else None

    def claim_payment(self, payment_id: str) -> Payment | None:
        row = self._one(self._ledger.select_payment_claimed, (payment_id,))
        return payment_from_row(row) if row else None

    def insert_payment(self, payment: Payment) -> None:
        row = payment_row(payment, self._ledger.flags)
        if _ACTION_OF(row) == (None,) * 3:
            self._write(_INSERT_PAYMENT_NO_ACTION, _BUT_ACTION(row))
        else:
            self._write(_INSERT_PAYMENT, row)

    def update_payment(self, payment: Payment) -> None:
        row = payment_row(payment, self._ledger.flags)
        if _ACTION_OF(row) == (None,) * 3:
            cursor = self._write(_UPDATE_PAYMENT_NO_ACTION, _CHANGING_NO_ACTION(row))
        else:
            cursor = self._write(_UPDATE_PAYMENT, _CHANGING(row))
        _written(row, payment)
        self._expect_one(cursor, "payment {} does not exist", payment.id)

    def payment_and_transactions(self, payment_id: str, *,
                                 lock: bool = False) -> tuple[Payment | None, list[Transaction]]:
        if lock and not self._ledger.serialised:
            return self._locked_history(payment_id)()
        rows = self._run(SELECT_HISTORY, (payment_id,)).fetchall()
        if not rows:
            return None, []
        rows.sort(key=_IN_ORDER_JOINED)
        width = _PAYMENT_WIDTH
        return payment_from_row(rows[0][:width]), [transaction_from_row(r[width:]) for r in rows if r[width] is not None]

    def _locked_history(self, payment_id: str) -> Callable[[], tuple[Payment | None, list[Transaction]]]:
        """Send the payment's lock, then the read of its transactions; returns how to take the
        answers. A row lock that had to wait does not refresh the rest of its statement's
        snapshot (PostgreSQL, READ COMMITTED): the transactions are read after the lock, in a
        statement of their own, or a concurrent operation's pending record would be missed.
        Nothing is waited for until the answers are taken: one round trip, with whatever else
        was sent meanwhile, where statements are batched."""
        locked = self._run(self._ledger.select_payment_locked, (payment_id,))
        history = self._run(_SELECT_TRANSACTIONS, (payment_id,))

        def take() -> tuple[Payment | None, list[Transaction]]:
            row = locked.fetchone()
            txns = [transaction_from_row(r) for r in sorted(history.fetchall(), key=_IN_ORDER)]
            return (payment_from_row(row), txns) if row else (None, [])
        return take

    def transactions(self, payment_id: str) -> list[Transaction]:
        return [transaction_from_row(r) for r in sorted(self._run(_SELECT_TRANSACTIONS, (payment_id,)).fetchall(),
                                                        key=_IN_ORDER)]

    def transaction_by_key(self, method: str, key: str, *, siblings: Sequence[str] = ()) -> Transaction | None:
        if siblings:  # one query, still on the (method, idempotency_key, attempt) index; `method`'s own first
            row = self._one(
                f"SELECT {TRANSACTION_COLUMNS} FROM paywire_transactions WHERE method IN "
                f"({_params(1 + len(siblings))}) AND idempotency_key = ? ORDER BY method <> ?, attempt DESC, method "
                "LIMIT 1",
                (method, *siblings, key, method),
            )
            return transaction_from_row(row) if row else None
        row = self._one(
            f"SELECT {TRANSACTION_COLUMNS} FROM paywire_transactions WHERE method = ? AND idempotency_key = ? "
            "ORDER BY attempt DESC LIMIT 1",
            (method, key),
        )
        return transaction_from_row(row) if row else None

    def transaction(self, transaction_id: str) -> Transaction | None:
        row = self._one(f"SELECT {TRANSACTION_COLUMNS} FROM paywire_transactions WHERE id = ?", (transaction_id,))
        return transaction_from_row(row) if row else None

    def insert_transaction(self, transaction: Transaction) -> None:
        row = transaction_row(transaction, self._ledger.flags)
        if _UNSET_OF(row) == (None,) * 7:
            self._write(_INSERT_PENDING, _SET_OF(row))
        else:
            self._write(_INSERT_TRANSACTION, row)

    def update_transaction(self, transaction: Transaction) -> None:
        t = transaction
        outcome = self._outcome(t, self._ledger.flags)
        cursor = self._write(_REWRITE, (*outcome[:7], _dump(t.request), *outcome[7:], t.id))
        self._expect_one(cursor, "transaction {} is finished (or missing); its history cannot change", t.id)

    @staticmethod
    def _outcome(t: Transaction, flags: Flags = _BOOLEANS) -> tuple[Any, ...]:
        updated, finished = to_us(t.updated_at), t.finished_at
        return (
            t.status, t.provider_reference, t.error_type, t.error_code, t.error_message,
            flags[t.retryable], t.token,
            _dump(t.response), updated,
            (updated if finished is t.updated_at else to_us(finished)) if finished else None,  # an answer's are one
            to_us(t.settle_after) if t.settle_after else None, t.settled_by,
        )

    def finish_transaction(self, transaction: Transaction, *, claimed_at: datetime) -> bool:
        return int(self._finish(transaction, claimed_at).rowcount) == 1  # `_rowcount`, spelt out: every outcome

    def _finish(self, t: Transaction, claimed_at: datetime) -> Any:
        flags = self._ledger.flags
        if t.error_type is None and t.error_code is None and t.error_message is None and t.token is None:
            # `_FINISH_NO_ERROR`'s parameters, in `_outcome`'s order without those four
            updated, finished = (t.updated_at - _EPOCH) // _MICRO, t.finished_at
            return self._write(_FINISH_NO_ERROR, (
                t.status, t.provider_reference, flags[t.retryable], _dump(t.response), updated,
                (updated if finished is t.updated_at else (finished - _EPOCH) // _MICRO) if finished else None,
                (t.settle_after - _EPOCH) // _MICRO if t.settle_after else None, t.settled_by, t.id,
                (claimed_at - _EPOCH) // _MICRO))
        return self._write(_FINISH, (*self._outcome(t, flags), t.id, to_us(claimed_at)))

    def finish_locked(self, payment_id: str | None, transaction: Transaction, *,
                      claimed_at: datetime) -> tuple[Payment | None, list[Transaction], bool]:
        if payment_id is None or self._ledger.serialised:
            return super().finish_locked(payment_id, transaction, claimed_at=claimed_at)
        take = self._locked_history(payment_id)  # the lock first, as everywhere
        cursor = self._finish(transaction, claimed_at)
        payment, txns = take()
        return payment, txns, self._rowcount(cursor) == 1

    def overrule(self, transaction: Transaction, *, status: str) -> bool:
        """Record `transaction`'s outcome over the row's `status` (see `LedgerUnit.overrule`)."""
        t = transaction
        cursor = self._write(_OUTCOME + "WHERE id = ? AND status = ?",
                             (*self._outcome(t, self._ledger.flags), t.id, status))
        return self._rowcount(cursor) == 1

    def learn_reference(self, transaction_id: str, reference: str) -> None:
        self._write("UPDATE paywire_transactions SET provider_reference = ? "
                    "WHERE id = ? AND provider_reference IS NULL", (reference, transaction_id))

    def add_references(self, method: str, payment_id: str, references: Sequence[str]) -> None:
        fresh = dict.fromkeys(references)  # each once, none empty (no comprehension's call: every outcome)
        fresh.pop("", None)
        fresh.pop(None, None)  # type: ignore[call-overload]
        if fresh:
            self._write(*self._ledger.index_references(method, payment_id, list(fresh)))

    def payment_by_reference(self, method: str, references: Sequence[str]) -> str | None:
        refs = [r for r in references if r]
        if not refs:
            return None
        row = self._one(
            f"SELECT payment_id FROM paywire_references WHERE method = ? AND reference IN ({_params(len(refs))}) "
            "LIMIT 1",
            (method, *refs),
        )
        return str(row[0]) if row else None

    def insert_event(self, event: StoredEvent) -> bool:
        cursor = self._write(
            f"INSERT INTO paywire_events ({EVENT_COLUMNS}) VALUES ({_params(16)}) ON CONFLICT DO NOTHING",
            event_row(event, self._ledger.flags),
        )
        if self._rowcount(cursor) != 1:
            return False
        for reference in event.all_references:
            self._write(
                "INSERT INTO paywire_event_references (provider, event_id, method, reference) VALUES (?, ?, ?, ?) "
                "ON CONFLICT DO NOTHING",
                (event.provider, event.event_id, event.method, reference),
            )
        return True

    def update_event(self, event: StoredEvent) -> None:
        self._write(
            "UPDATE paywire_events SET status = ?, payment_id = ?, note = ?, applied_at = ? "
            "WHERE provider = ? AND event_id = ?",
            (event.status, event.payment_id, event.note, to_us(event.applied_at) if event.applied_at else None,
             event.provider, event.event_id),
        )

    def event(self, provider: str, event_id: str) -> StoredEvent | None:
        row = self._one(
            f"SELECT {EVENT_COLUMNS} FROM paywire_events WHERE provider = ? AND event_id = ?", (provider, event_id)
        )
        return event_from_row(row) if row else None

    def waiting_events(self, *, methods: Sequence[str], payment_id: str | None = None,
                       references: Sequence[str] = ()) -> list[StoredEvent]:
        methods = list(dict.fromkeys(methods))
        refs: list[str] = []
        if methods:  # unmatched: through a method; each reference once, none empty
            fresh = dict.fromkeys(references)
            fresh.pop("", None)
            fresh.pop(None, None)  # type: ignore[call-overload]
            refs = list(fresh)
        if payment_id is None and not refs:
            return []
        if not refs:
            methods = []
        # One query for both kinds and every method, run after every operation: the unmatched
        # part starts from the references' index, so its cost is what matches, not how many
        # unmatched events are stored.
        rows = self._execute(*self._ledger.waiting_query(payment_id, methods, refs)).fetchall()
        if len(rows) > 1:
            found = {(r[0], r[1]): r for r in rows}  # one per event, however many refs name it
            rows = sorted(found.values(), key=lambda r: (r[13], r[1]))  # received_at, event_id
        elif not rows:  # after most operations: no comprehension to run
            return []
        return [event_from_row(r) for r in rows]

    def looks(self, transaction_ids: Sequence[str]) -> dict[str, Look]:
        return _looks(lambda sql, params: self._run(sql, params).fetchall(), transaction_ids)

    def set_looks(self, looks: Mapping[str, Look | None]) -> None:
        for transaction_id, look in looks.items():
            if look is None:
                self._write("DELETE FROM paywire_reconcile_looks WHERE transaction_id = ?", (transaction_id,))
            else:
                self._write(_UPSERT_LOOK, (transaction_id, look.looks, to_us(look.next_at)))

    def owed_read(self, payment_id: str) -> Look | None:
        row = self._one("SELECT looks, next_at FROM paywire_owed_reads WHERE payment_id = ?", (payment_id,))
        return Look(int(row[0]), _at(int(row[1]))) if row else None

    def set_owed_read(self, payment_id: str, look: Look | None) -> None:
        if look is None:
            self._write("DELETE FROM paywire_owed_reads WHERE payment_id = ?", (payment_id,))
        else:
            self._write(_UPSERT_OWED_READ, (payment_id, look.looks, to_us(look.next_at)))

    def _write(self, sql: str, params: Sequence[Any]) -> Any:
        try:
            return self._execute(sql, params)
        except Exception as exc:
            if self._ledger.is_integrity_error(exc):
                raise LedgerIntegrityError(str(exc).strip()) from exc
            raise


class _Token:
    """Lives as long as a thread's hold on its connection."""

    __slots__ = ("__weakref__",)


def _close(pid: int, connection: Any) -> None:
    """Close a connection this process opened (never a parent's, inherited by a fork)."""
    if os.getpid() == pid:
        with contextlib.suppress(Exception):  # already broken: nothing left to release
            connection.close()


def _busy(exc: Exception) -> LedgerBusy:
    """The error for a unit the database gave up on a lock for (`SQLLedger.is_busy`): rolled back."""
    reason = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return LedgerBusy(f"the ledger is busy ({reason}); nothing was written: try again", code="ledger_busy")


class SQLLedger(Ledger):
    """A ledger on a SQL database; subclasses bind it to a driver."""

    dialect: str
    select_payment_locked = SELECT_PAYMENT  # with the dialect's row lock, where it has one
    select_payment_claimed = SELECT_PAYMENT  # the same, skipping a row another worker holds
    serialised = False  # whether a unit excludes every other writer (then nothing needs a row lock)
    flags: Flags = _BOOLEANS  # how rows bind their flags (see `payment_row`)

    def __init__(self) -> None:
        self._local = threading.local()
        self._connections: list[tuple[int, weakref.finalize[[int, Any], _Token]]] = []  # (pid, closer), for close()
        self._lock = threading.Lock()
        self._generation = 0  # bumped by close(), so other threads reconnect instead of using a closed handle

    # -- the driver-specific part ----------------------------------------------------------------
    def connection(self) -> Any:
        """This thread's connection (a new one after a fork: connections are never shared)."""
        raise NotImplementedError

    def execute(self, connection: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        raise NotImplementedError

    def runner(self, connection: Any) -> Callable[[str, Sequence[Any]], Any]:
        """What a unit on `connection` runs each statement with, `(sql, params)`: `execute` bound
        to it, or where the driver's own call takes what a unit passes as it is, that call."""
        return partial(self.execute, connection)

    def begin(self, connection: Any, *, durable: bool = True) -> None:
        raise NotImplementedError

    def lock_key(self, connection: Any, method: str, key: str) -> None:
        """Serialise work on one idempotency key until commit (SQLite's write lock already does)."""

    def lock_migrations(self, connection: Any) -> None:
        """Serialise migrations until commit (SQLite's write lock already does), and make what they
        create go where the ledger's tables are."""

    def index_references(self, method: str, payment_id: str, references: Sequence[str]) -> tuple[str, list[Any]]:
        """The statement indexing provider ids under a payment, and its parameters. Where units
        interleave, it also holds the ids until commit against `wait_out_references` (SQLite's
        write lock already excludes it)."""
        if len(references) == 1:  # after most operations: no comprehension's call
            return _insert_references(1), [method, references[0], payment_id]
        return _insert_references(len(references)), [value for ref in references for value in (method, ref, payment_id)]

    def waiting_query(self, payment_id: str | None, methods: Sequence[str],
                      references: Sequence[str]) -> tuple[str, tuple[Any, ...]]:
        """`SQLUnit.waiting_events`' statement and its parameters: the payment's deferred events,
        and the unmatched events naming one of `references` through one of `methods` (both
        lists without duplicates; `methods` empty when `references` is)."""
        return _waiting_sql(len(methods), len(references)), (payment_id, *methods, *references)

    @staticmethod
    def table_sql(name: str) -> str:
        """A query answering a row when the ledger holds table `name` (one of paywire's own):
        asked before any DDL, so that a ledger already at this release's version is opened by a
        role that may not create anything."""
        return f"SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = '{name}'"

    def create_namespace(self, connection: Any) -> None:
        """Make the place the ledger's tables go, before its first migration (PostgreSQL: its schema)."""

    def version(self, connection: Any) -> object | None:
        """A value that changes whenever another connection commits to the ledger (this
        connection's own commits need not move it); None where the backend has none."""
        return None

    def is_integrity_error(self, exc: Exception) -> bool:
        raise NotImplementedError

    def is_undefined_column(self, exc: Exception) -> bool:
        """Whether `exc` is the database saying a table lacks a column the statement names."""
        raise NotImplementedError

    def is_busy(self, exc: Exception) -> bool:
        """Whether `exc` is the database giving up on a lock (a timeout, a deadlock, a
        serialization conflict): the unit was rolled back and may simply run again."""
        raise NotImplementedError

    def close(self) -> None:
        """Close this process's connections (a forked child's parent keeps its own)."""
        pid = os.getpid()
        with self._lock:
            mine = [closer for owner, closer in self._connections if owner == pid]
            self._connections = [(owner, closer) for owner, closer in self._connections if owner != pid]
            self._generation += 1
        for closer in mine:
            closer()
        self._local.__dict__.pop("connection", None)

    close_connection: Callable[[int, Any], None] = staticmethod(_close)  # what `close()` closes each with

    def keep(self, pid: int, connection: Any) -> None:
        """Make `connection` this thread's. It is closed when the thread ends (its thread-local
        data goes with it): a server that starts a thread per request, or retires idle pool
        threads, must not leak a connection for each."""
        token = _Token()
        self._local.connection = (pid, connection, self._generation, token)
        closer = weakref.finalize(token, type(self).close_connection, pid, connection)
        with self._lock:
            self._connections = [(owner, c) for owner, c in self._connections if c.alive]
            self._connections.append((pid, closer))

    def commit(self, connection: Any) -> None:
        self.execute(connection, "COMMIT")
        thread = self._local.__dict__
        thread["marked"] = thread.pop("marking", None)

    def mark(self, connection: Any) -> object | None:
        """See `LedgerUnit.mark`: good once its unit commits, until this thread ends another."""
        version = self.version(connection)
        if version is None:
            return None
        self._local.marking = mark = (connection, version)
        return mark

    def unchanged_since(self, connection: Any, mark: object) -> bool:
        """See `LedgerUnit.unchanged_since`: the marking unit was the last this thread ended, and
        it committed; and no other connection has committed since (its version is unchanged)."""
        return (mark is self._local.__dict__.get("marked") and isinstance(mark, tuple)
                and mark[0] is connection and self.version(connection) == mark[1])

    def discard(self, connection: Any) -> None:
        """Forget a connection that failed mid-transaction; the next call opens a new one."""
        try:
            connection.close()
        finally:
            self._local.__dict__.pop("connection", None)

    def rollback(self, connection: Any) -> None:
        """End the open unit, undoing its writes."""
        self.execute(connection, "ROLLBACK")

    # -- units -----------------------------------------------------------------------------------
    def unit(self, *, durable: bool = True) -> AbstractContextManager[LedgerUnit]:
        return SQLUnit(self, durable)

    def _rollback(self, connection: Any) -> None:
        thread = self._local.__dict__
        thread.pop("marking", None)
        thread["marked"] = None
        try:
            self.rollback(connection)
        except Exception:  # noqa: BLE001 - a broken connection: drop it, keep the original error
            self.discard(connection)

    # -- migrations ------------------------------------------------------------------------------
    def migrate(self) -> int:
        connection = self.connection()
        try:  # SQLite takes the migrations' lock here: another worker upgrading the ledger holds it
            self.begin(connection, durable=True)
        except Exception as exc:
            if self.is_busy(exc):
                raise _busy(exc) from exc
            raise
        try:
            self.lock_migrations(connection)
            done: set[int] = set()
            if self.execute(connection, self.table_sql("paywire_schema")).fetchall():
                done = self._versions(connection)
            missing = [migration for migration in MIGRATIONS if migration.version not in done]
            if done and max(done) > MIGRATIONS[-1].version:  # written by a later release
                self._require_runs_on(connection, done, missing)
            if not done:  # no ledger yet
                self.refuse_foreign_tables(connection)
                self.create_namespace(connection)
                self.execute(
                    connection,
                    "CREATE TABLE IF NOT EXISTS paywire_schema (version INTEGER PRIMARY KEY, "
                    "description TEXT NOT NULL, applied_at BIGINT NOT NULL)",
                )
            for migration in missing:
                try:
                    for statement in statements(migration, self.dialect):
                        self.execute(connection, statement)
                    recorded = self.execute(
                        connection,
                        "INSERT INTO paywire_schema (version, description, applied_at) VALUES (?, ?, ?)",
                        (migration.version, migration.description, to_us(datetime.now(UTC))),
                    )
                    recorded.fetchall()  # sent now where statements are batched: an error names its migration
                    if migration.compatible_with is not None:
                        self.execute(connection, COMPATIBLE_TABLE)
                        self.execute(connection, "INSERT INTO paywire_schema_compatible (version, oldest) VALUES (?, ?)",
                                     (migration.version, migration.compatible_with)).fetchall()
                except Exception as exc:
                    if self.is_busy(exc) or self.unavailable(exc) is not None:
                        raise  # the database's state, not the migration's: told below
                    raise _failed(migration, max(done, default=0), exc) from None
            self.commit(connection)
        except BaseException as exc:
            self._rollback(connection)
            if isinstance(exc, Exception) and self.is_busy(exc):  # another worker migrating it, say
                raise _busy(exc) from exc
            reason = self.unavailable(exc) if isinstance(exc, Exception) else None
            if reason is not None:  # a connection lost, a server going down, a read-only file
                raise LedgerUnavailable(
                    f"the ledger's database failed while the ledger was opened ({reason}); any upgrade under way "
                    "was committed whole or not at all, and the next start finishes it: try again once the "
                    "database is back", code="ledger_unavailable") from exc
            raise
        return self.schema_version()

    def _versions(self, connection: Any) -> set[int]:
        """The schema versions `paywire_schema` records; a table of that name another program made
        (no version column, versions that are no numbers) is no ledger, refused before anything
        changes. Any other error (no right to read it, a damaged file, a lost connection) is the
        ledger's own, raised as it is: never told as another program's table, whose advice, a
        ledger elsewhere, would start an empty one beside the shop's."""
        try:
            return {int(r[0]) for r in self.execute(connection, "SELECT version FROM paywire_schema").fetchall()}
        except (ValueError, TypeError) as exc:  # int() of a version that is no number
            reason = str(exc)
        except Exception as exc:
            if not self.is_undefined_column(exc):
                raise
            reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise ConfigurationError(
            f"the database holds a table paywire_schema that paywire did not make ({reason}): it is not a paywire "
            "ledger, and nothing was changed; name another SQLite file or PostgreSQL schema for the ledger")

    def refuse_foreign_tables(self, connection: Any) -> None:
        """Refuse a place without `paywire_schema` that holds a table of the ledger's name: another
        program's, not a ledger to create (whose first migration would stop at it)."""
        for name in LEDGER_TABLES:
            if self.execute(connection, self.table_sql(name)).fetchall():
                raise ConfigurationError(
                    f"the database holds a table {name} but no paywire_schema: it is not a paywire ledger, and "
                    "nothing was changed; name another SQLite file or PostgreSQL schema for the ledger")

    def _require_runs_on(self, connection: Any, done: set[int], missing: list[Migration]) -> None:
        """Refuse a ledger a later release migrated, unless each migration this release does not
        know declared that releases of this one's schema may run on it (`Migration.compatible_with`,
        recorded in `paywire_schema_compatible`): a table only added, which this release neither
        reads nor needs kept in step with what it writes."""
        known = MIGRATIONS[-1].version
        declared: dict[int, int] = {}
        if self.execute(connection, self.table_sql("paywire_schema_compatible")).fetchall():
            rows = self.execute(connection, "SELECT version, oldest FROM paywire_schema_compatible").fetchall()
            declared = {int(version): int(oldest) for version, oldest in rows}
        barred = sorted(version for version in done if declared.get(version, version) > known)
        if barred or missing:
            why = (f"its migration {barred[0]} may not run with this release" if barred else
                   f"it lacks migration {missing[0].version}, which this release needs")
            raise ConfigurationError(
                f"the ledger's schema is version {max(done)}, newer than this paywire release understands "
                f"(version {known}), and {why}; upgrade paywire to use this ledger")

    def schema_version(self) -> int:
        row = self._read_one("SELECT MAX(version) FROM paywire_schema", ())
        return int(row[0]) if row and row[0] is not None else 0

    def check_writes(self) -> None:
        # A write that changes no row, rolled back: PostgreSQL refuses it in a read-only
        # transaction, SQLite on a read-only file, as they would an operation's.
        # A lock it waited out (a migration holding the table) is the ledger busy, as for a unit.
        connection = self.connection()
        self.begin(connection, durable=False)
        try:
            self.execute(connection, "UPDATE paywire_schema SET version = version WHERE version < 0").fetchall()
        except Exception as exc:
            if self.is_busy(exc):
                raise _busy(exc) from exc
            raise
        finally:
            self._rollback(connection)

    # -- reads -----------------------------------------------------------------------------------
    def _read(self, sql: str, params: Sequence[Any]) -> list[Row]:
        try:
            rows: list[Row] = self.execute(self.connection(), sql, params).fetchall()
        except Exception as exc:
            # A read waits for locks too (a worker migrating holds the tables): given up on, it is
            # the ledger busy, as for a unit, not the driver's error (a caller retries LedgerBusy).
            if self.is_busy(exc):
                raise _busy(exc) from exc
            raise
        return rows

    def _read_one(self, sql: str, params: Sequence[Any]) -> Row | None:
        rows = self._read(sql, params)
        return rows[0] if rows else None

    def get_payment(self, payment_id: str) -> Payment | None:
        row = self._read_one(SELECT_PAYMENT, (payment_id,))
        return payment_from_row(row) if row else None

    def list_payments(self, *, method: str | None = None, state: str | None = None, order_id: str | None = None,
                      limit: int = 100, offset: int = 0) -> list[Payment]:
        clauses, params = _filters(("method", method), ("state", state), ("order_id", order_id))
        rows = self._read(
            f"SELECT {PAYMENT_COLUMNS} FROM paywire_payments{_where(clauses)} ORDER BY created_at DESC, id DESC "
            "LIMIT ? OFFSET ?",
            (*params, int(limit), int(offset)),
        )
        return [payment_from_row(r) for r in rows]

    def get_transaction(self, transaction_id: str) -> Transaction | None:
        row = self._read_one(f"SELECT {TRANSACTION_COLUMNS} FROM paywire_transactions WHERE id = ?", (transaction_id,))
        return transaction_from_row(row) if row else None

    def list_transactions(self, *, payment_id: str | None = None, statuses: Sequence[str] = (),
                          updated_before: datetime | None = None, limit: int = 1000) -> list[Transaction]:
        clauses, params = _filters(("payment_id", payment_id))
        if statuses:
            if TransactionStatus.OPEN.issuperset(statuses):
                # The open-transactions index is partial; the planners use it only where the query
                # repeats its condition as written (a bound parameter proves nothing).
                clauses.append(f"status IN {_OPEN_SQL}")
            clauses.append(f"status IN ({_params(len(statuses))})")
            params.extend(statuses)
        if updated_before is not None:
            clauses.append("updated_at < ?")
            params.append(to_us(updated_before))
        rows = self._read(
            f"SELECT {TRANSACTION_COLUMNS} FROM paywire_transactions{_where(clauses)} ORDER BY created_at, id LIMIT ?",
            (*params, int(limit)),
        )
        return [transaction_from_row(r) for r in rows]

    def list_by_look(self, *, statuses: Sequence[str], payment_id: str | None = None,
                     limit: int = 1000) -> list[Transaction]:
        clauses, params = _filters(("t.payment_id", payment_id))
        if TransactionStatus.OPEN.issuperset(statuses):
            clauses.append(f"t.status IN {_OPEN_SQL}")  # the open-transactions index, as list_transactions
        clauses.append(f"t.status IN ({_params(len(statuses))})")
        params.extend(statuses)
        rows = self._read(
            f"SELECT {_TRANSACTION_COLUMNS_T} FROM paywire_transactions t "
            f"LEFT JOIN paywire_reconcile_looks l ON l.transaction_id = t.id{_where(clauses)} "
            # never looked at (no look) first, written so both databases sort it alike
            "ORDER BY CASE WHEN l.next_at IS NULL THEN 0 ELSE 1 END, l.next_at, t.created_at, t.id LIMIT ?",
            (*params, int(limit)),
        )
        return [transaction_from_row(r) for r in rows]

    def looks(self, transaction_ids: Sequence[str]) -> dict[str, Look]:
        return _looks(self._read, transaction_ids)

    def owed_reads(self, *, payment_id: str | None = None, due_by: datetime | None = None,
                   limit: int = 1000) -> dict[str, Look]:
        clauses, params = _filters(("payment_id", payment_id))
        if due_by is not None:
            clauses.append("next_at <= ?")
            params.append(to_us(due_by))
        rows = self._read(f"SELECT payment_id, looks, next_at FROM paywire_owed_reads{_where(clauses)} "
                          "ORDER BY next_at, payment_id LIMIT ?", (*params, int(limit)))
        return {str(r[0]): Look(int(r[1]), _at(int(r[2]))) for r in rows}

    def get_event(self, provider: str, event_id: str) -> StoredEvent | None:
        row = self._read_one(
            f"SELECT {EVENT_COLUMNS} FROM paywire_events WHERE provider = ? AND event_id = ?", (provider, event_id)
        )
        return event_from_row(row) if row else None

    def list_events(self, *, statuses: Sequence[str] = (), payment_id: str | None = None,
                    limit: int = 1000) -> list[StoredEvent]:
        clauses, params = _filters(("payment_id", payment_id))
        if statuses:
            clauses.append(f"status IN ({_params(len(statuses))})")
            params.extend(statuses)
        rows = self._read(
            f"SELECT {EVENT_COLUMNS} FROM paywire_events{_where(clauses)} ORDER BY received_at, event_id LIMIT ?",
            (*params, int(limit)),
        )
        return [event_from_row(r) for r in rows]

    def matchable_events(self, *, limit: int = 1000, methods: Sequence[str] = ()) -> list[StoredEvent]:
        # Only what can match: the unmatched events of payments this ledger never held (a provider
        # account shared with other systems) stay unmatched for good, and must not fill `limit`.
        methods = list(dict.fromkeys(methods))
        if methods:
            marks = _params(len(methods))
            same = f"r.method IN ({marks}) AND p.method IN ({marks})"
        else:
            same = "p.method = r.method"
        rows = self._read(
            f"SELECT {_EVENT_COLUMNS_E} FROM paywire_events e WHERE e.status = 'unmatched' AND EXISTS ("
            f"SELECT 1 FROM paywire_event_references r JOIN paywire_references p ON {same} "
            "AND p.reference = r.reference WHERE r.provider = e.provider AND r.event_id = e.event_id) "
            "ORDER BY e.received_at, e.event_id LIMIT ?",
            (*methods, *methods, int(limit)),
        )
        return [event_from_row(r) for r in rows]


def _failed(migration: Migration, version: int, exc: Exception) -> ConfigurationError:
    """A migration the database refused: all missing ones run in one transaction, rolled back, so
    the ledger stays as its release wrote it. Only the reason's first line is told, and the driver's
    error is not chained: its detail may quote a row."""
    reason = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    at = f"schema version {version}" if version else "no schema (nothing was created)"
    return ConfigurationError(
        f"upgrading the ledger failed in migration {migration.version} ({migration.description}): {reason}; "
        f"the upgrade was rolled back whole, and the ledger is left at {at}, as it was; "
        "fix what the database reports, or keep running the release that wrote it"
    )


_UPSERT_LOOK = ("INSERT INTO paywire_reconcile_looks (transaction_id, looks, next_at) VALUES (?, ?, ?) "
                "ON CONFLICT (transaction_id) DO UPDATE SET looks = excluded.looks, next_at = excluded.next_at")


_UPSERT_OWED_READ = ("INSERT INTO paywire_owed_reads (payment_id, looks, next_at) VALUES (?, ?, ?) "
                     "ON CONFLICT (payment_id) DO UPDATE SET looks = excluded.looks, next_at = excluded.next_at")


def _looks(read: Callable[[str, Sequence[Any]], list[Row]], transaction_ids: Sequence[str]) -> dict[str, Look]:
    found: dict[str, Look] = {}
    ids = list(dict.fromkeys(transaction_ids))
    for start in range(0, len(ids), 500):
        chunk = ids[start:start + 500]
        rows = read(f"SELECT transaction_id, looks, next_at FROM paywire_reconcile_looks "
                    f"WHERE transaction_id IN ({_params(len(chunk))})", chunk)
        found.update({str(r[0]): Look(int(r[1]), _at(int(r[2]))) for r in rows})
    return found


def _filters(*pairs: tuple[str, object]) -> tuple[list[str], list[Any]]:
    clauses = [f"{name} = ?" for name, value in pairs if value is not None]
    params = [value for _, value in pairs if value is not None]
    return clauses, params


def _where(clauses: list[str]) -> str:
    return f" WHERE {' AND '.join(clauses)}" if clauses else ""
