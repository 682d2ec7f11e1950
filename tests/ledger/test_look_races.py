"""Reconciliation's schedule (`paywire_reconcile_looks`) written by several workers at once: a
Janitor whose fetch failed, `reconcile()` in another worker, the provider's events. The
interleavings are forced with the emulator's held requests and rows held by a session of the
test's own, never by timing."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import timedelta

import pytest

from paywire import OutcomeUnknown
from paywire.ledger import Ledger
from paywire.ledger.model import Look, TransactionStatus, now
from paywire.serve import Janitor, PassReport
from paywire.service import PaymentService
from paywire.service.reconcile import ReconcileReport
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import FakePayApp, make_gateway
from tests.ledger.support import eur, step_past_life, wait_out_life, wait_until

S = TransactionStatus
FETCH = "/v1/payments/[^/]+$"


@pytest.fixture
def patient(fakepay: tuple[FakePayApp, str], ledger: Ledger) -> Iterator[PaymentService]:
    """A worker whose fetch waits as long as the emulator holds it (margin 0, as `fast_service`)."""
    gateway = make_gateway(fakepay[1], read_timeout=30)
    yield PaymentService(gateway, ledger, margin=0)
    gateway.close()


def _lost_captures(service: PaymentService, short: PaymentService, app: FakePayApp, count: int) -> list[str]:
    """A payment with `count` captures the provider made whose answers were lost (unknown), their
    requests past their life; their ids, oldest first. Only the lost captures go through `short`
    (FAST's life, waited out); the authorization, which must be answered, through `service`."""
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    ids = []
    for n in range(count):
        app.inject(Fault("drop_after", method="POST", path="/captures$"))
        with pytest.raises(OutcomeUnknown) as lost:  # each its own key: not a retry of the one before
            short.capture(payment.id, eur(f"{10 + n}.00"), idempotency_key=f"capture-{n}")
        ids.append(str(lost.value.transaction_id))
    wait_out_life(short, ids)
    return ids


def test_a_janitor_whose_fetch_failed_keeps_no_look_at_what_reconcile_settled_meanwhile(
        fast_service: PaymentService, patient: PaymentService, app: FakePayApp) -> None:
    """The Janitor claims the payment and asks the provider, which does not answer; meanwhile
    `reconcile()` in another worker settles the capture and forgets its look. The Janitor's failed
    look is then recorded from the ledger as it is: nothing for a transaction no longer open."""
    (txn,) = _lost_captures(patient, fast_service, app, 1)
    app.inject(Fault("status_after", status=500, method="GET", path=FETCH))
    app.inject(Fault("hold", method="GET", path=FETCH))
    passes: list[PassReport] = []
    janitor = threading.Thread(target=lambda: passes.append(Janitor(patient).run_pass()))
    janitor.start()
    try:
        assert app.wait_until_held()  # the payment claimed and leased, its fetch in the provider's hands
        report = patient.reconcile()
    finally:
        app.release_held()
        janitor.join(60)
    assert [(s.transaction_id, s.status) for s in report.settled] == [(txn, S.SUCCEEDED)]
    (done,) = passes
    assert [name for _, name in done.errors] == ["ProviderUnavailable"], done.errors  # its fetch failed
    assert patient.get_transaction(txn).status == S.SUCCEEDED
    assert patient.ledger.looks([txn]) == {}  # settled: no look is scheduled for it


def _waiting_on(dsn: str, holders: list[int]) -> int:
    """How many sessions wait for a lock one of `holders` has, directly or behind one that does."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "WITH first AS (SELECT pid FROM pg_stat_activity WHERE pg_blocking_pids(pid) && %s::int[]) "
            "SELECT count(*) FROM pg_stat_activity WHERE pg_blocking_pids(pid) && %s::int[] "
            "OR pg_blocking_pids(pid) && ARRAY(SELECT pid FROM first)", (holders, holders)).fetchone()
        return int(row[0]) if row else 0


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_janitors_failed_look_and_reconciles_look_never_deadlock(
        fast_service: PaymentService, patient: PaymentService, app: FakePayApp, ledger: Ledger,
        ledger_url: str, caplog: pytest.LogCaptureFixture) -> None:
    """`reconcile()` writes a payment's looks in its schedule's order (the one looked at first,
    first), the Janitor's failed look in the transactions' order: here they are opposite. Each
    takes the payment's lock first, so they queue there instead of each holding one look's row
    and waiting for the other's (PostgreSQL then aborts one: a settlement lost, or a failed look
    not recorded). Here each gets to its first look's row only once the other waits at its own."""
    import psycopg

    older, newer = _lost_captures(patient, fast_service, app, 2)
    with ledger.unit() as u:  # the newer was due first: reconcile() takes it first
        u.set_looks({newer: Look(1, now() - timedelta(seconds=2)), older: Look(1, now() - timedelta(seconds=1))})
    reports: list[ReconcileReport] = []
    passes: list[PassReport] = []
    app.inject(Fault("hold", method="GET", path=FETCH))
    worker = threading.Thread(target=lambda: reports.append(patient.reconcile()))
    worker.start()
    dsn, schema = ledger_url.split("?schema=")
    holders = [psycopg.connect(dsn), psycopg.connect(dsn)]
    janitor = threading.Thread(target=lambda: passes.append(Janitor(patient).run_pass()))
    try:
        assert app.wait_until_held()  # reconcile() read its list and asks the provider
        app.inject(Fault("status_after", status=500, method="GET", path=FETCH))
        app.inject(Fault("hold", method="GET", path=FETCH))
        janitor.start()
        assert app.wait_until_held(2)  # the Janitor claimed the payment, and its fetch fails
        for holder, txn in zip(holders, (older, newer), strict=True):
            holder.execute(f'SET search_path TO "{schema}"')
            holder.execute("SET lock_timeout = '20s'")  # a test gone wrong fails instead of hanging
            holder.execute("SELECT 1 FROM paywire_reconcile_looks WHERE transaction_id = %s FOR UPDATE", (txn,))
        pids = [holder.info.backend_pid for holder in holders]
        assert app.release_held()
        wait_until(lambda: _waiting_on(dsn, pids) == 2, "both workers wait to write the looks")
        holders[0].rollback()  # the older's row: free
        wait_until(lambda: _waiting_on(dsn, pids[1:]) == 2, "both wait on the newer's row, or on one that does")
        holders[1].rollback()
    finally:
        app.release_held()
        for holder in holders:
            holder.close()
        worker.join(60)
        janitor.join(60)
    (report,) = reports
    assert report.errors == ()  # not the deadlock's victim
    assert "could not record the failed look" not in caplog.text  # nor the Janitor
    assert sorted(s.transaction_id for s in report.settled) == sorted([older, newer])
    assert {patient.get_transaction(t).status for t in (older, newer)} == {S.SUCCEEDED}
    assert ledger.looks([older, newer]) == {}
    assert [name for _, name in passes[0].errors] == ["ProviderUnavailable"]


def test_a_transaction_an_event_settles_keeps_no_look(patient: PaymentService, app: FakePayApp,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """A sale the provider accepted and decides later: the Janitor looks at it (still processing)
    and schedules its next look; the provider's event then settles it, and the schedule forgets
    it, as when reconciliation settles one (nothing is left to look at)."""
    payment = patient.sale("fakepay", eur("12.00"), source="tok_pending")  # answered however loaded the machine
    (txn,) = patient.list_transactions(payment.id)
    step_past_life(patient, [txn.id], monkeypatch)
    report = Janitor(patient).run_pass()
    assert [s.transaction_id for s in report.unresolved] == [txn.id]
    assert patient.ledger.looks([txn.id])[txn.id].looks == 1
    headers, body = app.decide(payment.reference or "")
    assert patient.receive_webhook("fakepay", headers, body).status == "applied"
    assert patient.get_transaction(txn.id).status == S.SUCCEEDED
    assert patient.ledger.looks([txn.id]) == {}


def test_a_transaction_sent_again_and_answered_keeps_no_look(fast_service: PaymentService, patient: PaymentService,
                                                             app: FakePayApp) -> None:
    """A capture whose answer was lost, looked at by `reconcile()` while the provider did not
    answer (the look recorded), then retried under its key: the resend's answer settles it, and
    the schedule keeps nothing for it."""
    (txn,) = _lost_captures(patient, fast_service, app, 1)
    app.inject(Fault("status", status=500, method="GET", path=FETCH))
    report = patient.reconcile()
    assert [name for name, _ in report.errors] == [patient.get_transaction(txn).payment_id]
    assert patient.ledger.looks([txn])[txn].looks == 0  # looked at, nothing learnt
    payment = patient.capture(str(patient.get_transaction(txn).payment_id), eur("10.00"),
                              idempotency_key="capture-0")
    assert payment.captured == eur("10.00")
    assert patient.get_transaction(txn).status == S.SUCCEEDED
    assert patient.ledger.looks([txn]) == {}


def test_reconciles_look_keeps_the_lease_of_a_janitor_asking_the_provider(
        patient: PaymentService, app: FakePayApp, monkeypatch: pytest.MonkeyPatch) -> None:
    """A sale the provider is still processing: the Janitor claims it and asks the provider (its
    lease keeps other Janitors off until its fetch can no longer answer); `reconcile()` in another
    worker looks at it meanwhile and learns nothing new. Its look keeps the lease: a second
    Janitor still finds nothing due."""
    payment = patient.sale("fakepay", eur("12.00"), source="tok_pending")  # answered however loaded the machine
    (txn,) = patient.list_transactions(payment.id)
    step_past_life(patient, [txn.id], monkeypatch)
    app.inject(Fault("hold", method="GET", path=FETCH))
    passes: list[PassReport] = []
    janitor = threading.Thread(target=lambda: passes.append(Janitor(patient).run_pass()))
    janitor.start()
    try:
        assert app.wait_until_held()
        lease = patient.ledger.looks([txn.id])[txn.id]
        assert lease.next_at - now() > timedelta(seconds=20)  # the fetch's longest life (30 s read)
        report = patient.reconcile()
        assert [s.transaction_id for s in report.unresolved] == [txn.id] and report.errors == ()
        assert patient.ledger.looks([txn.id]) == {txn.id: lease}
        assert Janitor(patient).due(patient.ledger.now()) == {}  # the ledger's clock, as a pass asks
    finally:
        app.release_held()
        janitor.join(60)
    assert [s.transaction_id for s in passes[0].unresolved] == [txn.id]


def test_reconcile_with_a_limit_forgets_the_looks_of_every_transaction_it_settled(
        fast_service: PaymentService, patient: PaymentService, app: FakePayApp) -> None:
    """Two captures whose answers were lost, both looked at once (the provider did not answer).
    `reconcile(limit=1)` lists only one of them, but settles the payment whole: neither keeps a
    look."""
    older, newer = _lost_captures(patient, fast_service, app, 2)
    app.inject(Fault("status", status=500, method="GET", path=FETCH))
    assert patient.reconcile().errors
    assert set(patient.ledger.looks([older, newer])) == {older, newer}
    report = patient.reconcile(limit=1)
    assert report.errors == ()
    assert {patient.get_transaction(t).status for t in (older, newer)} == {S.SUCCEEDED}
    assert patient.ledger.looks([older, newer]) == {}
