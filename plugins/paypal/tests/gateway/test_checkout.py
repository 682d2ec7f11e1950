"""authorize, sale and complete: orders the buyer approves, and orders paid from the vault."""

from __future__ import annotations

import json
from typing import Any

import attrs
import pytest

from paywire import (
    Address,
    BuyerActionRequired,
    Declined,
    IdempotencyConflict,
    InvalidRequest,
    LineItem,
    Money,
    Order,
    OutcomeUnknown,
    ProviderState,
    Transfer,
    hookimpl,
)
from paywire.testing.emulator import Fault
from paywire_paypal.emulator.sandbox import approve_as_buyer

EUR10 = Money.of("10.00", "EUR")
RETURN_URL = "https://shop.example/paypal/return"


def body(transfer):
    return json.loads(transfer.body)


def order_requests(paypal):
    return [t for t in paypal.sent if t.method == "POST" and t.url.endswith("/v2/checkout/orders")]


# -- the buyer approves on PayPal ---------------------------------------------------------------
def test_authorize_creates_an_order_and_sends_the_buyer_to_paypal(paypal):
    started = paypal.run("authorize", amount=EUR10, source="paypal", return_url=RETURN_URL,
                         order=Order(id="A-1001", description="Two mugs"), idempotency_key="auth-A-1001")
    assert started.action_required and started.state == ProviderState.ACTION_REQUIRED
    assert started.reference == started.references["payment"] == started.references["order"]
    assert started.action.redirect_url == f"{paypal.url}/checkoutnow?token={started.reference}"
    assert started.action.return_url == RETURN_URL
    sent = order_requests(paypal)[0]
    assert sent.headers["PayPal-Request-Id"] == "auth-A-1001"
    assert sent.headers["Prefer"] == "return=representation"
    assert body(sent) == {
        "intent": "AUTHORIZE",
        "purchase_units": [{"amount": {"currency_code": "EUR", "value": "10.00"}, "custom_id": "A-1001",
                            "description": "Two mugs"}],
        "payment_source": {"paypal": {"experience_context": {
            "return_url": RETURN_URL, "cancel_url": RETURN_URL, "user_action": "PAY_NOW"}}},
    }


def test_complete_after_approval_authorizes_the_order(paypal):
    authorization = paypal.checkout(EUR10)
    order_id = authorization.references["payment"]
    assert authorization.succeeded and authorization.state == ProviderState.AUTHORIZED
    assert authorization.reference == authorization.references["authorization"] != order_id
    assert (authorization.amount, authorization.authorized, authorization.captured) == (
        EUR10, EUR10, Money.zero("EUR"))
    assert paypal.app.authorizations[authorization.reference].status == "CREATED"
    assert [t.url for t in paypal.sent if t.method == "POST"][-1].endswith(f"/orders/{order_id}/authorize")


def test_a_sale_captures_the_order_on_completion(paypal):
    capture = paypal.checkout(Money.of("1234", "JPY"), sale=True)
    assert capture.state == ProviderState.CAPTURED and capture.reference == capture.references["capture"]
    assert (capture.amount, capture.captured) == (Money.of("1234", "JPY"), Money.of("1234", "JPY"))
    assert paypal.app.captures[capture.reference].amount_minor == 1234


def test_without_a_return_url_the_order_is_for_paypals_buttons(paypal):
    started = paypal.run("sale", amount=EUR10, source="paypal", idempotency_key=paypal.key())
    assert "payment_source" not in body(order_requests(paypal)[0])
    assert started.action.redirect_url.endswith(f"/checkoutnow?token={started.reference}")


def test_completing_before_the_buyer_approved_asks_for_the_buyer(paypal):
    started = paypal.run("authorize", amount=EUR10, source="paypal", return_url=RETURN_URL,
                         idempotency_key=paypal.key())
    with pytest.raises(BuyerActionRequired) as raised:
        paypal.run("complete", reference=started.reference, amount=EUR10, idempotency_key=paypal.key())
    assert raised.value.code == "ORDER_NOT_APPROVED" and not raised.value.retryable
    assert raised.value.debug_id


def test_completing_twice_answers_what_paypal_holds_without_a_second_authorization(paypal):
    first = paypal.checkout(EUR10)
    again = paypal.run("complete", reference=first.references["payment"], amount=EUR10,
                       idempotency_key=paypal.key())
    assert (again.reference, again.state, again.amount) == (first.reference, first.state, first.amount)
    assert len(paypal.app.authorizations) == 1


def test_complete_refuses_another_amount_before_sending(paypal):
    started = paypal.run("authorize", amount=EUR10, source="paypal", idempotency_key=paypal.key())
    paypal.app.approve(started.reference)
    with pytest.raises(InvalidRequest) as raised:
        paypal.run("complete", reference=started.reference, amount=Money.of("11.00", "EUR"),
                   idempotency_key=paypal.key())
    assert raised.value.param == "amount"
    assert paypal.calls("/authorize") == 0


@pytest.mark.parametrize("sale", [False, True])
def test_a_funding_failure_at_completion_sends_the_buyer_back_to_paypal_to_pick_another_source(paypal, sale):
    """PayPal's "Handle funding failures": completing answers 422 INSTRUMENT_DECLINED with a
    `redirect` link to the approval page. The order is still approved and nothing was paid in it:
    the buyer picks another funding source there, and the same order is completed again."""
    started = paypal.run("sale" if sale else "authorize", amount=EUR10, source="paypal", return_url=RETURN_URL,
                         idempotency_key=paypal.key())
    paypal.app.approve(started.reference, "decline")
    refused = paypal.run("complete", reference=started.reference, amount=EUR10, idempotency_key=paypal.key())
    assert refused.action_required and refused.state == ProviderState.ACTION_REQUIRED
    assert refused.reference == refused.references["payment"] == refused.references["order"] == started.reference
    assert refused.action.redirect_url == f"{paypal.url}/checkoutnow?token={started.reference}"
    assert not paypal.app.authorizations and not paypal.app.captures
    approve_as_buyer(f"{refused.action.redirect_url}&payer=decline")  # another source that fails
    assert paypal.run("complete", reference=started.reference, amount=EUR10,
                      idempotency_key=paypal.key()).action_required
    approve_as_buyer(refused.action.redirect_url)
    done = paypal.run("complete", reference=started.reference, amount=EUR10, idempotency_key=paypal.key())
    assert done.succeeded and done.state == (ProviderState.CAPTURED if sale else ProviderState.AUTHORIZED)
    assert len(paypal.app.captures if sale else paypal.app.authorizations) == 1


class DeclineOrderCaptures:
    """PayPal's negative testing: the order's capture answers 422 INSTRUMENT_DECLINED, with no
    `redirect` link for the buyer."""

    @hookimpl
    def send_transfer(self, transfer: Transfer, client: Any) -> Any:
        if "/v2/checkout/orders/" not in transfer.url or not transfer.url.endswith("/capture"):
            return None
        mock = json.dumps({"mock_application_codes": "INSTRUMENT_DECLINED"})
        return client.send(attrs.evolve(transfer, headers={**transfer.headers, "PayPal-Mock-Response": mock}))


def test_a_funding_failure_at_completion_without_a_link_for_the_buyer_is_declined(paypal):
    started = paypal.run("sale", amount=EUR10, source="paypal", return_url=RETURN_URL, idempotency_key=paypal.key())
    paypal.app.approve(started.reference)
    paypal.gateway.plugins.register(DeclineOrderCaptures(), name="decline-order-captures")
    with pytest.raises(Declined) as raised:
        paypal.run("complete", reference=started.reference, amount=EUR10, idempotency_key=paypal.key())
    assert raised.value.code == "INSTRUMENT_DECLINED" and not raised.value.retryable


def test_a_vaulted_charge_whose_instrument_fails_is_declined(paypal):
    """PayPal sends no link for the buyer, who is absent: nobody can pick another source."""
    token = paypal.app.vault_paypal(payer="decline")
    with pytest.raises(Declined) as raised:
        paypal.run("sale", amount=EUR10, source=token, vaulted=True, idempotency_key=paypal.key())
    assert raised.value.code == "INSTRUMENT_DECLINED" and not raised.value.retryable


def test_paypal_asking_for_the_buyer_again_is_action_required_with_the_payer_action_link(paypal):
    started = paypal.run("authorize", amount=EUR10, source="paypal", return_url=RETURN_URL,
                         idempotency_key=paypal.key())
    paypal.app.approve(started.reference, "payer_action")
    again = paypal.run("complete", reference=started.reference, amount=EUR10, idempotency_key=paypal.key())
    assert again.action_required and again.reference == started.reference
    assert again.action.redirect_url == f"{paypal.url}/checkoutnow?token={started.reference}"
    paypal.app.approve(started.reference)
    assert paypal.run("complete", reference=started.reference, amount=EUR10, idempotency_key=paypal.key()).succeeded


def test_a_denied_authorization_is_declined(paypal):
    with pytest.raises(Declined) as raised:
        paypal.checkout(EUR10, payer="deny")
    assert raised.value.code == "DENIED"


# -- paid from the vault --------------------------------------------------------------------------
def test_a_vaulted_card_pays_without_the_buyer_and_names_its_kind(paypal):
    token = paypal.app.vault_card()
    result = paypal.run("authorize", amount=EUR10, source=token, vaulted=True, idempotency_key=paypal.key())
    assert result.succeeded and result.state == ProviderState.AUTHORIZED and result.amount == EUR10
    assert [t.url for t in paypal.sent if "/v3/" in t.url] == [f"{paypal.url}/v3/vault/payment-tokens/{token}"]
    assert body(order_requests(paypal)[0])["payment_source"] == {"card": {
        "vault_id": token,
        "stored_credential": {"payment_initiator": "MERCHANT", "payment_type": "UNSCHEDULED", "usage": "SUBSEQUENT"},
    }}


def test_a_vaulted_wallet_is_charged_with_paypal_vault_id(paypal):
    token = paypal.app.vault_paypal()
    result = paypal.run("sale", amount=EUR10, source=token, vaulted=True, idempotency_key=paypal.key())
    assert result.state == ProviderState.CAPTURED
    assert body(order_requests(paypal)[0])["payment_source"] == {"paypal": {"vault_id": token}}


def test_the_vault_kind_given_in_options_spares_the_lookup(paypal):
    token = paypal.app.vault_card()
    paypal.run("authorize", amount=EUR10, source=token, options={"vault_source": "card"},
               idempotency_key=paypal.key())
    assert not [t for t in paypal.sent if "/v3/" in t.url]


def test_a_card_charged_with_the_buyer_present_is_customer_initiated(paypal):
    paypal.run("authorize", amount=EUR10, source=paypal.app.vault_card(), idempotency_key=paypal.key())
    credential = body(order_requests(paypal)[0])["payment_source"]["card"]["stored_credential"]
    assert credential["payment_initiator"] == "CUSTOMER"


def test_a_vaulted_card_that_declines_is_declined_with_the_processor_code(paypal):
    with pytest.raises(Declined) as raised:
        paypal.run("sale", amount=EUR10, source=paypal.app.vault_card(name="CCREJECT-REFUSED"),
                   idempotency_key=paypal.key())
    assert (raised.value.code, raised.value.decline_code) == ("DECLINED", "0500")


def test_a_vaulted_charge_that_needs_the_absent_buyer_is_declined(paypal):
    token = paypal.app.vault_paypal(payer="payer_action")
    with pytest.raises(Declined) as raised:
        paypal.run("authorize", amount=EUR10, source=token, vaulted=True, idempotency_key=paypal.key())
    assert raised.value.code == "PAYER_ACTION_REQUIRED" and not raised.value.retryable


def test_a_vaulted_charge_needs_an_idempotency_key_and_a_token(paypal):
    with pytest.raises(InvalidRequest) as raised:
        paypal.run("authorize", amount=EUR10, source=paypal.app.vault_card())
    assert raised.value.param == "idempotency_key"
    with pytest.raises(InvalidRequest) as raised:
        paypal.run("authorize", amount=EUR10, source="paypal", vaulted=True, idempotency_key=paypal.key())
    assert raised.value.param == "source"
    assert paypal.calls("/v") == 0


def test_an_unknown_vault_token_is_an_invalid_request(paypal):
    with pytest.raises(InvalidRequest) as raised:
        paypal.run("authorize", amount=EUR10, source="nosuchtoken", idempotency_key=paypal.key())
    assert raised.value.code == "INVALID_RESOURCE_ID"
    assert not paypal.app.orders


# -- what the order carries -----------------------------------------------------------------------
def test_items_that_add_up_are_sent_with_their_total(paypal):
    items = (LineItem("Mug", 2, Money.of("3.50", "EUR"), sku="MUG-1"), LineItem("Tea", 1, Money.of("3.00", "EUR")))
    shipping = Address(line1="Hauptstr. 1", city="Berlin", postal_code="10115", country="DE", name="Ada L.")
    paypal.run("authorize", amount=EUR10, source="paypal", return_url=RETURN_URL, idempotency_key=paypal.key(),
               order=Order(id="A-1", items=items, shipping=shipping))
    sent = body(order_requests(paypal)[0])
    unit = sent["purchase_units"][0]
    assert unit["amount"]["breakdown"] == {"item_total": {"currency_code": "EUR", "value": "10.00"}}
    assert unit["items"] == [
        {"name": "Mug", "quantity": "2", "unit_amount": {"currency_code": "EUR", "value": "3.50"}, "sku": "MUG-1"},
        {"name": "Tea", "quantity": "1", "unit_amount": {"currency_code": "EUR", "value": "3.00"}},
    ]
    assert unit["shipping"] == {"type": "SHIPPING", "name": {"full_name": "Ada L."}, "address": {
        "country_code": "DE", "address_line_1": "Hauptstr. 1", "admin_area_2": "Berlin", "postal_code": "10115"}}
    assert sent["payment_source"]["paypal"]["experience_context"]["shipping_preference"] == "SET_PROVIDED_ADDRESS"


def test_items_that_do_not_add_up_are_left_out(paypal):
    items = (LineItem("Mug", 2, Money.of("3.50", "EUR")),)
    result = paypal.run("authorize", amount=EUR10, source="paypal", idempotency_key=paypal.key(),
                        order=Order(id="A-2", items=items))
    assert "items" not in body(order_requests(paypal)[0])["purchase_units"][0]
    assert result.action_required


@pytest.mark.parametrize("quantity", [True, 2.0, "2"])
def test_an_item_whose_quantity_is_no_int_is_refused_before_anything_is_sent(paypal, quantity):
    """PayPal reads the quantity as digits: True went out as "True" (PayPal refuses it after the
    payment was recorded), 2.0 and "2" failed untyped inside the builder."""
    with pytest.raises(InvalidRequest) as raised:
        paypal.run("authorize", amount=EUR10, source="paypal", idempotency_key=paypal.key(),
                   order=Order(id="A-3", items=(LineItem("Mug", quantity, EUR10),)))
    assert raised.value.param == "order.items.quantity" and "must be an int" in raised.value.message
    assert order_requests(paypal) == []


@pytest.mark.parametrize(("amount", "value"), [
    (Money.of("19.99", "USD"), "19.99"), (Money.of("0.01", "GBP"), "0.01"), (Money.of("1000", "JPY"), "1000"),
    (Money.of("4700", "HUF"), "4700"), (Money.of("30", "TWD"), "30"), (Money.of("123456789.10", "EUR"), "123456789.10"),
])
def test_amounts_go_out_in_paypals_decimal_format(paypal, amount, value):
    paypal.run("sale", amount=amount, source="paypal", idempotency_key=paypal.key())
    assert body(order_requests(paypal)[0])["purchase_units"][0]["amount"] == {
        "currency_code": amount.currency, "value": value}
    order = next(iter(paypal.app.orders.values()))
    assert order.purchase_units[0].currency == amount.currency


@pytest.mark.parametrize("amount", [Money.of("12.50", "HUF"), Money.of("0.99", "TWD"), Money.of("5.00", "KWD"),
                                    Money.of("5", "KRW")])
def test_amounts_paypal_cannot_hold_are_refused_before_sending(paypal, amount):
    with pytest.raises(InvalidRequest) as raised:
        paypal.run("sale", amount=amount, source="paypal", idempotency_key=paypal.key())
    assert raised.value.param in ("amount", "currency") and not raised.value.may_have_been_sent
    assert paypal.calls() == 0 and not paypal.sent


def test_an_idempotency_key_paypal_request_id_cannot_carry_is_refused(paypal):
    paypal.run("sale", amount=EUR10, source="paypal", idempotency_key="k" * 108)
    with pytest.raises(InvalidRequest) as raised:
        paypal.run("sale", amount=EUR10, source="paypal", idempotency_key="k" * 109)
    assert raised.value.param == "idempotency_key"
    assert len(paypal.app.orders) == 1


# -- idempotency ----------------------------------------------------------------------------------
def test_the_same_key_replays_the_same_order(paypal):
    fields = {"amount": EUR10, "source": "paypal", "return_url": RETURN_URL, "idempotency_key": "replayed-1"}
    first, again = paypal.run("authorize", **fields), paypal.run("authorize", **fields)
    assert (again.reference, again.status, again.action) == (first.reference, first.status, first.action)
    assert len(paypal.app.orders) == 1


def test_a_key_reused_for_another_amount_or_intent_is_a_conflict(paypal):
    paypal.run("authorize", amount=EUR10, source="paypal", idempotency_key="reused-1")
    with pytest.raises(IdempotencyConflict) as raised:
        paypal.run("authorize", amount=Money.of("10.01", "EUR"), source="paypal", idempotency_key="reused-1")
    assert raised.value.code == "idempotency_key_reused" and not raised.value.retryable
    with pytest.raises(IdempotencyConflict):
        paypal.run("sale", amount=EUR10, source="paypal", idempotency_key="reused-1")
    assert len(paypal.app.orders) == 1


def test_a_vaulted_charge_replayed_after_a_lost_answer_charges_once(paypal):
    token = paypal.app.vault_card()
    paypal.app.inject(Fault(kind="drop_after", method="POST", path="/v2/checkout/orders$"))
    with pytest.raises(OutcomeUnknown):
        paypal.run("sale", amount=EUR10, source=token, idempotency_key="lost-1")
    settled = paypal.run("sale", amount=EUR10, source=token, idempotency_key="lost-1")
    assert settled.state == ProviderState.CAPTURED
    assert len(paypal.app.captures) == 1
