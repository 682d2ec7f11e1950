"""The Janitor in-process: never before a request's `settle_after`, backoff per transaction, and
a claim that skips a payment another worker holds."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paywire import Money
from paywire.ledger import Ledger
from paywire.ledger.model import Look, now
from paywire.serve import Backoff, Janitor, PassReport
from paywire.service import PaymentService
from tests.ledger.fakepay import make_gateway
from tests.ledger.support import FAST, PATIENT, step_past_life, wait_out_life, wait_until
from tests.serve.support import CountingFakePay

pytestmark = pytest.mark.postgres


@pytest.fixture
def patient(provider: tuple[CountingFakePay, str], pg_ledger: Ledger) -> Iterator[PaymentService]:
    """A service whose requests may land for an hour (margin 3600 s), answered however loaded the
    machine."""
    gateway = make_gateway(provider[1], **PATIENT)
    yield PaymentService(gateway, pg_ledger, margin=3600)
    gateway.close()


def test_a_transaction_is_never_looked_at_before_its_settle_after(
        answered: PaymentService, patient: PaymentService, provider: tuple[CountingFakePay, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    app, _ = provider
    young = patient.sale("fakepay", Money.of("5.00", "EUR"), source="tok_pending")
    old = answered.sale("fakepay", Money.of("6.00", "EUR"), source="tok_pending")
    step_past_life(answered, [t.id for t in answered.list_transactions(old.id)], monkeypatch)
    report = Janitor(answered).run_pass()
    assert app.fetches.get(old.reference or "") == 1
    assert young.reference not in app.fetches  # its request may still land for an hour
    assert [s.payment_id for s in report.unresolved] == [old.id]  # the provider is still processing it


def test_an_undecided_transaction_waits_its_backoff_whichever_worker_looks(
        answered: PaymentService, provider: tuple[CountingFakePay, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    app, _ = provider
    payment = answered.sale("fakepay", Money.of("8.00", "EUR"), source="tok_pending")
    (txn,) = answered.list_transactions(payment.id)
    step_past_life(answered, [txn.id], monkeypatch)
    Janitor(answered, backoff=Backoff(first=3600, cap=3600)).run_pass()
    Janitor(answered, backoff=Backoff(first=3600, cap=3600)).run_pass()  # another worker: the ledger's schedule says not yet
    assert app.fetches[payment.reference or ""] == 1
    look = answered.ledger.looks([txn.id])[txn.id]
    assert look.looks == 1 and look.next_at - now() > timedelta(minutes=59)
    app.decide(payment.reference or "")
    with answered.ledger.unit() as u:  # an hour later, as far as the schedule knows
        u.set_looks({txn.id: Look(1, u.now())})
    assert [s.status for s in Janitor(answered).run_pass().settled] == ["succeeded"]
    assert app.fetches[payment.reference or ""] == 2
    assert answered.ledger.looks([txn.id]) == {}  # settled: forgotten


def test_a_transaction_open_for_a_thousand_looks_keeps_its_capped_backoff(
        answered: PaymentService, provider: tuple[CountingFakePay, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A transaction the provider leaves undecided for weeks has been looked at over a thousand
    times: its next wait is still the cap, the look is recorded, and the pass reports no error
    (`factor ** looks` overflowing a float must not stop the settling unit)."""
    app, _ = provider
    payment = answered.sale("fakepay", Money.of("9.00", "EUR"), source="tok_pending")
    (txn,) = answered.list_transactions(payment.id)
    step_past_life(answered, [txn.id], monkeypatch)
    with answered.ledger.unit() as u:
        u.set_looks({txn.id: Look(1500, u.now())})
    backoff = Backoff(first=15, cap=900)
    report = Janitor(answered, backoff=backoff).run_pass()
    assert report.errors == ()
    assert [s.payment_id for s in report.unresolved] == [payment.id]
    assert app.fetches[payment.reference or ""] == 1
    look = answered.ledger.looks([txn.id])[txn.id]
    assert look.looks == 1501 and look.next_at - now() > timedelta(seconds=850)


@settings(max_examples=200, deadline=None)
@given(looks=st.integers(min_value=0, max_value=10**6), first=st.floats(min_value=0.001, max_value=10**4),
       factor=st.floats(min_value=1.0, max_value=10.0), cap=st.floats(min_value=0.001, max_value=10**6))
def test_backoff_delay_is_never_more_than_its_cap_however_many_looks(looks: int, first: float, factor: float,
                                                                     cap: float) -> None:
    delay = Backoff(first=first, factor=factor, cap=cap).delay(looks)
    assert 0 < delay <= cap


def test_older_transactions_waiting_their_backoff_never_starve_a_due_one(
        answered: PaymentService, provider: tuple[CountingFakePay, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """More open transactions than one pass reads (`batch`), the oldest all waiting out their
    backoff (a provider taking days to decide): a newer one that is due is still looked at."""
    app, _ = provider
    waiting = [answered.sale("fakepay", Money.of(f"{i}.00", "EUR"), source="tok_pending") for i in (1, 2)]
    due = answered.sale("fakepay", Money.of("3.00", "EUR"), source="tok_pending")
    txns = [t for p in (*waiting, due) for t in answered.list_transactions(p.id)]
    step_past_life(answered, [t.id for t in txns], monkeypatch)
    with answered.ledger.unit() as u:
        u.set_looks({t.id: Look(5, now() + timedelta(hours=1)) for t in txns[:2]})
    report = Janitor(answered, batch=2).run_pass()
    assert [s.payment_id for s in report.unresolved] == [due.id]
    assert app.fetches.get(due.reference or "") == 1
    assert not any(p.reference in app.fetches for p in waiting)


def test_an_older_transaction_whose_fetch_keeps_failing_never_starves_a_newer_one(
        answered: PaymentService, provider: tuple[CountingFakePay, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One transaction per pass (`batch`), the oldest one's fetch failing (a 5xx) every time: its
    failed look waits its backoff, so the next pass settles the newer one."""
    from paywire.testing.emulator import Fault

    app, _ = provider
    failing, newer = (answered.sale("fakepay", Money.of(f"{i}.00", "EUR"), source="tok_pending") for i in (1, 2))
    step_past_life(answered, [t.id for p in (failing, newer) for t in answered.list_transactions(p.id)], monkeypatch)
    app.decide(newer.reference or "")
    app.inject(Fault("status", status=500, method="GET", path=f"/v1/payments/{failing.reference}$", times=100))
    janitor = Janitor(answered, batch=1)
    reports = [janitor.run_pass() for _ in range(2)]
    assert [e[0] for e in reports[0].errors] == [failing.id] and reports[1].errors == ()
    assert [(s.payment_id, s.status) for s in reports[1].settled] == [(newer.id, "succeeded")]
    (txn,) = answered.list_transactions(failing.id)
    assert answered.ledger.looks([txn.id])[txn.id].looks == 1 and txn.status == "accepted"  # nothing else written


def test_a_transaction_due_again_before_a_pass_ends_never_starves_one_due_longer(
        answered: PaymentService, provider: tuple[CountingFakePay, str],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """One transaction per pass (`batch`), the oldest one's fetch failing every time, and its
    backoff over again by the next pass (a provider's outage, a backlog whose pass lasts longer
    than the backoff's cap): a newer one, never looked at, still gets its look. A pass takes the
    transactions looked at least recently first, not the oldest."""
    from paywire.testing.emulator import Fault

    app, _ = provider
    failing, newer = (answered.sale("fakepay", Money.of(f"{i}.00", "EUR"), source="tok_pending") for i in (1, 2))
    step_past_life(answered, [t.id for p in (failing, newer) for t in answered.list_transactions(p.id)], monkeypatch)
    app.decide(newer.reference or "")
    app.inject(Fault("status", status=500, method="GET", path=f"/v1/payments/{failing.reference}$", times=100))
    (txn,) = answered.list_transactions(failing.id)
    janitor = Janitor(answered, batch=1)
    first = janitor.run_pass()
    assert [e[0] for e in first.errors] == [failing.id]
    with answered.ledger.unit() as u:  # its backoff over, as after a pass longer than it
        u.payment(failing.id, lock=True)
        u.set_looks({txn.id: Look(answered.ledger.looks([txn.id])[txn.id].looks, u.now())})
    second = janitor.run_pass()
    assert second.errors == (), second.errors
    assert [(s.payment_id, s.status) for s in second.settled] == [(newer.id, "succeeded")]


def test_a_pass_reads_no_further_than_the_first_look_not_yet_due(
        answered: PaymentService, provider: tuple[CountingFakePay, str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Many transactions open for days (a bank transfer's), each waiting its backoff: a pass
    reads them by their next look and stops at the first not yet due, instead of every open one
    each pass."""
    sales = [answered.sale("fakepay", Money.of(f"{i}.00", "EUR"), source="tok_pending") for i in (1, 2, 3)]
    txns = [t for p in sales for t in answered.list_transactions(p.id)]
    step_past_life(answered, [t.id for t in txns], monkeypatch)
    with answered.ledger.unit() as u:
        u.set_looks({txns[0].id: Look(1, now() - timedelta(seconds=1)),
                     **{t.id: Look(5, now() + timedelta(hours=1)) for t in txns[1:]}})
    read: list[int] = []
    list_by_look = answered.ledger.list_by_look

    def counted(**kwargs: object) -> object:
        read.append(int(kwargs["limit"]))  # type: ignore[call-overload]
        return list_by_look(**kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(answered.ledger, "list_by_look", counted)
    due = Janitor(answered, batch=2).due(answered.ledger.now())  # the ledger's clock, as a pass asks
    assert list(due) == [sales[0].id]
    assert read == [2]  # one page: it ends on a look an hour away


def test_backoff_grows_per_look_and_never_precedes_settle_after() -> None:
    from paywire.ledger.model import Transaction

    backoff = Backoff(first=10, factor=3, cap=100)
    assert [backoff.delay(n) for n in (1, 2, 3, 4)] == [10, 30, 90, 100]
    at = now()
    young = Transaction.__new__(Transaction)
    object.__setattr__(young, "settle_after", at + timedelta(hours=1))
    assert backoff.after(young, None, at) == Look(1, at + timedelta(hours=1))
    assert backoff.after(young, Look(3, at), at + timedelta(hours=2)) == Look(4, at + timedelta(hours=2, seconds=100))


def test_a_payment_another_worker_holds_is_skipped(answered: PaymentService, provider: tuple[CountingFakePay, str],
                                                   pg_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    from paywire.ledger import open_ledger

    app, _ = provider
    payment = answered.sale("fakepay", Money.of("4.00", "EUR"), source="tok_pending")
    step_past_life(answered, [t.id for t in answered.list_transactions(payment.id)], monkeypatch)
    other = open_ledger(pg_url)
    try:
        with other.unit() as u:
            assert u.claim_payment(payment.id) is not None  # another worker is settling it
            report = Janitor(answered).run_pass()
        assert report.skipped == (payment.id,) and not report.settled
        assert payment.reference not in app.fetches
    finally:
        other.close()


def test_a_pass_asked_to_stop_finishes_the_payment_in_hand_and_goes_no_further(
        answered: PaymentService, provider: tuple[CountingFakePay, str], monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    from paywire.testing.emulator import Fault
    from tests.ledger.support import wait_until

    app, _ = provider
    payments = [answered.sale("fakepay", Money.of(f"{i}.00", "EUR"), source="tok_pending") for i in (1, 2, 3)]
    step_past_life(answered, [t.id for p in payments for t in answered.list_transactions(p.id)], monkeypatch)
    for payment in payments:
        app.decide(payment.reference or "")
    app.inject(Fault("latency", seconds=1.0, method="GET", path="/v1/payments/", times=3))
    patient_gateway = make_gateway(provider[1], read_timeout=10)  # a slow answer, not a lost one
    janitor = Janitor(PaymentService(patient_gateway, answered.ledger))
    reports = []
    worker = threading.Thread(target=lambda: reports.append(janitor.run_pass()))
    worker.start()
    wait_until(lambda: len(app.fetches) == 1, "the first payment is being fetched")
    janitor.stopping.set()
    worker.join(60)
    patient_gateway.close()
    (report,) = reports
    assert report.stopped and len(report.settled) == 1
    statuses = sorted(answered.list_transactions(p.id)[0].status for p in payments)
    assert statuses == ["accepted", "accepted", "succeeded"]  # one settled whole, the others untouched


@pytest.mark.slow
def test_a_worker_that_died_after_sending_is_settled_by_the_janitor(
        shop: PaymentService, answered: PaymentService, provider: tuple[CountingFakePay, str], pg_url: str) -> None:
    from tests.ledger.conftest import finish_workers, start_worker

    app, url = provider
    assert app.count("authorize") == 0
    job = {"url": url, "ledger": pg_url, "crash": "after_send", "crash_command": "authorize",
           "ops": [["authorize", "fakepay", "25.00", "order-42"]], **FAST, "margin": 0}
    finish_workers([start_worker(job)])
    (txn,) = shop.list_transactions(statuses=["pending"])  # sent, never recorded
    wait_until(lambda: app.count("authorize") == 1, "the emulator applied it (its answer may come late)")
    assert app.count("authorize") == 1  # and applied
    wait_out_life(shop, [txn.id])
    report = Janitor(answered).run_pass()
    assert report.marked_unknown == (txn.id,)
    assert [(s.transaction_id, s.status) for s in report.settled] == [(txn.id, "succeeded")]
    assert shop.get_payment(str(txn.payment_id)).authorized == Money.of("25.00", "EUR")


def test_the_provider_is_asked_with_no_lock_held_and_a_second_worker_keeps_off(
        answered: PaymentService, provider: tuple[CountingFakePay, str], pg_url: str,
        monkeypatch: pytest.MonkeyPatch) -> None:
    import threading

    import psycopg

    from paywire.testing.emulator import Fault
    from tests.ledger.support import wait_until

    app, _ = provider
    payment = answered.sale("fakepay", Money.of("7.00", "EUR"), source="tok_pending")
    step_past_life(answered, [t.id for t in answered.list_transactions(payment.id)], monkeypatch)
    app.decide(payment.reference or "")
    app.inject(Fault("latency", seconds=5.0, method="GET", path="/v1/payments/", times=1))
    patient_gateway = make_gateway(provider[1], read_timeout=30)
    janitor = Janitor(PaymentService(patient_gateway, answered.ledger))
    reports = []
    worker = threading.Thread(target=lambda: reports.append(janitor.run_pass()))
    worker.start()
    try:
        wait_until(lambda: len(app.fetches) == 1, "the provider is being asked")
        dsn, schema = pg_url.split("?schema=")
        with psycopg.connect(dsn) as conn:  # the payment's row is free: webhooks and operations go on
            conn.execute(f'SET search_path TO "{schema}"')
            assert conn.execute("SELECT id FROM paywire_payments WHERE id = %s FOR UPDATE NOWAIT",
                                (payment.id,)).fetchone() == (payment.id,)
            conn.rollback()
        second = Janitor(answered).run_pass()  # another worker: the lease keeps it off this payment
        assert not second.settled and not second.skipped and len(app.fetches) == 1
    finally:
        worker.join(60)
        patient_gateway.close()
    assert [s.status for s in reports[0].settled] == ["succeeded"]
    assert app.fetches[payment.reference or ""] == 1


def test_an_event_stored_unmatched_while_a_pass_learns_its_payment_is_applied(
        shop: PaymentService, answered: PaymentService, provider: tuple[CountingFakePay, str], pg_url: str) -> None:
    """An authorization whose answer was lost, its event stored unmatched; while a pass settles
    it (learning the payment's reference, its unit not yet committed), the event of a capture
    made in the provider's dashboard comes and cannot see that reference either: it is stored
    unmatched too, and its delivery waits for the unit indexing the reference to end. The pass
    applies it, in the unit that learnt the reference (which looks for waiting events again after
    applying one) or at its end (`match_unmatched`), so that capture is not left out of the
    ledger for good."""
    import json
    import threading

    import psycopg

    from paywire import OutcomeUnknown, Subject
    from paywire.testing.emulator import Fault
    from tests.ledger.support import in_thread, wait_until

    app, _ = provider
    app.inject(Fault("drop_after", method="POST", path="/v1/payments$"))
    with pytest.raises(OutcomeUnknown):
        shop.authorize("fakepay", Money.of("20.00", "EUR"), source="tok_ok", idempotency_key="order-9")
    (payment,) = shop.list_payments()
    ((headers, body),) = app.outbox  # the authorization's event: no payment knows its reference yet
    assert shop.receive_webhook("fakepay", headers, body).status == "unmatched"
    first = json.loads(body)
    wait_out_life(shop, [t.id for t in shop.list_transactions(payment.id)])
    answered.gateway.execute("fakepay", "capture", Subject(reference=first["reference"], amount=Money.of("5.00", "EUR"),
                                                           idempotency_key="dashboard-1"))
    captured_headers, captured_body = app.outbox[-1]

    dsn, schema = pg_url.split("?schema=")
    reports: list[PassReport] = []
    with psycopg.connect(dsn) as holder:  # holds the first event's row: the pass applies it, then waits
        holder.execute(f'SET search_path TO "{schema}"')
        holder.execute("SELECT event_id FROM paywire_events WHERE event_id = %s FOR UPDATE", (first["id"],))
        pid = holder.info.backend_pid
        janitor = threading.Thread(target=lambda: reports.append(Janitor(answered).run_pass()))
        janitor.start()
        wait_until(lambda: _blocked_by(dsn, pid), "the pass waits, the payment's reference learnt")
        delivering: list[int] = []

        def deliver() -> object:
            delivering.append(shop.ledger.connection().info.backend_pid)  # type: ignore[attr-defined]
            return shop.receive_webhook("fakepay", captured_headers, captured_body)

        delivery, receipts = in_thread(deliver)
        wait_until(lambda: receipts or (delivering and _waiting(dsn, delivering[0])),
                   "the delivery stored its event and waits for the pass's unit")
        holder.rollback()
        janitor.join(60)
        delivery.join(60)
    assert [getattr(r, "status", r) for r in receipts] == ["unmatched"]  # the pass's unit applied it
    (report,) = reports
    assert shop.ledger.get_event("fakepay", first["id"]).status == "applied"
    assert shop.ledger.get_event("fakepay", json.loads(captured_body)["id"]).status == "applied"
    assert shop.get_payment(payment.id).captured == Money.of("5.00", "EUR")
    assert report.errors == ()


def _waiting(dsn: str, pid: int) -> bool:
    """Whether session `pid` waits for a lock."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT wait_event_type FROM pg_stat_activity WHERE pid = %s", (pid,)).fetchone()
        return row is not None and row[0] == "Lock"


def _blocked_by(dsn: str, holder_pid: int) -> bool:
    """Whether some session waits for a lock the holder's session has."""
    import psycopg

    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                           (holder_pid,)).fetchone()
        return bool(row and row[0] > 0)


def test_events_for_payments_paywire_never_made_do_not_hide_one_a_pass_can_match(
        answered: PaymentService, provider: tuple[CountingFakePay, str]) -> None:
    """A provider account shared with other systems sends events about payments paywire never
    made: they stay unmatched for good. More of them than a pass looks at (`batch`) must not keep
    it from applying an event stored unmatched whose payment the ledger now knows."""
    from paywire import Subject
    from paywire.ledger import StoredEvent

    app, _ = provider
    payment = answered.authorize("fakepay", Money.of("20.00", "EUR"), source="tok_ok")
    for n in range(3):
        headers, body = app.event(f"evt_elsewhere_{n}", "captured", f"fp_elsewhere_{n}", amount=100)
        assert answered.receive_webhook("fakepay", headers, body).status == "unmatched"
    answered.gateway.execute("fakepay", "capture", Subject(reference=payment.reference, amount=Money.of("5.00", "EUR"),
                                                           idempotency_key="dashboard-1"))
    event = answered.gateway.parse_webhook("fakepay", *app.outbox[-1])
    with answered.ledger.unit() as u:  # as a race leaves it: stored unmatched, naming a payment the ledger knows
        assert u.insert_event(StoredEvent(
            provider=event.provider, event_id=event.id, method="fakepay", type=event.type, kind=event.kind,
            reference=event.reference, references=event.references, amount=event.amount, total=event.total,
            status="unmatched", received_at=now()))
    report = Janitor(answered, batch=2).run_pass()
    assert answered.ledger.get_event("fakepay", event.id).status == "applied"
    assert answered.get_payment(payment.id).captured == Money.of("5.00", "EUR")
    assert report.applied == 1


def test_a_pass_counts_the_events_it_applied_when_others_cannot_be(
        answered: PaymentService, provider: tuple[CountingFakePay, str], pg_ledger: Ledger) -> None:
    """Stored unmatched events of payments whose method the configuration no longer has cannot be
    applied, more of them than a pass looks at (`batch`); one stored after them can: the pass
    applies it, its report counts it, and the failure is reported."""
    from paywire import Retry, Subject
    from paywire.gateway import Gateway
    from paywire.ledger import StoredEvent

    app, _ = provider

    def stored_unmatched(method: str) -> str:
        event = answered.gateway.parse_webhook(method, *app.outbox[-1])
        with answered.ledger.unit() as u:  # as a race leaves it: stored unmatched, naming a payment the ledger knows
            assert u.insert_event(StoredEvent(
                provider=event.provider, event_id=event.id, method=method, type=event.type, kind=event.kind,
                reference=event.reference, references=event.references, amount=event.amount, total=event.total,
                status="unmatched", received_at=now()))
        return event.id

    stuck = []
    for n in range(3):
        gone = answered.authorize("fakepay_single", Money.of("10.00", "EUR"), source="tok_ok")
        answered.gateway.execute(gone.method, "capture", Subject(reference=gone.reference, amount=Money.of("1.00", "EUR"),
                                                                 idempotency_key=f"dashboard-gone-{n}"))
        stuck.append(stored_unmatched("fakepay_single"))
    kept = answered.authorize("fakepay", Money.of("20.00", "EUR"), source="tok_ok")
    answered.gateway.execute(kept.method, "capture", Subject(reference=kept.reference, amount=Money.of("5.00", "EUR"),
                                                             idempotency_key="dashboard-kept"))
    waiting = stored_unmatched("fakepay")
    full = answered.gateway.methods.get("fakepay")
    with Gateway([full], plugins=answered.gateway.plugins, retry=Retry.never()) as gateway:  # fakepay_single removed
        report = Janitor(PaymentService(gateway, pg_ledger, margin=0), batch=2).run_pass()
    assert pg_ledger.get_event("fakepay", waiting).status == "applied"
    assert report.applied == 1
    assert report.errors == (("events", "ConfigurationError"),)
    assert [pg_ledger.get_event("fakepay", event).status for event in stuck] == ["unmatched"] * 3
    assert answered.get_payment(kept.id).captured == Money.of("5.00", "EUR")
