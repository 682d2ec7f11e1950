"""A refused authorization or sale is a Transaction Braintree made all the same (PROCESSOR_DECLINED,
GATEWAY_REJECTED, FAILED), and a sale declined at settlement before it was submitted, found by a
retry, is one too: the ledger records its id on the failed transaction and as the payment's
reference, so the payment is found by it (events, reconciliation, fetch). A sale declined at
settlement after it was submitted, or voided in the Control Panel then, took effect: the retry
records it succeeded, then reversed, under the same id. A failed capture, refund or void
never takes the payment's id as its own, nor does a capture that took effect and was undone.
Through the payment service and a real ledger, emulator on loopback."""

from __future__ import annotations

import pytest

from paywire import (
    Declined,
    Money,
    OutcomeUnknown,
    PaymentService,
    ProviderState,
    Subject,
)
from paywire.ledger import PaymentState, TransactionStatus
from paywire.testing.emulator import Fault
from paywire_braintree.emulator import BraintreeEmulator

EUR = "EUR"


def made_under(emulator: BraintreeEmulator, key: str) -> str:
    (made,) = [t for t in emulator.transactions.values() if t.custom.get("paywire_key") == key]
    return made.id


def assert_found_by(service: PaymentService, payment_id: str, reference: str) -> None:
    """The ledger holds `reference` for the failed payment: reconciliation reads Braintree by it and
    agrees, fetch answers it, and the ledger finds the payment by it (as an event would)."""
    payment = service.get_payment(payment_id)
    first = next(t for t in service.list_transactions(payment_id) if t.kind in ("authorize", "sale"))
    assert (first.status, first.provider_reference) == (TransactionStatus.FAILED, reference)
    assert (payment.state, payment.reference) == (PaymentState.FAILED, reference)
    report = service.reconcile(payment_id=payment_id)
    assert not report.errors and not report.mismatches, report
    fetched = service.gateway.execute("braintree", "fetch", Subject(reference=reference))
    assert (fetched.reference, fetched.state) == (reference, ProviderState.FAILED)
    with service.ledger.unit() as u:
        assert u.payment_by_reference("braintree", [reference]) == payment_id
    assert service.get_payment(payment_id).state == PaymentState.FAILED


@pytest.mark.parametrize(("source", "amount", "code"), [
    ("fake-processor-declined-visa-nonce", "10.00", "2000"),
    ("fake-valid-nonce", "2001.00", "2001"),
    ("fake-valid-nonce", "3000.00", "3000"),  # FAILED
    ("fake-gateway-rejected-fraud-valid-nonce", "10.00", "fraud"),
])
@pytest.mark.parametrize("flow", ["sale", "authorize"])
def test_a_refused_first_operation_records_the_transaction_braintree_made(
        service: PaymentService, emulator: BraintreeEmulator, flow: str, source: str, amount: str, code: str) -> None:
    key = f"refused-{flow}"
    start = service.sale if flow == "sale" else service.authorize
    with pytest.raises(Declined) as declined:
        start("braintree", Money.of(amount, EUR), source=source, order_id="R-1", idempotency_key=key)
    reference = made_under(emulator, key)
    assert (declined.value.decline_code, declined.value.reference) == (code, reference)
    assert_found_by(service, declined.value.payment_id or "", reference)


def test_a_duplicate_rejection_records_the_rejected_transaction_not_the_original(
        service: PaymentService, emulator: BraintreeEmulator) -> None:
    """Braintree's duplicate check rejects a second charge of the same card and amount: the
    rejection is a transaction of its own, which names the other payment's; this payment is the
    rejected one."""
    emulator.duplicate_window = 300.0
    first = service.sale("braintree", Money.of("42.00", EUR), source="fake-valid-nonce", order_id="D-1",
                         idempotency_key="dup-first")
    with pytest.raises(Declined) as rejected:
        service.sale("braintree", Money.of("42.00", EUR), source="fake-valid-nonce", order_id="D-2",
                     idempotency_key="dup-second")
    assert rejected.value.decline_code == "duplicate"
    reference = made_under(emulator, "dup-second")
    assert reference != first.reference
    assert_found_by(service, rejected.value.payment_id or "", reference)
    assert service.get_payment(first.id).reference == first.reference


def _lost_sale(service: PaymentService, emulator: BraintreeEmulator, settlement: str) -> tuple[str, str]:
    """(ledger transaction, Braintree reference) of a sale Braintree made whose answer was lost."""
    emulator.settlement = settlement
    emulator.inject(Fault("drop_after", path="chargePaymentMethod"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.sale("braintree", Money.of("50.00", EUR), source="fake-valid-nonce", order_id="S-1",
                      idempotency_key="moved-sale")
    reference = made_under(emulator, "moved-sale")
    assert emulator.transactions[reference].status == (
        "SETTLEMENT_PENDING" if settlement == "pending" else "SUBMITTED_FOR_SETTLEMENT")
    return lost.value.transaction_id or "", reference


@pytest.mark.parametrize(("settlement", "move", "code"), [("pending", "decline", "4001")])
def test_a_retry_finding_its_sale_voided_or_declined_at_settlement_records_that_sale(
        service: PaymentService, emulator: BraintreeEmulator, settlement: str, move: str, code: str) -> None:
    """Declined while it only waited for its settlement, the sale never took effect: the retry's
    decline names it. (Voided before the batch once submitted, it took effect: below.)"""
    lost, reference = _lost_sale(service, emulator, settlement)
    with emulator.lock:  # the control panel voids it before the batch, or the batch declines it
        if move == "void":
            emulator.operations.reverse({"transactionId": reference})
        else:
            emulator.operations.settle(emulator.transactions[reference], "SETTLEMENT_DECLINED")
    with pytest.raises(Declined) as declined:
        service.retry(lost)
    assert (declined.value.decline_code, declined.value.reference) == (code, reference)
    assert_found_by(service, service.get_transaction(lost).payment_id or "", reference)


@pytest.mark.parametrize("move", ["decline", "void"])
def test_a_retry_finding_its_sale_declined_after_it_was_submitted_records_that_sale_made_then_reversed(
        service: PaymentService, emulator: BraintreeEmulator, move: str) -> None:
    """Declined by the batch after it was submitted for settlement, or voided in the Control Panel
    while it was submitted, the sale took effect: the retry answers the sale it was, recorded
    under Braintree's id, and the payment read from Braintree records its reversal; the payment
    is found by that id, and failed."""
    lost, reference = _lost_sale(service, emulator, "batch")
    if move == "void":
        with emulator.lock:
            emulator.operations.reverse({"transactionId": reference})
    else:
        emulator.settle(reference, "SETTLEMENT_DECLINED")
    payment = service.retry(lost)
    sale, reversal = service.list_transactions(payment.id)
    assert (sale.id, sale.status, sale.provider_reference) == (lost, TransactionStatus.SUCCEEDED, reference)
    assert (reversal.kind, reversal.parent_id) == ("reversal", sale.id)
    assert (payment.state, payment.reference) == (PaymentState.FAILED, reference)
    report = service.reconcile(payment_id=payment.id)
    assert not report.errors and not report.mismatches, report
    with service.ledger.unit() as u:
        assert u.payment_by_reference("braintree", [reference]) == payment.id
    reconciled = service.get_payment(payment.id)
    assert (reconciled.state, reconciled.authorized, reconciled.captured) == (
        PaymentState.FAILED, Money.zero(EUR), Money.zero(EUR))


@pytest.mark.parametrize("source", ["paywire-emulator-bank-account-nonce", "fake-valid-nonce"])
def test_a_failed_follow_up_keeps_no_reference_of_the_payments(service: PaymentService,
                                                                emulator: BraintreeEmulator, source: str) -> None:
    """A refund the processor declines, and a capture replay that finds its capture declined at
    settlement before it was submitted (a bank account's, SETTLEMENT_PENDING), are refusals of
    operations on the payment: neither takes the payment's id. A capture declined after it was
    submitted took effect: its replay answers that capture, which does not take it either."""
    emulator.settlement = "instant"
    sale = service.sale("braintree", Money.of("4000.00", EUR), source="fake-valid-nonce", order_id="F-1",
                        idempotency_key="follow-sale")
    with pytest.raises(Declined):
        service.refund(sale.id, Money.of("2004.00", EUR), idempotency_key="follow-refund")
    refund = next(t for t in service.list_transactions(sale.id) if t.kind == "refund")
    assert refund.status == TransactionStatus.FAILED and refund.provider_reference != sale.reference

    emulator.settlement = "batch"
    authorized = service.authorize("braintree", Money.of("30.00", EUR), source=source, order_id="F-2",
                                   idempotency_key="follow-auth")
    emulator.inject(Fault("drop_after", path="partialCaptureTransaction"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.capture(authorized.id, Money.of("30.00", EUR), idempotency_key="follow-capture")
    (capture,) = [t for t in emulator.transactions.values() if t.order_id == "follow-capture"]
    assert capture.status == ("SUBMITTED_FOR_SETTLEMENT" if source == "fake-valid-nonce" else "SETTLEMENT_PENDING")
    with emulator.lock:
        emulator.operations.settle(capture, "SETTLEMENT_DECLINED")
    if source == "fake-valid-nonce":  # submitted for settlement, then declined: it took effect
        service.retry(lost.value.transaction_id or "")
        made = service.get_transaction(lost.value.transaction_id or "")
        assert made.status == TransactionStatus.SUCCEEDED and made.provider_reference == capture.id
    else:
        with pytest.raises(Declined):
            service.retry(lost.value.transaction_id or "")
        made = service.get_transaction(lost.value.transaction_id or "")
        assert made.status == TransactionStatus.FAILED
    assert made.provider_reference != authorized.reference
    for payment in (sale, authorized):
        assert service.get_payment(payment.id).reference == payment.reference
