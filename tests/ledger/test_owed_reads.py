"""A payment owes a read from the provider when an answer or an event said the ledger is behind it
(a resend's success, perhaps the provider's stored answer to the first attempt; a refusal with
`state_conflict`; a success its payment's total cannot take in, standing on a floor the provider
reported; an event that leaves the ledger offering what the provider may no longer hold).
The service reads it at once; the mark that it owes one is written with what made it owe one, so
when that read fails (the provider unreachable) or never runs (the worker stopped), `reconcile()`
and the Janitor read it later, on the schedule other looks follow. A ledger without marks reads
nothing more. Against the FakePay emulator over loopback HTTP, on both ledger backends."""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest

from paywire import EventKind, OutcomeUnknown, PaywireError
from paywire.ledger import Payment, PaymentState, SQLiteLedger
from paywire.ledger.model import Look
from paywire.serve import Backoff, Janitor
from paywire.service import MatchReport, PaymentService, WebhookReceipt
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import FakePayApp, make_gateway
from tests.ledger.support import agree, eur, ledger_totals, step_past, store_unmatched

READS = r"^/v1/payments/[^/]+$"  # the fetch: GET /v1/payments/<id>


def _unreachable(app: FakePayApp) -> None:
    """Every read of a payment fails (500) until the faults are cleared."""
    app.inject(Fault(kind="status", status=500, method="GET", path=READS, times=1_000))


def _reads(app: FakePayApp, since: int) -> int:
    """Reads of a payment the provider answered since `since` calls."""
    return sum(1 for method, path in app.calls[since:] if method == "GET")


def _refused_reads(app: FakePayApp) -> int:
    """Reads of a payment refused while the provider was unreachable (`_unreachable`)."""
    return sum(1_000 - left for fault, left in app._faults if fault.kind == "status" and fault.method == "GET")


def _resend_of_a_refunded_capture(service: PaymentService, app: FakePayApp) -> Callable[[], object]:
    """The same capture call again, whose first answer was lost and which the provider refunded
    since: it replays its stored answer (captured, nothing refunded)."""
    payment = service.authorize("fakepay", eur("10.00"), source="tok_ok")
    app.inject(Fault("drop_after", method="POST", path="/captures$"))
    with pytest.raises(OutcomeUnknown):
        service.capture(payment.id, eur("10.00"))
    app.refund_beside(app.payments[payment.reference or ""]["_captures"][0])
    return lambda: service.capture(payment.id, eur("10.00"))


def _void_of_a_lapsed_authorization(service: PaymentService, app: FakePayApp) -> Callable[[], object]:
    """A void of an authorization that lapsed at the provider, which refuses it (`state_conflict`)."""
    payment = service.authorize("fakepay", eur("10.00"), source="tok_ok")
    app.lapse(payment.reference or "")
    return lambda: service.void(payment.id)


def _declined_capture(service: PaymentService, app: FakePayApp) -> tuple[str, tuple[dict[str, str], bytes]]:
    """A payment whose only capture, of all that was authorized, was declined at settlement, and
    the delivery of the event saying so; the provider released the authorization with it, which
    the event does not say."""
    payment = service.authorize("fakepay", eur("10.00"), source="tok_ok")
    payment = service.capture(payment.id, eur("10.00"), final=False)
    cap_id = service.list_transactions(payment.id)[-1].provider_reference or ""
    with app.lock:
        app.captures[cap_id]["status"] = "failed"
        app.payments[payment.reference or ""].update(captured=0, status="voided", closed=True)
    return payment.id, app.event("evt_declined", EventKind.REVERSED, cap_id,
                                 references={"payment": payment.reference or ""})


def _event_of_a_declined_capture(service: PaymentService, app: FakePayApp) -> Callable[[], object]:
    _, event = _declined_capture(service, app)
    return lambda: service.receive_webhook("fakepay", *event)


def _event_of_a_refund_decided_on_a_floor(service: PaymentService, app: FakePayApp) -> Callable[[], object]:
    """The event of a refund the provider accepted and has decided, beside a dashboard refund
    that reconciliation read (a floor): its success cannot be added to the refunded total."""
    payment = service.sale("fakepay", eur("50.00"), source="tok_async")
    app.refund_beside(payment.references["capture"], 1_000)
    service.reconcile(payment_id=payment.id)
    service.refund(payment.id, eur("20.00"))
    [refund] = app.undecided()
    event = app.decide(refund)
    return lambda: service.receive_webhook("fakepay", *event)


def _resent_capture_read_back_fails(service: PaymentService, app: FakePayApp) -> str:
    """A capture whose answer was lost, refunded at the provider since, resent: the provider
    replays its stored answer (captured, nothing refunded) and the read after it fails."""
    resend = _resend_of_a_refunded_capture(service, app)
    _unreachable(app)
    payment = resend()
    assert isinstance(payment, Payment)
    assert ledger_totals(payment) == (1_000, 1_000, 0)  # the replay, as recorded: more than the provider holds
    assert app.totals(payment.reference or "") == (1_000, 1_000, 1_000)
    return payment.id


def _refusal_read_fails(service: PaymentService, app: FakePayApp) -> str:
    void = _void_of_a_lapsed_authorization(service, app)
    _unreachable(app)
    with pytest.raises(PaywireError) as refused:
        void()
    assert refused.value.state_conflict and refused.value.details["reconciled"] is False
    payment_id = str(refused.value.payment_id)
    assert service.get_payment(payment_id).state == PaymentState.AUTHORIZED  # a hold the provider no longer has
    return payment_id


def _event_read_fails(service: PaymentService, app: FakePayApp) -> str:
    deliver = _event_of_a_declined_capture(service, app)
    _unreachable(app)
    receipt = deliver()
    assert isinstance(receipt, WebhookReceipt) and receipt.status == "applied"
    payment = service.get_payment(str(receipt.payment_id))
    assert (payment.state, payment.capturable) == (PaymentState.AUTHORIZED, eur("10.00"))  # offered again
    return payment.id


def _refund_beside_a_dashboard_refund_read_back_fails(service: PaymentService, app: FakePayApp) -> str:
    """A refund after one made in the provider's dashboard, which reconciliation read as the
    provider's refunded total (a floor, no transaction of the ledger's): the new refund cannot be
    added to that total, and the read after it fails."""
    payment = service.sale("fakepay", eur("50.00"), source="tok_ok")
    app.refund_beside(payment.references["capture"], 1_000)
    service.reconcile(payment_id=payment.id)
    _unreachable(app)
    payment = service.refund(payment.id, eur("20.00"))
    assert ledger_totals(payment) == (5_000, 5_000, 2_000)  # the larger of the two: less than the provider's
    assert payment.refundable == eur("30.00")  # so more left to refund than the provider has
    assert app.totals(payment.reference or "") == (5_000, 5_000, 3_000)
    return payment.id


def _as_the_provider_holds(service: PaymentService, app: FakePayApp, payment_id: str) -> None:
    """`agree`, and a hold the provider released is released in the ledger too (FakePay keeps its
    authorized total when it voids)."""
    agree(service, app, payment_id)
    payment = service.get_payment(payment_id)
    if app.payments[payment.reference or ""]["status"] == "voided":
        assert (payment.state, payment.capturable) == (PaymentState.VOIDED, eur("0.00"))


OWING = {"resend": _resent_capture_read_back_fails, "state_conflict": _refusal_read_fails,
         "event": _event_read_fails, "absorbed": _refund_beside_a_dashboard_refund_read_back_fails}


@pytest.mark.parametrize("path", sorted(OWING))
def test_a_payment_whose_catch_up_read_failed_is_read_by_the_next_reconcile(
        service: PaymentService, app: FakePayApp, path: str) -> None:
    payment_id = OWING[path](service, app)
    app.clear_faults()
    report = service.reconcile()  # no payment named: the mark is what finds it
    _as_the_provider_holds(service, app, payment_id)
    assert report.caught_up == (payment_id,) and report.clean, report
    assert service.ledger.owed_reads() == {}
    since = len(app.calls)
    service.reconcile()
    assert _reads(app, since) == 0  # read once: the mark is gone


@pytest.mark.parametrize("path", sorted(OWING))
def test_reconcile_while_the_provider_is_still_unreachable_keeps_the_mark(
        service: PaymentService, app: FakePayApp, path: str) -> None:
    payment_id = OWING[path](service, app)
    report = service.reconcile()
    assert report.caught_up == () and [e[0] for e in report.errors] == [payment_id], report
    assert payment_id in service.ledger.owed_reads()
    app.clear_faults()
    assert service.reconcile().caught_up == (payment_id,)
    _as_the_provider_holds(service, app, payment_id)


def test_a_read_that_settles_the_payment_leaves_no_mark(service: PaymentService, app: FakePayApp) -> None:
    payment = service.authorize("fakepay", eur("10.00"), source="tok_ok")
    app.lapse(payment.reference or "")
    with pytest.raises(PaywireError) as refused:
        service.void(payment.id)
    assert refused.value.details["reconciled"] is True
    assert service.ledger.owed_reads() == {}
    since = len(app.calls)
    assert service.reconcile().caught_up == ()
    assert _reads(app, since) == 0


@pytest.mark.parametrize("start", [_resend_of_a_refunded_capture, _void_of_a_lapsed_authorization,
                                   _event_of_a_declined_capture, _event_of_a_refund_decided_on_a_floor],
                         ids=["resend", "state_conflict", "event", "event_absorbed"])
def test_the_mark_is_in_the_ledger_before_the_read_is_sent(
        service: PaymentService, app: FakePayApp, start: Callable[[PaymentService, FakePayApp], Callable[[], object]]
) -> None:
    """Written in the unit that records the answer or applies the event, so a worker that stops
    between that unit and its read leaves the mark behind; the read, once made, clears it."""
    call = start(service, app)
    app.inject(Fault("hold", method="GET", path=READS))
    ended: list[object] = []

    def run() -> None:
        try:
            ended.append(call())
        except PaywireError as exc:
            ended.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    try:
        assert app.wait_until_held(1, timeout=30)
        [payment_id] = service.ledger.owed_reads()  # committed while the read is on its way
    finally:
        app.release_held()
        worker.join(30)
    [result] = ended
    if isinstance(result, PaywireError):
        assert result.details["reconciled"] is True
    assert service.ledger.owed_reads() == {}
    _as_the_provider_holds(service, app, payment_id)


def test_a_ledger_without_marks_reads_nothing_more(service: PaymentService, app: FakePayApp) -> None:
    for _ in range(3):
        payment = service.authorize("fakepay", eur("10.00"), source="tok_ok")
        service.capture(payment.id, eur("4.00"))
    since = len(app.calls)
    report = service.reconcile()
    assert report.clean and report.caught_up == () and _reads(app, since) == 0


def test_reconcile_reads_at_most_limit_marked_payments_least_recently_looked_at_first(
        service: PaymentService, app: FakePayApp) -> None:
    owing = [_refusal_read_fails(service, app) for _ in range(3)]
    app.clear_faults()
    first = service.reconcile(limit=2).caught_up
    assert len(first) == 2 and set(first) < set(owing)
    assert service.reconcile(limit=2).caught_up == tuple(set(owing) - set(first))
    assert service.ledger.owed_reads() == {}
    for payment_id in owing:
        _as_the_provider_holds(service, app, payment_id)


def test_the_janitor_reads_a_marked_payment_on_its_backoff(patient: PaymentService, app: FakePayApp,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    service = patient  # every answer read however loaded the machine: the read's lease is stepped past
    payment_id = _refusal_read_fails(service, app)
    lease = service.ledger.owed_reads()[payment_id]
    assert lease.looks == 0
    step_past(service, lease.next_at, monkeypatch)  # the refusing call's own read's life
    janitor = Janitor(service, backoff=Backoff(first=3600, cap=3600))
    refused = _refused_reads(app)  # the refusing call's own read
    report = janitor.run_pass()
    assert [e[0] for e in report.errors] == [payment_id] and _refused_reads(app) == refused + 1
    look = service.ledger.owed_reads()[payment_id]
    assert look.looks == 1 and look.next_at - service.ledger.now() > timedelta(minutes=59)
    janitor.run_pass()  # not due: an unreachable provider is not asked again meanwhile
    assert _refused_reads(app) == refused + 1
    app.clear_faults()
    with service.ledger.unit() as u:  # an hour later, as far as the schedule knows
        u.set_owed_read(payment_id, Look(1, service.ledger.now()))
    report = janitor.run_pass()
    assert report.caught_up == (payment_id,) and not report.errors, report
    assert service.ledger.owed_reads() == {}
    _as_the_provider_holds(service, app, payment_id)


@pytest.mark.parametrize("matcher", ["match_unmatched", "janitor"])
def test_an_event_stored_unmatched_then_matched_marks_its_payment_when_the_read_fails(
        service: PaymentService, app: FakePayApp, matcher: str) -> None:
    """The declined capture's event stored unmatched (as a race leaves it: stored while another
    worker was learning its payment's reference), then applied by `match_unmatched()` or a
    Janitor's pass once the reference is known: it leaves the ledger offering what the provider
    released, like the webhook path. Its read failing, the mark stays, and a later `reconcile()`
    reads the payment."""
    payment_id, (headers, body) = _declined_capture(service, app)
    event_id = store_unmatched(service, "fakepay", headers, body)
    _unreachable(app)
    refused = _refused_reads(app)
    if matcher == "janitor":
        report = Janitor(service).run_pass()
        assert (report.applied, report.errors, report.caught_up) == (1, (), ()), report
    else:
        assert service.match_unmatched() == MatchReport(applied=1)
    assert _refused_reads(app) == refused + 1  # the catch-up read, made and failed
    assert service.ledger.get_event("fakepay", event_id).status == "applied"
    payment = service.get_payment(payment_id)
    assert (payment.state, payment.capturable) == (PaymentState.AUTHORIZED, eur("10.00"))  # offered again
    assert payment_id in service.ledger.owed_reads()
    app.clear_faults()
    report = service.reconcile()
    assert report.caught_up == (payment_id,) and report.clean, report
    assert service.ledger.owed_reads() == {}
    _as_the_provider_holds(service, app, payment_id)


class _ReadBackFails(SQLiteLedger):
    """An SQLite ledger whose `get_payment` fails, as a lost disk or connection does, once the
    payment's capture was read from the provider (`armed`, by the test's fault on that read)."""

    armed = False
    failed = 0

    def get_payment(self, payment_id: str) -> Payment | None:
        payment = super().get_payment(payment_id)
        if self.armed and payment is not None and payment.refunded.minor:  # the catch-up recorded
            self.failed += 1
            raise sqlite3.OperationalError("disk I/O error")
        return payment


def test_a_success_whose_read_back_fails_after_its_catch_up_still_answers_the_payment(
        fakepay: tuple[FakePayApp, str], tmp_path: Path) -> None:
    """A resend's success owes a read; the read is made and recorded, and only the service's read
    of the payment back, to answer it, fails. The capture was made and recorded: the caller gets
    the payment as the capture's own unit recorded it, never an error (which a caller without its
    key would take for a capture to make again)."""
    app, url = fakepay
    ledger = _ReadBackFails(tmp_path / "ledger.db")
    with make_gateway(url) as gateway:
        service = PaymentService(gateway, ledger)
        resend = _resend_of_a_refunded_capture(service, app)
        ledger.armed = True
        paid = resend()
        assert isinstance(paid, Payment) and paid.captured == eur("10.00")
        assert ledger.failed == 1  # the read back was made, and failed
        ledger.armed = False
        assert service.get_payment(paid.id).refunded == eur("10.00")  # the catch-up's read stands
        assert app.count("capture") == 1
    ledger.close()
