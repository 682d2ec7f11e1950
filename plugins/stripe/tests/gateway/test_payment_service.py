"""The payment service and its ledger driving the Stripe gateway against the emulator: the
plugin's results, errors, fetch and webhooks are what the service needs."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

import paywire_stripe
from paywire import (
    Address,
    Customer,
    Declined,
    Gateway,
    InvalidRequest,
    MethodConfig,
    Money,
    Order,
    OutcomeUnknown,
    PaymentService,
    PaywireError,
    Plugins,
    RateLimited,
    Retry,
    SQLiteLedger,
    StateError,
    hookimpl,
)
from paywire.ledger import PaymentState, TransactionStatus
from paywire.testing.emulator import Fault
from paywire_stripe.sandbox import pass_challenge

Deliver = Callable[[set[str]], list[str]]  # the deliver_all fixture


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def usd(amount: str) -> Money:
    return Money.of(amount, "USD")


def test_authorize_capture_and_refund_agree_with_stripe(service: PaymentService, stripe: Any) -> None:
    payment = service.authorize("stripe", eur("100.00"), source="pm_card_visa", order_id="A-1",
                                return_url="https://shop.example/return")
    assert (payment.state, payment.authorized) == (PaymentState.AUTHORIZED, eur("100.00"))
    assert payment.reference and payment.reference.startswith("pi_")
    payment = service.capture(payment.id, eur("60.00"))  # Stripe captures once: the rest is released
    assert (payment.state, payment.captured, payment.capturable) == (PaymentState.CAPTURED, eur("60.00"),
                                                                     eur("0.00"))
    payment = service.refund(payment.id, eur("10.00"))
    payment = service.refund(payment.id)  # the rest
    assert (payment.state, payment.refunded) == (PaymentState.REFUNDED, eur("60.00"))
    fetched = stripe.fetch(payment.reference)
    assert (fetched.authorized, fetched.captured, fetched.refunded) == (
        payment.authorized, payment.captured, payment.refunded)
    keys = [t.idempotency_key for t in service.list_transactions(payment.id)]
    assert [record.transfer.idempotency_key for record in stripe.recorder.sent if record.transfer.method == "POST"] == (
        keys)


def test_a_partial_authorization_records_what_stripe_holds(service: PaymentService, stripe: Any,
                                                          partial_authorization: Callable[[int], None]) -> None:
    """Stripe authorized 60.00 of 100.00 (the card's `amount_authorized`, the intent's
    `amount_capturable`): the ledger holds that, not what was asked, and refuses to capture more
    before sending anything."""
    partial_authorization(6000)
    payment = service.authorize("stripe", eur("100.00"), source="pm_card_visa", order_id="A-60")
    assert (payment.state, payment.amount, payment.authorized) == (PaymentState.AUTHORIZED, eur("100.00"),
                                                                   eur("60.00"))
    sent = len(stripe.sent())
    with pytest.raises(StateError) as refused:
        service.capture(payment.id, eur("60.01"))
    assert refused.value.code == "capture_exceeds_authorized" and len(stripe.sent()) == sent
    payment = service.capture(payment.id)
    assert (payment.state, payment.authorized, payment.captured) == (PaymentState.CAPTURED, eur("60.00"),
                                                                     eur("60.00"))
    assert service.reconcile(payment_id=payment.id).mismatches == ()


@pytest.mark.parametrize(("most", "currency"), [(99999999, "USD"), (99999999, "JPY"), (999999999999, "IDR")])
def test_an_amount_above_what_stripe_charges_is_refused_before_it_is_recorded(
    service: PaymentService, app: Any, most: int, currency: str,
) -> None:
    """Stripe charges at most eight digits in its unit (twelve for IDR): above, it was recorded,
    sent, refused, and a failed payment left in the ledger."""
    calls = len(app.calls)
    with pytest.raises(InvalidRequest) as refused:
        service.sale("stripe", Money(most + 1, currency), source="pm_card_visa")
    assert (refused.value.code, refused.value.param) == ("amount_too_large", "amount")
    assert "nothing was sent" in str(refused.value)
    assert service.list_payments() == [] and service.list_transactions() == [] and len(app.calls) == calls
    assert service.sale("stripe", Money(most, currency), source="pm_card_visa").captured == Money(most, currency)


@pytest.mark.parametrize("order", [Order(id="A-1", description="gift \udc80"), Order(id="A-1", shipping=Address(
    name="Ada", line1="Rue \udc80 1", city="Paris", country="FR"))])
def test_text_no_form_body_can_carry_is_refused_before_it_is_recorded(service: PaymentService, app: Any,
                                                                      order: Order) -> None:
    """A lone surrogate has no UTF-8 bytes: encoding the form body failed with a bare
    UnicodeEncodeError."""
    calls = len(app.calls)
    with pytest.raises(InvalidRequest) as refused:
        service.authorize("stripe", eur("10.00"), source="pm_card_visa", order=order)
    assert "lone surrogate" in str(refused.value) and "nothing was sent" in str(refused.value)
    assert service.list_payments() == [] and service.list_transactions() == [] and len(app.calls) == calls


def test_a_decline_fails_the_payment(service: PaymentService) -> None:
    with pytest.raises(Declined) as declined:
        service.authorize("stripe", eur("10.00"), source="pm_card_chargeDeclinedInsufficientFunds")
    assert declined.value.decline_code == "insufficient_funds"
    assert service.get_payment(declined.value.payment_id or "").state == PaymentState.FAILED


def test_a_declined_intent_paid_later_with_another_card_is_followed_by_its_events(
    service: PaymentService, app: Any, api: Any,
) -> None:
    """A 402 decline embeds the PaymentIntent it left in requires_payment_method, which Stripe lets
    the buyer pay with another card. The ledger records it, so the signed events of that payment
    find the payment: Stripe captured the money, and the ledger says so (it said failed, with the
    events unmatched forever)."""
    with pytest.raises(Declined) as declined:
        service.sale("stripe", eur("10.00"), source="pm_card_chargeDeclined", return_url="https://shop.example/r")
    intent = declined.value.details["payment_intent"]
    (txn,) = service.list_transactions(declined.value.payment_id or "")
    assert (txn.status, txn.provider_reference) == (TransactionStatus.FAILED, intent)
    paid = api.post(f"/v1/payment_intents/{intent}/confirm",
                    {"payment_method": "pm_card_visa", "return_url": "https://shop.example/r"})
    assert paid.body["status"] == "succeeded"
    for event_type in ("charge.succeeded", "payment_intent.succeeded"):
        body, headers = app.signed_event(app.events_of_type(event_type)[-1])
        receipt = service.receive_webhook("stripe", headers, body)
        assert (receipt.status, receipt.payment_id) == ("applied", declined.value.payment_id)
    payment = service.get_payment(declined.value.payment_id or "")
    assert (payment.reference, payment.captured) == (intent, eur("10.00"))
    assert service.refund(payment.id, eur("4.00")).refunded == eur("4.00")


@pytest.mark.parametrize("settled_by", ["answer", "reconcile"])
def test_a_replayed_decline_names_the_intent_it_left(service: PaymentService, app: Any, settled_by: str) -> None:
    """A decline leaves a PaymentIntent the buyer may still pay: the same call under its key (or a
    retry) replays the stored failure, never sent again, naming that intent as the first answer
    did, whether the decline was the answer or reconciliation found it after a lost answer. The
    intent is read first, once per replay: still unpaid, the decline stands."""
    key = f"declined-{settled_by}"

    def sale() -> object:
        return service.sale("stripe", eur("10.00"), source="pm_card_chargeDeclined", idempotency_key=key,
                            return_url="https://shop.example/r")

    if settled_by == "answer":
        with pytest.raises(Declined) as first:
            sale()
        intent = first.value.details["payment_intent"]
        assert first.value.reference == intent
        txn_id = first.value.transaction_id or ""
    else:
        app.inject(Fault(kind="drop_after", path=r"^/v1/payment_intents$"))
        with pytest.raises(OutcomeUnknown) as lost:
            sale()
        (intent,) = app.store.payment_intents
        txn_id = lost.value.transaction_id or ""
        assert service.reconcile(payment_id=lost.value.payment_id).clean
    assert service.get_transaction(txn_id).provider_reference == intent
    calls = len(app.calls)
    for replay in (sale, lambda: service.retry(txn_id)):
        with pytest.raises(Declined) as replayed:
            replay()
        assert replayed.value.details["replayed"] and replayed.value.transaction_id == txn_id
        assert replayed.value.reference == intent
        assert replayed.value.details["reconciled"] is True
    assert app.calls[calls:] == [("GET", f"/v1/payment_intents/{intent}")] * 2


@pytest.mark.parametrize("settled_by", ["reconcile", "event"])
def test_an_intent_settled_failed_and_paid_later_is_no_undone_sale(
    gateway_at: Any, server: Any, app: Any, api: Any, tmp_path: Path, settled_by: str,
) -> None:
    """A sale reconcile or Stripe's event settled failed (its answer lost, or an ACH debit that
    failed) leaves its PaymentIntent, which the buyer may pay since with a card. Its events report
    that payment, not a success of the failed sale Stripe undid: the ledger recorded a reversal of
    the sale and the payment failed with nothing captured, and ignored the intent's later events,
    while Stripe held the money."""
    gateway = gateway_at(server.url, options={"payment_method_types": ["card", "us_bank_account"]})
    service = PaymentService(gateway, SQLiteLedger(tmp_path / "ledger.db"), wait_timeout=5.0)
    seen: set[str] = set()

    def deliver() -> None:
        for event_id in [e for e in list(app.store.events) if e not in seen]:
            seen.add(event_id)
            body, headers = app.signed_event(event_id)
            assert service.receive_webhook("stripe", headers, body).status != "deferred"

    if settled_by == "reconcile":
        app.inject(Fault(kind="drop_after", path=r"^/v1/payment_intents$"))
        with pytest.raises(OutcomeUnknown) as lost:
            service.sale("stripe", usd("10.00"), source="pm_card_chargeDeclined", return_url="https://shop.example/r")
        payment_id = lost.value.payment_id or ""
        deliver()  # unmatched: the ledger does not know the intent yet
        service.reconcile(payment_id=payment_id)
    else:
        payment_id = service.sale("stripe", usd("10.00"), source="pm_usBankAccount_success").id
        deliver()
        app.settle(service.get_payment(payment_id).reference or "", False)
        deliver()
    (sale,) = service.list_transactions(payment_id)
    assert (sale.status, sale.settled_by) == (TransactionStatus.FAILED, settled_by.replace("event", "webhook"))
    intent = service.get_payment(payment_id).reference or ""
    paid = api.post(f"/v1/payment_intents/{intent}/confirm",
                    {"payment_method": "pm_card_visa", "return_url": "https://shop.example/r"})
    assert paid.body["status"] == "succeeded"
    deliver()
    payment = service.get_payment(payment_id)
    assert (payment.state, payment.captured) == (PaymentState.CAPTURED, usd("10.00"))
    assert [t.kind for t in service.list_transactions(payment_id)] == ["sale"]  # no reversal
    assert service.reconcile(payment_id=payment_id).mismatches == ()
    assert service.refund(payment_id, usd("4.00")).refunded == usd("4.00")


def test_3ds_waits_for_the_buyer_then_completes(service: PaymentService) -> None:
    payment = service.authorize("stripe", eur("10.00"), source="pm_card_threeDSecure2Required",
                                return_url="https://shop.example/return")
    assert payment.state == PaymentState.ACTION_REQUIRED
    action = service.list_transactions(payment.id)[-1]
    assert action.status == TransactionStatus.ACTION_REQUIRED
    intent = service.gateway.execute("stripe", "fetch", _by_reference(payment.reference))
    assert intent.state == "action_required"
    pass_challenge(_redirect(service, payment.reference))
    payment = service.complete(payment.id)
    assert (payment.state, payment.authorized) == (PaymentState.AUTHORIZED, eur("10.00"))


def test_a_lost_answer_is_reconciled_from_stripe_by_the_key(service: PaymentService, app: Any) -> None:
    app.inject(Fault(kind="drop_after", path=r"^/v1/payment_intents$"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.authorize("stripe", eur("25.00"), source="pm_card_visa", order_id="A-2")
    payment_id = lost.value.payment_id or ""
    assert service.get_payment(payment_id).state == PaymentState.PENDING
    report = service.reconcile(payment_id=payment_id)
    assert report.clean, report
    payment = service.get_payment(payment_id)
    assert (payment.state, payment.authorized) == (PaymentState.AUTHORIZED, eur("25.00"))
    assert payment.reference in app.store.payment_intents and len(app.store.payment_intents) == 1


def test_webhooks_from_stripe_are_verified_and_applied(service: PaymentService, app: Any, api: Any,
                                                       receiver: Any) -> None:
    payment = service.authorize("stripe", eur("40.00"), source="pm_card_visa", return_url="https://shop.example/r")
    app.webhook_url = receiver.url
    api.post(f"/v1/payment_intents/{payment.reference}/capture", {"amount_to_capture": 1500})  # outside paywire
    deliveries = receiver.wait_for(2)  # charge.captured, payment_intent.succeeded
    receipts = [service.receive_webhook("stripe", headers, body) for headers, body in deliveries]
    assert {receipt.status for receipt in receipts} == {"applied"}
    assert service.receive_webhook("stripe", *deliveries[0]).status == "duplicate"
    assert service.get_payment(payment.id).captured == eur("15.00")


def test_a_vaulted_card_is_charged_without_the_buyer(service: PaymentService) -> None:
    stored = service.vault("stripe", "pm_card_visa", customer=Customer(email="ada@shop.example"))
    assert stored.status == TransactionStatus.SUCCEEDED and stored.token and stored.token.startswith("pm_")
    customer = Customer(reference=stored.provider_reference)
    payment = service.charge_vaulted("stripe", stored.token, eur("9.99"), customer=customer)
    assert (payment.state, payment.captured) == (PaymentState.CAPTURED, eur("9.99"))


def _by_reference(reference: str | None) -> Any:
    from paywire import Subject

    return Subject(reference=reference)


def _redirect(service: PaymentService, reference: str | None) -> str:
    result = service.gateway.execute("stripe", "fetch", _by_reference(reference))
    return str(result.raw["next_action"]["redirect_to_url"]["url"])


def _refund_that_fails_later(service: PaymentService) -> tuple[Any, str]:
    payment = service.sale("stripe", eur("30.00"), source="pm_card_refundFail")
    payment = service.refund(payment.id, eur("10.00"))
    refund = service.list_transactions(payment.id)[-1]
    assert (refund.status, payment.refunded) == (TransactionStatus.SUCCEEDED, eur("10.00"))
    assert refund.provider_reference and refund.provider_reference.startswith("re_")
    return payment, refund.provider_reference


def test_a_refund_stripe_undoes_later_is_reversed_by_its_event(service: PaymentService, app: Any,
                                                               receiver: Any) -> None:
    payment, refund = _refund_that_fails_later(service)
    app.webhook_url = receiver.url
    app.settle(refund)  # the bank returns it: refund.failed (and its updates)
    for headers, body in receiver.wait_for(2):
        service.receive_webhook("stripe", headers, body)
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.refunded) == (PaymentState.CAPTURED, eur("0.00"))
    reversals = [t for t in service.list_transactions(payment.id) if t.kind == "reversal"]
    assert [(t.amount, t.origin) for t in reversals] == [(eur("10.00"), "webhook")]
    assert service.reconcile(payment_id=payment.id).clean  # the ledger agrees with Stripe
    payment = service.refund(payment.id, eur("30.00"))  # all of it is refundable again
    assert payment.refunded == eur("30.00")


def test_a_refund_stripe_undid_is_reversed_by_reconcile_once(service: PaymentService, app: Any) -> None:
    payment, refund = _refund_that_fails_later(service)
    app.settle(refund)  # no webhook reaches the shop
    report = service.reconcile(payment_id=payment.id)
    assert report.clean, report
    assert service.reconcile(payment_id=payment.id).clean
    payment = service.get_payment(payment.id)
    assert payment.refunded == eur("0.00")
    assert len([t for t in service.list_transactions(payment.id) if t.kind == "reversal"]) == 1


def _signed(app: Any, event_type: str, intent: str) -> tuple[dict[str, str], bytes]:
    (event,) = [e for e in app.events_of_type(event_type) if e["data"]["object"]["id"] == intent]
    body, headers = app.signed_event(event)
    return headers, body


def test_an_event_about_another_payment_of_the_same_card_is_not_applied_to_this_one(
        service: PaymentService, app: Any) -> None:
    """A customer and a saved card are shared by many payments: an event naming them is about its
    own PaymentIntent, never about another payment of the same customer."""
    stored = service.vault("stripe", "pm_card_visa", customer=Customer(email="ada@shop.example"))
    assert stored.token
    customer = Customer(reference=stored.provider_reference)
    first = service.charge_vaulted("stripe", stored.token, eur("9.99"), customer=customer)
    app.inject(Fault(kind="drop_after", path=r"^/v1/payment_intents$"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.charge_vaulted("stripe", stored.token, eur("50.00"), customer=customer)
    second = next(i for i in app.store.payment_intents if i != first.reference)
    receipt = service.receive_webhook("stripe", *_signed(app, "payment_intent.succeeded", second))
    assert receipt.payment_id != first.id
    first = service.get_payment(first.id)
    assert (first.authorized, first.captured) == (eur("9.99"), eur("9.99"))
    service.reconcile(payment_id=lost.value.payment_id)
    later = service.get_payment(lost.value.payment_id or "")
    assert (later.state, later.captured) == (PaymentState.CAPTURED, eur("50.00"))
    assert service.ledger.get_event("stripe", receipt.event_id).payment_id == later.id  # type: ignore[union-attr]
    assert service.get_payment(first.id).captured == eur("9.99")


class DeliverBeforeRecording:
    """Delivers every Stripe event a request caused before the service records the request's
    answer: a fast Stripe and a slow database."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.service: PaymentService | None = None
        self.seen: set[str] = set()
        self.receipts: list[tuple[str, str]] = []

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Iterator[None]:
        response: Any = yield
        if self.service is not None:
            for event_id in [e for e in list(self.app.store.events) if e not in self.seen]:
                self.seen.add(event_id)
                body, headers = self.app.signed_event(event_id)
                receipt = self.service.receive_webhook("stripe", headers, body)
                self.receipts.append((json.loads(body)["type"], receipt.status))
        return response


def test_events_delivered_before_their_operations_are_recorded_count_nothing_twice(
        app: Any, server: Any, api_key: str, webhook_secret: str, tmp_path: Path) -> None:
    hook = DeliverBeforeRecording(app)
    plugins = Plugins()
    plugins.register(paywire_stripe, name="stripe")
    plugins.register(hook, name="deliver")
    method = MethodConfig(code="stripe", base_url=server.url, environment="sandbox",
                          credentials={"secret_key": api_key, "webhook_secret": webhook_secret})
    with Gateway([method], plugins=plugins, retry=Retry.never()) as gateway, \
            SQLiteLedger(tmp_path / "ledger.db") as ledger:
        service = hook.service = PaymentService(gateway, ledger)
        payment = service.authorize("stripe", eur("80.00"), source="pm_card_visa", return_url="https://s.example/r")
        payment = service.capture(payment.id, eur("50.00"))
        payment = service.refund(payment.id, eur("20.00"))
        payment = service.refund(payment.id, eur("5.00"))
        assert {status for _, status in hook.receipts} <= {"applied", "deferred", "unmatched"}
        payment = service.get_payment(payment.id)
        assert (payment.authorized, payment.captured, payment.refunded) == (eur("80.00"), eur("50.00"), eur("25.00"))
        assert [t.origin for t in service.list_transactions(payment.id)] == ["service"] * 4
        assert service.reconcile(payment_id=payment.id).clean
        waiting = [e for e in ledger.list_events() if e.status in ("deferred",)]
        assert waiting == []


def test_what_a_partial_capture_released_is_no_refund_for_reconcile(service: PaymentService, app: Any) -> None:
    """At the pinned API version Stripe lists the remainder a partial capture released as a Refund
    of the charge (until 2025-03-31.basil): reconciliation must not take it for paywire's refund of
    the same amount that never reached Stripe, nor count it as refunded."""
    payment = service.authorize("stripe", eur("100.00"), source="pm_card_visa", return_url="https://shop.example/r")
    payment = service.capture(payment.id, eur("60.00"))
    app.inject(Fault(kind="status", status=500, path=r"^/v1/refunds$"))  # refused before it took effect
    with pytest.raises(PaywireError):
        service.refund(payment.id, eur("40.00"))
    [refund] = [t for t in service.list_transactions(payment.id) if t.kind == "refund"]
    assert refund.status == TransactionStatus.UNKNOWN
    assert [r["amount"] for r in app.store.refunds.values()] == [4000]  # only the release
    service.reconcile(payment_id=payment.id)
    [refund] = [t for t in service.list_transactions(payment.id) if t.kind == "refund"]
    payment = service.get_payment(payment.id)
    assert refund.status != TransactionStatus.SUCCEEDED and refund.provider_reference is None
    assert (payment.state, payment.captured, payment.refunded) == (PaymentState.CAPTURED, eur("60.00"), eur("0.00"))


def test_stripes_own_refund_for_an_expired_authorization_moves_no_money(service: PaymentService, app: Any) -> None:
    """A Refund whose reason is `expired_uncaptured_charge` is "generated by Stripe internally"
    (the Refund schema of the pinned API version): it books the release of an authorization that
    was never captured. Its events must not make the ledger claim money was captured and refunded."""
    from paywire_stripe.emulator.events import signed_headers

    payment = service.authorize("stripe", eur("30.00"), source="pm_card_visa", return_url="https://shop.example/r")
    intent = app.get(payment.reference)
    refund = {"id": "re_release0000000000000001", "object": "refund", "amount": 3000, "currency": "eur",
              "charge": intent["latest_charge"], "payment_intent": intent["id"], "created": 1_700_000_000,
              "metadata": {}, "reason": "expired_uncaptured_charge", "status": "succeeded",
              "balance_transaction": None, "receipt_number": None, "source_transfer_reversal": None,
              "transfer_reversal": None}
    for number, event_type in enumerate(("charge.refund.updated", "refund.updated", "refund.created")):
        event = {"id": f"evt_release{number:015d}", "object": "event", "type": event_type, "api_version": "2023-08-16",
                 "created": 1_700_000_000, "livemode": False, "data": {"object": refund}}
        body = json.dumps(event).encode()
        service.receive_webhook("stripe", signed_headers(app.webhook_secret, body), body)
    payment = service.get_payment(payment.id)
    assert (payment.captured, payment.refunded) == (eur("0.00"), eur("0.00"))
    assert [t.kind for t in service.list_transactions(payment.id)] == ["authorize"]


def test_a_capture_made_in_the_dashboard_is_refunded_through_paywire(service: PaymentService, app: Any,
                                                                     api: Any, deliver_all: Deliver) -> None:
    """Stripe's capture events carry the intent's running total, so the ledger learns such a capture
    as a total and holds no capture transaction for it: the refund acts on the payment. Stripe
    captures once, so what the capture left is released (Stripe's intent is succeeded)."""
    seen: set[str] = set()
    payment = service.authorize("stripe", eur("40.00"), source="pm_card_visa", return_url="https://shop.example/r")
    api.post(f"/v1/payment_intents/{payment.reference}/capture", {"amount_to_capture": 1500})  # outside paywire
    assert set(deliver_all(seen)) == {"applied"}
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.captured, payment.capturable) == (PaymentState.CAPTURED, eur("15.00"), eur("0.00"))
    with pytest.raises(PaywireError) as refused:
        service.refund(payment.id, eur("15.01"))
    assert refused.value.code == "refund_exceeds_captured"
    payment = service.refund(payment.id, eur("5.00"))
    payment = service.refund(payment.id)  # the rest
    assert (payment.state, payment.refunded) == (PaymentState.REFUNDED, eur("15.00"))
    charge = app.get(app.get(payment.reference)["latest_charge"])
    assert (charge["amount_captured"], sum(r["amount"] for r in app.store.refunds.values()
                                           if r["metadata"])) == (1500, 1500)
    deliver_all(seen)
    assert service.get_payment(payment.id).refunded == eur("15.00")
    assert service.reconcile(payment_id=payment.id).clean


@pytest.mark.parametrize("operation", ["authorize", "sale"])
def test_a_3ds_payment_its_events_finished_first_completes_as_it_is(service: PaymentService, app: Any,
                                                                      operation: str, deliver_all: Deliver) -> None:
    """The buyer passes the challenge and Stripe's events arrive before the buyer is back at the
    shop: the shop's `complete()` finds the payment finished and sends nothing; its money can be
    captured and refunded."""
    seen: set[str] = set()
    start = service.authorize if operation == "authorize" else service.sale
    payment = start("stripe", eur("20.00"), source="pm_card_threeDSecure2Required",
                    return_url="https://shop.example/return")
    assert payment.state == PaymentState.ACTION_REQUIRED
    pass_challenge(_redirect(service, payment.reference))
    deliver_all(seen)
    calls = len(app.calls)
    payment = service.complete(payment.id)
    assert len(app.calls) == calls  # nothing sent
    if operation == "authorize":
        assert (payment.state, payment.authorized) == (PaymentState.AUTHORIZED, eur("20.00"))
        payment = service.capture(payment.id)
    assert (payment.state, payment.captured) == (PaymentState.CAPTURED, eur("20.00"))
    payment = service.refund(payment.id, eur("5.00"))
    assert payment.refunded == eur("5.00")
    assert service.complete(payment.id) == service.get_payment(payment.id)
    deliver_all(seen)
    assert service.reconcile(payment_id=payment.id).clean


@pytest.mark.parametrize("release", ["partial capture", "void"])
def test_an_event_about_stripes_booking_of_a_release_claims_no_refund(service: PaymentService, app: Any,
                                                                      api: Any, release: str,
                                                                      deliver_all: Deliver) -> None:
    """Before 2025-03-31.basil Stripe books what a partial capture or a cancellation released as a
    Refund without a reason or paywire's key. A back office tagging it makes Stripe send
    `refund.updated` for it; no money went back, so the ledger counts no refund. A refund made in
    Stripe's dashboard, as keyless and reasonless, still counts."""
    seen: set[str] = set()
    payment = service.authorize("stripe", eur("100.00"), source="pm_card_visa", return_url="https://shop.example/r")
    if release == "void":
        payment = service.void(payment.id)
        expected = (PaymentState.VOIDED, eur("0.00"), eur("0.00"))
    else:
        payment = service.capture(payment.id, eur("60.00"))
        expected = (PaymentState.CAPTURED, eur("60.00"), eur("0.00"))
    deliver_all(seen)
    [booking] = api.ok("GET", "/v1/refunds", {"payment_intent": payment.reference})["data"]
    assert (booking["status"], booking["reason"], booking["metadata"]) == ("succeeded", None, {})
    api.ok("POST", f"/v1/refunds/{booking['id']}", {"metadata": {"export": "2024-06"}})
    assert deliver_all(seen) == ["applied"]
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.captured, payment.refunded) == expected
    assert [t.origin for t in service.list_transactions(payment.id)] == ["service", "service"]
    assert service.reconcile(payment_id=payment.id).clean
    if release == "partial capture":
        api.ok("POST", "/v1/refunds", {"payment_intent": payment.reference, "amount": 1000})  # the dashboard's
        deliver_all(seen)
        payment = service.get_payment(payment.id)
        assert (payment.state, payment.refunded) == (PaymentState.PARTIALLY_REFUNDED, eur("10.00"))
        assert service.reconcile(payment_id=payment.id).clean


def test_a_refund_event_stripe_cannot_be_read_for_is_refused_for_a_later_delivery(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver) -> None:
    seen: set[str] = set()
    payment = service.sale("stripe", eur("30.00"), source="pm_card_visa")
    deliver_all(seen)
    api.ok("POST", "/v1/refunds", {"payment_intent": payment.reference, "amount": 1000})  # the dashboard's
    [event_id] = [e for e in app.store.events if e not in seen and app.store.events[e]["type"] == "refund.created"]
    body, headers = app.signed_event(event_id)
    app.inject(Fault(kind="status", status=503, path=r"^/v1/payment_intents/", times=10))  # retries too
    with pytest.raises(PaywireError) as refused:
        service.receive_webhook("stripe", headers, body)
    assert (refused.value.code, refused.value.retryable) == ("release_unconfirmed", True)
    from paywire.web import handle_webhook

    assert handle_webhook(service, "stripe", headers, body)[0] == 503  # not 400: a later delivery may pass
    assert service.ledger.list_events() == [e for e in service.ledger.list_events() if e.event_id != event_id]
    assert service.get_payment(payment.id).refunded == eur("0.00")
    app.clear_faults()
    assert service.receive_webhook("stripe", headers, body).status == "applied"  # Stripe delivers it again
    assert service.get_payment(payment.id).refunded == eur("10.00")


@pytest.mark.parametrize("canceled_by", ["shop", "stripe"])
def test_completing_a_payment_whose_intent_was_canceled_ends_it(service: PaymentService, app: Any, api: Any,
                                                                 canceled_by: str) -> None:
    """The buyer never finished 3-D Secure and the intent was canceled (by a clean-up job, or by
    Stripe after the buyer passed the challenge and nobody captured in time): no buyer can finish it
    any more, and nothing is held, so the completion ends the payment failed instead of leaving it
    waiting for the buyer."""
    payment = service.authorize("stripe", eur("10.00"), source="pm_card_threeDSecure2Required",
                                return_url="https://shop.example/return")
    if canceled_by == "shop":
        api.ok("POST", f"/v1/payment_intents/{payment.reference}/cancel", {"cancellation_reason": "abandoned"})
    else:
        pass_challenge(_redirect(service, payment.reference))
        app.expire(payment.reference)
    with pytest.raises(Declined) as refused:
        service.complete(payment.id)
    assert not refused.value.retryable
    assert refused.value.decline_code == ("abandoned" if canceled_by == "shop" else "automatic")
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.authorized) == (PaymentState.FAILED, eur("0.00"))
    calls = len(app.calls)
    with pytest.raises(PaywireError):
        service.complete(payment.id)
    # Refused before sending: the payment is over. It is read once (a declined intent the buyer
    # may pay with another card since is read so), and still holds nothing to complete.
    assert app.calls[calls:] == [("GET", f"/v1/payment_intents/{payment.reference}")]
    # What Stripe holds: nothing ever authorized, or an authorization released (voided).
    assert service.get_payment(payment.id).state == (PaymentState.FAILED if canceled_by == "shop"
                                                     else PaymentState.VOIDED)


@pytest.mark.parametrize("refusal", ["rate limit", "not finished"])
def test_a_completion_refused_for_now_leaves_the_payment_waiting(service: PaymentService, app: Any,
                                                                 refusal: str) -> None:
    payment = service.authorize("stripe", eur("10.00"), source="pm_card_threeDSecure2Required",
                                return_url="https://shop.example/return")
    if refusal == "rate limit":
        app.inject(Fault(kind="status", status=429, path=r"^/v1/payment_intents/"))
        with pytest.raises(RateLimited):
            service.complete(payment.id)
    else:
        assert service.complete(payment.id).state == PaymentState.ACTION_REQUIRED  # the buyer is not back yet
    waiting = service.get_payment(payment.id)
    assert waiting.state == PaymentState.ACTION_REQUIRED and waiting.action is not None
    assert payment.action is not None and waiting.action.redirect_url == payment.action.redirect_url
    app.clear_faults()
    pass_challenge(_redirect(service, payment.reference))
    assert service.complete(payment.id).state == PaymentState.AUTHORIZED


@pytest.mark.parametrize("ending", ["canceled", "authentication failed"])
def test_reconcile_ends_a_wait_stripe_ended_without_a_word_to_the_shop(service: PaymentService, app: Any, api: Any,
                                                                       ending: str) -> None:
    """No event and no buyer came back: reconciling the payment reads Stripe, which holds the intent
    canceled or failed with nothing authorized. Nobody can finish it, so it is no longer waiting."""
    payment = service.authorize("stripe", eur("10.00"), source="pm_card_threeDSecure2Required",
                                return_url="https://shop.example/return")
    if ending == "canceled":
        api.ok("POST", f"/v1/payment_intents/{payment.reference}/cancel", {"cancellation_reason": "abandoned"})
    else:
        app.complete_challenge(payment.reference, succeed=False)
    assert service.reconcile(payment_id=payment.id).clean
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.authorized) == (PaymentState.FAILED, eur("0.00"))
    assert service.reconcile(payment_id=payment.id).clean


@pytest.mark.parametrize("ending", ["complete", "reconcile", "webhook"])
def test_a_wait_that_ended_without_money_drops_the_redirect_and_its_client_secret(
        service: PaymentService, app: Any, api: Any, ending: str, deliver_all: Deliver) -> None:
    """The ledger keeps Stripe's redirect (and the client secret in it) only while a buyer may be
    sent there: a payment that ended failed or voided keeps none."""
    seen: set[str] = set()
    payment = service.authorize("stripe", eur("10.00"), source="pm_card_threeDSecure2Required",
                                return_url="https://shop.example/return")
    assert payment.action is not None and "_secret_" in payment.action.redirect_url
    deliver_all(seen)
    api.ok("POST", f"/v1/payment_intents/{payment.reference}/cancel", {"cancellation_reason": "abandoned"})
    if ending == "complete":
        with pytest.raises(Declined):
            service.complete(payment.id)
    elif ending == "reconcile":
        service.reconcile(payment_id=payment.id)
    else:
        assert deliver_all(seen) == ["applied"]  # payment_intent.canceled
    payment = service.get_payment(payment.id)
    assert payment.state in (PaymentState.FAILED, PaymentState.VOIDED)
    assert payment.action is None


def test_a_capture_after_the_authorization_lapsed_is_failed_and_the_payment_ends_voided(
        service: PaymentService, app: Any, deliver_all: Deliver) -> None:
    """Stripe cancels an intent whose authorization was not captured in time (`automatic`): its
    refusal of the capture is definite (nothing captured), and Stripe's events or a reconcile void
    the payment without claiming a capture or a refund (the expiry's Refund booking moves no money)."""
    seen: set[str] = set()
    payment = service.authorize("stripe", eur("50.00"), source="pm_card_visa", return_url="https://shop.example/r")
    deliver_all(seen)
    app.expire(payment.reference)
    with pytest.raises(PaywireError) as refused:
        service.capture(payment.id, eur("20.00"))
    assert refused.value.code == "payment_intent_unexpected_state"
    assert [t.status for t in service.list_transactions(payment.id) if t.kind == "capture"] == [TransactionStatus.FAILED]
    assert set(deliver_all(seen)) == {"applied"}
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.captured, payment.refunded) == (PaymentState.VOIDED, eur("0.00"), eur("0.00"))
    assert service.reconcile(payment_id=payment.id).clean
    assert service.get_payment(payment.id).state == PaymentState.VOIDED


@pytest.mark.parametrize("first", ["its own endpoint", "the other endpoint"])
def test_an_event_reaching_both_endpoints_of_one_account_is_applied_once(
        gateway_at: Any, server: Any, app: Any, api: Any, receiver: Any, api_key: str, webhook_secret: str,
        recorder: Any, tmp_path: Path, first: str) -> None:
    """One Stripe account, two methods, each with its own webhook endpoint: Stripe gives every
    endpoint a signing secret of its own and sends each one every event. Whichever endpoint an
    event reaches first, it is applied to the payment once; the other delivery is its duplicate."""
    from paywire_stripe.signature import signature_header

    plugins = Plugins()
    plugins.register(paywire_stripe, name="stripe")
    cards, sepa = ({"secret_key": api_key, "webhook_secret": secret} for secret in (webhook_secret, "whsec_sepa_98765"))
    methods = [MethodConfig(code="stripe", base_url=server.url, environment="sandbox", credentials=cards),
               MethodConfig(code="stripe_sepa", provider="stripe", base_url=server.url, environment="sandbox",
                            credentials=sepa)]
    ledger = SQLiteLedger(tmp_path / "two-endpoints.db")
    with Gateway(methods, plugins=plugins, retry=Retry.never()) as gateway:
        service = PaymentService(gateway, ledger)
        payment = service.authorize("stripe", eur("40.00"), source="pm_card_visa", return_url="https://shop.example/r")
        app.webhook_url = receiver.url
        api.post(f"/v1/payment_intents/{payment.reference}/capture", {"amount_to_capture": 1500})  # outside paywire
        for headers, body in receiver.wait_for(2):
            unsigned = {name: value for name, value in headers.items() if name.lower() != "stripe-signature"}
            timestamp = int(json.loads(body)["created"])  # signed when it was made, as the emulator signs
            to_sepa = {**unsigned, "Stripe-Signature": signature_header("whsec_sepa_98765", timestamp, body)}
            deliveries = [("stripe", headers), ("stripe_sepa", to_sepa)]
            if first == "the other endpoint":
                deliveries.reverse()
            statuses = [service.receive_webhook(method, signed, body).status for method, signed in deliveries]
            assert statuses[1] == "duplicate"
        assert service.get_payment(payment.id).captured == eur("15.00")
        assert {e.status for e in ledger.list_events()} == {"applied"}
    ledger.close()


@pytest.mark.parametrize("source", ["", "  "])
def test_a_vault_or_unvault_naming_no_method_is_refused_before_anything_is_recorded_or_sent(
        service: PaymentService, stripe: Any, source: str) -> None:
    """Stripe's vault created a customer, then POSTed to /v1/payment_methods//attach, and the
    refusal was recorded; an unvault POSTed to /v1/payment_methods//detach."""
    for operation in (service.vault, service.unvault):
        with pytest.raises(InvalidRequest) as refused:
            operation("stripe", source, customer=Customer(email="ada@shop.example"), idempotency_key="vault-1")
        assert refused.value.param == "source"
    assert stripe.sent() == [] and service.list_transactions() == []


def test_an_unvault_called_again_without_a_key_after_a_lost_answer_is_its_retry(service: PaymentService,
                                                                                 app: Any) -> None:
    """Called again without a key, the unvault was a new request: Stripe, having detached the
    method, refused it (not attached) and the ledger recorded a failed unvault of a method gone."""
    stored = service.vault("stripe", "pm_card_visa", customer=Customer(email="ada@shop.example"), idempotency_key="v-1")
    app.inject(Fault(kind="drop_after", path=r"/detach$", times=10))  # past the retry policy
    with pytest.raises(OutcomeUnknown):
        service.unvault("stripe", stored.token)
    assert app.get(stored.token)["customer"] is None  # Stripe detached it
    app.clear_faults()
    removed = service.unvault("stripe", stored.token)
    assert removed.status == TransactionStatus.SUCCEEDED
    assert [(t.kind, t.status) for t in service.list_transactions()] == [("vault", "succeeded"),
                                                                          ("unvault", "succeeded")]
    with pytest.raises(InvalidRequest):  # once it is settled, another unvault is a new request
        service.unvault("stripe", stored.token)


def test_the_charge_succeeded_event_of_a_partial_authorization_claims_no_more_than_stripe_holds(
        service: PaymentService, app: Any, partial_authorization: Callable[[int], None]) -> None:
    """Stripe authorized 60.00 of 100.00. Its `charge.succeeded` for the uncaptured charge names
    the amount asked as the charge's `amount`, and what the card holds as its `amount_authorized`:
    the event says 60.00 is authorized, so the ledger keeps claiming that, not the 100.00 asked."""
    from paywire_stripe.emulator.events import signed_headers

    partial_authorization(6000)
    payment = service.authorize("stripe", eur("100.00"), source="pm_card_visa", order_id="A-held")
    assert payment.authorized == eur("60.00")
    (event,) = app.events_of_type("charge.succeeded")
    charge = event["data"]["object"]
    assert charge["captured"] is False and charge["amount"] == 10000
    charge["payment_method_details"]["card"]["amount_authorized"] = 6000  # as the charge holds it
    body = json.dumps(event).encode()
    receipt = service.receive_webhook("stripe", signed_headers(app.webhook_secret, body), body)
    assert (receipt.status, receipt.payment_id) == ("applied", payment.id)
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.amount, payment.authorized) == (PaymentState.AUTHORIZED, eur("100.00"),
                                                                   eur("60.00"))
    with pytest.raises(StateError):
        service.capture(payment.id, eur("60.01"))


def test_a_signed_refund_event_of_a_negative_amount_records_no_refund(
        service: PaymentService, webhook_secret: str) -> None:
    """Stripe's amounts are never negative. A signed refund event of -5.00 (a leaked secret, or a
    shape Stripe never sends) was recorded as a succeeded refund of -5.00 made outside paywire: the
    payment's history held a refund Stripe never made, its own refunds summing to less than zero."""
    from paywire_stripe.signature import signature_header

    now = int(time.time())
    payment = service.sale("stripe", eur("30.00"), source="pm_card_visa", return_url="https://shop.example/r")
    refund = {"id": "re_forged", "object": "refund", "amount": -500, "currency": "eur", "status": "succeeded",
              "reason": "requested_by_customer", "payment_intent": payment.reference, "metadata": {}}
    body = json.dumps({"id": "evt_forged", "object": "event", "type": "refund.created", "created": now,
                       "data": {"object": refund}}).encode()
    service.receive_webhook("stripe", {"Stripe-Signature": signature_header(webhook_secret, now, body)}, body)
    assert [t.kind for t in service.list_transactions(payment_id=payment.id)] == ["sale"]
    assert service.get_payment(payment.id).refunded == eur("0.00")
