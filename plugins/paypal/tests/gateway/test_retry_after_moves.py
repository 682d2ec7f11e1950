"""An order paid from the vault whose answer was lost, whose authorization or capture then moved on
at PayPal before the shop retried it under its PayPal-Request-Id (expired, voided, captured or
refunded; no event reached the shop): PayPal answers the retry with the order as it is now, and
the ledger then holds what PayPal holds, never the fresh authorization it once was. Real emulator
on loopback."""

from __future__ import annotations

import pytest

from paywire import Money, OutcomeUnknown
from paywire.testing.emulator import Fault


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def _move(paypal, move: str) -> None:
    order = list(paypal.app.orders.values())[-1]  # the one the lost request made
    held = paypal.run("fetch", reference=order.id)
    if move == "expire":
        paypal.app.expire_authorization(held.references["authorization"])
    elif move == "void":
        paypal.run("void", reference=held.references["authorization"], idempotency_key=paypal.key())
    elif move == "capture":
        paypal.run("capture", reference=held.references["authorization"], amount=eur("40.00"), final=True,
                   idempotency_key=paypal.key())
    else:
        paypal.run("refund", reference=paypal.run("fetch", reference=order.id).references["capture"],
                   amount=eur("10.00"), idempotency_key=paypal.key())


@pytest.mark.parametrize(("flow", "moves", "state"), [
    ("authorize", ["expire"], "voided"),
    ("authorize", ["void"], "voided"),
    ("authorize", ["capture", "refund"], "partially_refunded"),
    ("sale", ["refund"], "partially_refunded"),
])
def test_a_retry_that_finds_the_order_moved_on_leaves_the_payment_as_paypal_holds_it(
        paypal, service, flow, moves, state):
    token, key = paypal.app.vault_card(), paypal.key()
    start = service.sale if flow == "sale" else service.authorize
    paypal.app.inject(Fault(kind="drop_after", method="POST", path="/v2/checkout/orders$"))
    with pytest.raises(OutcomeUnknown) as lost:
        start("paypal", eur("40.00"), source=token, idempotency_key=key)
    for move in moves:
        _move(paypal, move)
    start("paypal", eur("40.00"), source=token, idempotency_key=key)
    payment = service.get_payment(lost.value.payment_id or "")
    held = paypal.run("fetch", reference=payment.reference)
    assert (payment.authorized, payment.captured, payment.refunded) == (held.authorized, held.captured, held.refunded)
    assert payment.state == state and len(paypal.app.orders) == 1
