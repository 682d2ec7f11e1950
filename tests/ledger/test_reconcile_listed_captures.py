"""Captures made in the provider's dashboard whose events were not delivered, read by
`reconcile()` from the provider's list of the payment's captures: each that is provably none of
the ledger's is recorded as a succeeded capture of origin "reconcile", with its own reference and
amount, so a refund acts on a real capture and is kept to what that capture holds (the provider
refunds one capture at a time), and its late event or a refund of it matches it, applied once.
One that may be a capture of the ledger's own whose answer was lost is left to the provider's
captured total (the floor) until that one is settled. Against the FakePay emulator over loopback
HTTP, on both ledgers."""

from __future__ import annotations

import pytest

from paywire import OutcomeUnknown, StateError
from paywire.ledger import Transaction
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import FakePayApp
from tests.ledger.support import agree, eur, ledger_totals, step_past_life


def _dashboard_capture(app: FakePayApp, pid: str, amount: int) -> str:
    """A capture made in the provider's dashboard, with no word to the ledger yet: its id (its
    event is emitted, not delivered)."""
    with app.lock:
        return str(app._capture(app.payments[pid], amount, final=False)["id"])


def _captures(service: PaymentService, payment_id: str) -> list[Transaction]:
    return [t for t in service.list_transactions(payment_id) if t.kind == "capture"]


def _listed(service: PaymentService, payment_id: str) -> dict[str, tuple[str, str, int]]:
    """The captures reconciliation recorded from the provider's list: by reference, their status,
    origin and amount."""
    return {t.provider_reference or "": (t.status, t.origin, t.amount.minor if t.amount else 0)
            for t in _captures(service, payment_id) if t.origin == "reconcile"}


def _delivered_twice(service: PaymentService, app: FakePayApp, reference: str) -> None:
    """The provider's event about `reference` delivered, applied, then delivered again."""
    (event,) = app.events_about(reference)
    assert [service.receive_webhook("fakepay", *event).status for _ in range(2)] == ["applied", "duplicate"]


def test_dashboard_captures_read_by_reconcile_are_recorded_and_a_refund_kept_to_one(
        service: PaymentService, app: FakePayApp) -> None:
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    pid = payment.reference or ""
    first, second = _dashboard_capture(app, pid, 3_000), _dashboard_capture(app, pid, 2_000)
    assert service.reconcile(payment_id=payment.id).clean
    assert _listed(service, payment.id) == {first: ("succeeded", "reconcile", 3_000),
                                            second: ("succeeded", "reconcile", 2_000)}
    agree(service, app, payment.id)
    refunds = app.count("refund")
    with pytest.raises(StateError) as refused:  # 50.00 captured, no one capture holding more than 30.00
        service.refund(payment.id, eur("30.01"))
    assert (refused.value.code, app.count("refund")) == ("refund_exceeds_capture", refunds)
    assert not [t for t in service.list_transactions(payment.id) if t.kind == "refund"]
    refunded = service.refund(payment.id, eur("30.00"))  # to the capture that holds it
    (refund,) = [t for t in service.list_transactions(payment.id) if t.kind == "refund"]
    (parent,) = [t for t in _captures(service, payment.id) if t.id == refund.parent_id]
    assert (parent.provider_reference, refund.status) == (first, "succeeded")
    assert ledger_totals(refunded) == app.totals(pid) == (10_000, 5_000, 3_000)
    assert service.reconcile(payment_id=payment.id).clean
    assert len(_captures(service, payment.id)) == 2


def test_the_late_events_of_a_capture_read_by_reconcile_apply_to_it_once(
        service: PaymentService, app: FakePayApp) -> None:
    """Its captured event (delivered twice) finds the capture the reading recorded and adds
    nothing; a refund of it made in the dashboard is recorded on it, and what is left to refund
    of it is what the provider has left."""
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    pid = payment.reference or ""
    capture = _dashboard_capture(app, pid, 4_000)
    assert service.reconcile(payment_id=payment.id).clean
    (recorded,) = _captures(service, payment.id)
    _delivered_twice(service, app, capture)
    assert [(t.id, t.status) for t in _captures(service, payment.id)] == [(recorded.id, "succeeded")]
    agree(service, app, payment.id)
    with app.lock:  # a refund made in the dashboard, its event emitted
        cap = app.captures[capture]
        refund = {"id": app._id("re"), "amount": 1_500, "currency": "EUR", "capture": capture, "payment": pid,
                  "status": "succeeded", "idempotency_key": None}
        app.refunds[refund["id"]] = refund
        app.payments[pid]["_refunds"].append(refund["id"])
        app._refund_succeeded(app.payments[pid], cap, refund)
    _delivered_twice(service, app, str(refund["id"]))
    (outside,) = [t for t in service.list_transactions(payment.id) if t.kind == "refund"]
    assert (outside.origin, outside.parent_id, outside.amount) == ("webhook", recorded.id, eur("15.00"))
    agree(service, app, payment.id)
    with pytest.raises(StateError) as refused:  # 25.00 left of 40.00
        service.refund(payment.id, eur("25.01"))
    assert refused.value.code == "refund_exceeds_captured"
    assert service.refund(payment.id, eur("25.00")).refunded == eur("40.00")
    agree(service, app, payment.id)


def test_the_late_event_of_a_capture_read_by_reconcile_that_says_it_was_final_closes_the_capture(
        service: PaymentService, app: FakePayApp) -> None:
    """A provider's list says nothing of a capture's finality: the reading records the capture
    not final, and its late event saying it was (`closes_capture`) closes the payment's capture,
    as for one the reading recorded undecided."""
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    pid = payment.reference or ""
    with app.lock:
        capture = str(app._capture(app.payments[pid], 4_000, final=False, emit=False)["id"])
    assert service.reconcile(payment_id=payment.id).clean
    (recorded,) = _captures(service, payment.id)
    assert (recorded.origin, recorded.request.get("final"), service.get_payment(payment.id).capture_closed) == (
        "reconcile", None, False)
    event = app.event("evt_final", "captured", capture, amount=4_000, references={"payment": pid},
                      closes_capture=True)
    assert service.receive_webhook("fakepay", *event).status == "applied"
    assert [t.id for t in _captures(service, payment.id)] == [recorded.id]
    assert service.get_payment(payment.id).capture_closed
    with pytest.raises(StateError) as refused:
        service.capture(payment.id, eur("0.01"), final=False)
    assert refused.value.code == "capture_closed"


def test_a_listed_capture_that_may_be_a_lost_one_of_the_ledgers_is_left_to_the_floor(
        service: PaymentService, app: FakePayApp, monkeypatch: pytest.MonkeyPatch) -> None:
    """A capture of the service's own of 30.00 whose request never reached the provider (its
    answer lost: unknown), and one of 20.00 made in the dashboard: while the lost one is open, the
    listed capture may be it applied in part, so the reading records nothing for it (the
    provider's captured total counts it); once the lost one can no longer land and is concluded
    not applied, the next reading records the listed capture."""
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    pid = payment.reference or ""
    app.inject(Fault("status", status=500, path="/captures$", method="POST", times=1))
    with pytest.raises(OutcomeUnknown) as lost:
        service.capture(payment.id, eur("30.00"), final=False)
    app.clear_faults()
    dashboard = _dashboard_capture(app, pid, 2_000)
    service.reconcile(payment_id=payment.id)
    assert _listed(service, payment.id) == {}
    held = service.get_payment(payment.id)
    assert (held.captured, held.observed_captured) == (eur("20.00"), eur("20.00"))  # the floor alone
    assert service.get_transaction(lost.value.transaction_id or "").open
    step_past_life(service, [lost.value.transaction_id or ""], monkeypatch)
    assert service.reconcile(payment_id=payment.id).clean
    assert service.get_transaction(lost.value.transaction_id or "").status == "failed"
    assert _listed(service, payment.id) == {dashboard: ("succeeded", "reconcile", 2_000)}
    agree(service, app, payment.id)


def test_a_lost_capture_of_the_ledgers_is_never_recorded_as_one_made_beside_it(
        service: PaymentService, app: FakePayApp) -> None:
    """The provider made the capture, its answer was lost: the reading names it the service's own
    (by its key), one capture, not a second one made in the dashboard."""
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    app.inject(Fault("drop_after", path="/captures$", method="POST", times=1))
    with pytest.raises(OutcomeUnknown) as lost:
        service.capture(payment.id, eur("30.00"), final=False)
    app.clear_faults()
    assert service.reconcile(payment_id=payment.id).clean
    (capture,) = _captures(service, payment.id)
    assert (capture.id, capture.origin, capture.status) == (lost.value.transaction_id, "service", "succeeded")
    agree(service, app, payment.id)
