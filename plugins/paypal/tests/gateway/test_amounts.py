"""Money in PayPal's format: exact both ways, or refused; never rounded."""

from __future__ import annotations

import json
import re
from collections.abc import Generator
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from paywire import InvalidRequest, LineItem, Money, Order, OutcomeUnknown, Subject, Transfer, hookimpl
from paywire.money import CURRENCY_EXPONENTS
from paywire_paypal.amounts import from_paypal, to_paypal
from paywire_paypal.currencies import CURRENCIES, NO_DECIMALS
from paywire_paypal.orders import purchase_unit

paypal_currencies = st.sampled_from(sorted(CURRENCIES))


@given(paypal_currencies, st.integers(1, 10**15 - 1))  # PayPal holds at most 999999999999999.99
def test_what_paypal_can_hold_goes_out_and_comes_back_exactly(currency, units):
    money = Money.minor_units(units * (10 ** CURRENCY_EXPONENTS[currency] if currency in NO_DECIMALS else 1), currency)
    wire = to_paypal(money)
    assert wire["currency_code"] == currency
    assert Decimal(wire["value"]) == money.amount
    assert ("." in wire["value"]) == (currency not in NO_DECIMALS)
    assert len(wire["value"].partition(".")[2]) in (0, 2)
    assert from_paypal(wire) == money


@given(st.sampled_from(sorted(NO_DECIMALS - {"JPY"})), st.integers(1, 10**12).filter(lambda n: n % 100))
def test_cents_of_whole_unit_currencies_are_refused(currency, minor):
    with pytest.raises(InvalidRequest) as raised:
        to_paypal(Money.minor_units(minor, currency), "capture.amount")
    assert (raised.value.param, raised.value.code) == ("capture.amount", "amount_not_representable")


@given(st.sampled_from(sorted(set(CURRENCY_EXPONENTS) - CURRENCIES)))
def test_currencies_paypal_does_not_take_are_refused(currency):
    with pytest.raises(InvalidRequest) as raised:
        to_paypal(Money.minor_units(100, currency))
    assert raised.value.code == "currency_not_supported"


@given(paypal_currencies, st.integers(10**15, 10**16))
def test_amounts_above_paypals_maximum_are_refused(currency, units):
    """PayPal's amounts hold at most 999999999999999.99 (MAX_VALUE_EXCEEDED above it)."""
    money = Money.of(Decimal(units), currency)
    with pytest.raises(InvalidRequest) as raised:
        to_paypal(money, "refund.amount")
    assert (raised.value.param, raised.value.code) == ("refund.amount", "amount_too_large")
    below = money - Money.of(Decimal(units - 10**15 + 1), currency)  # 999999999999999 whole units
    assert Decimal(to_paypal(below)["value"]) == below.amount


def test_zero_and_negative_amounts_are_refused():
    for minor in (0, -1):
        with pytest.raises(InvalidRequest):
            to_paypal(Money.minor_units(minor, "EUR"))


@pytest.mark.parametrize("wire", [None, "10.00", {"currency_code": "EUR"}, {"currency_code": "EUR", "value": "1.005"},
                                  {"currency_code": "XXX", "value": "1"}, {"currency_code": "EUR", "value": "abc"}])
def test_answers_paywire_cannot_hold_are_invalid(wire):
    with pytest.raises(InvalidRequest):
        from_paypal(wire)



_items = st.lists(st.builds(LineItem, st.just("item"), st.integers(1, 10**10 - 1),
                            st.integers(1, 10**17 - 1).map(lambda minor: Money.minor_units(minor, "EUR"))),
                  min_size=1, max_size=4)


@example(minor=1000, items=[LineItem("item", 10**9, Money.minor_units(10**17 - 1, "EUR"))], adds_up=False)
@given(st.integers(1, 10**17 - 1), _items, st.booleans())
def test_an_orders_items_go_out_adding_up_to_the_amount_or_not_at_all(minor, items, adds_up):
    """PayPal refuses an order whose items do not add up, so they are sent only when they do;
    an amount PayPal can hold is never refused for its items (prices times quantities beyond
    what Money holds raised InvalidRequest about Money's limit, and the payment was refused)."""
    total = sum(item.unit_price.minor * item.quantity for item in items)
    if adds_up and total < 10**17:
        minor = total
    amount = Money.minor_units(minor, "EUR")
    unit = purchase_unit(Subject(amount=amount, order=Order(id="A-1", items=items)))["purchase_units"][0]
    assert unit["amount"]["currency_code"] == "EUR" and Decimal(unit["amount"]["value"]) == amount.amount
    assert ("items" in unit) == (total == minor)
    if "items" in unit:
        sent = sum(Decimal(item["unit_amount"]["value"]) * int(item["quantity"]) for item in unit["items"])
        assert sent == Decimal(unit["amount"]["breakdown"]["item_total"]["value"]) == amount.amount


# Numbers `Decimal` reads that are not PayPal's `money.value` (ASCII digits, an optional fraction,
# at most 32 characters): each would be a guess at what PayPal holds, and a negative is no amount
# of an order, authorization, capture or refund.
NOT_PAYPALS = ["1e1", "1E+1", " 10.00", "10.00 ", "10.00\n", "+10.00", "1_0.00", "\u0661\u0660.\u0660\u0660",
               "\uff11\uff10.\uff10\uff10", "-10.00", "0" * 30 + "10.00"]


@pytest.mark.parametrize("value", NOT_PAYPALS)
def test_an_answer_amount_not_in_paypals_format_is_unreadable_not_guessed(value):
    with pytest.raises(InvalidRequest) as raised:
        from_paypal({"currency_code": "EUR", "value": value})
    assert raised.value.code == "unexpected_amount" and raised.value.provider == "paypal"


@example(currency="EUR", value=" 1")
@example(currency="JPY", value="1e3")
@given(paypal_currencies, st.text(st.sampled_from("0123456789.-+eE_ \n\u0661"), max_size=12))
def test_an_answer_amount_is_read_exactly_as_paypal_writes_it_or_not_at_all(currency, value):
    """Whatever `from_paypal` reads is PayPal's pattern, unsigned, and the same number exactly."""
    try:
        money = from_paypal({"currency_code": currency, "value": value})
    except InvalidRequest:
        return
    assert re.fullmatch(r"[0-9]+|[0-9]*\.[0-9]+", value), value
    assert money.currency == currency and money.amount == Decimal(value)


class CaptureAnswered:
    """The capture's answer carries `value` as its amount: what a proxy or a changed API may give."""

    def __init__(self, value: str) -> None:
        self.value = value

    @hookimpl(wrapper=True)
    def send_transfer(self, transfer: Transfer) -> Generator[None, Any, Any]:
        response: Any = yield
        if not transfer.url.endswith("/capture") or response.status not in (200, 201):
            return response
        data = json.loads(response.body)
        data["amount"]["value"] = self.value
        return attrs.evolve(response, body=json.dumps(data).encode(), data=None)


@pytest.mark.parametrize("value", ["4e1", "40.00 ", "\u0664\u0660.\u0660\u0660", "-40.00"])
def test_a_capture_answered_with_an_amount_not_in_paypals_format_is_an_unknown_outcome(paypal, value):
    """PayPal made the capture; an amount it would never write is not taken for the one asked
    (nor a negative for money moved): the caller is told to reconcile."""
    authorized = paypal.authorized("100.00", "EUR")
    paypal.gateway.plugins.register(CaptureAnswered(value), name="capture-answered")
    with pytest.raises(OutcomeUnknown) as unknown:
        paypal.run("capture", reference=authorized.reference, amount=Money.of("40.00", "EUR"), final=False,
                   idempotency_key=paypal.key())
    assert unknown.value.may_have_been_sent and "cannot be read" in str(unknown.value)
    assert paypal.calls("/capture", "POST") == 1  # it was made


class OrderAnswered:
    """The order's reads carry `value` as the amount of its purchase unit (`where="order"`) or of
    the payments inside it (`where="payment"`)."""

    def __init__(self, value: str, where: str) -> None:
        self.value, self.where = value, where

    @hookimpl(wrapper=True)
    def send_transfer(self, transfer: Transfer) -> Generator[None, Any, Any]:
        response: Any = yield
        if transfer.method != "GET" or "/v2/checkout/orders/" not in transfer.url or response.status != 200:
            return response
        data = json.loads(response.body)
        for unit in data.get("purchase_units") or ():
            if self.where == "order":
                unit["amount"]["value"] = self.value
            for kind in ("authorizations", "captures"):
                for payment in (unit.get("payments") or {}).get(kind) or ():
                    if self.where == "payment":
                        payment["amount"]["value"] = self.value
        return attrs.evolve(response, body=json.dumps(data).encode(), data=None)


@pytest.mark.parametrize("where", ["order", "payment"])
@pytest.mark.parametrize("sale", [False, True])
def test_completing_again_an_order_paypal_completed_whose_amount_cannot_be_read_is_unknown_not_refused(
    paypal, sale, where
):
    """A retry of `complete` (its first answer lost) finds the order completed: PayPal holds the
    money, so an amount paywire cannot read in it leaves the outcome unknown. An `InvalidRequest`
    would have the payment service record as failed a payment PayPal authorized or captured."""
    amount = Money.of("10.00", "EUR")
    done = paypal.checkout(amount, sale=sale)
    assert done.succeeded
    paypal.gateway.plugins.register(OrderAnswered("1e1", where), name="order-answered")
    with pytest.raises(OutcomeUnknown) as unknown:
        paypal.run("complete", reference=done.references["order"], amount=amount, idempotency_key=paypal.key())
    assert unknown.value.may_have_been_sent and "cannot be read" in str(unknown.value)
    assert len(paypal.app.captures if sale else paypal.app.authorizations) == 1  # nothing sent again


@pytest.mark.parametrize("resent", [False, True])
def test_an_order_not_yet_completed_whose_amount_cannot_be_read_is_refused_unless_resent(paypal, resent):
    """Nothing was sent: a refusal. Unless an earlier call sent the completion, which may still
    land: then the outcome is unknown."""
    amount = Money.of("10.00", "EUR")
    started = paypal.run("sale", amount=amount, source="paypal", return_url="https://shop.example/return",
                         idempotency_key=paypal.key())
    paypal.app.approve(started.reference)
    paypal.gateway.plugins.register(OrderAnswered("1e1", "order"), name="order-answered")
    subject = Subject(reference=started.reference, amount=amount, idempotency_key=paypal.key())
    expected = OutcomeUnknown if resent else InvalidRequest
    with pytest.raises(expected) as refused:
        paypal.gateway.perform(paypal.gateway.rehearse("paypal", "complete", subject), resent=resent)
    assert type(refused.value) is expected and refused.value.code == "unexpected_amount"
    assert not paypal.app.captures
