"""A capture or refund the provider applied in part, met again later: its event, when its answer
named no capture object, and the provider undoing it. Either counts what the provider applied,
never what was asked: the event names the operation (no second capture "made outside paywire"),
and undoing it takes back what it applied from the totals the provider reported."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from paywire import EventKind, OutcomeUnknown, hookimpl
from paywire.ledger import EventStatus, Ledger, TransactionStatus
from paywire.service import PaymentService
from paywire.service.held import HELD
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import FakePayApp, make_gateway
from tests.ledger.support import PATIENT, agree, eur, ledger_totals, only, provider_totals, step_past_life
from tests.ledger.test_reconcile import ListNoCaptureKeys

S = TransactionStatus


class AnswerNoCaptureId:
    """A provider whose capture answer says what was captured but names no capture object: the
    capture never learns its reference from its answer."""

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Iterator[None]:
        response: Any = yield
        if command == "capture" and response.status == 200:
            data = {**json.loads(response.body), "id": None}
            return attrs.evolve(response, body=json.dumps(data).encode(), data=None)
        return response


@pytest.mark.parametrize(("source", "captured"), [("tok_partial_capture", "10.00"), ("tok_ok", "20.00")])
def test_the_event_of_a_capture_that_never_learnt_its_reference_names_it_at_what_was_applied(
        fakepay: tuple[FakePayApp, str], ledger: Ledger, source: str, captured: str) -> None:
    """A capture of 20.00 the issuer honoured in part (10.00) or in full, answered with no capture
    object: its event reports what was captured, and names it; nothing counts twice."""
    app = fakepay[0]
    with make_gateway(fakepay[1], extra=[AnswerNoCaptureId()]) as gateway:
        service = PaymentService(gateway, ledger)
        payment = service.authorize("fakepay", eur("50.00"), source=source)
        payment = service.capture(payment.id, eur("20.00"), final=False)
        capture = only(service.list_transactions(payment.id), "capture")
        assert capture.status == S.SUCCEEDED and capture.provider_reference is None
        assert payment.captured == eur(captured)
        (cap_id,) = app.payments[payment.reference or ""]["_captures"]
        (event,) = app.events_about(cap_id)
        assert json.loads(event[1])["amount"] == eur(captured).minor
        received = service.receive_webhook("fakepay", *event)
        assert received.status == EventStatus.APPLIED
        txns = service.list_transactions(payment.id)
        assert [t.origin for t in txns if t.origin == "webhook"] == []  # no capture "made outside paywire"
        assert only(txns, "capture").provider_reference == cap_id
        assert service.get_payment(payment.id).captured == eur(captured)
        agree(service, app, payment.id)


def _undo(app: FakePayApp, object_id: str) -> None:
    """The provider undoes a capture (declined at settlement) or a refund (returned by the bank)
    after it succeeded: its totals drop by what the operation applied."""
    with app.lock:
        if object_id in app.captures:
            cap = app.captures[object_id]
            cap["status"] = "failed"
            app.payments[cap["payment"]]["captured"] -= cap["amount"]
        else:
            refund = app.refunds[object_id]
            refund["status"] = "failed"
            app.captures[refund["capture"]]["refunded"] -= refund["amount"]
            app.payments[refund["payment"]]["refunded"] -= refund["amount"]


@pytest.mark.parametrize("kind", ["capture", "refund"])
def test_undoing_an_operation_applied_in_part_takes_back_what_it_applied(
        service: PaymentService, app: FakePayApp, kind: str) -> None:
    """A capture of 20.00 honoured for 10.00 (or a refund of 8.00 of which 4.00 returned), its
    total read by reconciliation, then undone by the provider: the reported total comes down by
    what was applied, so the ledger claims what the provider holds, no more and no less."""
    payment = service.authorize("fakepay", eur("50.00"), source="tok_async")
    service.capture(payment.id, eur("20.00"), final=False)
    capture = only(service.list_transactions(payment.id), "capture").provider_reference or ""
    service.receive_webhook("fakepay", *app.decide(capture, applied=1_000 if kind == "capture" else None))
    target = capture
    if kind == "refund":
        service.refund(payment.id, eur("8.00"))
        target = only(service.list_transactions(payment.id), "refund").provider_reference or ""
        service.receive_webhook("fakepay", *app.decide(target, applied=400))
    txn = only(service.list_transactions(payment.id), kind)
    assert txn.status == S.SUCCEEDED and txn.response[HELD] == (1_000 if kind == "capture" else 400)
    assert service.reconcile(payment_id=payment.id).mismatches == ()  # the provider's totals, read as floors
    payment = service.get_payment(payment.id)
    assert ledger_totals(payment) == app.totals(payment.reference or "")
    _undo(app, target)
    undone = service.receive_webhook("fakepay", *app.event(
        "evt_undone", EventKind.REVERSED if kind == "capture" else EventKind.FAILED, target))
    assert undone.status == EventStatus.APPLIED
    assert only(service.list_transactions(payment.id), "reversal").amount == eur(
        "10.00" if kind == "capture" else "4.00")  # what the provider undid
    payment = service.get_payment(payment.id)
    assert ledger_totals(payment) == app.totals(payment.reference or "") == (
        (5_000, 0, 0) if kind == "capture" else (5_000, 2_000, 0))
    agree(service, app, payment.id)


def test_a_lost_capture_applied_in_part_is_never_concluded_not_applied(
        fakepay: tuple[FakePayApp, str], ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """A capture of 20.00 the issuer honoured in part (10.00), its answer lost, reconciled once its
    request can no longer land through a provider that lists captures without keys: no listed
    capture is of 20.00, yet the one of 10.00 may be it. It was recorded failed ("not applied ...
    send a new request"), inviting a second capture."""
    app = fakepay[0]
    # Every answer read however loaded the machine: the capture is lost by a fault, its life stepped past.
    with make_gateway(fakepay[1], extra=[ListNoCaptureKeys()], **PATIENT) as gateway:
        service = PaymentService(gateway, ledger, margin=0)
        payment = service.authorize("fakepay", eur("50.00"), source="tok_partial_capture")
        app.inject(Fault("drop_after", path="/captures$"))
        with pytest.raises(OutcomeUnknown):
            service.capture(payment.id, eur("20.00"), final=False)
        capture = only(service.list_transactions(payment.id), "capture")
        step_past_life(service, [capture.id], monkeypatch)
        report = service.reconcile(payment_id=payment.id)
        assert [s.status for s in report.settled] == [], report
        assert service.get_transaction(capture.id).status == S.UNKNOWN
        assert any("applied in part" in s.note for s in report.unresolved), report
        after = service.get_payment(payment.id)
        assert after.captured == eur("10.00")  # the provider's total, as a floor
        assert ledger_totals(after) == provider_totals(app, after)


def test_a_reversal_naming_the_capture_that_never_learnt_its_reference_undoes_it(
        fakepay: tuple[FakePayApp, str], ledger: Ledger) -> None:
    """A reversed event naming, with its amount, a capture the ledger holds by no reference names
    the capture that applied that amount and never learnt its reference, and undoes it: no second
    capture is recorded, and the totals count it no more, its own event delivered late included."""
    app = fakepay[0]
    with make_gateway(fakepay[1], extra=[AnswerNoCaptureId()]) as gateway:
        service = PaymentService(gateway, ledger)
        payment = service.authorize("fakepay", eur("50.00"), source="tok_ok")
        payment = service.capture(payment.id, eur("20.00"), final=False)
        (cap_id,) = app.payments[payment.reference or ""]["_captures"]
        _undo(app, cap_id)
        reversal = app.event("evt_rev", EventKind.REVERSED, cap_id, amount=2_000,
                             references={"capture": cap_id, "payment": payment.reference or ""})
        assert service.receive_webhook("fakepay", *reversal).status == EventStatus.APPLIED
        for event in app.events_about(cap_id):  # the capture's own event, late
            service.receive_webhook("fakepay", *event)
        txns = service.list_transactions(payment.id)
        capture = only(txns, "capture")
        assert (capture.origin, capture.provider_reference) == ("service", cap_id)
        assert [t.parent_id for t in txns if t.kind == "reversal"] == [capture.id]
        assert ledger_totals(service.get_payment(payment.id)) == (5_000, 0, 0)
