"""A refund made in Stripe's dashboard that Stripe has not decided yet (`pending`): the ledger holds
it as an accepted refund of its own (from its event, or from reconcile's reading), so what is left
to refund leaves it out, and Stripe's decision, however it comes (its events, in any order, or a
reading after they were lost), settles that one transaction: counted refunded once when it
succeeded, refundable again when it failed."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from paywire import Money, PaymentService, PaywireError, StateError
from paywire.ledger import TransactionStatus
from paywire.testing.emulator import Fault

Deliver = Callable[[set[str]], list[str]]
_RETURN = "https://shop.example/r"
S = TransactionStatus


def _eur(minor: int) -> Money:
    return Money(minor, "EUR")


def _dashboard_refund(service: PaymentService, api: Any, app: Any) -> tuple[str, str]:
    """A sale of 100.00 whose refunds start pending, and a pending refund of 60.00 made beside
    paywire: (payment id, refund id)."""
    payment = service.sale("stripe", _eur(10000), source="pm_card_pendingRefund", return_url=_RETURN)
    refund = api.ok("POST", "/v1/refunds", {"payment_intent": payment.reference, "amount": 6000})
    assert refund["status"] == "pending"
    return payment.id, refund["id"]


def _refunds(service: PaymentService, payment_id: str) -> list[tuple[str, str | None, Money | None]]:
    return [(t.status, t.provider_reference, t.amount) for t in service.list_transactions(payment_id)
            if t.kind == "refund"]


def _held_in_flight(service: PaymentService, payment_id: str) -> None:
    """Stripe holds 40.00 unrefunded: more is refused before anything is sent."""
    with pytest.raises(StateError) as refused:
        service.refund(payment_id, _eur(4001))
    assert refused.value.code == "refund_exceeds_captured"


def _decided(service: PaymentService, app: Any, payment_id: str, refund: str, succeeded: bool) -> None:
    """The refund settled once, as Stripe decided it; the ledger holds what Stripe holds."""
    assert _refunds(service, payment_id) == [(S.SUCCEEDED if succeeded else S.FAILED, refund, _eur(6000))]
    payment = service.get_payment(payment_id)
    assert (payment.captured, payment.refunded) == (_eur(10000), _eur(6000 if succeeded else 0))
    assert app.store.refunds[refund]["status"] == ("succeeded" if succeeded else "failed")
    report = service.reconcile(payment_id=payment_id)
    assert report.clean and not report.settled, report
    assert _refunds(service, payment_id)[0][0] == (S.SUCCEEDED if succeeded else S.FAILED)


def _refund_what_is_left(service: PaymentService, app: Any, payment_id: str, left: int) -> None:
    """Exactly `left` is offered: one cent more is refused unsent, `left` is sent and Stripe takes it."""
    with pytest.raises(StateError) as refused:
        service.refund(payment_id, _eur(left + 1))
    assert refused.value.code == "refund_exceeds_captured"
    before = len(app.store.refunds)
    service.refund(payment_id, _eur(left))
    assert len(app.store.refunds) == before + 1
    assert [t.status for t in service.list_transactions(payment_id) if t.kind == "refund"][-1] == S.ACCEPTED


@pytest.mark.parametrize("succeeded", [True, False], ids=["succeeds", "fails"])
def test_a_pending_dashboard_refund_is_settled_by_its_events(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver, succeeded: bool) -> None:
    seen: set[str] = set()
    payment_id, refund = _dashboard_refund(service, api, app)
    deliver_all(seen)
    assert _refunds(service, payment_id) == [(S.ACCEPTED, refund, _eur(6000))]
    _held_in_flight(service, payment_id)
    app.settle(refund, succeeded)
    deliver_all(seen)
    _decided(service, app, payment_id, refund, succeeded)
    _refund_what_is_left(service, app, payment_id, 4000 if succeeded else 10000)


@pytest.mark.parametrize("succeeded", [True, False], ids=["succeeds", "fails"])
def test_a_pending_dashboard_refund_decided_while_its_events_were_lost_is_settled_by_reconcile(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver, succeeded: bool) -> None:
    seen: set[str] = set()
    payment_id, refund = _dashboard_refund(service, api, app)
    deliver_all(seen)
    _held_in_flight(service, payment_id)
    app.settle(refund, succeeded)
    lost = [e for e in app.store.events if e not in seen]
    report = service.reconcile(payment_id=payment_id)
    assert [(s.status, s.kind) for s in report.settled] == [(S.SUCCEEDED if succeeded else S.FAILED, "refund")]
    assert report.clean, report
    _decided(service, app, payment_id, refund, succeeded)
    deliver_all(seen)  # the lost events come after all: they change nothing
    assert lost and all(e in seen for e in lost)
    _decided(service, app, payment_id, refund, succeeded)
    _refund_what_is_left(service, app, payment_id, 4000 if succeeded else 10000)


@pytest.mark.parametrize("succeeded", [True, False], ids=["succeeds", "fails"])
def test_reconcile_alone_records_a_pending_dashboard_refund_and_settles_it_later(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver, succeeded: bool) -> None:
    payment_id, refund = _dashboard_refund(service, api, app)
    report = service.reconcile(payment_id=payment_id)  # no event delivered
    assert report.clean, report
    assert [(s.status, s.kind) for s in report.settled] == [(S.ACCEPTED, "refund")]
    [txn] = [t for t in service.list_transactions(payment_id) if t.kind == "refund"]
    assert (txn.status, txn.origin, txn.provider_reference, txn.amount) == (S.ACCEPTED, "reconcile", refund,
                                                                           _eur(6000))
    again = service.reconcile(payment_id=payment_id)  # still pending at Stripe: nothing recorded twice
    assert again.clean and not again.settled, again
    _held_in_flight(service, payment_id)
    with pytest.raises(PaywireError):  # never resent: Stripe made it, not paywire
        service.retry(txn.id)
    app.settle(refund, succeeded)
    report = service.reconcile(payment_id=payment_id)
    assert [(s.transaction_id, s.status) for s in report.settled] == [
        (txn.id, S.SUCCEEDED if succeeded else S.FAILED)]
    _decided(service, app, payment_id, refund, succeeded)
    deliver_all(set())  # every event, the pending one among them, comes late
    _decided(service, app, payment_id, refund, succeeded)
    _refund_what_is_left(service, app, payment_id, 4000 if succeeded else 10000)


@pytest.mark.parametrize("succeeded", [True, False], ids=["succeeds", "fails"])
def test_a_pending_event_delivered_after_the_refund_was_decided_reopens_nothing(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver, succeeded: bool) -> None:
    seen: set[str] = set()
    payment_id, refund = _dashboard_refund(service, api, app)
    api.ok("POST", f"/v1/refunds/{refund}", {"metadata": {"note": "by hand"}})  # refund.updated, still pending
    pending = [e for e in app.store.events if app.store.events[e]["data"]["object"].get("status") == "pending"]
    assert len(pending) == 2
    seen.update(pending)
    app.settle(refund, succeeded)
    deliver_all(seen)  # every event but the pending ones
    if succeeded:
        _decided(service, app, payment_id, refund, succeeded)
    else:  # a failed refund the ledger never held moved no money: its events wait for it
        assert _refunds(service, payment_id) == []
        assert service.get_payment(payment_id).refunded == _eur(0)
    for event_id in pending + pending:  # late, then again
        body, headers = app.signed_event(event_id)
        receipt = service.receive_webhook("stripe", headers, body)
        _decided(service, app, payment_id, refund, succeeded)
        assert receipt.kind == "refund_pending"  # read as Stripe holding it undecided, and still no effect
    _refund_what_is_left(service, app, payment_id, 4000 if succeeded else 10000)


def test_the_pending_events_of_the_services_own_refund_record_nothing_more(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver) -> None:
    """The service's own pending refund, one with its answer and one whose answer was lost (its
    event waits for reconcile to name it), beside a pending dashboard refund: three refunds at
    Stripe, three transactions, each held in flight until Stripe decides it."""
    seen: set[str] = set()
    payment = service.sale("stripe", _eur(10000), source="pm_card_pendingRefund", return_url=_RETURN)
    service.refund(payment.id, _eur(1000))
    app.inject(Fault(kind="drop_after", path=r"^/v1/refunds$"))
    with pytest.raises(PaywireError):
        service.refund(payment.id, _eur(2000))
    dashboard = api.ok("POST", "/v1/refunds", {"payment_intent": payment.reference, "amount": 3000})["id"]
    deliver_all(seen)
    deliver_all(seen)
    service.reconcile(payment_id=payment.id)
    made = {r["id"]: r["amount"] for r in app.store.refunds.values()}
    assert sorted(_refunds(service, payment.id), key=lambda r: r[2].minor if r[2] else 0) == [
        (S.ACCEPTED, ref, _eur(amount)) for ref, amount in sorted(made.items(), key=lambda item: item[1])]
    # Its event waited for the lost refund (it may have been that one): reconcile named the lost one
    # and recorded the dashboard's from its reading, and the waiting event then found it held.
    assert [t.origin for t in service.list_transactions(payment.id) if t.provider_reference == dashboard] == [
        "reconcile"]
    with pytest.raises(StateError) as refused:
        service.refund(payment.id, _eur(4001))
    assert refused.value.code == "refund_exceeds_captured"
    for ref in made:
        app.settle(ref, True)
    deliver_all(seen)
    report = service.reconcile(payment_id=payment.id)
    assert report.clean, report
    assert [status for status, _, _ in _refunds(service, payment.id)] == [S.SUCCEEDED] * 3
    assert service.get_payment(payment.id).refunded == _eur(6000)
