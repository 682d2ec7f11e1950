"""The outcome model at Braintree's edges, through the payment service and a real ledger against
the emulator on loopback: what may have taken effect is never recorded failed, and the ledger
ends at what Braintree holds."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from paywire import (
    Money,
    OutcomeUnknown,
    PaymentService,
    StateError,
    Subject,
)
from paywire.ledger import PaymentState, Transaction
from paywire.testing.emulator import Fault
from paywire_braintree.emulator import BraintreeEmulator

EUR = "EUR"


def test_a_resent_void_whose_first_request_lands_meanwhile_is_never_recorded_failed(
    service: PaymentService, emulator: BraintreeEmulator,
    lands_before: Callable[[PaymentService, str, Callable[[], None], str], None]
) -> None:
    """Braintree takes no key: a void resent after an unknown one would be refused (91504) if the
    first lands in between, and that refusal says nothing of the first. The resend sends nothing
    while Braintree shows no void under its key; once the first has landed, it is found."""
    payment = service.authorize("braintree", Money.of("40.00", EUR), source="fake-valid-nonce", order_id="V-1",
                                idempotency_key="v-auth")
    reference = payment.reference or ""
    emulator.inject(Fault("status", status=503, path="reverseTransaction"))  # a 5xx in front of Braintree
    with pytest.raises(OutcomeUnknown) as lost:
        service.void(payment.id, idempotency_key="v-void")

    def land() -> None:
        with emulator.lock:
            emulator.operations.reverse({"transactionId": reference})

    lands_before(service, "reverseTransaction", land, "lands-first")  # still on its way, it lands first
    with pytest.raises(OutcomeUnknown) as again:
        service.retry(lost.value.transaction_id or "")
    assert again.value.code == "earlier_attempt_not_seen"
    assert service.get_transaction(lost.value.transaction_id or "").status == "unknown"
    land()  # the first request arrives
    voided = service.retry(lost.value.transaction_id or "")
    assert voided.state == PaymentState.VOIDED
    assert emulator.transactions[reference].status == "VOIDED"
    assert service.get_transaction(lost.value.transaction_id or "").status == "succeeded"
    assert not service.reconcile(payment_id=payment.id).mismatches


def test_a_capture_after_the_authorization_expired_is_refused_before_writing_and_the_payment_follows_braintree(
    service: PaymentService, emulator: BraintreeEmulator
) -> None:
    """Braintree marks an authorization left too long AUTHORIZATION_EXPIRED (7 to 30 days, by
    brand) and sends no notification: a capture of it is refused, saying so, before anything is
    written, and the service reads the payment at once, leaving nothing authorized to capture."""
    payment = service.authorize("braintree", Money.of("60.00", EUR), source="fake-valid-nonce", order_id="X-1",
                                idempotency_key="x-auth")
    reference = payment.reference or ""
    emulator.expire(reference)
    assert emulator.transactions[reference].status == "AUTHORIZATION_EXPIRED"
    with pytest.raises(StateError) as refused:
        service.capture(payment.id, Money.of("20.00", EUR), final=False)
    assert refused.value.code == "authorization_expired" and "nothing was sent" in str(refused.value)
    assert service.list_transactions(payment.id)[-1].status == "failed"
    assert emulator.transactions[reference].children == [] and refused.value.details["reconciled"] is True
    released = service.get_payment(payment.id)
    assert (released.state, released.captured, released.capturable) == (
        PaymentState.VOIDED, Money.zero(EUR), Money.zero(EUR))
    sent = len(emulator.calls)
    for later in (lambda: service.void(payment.id), lambda: service.capture(payment.id, Money.of("20.00", EUR))):
        with pytest.raises(StateError) as refused_by_ledger:  # the ledger itself now refuses, sending nothing
            later()
        assert refused_by_ledger.value.code != "authorization_expired"
    assert len(emulator.calls) == sent
    assert not service.reconcile(payment_id=payment.id).mismatches


def test_a_void_of_an_authorization_captured_elsewhere_is_refused_and_the_payment_follows_braintree(
    service: PaymentService, emulator: BraintreeEmulator
) -> None:
    """Captured in Braintree's control panel, with no word to the ledger: the ledger lets a void
    through, Braintree's state refuses it before anything is written, and the service reads the
    payment, which then shows the capture Braintree holds."""
    payment = service.authorize("braintree", Money.of("40.00", EUR), source="fake-valid-nonce", order_id="V-1",
                                idempotency_key="v-auth")
    service.gateway.execute("braintree", "capture", Subject(reference=payment.reference, amount=Money.of("15.00", EUR),
                                                            final=False))
    with pytest.raises(StateError) as refused:
        service.void(payment.id)
    assert refused.value.code == "not_voidable" and refused.value.details["reconciled"] is True
    [void] = [t for t in service.list_transactions(payment.id) if t.kind == "void"]
    assert void.status == "failed"
    followed = service.get_payment(payment.id)
    assert (followed.state, followed.captured) == (PaymentState.PARTIALLY_CAPTURED, Money.of("15.00", EUR))
    # The read recorded the capture made elsewhere, from Braintree's list: once, with its amount.
    assert [(t.kind, t.origin, t.status, t.amount) for t in service.list_transactions(payment.id)
            if t.origin != "service"] == [("capture", "reconcile", "succeeded", Money.of("15.00", EUR))]
    assert not service.reconcile(payment_id=payment.id).mismatches


@pytest.mark.parametrize("flow", ["sale", "capture"])
def test_a_refund_before_settlement_is_refused_before_writing_and_moves_nothing(
    service: PaymentService, emulator: BraintreeEmulator, flow: str
) -> None:
    """Braintree refunds only a settling or settled transaction (91506); one submitted for
    settlement waits for its batch. The refund composite reads it first and says so, writing
    nothing; after settlement the same refund goes through."""
    emulator.settlement = "batch"
    if flow == "sale":
        payment = service.sale("braintree", Money.of("50.00", EUR), source="fake-valid-nonce", order_id="R-1",
                               idempotency_key="r-pay")
    else:
        payment = service.authorize("braintree", Money.of("50.00", EUR), source="fake-valid-nonce", order_id="R-1",
                                    idempotency_key="r-pay")
        payment = service.capture(payment.id, Money.of("30.00", EUR), final=False)
    captured = service.list_transactions(payment.id)[-1].provider_reference or ""
    with pytest.raises(StateError) as refused:
        service.refund(payment.id, Money.of("10.00", EUR))
    assert refused.value.code == "91506" and "nothing was sent" in str(refused.value)
    assert "submitted_for_settlement" in str(refused.value)
    assert not emulator.transactions[captured].refunds
    assert service.list_transactions(payment.id)[-1].status == "failed"
    assert service.get_payment(payment.id).refunded == Money.zero(EUR)
    emulator.settle(captured)
    refunded = service.refund(payment.id, Money.of("10.00", EUR))
    assert refunded.refunded == Money.of("10.00", EUR) and len(emulator.transactions[captured].refunds) == 1
    assert not service.reconcile(payment_id=payment.id).mismatches


def _lost_sale(service: PaymentService, emulator: BraintreeEmulator, amount: str, order_id: str, key: str) -> str:
    """A sale under `key` whose answer is lost after Braintree made it: its transaction's id."""
    emulator.inject(Fault("drop_after", path="chargePaymentMethod"))
    with pytest.raises(OutcomeUnknown) as raised:
        service.sale("braintree", Money.of(amount, EUR), source="fake-valid-nonce", order_id=order_id,
                     idempotency_key=key)
    return raised.value.transaction_id or ""


def void_in_control_panel(emulator: BraintreeEmulator, transaction_id: str) -> None:
    """The merchant voids a transaction in Braintree's control panel, with no word to the ledger."""
    with emulator.lock:
        emulator.operations.reverse({"transactionId": transaction_id})


@pytest.mark.parametrize("lost", [True, False])
def test_a_sale_voided_before_settlement_is_reconciled_as_taken_then_undone(
    service: PaymentService, emulator: BraintreeEmulator, lost: bool
) -> None:
    """Braintree voids a sale still submitted for settlement (the merchant cancels the order in the
    control panel before the batch): VOIDED, no money kept. Reconciliation must not read that as
    an authorization voided after the fact, nor a lost sale as never applied: Braintree made it
    and the void undid it, so the sale, lost or recorded, is succeeded and then reversed, as one
    declined at settlement; the ledger claims nothing authorized or captured."""
    emulator.settlement = "batch"
    if lost:
        payment_id = service.get_transaction(_lost_sale(service, emulator, "50.00", "S-1", "voided-sale")).payment_id or ""
    else:
        payment_id = service.sale("braintree", Money.of("50.00", EUR), source="fake-valid-nonce", order_id="S-1",
                                  idempotency_key="voided-sale").id
    (made,) = emulator.transactions.values()
    assert made.status == "SUBMITTED_FOR_SETTLEMENT"
    void_in_control_panel(emulator, made.id)
    service.reconcile(payment_id=payment_id)
    assert _ledger_end(service, payment_id) == _SALE_TAKEN_THEN_UNDONE
    assert not service.reconcile(payment_id=payment_id).mismatches


_SALE_TAKEN_THEN_UNDONE = ([("sale", "succeeded"), ("reversal", "succeeded")], PaymentState.FAILED,
                           Money.zero(EUR), Money.zero(EUR), Money.zero(EUR), Money.zero(EUR))


def _ledger_end(service: PaymentService, payment_id: str) -> tuple[object, ...]:
    """What the ledger ends holding for the payment: its transactions' kinds and statuses, its
    state, and what it holds authorized and captured and offers to capture and refund."""
    payment = service.get_payment(payment_id)
    return ([(t.kind, str(t.status)) for t in service.list_transactions(payment_id)], payment.state,
            payment.authorized, payment.captured, payment.capturable, payment.refundable)


def _settled_by(service: PaymentService, path: str, lost: str, payment_id: str) -> Transaction:
    """The lost request `lost` as `path` leaves it: retried, reconciled, or retried then reconciled."""
    if path.startswith("retry"):
        service.retry(lost)
    if path.endswith("reconcile"):
        service.reconcile(payment_id=payment_id)
    return service.get_transaction(lost)


@pytest.mark.parametrize("path", ["reconcile", "retry", "retry, then reconcile"])
def test_a_lost_sale_voided_since_ends_taken_then_undone_whichever_path_settles_it(
    service: PaymentService, emulator: BraintreeEmulator, path: str
) -> None:
    """The lost sale's retry finds, under its key, the sale the control panel voided before
    settlement; reconcile() finds it by fetch. Either way it took effect and was undone: the retry
    answers the sale it was and the payment read from Braintree records its reversal, so the
    ledger ends as reconciliation leaves it, with nothing captured and nothing to refund."""
    emulator.settlement = "batch"
    lost = _lost_sale(service, emulator, "50.00", "S-2", "voided-sale-retry")
    payment_id = service.get_transaction(lost).payment_id or ""
    (made,) = emulator.transactions.values()
    void_in_control_panel(emulator, made.id)
    sale = _settled_by(service, path, lost, payment_id)
    assert (sale.status, sale.provider_reference) == ("succeeded", made.id)
    with service.ledger.unit() as u:  # found by Braintree's id, as an event or fetch would find it
        assert u.payment_by_reference("braintree", [made.id]) == payment_id
    assert _ledger_end(service, payment_id) == _SALE_TAKEN_THEN_UNDONE
    assert not service.reconcile(payment_id=payment_id).mismatches
    assert _ledger_end(service, payment_id) == _SALE_TAKEN_THEN_UNDONE


@pytest.mark.parametrize("path", ["reconcile", "retry", "retry, then reconcile"])
def test_a_lost_whole_capture_voided_since_ends_taken_then_undone_whichever_path_settles_it(
    service: PaymentService, emulator: BraintreeEmulator, path: str
) -> None:
    """A keyed capture of all of an authorization (a final partial capture) whose answer is lost,
    then voided in the control panel before the batch: Braintree made it and the void undid it.
    Recorded succeeded and reversed, whether reconcile() or the retry finds it first; the
    authorization takes no more, so the ledger offers nothing to capture, nor to refund."""
    emulator.settlement = "batch"
    payment_id = service.authorize("braintree", Money.of("25.00", EUR), source="fake-valid-nonce",
                                   order_id="W-1", idempotency_key="whole-auth").id
    emulator.inject(Fault("drop_after", path="partialCaptureTransaction"))
    with pytest.raises(OutcomeUnknown) as raised:
        service.capture(payment_id, idempotency_key="whole-cap")
    lost = raised.value.transaction_id or ""
    (capture,) = (t for t in emulator.transactions.values() if t.parent is not None)
    assert capture.status == "SUBMITTED_FOR_SETTLEMENT"
    void_in_control_panel(emulator, capture.id)
    assert emulator.transactions[capture.id].status == "VOIDED"
    txn = _settled_by(service, path, lost, payment_id)
    assert (txn.status, txn.provider_reference) == ("succeeded", capture.id)
    reversals = [t for t in service.list_transactions(payment_id) if t.kind == "reversal" and t.parent_id == lost]
    assert len(reversals) == 1
    payment = service.get_payment(payment_id)
    assert (payment.captured, payment.capturable, payment.refundable) == (
        Money.zero(EUR), Money.zero(EUR), Money.zero(EUR))
    ended = _ledger_end(service, payment_id)
    assert not service.reconcile(payment_id=payment_id).mismatches
    assert _ledger_end(service, payment_id) == ended


def test_a_lost_sale_the_processor_declined_stays_failed(service: PaymentService,
                                                         emulator: BraintreeEmulator) -> None:
    """A lost sale Braintree made but never submitted for settlement (the processor declined it)
    never took effect: reconciliation records it failed, with nothing to reverse."""
    emulator.settlement = "batch"
    lost = _lost_sale(service, emulator, "2001.00", "S-3", "declined-sale")
    (made,) = emulator.transactions.values()
    assert made.status == "PROCESSOR_DECLINED"
    payment_id = service.get_transaction(lost).payment_id or ""
    service.reconcile(payment_id=payment_id)
    assert _ledger_end(service, payment_id) == ([("sale", "failed")], PaymentState.FAILED, Money.zero(EUR),
                                                Money.zero(EUR), Money.zero(EUR), Money.zero(EUR))
    assert not service.reconcile(payment_id=payment_id).mismatches
