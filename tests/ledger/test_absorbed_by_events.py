"""A capture or refund the provider's event records as succeeded (one it had accepted and decided
later, or one made in its dashboard) while the payment's total stands on a floor the provider
reported (a reading counting an operation made beside paywire) cannot be added to that total:
as when the operation's own answer says so (`rules.absorbed`), the payment owes a read, made at
once, else by `reconcile()` or the Janitor, so the ledger never offers to capture or refund more
than the provider has left. Against the FakePay emulator over loopback HTTP, on both ledgers."""

from __future__ import annotations

import pytest

from paywire import OutcomeUnknown
from paywire.ledger import Payment
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import FakePayApp
from tests.ledger.support import agree, eur, in_thread, ledger_totals
from tests.ledger.test_owed_reads import READS


def _capture_at_provider(app: FakePayApp, pid: str, amount: int) -> str:
    """A capture made in the provider's dashboard, with no word to the ledger; its event is not delivered."""
    with app.lock:
        return str(app._capture(app.payments[pid], amount, final=False, emit=False)["id"])


def _accepted_refund_beside_a_dashboard_refund(service: PaymentService, app: FakePayApp) -> tuple[Payment, str]:
    """A 50.00 sale, 10.00 of it refunded in the dashboard and read by `reconcile()` (a floor),
    then a refund of 20.00 the provider accepted and has now decided: its event's delivery."""
    payment = service.sale("fakepay", eur("50.00"), source="tok_async")
    app.refund_beside(payment.references["capture"], 1_000)
    assert service.reconcile(payment_id=payment.id).clean
    payment = service.refund(payment.id, eur("20.00"))
    [refund] = app.undecided()
    return payment, refund


def _accepted_capture_beside_a_dashboard_capture(service: PaymentService, app: FakePayApp) -> tuple[Payment, str]:
    """A 100.00 authorization, 40.00 of it captured in the dashboard and read by `reconcile()` from
    a reading of the provider's totals alone (it lists no operations: a floor, no transaction),
    then a capture of the other 60.00 the provider accepted and decides later."""
    app.lists_operations = False
    payment = service.authorize("fakepay", eur("100.00"), source="tok_async")
    _capture_at_provider(app, payment.reference or "", 4_000)
    assert service.reconcile(payment_id=payment.id).clean
    payment = service.capture(payment.id, eur("60.00"), final=False)
    [capture] = app.undecided()
    return payment, capture


STARTS = {"refund": _accepted_refund_beside_a_dashboard_refund, "capture": _accepted_capture_beside_a_dashboard_capture}


@pytest.mark.parametrize("kind", sorted(STARTS))
def test_an_accepted_operation_its_event_settles_on_a_floor_has_the_payment_read(
        service: PaymentService, app: FakePayApp, kind: str) -> None:
    payment, decided = STARTS[kind](service, app)
    receipt = service.receive_webhook("fakepay", *app.decide(decided))
    assert receipt.status == "applied"
    agree(service, app, payment.id)
    assert service.ledger.owed_reads() == {}


@pytest.mark.parametrize("kind", sorted(STARTS))
def test_when_that_read_fails_the_payment_stays_marked_until_reconcile_reads_it(
        service: PaymentService, app: FakePayApp, kind: str) -> None:
    payment, decided = STARTS[kind](service, app)
    delivery = app.decide(decided)
    app.inject(Fault(kind="status", status=500, method="GET", path=READS, times=1_000))
    assert service.receive_webhook("fakepay", *delivery).status == "applied"
    assert payment.id in service.ledger.owed_reads()
    app.clear_faults()
    report = service.reconcile()
    assert report.caught_up == (payment.id,) and report.clean, report
    agree(service, app, payment.id)


def test_a_dashboard_capture_recorded_from_its_event_on_a_floor_has_the_payment_read(
        service: PaymentService, app: FakePayApp) -> None:
    """Two captures made in the dashboard: the first read by `reconcile()` from the provider's
    totals alone (its reading lists no operations: a floor, no transaction), the second recorded
    from its event as a transaction of origin webhook."""
    app.lists_operations = False
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    _capture_at_provider(app, payment.reference or "", 4_000)
    assert service.reconcile(payment_id=payment.id).clean
    second = _capture_at_provider(app, payment.reference or "", 3_000)
    delivery = app.event("evt_second", "captured", second, amount=3_000, references={"payment": payment.reference or ""})
    assert service.receive_webhook("fakepay", *delivery).status == "applied"
    settled = service.get_payment(payment.id)
    assert ledger_totals(settled) == app.totals(payment.reference or "") == (10_000, 7_000, 0)
    assert settled.capturable == eur("30.00")


def test_a_read_settling_an_event_that_waited_meanwhile_on_a_floor_leaves_the_payment_owing_a_read(
        service: PaymentService, app: FakePayApp) -> None:
    """A refund of 20.00 (beside a dashboard refund of 10.00 that `reconcile()` read) whose answer
    was lost: the provider accepted it. A read of the payment is answered (the refund pending)
    and, before it is settled, the provider decides the refund and its event comes: it waits (the
    ledger does not know the refund's id yet). The read's unit then learns that id and applies the
    waiting event: the refund succeeded, counted against a floor the older answer gave. That unit
    cannot clear the payment's mark: the payment owes a read, and the next `reconcile()` makes it."""
    payment = service.sale("fakepay", eur("50.00"), source="tok_async")
    app.refund_beside(payment.references["capture"], 1_000)
    assert service.reconcile(payment_id=payment.id).clean
    app.inject(Fault("drop_after", method="POST", path="/refunds$"))
    with pytest.raises(OutcomeUnknown):
        service.refund(payment.id, eur("20.00"))
    [refund] = app.undecided()
    app.inject(Fault("hold", method="GET", path=READS))
    older, out = in_thread(lambda: service.reconcile(payment_id=payment.id))
    try:
        assert app.wait_until_held(1, timeout=30)  # answered: the refund pending
        assert service.receive_webhook("fakepay", *app.decide(refund)).status == "deferred"
    finally:
        app.release_held()
        older.join(30)
    [report] = out
    assert not isinstance(report, Exception), report
    if payment.id not in service.ledger.owed_reads():  # else the ledger must already hold what the provider does
        agree(service, app, payment.id)
    report = service.reconcile()
    assert report.clean, report
    agree(service, app, payment.id)
    assert service.ledger.owed_reads() == {}
