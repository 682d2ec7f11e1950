"""Partial authorization end to end, against the emulator's `pm_card_debit_partialAuthorization`
(70% authorized, only when the payment asks). paywire does not ask by itself: Stripe's partial
authorizations are an IC+ feature a shop opts into, here with a `build_request` hook as the README
says. Asked, the ledger records what Stripe holds (its `amount` stays what was asked) and takes
no more; unasked, Stripe declines the card and the payment fails."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import pytest

from paywire import Declined, Gateway, Money, PaymentService, StateError, Subject, hookimpl
from paywire.ledger import PaymentState

PARTIAL = "pm_card_debit_partialAuthorization"
ASKED = "payment_method_options[card][request_partial_authorization]"


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


class AsksForPartialAuthorization:
    """A shop enabled for Stripe's partial authorizations asks for them on its card payments."""

    @hookimpl
    def build_request(self, provider: str, command: str, subject: Subject) -> Mapping[str, Any] | None:
        if provider == "stripe" and command in ("authorize", "sale"):
            return {"payment_method_options": {"card": {"request_partial_authorization": "if_available"}}}
        return None


@pytest.fixture
def asking(gateway: Gateway) -> Gateway:
    gateway.plugins.register(AsksForPartialAuthorization(), name="shop.partial_authorization")
    return gateway


@pytest.mark.parametrize("kind", ["authorize", "sale"])
def test_asked_stripe_authorizes_part_and_the_ledger_holds_that(
    asking: Gateway,
    service: PaymentService,
    stripe: Any,
    form: Callable[[Any], dict[str, str]],
    deliver_all: Callable[[set[str]], list[str]],
    kind: str,
) -> None:
    payment = getattr(service, kind)("stripe", usd("100.01"), source=PARTIAL, order_id=f"P-{kind}")
    (sent,) = stripe.sent()
    assert form(sent)[ASKED] == "if_available"
    held = usd("70.00")  # 70% of 100.01, rounded down to the cent
    sale = kind == "sale"
    assert (payment.state, payment.amount, payment.authorized, payment.captured) == (
        PaymentState.CAPTURED if sale else PaymentState.AUTHORIZED,
        usd("100.01"),
        held,
        held if sale else usd("0"),
    )
    fetched = stripe.fetch(payment.reference)
    assert (fetched.authorized, fetched.captured) == (held, held if sale else usd("0"))
    assert set(deliver_all(set())) == {"applied"}  # Stripe's events of the payment say the same
    assert service.get_payment(payment.id).authorized == held
    take = service.refund if sale else service.capture
    before = len(stripe.sent())
    with pytest.raises(StateError) as refused:
        take(payment.id, usd("70.01"))
    assert refused.value.code == ("refund_exceeds_captured" if sale else "capture_exceeds_authorized")
    assert len(stripe.sent()) == before  # nothing was sent
    payment = take(payment.id)  # all that Stripe holds
    assert (payment.refunded if sale else payment.captured) == held
    assert service.reconcile(payment_id=payment.id).mismatches == ()


def test_unasked_stripe_declines_the_card_and_the_payment_fails(
    service: PaymentService, stripe: Any, form: Callable[[Any], dict[str, str]]
) -> None:
    with pytest.raises(Declined) as declined:
        service.authorize("stripe", usd("100.00"), source=PARTIAL, order_id="P-unasked")
    assert declined.value.decline_code == "insufficient_funds"
    assert service.get_payment(declined.value.payment_id or "").state == PaymentState.FAILED
    (sent,) = stripe.sent()
    assert not [name for name in form(sent) if name.startswith("payment_method_options")]  # paywire never asks
