"""Braintree authorizes refunds: one the processor hard-declines is answered as a Refund in
PROCESSOR_DECLINED (its SDK's integration tests: a refund of 2004.00 is declined, one of 2046.00,
a soft decline, goes through). A declined refund moved no money, so it is a decline, and the
ledger never counts it. Real emulator on loopback."""

from __future__ import annotations

import uuid

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paywire import Declined, Money, PaymentService, Subject
from paywire_braintree.emulator import BraintreeEmulator

EUR = "EUR"


def fresh_key() -> str:
    """A key no run has used (letters only: a run of digits could pass for a card number)."""
    return "refdecl-" + uuid.uuid4().hex.translate(str.maketrans("0123456789", "ghijklmnop"))


def test_a_refund_the_processor_declines_is_a_decline_with_its_code(
        shared_service: tuple[PaymentService, BraintreeEmulator]) -> None:
    gateway = shared_service[0].gateway
    key = fresh_key()
    sale = gateway.execute("braintree", "sale", Subject(amount=Money.of("4000.00", EUR), source="fake-valid-nonce",
                                                        idempotency_key=key))
    with pytest.raises(Declined) as declined:
        gateway.execute("braintree", "refund", Subject(reference=sale.reference, amount=Money.of("2004.00", EUR),
                                                       idempotency_key=f"{key}-a"))
    assert declined.value.decline_code == "2004"
    soft = gateway.execute("braintree", "refund", Subject(reference=sale.reference, amount=Money.of("2046.00", EUR),
                                                          idempotency_key=f"{key}-b"))
    assert soft.status == "succeeded"
    fetched = gateway.execute("braintree", "fetch", Subject(reference=sale.reference))
    assert fetched.refunded == Money.of("2046.00", EUR)


@settings(max_examples=10, deadline=None)
@given(refunds=st.lists(st.sampled_from(["2004.00", "2013.00", "2046.00", "2001.00", "10.00"]), min_size=1,
                        max_size=3))
def test_the_ledger_counts_only_the_refunds_braintree_made(
        shared_service: tuple[PaymentService, BraintreeEmulator], refunds: list[str]) -> None:
    payments, emulator = shared_service
    emulator.settlement = "instant"
    key = fresh_key()
    payment = payments.sale("braintree", Money.of("9000.00", EUR), source="fake-valid-nonce", order_id=key,
                            idempotency_key=key)
    for index, euros in enumerate(refunds):
        try:
            payments.refund(payment.id, Money.of(euros, EUR), idempotency_key=f"{key}-{index}")
        except Declined:
            pass
    fetched = payments.gateway.execute("braintree", "fetch", Subject(reference=payment.reference))
    assert payments.get_payment(payment.id).refunded == fetched.refunded
