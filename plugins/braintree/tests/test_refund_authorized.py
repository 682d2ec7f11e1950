"""A refund Braintree answers AUTHORIZED (a Refund's PaymentStatus may be): Braintree has not
submitted it, so nothing is given back yet. Its answer, as fetch reads it, is accepted, never a
refund succeeded: the ledger counts it refunded once Braintree says so."""

from __future__ import annotations

from paywire import Money, PaymentService
from paywire.ledger.model import PaymentState
from paywire_braintree.emulator import BraintreeEmulator

EUR = "EUR"


def test_a_refund_braintree_only_authorized_is_accepted_then_counted_once_settled(
        service: PaymentService, emulator: BraintreeEmulator) -> None:
    payment = service.sale("braintree", Money.of("12.00", EUR), source="paywire-emulator-refund-authorized-nonce",
                           order_id="RA-1", idempotency_key="ra-sale")
    refunded = service.refund(payment.id, Money.of("5.00", EUR), idempotency_key="ra-refund")
    (credit,) = [t for t in emulator.transactions.values() if t.kind == "credit"]
    assert credit.status == "AUTHORIZED"
    assert refunded.refunded == Money.of("0", EUR), "Braintree has given nothing back yet"
    refund = service.list_transactions(payment.id)[-1]
    assert (refund.kind, refund.status) == ("refund", "accepted")
    assert not service.reconcile(payment_id=payment.id).mismatches
    assert service.get_transaction(refund.id).status == "accepted"
    emulator.settle(credit.id, "SETTLED")
    service.reconcile(payment_id=payment.id)
    assert service.get_transaction(refund.id).status == "succeeded"
    after = service.get_payment(payment.id)
    assert after.refunded == Money.of("5.00", EUR)
    assert after.state == PaymentState.PARTIALLY_REFUNDED
