"""Money in PayPal's format: exact both ways, or refused; never rounded."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paywire import InvalidRequest, Money
from paywire.money import CURRENCY_EXPONENTS
from paywire_paypal.amounts import from_paypal, to_paypal
from paywire_paypal.currencies import CURRENCIES, NO_DECIMALS

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
