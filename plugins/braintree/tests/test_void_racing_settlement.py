"""A void racing Braintree's settlement batch: the authorization read AUTHORIZED, then captured
whole (the Control Panel) and settled before the void's reversal lands, which Braintree then
answers with a refund of all of it. That is no void: the ledger never records a void of money
Braintree captured, whether the answer came or was lost, and ends at what Braintree holds."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from paywire import Money, OutcomeUnknown, PaymentService
from paywire.ledger import PaymentState
from paywire.testing.emulator import Fault
from paywire_braintree.emulator import BraintreeEmulator

EUR = "EUR"


@pytest.mark.parametrize("answer", ["answered", "lost"])
def test_a_void_braintree_answers_with_a_refund_is_never_recorded_a_void(
        service: PaymentService, emulator: BraintreeEmulator, step_clock: Callable[..., None],
        lands_before: Callable[[PaymentService, str, Callable[[], None], str], None], answer: str) -> None:
    emulator.settlement = "batch"
    amount = Money.of("30.00", EUR)
    payment = service.authorize("braintree", amount, source="fake-valid-nonce", order_id=f"VR-{answer}",
                                idempotency_key=f"vr-auth-{answer}")
    reference = payment.reference or ""

    def captured_and_settled() -> None:
        with emulator.lock:
            emulator.operations.capture({"transactionId": reference})  # the Control Panel's capture
            emulator.operations.settle(emulator.transactions[reference])  # the batch

    lands_before(service, "reverseTransaction", captured_and_settled, "batch-first")
    if answer == "lost":
        emulator.inject(Fault("drop_after", path="/graphql", contains="reverseTransaction"))
    with pytest.raises(OutcomeUnknown) as unsure:
        service.void(payment.id, idempotency_key=f"vr-void-{answer}")
    transaction = emulator.transactions[reference]
    assert transaction.status == "SETTLED" and transaction.refunds, "Braintree captured it, then refunded it"
    void_id = unsure.value.transaction_id or ""
    assert service.get_transaction(void_id).status == "unknown", "never a void of money Braintree captured"
    assert service.get_payment(payment.id).state != PaymentState.VOIDED

    step_clock(service)  # the void's request can no longer land
    report = service.reconcile(payment_id=payment.id)
    assert not report.mismatches and not report.errors
    assert service.get_transaction(void_id).status != "succeeded"
    after = service.get_payment(payment.id)
    assert after.state == PaymentState.REFUNDED
    assert after.captured == after.refunded == amount, "the capture Braintree made is in the ledger"


@pytest.mark.parametrize("answer", ["answered", "lost"])
def test_a_void_of_an_authorization_captured_whole_meanwhile_releases_it_and_claims_nothing(
        service: PaymentService, emulator: BraintreeEmulator, step_clock: Callable[..., None],
        lands_before: Callable[[PaymentService, str, Callable[[], None], str], None], answer: str) -> None:
    """Captured whole (the Control Panel) but not yet settled when the reversal lands: Braintree
    voids that capture, so nothing is captured, and the ledger ends voided with nothing captured."""
    emulator.settlement = "batch"
    payment = service.authorize("braintree", Money.of("30.00", EUR), source="fake-valid-nonce",
                                order_id=f"VW-{answer}", idempotency_key=f"vw-auth-{answer}")
    reference = payment.reference or ""

    def captured() -> None:
        with emulator.lock:
            emulator.operations.capture({"transactionId": reference})

    lands_before(service, "reverseTransaction", captured, "captured-first")
    if answer == "lost":
        emulator.inject(Fault("drop_after", path="/graphql", contains="reverseTransaction"))
        with pytest.raises(OutcomeUnknown):
            service.void(payment.id, idempotency_key=f"vw-void-{answer}")
    else:
        service.void(payment.id, idempotency_key=f"vw-void-{answer}")
    assert emulator.transactions[reference].status == "VOIDED"
    step_clock(service)
    report = service.reconcile(payment_id=payment.id)
    assert not report.mismatches and not report.errors
    after = service.get_payment(payment.id)
    assert after.state == PaymentState.VOIDED and after.captured == Money.of("0", EUR)


def test_a_void_lost_before_braintree_then_the_authorization_captured_and_settled_is_never_a_void(
        service: PaymentService, emulator: BraintreeEmulator, step_clock: Callable[..., None]) -> None:
    emulator.settlement = "batch"
    amount = Money.of("30.00", EUR)
    payment = service.authorize("braintree", amount, source="fake-valid-nonce", order_id="VL-1",
                                idempotency_key="vl-auth")
    reference = payment.reference or ""
    emulator.inject(Fault("status", status=503, path="/graphql", contains="reverseTransaction"))
    with pytest.raises(OutcomeUnknown) as unsure:
        service.void(payment.id, idempotency_key="vl-void")
    with emulator.lock:  # the Control Panel captures it whole, and the batch settles it
        emulator.operations.capture({"transactionId": reference})
        emulator.operations.settle(emulator.transactions[reference])
    step_clock(service)
    report = service.reconcile(payment_id=payment.id)
    assert not report.mismatches and not report.errors
    assert service.get_transaction(unsure.value.transaction_id or "").status == "failed"
    after = service.get_payment(payment.id)
    assert after.state == PaymentState.CAPTURED and after.captured == amount


def test_a_void_an_earlier_release_tagged_with_its_bare_key_is_found_by_its_retry(
        service: PaymentService, emulator: BraintreeEmulator) -> None:
    payment = service.authorize("braintree", Money.of("30.00", EUR), source="fake-valid-nonce", order_id="VB-1",
                                idempotency_key="vb-auth")
    reference = payment.reference or ""
    emulator.inject(Fault("drop_after", path="/graphql", contains="reverseTransaction"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.void(payment.id, idempotency_key="vb-void")
    with emulator.lock:  # as a release that wrote the bare key left it
        emulator.transactions[reference].custom["paywire_void_key"] = "vb-void"
    assert emulator.transactions[reference].status == "VOIDED"
    voided = service.retry(lost.value.transaction_id or "")
    assert voided.state == PaymentState.VOIDED
    assert service.get_transaction(lost.value.transaction_id or "").status == "succeeded"
