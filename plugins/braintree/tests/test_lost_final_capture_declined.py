"""A final partial capture whose answer is lost, which Braintree made and then declined without
ever reporting it done: from SETTLEMENT_PENDING (a bank account's capture, declined at
settlement), or declined by the processor. Braintree closed the authorization at that final
capture and documents no reopening (the emulator keeps it closed), so however the service learns
the capture failed, the retry under its key (`retry()`, or the same call with the same key) or
reconciliation's listing, the ledger closes capture: it refuses the rest before anything is sent,
and reconciliation then finds nothing to change. Real emulator on loopback, on a SQLite ledger
and on a PostgreSQL one."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from paywire import Declined, Money, OutcomeUnknown, PaymentService, StateError
from paywire.ledger import TransactionStatus
from paywire.testing.emulator import Fault
from paywire.testing.sandbox import Sandbox
from paywire_braintree.emulator import BraintreeEmulator
from paywire_braintree.emulator.model import Transaction, processor_response

from .conftest import KeptNotifications, ServiceFactory

S = TransactionStatus
_BANK = "paywire-emulator-bank-account-nonce"
_FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def emulator(sandbox: Sandbox) -> KeptNotifications:
    """The sandbox's emulator keeping its notifications for the test to deliver, settling by batch."""
    assert isinstance(sandbox.app, BraintreeEmulator)
    return KeptNotifications(sandbox.app.public_key, sandbox.app.private_key)


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger_service(request: pytest.FixtureRequest) -> PaymentService:
    """A payment service on the test's emulator over loopback HTTP, on SQLite or PostgreSQL."""
    if request.param == "sqlite":
        services: ServiceFactory = request.getfixturevalue("services")
        return services()
    workers: Callable[[int], list[PaymentService]] = request.getfixturevalue("workers")
    (service,) = workers(1)
    return service


def _declined_at_settlement(app: BraintreeEmulator, capture: Transaction) -> None:
    """Braintree's batch declines the capture it held SETTLEMENT_PENDING (never reported done)."""
    assert capture.status == "SETTLEMENT_PENDING"
    app.settle(capture.id, "SETTLEMENT_DECLINED")


def _declined_by_the_processor(app: BraintreeEmulator, capture: Transaction) -> None:
    """The processor declined the capture when Braintree made it: it was never submitted."""
    with app.lock:
        capture.history = [event for event in capture.history if event["status"] == "AUTHORIZED"]
        capture.move("PROCESSOR_DECLINED", processorResponse=processor_response("2000"))


_FATES = {"declined at settlement": (_BANK, _declined_at_settlement),
          "declined by the processor": ("fake-valid-nonce", _declined_by_the_processor)}


def _lost_final_capture(service: PaymentService, app: BraintreeEmulator, fate: str, *,
                        final: bool = True) -> tuple[str, str]:
    """An authorization of 100.00 and its capture of 30.00 (final unless told) under key "final",
    whose answer is lost and which Braintree then fails as `fate` says; the payment's and the
    capture's ids."""
    source, fail = _FATES[fate]
    payment = service.authorize("braintree", Money.of("100.00", "EUR"), source=source, order_id="final-order",
                                idempotency_key="final-auth")
    app.inject(Fault("drop_after", path="partialCaptureTransaction"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.capture(payment.id, Money.of("30.00", "EUR"), final=final, idempotency_key="final")
    app.clear_faults()
    (child,) = app.transactions[payment.reference or ""].children
    fail(app, app.transactions[child])
    assert lost.value.transaction_id
    return payment.id, lost.value.transaction_id


def _closed_to_more_captures(service: PaymentService, app: BraintreeEmulator, payment_id: str) -> None:
    payment = service.get_payment(payment_id)
    assert (payment.captured, payment.capturable, payment.capture_closed) == (
        Money.zero("EUR"), Money.zero("EUR"), True), payment
    calls = len(app.calls)
    with pytest.raises(StateError) as refused:
        service.capture(payment_id, Money.of("0.01", "EUR"), idempotency_key="after-final")
    assert refused.value.code == "capture_closed" and len(app.calls) == calls  # nothing sent
    assert service.reconcile(payment_id=payment_id).clean
    again = service.get_payment(payment_id)
    assert (again.state, again.captured, again.capturable, again.capture_closed) == (
        payment.state, payment.captured, payment.capturable, True)


@pytest.mark.parametrize("fate", list(_FATES))
@pytest.mark.parametrize("retried_by", ["retry", "the same call"])
def test_a_lost_final_capture_a_retry_finds_declined_closes_capture(
        ledger_service: PaymentService, emulator: BraintreeEmulator, fate: str, retried_by: str) -> None:
    service = ledger_service
    payment_id, lost = _lost_final_capture(service, emulator, fate)
    with pytest.raises(Declined):
        if retried_by == "retry":
            service.retry(lost)
        else:
            service.capture(payment_id, Money.of("30.00", "EUR"), final=True, idempotency_key="final")
    assert service.get_transaction(lost).status == S.FAILED  # it never took effect
    _closed_to_more_captures(service, emulator, payment_id)
    with emulator.lock, pytest.raises(Exception, match="Cannot submit for settlement"):
        emulator.operations.partial_capture({"transactionId": service.get_payment(payment_id).reference,
                                             "transaction": {"amount": "0.01"}})


def test_a_lost_final_capture_whose_decline_is_notified_first_closes_capture_on_the_retry(
        ledger_service: PaymentService, emulator: KeptNotifications) -> None:
    """The capture's transaction_settlement_declined notification names a capture the ledger does
    not know yet (the answer naming it was lost): it waits for the capture in flight, which
    keeps further captures refused; the retry then finds it declined and closes capture."""
    service = ledger_service
    payment_id, lost = _lost_final_capture(service, emulator, "declined at settlement")
    (body,) = emulator.sent
    assert service.receive_webhook("braintree", _FORM, body).status == "deferred"
    with pytest.raises(StateError) as refused:
        service.capture(payment_id, Money.of("0.01", "EUR"), idempotency_key="while-in-flight")
    assert refused.value.code == "capture_closed"
    with pytest.raises(Declined):
        service.retry(lost)
    assert service.get_transaction(lost).status == S.FAILED
    _closed_to_more_captures(service, emulator, payment_id)


@pytest.mark.parametrize("fate", list(_FATES))
def test_a_lost_final_capture_reconciliation_finds_declined_closes_capture(
        ledger_service: PaymentService, emulator: BraintreeEmulator, fate: str) -> None:
    """The path that already closed it: the same end as a retry's."""
    service = ledger_service
    payment_id, lost = _lost_final_capture(service, emulator, fate)
    service.reconcile(payment_id=payment_id)
    assert service.get_transaction(lost).status == S.FAILED
    _closed_to_more_captures(service, emulator, payment_id)


@pytest.mark.parametrize("final", [True, False])
def test_a_lost_capture_a_retry_finds_declined_leaves_the_rest_as_braintree_does(
        ledger_service: PaymentService, emulator: BraintreeEmulator, final: bool) -> None:
    """Not final, the declined capture leaves the rest of the authorization to capture, and
    Braintree takes it; final, Braintree refuses it and so does the ledger, first."""
    service = ledger_service
    payment_id, lost = _lost_final_capture(service, emulator, "declined at settlement", final=final)
    payment = service.get_payment(payment_id)
    with pytest.raises(Declined):
        service.retry(lost)
    if final:
        with pytest.raises(StateError) as refused:
            service.capture(payment.id, Money.of("50.00", "EUR"), idempotency_key="rest-more")
        assert refused.value.code == "capture_closed"
    else:
        service.capture(payment.id, Money.of("50.00", "EUR"), idempotency_key="rest-more")
        assert service.get_payment(payment.id).capture_closed is False
        emulator.settle(emulator.transactions[payment.reference or ""].children[-1])  # the batch takes it
    assert service.reconcile(payment_id=payment.id).clean
    held = service.get_payment(payment.id)
    assert (held.captured, held.capture_closed) == (Money.of("0.00" if final else "50.00", "EUR"), final)


@pytest.mark.parametrize("declined", [True, False])
def test_a_control_panel_final_capture_closes_capture_once_braintree_refuses_a_partial_capture(
        ledger_service: PaymentService, emulator: KeptNotifications, declined: bool) -> None:
    """A final capture made in the Control Panel (a bank account's, declined at settlement or
    still pending) leaves no trace Braintree reports: its authorization reads SETTLEMENT_PENDING
    as after any partial capture, so the ledger offers the rest, and the service's capture is sent.
    Braintree refuses it (91507: the authorization takes no further partial capture), which is its
    word that capture is closed: the ledger closes it, refusing the next before anything is sent."""
    service = ledger_service
    payment = service.authorize("braintree", Money.of("100.00", "EUR"), source=_BANK, order_id="panel-order",
                                idempotency_key="panel-auth")
    with emulator.lock:
        made = emulator.operations.partial_capture({"transactionId": payment.reference,
                                                    "transaction": {"amount": "30.00", "finalCapture": True}})
    if declined:
        emulator.settle(made.id, "SETTLEMENT_DECLINED")
        (body,) = emulator.sent
        service.receive_webhook("braintree", _FORM, body)
    service.reconcile(payment_id=payment.id)
    assert service.get_payment(payment.id).capture_closed is False  # nothing Braintree reports says final
    with pytest.raises(StateError) as refused:
        service.capture(payment.id, Money.of("10.00", "EUR"), idempotency_key="panel-next")
    assert (refused.value.code, refused.value.state_conflict) == ("91507", True)
    closed = service.get_payment(payment.id)
    assert closed.capture_closed and closed.capturable == Money.zero("EUR"), closed
    calls = len(emulator.calls)
    with pytest.raises(StateError) as again:
        service.capture(payment.id, Money.of("0.01", "EUR"), idempotency_key="panel-again")
    assert again.value.code == "capture_closed" and len(emulator.calls) == calls  # nothing sent
    if not declined:
        emulator.settle(made.id)  # the batch takes the Control Panel's capture
    assert service.reconcile(payment_id=payment.id).clean
    held = service.get_payment(payment.id)
    assert (held.captured, held.capturable, held.capture_closed) == (
        Money.of("0.00" if declined else "30.00", "EUR"), Money.zero("EUR"), True)


def test_a_capture_braintree_refuses_as_too_large_closes_nothing(
        ledger_service: PaymentService, emulator: KeptNotifications) -> None:
    """A Control Panel capture that was not final leaves the rest: Braintree refuses only more than
    that (91522), and the ledger, having read the payment, still offers what is left."""
    service = ledger_service
    payment = service.authorize("braintree", Money.of("100.00", "EUR"), source="fake-valid-nonce",
                                order_id="big-order", idempotency_key="big-auth")
    with emulator.lock:
        emulator.operations.partial_capture({"transactionId": payment.reference, "transaction": {"amount": "50.00"}})
    with pytest.raises(StateError) as refused:
        service.capture(payment.id, Money.of("60.00", "EUR"), idempotency_key="big-next")
    assert refused.value.code == "91522"
    assert service.get_payment(payment.id).capture_closed is False
    service.capture(payment.id, Money.of("50.00", "EUR"), idempotency_key="big-rest")
    assert service.get_payment(payment.id).captured == Money.of("100.00", "EUR")
