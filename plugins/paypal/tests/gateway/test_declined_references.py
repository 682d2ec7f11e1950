"""An order paid from the vault is paid when it is created: one whose capture PayPal declines, or
whose authorization it denies, is answered 201 with the order (COMPLETED), and that refusal is a
decline. The order and its capture or authorization exist all the same, and PayPal's events about
them name the order: the ledger records its id on the failed transaction and as the payment's
reference, so those events find the payment and reconciliation reads it. Through the payment
service and a real ledger, emulator on loopback."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest

from paywire import Declined, Money, OutcomeUnknown, Transfer, hookimpl
from paywire.ledger import PaymentState, TransactionStatus
from paywire.testing.emulator import Fault

RETURN_URL = "https://shop.example/paypal/return"


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


@pytest.mark.parametrize(("flow", "payer", "event_type"), [
    ("sale", "CCREJECT-REFUSED", "PAYMENT.CAPTURE.DENIED"),
    ("sale", "deny", "PAYMENT.CAPTURE.DENIED"),
    ("authorize", "deny", None),  # PayPal sends no event for a denied authorization
])
def test_a_vaulted_charge_declined_on_creation_records_the_order_paypal_made(paypal, service, flow, payer,
                                                                             event_type):
    token = paypal.app.vault_card(name=payer) if payer.startswith("CCREJECT") else paypal.app.vault_paypal(payer)
    start = service.sale if flow == "sale" else service.authorize
    with pytest.raises(Declined) as declined:
        start("paypal", eur("20.00"), source=token, idempotency_key=f"declined-{flow}-{payer}")
    (order,) = paypal.app.orders
    assert declined.value.reference == order
    payment_id = declined.value.payment_id or ""
    (txn,) = service.list_transactions(payment_id)
    assert (txn.status, txn.provider_reference) == (TransactionStatus.FAILED, order)
    payment = service.get_payment(payment_id)
    assert (payment.state, payment.reference) == (PaymentState.FAILED, order)

    report = service.reconcile(payment_id=payment_id)
    assert not report.errors and not report.mismatches, report
    fetched = paypal.run("fetch", reference=order)
    assert fetched.references["order"] == order and fetched.captured == Money.zero("EUR")
    with service.ledger.unit() as u:
        assert u.payment_by_reference("paypal", [order]) == payment_id
    events = [e for e in paypal.app.events if e["event_type"] == event_type]
    assert len(events) == (1 if event_type else 0)
    for event in events:
        body, headers = paypal.app.signed_event(event)
        receipt = service.receive_webhook("paypal", headers, body)
        assert (receipt.status, receipt.payment_id) == ("applied", payment_id), receipt
    payment = service.get_payment(payment_id)
    assert (payment.state, payment.authorized, payment.captured) == (PaymentState.FAILED, Money.zero("EUR"),
                                                                     Money.zero("EUR"))


@pytest.mark.parametrize("sale", [False, True])
def test_a_retry_of_a_lost_create_that_finds_the_order_voided_records_that_order(paypal, service, sale):
    """The order the lost create made was voided since (the approval was reversed); the retry under
    its key gets it back VOIDED, a decline: the order is still the payment's, and PayPal's event
    about its reversal names it."""
    start = service.sale if sale else service.authorize
    paypal.app.inject(Fault(kind="drop_after", method="POST", path="/v2/checkout/orders$"))
    with pytest.raises(OutcomeUnknown) as lost:
        start("paypal", eur("25.00"), source="paypal", return_url=RETURN_URL, idempotency_key="voided-create")
    (order,) = paypal.app.orders
    paypal.app.approve(order)
    paypal.app.reverse_approval(order)
    with pytest.raises(Declined) as declined:
        start("paypal", eur("25.00"), source="paypal", return_url=RETURN_URL, idempotency_key="voided-create")
    assert declined.value.reference == order
    payment_id = lost.value.payment_id or ""
    (txn,) = service.list_transactions(payment_id)
    assert (txn.status, txn.provider_reference) == (TransactionStatus.FAILED, order)
    assert service.get_payment(payment_id).reference == order
    report = service.reconcile(payment_id=payment_id)
    assert not report.errors and not report.mismatches, report
    (event,) = [e for e in paypal.app.events if e["event_type"] == "CHECKOUT.PAYMENT-APPROVAL.REVERSED"]
    body, headers = paypal.app.signed_event(event)
    assert service.receive_webhook("paypal", headers, body).payment_id == payment_id
    assert service.get_payment(payment_id).state == PaymentState.FAILED


class DeclineCaptures:
    """PayPal's negative testing: its captures of authorizations answer 422 INSTRUMENT_DECLINED."""

    @hookimpl
    def send_transfer(self, transfer: Transfer, client: Any) -> Any:
        if "/v2/payments/authorizations/" not in transfer.url or not transfer.url.endswith("/capture"):
            return None
        mock = json.dumps({"mock_application_codes": "INSTRUMENT_DECLINED"})
        return client.send(attrs.evolve(transfer, headers={**transfer.headers, "PayPal-Mock-Response": mock}))


def test_a_refused_follow_up_takes_nothing_of_the_payments(paypal, service):
    """A completion whose capture PayPal declines, and a capture of a vaulted authorization it
    declines, are refusals of operations on the order the payment already names: the payment keeps
    its reference, and neither failed transaction takes the payment's id."""
    started = service.sale("paypal", eur("15.00"), source="paypal", return_url=RETURN_URL, idempotency_key="deny-sale")
    paypal.app.approve(started.reference, "deny")
    with pytest.raises(Declined):
        service.complete(started.id, idempotency_key="deny-complete")
    authorized = service.authorize("paypal", eur("20.00"), source=paypal.app.vault_card(), idempotency_key="auth-ok")
    paypal.gateway.plugins.register(DeclineCaptures(), name="decline-captures")
    with pytest.raises(Declined):
        service.capture(authorized.id, eur("20.00"), idempotency_key="capture-declined")
    for payment, kind in ((started, "complete"), (authorized, "capture")):
        failed = next(t for t in service.list_transactions(payment.id) if t.kind == kind)
        assert failed.status == TransactionStatus.FAILED
        assert failed.provider_reference not in (payment.reference, *payment.references.values())
        assert service.get_payment(payment.id).reference == payment.reference
