"""A refund Braintree refuses as more than the transaction has left (91521), because a refund made
in the control panel took part of it: the ledger is behind Braintree, and after the refusal it
counts that refund. Real emulator on loopback."""

from __future__ import annotations

import uuid

import pytest

from paywire import Money, PaymentService, StateError, Subject
from paywire_braintree.emulator import BraintreeEmulator


def fresh_key() -> str:
    return "behind-" + uuid.uuid4().hex.translate(str.maketrans("0123456789", "ghijklmnop"))


@pytest.mark.parametrize("asked", ["60.00", None])
@pytest.mark.parametrize("outside", ["50.00", "100.00"], ids=["part", "all"])
def test_a_refund_refused_for_an_outside_refund_leaves_the_ledgers_totals_at_braintrees(
        shared_service: tuple[PaymentService, BraintreeEmulator], asked: str | None, outside: str) -> None:
    """A refund made in the control panel: Braintree refuses the shop's refund past what is left,
    or, after a refund in full, as the transaction fully refunded (91512), which says the ledger is
    behind as 91521 does. Either way the ledger is read and keeps Braintree's totals."""
    payments, emulator = shared_service
    emulator.settlement = "instant"
    payment = payments.sale("braintree", Money.of("100.00", "EUR"), source="fake-valid-nonce",
                            order_id=fresh_key(), idempotency_key=fresh_key())
    with emulator.lock:
        emulator.operations.refund({"transactionId": payment.reference, "refund": {"amount": outside}})
    with pytest.raises(StateError) as refused:
        payments.refund(payment.id, Money.of(asked, "EUR") if asked else None, idempotency_key=fresh_key())
    if outside == "100.00":
        assert refused.value.code == "91512"
    assert refused.value.state_conflict and refused.value.details["reconciled"] is True
    later = payments.get_payment(payment.id)
    held = payments.gateway.execute("braintree", "fetch", Subject(reference=later.reference))
    assert (later.captured, later.refunded) == (held.captured, held.refunded)
    if outside == "100.00":
        assert (later.captured, later.refunded) == (Money.of("100.00", "EUR"),) * 2


@pytest.mark.parametrize("flow", ["sale", "partial capture"])
def test_a_refund_of_what_braintree_declined_at_settlement_unnotified_reads_the_payment_and_sends_nothing(
        service: PaymentService, emulator: BraintreeEmulator, flow: str) -> None:
    """The batch declined the sale or capture, and its notification has not come: the ledger still
    counts it captured. The refund finds it declined, sends nothing, and the ledger is read from
    Braintree (a refusal Braintree would answer, 91506 "not settled", says nothing of why, and
    would leave the ledger claiming the money until some read came)."""
    emulator.settlement = "batch"
    if flow == "sale":
        payment = service.sale("braintree", Money.of("30.00", "EUR"), source="fake-valid-nonce",
                               order_id=fresh_key(), idempotency_key=fresh_key())
        declined = payment.reference or ""
    else:
        payment = service.authorize("braintree", Money.of("100.00", "EUR"), source="fake-valid-nonce",
                                    order_id=fresh_key(), idempotency_key=fresh_key())
        payment = service.capture(payment.id, Money.of("30.00", "EUR"), idempotency_key=fresh_key())
        declined = emulator.transactions[payment.reference or ""].children[0]
    emulator.settle(declined, "SETTLEMENT_DECLINED")  # no notification reaches the service
    assert service.get_payment(payment.id).captured == Money.of("30.00", "EUR")
    with pytest.raises(StateError) as refused:
        service.refund(payment.id, Money.of("10.00", "EUR"), idempotency_key=fresh_key())
    assert refused.value.state_conflict and refused.value.details["reconciled"] is True
    assert not emulator.transactions[declined].refunds  # nothing was sent
    later = service.get_payment(payment.id)
    held = service.gateway.execute("braintree", "fetch", Subject(reference=later.reference, flow=later.flow))
    assert (later.captured, later.refunded) == (held.captured, held.refunded) == (Money.zero("EUR"),) * 2
    assert service.reconcile(payment_id=payment.id).clean
