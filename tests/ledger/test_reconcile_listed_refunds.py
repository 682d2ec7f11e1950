"""Refunds made in the provider's dashboard whose events were not delivered, read by `reconcile()`
from the provider's list of the payment's refunds: each that is provably none of the ledger's is
recorded as a succeeded refund of origin "reconcile" on the capture it names, so what each capture
has left counts it and a later refund is kept to what the provider has left on one capture; its
late event matches it, applied once. A refund of the ledger's own whose answer was lost is never
taken for one made beside it. Against the FakePay emulator over loopback HTTP, on both ledgers."""

from __future__ import annotations

import pytest

from paywire import OutcomeUnknown, StateError
from paywire.ledger import Transaction
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import FakePayApp
from tests.ledger.support import agree, eur, step_past_life


def _refunds(service: PaymentService, payment_id: str) -> list[Transaction]:
    return [t for t in service.list_transactions(payment_id) if t.kind == "refund"]


def _listed(service: PaymentService, payment_id: str) -> dict[str, tuple[str, str | None, int]]:
    """The refunds reconciliation recorded from the provider's list: by reference, their status,
    the provider reference of the capture they count against, and amount."""
    txns = service.list_transactions(payment_id)
    parents = {t.id: t.provider_reference for t in txns}
    return {t.provider_reference or "": (t.status, parents.get(t.parent_id or ""), t.amount.minor if t.amount else 0)
            for t in txns if t.kind == "refund" and t.origin == "reconcile"}


def _two_captures(service: PaymentService, app: FakePayApp) -> tuple[str, str, str]:
    """A payment with captures of 30.00 and 20.00 made by the service: its id and their references."""
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    service.capture(payment.id, eur("30.00"), final=False)
    service.capture(payment.id, eur("20.00"), final=False)
    first, second = (t.provider_reference or "" for t in service.list_transactions(payment.id) if t.kind == "capture")
    return payment.id, first, second


def test_a_dashboard_refund_read_by_reconcile_is_recorded_once_on_its_capture(
        service: PaymentService, app: FakePayApp) -> None:
    payment_id, first, second = _two_captures(service, app)
    refund = app.refund_beside(first, 2_500, emit=True)
    assert service.reconcile(payment_id=payment_id).clean
    assert _listed(service, payment_id) == {refund: ("succeeded", first, 2_500)}
    agree(service, app, payment_id)
    sent = app.count("refund")
    with pytest.raises(StateError) as refused:  # 25.00 left: 20.00 on the second capture, 5.00 on the first
        service.refund(payment_id, eur("25.00"))
    assert (refused.value.code, app.count("refund")) == ("refund_exceeds_capture", sent)
    service.refund(payment_id, eur("20.00"))  # to the capture that holds it
    (own,) = [t for t in _refunds(service, payment_id) if t.origin == "service"]
    assert [t.provider_reference for t in service.list_transactions(payment_id) if t.id == own.parent_id] == [second]
    assert service.reconcile(payment_id=payment_id).clean
    assert _listed(service, payment_id) == {refund: ("succeeded", first, 2_500)}
    assert len(_refunds(service, payment_id)) == 2
    agree(service, app, payment_id)


def test_the_late_event_of_a_refund_read_by_reconcile_applies_to_it_once(
        service: PaymentService, app: FakePayApp) -> None:
    """Its refunded event (delivered twice) finds the refund the reading recorded and adds nothing."""
    payment_id, first, _ = _two_captures(service, app)
    refund = app.refund_beside(first, 2_500, emit=True)
    assert service.reconcile(payment_id=payment_id).clean
    (recorded,) = _refunds(service, payment_id)
    (event,) = app.events_about(refund)
    assert [service.receive_webhook("fakepay", *event).status for _ in range(2)] == ["applied", "duplicate"]
    assert [(t.id, t.status) for t in _refunds(service, payment_id)] == [(recorded.id, "succeeded")]
    assert service.get_payment(payment_id).refunded == eur("25.00")
    agree(service, app, payment_id)
    with pytest.raises(StateError) as refused:  # the first capture has 5.00 left, the second 20.00
        service.refund(payment_id, eur("20.01"))
    assert refused.value.code == "refund_exceeds_capture"


def test_a_lost_refund_of_the_ledgers_is_never_recorded_as_one_made_beside_it(
        service: PaymentService, app: FakePayApp) -> None:
    """The provider made the refund, its answer was lost: the reading names it the service's own
    (by its key), one refund, not a second one made in the dashboard."""
    payment_id, _, _ = _two_captures(service, app)
    app.inject(Fault("drop_after", path="/refunds$", method="POST", times=1))
    with pytest.raises(OutcomeUnknown) as lost:
        service.refund(payment_id, eur("10.00"))
    app.clear_faults()
    assert service.reconcile(payment_id=payment_id).clean
    (refund,) = _refunds(service, payment_id)
    assert (refund.id, refund.origin, refund.status) == (lost.value.transaction_id, "service", "succeeded")
    agree(service, app, payment_id)


def test_a_listed_refund_that_may_be_a_lost_one_of_the_ledgers_is_left_to_the_floor(
        service: PaymentService, app: FakePayApp, monkeypatch: pytest.MonkeyPatch) -> None:
    """A refund of the service's own of 20.00 whose request never reached the provider (its answer
    lost: unknown), and one of 15.00 made in the dashboard on the capture it was sent to: while the
    lost one is open, the listed refund may be it applied in part, so the reading records nothing
    for it (the provider's refunded total counts it); once the lost one can no longer land and is
    concluded not applied, the next reading records the listed refund."""
    payment_id, _, second = _two_captures(service, app)
    app.inject(Fault("status", status=500, path="/refunds$", method="POST", times=1))
    with pytest.raises(OutcomeUnknown) as lost:
        service.refund(payment_id, eur("20.00"))
    app.clear_faults()
    dashboard = app.refund_beside(second, 1_500, emit=True)
    service.reconcile(payment_id=payment_id)
    assert _listed(service, payment_id) == {}
    assert service.get_payment(payment_id).refunded == eur("15.00")  # the floor alone
    assert service.get_transaction(lost.value.transaction_id or "").open
    step_past_life(service, [lost.value.transaction_id or ""], monkeypatch)
    assert service.reconcile(payment_id=payment_id).clean
    assert service.get_transaction(lost.value.transaction_id or "").status == "failed"
    assert _listed(service, payment_id) == {dashboard: ("succeeded", second, 1_500)}
    agree(service, app, payment_id)
