"""The ledger's database gone or refusing writes, as the payment service's caller sees it.

Before the request is sent, the pending unit fails: `LedgerUnavailable` (retryable, nothing sent,
exit 4 on the command line), not the driver's error. A PostgreSQL connection the server ended
while it sat idle (a restart, `pg_terminate_backend`) is replaced before the next unit begins,
so that unit does not fail for it. After the request was sent, the same causes leave the outcome
unknown (test_unrecordable_outcome.py)."""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, ExitStack, contextmanager

import pytest

from paywire import LedgerUnavailable, OutcomeUnknown, hookimpl
from paywire.cli import EXIT_RETRYABLE, EXIT_UNKNOWN, exit_code
from paywire.ledger import Ledger, PostgresLedger, SQLiteLedger
from paywire.service import PaymentService
from tests.ledger.fakepay import FakePayApp, make_gateway
from tests.ledger.support import FAST, PATIENT, eur, unrecorded_capture_settles_later

Refusal = Callable[[], AbstractContextManager[None]]


def _postgres_read_only(ledger: PostgresLedger) -> Refusal:
    """Every transaction of the thread's connection read-only, as on a standby after a failover."""
    @contextmanager
    def refuse() -> Iterator[None]:
        connection = ledger.connection()
        ledger.execute(connection, "SET default_transaction_read_only = on")
        try:
            yield
        finally:
            ledger.execute(ledger.connection(), "SET default_transaction_read_only = off")
    return refuse


def _sqlite_pragma(ledger: SQLiteLedger, pragma: str) -> Refusal:
    """`pragma` on the thread's connection; the connection is dropped afterwards (the next unit
    opens one without it)."""
    @contextmanager
    def refuse() -> Iterator[None]:
        connection = ledger.connection()
        if pragma == "full":  # no page beyond those the file has: SQLITE_FULL, as on a full disk
            pages = connection.execute("PRAGMA page_count").fetchone()[0]
            connection.execute(f"PRAGMA max_page_count = {pages}")
        else:  # SQLITE_READONLY, as for a read-only file
            connection.execute("PRAGMA query_only = ON")
        try:
            yield
        finally:
            ledger.close()
    return refuse


def _sqlite_moved(ledger: SQLiteLedger) -> Refusal:
    """The file's directory moved away (an unmounted volume): a new connection cannot open it
    (SQLITE_CANTOPEN)."""
    @contextmanager
    def refuse() -> Iterator[None]:
        folder = ledger.path.parent
        ledger.close()  # the next unit connects anew, as a new worker thread's first does
        folder.rename(folder.with_name("moved"))
        try:
            yield
        finally:
            folder.with_name("moved").rename(folder)
    return refuse


def _refusal(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[tuple[Ledger, Refusal]]:
    if request.param == "sqlite_cannot_open":
        ledger: Ledger = SQLiteLedger(f"{tmp_path}/data/ledger.db")
        yield ledger, _sqlite_moved(ledger)
    elif request.param.startswith("sqlite"):
        ledger = SQLiteLedger(f"{tmp_path}/ledger.db")
        yield ledger, _sqlite_pragma(ledger, request.param.removeprefix("sqlite_"))
    else:
        request.applymarker(pytest.mark.postgres)
        dsn = request.getfixturevalue("postgres_dsn")
        ledger = PostgresLedger(dsn, schema=f"pwtest_{os.getpid()}_{secrets.token_hex(4)}")
        yield ledger, _postgres_read_only(ledger)
    ledger.close()


@pytest.fixture(params=["postgres_read_only", "sqlite_full", "sqlite_read_only", "sqlite_cannot_open"])
def refusing(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[tuple[Ledger, Refusal]]:
    yield from _refusal(request, tmp_path)


@pytest.fixture(params=["postgres_read_only", "sqlite_read_only"])
def refusing_on(request: pytest.FixtureRequest, tmp_path: object) -> Iterator[tuple[Ledger, Refusal]]:
    """A refusal that lasts on the connection (a full SQLite file drops it at the rollback: the
    outcome's second try, on a new one, is recorded)."""
    yield from _refusal(request, tmp_path)


def test_a_database_refusing_writes_before_the_request_is_sent_is_ledger_unavailable(
        refusing: tuple[Ledger, Refusal], fakepay: tuple[FakePayApp, str]) -> None:
    ledger, refuse = refusing
    app, url = fakepay
    big = {"note": "x" * 200_000}  # the pending record needs pages of its own
    with make_gateway(url, **PATIENT) as gateway:
        service = PaymentService(gateway, ledger, margin=0)
        with refuse(), pytest.raises(LedgerUnavailable) as raised:
            service.authorize("fakepay", eur("50.00"), source="tok_ok", idempotency_key="auth-1", metadata=big)
        error = raised.value
        assert error.retryable and error.code == "ledger_unavailable" and not error.may_have_been_sent
        assert "authorize was not sent" in str(error), error
        assert exit_code(error) == EXIT_RETRYABLE
        assert app.count("authorize") == 0 and ledger.list_transactions() == []
        payment = service.authorize("fakepay", eur("50.00"), source="tok_ok", idempotency_key="auth-1", metadata=big)
        assert payment.authorized == eur("50.00") and app.count("authorize") == 1


def test_the_services_reads_of_a_ledger_that_cannot_be_opened_are_ledger_unavailable(
        tmp_path: object, fakepay: tuple[FakePayApp, str]) -> None:
    """The ledger's directory moved away (an unmounted volume) between two calls: each read the
    service offers (and `reconcile()`, before it asks the provider anything) raises
    `LedgerUnavailable` naming SQLite's reason, not sqlite3's own error, which a caller cannot tell
    from a bug; nothing is sent. Once the directory is back, each answers."""
    app, url = fakepay
    ledger = SQLiteLedger(f"{tmp_path}/data/ledger.db")
    with make_gateway(url, **PATIENT) as gateway:
        service = PaymentService(gateway, ledger, margin=0)
        payment = service.authorize("fakepay", eur("50.00"), source="tok_ok")
        (txn,) = service.list_transactions(payment.id)
        reads: dict[str, Callable[[], object]] = {
            "get_payment": lambda: service.get_payment(payment.id), "list_payments": service.list_payments,
            "get_transaction": lambda: service.get_transaction(txn.id),
            "list_transactions": lambda: service.list_transactions(payment.id),
            "reconcile": service.reconcile, "match_unmatched": service.match_unmatched,
        }
        sent = len(app.calls)
        with _sqlite_moved(ledger)():
            for name, read in reads.items():
                with pytest.raises(LedgerUnavailable) as raised:
                    read()
                error = raised.value
                assert "unable to open database file (SQLITE_CANTOPEN)" in str(error), (name, error)
                assert error.retryable and not error.may_have_been_sent and exit_code(error) == EXIT_RETRYABLE, name
        assert len(app.calls) == sent
        for read in reads.values():
            read()
    ledger.close()


class RefuseAfter:
    """Makes the ledger refuse writes once `command`'s answer is back: the request was sent."""

    def __init__(self, refuse: Refusal, command: str) -> None:
        self.refuse, self.command = refuse, command
        self.refusing = ExitStack()

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Iterator[None]:
        response = yield
        if command == self.command:
            self.refusing.enter_context(self.refuse())
        return response


def test_a_database_refusing_writes_after_the_request_was_sent_leaves_the_outcome_unknown_never_failed(
        refusing_on: tuple[Ledger, Refusal], fakepay: tuple[FakePayApp, str]) -> None:
    ledger, refuse = refusing_on
    app, url = fakepay
    refuse_after = RefuseAfter(refuse, "capture")
    with make_gateway(url, **PATIENT) as patient, make_gateway(url, extra=[refuse_after], **FAST) as gateway:
        service = PaymentService(patient, ledger, margin=0)
        payment = service.authorize("fakepay", eur("50.00"), source="tok_ok")
        with refuse_after.refusing, pytest.raises(OutcomeUnknown) as raised:  # answered, and its life waited out
            PaymentService(gateway, ledger, margin=0).capture(payment.id, eur("20.00"), idempotency_key="capture-1")
        assert not isinstance(raised.value, LedgerUnavailable) and "could not be recorded" in str(raised.value)
        assert exit_code(raised.value) == EXIT_UNKNOWN
        unrecorded_capture_settles_later(service, app, payment.id, raised.value)


@pytest.fixture
def pg_ledger(postgres_dsn: str) -> Iterator[PostgresLedger]:
    ledger = PostgresLedger(postgres_dsn, schema=f"pwtest_{os.getpid()}_{secrets.token_hex(4)}")
    yield ledger
    ledger.close()


def _terminate(ledger: PostgresLedger, dsn: str) -> None:
    """End this thread's ledger connection from the server's side, and wait until its backend is
    gone (its goodbye sent), as a restart does while the connection sits idle."""
    import psycopg

    backend = ledger.connection().info.backend_pid
    with psycopg.connect(dsn, autocommit=True) as admin:
        assert admin.execute("SELECT pg_terminate_backend(%s, 10000)", (backend,)).fetchone() == (True,)


@pytest.mark.postgres
def test_a_connection_the_server_ended_while_idle_is_replaced_before_the_next_unit(
        pg_ledger: PostgresLedger, postgres_dsn: str, fakepay: tuple[FakePayApp, str]) -> None:
    app, url = fakepay
    with make_gateway(url, **PATIENT) as gateway:
        service = PaymentService(gateway, pg_ledger, margin=0)
        payment = service.authorize("fakepay", eur("50.00"), source="tok_ok")
        before = pg_ledger.connection()
        _terminate(pg_ledger, postgres_dsn)
        captured = service.capture(payment.id, eur("20.00"))  # its unit begins on a new connection
        assert captured.captured == eur("20.00") and app.count("capture") == 1
        assert pg_ledger.connection() is not before
        _terminate(pg_ledger, postgres_dsn)
        assert service.get_payment(payment.id).captured == eur("20.00")  # a read too


@pytest.mark.postgres
def test_a_database_out_of_reach_before_the_request_is_sent_is_ledger_unavailable(
        postgres_dsn: str, fakepay: tuple[FakePayApp, str]) -> None:
    """The server goes away (its connections closed, new ones refused): the one reconnect
    fails, and the caller gets `LedgerUnavailable`; once it is back, the same call works."""
    from tests.serve.dbproxy import DatabaseProxy

    app, url = fakepay
    proxy = DatabaseProxy(postgres_dsn)
    ledger = PostgresLedger(proxy.dsn, schema=f"pwtest_{os.getpid()}_{secrets.token_hex(4)}")
    try:
        with make_gateway(url, **PATIENT) as gateway:
            service = PaymentService(gateway, ledger, margin=0)
            payment = service.authorize("fakepay", eur("50.00"), source="tok_ok")
            proxy.down()
            with pytest.raises(LedgerUnavailable) as raised:
                service.capture(payment.id, eur("20.00"), idempotency_key="cap-1")
            assert "the capture was not sent" in str(raised.value) and exit_code(raised.value) == EXIT_RETRYABLE
            assert app.count("capture") == 0
            proxy.up()
            assert service.capture(payment.id, eur("20.00"), idempotency_key="cap-1").captured == eur("20.00")
            assert app.count("capture") == 1
    finally:
        ledger.close()
        proxy.close()


def test_a_webhook_a_read_only_sqlite_file_cannot_store_is_answered_503_in_one_line(
        tmp_path: object, fakepay: tuple[FakePayApp, str], caplog: pytest.LogCaptureFixture) -> None:
    """SQLite's file read-only: the delivery is not stored and is answered 503,
    logged in one line without a stack trace, so the provider delivers it again; then applied."""
    import json

    from paywire.web import handle_webhook

    app, url = fakepay
    ledger = SQLiteLedger(f"{tmp_path}/ledger.db")
    with make_gateway(url, **PATIENT) as gateway:
        service = PaymentService(gateway, ledger, margin=0)
        payment = service.authorize("fakepay", eur("50.00"), source="tok_ok")
        headers, body = app.event("evt_read_only", "captured", "cap_outside", amount=1_000,
                                  references={"payment": payment.reference or ""})
        with _sqlite_pragma(ledger, "read_only")():
            caplog.clear()
            status, _, answer = handle_webhook(service, "fakepay", headers, body)
        assert (status, json.loads(answer)) == (503, {"error": "ledger_unavailable"})
        (record,) = [r for r in caplog.records if r.name.startswith("paywire")]
        assert record.levelname == "WARNING" and record.exc_info is None, record.getMessage()
        assert "attempt to write a readonly database (SQLITE_READONLY)" in record.getMessage()
        assert ledger.get_event("fakepay", "evt_read_only") is None
        assert service.receive_webhook("fakepay", headers, body).status == "applied"
    ledger.close()


@pytest.mark.postgres
@pytest.mark.parametrize(("state", "unavailable"), [
    ("08006", True), ("57P01", True), ("57P02", True), ("57P03", True), ("53100", True), ("53200", True),
    ("53300", True), ("25006", True),
    ("23505", False), ("42P01", False), ("40001", False), ("55P03", False), ("25P02", False), ("22001", False),
])
def test_which_postgresql_errors_say_the_database_is_unavailable(pg_ledger: PostgresLedger, state: str,
                                                                 unavailable: bool) -> None:
    """Those the server sends when it cannot be reached or will not write (class 08, its
    shutdown or start-up, class 53 insufficient resources, a read-only transaction), as psycopg
    raises them; not a constraint, a missing table, a serialization failure or a lock timeout
    (`LedgerBusy`), an aborted transaction or bad data: faults, or busy."""
    import psycopg

    error = psycopg.errors.lookup(state)(f"the server's error {state}")
    assert (pg_ledger.unavailable(error) is not None) is unavailable
