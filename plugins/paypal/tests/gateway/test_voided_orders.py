"""An order PayPal voided, met by a retry under the key of the request that made it or by a
completion: what the order is, not a buyer waiting who cannot act. Real emulator on loopback.

Voided before anything was authorized or captured in it (the approval was reversed: the capture
window after approval passed), the order can never be completed: the payment ends failed, as a
decline ends it. Voided after its authorization was voided, it was completed: the completion
reports that, and the ledger follows PayPal to voided."""

from __future__ import annotations

import pytest

from paywire import Declined, Money, OutcomeUnknown, StateError, Subject, Transfer, hookimpl
from paywire.testing.emulator import Fault
from paywire_paypal.emulator.sandbox import approve_as_buyer

RETURN_URL = "https://shop.example/paypal/return"
_COMPLETIONS = r"/v2/checkout/orders/[^/]+/(capture|authorize)$"


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


@pytest.mark.parametrize("sale", [False, True])
def test_a_retry_of_a_lost_create_that_finds_the_order_voided_ends_the_payment_failed(paypal, service, sale):
    start = service.sale if sale else service.authorize
    paypal.app.inject(Fault(kind="drop_after", method="POST", path="/v2/checkout/orders$"))
    with pytest.raises(OutcomeUnknown) as lost:
        start("paypal", eur("25.00"), source="paypal", return_url=RETURN_URL, idempotency_key="voided-1")
    (order,) = paypal.app.orders.values()
    paypal.app.approve(order.id)
    paypal.app.reverse_approval(order.id)  # PayPal cancels it: VOIDED, nothing inside
    with pytest.raises(Declined):
        start("paypal", eur("25.00"), source="paypal", return_url=RETURN_URL, idempotency_key="voided-1")
    payment = service.get_payment(lost.value.payment_id or "")
    assert (payment.state, payment.action, payment.authorized) == ("failed", None, eur("0.00"))
    assert len(paypal.app.orders) == 1


@pytest.mark.parametrize(("sale", "resent"), [(False, False), (True, False), (False, True), (True, True)])
def test_completing_an_order_paypal_voided_before_payment_ends_the_payment_failed(paypal, service, sale, resent):
    start = service.sale if sale else service.authorize
    payment = start("paypal", eur("25.00"), source="paypal", return_url=RETURN_URL, idempotency_key="voided-2")
    approve_as_buyer(payment.action.redirect_url)
    if resent:  # an earlier completion got a 500 PayPal sent before applying it
        paypal.app.inject(Fault(kind="status", status=500, method="POST", path=_COMPLETIONS))
        with pytest.raises(OutcomeUnknown):
            service.complete(payment.id, idempotency_key="voided-2-complete")
        paypal.app.clear_faults()
    paypal.app.reverse_approval(payment.reference)
    posts = paypal.calls(method="POST")
    with pytest.raises(Declined):
        service.complete(payment.id, idempotency_key="voided-2-complete")
    assert paypal.calls(method="POST") == posts  # the order read says it all: nothing is sent
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.action, payment.authorized) == ("failed", None, eur("0.00"))


def test_a_retry_of_a_lost_completion_whose_authorization_was_voided_since_leaves_the_payment_voided(
        paypal, service):
    payment = service.authorize("paypal", eur("50.00"), source="paypal", return_url=RETURN_URL,
                                idempotency_key="voided-3")
    approve_as_buyer(payment.action.redirect_url)
    paypal.app.inject(Fault(kind="drop_after", method="POST", path="/authorize$"))
    with pytest.raises(OutcomeUnknown):
        service.complete(payment.id, idempotency_key="voided-3-complete")
    (authorization,) = paypal.app.authorizations
    paypal.run("void", reference=authorization, idempotency_key=paypal.key())  # PayPal then voids the order
    assert paypal.app.orders[payment.reference].status == "VOIDED"
    payment = service.complete(payment.id, idempotency_key="voided-3-complete")
    held = paypal.run("fetch", reference=payment.reference)
    assert (payment.state, payment.action) == ("voided", None)
    assert (payment.authorized, payment.captured) == (held.authorized, held.captured) == (eur("50.00"), eur("0.00"))


class BeforeCompletion:
    """Between the completion's read of the order and its authorize or capture call, something
    else moves the order on at PayPal: `move(order_id)` runs once, before that call leaves."""

    def __init__(self, move) -> None:
        self.move = move
        self.moved = False

    @hookimpl(tryfirst=True)
    def send_transfer(self, command: str, transfer: Transfer) -> None:
        if command == "complete" and transfer.method == "POST" and not self.moved:
            self.moved = True
            self.move(transfer.url.rsplit("/", 2)[-2])


@pytest.mark.parametrize(("sale", "move", "state"), [
    (False, "completed", "authorized"),  # ORDER_ALREADY_AUTHORIZED
    (True, "completed", "captured"),  # ORDER_ALREADY_CAPTURED
    (False, "cancelled", "failed"),  # ORDER_COMPLETED_OR_VOIDED
])
def test_a_completion_refused_because_the_order_moved_on_since_its_read_leaves_the_payment_as_paypal_holds_it(
        paypal, service, sale, move, state):
    start = service.sale if sale else service.authorize
    payment = start("paypal", eur("30.00"), source="paypal", return_url=RETURN_URL, idempotency_key="moved-1")
    approve_as_buyer(payment.action.redirect_url)
    elsewhere = paypal.gateway_with()  # another worker completing it with its own key

    def moved(order_id: str) -> None:
        if move == "completed":
            elsewhere.execute("paypal", "complete", Subject(reference=order_id, idempotency_key=paypal.key()))
        else:
            paypal.app.reverse_approval(order_id)

    paypal.gateway.plugins.register(BeforeCompletion(moved), name="before-completion")
    with pytest.raises(StateError) as refused:
        service.complete(payment.id, idempotency_key="moved-1-complete")
    assert refused.value.state_conflict and refused.value.details["reconciled"] is True
    payment = service.get_payment(payment.id)
    held = paypal.run("fetch", reference=payment.reference)
    assert payment.state == state and payment.action is None
    nothing = eur("0.00")  # an order voided before payment reports no totals
    assert (payment.authorized, payment.captured) == (held.authorized or nothing, held.captured or nothing)
