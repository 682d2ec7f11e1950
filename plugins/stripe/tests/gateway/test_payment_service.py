"""The payment service and its ledger driving the Stripe gateway against the emulator: the
plugin's results, errors, fetch and webhooks are what the service needs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paywire import Customer, Declined, Gateway, Money, OutcomeUnknown, PaymentService, SQLiteLedger
from paywire.ledger import PaymentState, TransactionStatus
from paywire.testing.emulator import Fault
from paywire_stripe.sandbox import pass_challenge


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


@pytest.fixture
def service(gateway: Gateway, tmp_path: Path) -> Iterator[PaymentService]:
    ledger = SQLiteLedger(tmp_path / "ledger.db")
    yield PaymentService(gateway, ledger, wait_timeout=5.0)
    ledger.close()


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


def test_a_decline_fails_the_payment(service: PaymentService) -> None:
    with pytest.raises(Declined) as declined:
        service.authorize("stripe", eur("10.00"), source="pm_card_chargeDeclinedInsufficientFunds")
    assert declined.value.decline_code == "insufficient_funds"
    assert service.get_payment(declined.value.payment_id or "").state == PaymentState.FAILED


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
