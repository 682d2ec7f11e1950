"""A final capture made in PayPal's dashboard while a capture of the service's own is in flight
with its answer lost. Its PAYMENT.CAPTURE.COMPLETED says it was final (`final_capture`), which
PayPal echoes as it was asked: a capture sent not final cannot be it, so the event is applied as
it comes (the dashboard's capture, closing the capture); one sent final may be it, so the event
waits for it, and closes the capture meanwhile (a final capture took the authorization, whichever
it is). Real emulator on loopback, the service on SQLite."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import Money, OutcomeUnknown, PaymentService, StateError
from paywire.ledger import EventStatus, TransactionKind, TransactionStatus
from paywire.testing.emulator import Fault
from paywire.testing.ledger_checks import reconciled_again_changes_nothing

from .conftest import after_their_lives
from .test_ledger_follows_paypal import Dashboard


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def _authorized(paypal: Any, service: PaymentService) -> tuple[str, str]:
    """A payment of 100.00 authorized by a vaulted card: its id and its authorization's."""
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    return payment.id, payment.references["authorization"]


def _lost_capture(paypal: Any, service: PaymentService, payment_id: str, amount: str, *, final: bool,
                  fault: Fault) -> str:
    """A capture of the service's own whose answer is lost (`fault`): its transaction's id."""
    paypal.app.inject(fault)
    with pytest.raises(OutcomeUnknown) as lost:
        service.capture(payment_id, eur(amount), final=final, idempotency_key=paypal.key())
    paypal.app.clear_faults()
    assert lost.value.transaction_id
    return lost.value.transaction_id


def _deliver(paypal: Any, service: PaymentService, capture: str) -> str:
    """PayPal's PAYMENT.CAPTURE.COMPLETED about `capture`, delivered twice: its id."""
    (event,) = [e for e in paypal.app.events
                if e["event_type"] == "PAYMENT.CAPTURE.COMPLETED" and e["resource"]["id"] == capture]
    body, headers = paypal.app.signed_event(event)
    for _ in range(2):
        service.receive_webhook("paypal", headers, body)
    return str(event["id"])


def _event_status(service: PaymentService, event_id: str) -> str:
    stored = service.ledger.get_event("paypal", event_id)
    assert stored is not None
    return stored.status


def _refused_closed(paypal: Any, service: PaymentService, payment_id: str) -> None:
    sent = paypal.calls("/capture", "POST")
    with pytest.raises(StateError) as refused:
        service.capture(payment_id, eur("0.01"), final=False, idempotency_key=paypal.key())
    assert refused.value.code == "capture_closed", refused.value
    assert paypal.calls("/capture", "POST") == sent


def _captures(service: PaymentService, payment_id: str) -> list[Any]:
    return [t for t in service.list_transactions(payment_id) if t.kind == TransactionKind.CAPTURE]


def _ends_as_paypal(paypal: Any, service: PaymentService, payment_id: str, captured: str) -> None:
    """Reconciled: the ledger holds what PayPal holds, its capture closed, every event applied
    once, and reconciling again changes nothing."""
    assert service.reconcile(payment_id=payment_id).clean
    payment = service.get_payment(payment_id)
    assert (payment.authorized, payment.captured, payment.refunded) == (eur("100.00"), eur(captured), eur("0.00"))
    assert payment.observed_captured.minor <= payment.captured.minor
    assert payment.capture_closed
    assert not service.ledger.list_events(statuses=[EventStatus.DEFERRED], payment_id=payment_id)
    reconciled_again_changes_nothing(service, payment_id)


@pytest.mark.parametrize("lost_first", [False, True], ids=["dashboard event first", "lost capture's event first"])
@pytest.mark.parametrize(("lost", "beside", "both"), [("0.01", "0.01", "0.02"), ("10.00", "30.00", "40.00")])
def test_a_final_dashboard_capture_beside_a_lost_capture_not_final_closes_at_once(
        paypal: Any, service: PaymentService, lost_first: bool, lost: str, beside: str, both: str) -> None:
    payment_id, authorization = _authorized(paypal, service)
    txn_id = _lost_capture(paypal, service, payment_id, lost, final=False,
                           fault=Fault(kind="drop_after", path="/capture$"))
    (own,) = paypal.app.captures  # PayPal made it: only its answer was lost
    dashboard = Dashboard(paypal.url).capture(paypal.app, authorization, beside, final=True)
    order = [own, dashboard] if lost_first else [dashboard, own]
    events = {capture: _deliver(paypal, service, capture) for capture in order}

    # The lost capture's event waits for it; the dashboard's cannot be it, and applies as it comes.
    assert _event_status(service, events[own]) == EventStatus.DEFERRED
    assert _event_status(service, events[dashboard]) == EventStatus.APPLIED
    (recorded,) = [t for t in _captures(service, payment_id) if t.provider_reference == dashboard]
    assert (recorded.origin, recorded.status, recorded.amount, recorded.request.get("final")) == (
        "webhook", TransactionStatus.SUCCEEDED, eur(beside), True)
    payment = service.get_payment(payment_id)
    assert payment.capture_closed and payment.captured == eur(beside)
    _refused_closed(paypal, service, payment_id)

    _ends_as_paypal(paypal, service, payment_id, both)
    held = {t.provider_reference: t for t in _captures(service, payment_id)}
    assert set(held) == {own, dashboard}  # each once
    assert (held[own].id, held[own].status) == (txn_id, TransactionStatus.SUCCEEDED)
    assert _event_status(service, events[own]) == EventStatus.APPLIED


def test_a_final_capture_event_waits_for_a_lost_final_capture_and_names_it(
        paypal: Any, service: PaymentService) -> None:
    """The lost capture asked to be final: the event may be its own (it is), so it waits, closing
    the capture meanwhile, and reconciliation names the capture it is about: one capture."""
    payment_id, _ = _authorized(paypal, service)
    txn_id = _lost_capture(paypal, service, payment_id, "40.00", final=True,
                           fault=Fault(kind="drop_after", path="/capture$"))
    (own,) = paypal.app.captures
    event_id = _deliver(paypal, service, own)
    assert _event_status(service, event_id) == EventStatus.DEFERRED
    payment = service.get_payment(payment_id)
    assert payment.capture_closed and payment.captured == eur("0.00")  # counted in flight, not twice
    assert [t.id for t in _captures(service, payment_id)] == [txn_id]
    _refused_closed(paypal, service, payment_id)

    _ends_as_paypal(paypal, service, payment_id, "40.00")
    (capture,) = _captures(service, payment_id)
    assert (capture.id, capture.provider_reference, capture.status) == (txn_id, own, TransactionStatus.SUCCEEDED)
    assert _event_status(service, event_id) == EventStatus.APPLIED


def test_a_final_dashboard_capture_waiting_on_a_lost_final_capture_closes_while_it_waits(
        paypal: Any, service: PaymentService, monkeypatch: pytest.MonkeyPatch) -> None:
    """The lost final capture never reached PayPal, and the dashboard's final capture came: its
    event waits for the lost one (it may be its own), and closes the capture meanwhile, whichever
    it is; reconciled, the lost one is found absent, PayPal's list records the dashboard's, and
    the event applies to that one capture."""
    payment_id, authorization = _authorized(paypal, service)
    # Of more than the lost one asked: reconciliation cannot take it for that one applied in part.
    txn_id = _lost_capture(paypal, service, payment_id, "20.00", final=True,
                           fault=Fault(kind="status", status=503, path="/capture$", times=10))
    assert not paypal.app.captures
    dashboard = Dashboard(paypal.url).capture(paypal.app, authorization, "30.00", final=True)
    event_id = _deliver(paypal, service, dashboard)
    assert _event_status(service, event_id) == EventStatus.DEFERRED
    payment = service.get_payment(payment_id)
    assert payment.capture_closed and payment.captured == eur("0.00")
    _refused_closed(paypal, service, payment_id)
    after_their_lives(service, monkeypatch)  # the lost one can no longer land: reconcile concludes it
    _ends_as_paypal(paypal, service, payment_id, "30.00")
    assert service.get_transaction(txn_id).status == TransactionStatus.FAILED
    (recorded,) = [t for t in _captures(service, payment_id) if t.provider_reference == dashboard]
    assert (recorded.origin, recorded.status) == ("reconcile", TransactionStatus.SUCCEEDED)
    assert _event_status(service, event_id) == EventStatus.APPLIED
