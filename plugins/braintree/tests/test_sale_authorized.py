"""A sale Braintree answers AUTHORIZED: chargePaymentMethod may answer any PaymentStatus, and
AUTHORIZED holds the buyer's funds without charging them ("you must use captureTransaction").
The ledger counts the sale captured only once Braintree has it submitted for settlement: the sale
command submits it, and until that is known the sale is open, never captured; one released
without ever being submitted (voided, expired) took no money."""

from __future__ import annotations

import pytest

from paywire import Customer, Declined, Money, OutcomeUnknown, PaymentService
from paywire.ledger.model import PaymentState
from paywire.testing.emulator import Fault
from paywire_braintree.emulator import BraintreeEmulator

EUR = "EUR"
AUTHORIZED_ONLY = "paywire-emulator-authorized-charge-nonce"
_CAPTURED = ("SUBMITTED_FOR_SETTLEMENT", "SETTLING", "SETTLED")


def _held(emulator: BraintreeEmulator, reference: str) -> Money:
    """What Braintree holds captured of the sale `reference`."""
    transaction = emulator.transactions[reference]
    captured = transaction.amount if transaction.status in _CAPTURED else 0
    return Money.of(str(captured), EUR)


def test_a_sale_braintree_only_authorized_is_submitted_before_it_counts_captured(
        service: PaymentService, emulator: BraintreeEmulator) -> None:
    emulator.settlement = "batch"
    payment = service.sale("braintree", Money.of("12.00", EUR), source=AUTHORIZED_ONLY, order_id="SA-1",
                           idempotency_key="sa-1")
    reference = payment.reference or ""
    assert payment.captured == _held(emulator, reference), "the ledger claims no more than Braintree holds"
    assert emulator.transactions[reference].status == "SUBMITTED_FOR_SETTLEMENT"
    assert payment.captured == Money.of("12.00", EUR)
    assert not service.reconcile(payment_id=payment.id).mismatches


def test_a_sale_whose_submission_is_lost_is_never_counted_captured_and_its_retry_submits_it(
        service: PaymentService, emulator: BraintreeEmulator) -> None:
    emulator.settlement = "batch"
    emulator.inject(Fault("status", status=503, path="captureTransaction"))  # never reached Braintree
    with pytest.raises(OutcomeUnknown) as lost:
        service.sale("braintree", Money.of("12.00", EUR), source=AUTHORIZED_ONLY, order_id="SA-2",
                     idempotency_key="sa-2")
    txn = service.get_transaction(lost.value.transaction_id or "")
    assert txn.status == "unknown", "Braintree holds the authorization: never recorded failed"
    (reference,) = [t.id for t in emulator.transactions.values() if t.order_id == "SA-2"]
    assert emulator.transactions[reference].status == "AUTHORIZED"
    service.reconcile(payment_id=txn.payment_id)
    payment = service.get_payment(txn.payment_id or "")
    assert payment.captured == _held(emulator, reference) == Money.of("0", EUR), "only authorized at Braintree"
    assert service.get_transaction(txn.id).status == "unknown"
    retried = service.retry(txn.id)
    assert emulator.transactions[reference].status == "SUBMITTED_FOR_SETTLEMENT"
    assert retried.captured == _held(emulator, reference) == Money.of("12.00", EUR)
    assert service.get_transaction(txn.id).status == "succeeded"


@pytest.mark.parametrize("settled_by", ["reconcile", "retry"])
@pytest.mark.parametrize("released", ["expired", "voided"])
def test_a_sale_released_without_ever_being_submitted_took_no_money(
        service: PaymentService, emulator: BraintreeEmulator, released: str, settled_by: str) -> None:
    emulator.inject(Fault("status", status=503, path="captureTransaction"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.sale("braintree", Money.of("12.00", EUR), source=AUTHORIZED_ONLY, order_id=f"SA-{released}",
                     idempotency_key=f"sa-{released}")
    (reference,) = [t.id for t in emulator.transactions.values() if t.order_id == f"SA-{released}"]
    with emulator.lock:
        if released == "expired":
            emulator.operations.expire(emulator.transactions[reference])
        else:  # the Control Panel's void of the authorization
            emulator.operations.reverse({"transactionId": reference})
    txn = service.get_transaction(lost.value.transaction_id or "")
    if settled_by == "reconcile":
        service.reconcile(payment_id=txn.payment_id)
    else:
        with pytest.raises(Declined):
            service.retry(txn.id)
    payment = service.get_payment(txn.payment_id or "")
    assert payment.captured == Money.of("0", EUR), "Braintree never captured it"
    assert payment.state == PaymentState.FAILED
    assert service.get_transaction(txn.id).status == "failed"


def test_a_vaulted_charge_braintree_only_authorized_is_submitted_before_it_counts_captured(
        service: PaymentService, emulator: BraintreeEmulator) -> None:
    """The same for a charge of a vaulted payment method (the buyer absent)."""
    emulator.settlement = "batch"
    vaulted = service.vault("braintree", AUTHORIZED_ONLY, idempotency_key="sa-vault")
    customer = Customer(reference=vaulted.provider_reference) if vaulted.provider_reference else None
    payment = service.charge_vaulted("braintree", vaulted.token or "", Money.of("12.00", EUR), customer=customer,
                                     order_id="SA-V", idempotency_key="sa-vaulted")
    reference = payment.reference or ""
    assert payment.captured == _held(emulator, reference) == Money.of("12.00", EUR)
    assert emulator.transactions[reference].status == "SUBMITTED_FOR_SETTLEMENT"


def test_a_sale_whose_submission_landed_but_whose_answer_was_lost_is_reconciled_captured(
        service: PaymentService, emulator: BraintreeEmulator) -> None:
    emulator.settlement = "batch"
    emulator.inject(Fault("drop_after", path="captureTransaction"))  # submitted, the answer lost
    with pytest.raises(OutcomeUnknown) as lost:
        service.sale("braintree", Money.of("12.00", EUR), source=AUTHORIZED_ONLY, order_id="SA-D",
                     idempotency_key="sa-dropped")
    txn = service.get_transaction(lost.value.transaction_id or "")
    assert txn.status == "unknown"
    assert service.get_payment(txn.payment_id or "").captured == Money.of("0", EUR)
    service.reconcile(payment_id=txn.payment_id)
    (reference,) = [t.id for t in emulator.transactions.values() if t.order_id == "SA-D"]
    assert emulator.transactions[reference].status == "SUBMITTED_FOR_SETTLEMENT"
    assert service.get_transaction(txn.id).status == "succeeded"
    assert service.get_payment(txn.payment_id or "").captured == _held(emulator, reference) == Money.of("12.00", EUR)


def test_a_sale_captured_in_parts_elsewhere_is_never_counted_captured_whole(
        service: PaymentService, emulator: BraintreeEmulator) -> None:
    """Its submission lost, the sale's authorization is captured in part in the Control Panel:
    Braintree holds 5.00 captured of it, not the 12.00 the sale asked. Neither reconciliation nor a
    retry under its key counts the sale captured whole; it stays open for a person to look at."""
    emulator.settlement = "batch"
    emulator.inject(Fault("status", status=503, path="captureTransaction"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.sale("braintree", Money.of("12.00", EUR), source=AUTHORIZED_ONLY, order_id="SA-P",
                     idempotency_key="sa-parts")
    (reference,) = [t.id for t in emulator.transactions.values() if t.order_id == "SA-P"]
    with emulator.lock:
        emulator.operations.partial_capture({"transactionId": reference, "transaction": {"amount": "5.00"}})
    txn = service.get_transaction(lost.value.transaction_id or "")
    service.reconcile(payment_id=txn.payment_id)
    assert service.get_payment(txn.payment_id or "").captured <= Money.of("5.00", EUR)
    with pytest.raises(OutcomeUnknown) as again:
        service.retry(txn.id)
    assert again.value.code == "sale_captured_in_parts"
    assert service.get_payment(txn.payment_id or "").captured <= Money.of("5.00", EUR)
    assert service.get_transaction(txn.id).status == "unknown"
