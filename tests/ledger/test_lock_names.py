"""Workers naming one PostgreSQL schema two ways share one ledger, so they must share its locks:
the advisory lock per idempotency key (duplicates of one request queue behind the first), the
one per provider id (a webhook stored unmatched waits for the unit indexing its payment's id),
and the migrations' lock (workers starting together upgrade the ledger one at a time).

The locks were named after the schema as the URL spells it: a worker with `?schema=name` and one
with no schema and `search_path=name` in its options (or the name unquoted in capitals, or quoted,
or after an empty schema) took different locks, and neither waited for the other. Each waiter
here waits `WAIT_MS` (its lock_timeout) while the holder holds the lock until the waiter has
given up, so the wait always runs out: no timing is guessed.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import quote

import pytest

from paywire import LedgerBusy
from paywire.ledger import Ledger, PostgresLedger, open_ledger
from tests.ledger.support import open_past_upgrades
from tests.ledger.test_storage_conformance import payment

pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'paywire[postgresql]')")

pytestmark = pytest.mark.postgres

WAIT_MS = 50  # how long a waiting ledger waits for a lock; the holder always holds it longer
KEY = ("fakepay", "key-1")
REFERENCE = "ch_1"


def _fresh_name() -> str:
    return f"pwtest_{os.getpid()}_{secrets.token_hex(4)}"  # dropped with the session's test schemas


def _named(name: str) -> str:
    return f"?schema={name}&options={quote(f'-c lock_timeout={WAIT_MS}', safe='')}"


def _through_path(search_path: str) -> str:
    return f"?options={quote(f'-c lock_timeout={WAIT_MS} -c search_path={search_path}', safe='')}"


# How a second worker may name the schema `name` (`empty` is another schema, with no ledger).
SPELLINGS: dict[str, Callable[[str, str], str]] = {
    "?schema=name": lambda name, empty: _named(name),
    "search_path=name": lambda name, empty: _through_path(name),
    "search_path=NAME": lambda name, empty: _through_path(name.upper()),
    'search_path="name"': lambda name, empty: _through_path(f'"{name}"'),
    "search_path=empty,name": lambda name, empty: _through_path(f"{empty},{name}"),
}


@pytest.fixture(params=list(SPELLINGS))
def two_urls(request: pytest.FixtureRequest, postgres_dsn: str) -> tuple[str, str]:
    """A ledger's URL with `?schema=name`, and another spelling of it."""
    import psycopg

    name, empty = _fresh_name(), _fresh_name()
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{empty}"')
    return postgres_dsn + _named(name), postgres_dsn + SPELLINGS[request.param](name, empty)


@pytest.fixture
def two_workers(two_urls: tuple[str, str]) -> Iterator[tuple[Ledger, Ledger]]:
    """A ledger opened with `?schema=name`, and the same ledger opened by another spelling."""
    first = open_past_upgrades(two_urls[0])
    second = open_past_upgrades(two_urls[1])
    try:
        with first.unit() as u:
            u.insert_payment(payment())
        assert second.get_payment("pay_1") is not None  # one ledger
        yield first, second
    finally:
        first.close()
        second.close()


def _waits_for_key(waiter: Ledger) -> None:
    with pytest.raises(LedgerBusy), waiter.unit() as u:
        u.lock_key(*KEY)
        u.transaction_by_key(*KEY)  # an answer needed: the lock is sent, and waited for


def _waits_for_reference(delivering: Ledger) -> None:
    import psycopg

    with pytest.raises(psycopg.errors.LockNotAvailable):  # outside any unit: the driver's error, as it is
        delivering.wait_out_references([REFERENCE])


@pytest.mark.parametrize("holder", [0, 1])
def test_workers_naming_one_schema_two_ways_wait_for_one_another_s_idempotency_key(
        two_workers: tuple[Ledger, Ledger], holder: int) -> None:
    held, waiter = two_workers[holder], two_workers[1 - holder]
    with held.unit() as u:
        u.lock_key(*KEY)
        assert u.transaction_by_key(*KEY) is None  # the lock is held from here
        _waits_for_key(waiter)
    with waiter.unit() as u:  # free once the holder committed
        u.lock_key(*KEY)
        assert u.transaction_by_key(*KEY) is None


@pytest.mark.parametrize("holder", [0, 1])
def test_a_webhook_waits_for_a_unit_indexing_its_id_whichever_way_each_worker_names_the_schema(
        two_workers: tuple[Ledger, Ledger], holder: int) -> None:
    indexing, delivering = two_workers[holder], two_workers[1 - holder]
    with indexing.unit() as u:
        u.add_references("fakepay", "pay_1", [REFERENCE])
        assert u.payment("pay_1") is not None  # the insert, and its lock, are sent with this read
        _waits_for_reference(delivering)
    assert delivering.wait_out_references([REFERENCE])


def test_a_worker_of_an_earlier_release_naming_no_schema_still_excludes_one_of_this_release(postgres_dsn: str) -> None:
    """Workers upgraded one by one: one still running the earlier release names its locks after
    the URL's spelling ('' for none). A worker of this release with the same URL takes that name
    too, besides the schema's own, so neither works on a key or id the other holds."""
    import psycopg

    name = _fresh_name()
    open_past_upgrades(postgres_dsn + _named(name)).close()
    ledger = open_past_upgrades(postgres_dsn + _through_path(name))
    try:
        with psycopg.connect(postgres_dsn) as earlier:
            earlier.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"paywire::{KEY[0]}:{KEY[1]}",))
            _waits_for_key(ledger)
            earlier.rollback()
            earlier.execute("SELECT pg_advisory_xact_lock_shared(hashtextextended(%s, 0))",
                            (f"paywire-ref::{REFERENCE}",))
            _waits_for_reference(ledger)
            earlier.rollback()
        with ledger.unit() as u:
            u.lock_key(*KEY)
            assert u.transaction_by_key(*KEY) is None
        assert ledger.wait_out_references([REFERENCE])
    finally:
        ledger.close()


@contextlib.contextmanager
def _upgrading(url: str) -> Iterator[None]:
    """A worker opened with `url` holding the migrations' locks, as while it upgrades the ledger."""
    ledger = open_past_upgrades(url)
    assert isinstance(ledger, PostgresLedger)
    try:
        connection = ledger.connection()
        ledger.begin(connection)
        try:
            ledger.lock_migrations(connection)
            ledger.execute(connection, "SELECT 1").fetchall()  # the locks are sent, and held from here
            yield
        finally:
            ledger.rollback(connection)
    finally:
        ledger.close()


@pytest.mark.parametrize("holder", [0, 1])
def test_workers_naming_one_schema_two_ways_upgrade_it_one_at_a_time(two_urls: tuple[str, str], holder: int) -> None:
    """The migrations' lock was named after the search path's first schema: a worker finding the
    ledger after an empty schema locked that one, and upgraded the ledger beside a worker with
    `?schema=name`."""
    open_past_upgrades(two_urls[0]).close()
    with _upgrading(two_urls[holder]), pytest.raises(LedgerBusy):
        open_ledger(two_urls[1 - holder])
    open_past_upgrades(two_urls[1 - holder]).close()  # free once the holder is done


@pytest.mark.parametrize("earlier", ["", "empty", "name"])
def test_a_worker_of_an_earlier_release_upgrading_the_ledger_holds_off_one_of_this_release(
        postgres_dsn: str, earlier: str) -> None:
    """An earlier release locks the schema the URL names ('' for none) and, naming none, the
    search path's first schema: a worker of this release finding the ledger after an empty
    schema takes all three, so it waits for one of either kind upgrading the ledger."""
    import psycopg

    name, empty = _fresh_name(), _fresh_name()
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{empty}"')
    open_past_upgrades(postgres_dsn + _named(name)).close()
    through_path = postgres_dsn + _through_path(f"{empty},{name}")
    locked = {"": "", "empty": empty, "name": name}[earlier]
    with psycopg.connect(postgres_dsn) as upgrading:
        upgrading.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"paywire:migrate:{locked}",))
        with pytest.raises(LedgerBusy):
            open_ledger(through_path)
        upgrading.rollback()
    open_past_upgrades(through_path).close()


def test_a_worker_refused_while_another_upgrades_closes_its_connection(
        postgres_dsn: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """Opening gave up with `LedgerBusy` from inside the upgrade and left its connection open
    until the garbage collector found it (a worker retrying its start held one more session each time)."""
    import psycopg

    url = postgres_dsn + _named(_fresh_name())
    open_past_upgrades(url).close()
    opened: list[psycopg.Connection] = []
    connect = psycopg.connect

    def recorded(*args: Any, **kwargs: Any) -> psycopg.Connection:
        connection = connect(*args, **kwargs)  # the real connection, recorded
        opened.append(connection)
        return connection

    with _upgrading(url):
        monkeypatch.setattr(psycopg, "connect", recorded)
        with pytest.raises(LedgerBusy):
            open_ledger(url)
        monkeypatch.undo()
    assert opened and all(connection.closed for connection in opened)
