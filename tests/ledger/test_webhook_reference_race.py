"""An event delivered while the unit recording its payment's reference is still open.

That unit (an operation's outcome) indexes the reference, then looks for the events waiting for
it, then commits. The event's own unit finds its payment by the reference, or stores the event
unmatched. Interleaved on PostgreSQL (READ COMMITTED), each missed the other: the event's unit
looked before the reference was committed, the outcome unit before the event was. Each must see
the other, whichever looks first: the event is applied without a redelivery, `match_unmatched` or
`reconcile()`. On SQLite every unit is a write transaction of its own, one at a time.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from paywire import EventKind, LedgerBusy
from paywire.ledger import EventStatus
from paywire.ledger._sql import SQLUnit
from paywire.ledger.postgres import PostgresLedger
from paywire.service import PaymentService, WebhookReceipt
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import FakePayApp
from tests.ledger.support import eur, in_thread, wait_until


class _Threads:
    """The two threads: the operation's (`outcome`) and the delivery's; and when each begins a unit."""

    def __init__(self, service: PaymentService, monkeypatch: pytest.MonkeyPatch) -> None:
        self.service = service
        self.mine = threading.local()
        self.outcome_began = threading.Event()
        self.delivery_began = threading.Event()
        backend: Any = type(service.ledger)  # an SQLLedger
        begin: Callable[..., Any] = backend.begin

        def begin_noting(ledger: Any, connection: Any, **kwargs: Any) -> None:
            role = getattr(self.mine, "role", None)
            if role is not None:
                (self.outcome_began if role == "outcome" else self.delivery_began).set()
            begin(ledger, connection, **kwargs)

        monkeypatch.setattr(backend, "begin", begin_noting)

    def role(self) -> str | None:
        return getattr(self.mine, "role", None)

    def authorize(self) -> tuple[threading.Thread, list[Any]]:
        def run() -> Any:
            self.mine.role = "outcome"
            return self.service.authorize("fakepay", eur("100.00"), source="tok_ok")

        return in_thread(run)

    def deliver(self, headers: dict[str, str], body: bytes, pids: list[int]) -> tuple[threading.Thread, list[Any]]:
        def run() -> WebhookReceipt:
            self.mine.role = "delivery"
            ledger = self.service.ledger
            if isinstance(ledger, PostgresLedger):  # the server process its units run in
                pids.append(ledger.connection().info.backend_pid)
            return self.service.receive_webhook("fakepay", headers, body)

        return in_thread(run)


@pytest.fixture
def threads(service: PaymentService, monkeypatch: pytest.MonkeyPatch) -> _Threads:
    return _Threads(service, monkeypatch)


@pytest.fixture
def lock_waits(request: pytest.FixtureRequest, backend: str) -> Iterator[Callable[[int], bool]]:
    """Whether a PostgreSQL backend waits for a lock another transaction holds."""
    if backend != "postgres":
        yield lambda pid: False
        return
    import psycopg

    with psycopg.connect(request.getfixturevalue("postgres_dsn"), autocommit=True) as conn:
        yield lambda pid: conn.execute("SELECT 1 FROM pg_locks WHERE pid = %s AND NOT granted",
                                       (pid,)).fetchone() is not None


def _event(app: FakePayApp, reference: str) -> tuple[dict[str, str], bytes]:
    """A capture made in the provider's dashboard, naming the payment: 20.00 captured once applied."""
    return app.event("evt_raced", EventKind.CAPTURED, "cap_beside", amount=2_000, references={"payment": reference})


def _assert_applied(service: PaymentService, payment: Any, receipt: list[Any], status: str = EventStatus.APPLIED) -> None:
    """The event applied to the payment; the delivery's receipt saying `status`."""
    assert not isinstance(payment, Exception), payment
    assert receipt and not isinstance(receipt[0], Exception), receipt
    stored = service.ledger.get_event("fakepay", "evt_raced")
    assert stored is not None and (stored.status, stored.payment_id) == (EventStatus.APPLIED, payment.id), stored
    assert service.get_payment(payment.id).captured == eur("20.00")
    assert (receipt[0].status, receipt[0].payment_id) == (status, payment.id if status == EventStatus.APPLIED else None)


def test_an_event_delivered_after_the_outcome_unit_looked_for_waiting_events_is_applied(
        service: PaymentService, app: FakePayApp, backend: str, threads: _Threads,
        lock_waits: Callable[[int], bool], monkeypatch: pytest.MonkeyPatch) -> None:
    """The outcome unit indexed the reference and looked for waiting events (none yet), and is
    held open there while the event is delivered."""
    held, release = threading.Event(), threading.Event()
    seen: list[str] = []
    waiting_events = SQLUnit.waiting_events

    def hold_after_look(unit: SQLUnit, **kwargs: Any) -> Any:
        found = waiting_events(unit, **kwargs)
        refs = [ref for ref in kwargs.get("references", ()) if ref]
        if threads.role() == "outcome" and refs and not held.is_set():
            seen.extend(refs)
            held.set()
            assert release.wait(60), "the outcome unit was never released"
        return found

    monkeypatch.setattr(SQLUnit, "waiting_events", hold_after_look)
    thread, out = threads.authorize()
    try:
        assert held.wait(60), out
        reference = next(ref for ref in seen if ref in app.payments)
        pids: list[int] = []
        webhook, receipt = threads.deliver(*_event(app, reference), pids)
        if backend == "sqlite":  # the delivery's unit waits for the write lock the outcome unit holds
            wait_until(lambda: threads.delivery_began.is_set() or receipt, "the delivery's unit began")
        else:  # the delivery did what it can while the outcome unit is open: finished, or waits for it
            wait_until(lambda: receipt or (pids and lock_waits(pids[0])),
                       "the delivery finished or waits for the outcome unit")
    finally:
        release.set()
        thread.join(60)
    webhook.join(60)
    assert not thread.is_alive() and not webhook.is_alive()
    _assert_applied(service, out[0], receipt)


def test_an_event_stored_before_the_outcome_unit_looked_for_waiting_events_is_applied(
        service: PaymentService, app: FakePayApp, backend: str, threads: _Threads,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The event's unit looked for the payment (not indexed yet) and is held open there while the
    operation's answer is recorded."""
    held, release = threading.Event(), threading.Event()
    by_reference = SQLUnit.payment_by_reference

    def hold_after_lookup(unit: SQLUnit, method: str, references: Any) -> str | None:
        owner = by_reference(unit, method, references)
        if threads.role() == "delivery" and owner is None and not held.is_set():
            held.set()
            assert release.wait(60), "the delivery's unit was never released"
        return owner

    monkeypatch.setattr(SQLUnit, "payment_by_reference", hold_after_lookup)
    app.inject(Fault("hold", path="/v1/payments$", method="POST"))  # made at the provider, not answered yet
    thread, out = threads.authorize()
    try:
        assert app.wait_until_held(1), out
        (reference,) = app.payments
        webhook, receipt = threads.deliver(*_event(app, reference), [])
        assert held.wait(60), receipt
        assert app.release_held()
        if backend == "sqlite":  # the outcome unit waits for the write lock the delivery's unit holds
            wait_until(lambda: threads.outcome_began.is_set() or not thread.is_alive(), "the outcome unit began")
        else:
            thread.join(60)
    finally:
        release.set()
        app.release_held()
        thread.join(60)
    webhook.join(60)
    assert not thread.is_alive() and not webhook.is_alive()
    # On SQLite the delivery found no payment, and the outcome unit, after it, applied the event.
    _assert_applied(service, out[0], receipt, EventStatus.UNMATCHED if backend == "sqlite" else EventStatus.APPLIED)


def test_an_event_stored_unmatched_whose_second_look_fails_is_answered_unmatched(
        service: PaymentService, app: FakePayApp, monkeypatch: pytest.MonkeyPatch,
        caplog: pytest.LogCaptureFixture) -> None:
    """Stored, it is not a delivery to send again: the look for its payment failing after (the
    ledger busy) leaves it to match_unmatched."""
    def busy(ledger: Any, references: Any) -> bool:
        raise LedgerBusy("the ledger is busy (lock timeout); nothing was written: try again", code="ledger_busy")

    monkeypatch.setattr(type(service.ledger), "wait_out_references", busy)
    headers, body = app.event("evt_early", EventKind.CAPTURED, "cap_early", amount=2_000,
                              references={"payment": "fp_not_yet"})
    receipt = service.receive_webhook("fakepay", headers, body)
    assert (receipt.status, receipt.payment_id) == (EventStatus.UNMATCHED, None)
    assert "evt_early: stored unmatched; looking for its payment again failed (LedgerBusy" in caplog.text
    stored = service.ledger.get_event("fakepay", "evt_early")
    assert stored is not None and stored.status == EventStatus.UNMATCHED
