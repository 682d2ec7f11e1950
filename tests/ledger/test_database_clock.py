"""Hosts sharing a PostgreSQL ledger keep time by the database server's clock, not their own.

A pending transaction's `settle_after` is written by the host that sends the request and read
against "now" on whichever host reconciles. On each host's own clock, a host minutes ahead took
a request still in flight on another host for abandoned and, the provider holding nothing of it
yet, concluded it not applied: the caller may then pay again. The ledger's clock is the server's,
read when it connects and carried on the host's monotonic clock, its error only ever making the
service wait longer (`paywire.ledger.clock`).

A host whose own clock is off is simulated by moving this process's wall clock
(`paywire.ledger.model.now`, every host's clock before) while that host works, the other's
work paused.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from paywire import Payment, hookimpl
from paywire.ledger import Ledger, TransactionStatus
from paywire.ledger import model as ledger_model
from paywire.ledger.clock import DRIFT, TICKS, DatabaseClock
from paywire.ledger.postgres import PostgresLedger
from paywire.serve import Janitor
from paywire.service import PaymentService
from tests.ledger.fakepay import FakePayApp, make_gateway
from tests.ledger.support import agree, eur, only

pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'paywire[postgresql]')")

S = TransactionStatus
AHEAD = timedelta(minutes=5)  # well past a capture's longest life with the default margin
POSTGRES = pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])


class _Ahead(datetime):
    """This host's wall clock, `AHEAD` of everyone else's."""

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return datetime.now(tz) + AHEAD


class _Behind(datetime):
    """This host's wall clock, `AHEAD` behind everyone else's."""

    @classmethod
    def now(cls, tz: Any = None) -> datetime:  # type: ignore[override]
        return datetime.now(tz) - AHEAD


class AnotherHostLooks:
    """Before host A's capture leaves (its pending record committed, its request in flight),
    host B, whose own clock is `clock`, looks at the ledger (`look`); what it did is kept."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch, look: Callable[[], Any], clock: type[datetime]) -> None:
        self.monkeypatch = monkeypatch
        self.look = look
        self.clock = clock
        self.seen: list[Any] = []

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Iterator[None]:
        if command == "capture" and not self.seen:
            with self.monkeypatch.context() as host_b:
                host_b.setattr(ledger_model, "datetime", self.clock)
                self.seen.append(self.look())
        return (yield)


@POSTGRES
@pytest.mark.parametrize("looker", ["reconcile", "janitor"])
@pytest.mark.parametrize("off", ["the looking host's clock ahead", "the sending host's clock behind"])
def test_a_host_whose_clock_is_off_never_has_a_request_in_flight_taken_for_abandoned(
        fakepay: tuple[FakePayApp, str], make_ledger: Callable[[], Ledger], monkeypatch: pytest.MonkeyPatch,
        looker: str, off: str) -> None:
    """Ahead, host B would read host A's `settle_after` as past; behind, host A would write it
    in the past already. Either way B would mark the capture unknown and, the provider holding
    nothing of it yet, conclude it not applied while it is on its way."""
    app, url = fakepay
    sender_behind = off.startswith("the sending")
    host_b: list[PaymentService] = []

    def look() -> tuple[Any, Any]:
        (service_b,) = host_b
        report = service_b.reconcile() if looker == "reconcile" else Janitor(service_b).run_pass()
        return report, service_b.ledger.get_transaction(capture_id())

    hook = AnotherHostLooks(monkeypatch, look, datetime if sender_behind else _Ahead)
    gateway = make_gateway(url, extra=[hook])
    try:
        host_a = PaymentService(gateway, make_ledger())
        host_b.append(PaymentService(gateway, make_ledger()))  # its own ledger connection and clock
        payment = host_a.authorize("fakepay", eur("100.00"), source="tok_ok")

        def capture_id() -> str:
            return only(host_a.list_transactions(payment.id), "capture").id

        with monkeypatch.context() as host_a_clock:
            if sender_behind:
                host_a_clock.setattr(ledger_model, "datetime", _Behind)
            captured = host_a.capture(payment.id, eur("40.00"))
        ((report, seen),) = hook.seen
        assert seen.status == S.PENDING, f"host B took host A's capture in flight for {seen.status}"
        assert report.marked_unknown == () and report.settled == (), report
        assert isinstance(captured, Payment) and captured.captured == eur("40.00")
        txn = host_a.get_transaction(capture_id())
        assert (txn.status, txn.settled_by) == (S.SUCCEEDED, "answer")
        agree(host_a, app, payment.id)
    finally:
        gateway.close()


@POSTGRES
def test_the_ledgers_clock_is_the_databases_within_its_bound_whatever_the_hosts_clock_says(
        make_ledger: Callable[[], Ledger], monkeypatch: pytest.MonkeyPatch) -> None:
    """Never ahead of the server's clock (a host concluding early), nor behind it by more than the
    bound the clock gives (`deadline`, what other hosts are told to wait for, never before it)."""
    ledger = make_ledger()
    assert isinstance(ledger, PostgresLedger)
    clock = ledger.clock
    for host_clock in (datetime, _Ahead):
        monkeypatch.setattr(ledger_model, "datetime", host_clock)
        for _ in range(20):
            before = ledger.database_time()
            now, deadline = ledger.now(), ledger.deadline(0)
            after = ledger.database_time()
            assert before is not None and after is not None
            assert now <= after, f"the ledger's clock ran {now - after} ahead of the database's"
            assert before <= deadline, "the ledger's clock ran behind the database's by more than its bound"
            assert deadline - now < timedelta(seconds=5)  # a round trip's worth, not the host's five minutes
    earliest, latest = clock.bounds()
    assert earliest <= latest


@POSTGRES
def test_the_ledger_reads_the_databases_clock_again_once_its_reading_is_old(
        make_ledger: Callable[[], Ledger]) -> None:
    """Once a minute at most, by the unit about to begin: no statement per operation."""
    ledger = make_ledger()
    assert isinstance(ledger, PostgresLedger)
    clock = ledger.clock
    shift = [0.0]
    clock.ticks = lambda: TICKS() + shift[0]
    with ledger.unit():
        pass
    assert not clock.stale()
    reading = clock._reading
    with ledger.unit():
        pass
    assert clock._reading is reading  # fresh: not read again
    shift[0] += clock.refresh  # a minute later by this host's monotonic clock
    assert clock.stale()
    with ledger.unit():
        pass
    assert not clock.stale() and clock._reading is not reading


def test_a_slow_reading_widens_the_bound_on_both_sides() -> None:
    """The server read its clock somewhere in the round trip: `now` assumes the end of it (never
    ahead), `deadline` the start (never short), whatever moment it really was."""
    ticks = [100.0]
    server = datetime(2026, 1, 1, tzinfo=UTC)

    def read() -> datetime:
        ticks[0] += 4.0  # four seconds' round trip by this host's monotonic clock
        return server

    clock = DatabaseClock(ticks=lambda: ticks[0])
    clock.measure(read)
    ticks[0] = 110.0
    for read_at in (100.0, 102.0, 104.0):  # when, in the round trip, the server may have read it
        for rate in (1 - DRIFT, 1.0, 1 + DRIFT):  # how fast its clock may run against this host's
            truth = server + timedelta(seconds=(110.0 - read_at) * rate)
            assert clock.now() <= truth <= clock.deadline(0), (read_at, rate)
    assert clock.deadline(30) - clock.deadline(0) == timedelta(seconds=30)
    assert timedelta(seconds=4) <= clock.deadline(0) - clock.now() < timedelta(seconds=4.01)
