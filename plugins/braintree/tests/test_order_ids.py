"""Values sent as Braintree's orderId (an order's id, an idempotency key) are refused above its
length before the payment service records anything."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from paywire import InvalidRequest, Money, Order, PaymentService
from paywire_braintree.emulator import BraintreeEmulator

NONCE = "fake-valid-nonce"
LONG = "k" * 256


def usd(minor: int) -> Money:
    return Money(minor, "USD")


@pytest.mark.parametrize(("case", "param"), [
    ("sale key", "idempotency_key"), ("order id", "order.id"), ("capture key", "idempotency_key"),
    ("refund key", "idempotency_key"),
])
def test_an_order_id_braintree_cannot_take_is_refused_before_anything_is_recorded(
    service: PaymentService, emulator: BraintreeEmulator, case: str, param: str,
) -> None:
    authorized = service.authorize("braintree", usd(1000), source=NONCE)
    sold = service.sale("braintree", usd(1000), source=NONCE)
    attempts: dict[str, Callable[[], object]] = {
        "sale key": lambda: service.sale("braintree", usd(1000), source=NONCE, idempotency_key=LONG),
        "order id": lambda: service.sale("braintree", usd(1000), source=NONCE, order=Order(id=LONG)),
        "capture key": lambda: service.capture(authorized.id, usd(100), idempotency_key=LONG),
        "refund key": lambda: service.refund(sold.id, usd(100), idempotency_key=LONG),
    }
    before, calls = ([t.id for t in service.list_transactions()], service.list_payments()), len(emulator.calls)
    with pytest.raises(InvalidRequest) as refused:
        attempts[case]()
    assert (refused.value.param, refused.value.code) == (param, "too_long")
    assert "nothing was sent" in str(refused.value)
    assert ([t.id for t in service.list_transactions()], service.list_payments()) == before
    assert len(emulator.calls) == calls
    assert service.sale("braintree", usd(1000), source=NONCE, idempotency_key=LONG[:255]).captured == usd(1000)
