"""A capture Braintree refuses because a capture made in the control panel took part or all of the
authorization (no notification for it yet): the ledger is behind Braintree, and after the
refusal it counts that capture. Real emulator on loopback."""

from __future__ import annotations

import uuid

import pytest

from paywire import Money, PaymentService, StateError, Subject
from paywire_braintree.emulator import BraintreeEmulator


def fresh_key() -> str:
    return "capbehind-" + uuid.uuid4().hex.translate(str.maketrans("0123456789", "ghijklmnop"))


@pytest.mark.parametrize(("final", "code"), [(False, "91522"), (True, "91507")])
@pytest.mark.parametrize("settlement", ["instant", "batch"])
def test_a_capture_refused_for_an_outside_capture_leaves_the_ledgers_totals_at_braintrees(
        shared_service: tuple[PaymentService, BraintreeEmulator], settlement: str, final: bool, code: str) -> None:
    payments, emulator = shared_service
    emulator.settlement = settlement
    payment = payments.authorize("braintree", Money.of("100.00", "EUR"), source="fake-valid-nonce",
                                 order_id=fresh_key(), idempotency_key=fresh_key())
    with emulator.lock:  # the control panel: 91522 once too little is left, 91507 once it is closed
        emulator.operations.partial_capture({"transactionId": payment.reference,
                                             "transaction": {"amount": "50.00", "finalCapture": final}})
    with pytest.raises(StateError) as refused:
        payments.capture(payment.id, Money.of("60.00", "EUR"), idempotency_key=fresh_key())
    assert refused.value.code == code
    assert refused.value.state_conflict and refused.value.details["reconciled"] is True
    later = payments.get_payment(payment.id)
    held = payments.gateway.execute("braintree", "fetch", Subject(reference=later.reference))
    assert (later.authorized, later.captured, later.refunded) == (held.authorized, held.captured, held.refunded)
