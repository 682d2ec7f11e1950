"""The one storage interface every ledger backend implements.

Reads run on their own. Every write runs inside a `unit()`: one database transaction that holds
the locks it took until it commits, so a check ("is there enough left to capture?") and the
write that depends on it ("record the pending capture") cannot be interleaved with another
worker's, whether that worker is a thread, a process or another host sharing the database.
"""

from __future__ import annotations

import abc
import functools
from collections.abc import Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from paywire.ledger.model import Look, Payment, StoredEvent, Transaction

__all__ = ["Ledger", "LedgerIntegrityError", "LedgerUnit"]


@functools.lru_cache(maxsize=256)
def _span(seconds: float) -> timedelta:
    """`deadline`'s span of `seconds`, remembered: the same few (a command's longest life, a
    lease) come in every operation, and making a timedelta from a float costs more than the look-up."""
    return timedelta(seconds=seconds)


class LedgerIntegrityError(RuntimeError):
    """The ledger refused a write that would rewrite history or break a stored invariant."""


class LedgerUnit(abc.ABC):
    """Reads and writes inside one locked database transaction (see `Ledger.unit`).

    Lock in a fixed order to avoid deadlocks between workers: idempotency keys first, then
    the payment.
    """

    @abc.abstractmethod
    def now(self) -> datetime:
        """The ledger's clock now (`Ledger.now`): what the unit records times by."""

    @abc.abstractmethod
    def lock_key(self, method: str, key: str) -> None:
        """Hold the idempotency key (method, key) until commit. The payment service passes one
        name for all the methods of a provider account (their keys are one key space)."""

    @abc.abstractmethod
    def payment(self, payment_id: str, *, lock: bool = False) -> Payment | None:
        """A payment; `lock` holds it until commit."""

    def claim_payment(self, payment_id: str) -> Payment | None:
        """Lock a payment unless another worker holds it: None when it is held (or absent).

        For work that any one of several workers may do (reconciliation), so they spread over
        the payments instead of queueing on one. A backend whose unit already excludes every
        other writer needs no row lock and just reads it.
        """
        return self.payment(payment_id, lock=True)

    def mark(self) -> object | None:
        """A mark of the ledger as this unit leaves it, for a later unit's `unchanged_since`;
        None where the backend cannot tell."""
        return None

    def unchanged_since(self, mark: object | None) -> bool:
        """Whether nothing was committed to the ledger since the unit that made `mark`, so what
        that unit read and wrote is still what is stored. False whenever the backend cannot be
        sure: the caller then reads afresh."""
        return False

    @abc.abstractmethod
    def insert_payment(self, payment: Payment) -> None: ...

    @abc.abstractmethod
    def update_payment(self, payment: Payment) -> None:
        """Store what can change about a payment (state, totals, flags, references, action,
        customer, token, `updated_at`); what it is (method, flow, amount, order, creation time)
        is fixed when it is inserted."""

    @abc.abstractmethod
    def transactions(self, payment_id: str) -> list[Transaction]:
        """The payment's transactions, oldest first."""

    def payment_and_transactions(self, payment_id: str, *,
                                 lock: bool = False) -> tuple[Payment | None, list[Transaction]]:
        """`payment(payment_id, lock=lock)` and its `transactions`, in one query where the backend can."""
        payment = self.payment(payment_id, lock=lock)
        return payment, self.transactions(payment_id) if payment is not None else []

    @abc.abstractmethod
    def transaction_by_key(self, method: str, key: str, *, siblings: Sequence[str] = ()) -> Transaction | None:
        """The latest attempt recorded under an idempotency key on `method`, else on one of
        `siblings` (the other methods of its provider account, which see one key space)."""

    @abc.abstractmethod
    def transaction(self, transaction_id: str) -> Transaction | None: ...

    @abc.abstractmethod
    def insert_transaction(self, transaction: Transaction) -> None:
        """Append a transaction; a duplicate (method, key, attempt) is a `LedgerIntegrityError`."""

    @abc.abstractmethod
    def update_transaction(self, transaction: Transaction) -> None:
        """Store the new status/outcome of an open (pending, unknown, accepted) transaction.

        A finished transaction, or a change of what it was (kind, amount, key), is refused with
        `LedgerIntegrityError`.
        """

    @abc.abstractmethod
    def finish_transaction(self, transaction: Transaction, *, claimed_at: datetime) -> bool:
        """Store the outcome of a transaction that is still pending as it was at `claimed_at`
        (its `updated_at` when sent); False, and nothing written, if another worker settled it
        or sent it again meanwhile."""

    def finish_locked(self, payment_id: str | None, transaction: Transaction, *,
                      claimed_at: datetime) -> tuple[Payment | None, list[Transaction], bool]:
        """Lock the payment (when there is one), read its transactions as they stand, then
        `finish_transaction`: in that order, and in one round trip where statements are batched.
        Returns the payment, its transactions (before the write) and whether it was written."""
        payment, txns = self.payment_and_transactions(payment_id, lock=True) if payment_id else (None, [])
        return payment, txns, self.finish_transaction(transaction, claimed_at=claimed_at)

    @abc.abstractmethod
    def overrule(self, transaction: Transaction, *, status: str) -> bool:
        """Store the request's own late answer over the row's `status`, if the row still has it:
        an unknown row, or one reconciliation concluded failed (`settled_by` "reconcile"), the
        one finished row the database lets an answer overturn. False, nothing written, otherwise."""

    @abc.abstractmethod
    def learn_reference(self, transaction_id: str, reference: str) -> None:
        """Give a finished transaction that has no provider reference its reference (nothing
        else changes); a transaction that has one keeps it."""

    @abc.abstractmethod
    def add_references(self, method: str, payment_id: str, references: Sequence[str]) -> None:
        """Index provider ids under the payment, so webhooks can find it; known ids are kept.
        Until the unit ends, `Ledger.wait_out_references` naming one of them waits for it; one
        that got past before this, the unit's later `waiting_events` see its event."""

    @abc.abstractmethod
    def payment_by_reference(self, method: str, references: Sequence[str]) -> str | None:
        """The payment one of these provider ids belongs to, if any."""

    @abc.abstractmethod
    def insert_event(self, event: StoredEvent) -> bool:
        """Store an event; False (and nothing written) if (provider, event id) is already stored."""

    @abc.abstractmethod
    def update_event(self, event: StoredEvent) -> None: ...

    @abc.abstractmethod
    def event(self, provider: str, event_id: str) -> StoredEvent | None: ...

    @abc.abstractmethod
    def waiting_events(self, *, methods: Sequence[str], payment_id: str | None = None,
                       references: Sequence[str] = ()) -> list[StoredEvent]:
        """Deferred events of `payment_id`, and unmatched events received through any of
        `methods` naming any of `references`: each once, in the order received."""

    @abc.abstractmethod
    def looks(self, transaction_ids: Sequence[str]) -> dict[str, Look]:
        """Reconciliation's looks at these transactions, by id (those never looked at are absent)."""

    @abc.abstractmethod
    def set_looks(self, looks: Mapping[str, Look | None]) -> None:
        """Record looks by transaction id; None forgets one (its transaction settled)."""

    @abc.abstractmethod
    def owed_read(self, payment_id: str) -> Look | None:
        """The payment's owed read (see `set_owed_read`), or None when it owes none."""

    @abc.abstractmethod
    def set_owed_read(self, payment_id: str, look: Look | None) -> None:
        """Mark the payment as owing a read from the provider (an answer or an event said the
        ledger is behind it), with its looks and when reconciliation reads it next; None clears
        the mark (a read settled the payment). Written under the payment's lock."""


class Ledger(abc.ABC):
    """A transaction ledger: payments, their append-only transaction history, webhook events."""

    @abc.abstractmethod
    def unit(self, *, durable: bool = True) -> AbstractContextManager[LedgerUnit]:
        """One atomic, locked unit of work; commits on success, rolls back on an exception.

        `durable=False` lets the commit return before it is flushed to disk: it survives a
        process crash but may be lost, whole, on an operating-system crash or power loss. Use it
        only for writes that reconciliation recovers (an outcome lost this way leaves its
        transaction pending, which is then settled from the provider).
        """

    @abc.abstractmethod
    def schema_version(self) -> int:
        """The highest migration applied."""

    @abc.abstractmethod
    def migrate(self) -> int:
        """Apply missing migrations (idempotent, safe to run concurrently); the version after."""

    # -- reads ---------------------------------------------------------------------------------
    @abc.abstractmethod
    def get_payment(self, payment_id: str) -> Payment | None: ...

    @abc.abstractmethod
    def list_payments(self, *, method: str | None = None, state: str | None = None,
                      order_id: str | None = None, limit: int = 100, offset: int = 0) -> list[Payment]:
        """Payments, newest first."""

    @abc.abstractmethod
    def get_transaction(self, transaction_id: str) -> Transaction | None: ...

    @abc.abstractmethod
    def list_transactions(self, *, payment_id: str | None = None, statuses: Sequence[str] = (),
                          updated_before: datetime | None = None, limit: int = 1000) -> list[Transaction]:
        """Transactions, oldest first, optionally filtered."""

    @abc.abstractmethod
    def list_by_look(self, *, statuses: Sequence[str], payment_id: str | None = None,
                     limit: int = 1000) -> list[Transaction]:
        """Transactions of `statuses`: those reconciliation never looked at first, then by their
        next look (`looks`), then oldest first. A run that reads the first `limit` of them and
        records its looks reaches the others on its next run, however long the first stay open."""

    @abc.abstractmethod
    def get_event(self, provider: str, event_id: str) -> StoredEvent | None: ...

    @abc.abstractmethod
    def looks(self, transaction_ids: Sequence[str]) -> dict[str, Look]:
        """Reconciliation's looks at these transactions, by id (`LedgerUnit.looks`, outside a unit)."""

    @abc.abstractmethod
    def owed_reads(self, *, payment_id: str | None = None, due_by: datetime | None = None,
                   limit: int = 1000) -> dict[str, Look]:
        """Payments that owe a read from the provider (`LedgerUnit.set_owed_read`), by id, the
        earliest next look first, `limit` at most; with `payment_id`, that one only; with
        `due_by`, only those due by then. Read through an index of the marks alone: a ledger
        with none costs nothing to ask."""

    @abc.abstractmethod
    def list_events(self, *, statuses: Sequence[str] = (), payment_id: str | None = None,
                    limit: int = 1000) -> list[StoredEvent]:
        """Stored webhook events, oldest first."""

    def matchable_events(self, *, limit: int = 1000, methods: Sequence[str] = ()) -> list[StoredEvent]:
        """Unmatched events naming an id now indexed under a payment (`add_references`) of the
        method the event came through, oldest first. With `methods` (the methods of one provider
        account, whose webhooks may reach any of their endpoints): the events that came through
        any of them naming an id indexed under any of them. A backend that cannot tell returns
        every unmatched event."""
        return self.list_events(statuses=["unmatched"], limit=limit)

    def iter_payments(self, *, page: int = 500) -> Iterator[Payment]:
        """Every payment, newest first, a page at a time."""
        offset = 0
        while True:
            batch = self.list_payments(limit=page, offset=offset)
            yield from batch
            if len(batch) < page:
                return
            offset += page

    def unavailable(self, exc: BaseException) -> str | None:
        """Why `exc`, raised by this ledger, says its database is out of reach or refuses writes (a
        connection refused, lost or timed out; the server shutting down or out of resources; a
        read-only standby; a file full or read-only): one short line without a secret.
        None for any other error, a fault to look into. What was out of reach may be tried again
        later: a unit whose connection was lost is rolled back, unless the database committed it
        as the connection went."""
        return None

    def now(self) -> datetime:
        """The ledger's clock now, never ahead of it: every time the service records, and every
        "has this time passed?" it asks (a request's `settle_after`, a lease, a next look, a key's
        life), goes by it, so hosts sharing the ledger agree whatever their own clocks say.
        Here the database is this host's: its clock is this host's (`model.now`, spelt out: asked
        several times in every operation)."""
        return datetime.now(UTC)

    def deadline(self, seconds: float) -> datetime:
        """A time the ledger's clock reaches `seconds` from now or later, never sooner: what the
        service tells other workers to wait until (a request's `settle_after`, a read's lease)."""
        return datetime.now(UTC) + _span(seconds)

    def database_time(self) -> datetime | None:
        """The database server's clock now, where it is another host's (None: it is this host's,
        or a backend that cannot tell). The service keeps time by the ledger's clock (`now`);
        the Janitor compares its host's own clock to this one to report how far they drift apart."""
        return None

    def check_writes(self) -> None:
        """Raise the database's own error unless it takes writes now: a standby a failover left
        the address on, a database, role or file set read-only, as well as one out of reach;
        `LedgerBusy` when it gave up waiting for a lock another session holds.
        A database that answers reads may still refuse every payment; `/healthz` asks this. A
        backend that cannot tell raises nothing."""
        return None

    def wait_out_references(self, references: Sequence[str]) -> bool:
        """Wait until every unit indexing one of these provider ids (`LedgerUnit.add_references`)
        when this was called has ended. Called once an event naming them was stored unmatched: a
        unit still open then did not show its ids to the event's unit, nor perhaps see the event
        when it looked for waiting ones; after this, its ids are committed, or it began its look
        after the event was. True when the caller must look for the event's payment again; False
        where a unit storing an event already excludes every unit indexing ids (SQLite's one
        writer at a time)."""
        return False

    @abc.abstractmethod
    def close(self) -> None:
        """Close this process's connections."""

    def __enter__(self) -> Ledger:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
