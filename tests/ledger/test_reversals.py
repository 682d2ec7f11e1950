"""Operations the provider undid after reporting them done, against running totals delivered
late and refunds made outside paywire: the cases the state machine (`reversal_machine`) found,
each on its own, and the machine itself."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from functools import partial

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.stateful import run_state_machine_as_test

from paywire import EventKind, Gateway, OutcomeUnknown
from paywire.errors import StateError
from paywire.ledger import Ledger, TransactionStatus, open_ledger
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import FakePayApp
from tests.ledger.reversal_machine import Machine
from tests.ledger.support import agree, eur, ledger_totals, step_past_life

S = TransactionStatus


def _undo_capture(app: FakePayApp, cap_id: str) -> None:
    """The provider declines a capture at settlement: the capture fails, the totals drop."""
    with app.lock:
        cap = app.captures[cap_id]
        cap["status"] = "failed"
        app.payments[cap["payment"]]["captured"] -= cap["amount"]


def test_a_running_total_reported_before_a_reversal_does_not_revive_the_undone_capture(
        service: PaymentService, app: FakePayApp) -> None:
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    payment = service.capture(payment.id, eur("40.00"), final=False)
    first = service.list_transactions(payment.id)[-1].provider_reference or ""
    payment = service.capture(payment.id, eur("30.00"), final=False)
    # The provider reports its running total (70.00) while it holds both captures ...
    total = app.event("evt_total_70", EventKind.CAPTURED, payment.reference or "", total=7_000)
    # ... then declines the first at settlement and says so; the total's delivery comes late.
    _undo_capture(app, first)
    service.receive_webhook("fakepay", *app.event("evt_declined", EventKind.REVERSED, first))
    assert service.get_payment(payment.id).captured == eur("30.00")
    service.receive_webhook("fakepay", *total)
    payment = service.get_payment(payment.id)
    assert ledger_totals(payment) == app.totals(payment.reference or "") == (10_000, 3_000, 0)
    with pytest.raises(StateError):  # the provider holds 30.00 refundable, not 40.00
        service.refund(payment.id, eur("40.00"))


def _take_back(app: FakePayApp, cap_id: str) -> None:
    """The provider takes a capture's money back (a chargeback): it lists the capture as reversed."""
    with app.lock:
        cap = app.captures[cap_id]
        assert cap["status"] == "succeeded" and not cap["refunded"], cap
        cap["status"] = "reversed"
        app.payments[cap["payment"]]["captured"] -= cap["amount"]


@pytest.mark.parametrize("answer", ["lost", "recorded"])
def test_a_capture_the_provider_took_back_is_recorded_taken_effect_then_reversed_once(
        patient: PaymentService, app: FakePayApp, answer: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """A capture the provider lists as reversed took effect: a lost request that made it is matched
    to it by amount and recorded succeeded (never concluded not applied, as it would be were the
    capture listed failed), and the reversal is recorded once, however often reconciliation runs."""
    service = patient  # every answer read, however loaded the machine; the lost one's life is stepped past
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    if answer == "lost":
        app.inject(Fault("drop_after", path="/captures$"))
        with pytest.raises(OutcomeUnknown) as raised:
            service.capture(payment.id, eur("30.00"), final=False)
        capture_id = raised.value.transaction_id or ""
        app.clear_faults()
    else:
        service.capture(payment.id, eur("30.00"), final=False)
        capture_id = service.list_transactions(payment.id)[-1].id
    (made,) = [c for c in app.captures.values() if c["payment"] == payment.reference]
    _take_back(app, made["id"])
    step_past_life(service, [capture_id], monkeypatch)  # not an open request any more: only the listing decides
    first = service.reconcile(payment_id=payment.id)
    again = service.reconcile(payment_id=payment.id)
    capture = service.get_transaction(capture_id)
    assert (capture.status, capture.provider_reference) == (S.SUCCEEDED, made["id"]), first
    reversals = [t for t in service.list_transactions(payment.id) if t.kind == "reversal"]
    assert [(t.parent_id, t.amount) for t in reversals] == [(capture_id, eur("30.00"))]
    assert first.clean and again.clean, (first, again)
    assert ledger_totals(service.get_payment(payment.id)) == app.totals(payment.reference or "") == (10_000, 0, 0)
    agree(service, app, payment.id)


def _refund_outside(app: FakePayApp, cap_id: str, amount: int) -> str:
    """A refund made in the provider's dashboard (outside paywire)."""
    with app.lock:
        cap = app.captures[cap_id]
        payment = app.payments[cap["payment"]]
        refund = {"id": app._id("re"), "amount": amount, "currency": "EUR", "capture": cap_id,
                  "payment": payment["id"], "status": "succeeded", "idempotency_key": None}
        app.refunds[refund["id"]] = refund
        payment["_refunds"].append(refund["id"])
        app._refund_succeeded(payment, cap, refund)
        return refund["id"]


def _undo_capture_and_its_refunds(app: FakePayApp, cap_id: str) -> None:
    with app.lock:
        cap = app.captures[cap_id]
        payment = app.payments[cap["payment"]]
        cap["status"] = "failed"
        payment["captured"] -= cap["amount"]
        for r in payment["_refunds"]:
            refund = app.refunds[r]
            if refund["capture"] == cap_id and refund["status"] == "succeeded":
                refund["status"] = "failed"
                payment["refunded"] -= refund["amount"]


def test_a_reported_refund_of_an_undone_capture_still_counts(service: PaymentService, app: FakePayApp) -> None:
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    payment = service.capture(payment.id, eur("50.00"), final=False)
    first = service.list_transactions(payment.id)[-1].provider_reference or ""
    payment = service.capture(payment.id, eur("50.00"), final=False)
    _refund_outside(app, first, 3_000)  # 30.00 refunded in the dashboard, on the first capture
    service.reconcile(payment_id=payment.id)  # the ledger learns the provider's refunded total: 30.00
    assert service.get_payment(payment.id).refunded == eur("30.00")
    # The provider declines the first capture at settlement: it and its refund are undone.
    _undo_capture_and_its_refunds(app, first)
    service.receive_webhook("fakepay", *app.event("evt_declined", EventKind.REVERSED, first))
    payment = service.get_payment(payment.id)
    provider = app.totals(payment.reference or "")
    assert provider == (10_000, 5_000, 0)
    # The ledger still claims the 30.00 refund the provider undid (and 20.00 refundable, not 50.00).
    assert ledger_totals(payment) == provider, (ledger_totals(payment), provider)


def test_a_reported_refund_of_an_undone_sale_revives_it(service: PaymentService, app: FakePayApp) -> None:
    payment = service.sale("fakepay", eur("100.00"), source="tok_ok")
    [sold] = service.list_transactions(payment.id)
    capture = sold.provider_reference or ""
    _refund_outside(app, capture, 10_000)
    service.reconcile(payment_id=payment.id)
    _undo_capture_and_its_refunds(app, capture)
    app.payments[payment.reference or ""].update(status="failed", authorized=0, closed=True)
    service.receive_webhook("fakepay", *app.event("evt_declined", EventKind.REVERSED, capture))
    payment = service.get_payment(payment.id)
    # The sale was undone: nothing authorized, captured or refunded, the payment failed.
    assert (payment.state, ledger_totals(payment)) == ("failed", (0, 0, 0)), (payment.state, ledger_totals(payment))


def test_a_reversal_of_a_capture_known_only_from_reconcile_is_dropped(
        service: PaymentService, app: FakePayApp) -> None:
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    with app.lock:  # a capture made in the provider's dashboard; its event is still on the way
        cap = app._capture(app.payments[payment.reference or ""], 10_000, final=False, emit=False)
    captured = app.event("evt_captured", EventKind.CAPTURED, cap["id"], amount=10_000,
                         references={"payment": payment.reference or ""})
    service.reconcile(payment_id=payment.id)  # the ledger learns captured 100.00 (and the capture's id)
    assert service.get_payment(payment.id).captured == eur("100.00")
    _undo_capture(app, cap["id"])  # declined at settlement
    receipt = service.receive_webhook("fakepay", *app.event("evt_declined", EventKind.REVERSED, cap["id"],
                                                            references={"payment": payment.reference or ""}))
    service.receive_webhook("fakepay", *captured)  # the capture's own event, delivered late
    payment = service.get_payment(payment.id)
    provider = app.totals(payment.reference or "")
    assert ledger_totals(payment) == provider == (10_000, 0, 0), (receipt.status, receipt, ledger_totals(payment))


def _machine(examples: int) -> settings:
    return settings(max_examples=examples, stateful_step_count=25, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])


def test_the_ledger_never_claims_more_than_the_provider_holds(
        shared_fakepay: tuple[FakePayApp, Gateway], fresh_ledger_url: Callable[[], str], backend: str) -> None:
    app, gateway = shared_fakepay
    run_state_machine_as_test(lambda: Machine(app, gateway, partial(open_ledger, fresh_ledger_url())),
                              settings=_machine({"sqlite": 100, "postgres": 25}[backend]))


def test_a_running_total_from_before_a_refund_was_undone_does_not_count_it_again(
        service: PaymentService, app: FakePayApp) -> None:
    payment = service.sale("fakepay", eur("100.00"), source="tok_ok")
    [sold] = service.list_transactions(payment.id)
    refund = _refund_outside(app, sold.provider_reference or "", 10_000)
    stale = app.event("evt_total", EventKind.REFUNDED, payment.reference or "", total=10_000)
    with app.lock:  # the provider undoes the refund (returned by the bank)
        app.refunds[refund]["status"] = "failed"
        app.payments[payment.reference or ""]["refunded"] -= 10_000
    for event in (app.event("evt_undone", EventKind.REVERSED, refund), *app.events_about(refund), stale):
        service.receive_webhook("fakepay", *event)
    assert ledger_totals(service.get_payment(payment.id)) == app.totals(payment.reference or "") == (10_000, 10_000, 0)


def test_a_refund_recorded_before_its_capture_is_undone_with_it(service: PaymentService, app: FakePayApp) -> None:
    """The refund's event came before its capture's, so the ledger held no capture to make its
    parent; it names the capture all the same, and goes with it."""
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    with app.lock:
        cap = app._capture(app.payments[payment.reference or ""], 5_000, final=False, emit=False)
    captured = app.event("evt_captured", EventKind.CAPTURED, cap["id"], amount=5_000,
                         references={"payment": payment.reference or ""})
    refund = _refund_outside(app, cap["id"], 5_000)
    _undo_capture_and_its_refunds(app, cap["id"])
    for event in (*app.events_about(refund), captured, app.event("evt_undone", EventKind.REVERSED, cap["id"])):
        service.receive_webhook("fakepay", *event)
    assert ledger_totals(service.get_payment(payment.id)) == app.totals(payment.reference or "") == (10_000, 0, 0)


def test_a_refund_on_the_payment_is_undone_with_the_capture_it_was_sent_to(
        service: PaymentService, app: FakePayApp) -> None:
    """The capture was known only from reconciliation's running total (the provider's reading lists
    no operations), so the refund has no parent and acts on the payment; it was sent to that
    capture (its target), and goes with it."""
    app.lists_operations = False
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    with app.lock:  # a capture made in the provider's dashboard; its event is still on the way
        cap = app._capture(app.payments[payment.reference or ""], 10_000, final=False, emit=False)
    captured = app.event("evt_captured", EventKind.CAPTURED, cap["id"], amount=10_000,
                         references={"payment": payment.reference or ""})
    service.reconcile(payment_id=payment.id)  # the ledger learns captured 100.00 from the provider's total
    payment = service.refund(payment.id, eur("40.00"))
    [refund] = [t for t in service.list_transactions(payment.id) if t.kind == "refund"]
    assert (refund.parent_id, refund.request.get("reference")) == (None, cap["id"])
    assert app.totals(payment.reference or "") == (10_000, 10_000, 4_000)
    _undo_capture_and_its_refunds(app, cap["id"])  # declined at settlement: the capture and its refund
    service.receive_webhook("fakepay", *app.event("evt_declined", EventKind.REVERSED, cap["id"],
                                                  references={"payment": payment.reference or ""}))
    service.receive_webhook("fakepay", *captured)  # the capture's own event, delivered late
    payment = service.get_payment(payment.id)
    assert ledger_totals(payment) == app.totals(payment.reference or "") == (10_000, 0, 0), payment.state
    assert payment.state == "authorized"
    service.reconcile(payment_id=payment.id)
    assert ledger_totals(service.get_payment(payment.id)) == (10_000, 0, 0)


def test_a_running_total_from_before_a_reversal_that_waits_does_not_count_the_undone_capture(
        service: PaymentService, app: FakePayApp) -> None:
    """The reversal names a dashboard capture no transaction holds yet (its event waits for the
    shop's own capture in flight), so it waits too; the total sent while the provider held that
    capture was applied first. Every event was delivered: the ledger claims none of it."""
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    pid = payment.reference or ""
    with app.lock:  # a capture made in the dashboard (its event is emitted)
        cap = app._capture(app.payments[pid], 10_000, final=False)
    stale_total = app.event("evt_total", EventKind.CAPTURED, pid, total=10_000)  # sent while it held it
    _undo_capture(app, cap["id"])  # declined at settlement
    reversal = app.event("evt_rev", EventKind.REVERSED, cap["id"], references={"payment": pid})
    app.inject(Fault("status", status=500, path="/captures$", method="POST"))  # never landed
    with pytest.raises(OutcomeUnknown):
        service.capture(payment.id, eur("100.00"), final=False)
    receipts = [service.receive_webhook("fakepay", *e).status for e in (stale_total, *app.outbox, reversal)]
    assert receipts == ["applied", "applied", "deferred", "deferred"]
    assert app.totals(pid) == (10_000, 0, 0)
    assert ledger_totals(service.get_payment(payment.id)) == (10_000, 0, 0)
    # The same total delivered again while the reversal waits raises no floor either.
    service.receive_webhook("fakepay", *app.event("evt_total_again", EventKind.CAPTURED, pid, total=10_000))
    assert ledger_totals(service.get_payment(payment.id)) == (10_000, 0, 0)
    with pytest.raises(StateError):
        service.refund(payment.id, eur("10.00"))


def test_reconciliation_sets_the_floors_while_a_reversal_waits(service: PaymentService, app: FakePayApp) -> None:
    """The provider's totals read now postdate the reversal: they count, and its waiting again
    (reconciliation applies waiting events) does not take them back."""
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    pid = payment.reference or ""
    with app.lock:
        first = app._capture(app.payments[pid], 6_000, final=False, emit=False)
        app._capture(app.payments[pid], 3_000, final=False, emit=False)  # its event is still to come
    _undo_capture(app, first["id"])
    app.inject(Fault("status", status=500, path="/captures$", method="POST"))
    with pytest.raises(OutcomeUnknown):
        service.capture(payment.id, eur("10.00"), final=False)  # still in flight: the capture events wait
    app.clear_faults()
    assert service.receive_webhook("fakepay", *app.event("evt_rev", EventKind.REVERSED, first["id"],
                                                         references={"payment": pid})).status == "deferred"
    service.reconcile(payment_id=payment.id)
    assert ledger_totals(service.get_payment(payment.id)) == app.totals(pid) == (10_000, 3_000, 0)


@pytest.mark.parametrize("recorded_by", ["retry", "reconcile"])
def test_a_running_total_that_counted_a_refund_whose_failure_waits_does_not_count_it(
        service: PaymentService, app: FakePayApp, ledger: Ledger, recorded_by: str) -> None:
    """The refund's answer was lost, so the ledger does not hold it when the provider, having
    counted it in a running total, fails it: the failed event waits for it. Every event was
    delivered: the ledger claims none of it, and once the refund is recorded its failure applies."""
    payment = service.sale("fakepay", eur("100.00"), source="tok_ok")
    pid = payment.reference or ""
    app.inject(Fault("status_after", status=500, path="/refunds$", method="POST"))
    with pytest.raises(OutcomeUnknown):
        service.refund(payment.id, eur("40.00"))
    [refund] = app.refunds
    stale_total = app.event("evt_total", EventKind.REFUNDED, pid, total=4_000)  # sent while it held the refund
    app.fail_refund(refund)
    refunded, failed = app.events_about(refund)
    receipts = [service.receive_webhook("fakepay", *e).status for e in (refunded, stale_total, failed)]
    assert receipts == ["deferred", "applied", "deferred"]
    assert app.totals(pid) == (10_000, 10_000, 0)
    assert ledger_totals(service.get_payment(payment.id)) == (10_000, 10_000, 0)
    # The same total delivered again while the failure waits raises no floor either.
    service.receive_webhook("fakepay", *app.event("evt_total_again", EventKind.REFUNDED, pid, total=4_000))
    assert ledger_totals(service.get_payment(payment.id)) == (10_000, 10_000, 0)
    [txn] = [t for t in service.list_transactions(payment.id) if t.kind == "refund"]
    if recorded_by == "retry":  # the provider replays the refund's answer: it holds it as done
        service.retry(txn.id)
    else:
        service.reconcile(payment_id=payment.id)
    assert service.get_transaction(txn.id).provider_reference == refund
    assert ledger_totals(service.get_payment(payment.id)) == app.totals(pid) == (10_000, 10_000, 0)
    assert ledger.list_events(statuses=["deferred"], payment_id=payment.id) == []


def test_a_failure_that_waits_for_a_refund_never_done_shows_less_until_it_applies(
        service: PaymentService, app: FakePayApp, ledger: Ledger) -> None:
    """The cost of the rule: a refund whose answer was lost and which the provider declined while
    pending was in no total, yet its failure waits as one that may have been. Meanwhile the ledger
    shows less refunded than the provider (a refund made in the dashboard, known from a total),
    never more. Once the refund is recorded its failure applies, and it is one the provider
    failed after it was open: it may have succeeded meanwhile, so totals stay untrusted (one
    counting it may still come) until the dashboard refund's own event, or reconciliation, says
    what the provider holds."""
    payment = service.sale("fakepay", eur("100.00"), source="tok_async")  # refunds are decided later
    pid = payment.reference or ""
    [sold] = service.list_transactions(payment.id)
    outside = _refund_outside(app, sold.provider_reference or "", 3_000)  # its own event comes late
    service.receive_webhook("fakepay", *app.event("evt_total", EventKind.REFUNDED, pid, total=3_000))
    assert ledger_totals(service.get_payment(payment.id)) == app.totals(pid) == (10_000, 10_000, 3_000)
    app.inject(Fault("status_after", status=500, path="/refunds$", method="POST"))
    with pytest.raises(OutcomeUnknown):
        service.refund(payment.id, eur("40.00"))
    [refund] = [r for r in app.refunds if r != outside]
    assert service.receive_webhook("fakepay", *app.decide(refund, succeed=False)).status == "deferred"
    assert app.totals(pid) == (10_000, 10_000, 3_000)
    assert ledger_totals(service.get_payment(payment.id)) == (10_000, 10_000, 0)
    service.receive_webhook("fakepay", *app.event("evt_total_now", EventKind.REFUNDED, pid, total=3_000))
    assert ledger_totals(service.get_payment(payment.id)) == (10_000, 10_000, 0)
    [txn] = [t for t in service.list_transactions(payment.id) if t.kind == "refund"]
    service.retry(txn.id)  # the provider replays its answer (pending): the refund is recorded, its failure applies
    assert (service.get_transaction(txn.id).status, ledger.list_events(statuses=["deferred"], payment_id=payment.id)) \
        == ("failed", [])
    service.receive_webhook("fakepay", *app.event("evt_total_later", EventKind.REFUNDED, pid, total=3_000))
    assert ledger_totals(service.get_payment(payment.id)) == (10_000, 10_000, 0)
    for event in app.events_about(outside):
        service.receive_webhook("fakepay", *event)
    assert ledger_totals(service.get_payment(payment.id)) == app.totals(pid) == (10_000, 10_000, 3_000)


def _two_captures_and_a_lost_refund(service: PaymentService, app: FakePayApp, *,
                                    applied: bool) -> tuple[str, str, str, str]:
    """A payment captured twice (40.00, then 30.00) and the shop's refund of 10.00 on the second
    whose answer was lost: applied, or refused before the provider acted. Returns the payment, the
    two captures' references and the refund's transaction."""
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    captures = []
    for amount_captured in ("40.00", "30.00"):
        payment = service.capture(payment.id, eur(amount_captured), final=False)
        captures.append(service.list_transactions(payment.id)[-1].provider_reference or "")
    app.inject(Fault("drop_after" if applied else "status", status=500, path="/refunds$"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.refund(payment.id, eur("10.00"))
    refund = service.get_transaction(lost.value.transaction_id or "")
    assert service.get_transaction(refund.parent_id or "").provider_reference == captures[1]
    return payment.id, captures[0], captures[1], refund.id


def test_a_lost_refund_is_never_taken_for_a_dashboard_refund_of_another_capture(
        patient: PaymentService, app: FakePayApp, monkeypatch: pytest.MonkeyPatch) -> None:
    """The shop's refund of 10.00 on the second capture never reached the provider; one of 10.00 was
    made in the dashboard on the first. Taken for the shop's by its amount, the dashboard refund
    would be recorded on the second capture, and outlive the first capture's reversal, which takes
    it back at the provider: the ledger would claim 10.00 refunded that the provider no longer holds."""
    service = patient  # every answer read, however loaded the machine; the lost one's life is stepped past
    payment_id, first, _, refund_id = _two_captures_and_a_lost_refund(service, app, applied=False)
    pid = service.get_payment(payment_id).reference or ""
    dashboard = _refund_outside(app, first, 1_000)
    service.reconcile(payment_id=payment_id)
    lost = service.get_transaction(refund_id)
    assert lost.provider_reference != dashboard and lost.status in (S.UNKNOWN, S.FAILED), lost
    assert ledger_totals(service.get_payment(payment_id)) == app.totals(pid) == (10_000, 7_000, 1_000)

    _undo_capture_and_its_refunds(app, first)  # a chargeback: the capture and its refunds are undone
    service.receive_webhook("fakepay", *app.event("evt_charged_back", EventKind.REVERSED, first,
                                                  references={"payment": pid}))
    for event in app.events_about(dashboard):  # the dashboard refund's own event, delivered late
        service.receive_webhook("fakepay", *event)
    assert ledger_totals(service.get_payment(payment_id)) == app.totals(pid) == (10_000, 3_000, 0)
    step_past_life(service, [refund_id], monkeypatch)
    service.reconcile(payment_id=payment_id)
    assert service.get_transaction(refund_id).status == S.FAILED
    agree(service, app, payment_id)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(applied=st.booleans(), same_amount=st.booleans(), on_first=st.booleans(),
       undone=st.sampled_from([None, 0, 1]), late=st.booleans())
def test_refunds_told_apart_by_amount_never_outlive_their_capture(
        patient: PaymentService, app: FakePayApp, monkeypatch: pytest.MonkeyPatch, applied: bool, same_amount: bool,
        on_first: bool, undone: int | None, late: bool) -> None:
    """A lost refund on the second capture (applied or not), a dashboard refund on either capture,
    of the same amount or not, one capture undone or none, the dashboard refund's event delivered
    before reconciliation or after the reversal: the ledger never claims more than the provider,
    and the lost refund is settled as itself or as a refund of its own capture, never of the other."""
    service = patient  # every answer read, however loaded the machine; the lost one's life is stepped past
    payment_id, first, second, refund_id = _two_captures_and_a_lost_refund(service, app, applied=applied)
    pid = service.get_payment(payment_id).reference or ""
    capture = first if on_first else second
    dashboard = _refund_outside(app, capture, 1_000 if same_amount else 500)
    if not late:
        for event in app.events_about(dashboard):
            service.receive_webhook("fakepay", *event)
    service.reconcile(payment_id=payment_id)
    taken = service.get_transaction(refund_id).provider_reference
    assert taken is None or app.refunds[taken]["capture"] == second, (taken, dashboard, capture)

    if undone is not None:
        reversed_capture = (first, second)[undone]
        _undo_capture_and_its_refunds(app, reversed_capture)
        service.receive_webhook("fakepay", *app.event(f"evt_undone_{reversed_capture}", EventKind.REVERSED,
                                                      reversed_capture, references={"payment": pid}))
    if late:
        for event in app.events_about(dashboard):
            service.receive_webhook("fakepay", *event)
    ledger, provider = ledger_totals(service.get_payment(payment_id)), app.totals(pid)
    assert ledger[1] <= provider[1] and ledger[2] <= provider[2], (ledger, provider)
    step_past_life(service, [refund_id], monkeypatch)
    service.reconcile(payment_id=payment_id)
    agree(service, app, payment_id)


def test_two_undone_captures_leave_nothing_of_a_total_that_counted_one(
        service: PaymentService, app: FakePayApp) -> None:
    """The total (0.75) counted the first capture only; undoing the second (0.25) first leaves a
    floor below the first's amount, which it still counted: nothing of it stands."""
    payment = service.authorize("fakepay", eur("1.00"), source="tok_ok")
    pid = payment.reference or ""
    with app.lock:  # captures made in the dashboard
        first = app._capture(app.payments[pid], 75, final=False)
    total = app.event("evt_total_75", EventKind.CAPTURED, pid, total=75)
    with app.lock:
        second = app._capture(app.payments[pid], 25, final=False)
    _undo_capture(app, second["id"])
    _undo_capture(app, first["id"])
    for event in (*app.events_about(first["id"]), *app.events_about(second["id"]), total,
                  app.event("evt_undone_2", EventKind.REVERSED, second["id"]),
                  app.event("evt_undone_1", EventKind.REVERSED, first["id"])):
        service.receive_webhook("fakepay", *event)
    assert ledger_totals(service.get_payment(payment.id)) == app.totals(pid) == (100, 0, 0)


def test_a_reversal_of_an_accepted_capture_delivered_first_undoes_it(
        service: PaymentService, app: FakePayApp) -> None:
    """The capture was accepted (decided later), succeeded, was counted in a running total, and
    was undone; the reversal comes before the capture's own event. Only what succeeded can be
    undone: the capture did, and the total from before its reversal counts it no more."""
    payment = service.authorize("fakepay", eur("1.00"), source="tok_async")
    pid = payment.reference or ""
    service.capture(payment.id, eur("1.00"), final=False)  # accepted: decided later
    [cap] = app.captures
    decided = app.decide(cap)
    total = app.event("evt_total", EventKind.CAPTURED, pid, total=100)
    _undo_capture(app, cap)
    for event in (app.event("evt_undone", EventKind.REVERSED, cap), total, decided):
        service.receive_webhook("fakepay", *event)
    assert ledger_totals(service.get_payment(payment.id)) == app.totals(pid) == (100, 0, 0)
    assert [t.status for t in service.list_transactions(payment.id) if t.kind == "capture"] == ["succeeded"]


@pytest.mark.parametrize("reconciled", [False, True], ids=["events", "reconciled first"])
@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_an_accepted_refund_that_succeeded_then_failed_is_undone_in_any_order(
        service: PaymentService, app: FakePayApp, order: tuple[int, ...], reconciled: bool) -> None:
    """A failure of a refund still open (its failed event, or reconciliation reading it failed)
    may be a decline while pending or the failure of a refund done, which a running total
    counted meanwhile; the refund's own success event tells them apart, whichever comes first.
    Once the failure is in, a total counting the refund (sent while it stood) is not trusted
    until then: from that moment the ledger never claims the refund the provider no longer holds."""
    payment = service.sale("fakepay", eur("100.00"), source="tok_async")  # refunds are decided later
    pid = payment.reference or ""
    service.refund(payment.id, eur("40.00"))
    [refund] = app.refunds
    events = [app.decide(refund), app.event("evt_total", EventKind.REFUNDED, pid, total=4_000)]
    app.fail_refund(refund)
    events.append(app.events_about(refund)[-1])
    if reconciled:
        service.reconcile(payment_id=payment.id)
    failure_known = reconciled
    for index in order:
        service.receive_webhook("fakepay", *events[index])
        failure_known = failure_known or index == 2
        if failure_known:
            assert ledger_totals(service.get_payment(payment.id))[2] <= app.totals(pid)[2], f"after event {index}"
    assert ledger_totals(service.get_payment(payment.id)) == app.totals(pid) == (10_000, 10_000, 0)


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_an_accepted_capture_reconciled_failed_after_it_succeeded_is_undone_in_any_order(
        service: PaymentService, app: FakePayApp, order: tuple[int, ...]) -> None:
    """Reconciliation reads the accepted capture failed (declined at settlement after it
    succeeded); its success event, the running total sent meanwhile and its reversal come after."""
    payment = service.authorize("fakepay", eur("1.00"), source="tok_async")
    pid = payment.reference or ""
    service.capture(payment.id, eur("1.00"), final=False)  # accepted: decided later
    [cap] = app.captures
    events = [app.decide(cap), app.event("evt_total", EventKind.CAPTURED, pid, total=100)]
    _undo_capture(app, cap)
    events.append(app.event("evt_undone", EventKind.REVERSED, cap))
    service.reconcile(payment_id=payment.id)
    for index in order:
        service.receive_webhook("fakepay", *events[index])
    assert ledger_totals(service.get_payment(payment.id)) == app.totals(pid) == (100, 0, 0)


@pytest.mark.parametrize("first", ["reversed", "captured"])
def test_a_dashboard_capture_undone_before_its_event_is_recorded_with_its_reversal(
        service: PaymentService, app: FakePayApp, first: str) -> None:
    """A reversed event naming, with its amount, a capture made beside paywire that the ledger
    never held records that capture and its reversal (nothing to come would record it, its own
    event may report it undone too): once, whichever event comes first, however often delivered."""
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    pid = payment.reference or ""
    with app.lock:  # a capture made in the dashboard, then taken back before its event came
        cap = app._capture(app.payments[pid], 2_500, final=False, emit=False)
    _take_back(app, cap["id"])
    named = {"capture": cap["id"], "payment": pid}
    events = {"reversed": app.event("evt_rev", EventKind.REVERSED, cap["id"], amount=2_500, references=named),
              "captured": app.event("evt_cap", EventKind.CAPTURED, cap["id"], amount=2_500, references=named)}
    for name in (first, *(n for n in events if n != first)):
        assert [service.receive_webhook("fakepay", *events[name]).status for _ in range(2)] == ["applied", "duplicate"]
    for _ in range(2):
        txns = service.list_transactions(payment.id)
        (capture,) = [t for t in txns if t.provider_reference == cap["id"]]
        assert (capture.kind, capture.origin, capture.status, capture.amount) == ("capture", "webhook", "succeeded",
                                                                                 eur("25.00"))
        assert [(t.parent_id, t.amount) for t in txns if t.kind == "reversal"] == [(capture.id, eur("25.00"))]
        assert ledger_totals(service.get_payment(payment.id)) == app.totals(pid) == (10_000, 0, 0)
        service.reconcile(payment_id=payment.id)


def test_a_reversal_naming_an_unknown_capture_waits_for_a_capture_in_flight(
        service: PaymentService, app: FakePayApp) -> None:
    """The capture a reversed event names may be the shop's own whose answer was lost: it waits."""
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    pid = payment.reference or ""
    app.inject(Fault("drop_after", path="/captures$"))
    with pytest.raises(OutcomeUnknown):
        service.capture(payment.id, eur("25.00"), final=False)
    app.clear_faults()
    (cap,) = [c for c in app.captures.values() if c["payment"] == pid]
    _take_back(app, cap["id"])
    reversal = app.event("evt_rev", EventKind.REVERSED, cap["id"], amount=2_500,
                         references={"capture": cap["id"], "payment": pid})
    assert service.receive_webhook("fakepay", *reversal).status == "deferred"
    assert not [t for t in service.list_transactions(payment.id) if t.origin == "webhook"]
