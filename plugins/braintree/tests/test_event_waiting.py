"""A Control Panel capture or refund whose transaction_settled notification waits for one of the
service's own whose answer was lost: it may be that one, or another made beside paywire. Until
reconciliation says which, a new capture or refund counts both as taken, so the service never
sends one Braintree would refuse (91522: more than the authorization has left; 91521: more than
the sale has left to refund); once it knows, what is left is offered again."""

from __future__ import annotations

import pytest

from paywire import Money, OutcomeUnknown, PaymentService, StateError
from paywire.service import rules
from paywire.service.webhooks import reported_waiting
from paywire.testing.emulator import Fault
from paywire_braintree.emulator import BraintreeEmulator

from .conftest import KeptNotifications, ServiceFactory

_FORM = {"content-type": "application/x-www-form-urlencoded"}


def _eur(minor: int) -> Money:
    return Money(minor, "EUR")


def _left(app: BraintreeEmulator, reference: str) -> int:
    """What Braintree still lets be captured of the authorization, in cents."""
    with app.lock:
        root = app.transactions[reference]
        taken = sum(app.transactions[c].amount for c in root.children
                    if app.transactions[c].status not in ("VOIDED", "SETTLEMENT_DECLINED"))
        return int((root.amount - taken) * 100)


def _lost_capture_and_a_panel_one(service: PaymentService, app: KeptNotifications, panel: str) -> tuple[str, str]:
    """An authorization of 100.00, a capture of 12.39 whose answer was lost (Braintree made it),
    and a Control Panel capture of `panel`, settled, its notification delivered: it waits."""
    payment = service.authorize("braintree", _eur(10000), source="fake-valid-nonce", order_id="o",
                                idempotency_key="auth")
    reference = payment.reference or ""
    app.inject(Fault(kind="drop_after", path=r"/graphql/partialCaptureTransaction$"))
    with pytest.raises(OutcomeUnknown):
        service.capture(payment.id, _eur(1239), idempotency_key="lost")
    app.clear_faults()
    with app.lock:
        made = app.operations.partial_capture({"transactionId": reference, "transaction": {"amount": panel}})
    app.settle(made.id)
    (body,) = app.sent
    assert service.receive_webhook("braintree", _FORM, body).status == "deferred"
    return payment.id, reference


def test_a_capture_beyond_what_braintree_may_have_left_is_refused_until_reconciled(
        services: ServiceFactory, app: KeptNotifications) -> None:
    service = services(app=app)
    payment_id, reference = _lost_capture_and_a_panel_one(service, app, "31.56")
    assert _left(app, reference) == 5605
    calls = len(app.calls)
    with pytest.raises(StateError) as refused:
        service.capture(payment_id, _eur(5606), idempotency_key="more")  # Braintree would refuse it (91522)
    assert refused.value.code == "capture_exceeds_authorized"
    assert "reconcile" in str(refused.value) and "31.56 EUR" in str(refused.value)
    assert len(app.calls) == calls  # nothing was sent
    service.reconcile(payment_id=payment_id)
    assert service.get_payment(payment_id).captured == _eur(1239 + 3156)
    service.capture(payment_id, _eur(5605), idempotency_key="rest")
    assert _left(app, reference) == 0


def test_the_rules_count_the_waiting_capture_beside_the_lost_one(services: ServiceFactory, app: KeptNotifications) -> None:
    """The lost capture's own notification is among those that wait (either may be the other):
    the rules count both, the most Braintree may have taken."""
    service = services(app=app)
    payment_id, reference = _lost_capture_and_a_panel_one(service, app, "12.39")
    payment, txns = service.get_payment(payment_id), service.list_transactions(payment_id)
    with service.ledger.unit() as u:
        waiting = reported_waiting(u, payment, "capture")
    assert waiting.amount == _eur(1239) and not waiting.voided
    caps = service.gateway.method("braintree").capabilities
    rules.check_capture(payment, txns, _eur(_left(app, reference)), caps, reported=lambda: waiting)
    with pytest.raises(StateError):
        rules.check_capture(payment, txns, _eur(_left(app, reference) + 1), caps, reported=lambda: waiting)


def _left_to_refund(app: BraintreeEmulator, reference: str) -> int:
    """What Braintree would still refund of the sale, in cents."""
    with app.lock:
        sale = app.transactions[reference]
        return int((sale.amount - sum(app.transactions[r].amount for r in sale.refunds)) * 100)


@pytest.mark.parametrize("twin", ["10.00", "2.50"])
def test_a_refund_beyond_what_braintree_may_have_left_is_refused_until_reconciled(
        services: ServiceFactory, app: KeptNotifications, twin: str) -> None:
    """A refund of 10.00 whose answer was lost, and one of `twin` in the Control Panel: the batch
    settles both, and their notifications wait (either may be the lost one)."""
    service = services(app=app)
    payment = service.sale("braintree", _eur(10000), source="fake-valid-nonce", order_id="s", idempotency_key="s")
    reference = payment.reference or ""
    app.settle(reference)
    app.inject(Fault(kind="drop_after", path=r"/graphql/refundTransaction$"))
    with pytest.raises(OutcomeUnknown):
        service.refund(payment.id, _eur(1000), idempotency_key="lost")
    app.clear_faults()
    with app.lock:
        app.operations.refund({"transactionId": reference, "refund": {"amount": twin}}, origin="CONTROL_PANEL")
    app.sent.clear()
    for credit in list(app.transactions[reference].refunds):
        app.settle(credit)
    assert [service.receive_webhook("braintree", _FORM, body).status for body in app.sent] == ["deferred"] * 2
    left = _left_to_refund(app, reference)
    calls = len(app.calls)
    with pytest.raises(StateError) as refused:
        service.refund(payment.id, _eur(left + 1), idempotency_key="more")  # Braintree would refuse it (91521)
    assert refused.value.code == "refund_exceeds_captured"
    assert len(app.calls) == calls  # nothing was sent
    service.reconcile(payment_id=payment.id)
    assert service.get_payment(payment.id).refundable == _eur(left)
    service.refund(payment.id, _eur(left), idempotency_key="rest")
    assert _left_to_refund(app, reference) == 0
