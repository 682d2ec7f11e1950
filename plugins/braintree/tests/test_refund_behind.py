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
def test_a_refund_refused_for_an_outside_refund_leaves_the_ledgers_totals_at_braintrees(
        shared_service: tuple[PaymentService, BraintreeEmulator], asked: str | None) -> None:
    payments, emulator = shared_service
    emulator.settlement = "instant"
    payment = payments.sale("braintree", Money.of("100.00", "EUR"), source="fake-valid-nonce",
                            order_id=fresh_key(), idempotency_key=fresh_key())
    with emulator.lock:
        emulator.operations.refund({"transactionId": payment.reference, "refund": {"amount": "50.00"}})
    with pytest.raises(StateError) as refused:
        payments.refund(payment.id, Money.of(asked, "EUR") if asked else None, idempotency_key=fresh_key())
    assert refused.value.state_conflict and refused.value.details["reconciled"] is True
    later = payments.get_payment(payment.id)
    held = payments.gateway.execute("braintree", "fetch", Subject(reference=later.reference))
    assert (later.captured, later.refunded) == (held.captured, held.refunded)
