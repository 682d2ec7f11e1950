"""A ledger unit that cannot get its locks in time: another worker holds the payment longer than
the database lets this one wait (PostgreSQL's `lock_timeout`, SQLite's busy timeout).

Before the request is sent, that is a typed, retryable error and nothing is recorded or sent;
after it was sent, an unknown outcome naming the transaction, which stays open (never failed)
and is settled once the lock is free. No timing is guessed: the other worker holds its lock
until the call has returned, so the wait always runs out.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import quote

import pytest

from paywire import LedgerBusy, OutcomeUnknown, hookimpl
from paywire.ledger import Ledger, PostgresLedger, SQLiteLedger, TransactionStatus
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from paywire.web import handle_webhook, webhook_wsgi
from tests.ledger.conftest import BACKENDS
from tests.ledger.fakepay import FakePayApp, make_gateway
from tests.ledger.support import FAST, PATIENT, eur, in_thread, unrecorded_capture_settles_later

S = TransactionStatus
WAIT_MS = 50  # how long the impatient ledger waits for a lock; the holder always holds it longer

Holder = Callable[[str], AbstractContextManager[None]]


@pytest.fixture(params=BACKENDS)
def impatient(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[Ledger, Holder]]:
    """A ledger that waits `WAIT_MS` for a lock, and a way for another session to hold a payment."""
    if request.param == "sqlite":
        path = tmp_path / "ledger.db"
        ledger: Ledger = SQLiteLedger(path, timeout=WAIT_MS / 1000)

        @contextmanager
        def hold_sqlite(payment_id: str) -> Iterator[None]:
            holder = sqlite3.connect(path, isolation_level=None)
            holder.execute("BEGIN IMMEDIATE")  # SQLite's one write lock: the payment with everything
            try:
                yield
            finally:
                holder.execute("ROLLBACK")
                holder.close()

        yield ledger, hold_sqlite
        ledger.close()
        return
    import psycopg

    dsn = request.getfixturevalue("postgres_dsn")
    schema = f"pwtest_{os.getpid()}_{secrets.token_hex(4)}"
    ledger = PostgresLedger(f"{dsn}?options={quote(f'-c lock_timeout={WAIT_MS}')}", schema=schema)

    @contextmanager
    def hold_postgres(payment_id: str) -> Iterator[None]:
        with psycopg.connect(dsn) as holder:
            holder.execute(f'SET search_path TO "{schema}"')
            holder.execute("SELECT id FROM paywire_payments WHERE id = %s FOR UPDATE", (payment_id,))
            yield
            holder.rollback()

    yield ledger, hold_postgres
    ledger.close()


@pytest.fixture
def contended(fakepay: tuple[FakePayApp, str],
              impatient: tuple[Ledger, Holder]) -> Iterator[tuple[PaymentService, FakePayApp, Holder]]:
    app, url = fakepay
    gateway = make_gateway(url, **PATIENT)  # what is sent is answered, however loaded the machine
    ledger, hold = impatient
    yield PaymentService(gateway, ledger, margin=0), app, hold
    gateway.close()


class AnswerHeld:
    """Holds the first answer to a command once it is back, before it is recorded, until
    released: no read timeout runs meanwhile (the answer is in hand), however long the test takes."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.back = threading.Event()
        self.release = threading.Event()

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Iterator[None]:
        response = yield
        if command == self.command and not self.back.is_set():
            self.back.set()
            self.release.wait(60)
        return response


def test_an_operation_that_cannot_lock_its_payment_is_a_retryable_error_and_nothing_is_sent(
        contended: tuple[PaymentService, FakePayApp, Holder]) -> None:
    service, app, hold = contended
    payment = service.authorize("fakepay", eur("50.00"), source="tok_ok")
    with hold(payment.id), pytest.raises(LedgerBusy) as busy:
        service.capture(payment.id, eur("20.00"), idempotency_key="capture-1")
    assert busy.value.retryable and not busy.value.may_have_been_sent
    assert [t.kind for t in service.list_transactions(payment.id)] == ["authorize"]  # nothing recorded...
    assert app.count("capture") == 0  # ...nor sent
    assert service.capture(payment.id, eur("20.00"), idempotency_key="capture-1").captured == eur("20.00")


def test_an_outcome_that_cannot_be_recorded_is_unknown_and_settled_later_never_failed(
        contended: tuple[PaymentService, FakePayApp, Holder], fakepay: tuple[FakePayApp, str]) -> None:
    service, app, hold = contended
    payment = service.authorize("fakepay", eur("50.00"), source="tok_ok")
    held = AnswerHeld("capture")
    out: list[Any] = []
    # The capture's life is FAST's, for reconciliation to wait out; its answer is held in hand
    # (not at the provider, where FAST's read timeout would race the test taking the lock).
    with make_gateway(fakepay[1], extra=[held], **FAST) as gateway:
        fast = PaymentService(gateway, service.ledger, margin=0)

        def capture() -> None:
            try:
                out.append(fast.capture(payment.id, eur("20.00"), idempotency_key="capture-1"))
            except Exception as exc:
                out.append(exc)

        thread = threading.Thread(target=capture)
        thread.start()
        try:
            assert held.back.wait(30)  # applied at the provider, its pending record committed
            with hold(payment.id):
                held.release.set()
                thread.join(30)
        finally:
            held.release.set()
    (error,) = out
    assert isinstance(error.__cause__, LedgerBusy), error.__cause__
    unrecorded_capture_settles_later(service, app, payment.id, error)


def test_a_webhook_that_cannot_lock_its_payment_is_a_retryable_error_and_nothing_is_stored(
        contended: tuple[PaymentService, FakePayApp, Holder]) -> None:
    service, app, hold = contended
    payment = service.authorize("fakepay", eur("50.00"), source="tok_ok")
    headers, body = app.event("evt_busy", "captured", "cap_outside", amount=1_000,
                              references={"payment": payment.reference or ""})
    with hold(payment.id), pytest.raises(LedgerBusy):
        service.receive_webhook("fakepay", headers, body)
    environ = {"REQUEST_METHOD": "POST", "PATH_INFO": "/webhooks/fakepay", "CONTENT_LENGTH": str(len(body)),
               "wsgi.input": io.BytesIO(body), **{f"HTTP_{k.upper().replace('-', '_')}": v for k, v in headers.items()}}
    started: list[str] = []
    with hold(payment.id):  # the endpoint: "try again later", not an internal error
        answer = b"".join(webhook_wsgi(service)(environ, lambda status, _: started.append(status)))
    assert (started, json.loads(answer)) == (["503 Service Unavailable"], {"error": "ledger_busy"})
    assert service.ledger.get_event("fakepay", "evt_busy") is None  # the provider delivers it again
    assert service.receive_webhook("fakepay", headers, body).status == "applied"
    assert service.get_payment(payment.id).captured == eur("10.00")


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_deadlock_between_two_units_is_a_retryable_error_and_the_other_unit_commits(
        service: PaymentService, make_ledger: Callable[[], Ledger]) -> None:
    """Two units each lock one payment, then the other's (no unit of the service's does; a shop's
    own code in the same database might): PostgreSQL rolls one back, which is `LedgerBusy`. (SQLite
    units take its one write lock up front, so they never wait holding one.)"""
    first, second = (service.authorize("fakepay", eur("5.00"), source="tok_ok").id for _ in range(2))
    ledgers = [make_ledger(), make_ledger()]
    both_hold_one = threading.Barrier(2)
    outcomes: list[BaseException | None] = []

    def lock(ledger: Ledger, mine: str, theirs: str) -> None:
        try:
            with ledger.unit() as u:
                u.payment(mine, lock=True)
                both_hold_one.wait()
                u.payment(theirs, lock=True)
            outcomes.append(None)
        except Exception as exc:
            outcomes.append(exc)

    threads = [threading.Thread(target=lock, args=(ledgers[0], first, second)),
               threading.Thread(target=lock, args=(ledgers[1], second, first))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    errors = [o for o in outcomes if o is not None]
    assert len(outcomes) == 2 and len(errors) == 1, outcomes
    assert isinstance(errors[0], LedgerBusy) and errors[0].retryable, errors[0]


def test_a_webhook_whose_unit_connects_while_another_program_holds_the_sqlite_file_is_busy(
        fakepay: tuple[FakePayApp, str], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    """A unit's thread connecting for the first time reads the file (its journal mode): another
    program holding the file whole (SQLite's exclusive locking mode: a maintenance shell, a
    backup) makes that wait run out as a unit's own would. The same `LedgerBusy`, answered 503
    by the endpoint in one line, not an internal error with a stack trace."""
    app, url = fakepay
    path = tmp_path / "ledger.db"
    gateway = make_gateway(url, **PATIENT)  # what is sent is answered, however loaded the machine
    service = PaymentService(gateway, SQLiteLedger(path, timeout=WAIT_MS / 1000), margin=0)
    payment = service.authorize("fakepay", eur("50.00"), source="tok_ok")
    headers, body = app.event("evt_locked", "captured", "cap_outside", amount=1_000,
                              references={"payment": payment.reference or ""})
    service.ledger.close()  # the next unit connects anew, as a new worker thread's first does
    holder = sqlite3.connect(path, isolation_level=None)
    try:
        holder.execute("PRAGMA locking_mode = EXCLUSIVE")
        holder.execute("BEGIN EXCLUSIVE")
        holder.execute("SELECT count(*) FROM paywire_payments").fetchone()  # takes the file
        with pytest.raises(LedgerBusy):
            service.receive_webhook("fakepay", headers, body)
        caplog.clear()
        status, _, answer = handle_webhook(service, "fakepay", headers, body)
    finally:
        holder.close()
    assert (status, json.loads(answer)) == (503, {"error": "ledger_busy"})
    assert [r.exc_info for r in caplog.records if r.name.startswith("paywire")] == [None]
    assert service.ledger.get_event("fakepay", "evt_locked") is None
    assert service.receive_webhook("fakepay", headers, body).status == "applied"
    assert service.get_payment(payment.id).captured == eur("10.00")
    gateway.close()
    service.ledger.close()


@pytest.mark.postgres
def test_a_worker_starting_while_another_migrates_past_its_lock_timeout_is_told_busy(postgres_dsn: str) -> None:
    """Opening a ledger takes the migrations' lock (another worker may be upgrading it); waiting
    for it past the URL's lock_timeout is the ledger busy, retryable, as for any unit: not a
    configuration to fix ("check the URL and the server")."""
    import psycopg

    from paywire.ledger import open_ledger

    schema = f"pwtest_{os.getpid()}_{secrets.token_hex(4)}"
    url = f"{postgres_dsn}?schema={schema}&options={quote(f'-c lock_timeout={WAIT_MS}', safe='')}"
    open_ledger(url).close()
    with psycopg.connect(postgres_dsn) as migrating:  # a worker upgrading the ledger holds the lock
        migrating.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"paywire:migrate:{schema}",))
        with pytest.raises(LedgerBusy) as refused:
            open_ledger(url)
        migrating.rollback()
    assert refused.value.retryable and refused.value.code == "ledger_busy"
    open_ledger(url).close()  # once it is free, the ledger opens


@pytest.mark.postgres
def test_a_read_waiting_past_its_lock_timeout_is_told_busy_and_sends_nothing(
        postgres_dsn: str, fakepay: tuple[FakePayApp, str]) -> None:
    """Reads outside a unit wait for locks too: a worker upgrading the ledger (a migration's ALTER
    TABLE) holds its tables whole. Waiting past lock_timeout is `LedgerBusy`, retryable, from every
    read (a payment, the lists, retry's and reconcile's first looks) as from a unit: never the
    driver's own error, which a caller cannot tell from a bug. Nothing is sent meanwhile."""
    import psycopg

    app, url = fakepay
    schema = f"pwtest_{os.getpid()}_{secrets.token_hex(4)}"
    ledger = PostgresLedger(f"{postgres_dsn}?options={quote(f'-c lock_timeout={WAIT_MS}')}", schema=schema)
    gateway = make_gateway(url, **PATIENT)  # what is sent is answered, however loaded the machine
    service = PaymentService(gateway, ledger, margin=0)
    try:
        payment = service.authorize("fakepay", eur("50.00"), source="tok_ok")
        app.inject(Fault("drop_after", path="/captures$", method="POST"))
        with pytest.raises(OutcomeUnknown):  # applied, its answer lost: retry() resends it under its key
            service.capture(payment.id, eur("20.00"))
        app.clear_faults()
        [capture] = [t for t in service.list_transactions(payment.id) if t.kind == "capture"]
        calls, before = list(app.calls), service.list_transactions(payment.id)
        reads: dict[str, Callable[[], object]] = {
            "get_payment": lambda: service.get_payment(payment.id),
            "list_payments": lambda: service.list_payments(),
            "get_transaction": lambda: service.get_transaction(capture.id),
            "list_transactions": lambda: service.list_transactions(payment.id),
            "retry": lambda: service.retry(capture.id),
            "reconcile": lambda: service.reconcile(),
            "match_unmatched": lambda: service.match_unmatched(),
        }
        with psycopg.connect(postgres_dsn) as migrating:
            migrating.execute(f'SET search_path TO "{schema}"')
            migrating.execute("LOCK TABLE paywire_payments, paywire_transactions, paywire_events "
                              "IN ACCESS EXCLUSIVE MODE")
            refused = {}
            for name, read in reads.items():
                try:
                    refused[name] = read()
                except Exception as exc:  # what each one raised is the assertion
                    refused[name] = exc
            migrating.rollback()
        wrong = {name: repr(exc) for name, exc in refused.items()
                 if not (isinstance(exc, LedgerBusy) and exc.retryable and exc.code == "ledger_busy")}
        assert wrong == {}
        assert (app.calls, service.list_transactions(payment.id)) == (calls, before)  # nothing sent or written
        assert service.get_payment(payment.id).captured == eur("0.00")
        service.retry(capture.id)  # once the tables are free
        assert service.get_payment(payment.id).captured == eur("20.00")
        assert app.count("capture") == 1
    finally:
        gateway.close()
        ledger.close()


@pytest.mark.postgres
def test_a_duplicate_waiting_for_the_first_call_whose_read_cannot_lock_is_told_busy_and_sends_nothing(
        postgres_dsn: str, fakepay: tuple[FakePayApp, str]) -> None:
    """Another worker's call with the same key waits for the first one's outcome by reading the
    ledger (`PaymentService.wait_timeout`). A read that waits past lock_timeout meanwhile (a worker
    migrating the ledger holds its tables) ends the wait as `LedgerBusy`: nothing of the duplicate
    was sent or written, and the first call's outcome stands."""
    import psycopg

    app, url = fakepay
    schema = f"pwtest_{os.getpid()}_{secrets.token_hex(4)}"
    first_ledger = PostgresLedger(postgres_dsn, schema=schema)
    polling = threading.Event()

    class Watched(PostgresLedger):
        def get_transaction(self, transaction_id: str) -> Any:
            polling.set()  # the duplicate reads the first call's transaction: it is waiting for it
            return super().get_transaction(transaction_id)

    second_ledger = Watched(f"{postgres_dsn}?options={quote(f'-c lock_timeout={WAIT_MS}')}", schema=schema)
    gateway = make_gateway(url)
    first = PaymentService(gateway, first_ledger)
    second = PaymentService(gateway, second_ledger, wait_timeout=60)
    try:
        payment = first.authorize("fakepay", eur("50.00"), source="tok_ok")
        app.inject(Fault("hold", path="/captures$", method="POST"))
        thread, out = in_thread(lambda: first.capture(payment.id, eur("20.00"), idempotency_key="capture-1"))
        try:
            assert app.wait_until_held(1)  # sent, its pending record committed
            with psycopg.connect(postgres_dsn) as migrating:
                migrating.execute(f'SET search_path TO "{schema}"')
                waiting, duplicate = in_thread(
                    lambda: second.capture(payment.id, eur("20.00"), idempotency_key="capture-1"))
                assert polling.wait(30)
                migrating.execute("LOCK TABLE paywire_transactions IN ACCESS EXCLUSIVE MODE")
                waiting.join(30)
                migrating.rollback()
        finally:
            app.release_held()
            thread.join(30)
        [busy] = duplicate
        assert isinstance(busy, LedgerBusy) and busy.retryable, repr(busy)
        assert out[0].captured == eur("20.00")
        assert app.count("capture") == 1
        assert [t.status for t in first.list_transactions(payment.id)] == [S.SUCCEEDED, S.SUCCEEDED]
    finally:
        gateway.close()
        first_ledger.close()
        second_ledger.close()

