"""Workers naming one PostgreSQL schema two ways share one ledger, so they must share its locks:
the advisory lock per idempotency key (duplicates of one request queue behind the first) and the
one per provider id (a webhook stored unmatched waits for the unit indexing its payment's id).

The locks were named after the schema as the URL spells it: a worker with `?schema=name` and one
with no schema and `search_path=name` in its options (or the name unquoted in capitals, or quoted,
or after an empty schema) took different locks, and neither waited for the other. Each waiter
here waits `WAIT_MS` (its lock_timeout) while the holder holds the lock until the waiter has
given up, so the wait always runs out: no timing is guessed.
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Callable, Iterator
from urllib.parse import quote

import pytest

from paywire import LedgerBusy
from paywire.ledger import Ledger, open_ledger
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
def two_workers(request: pytest.FixtureRequest, postgres_dsn: str) -> Iterator[tuple[Ledger, Ledger]]:
    """A ledger opened with `?schema=name`, and the same ledger opened by another spelling."""
    import psycopg

    name, empty = _fresh_name(), _fresh_name()
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{empty}"')
    first = open_ledger(postgres_dsn + _named(name))
    second = open_ledger(postgres_dsn + SPELLINGS[request.param](name, empty))
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
    open_ledger(postgres_dsn + _named(name)).close()
    ledger = open_ledger(postgres_dsn + _through_path(name))
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
