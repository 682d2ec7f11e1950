"""The PostgreSQL ledger's statements go through psycopg's libpq layer, batched per unit (see
`paywire.ledger.postgres._Session`): what that must never change, against a real server."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paywire import Money, StateError, hookimpl
from paywire.ledger import Ledger, LedgerIntegrityError, Payment, SQLiteLedger
from paywire.service import PaymentService
from tests.ledger.fakepay import FakePayApp, make_gateway
from tests.ledger.support import in_thread, wait_until
from tests.ledger.test_storage_conformance import payment, txn

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'paywire[postgresql]')")

from paywire.ledger.postgres import PostgresLedger, _Session  # noqa: E402 - after the skip


@pytest.fixture
def pg_ledger(postgres_dsn: str) -> Iterator[PostgresLedger]:
    ledger = PostgresLedger(postgres_dsn, schema=f"pwtest_{os.getpid()}_{secrets.token_hex(4)}")
    yield ledger
    ledger.close()


def test_a_connection_lost_inside_a_unit_rolls_it_back_and_the_next_unit_reconnects(
    pg_ledger: PostgresLedger, postgres_dsn: str,
) -> None:
    with pg_ledger.unit() as u:
        u.insert_payment(payment("pay_0"))
    connection = pg_ledger.connection()
    backend = pg_ledger.execute(connection, "SELECT pg_backend_pid()").fetchone()[0]
    with pytest.raises(psycopg.OperationalError), pg_ledger.unit() as u:
        u.insert_payment(payment("pay_1"))  # waits to go with the next answer the unit needs
        with psycopg.connect(postgres_dsn, autocommit=True) as admin:
            admin.execute("SELECT pg_terminate_backend(%s)", (backend,))
        u.payment("pay_0")
    assert pg_ledger.connection() is not connection
    assert pg_ledger.get_payment("pay_1") is None
    with pg_ledger.unit() as u:
        u.insert_payment(payment("pay_2"))
    assert {p.id for p in pg_ledger.list_payments()} == {"pay_0", "pay_2"}



class LoseTheConnection:
    """Ends the ledger connection of the thread sending `command` once its answer is back (a
    database restart, or a proxy dropping the session, while the request was in flight)."""

    def __init__(self, ledger: PostgresLedger, dsn: str, command: str) -> None:
        self.ledger, self.dsn, self.command = ledger, dsn, command
        self.done = False

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Iterator[None]:
        response = yield
        if command == self.command and not self.done:
            self.done = True
            backend = self.ledger.connection().info.backend_pid
            with psycopg.connect(self.dsn, autocommit=True) as admin:  # waits until it is gone
                assert admin.execute("SELECT pg_terminate_backend(%s, 10000)", (backend,)).fetchone() == (True,)
        return response


def test_an_answer_is_recorded_although_the_connection_was_lost_while_it_was_in_flight(
    pg_ledger: PostgresLedger, postgres_dsn: str, fakepay: tuple[FakePayApp, str],
) -> None:
    """The capture was applied and answered; the outcome unit finds its connection gone. It
    runs again on a new connection: the caller gets the payment, not a database error, and
    the ledger does not wait for reconciliation to learn what the provider already said."""
    app, url = fakepay
    lose = LoseTheConnection(pg_ledger, postgres_dsn, "capture")
    gateway = make_gateway(url, extra=[lose])
    try:
        service = PaymentService(gateway, pg_ledger)
        payment = service.authorize("fakepay", Money.of("100.00", "EUR"), source="tok_ok")
        captured = service.capture(payment.id, Money.of("40.00", "EUR"), idempotency_key="cap-1")
        assert lose.done and app.count("capture") == 1
        assert captured.captured == Money.of("40.00", "EUR")
        assert [t.status for t in service.list_transactions(payment.id)] == ["succeeded", "succeeded"]
    finally:
        gateway.close()


def test_only_text_integers_booleans_and_null_are_bound(pg_ledger: PostgresLedger) -> None:
    connection = pg_ledger.connection()
    for refused in (1.5, Decimal("1.50"), b"bytes", datetime.now(UTC)):
        with pytest.raises(TypeError, match=type(refused).__name__):
            pg_ledger.execute(connection, "SELECT ?::text", (refused,))
    row = pg_ledger.execute(connection, "SELECT ?::text, ?::bigint, ?::boolean, ?::boolean, ?::text",
                            ("é ' ; --", -(2**63), True, False, None)).fetchone()
    assert row == ("é ' ; --", -(2**63), True, False, None)
    with pytest.raises(ValueError, match="NUL"):  # libpq would end the text there: never cut short
        pg_ledger.execute(connection, "SELECT ?::text", ("order-1\x00B",))


_OPS = st.lists(st.tuples(st.sampled_from(["insert", "update", "read", "record"]), st.integers(0, 3),
                          st.integers(0, 2)), max_size=8)


def _run(ledger: Ledger, prefix: str, units: list[list[tuple[str, int, int]]]) -> list[object]:
    """Each unit's answers (or that it was refused), then what is stored."""
    seen: list[object] = []
    for number, ops in enumerate(units):
        answers: list[object] = []
        try:
            with ledger.unit() as u:
                for op, item, value in ops:
                    pid = f"{prefix}_{item}"
                    if op == "insert":
                        u.insert_payment(payment(pid))
                    elif op == "update":
                        u.update_payment(payment(pid, authorized=Money(100 * (number + 1) + value, "EUR")))
                    elif op == "record":
                        u.insert_transaction(txn(f"{prefix}_t{number}_{item}", pid=None, key=f"{prefix}-k{value}"))
                    else:
                        found = u.payment(pid)
                        answers.append(found.authorized.minor if found else None)
            seen.append(answers)
        except LedgerIntegrityError:
            seen.append("refused")
    payments = [(p.id, p.authorized.minor) for p in ledger.list_payments(limit=1000) if p.id.startswith(prefix)]
    keys = [t.idempotency_key for t in ledger.list_transactions() if t.idempotency_key.startswith(prefix)]
    return [*seen, sorted(payments), sorted(keys)]


@pytest.mark.parametrize("prepared", [256, 0], ids=["prepared", "sent-whole"])
@given(units=st.lists(_OPS, min_size=1, max_size=5))
@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_batched_units_answer_and_store_as_sqlite_does(
    units: list[list[tuple[str, int, int]]], pg_ledger: PostgresLedger, sqlite_ledger: SQLiteLedger,
    prepared: int, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Writes that are refused (a payment inserted twice, a missing one updated, a key used
    twice), reads between writes: PostgreSQL, batching, answers and keeps what SQLite, running
    each statement at once, does; with its statements prepared, and sent whole."""
    monkeypatch.setattr(_Session, "PREPARED", prepared)
    pg_ledger.close()  # a new connection, so the bound applies from its first statement
    prefix = f"p{secrets.token_hex(4)}"
    assert _run(pg_ledger, prefix, units) == _run(sqlite_ledger, prefix, units)
    session = pg_ledger._session(pg_ledger.connection())
    assert bool(session._names) is bool(prepared)


def test_a_statement_first_prepared_inside_a_unit_sees_what_the_unit_did_before_it(
    pg_ledger: PostgresLedger,
) -> None:
    """A statement is parsed against the server's catalog when it is prepared: the statements
    waiting in the unit run first, or one naming a table the unit just made fails (as the first
    migration's record of itself did, made in the same unit as the table it goes into)."""
    connection = pg_ledger.connection()
    pg_ledger.begin(connection)
    pg_ledger.execute(connection, "CREATE TABLE paywire_scratch (n INTEGER NOT NULL)")
    pg_ledger.execute(connection, "INSERT INTO paywire_scratch (n) VALUES (?)", (7,))
    assert pg_ledger.execute(connection, "SELECT n FROM paywire_scratch").fetchall() == [(7,)]
    pg_ledger.rollback(connection)


class _HoldInRehearsal:
    """Holds the first capture inside its pending unit (payment locked, capture recorded, not yet
    committed) until another session queues behind its locks."""

    def __init__(self, ledger: PostgresLedger, dsn: str) -> None:
        self.ledger, self.dsn = ledger, dsn
        self.held = False

    @hookimpl
    def build_request(self, command: str, subject: object) -> None:
        if command != "capture" or self.held:
            return
        self.held = True
        pid = self.ledger.connection().info.backend_pid

        def queued() -> bool:
            with psycopg.connect(self.dsn, autocommit=True) as admin:
                row = admin.execute("SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                                    (pid,)).fetchone()
                return bool(row and row[0])
        wait_until(queued, "the other capture waits for the payment's lock")


def test_units_are_read_committed_whatever_the_databases_default_isolation(
    postgres_dsn: str, fakepay: tuple[FakePayApp, str],
) -> None:
    """A database (or role) whose default isolation is REPEATABLE READ: a unit's snapshot would
    be taken before it waits for the payment's lock, so a capture queued behind another would
    not see that one's pending record and send a second capture of money already spoken for.
    Units are READ COMMITTED, as their locking is built for: the second is refused unsent."""
    from urllib.parse import quote

    app, url = fakepay
    options = quote("-c default_transaction_isolation=repeatable\\ read")
    ledger = PostgresLedger(f"{postgres_dsn}?options={options}", schema=f"pwtest_{os.getpid()}_{secrets.token_hex(4)}")
    hold = _HoldInRehearsal(ledger, postgres_dsn)
    gateway = make_gateway(url, extra=[hold])
    try:
        service = PaymentService(gateway, ledger)
        payment = service.authorize("fakepay", Money.of("100.00", "EUR"), source="tok_ok")
        first, first_out = in_thread(lambda: service.capture(payment.id, Money.of("60.00", "EUR"),
                                                             idempotency_key="cap-a"))
        wait_until(lambda: hold.held, "the first capture is rehearsed inside its unit")
        second = service.capture  # on this thread's own connection, queued behind the first
        with pytest.raises(StateError):
            second(payment.id, Money.of("60.00", "EUR"), idempotency_key="cap-b")
        first.join(30)
        assert [type(o) for o in first_out] == [Payment]
        assert app.count("capture") == 1
        assert [t.kind for t in service.list_transactions(payment.id)] == ["authorize", "capture"]
    finally:
        gateway.close()
        ledger.close()


def test_a_durable_unit_waits_for_its_flush_where_the_database_makes_commits_lazy(postgres_dsn: str) -> None:
    """A database or role with `synchronous_commit = off` would let the pending record of a
    request about to be sent be lost, whole, in a crash of the server (a backend killed, and the
    WAL not yet written with it): durable units flush locally all the same (without waiting for
    a standby the database chose not to wait for); outcome units stay lazy."""
    from urllib.parse import quote

    options = quote("-c synchronous_commit=off", safe="")
    ledger = PostgresLedger(f"{postgres_dsn}?options={options}", schema=f"pwtest_{os.getpid()}_{secrets.token_hex(4)}")
    try:
        seen = {}
        for durable in (True, False, True):
            with ledger.unit(durable=durable):
                connection = ledger.connection()
                seen[durable] = ledger.execute(connection, "SELECT current_setting('synchronous_commit')").fetchone()
        assert seen == {True: ("local",), False: ("off",)}
        assert ledger.execute(ledger.connection(), "SHOW synchronous_commit").fetchone() == ("off",)  # outside units
    finally:
        ledger.close()


@pytest.mark.parametrize("encoding", ["latin1", "win1252"])
def test_text_is_kept_as_given_whatever_client_encoding_the_connection_would_default_to(
    postgres_dsn: str, encoding: str,
) -> None:
    """Parameters go to the server as UTF-8 text; a connection told another client encoding (by
    the URL, PGCLIENTENCODING, or the role's or database's settings) would read them as that one:
    "é" stored as "Ã©", and a character whose UTF-8 bytes that encoding lacks refused (an
    outcome, unrecordable, left unknown)."""
    ledger = PostgresLedger(f"{postgres_dsn}?client_encoding={encoding}",
                            schema=f"pwtest_{os.getpid()}_{secrets.token_hex(4)}")
    try:
        text = "Café Á \u2013 ✓ 注文"
        with ledger.unit() as u:
            u.insert_payment(payment("pay_text", order_id=text, customer_reference=text))
        stored = ledger.get_payment("pay_text")
        assert stored is not None and (stored.order_id, stored.customer_reference) == (text, text)
        assert [p.id for p in ledger.list_payments(order_id=text)] == ["pay_text"]
    finally:
        ledger.close()
