"""A bank account's partial capture made in Braintree's Control Panel, which Braintree holds
SETTLEMENT_PENDING and notifies nothing of until it settles or is declined: only reconcile's
reading finds it. It is recorded once, as an accepted capture of its own, so what is left to
capture leaves it out; Braintree's decision (its notification, or a later reading) settles that
one transaction. Not while a capture of paywire's own is open without its reference that it may
be (of its amount, or of more: applied in part): were it that one, recorded as made beside
paywire it would leave that one no operation to match, concluded not applied though it took
effect."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from paywire import Money, OutcomeUnknown, PaymentService, StateError
from paywire.ledger import TransactionStatus
from paywire.testing.emulator import Fault
from paywire_braintree.emulator import BraintreeEmulator
from paywire_braintree.emulator.model import Transaction as Held
from paywire_braintree.emulator.webhooks import notification_body

EUR = "EUR"
_FORM = {"content-type": "application/x-www-form-urlencoded"}
S = TransactionStatus


def eur(value: str) -> Money:
    return Money.of(value, EUR)


def _panel_capture(service: PaymentService, emulator: BraintreeEmulator, key: str) -> tuple[str, Held]:
    """An authorization of 100.00 on a bank account, and its partial capture of 30.00 made in the
    Control Panel (no orderId: it carries its authorization's), SETTLEMENT_PENDING."""
    payment = service.authorize("braintree", eur("100.00"), source="paywire-emulator-bank-account-nonce",
                                order_id=key, idempotency_key=key)
    with emulator.lock:
        child = emulator.operations.partial_capture({"transactionId": payment.reference,
                                                     "transaction": {"amount": "30.00"}})
    assert child.status == "SETTLEMENT_PENDING"
    return payment.id, child


def _captures(service: PaymentService, payment_id: str) -> list[tuple[str, str | None, Money | None, str]]:
    return [(t.status, t.provider_reference, t.amount, t.origin)
            for t in service.list_transactions(payment_id) if t.kind == "capture"]


@pytest.mark.parametrize("heard", ["notification", "reconcile"])
@pytest.mark.parametrize("settled", [True, False], ids=["settled", "declined"])
def test_a_pending_control_panel_capture_is_held_until_braintree_decides(
        service: PaymentService, emulator: BraintreeEmulator, heard: str, settled: bool) -> None:
    case = f"{heard}-{settled}"
    payment_id, child = _panel_capture(service, emulator, f"cp-capture-{case}")
    first = service.reconcile(payment_id=payment_id)
    assert first.clean, first
    again = service.reconcile(payment_id=payment_id)
    assert again.clean and not again.settled, again  # recorded once: the second reading finds it held
    assert _captures(service, payment_id) == [(S.ACCEPTED, child.id, eur("30.00"), "reconcile")]
    with pytest.raises(StateError) as refused:  # Braintree has 70.00 left to capture
        service.capture(payment_id, eur("70.01"), idempotency_key=f"cp-capture-over-{case}")
    assert refused.value.code == "capture_exceeds_authorized"
    emulator.settle(child.id, "SETTLED" if settled else "SETTLEMENT_DECLINED")
    if heard == "notification":
        with emulator.lock:
            body = notification_body(emulator.public_key, emulator.private_key,
                                     "transaction_settled" if settled else "transaction_settlement_declined",
                                     emulator.transactions[child.id])
        service.receive_webhook("braintree", _FORM, body)
    decided = [(S.SUCCEEDED if settled else S.FAILED, child.id, eur("30.00"), "reconcile")]
    if heard == "notification":
        assert _captures(service, payment_id) == decided  # the notification decides the one recorded
    report = service.reconcile(payment_id=payment_id)
    assert report.clean, report
    assert _captures(service, payment_id) == decided
    assert service.get_payment(payment_id).captured == (eur("30.00") if settled else eur("0.00"))
    left = eur("70.00") if settled else eur("100.00")  # a declined one took nothing: its amount is offered again
    with pytest.raises(StateError):
        service.capture(payment_id, left + eur("0.01"), idempotency_key=f"cp-capture-no-{case}")
    calls = len(emulator.calls)
    service.capture(payment_id, left, idempotency_key=f"cp-capture-left-{case}")
    assert len(emulator.calls) > calls
    assert [t.status for t in service.list_transactions(payment_id) if t.kind == "capture"
            and t.idempotency_key == f"cp-capture-left-{case}"] == [S.ACCEPTED]  # Braintree took it


@pytest.mark.parametrize(("lost", "at_once"), [("30.00", False), ("50.00", False), ("20.00", True)],
                         ids=["same-amount", "more", "less"])
def test_a_pending_control_panel_capture_beside_a_lost_capture_is_recorded_only_when_it_cannot_be_that_one(
        service: PaymentService, emulator: BraintreeEmulator, step_clock: Callable[..., None],
        lost: str, at_once: bool) -> None:
    """A capture of the service's own whose request never reached Braintree, its answer lost: open,
    without its reference. The Control Panel's capture may be it, unless it is of more than that one
    asked; once that one is concluded not applied (its life over), the Control Panel's is recorded."""
    key = f"cp-beside-{lost}"
    payment = service.authorize("braintree", eur("100.00"), source="paywire-emulator-bank-account-nonce",
                                order_id=key, idempotency_key=key)
    emulator.inject(Fault(kind="status", status=500, path=r"/graphql", contains=f"{key}-own"))
    with pytest.raises(OutcomeUnknown):
        service.capture(payment.id, eur(lost), idempotency_key=f"{key}-own")
    emulator.clear_faults()
    [own] = [t for t in service.list_transactions(payment.id) if t.kind == "capture"]
    assert (own.status, own.provider_reference) == (S.UNKNOWN, None)
    with emulator.lock:
        child = emulator.operations.partial_capture({"transactionId": payment.reference,
                                                     "transaction": {"amount": "30.00"}})
    service.reconcile(payment_id=payment.id)
    recorded = [(t.status, t.amount) for t in service.list_transactions(payment.id)
                if t.kind == "capture" and t.provider_reference == child.id]
    assert recorded == ([(S.ACCEPTED, eur("30.00"))] if at_once else [])
    step_clock(service)  # the lost capture's request can no longer land
    service.reconcile(payment_id=payment.id)
    assert _captures(service, payment.id) == [(S.FAILED, None, eur(lost), "service"),
                                              (S.ACCEPTED, child.id, eur("30.00"), "reconcile")]
    with pytest.raises(StateError) as refused:
        service.capture(payment.id, eur("70.01"), idempotency_key=f"{key}-over")
    assert refused.value.code == "capture_exceeds_authorized"
