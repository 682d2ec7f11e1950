"""Money in PayPal's format: exact both ways, or refused; never rounded."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from paywire import InvalidRequest, LineItem, Money, Order, Subject
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
