"""The payment service drives PayPal through the command contract alone: checkout, captures,
refunds, vaulted charges, reconciliation and webhooks, recorded in a ledger."""

from __future__ import annotations

import pytest

from paywire import InvalidRequest, Money, OutcomeUnknown, WebhookVerificationError
from paywire.testing.emulator import Fault
from paywire_paypal.emulator.sandbox import approve_as_buyer

RETURN_URL = "https://shop.example/paypal/return"


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def test_a_checkout_is_authorized_after_approval_then_captured_and_refunded(paypal, service):
    payment = service.authorize("paypal", eur("50.00"), source="paypal", order_id="A-2001", return_url=RETURN_URL,
                                idempotency_key="A-2001-auth")
    assert payment.state == "action_required" and payment.action.redirect_url
    approve_as_buyer(payment.action.redirect_url)
    payment = service.complete(payment.id)
    assert (payment.state, payment.authorized) == ("authorized", eur("50.00"))
    payment = service.capture(payment.id, eur("30.00"))
    payment = service.capture(payment.id, eur("20.00"), final=True)
    assert (payment.state, payment.captured) == ("captured", eur("50.00"))
    payment = service.refund(payment.id, eur("5.00"))
    assert (payment.state, payment.refunded) == ("partially_refunded", eur("5.00"))
    order = paypal.app.orders[payment.reference]
    assert order.purchase_units[0].request["custom_id"] == "A-2001"


def test_a_lost_answer_is_settled_by_resending_with_its_key_not_by_guessing(paypal, service):
    token = paypal.app.vault_paypal()
    paypal.app.inject(Fault(kind="drop_after", method="POST", path="/v2/checkout/orders$"))
    with pytest.raises(OutcomeUnknown) as raised:
        service.charge_vaulted("paypal", token, eur("12.00"), idempotency_key="vaulted-1")
    report = service.reconcile(payment_id=raised.value.payment_id)
    assert report.errors  # PayPal cannot find an order by its request id: reported, nothing resent
    assert len(paypal.app.orders) == 1
    settled = service.retry(raised.value.transaction_id)
    assert (settled.state, settled.captured) == ("captured", eur("12.00"))
    assert len(paypal.app.captures) == 1
    assert service.reconcile(payment_id=settled.id).clean


def test_webhooks_verify_and_apply_and_tampered_ones_change_nothing(paypal, service):
    payment = service.authorize("paypal", eur("40.00"), source=paypal.app.vault_card(), idempotency_key="wh-1")
    paypal.run("capture", reference=payment.references["authorization"], idempotency_key="outside-paywire")
    event = next(e for e in reversed(paypal.app.events) if e["event_type"] == "PAYMENT.CAPTURE.COMPLETED")
    body, headers = paypal.app.signed_event(event)
    with pytest.raises(WebhookVerificationError):
        service.receive_webhook("paypal", headers, body.replace(b"40.00", b"99.00"))
    assert service.get_payment(payment.id).captured == Money.zero("EUR")
    receipt = service.receive_webhook("paypal", headers, body)
    assert (receipt.status, receipt.payment_id) == ("applied", payment.id)
    assert service.get_payment(payment.id).captured == eur("40.00")
    assert service.receive_webhook("paypal", headers, body).status == "duplicate"


def test_the_capture_event_of_a_sale_does_not_count_its_money_twice(paypal, service):
    payment = service.sale("paypal", eur("40.00"), source=paypal.app.vault_card(), idempotency_key="wh-sale")
    assert payment.captured == eur("40.00")
    event = next(e for e in reversed(paypal.app.events) if e["event_type"] == "PAYMENT.CAPTURE.COMPLETED")
    body, headers = paypal.app.signed_event(event)
    receipt = service.receive_webhook("paypal", headers, body)
    assert (receipt.status, receipt.payment_id) == ("applied", payment.id)
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.authorized, payment.captured) == ("captured", eur("40.00"), eur("40.00"))
    assert [t.origin for t in service.list_transactions(payment.id)] == ["service"]


def test_the_capture_event_of_an_approved_sale_does_not_count_its_money_twice(paypal, service):
    payment = service.sale("paypal", eur("25.00"), source="paypal", return_url=RETURN_URL, idempotency_key="wh-appr")
    approve_as_buyer(payment.action.redirect_url)
    payment = service.complete(payment.id)
    assert (payment.state, payment.captured) == ("captured", eur("25.00"))
    for event_type in ("CHECKOUT.ORDER.APPROVED", "PAYMENT.CAPTURE.COMPLETED", "CHECKOUT.ORDER.COMPLETED"):
        for event in [e for e in paypal.app.events if e["event_type"] == event_type]:
            body, headers = paypal.app.signed_event(event)
            assert service.receive_webhook("paypal", headers, body).payment_id == payment.id
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.authorized, payment.captured) == ("captured", eur("25.00"), eur("25.00"))
    assert [t.origin for t in service.list_transactions(payment.id)] == ["service", "service"]


def test_an_unvault_whose_answer_was_lost_is_resent_and_the_token_gone_is_its_success(paypal, service):
    """DELETE carries no PayPal-Request-Id: the resend is a new request, and its 404 is the
    deletion the lost attempt made, not a failure of it."""
    token = paypal.app.vault_paypal()
    paypal.app.inject(Fault("drop_after", method="DELETE", path="/v3/vault/payment-tokens/"))
    with pytest.raises(OutcomeUnknown):
        service.unvault("paypal", token, idempotency_key="unvault-1")
    assert token not in paypal.app.payment_tokens  # PayPal deleted it
    removed = service.unvault("paypal", token, idempotency_key="unvault-1")  # the caller retries
    assert [(t.kind, t.status) for t in service.list_transactions()] == [("unvault", "succeeded")]
    assert removed.status == "succeeded"
    with pytest.raises(InvalidRequest, match="INVALID_RESOURCE_ID"):  # a token never vaulted is still refused
        service.unvault("paypal", "8kk8451t", idempotency_key="unvault-2")
    assert [t.status for t in service.list_transactions() if t.idempotency_key == "unvault-2"] == ["failed"]



def test_an_unvault_called_again_without_a_key_after_a_lost_answer_is_its_retry(paypal, service):
    """Without a key the second call was a new DELETE: its 404 was recorded as a failed unvault
    of a token PayPal had deleted."""
    token = paypal.app.vault_paypal()
    paypal.app.inject(Fault("drop_after", method="DELETE", path="/v3/vault/payment-tokens/", times=10))
    with pytest.raises(OutcomeUnknown):
        service.unvault("paypal", token)
    assert token not in paypal.app.payment_tokens
    paypal.app.clear_faults()
    assert service.unvault("paypal", token).status == "succeeded"
    assert [(t.kind, t.status) for t in service.list_transactions()] == [("unvault", "succeeded")]


@pytest.mark.parametrize("source", ["", " "])
def test_an_unvault_naming_no_token_is_refused_before_anything_is_recorded_or_sent(paypal, service, source):
    """It was sent as DELETE /v3/vault/payment-tokens/ and PayPal's refusal recorded."""
    with pytest.raises(InvalidRequest) as refused:
        service.unvault("paypal", source)
    assert refused.value.param == "source" and paypal.api_sent == [] and service.list_transactions() == []

def test_an_approved_authorization_settled_by_its_event_is_captured_on_its_authorization(paypal, service):
    """The completion's answer was lost and PayPal's event settled it: the event names the
    authorization a capture acts on (the waiting payment knew only the order)."""
    payment = service.authorize("paypal", eur("42.00"), source="paypal", return_url=RETURN_URL, idempotency_key="ap-1")
    approve_as_buyer(payment.action.redirect_url)
    paypal.app.inject(Fault("drop_after", path=r"/v2/checkout/orders/[^/]+/authorize$", method="POST"))
    with pytest.raises(OutcomeUnknown):
        service.complete(payment.id)
    for event in [e for e in paypal.app.events if e["event_type"] == "PAYMENT.AUTHORIZATION.CREATED"]:
        body, headers = paypal.app.signed_event(event)
        assert service.receive_webhook("paypal", headers, body).status == "applied"
    payment = service.get_payment(payment.id)
    (authorization,) = paypal.app.authorizations
    assert (payment.state, payment.references["authorization"]) == ("authorized", authorization)
    payment = service.capture(payment.id, eur("10.00"))
    assert payment.captured == eur("10.00") and len(paypal.app.captures) == 1


@pytest.mark.parametrize("sale", [True, False])
def test_an_approval_paypal_reversed_fails_the_payment_waiting_for_it(paypal, service, sale):
    """Approved but not captured in time: PayPal cancels the order and sends
    CHECKOUT.PAYMENT-APPROVAL.REVERSED, whose resource names the order as `order_id` (no `id`)."""
    start = service.sale if sale else service.authorize
    payment = start("paypal", eur("25.00"), source="paypal", order_id="AR-1", return_url=RETURN_URL,
                    idempotency_key="ar-1")
    approve_as_buyer(payment.action.redirect_url)
    paypal.app.reverse_approval(payment.reference)
    event = paypal.app.events[-1]
    assert event["event_type"] == "CHECKOUT.PAYMENT-APPROVAL.REVERSED" and "id" not in event["resource"]
    assert event["resource"]["order_id"] == payment.reference
    body, headers = paypal.app.signed_event(event)
    receipt = service.receive_webhook("paypal", headers, body)
    assert (receipt.payment_id, receipt.status) == (payment.id, "applied")
    assert service.get_payment(payment.id).state == "failed"
    assert paypal.calls(f"/v2/checkout/orders/{payment.reference}", "GET") == 1  # confirmed by reading it


@pytest.mark.parametrize("value, currency", [("1000000000000000.00", "EUR"), ("1000000000000000", "JPY")])
def test_an_amount_above_paypals_maximum_is_refused_before_anything_is_written_or_sent(paypal, service, value,
                                                                                     currency):
    token = paypal.app.vault_card()
    calls = len(paypal.app.calls)
    with pytest.raises(InvalidRequest) as raised:
        service.authorize("paypal", Money.of(value, currency), source=token, idempotency_key="too-large-1")
    assert raised.value.code == "amount_too_large"
    assert service.list_payments() == [] and service.list_transactions() == []
    assert len(paypal.app.calls) == calls  # not even the vault token was read
