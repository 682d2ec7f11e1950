import decimal
from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paywire import InvalidRequest, Money
from paywire.money import CURRENCY_EXPONENTS, MAX_MINOR

currencies = st.sampled_from(sorted(CURRENCY_EXPONENTS))


def test_every_exponent_is_represented() -> None:
    assert {0, 2, 3, 4} <= set(CURRENCY_EXPONENTS.values())
    assert (CURRENCY_EXPONENTS["JPY"], CURRENCY_EXPONENTS["EUR"], CURRENCY_EXPONENTS["KWD"], CURRENCY_EXPONENTS["CLF"]) == (0, 2, 3, 4)


@given(currencies, st.integers(min_value=-(10**15), max_value=10**15))
def test_format_and_parse_round_trip(currency: str, minor: int) -> None:
    money = Money.minor_units(minor, currency)
    assert Money.of(money.format(), currency) == money
    assert Money.of(money.amount, currency) == money
    assert money.amount.as_tuple().exponent == -CURRENCY_EXPONENTS[currency] or CURRENCY_EXPONENTS[currency] == 0


@given(currencies, st.integers(min_value=-MAX_MINOR, max_value=MAX_MINOR), st.integers(min_value=1, max_value=28))
def test_parsing_and_amount_are_exact_whatever_the_callers_decimal_context(currency: str, minor: int, prec: int) -> None:
    """A shop's own decimal context (a thread's `getcontext().prec = 6`) must not round an amount:
    12345.67 EUR stays 1234567 cents, and the largest amount keeps all its nineteen digits."""
    money = Money.minor_units(minor, currency)
    with decimal.localcontext() as ctx:
        ctx.prec = prec
        assert Money.of(money.format(), currency) == money
        assert Money.of(Decimal(money.format()), currency) == money
        assert money.amount == Decimal(money.format())
        assert Money.of(money.amount, currency) == money


def test_a_small_decimal_precision_does_not_round_a_common_amount() -> None:
    with decimal.localcontext() as ctx:
        ctx.prec = 6
        assert Money.of("12345.67", "EUR").minor == 1234567
        assert Money.minor_units(1234567, "EUR").amount == Decimal("12345.67")
        assert Money.of("92233720368547758.07", "EUR").minor == MAX_MINOR


@given(currencies, st.integers(min_value=MAX_MINOR + 1) | st.integers(max_value=-MAX_MINOR - 1))
def test_an_amount_beyond_what_a_ledger_holds_is_refused(currency: str, minor: int) -> None:
    """Past a signed 64-bit integer no ledger column (SQLite INTEGER, PostgreSQL BIGINT) holds it: a
    typed refusal here, not a driver's OverflowError once an operation is half recorded."""
    with pytest.raises(InvalidRequest, match="at most 9223372036854775807 minor units"):
        Money(minor, currency)
    with pytest.raises(InvalidRequest, match="at most"):
        Money.of(Decimal(minor).scaleb(-CURRENCY_EXPONENTS[currency]), currency)
    with pytest.raises(InvalidRequest, match="at most"):
        Money(MAX_MINOR, currency) + Money(1, currency) if minor > 0 else Money(-MAX_MINOR, currency) - Money(1, currency)


@pytest.mark.parametrize("amount", [Decimal("1E+999999"), Decimal("9E+999998"), "1" + "0" * 30, "9" * 5000])
def test_an_amount_too_large_for_the_decimal_context_is_refused(amount: str | Decimal) -> None:
    with pytest.raises(InvalidRequest, match=r"more than Money can hold|at most"):
        Money.of(amount, "EUR")


@given(currencies, st.floats(allow_nan=True, allow_infinity=True))
def test_floats_are_refused(currency: str, value: float) -> None:
    with pytest.raises(InvalidRequest, match="float"):
        Money.of(value, currency)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequest):
        Money.minor_units(value, currency)  # type: ignore[arg-type]


@given(currencies, st.integers(min_value=1, max_value=10**9))
def test_one_decimal_too_many_is_an_error_not_a_rounding(currency: str, minor: int) -> None:
    exponent = CURRENCY_EXPONENTS[currency]
    text = str(Decimal(minor).scaleb(-exponent - 1))
    if Decimal(text).scaleb(exponent) % 1 == 0:
        return  # the extra digit was a zero
    with pytest.raises(InvalidRequest, match="more decimals"):
        Money.of(text, currency)


@pytest.mark.parametrize(
    ("text", "currency", "minor"),
    [("19.99", "EUR", 1999), ("1000", "JPY", 1000), ("1.250", "KWD", 1250), ("0.0001", "CLF", 1), ("10.50", "USD", 1050)],
)
def test_known_amounts(text: str, currency: str, minor: int) -> None:
    assert Money.of(text, currency).minor == minor


@pytest.mark.parametrize("bad", ["", "abc", "NaN", "Infinity", "1,00", "1e3", "1E3", " 10 ", "10 ", "+5", ".5", "5.",
                                 "1_000", "\uff11\uff10", "0x10"])
def test_only_a_plain_decimal_string_is_an_amount(bad: str) -> None:
    with pytest.raises(InvalidRequest, match=r"is not a plain decimal number; write it like '19\.99'"):
        Money.of(bad, "EUR")


def test_a_decimal_or_int_is_taken_as_it_is() -> None:
    assert Money.of(Decimal("1E+3"), "EUR") == Money.of(1000, "EUR") == Money.of("1000", "EUR")


@pytest.mark.parametrize("code", ["XXX", "EURO", None, 978])
def test_unknown_currency(code: object) -> None:
    with pytest.raises(InvalidRequest, match="ISO 4217"):
        Money.of("1", code)  # type: ignore[arg-type]


@pytest.mark.parametrize("code", ["eur", "Eur"])
def test_a_lower_case_currency_is_refused_with_the_code_it_should_be(code: str) -> None:
    with pytest.raises(InvalidRequest, match="currency codes are upper case: 'EUR'"):
        Money.of("1", code)
    with pytest.raises(InvalidRequest, match="currency codes are upper case: 'EUR'"):
        Money.minor_units(1, code)


@given(currencies, st.integers(-(10**12), 10**12), st.integers(-(10**12), 10**12))
def test_arithmetic_and_order_within_one_currency(currency: str, a: int, b: int) -> None:
    x, y = Money.minor_units(a, currency), Money.minor_units(b, currency)
    assert (x + y).minor == a + b
    assert (x - y).minor == a - b
    assert (x < y) == (a < b)
    assert (-x).minor == -a


def test_mixing_currencies_is_refused() -> None:
    eur, usd = Money.of("1", "EUR"), Money.of("1", "USD")
    with pytest.raises(InvalidRequest, match="different currencies"):
        eur + usd
    with pytest.raises(InvalidRequest):
        _ = eur < usd
    assert eur != usd


def test_money_is_immutable_and_hashable() -> None:
    money = Money.of("1.00", "EUR")
    with pytest.raises(AttributeError):
        money._minor = 5  # type: ignore[misc]
    assert {money, Money.minor_units(100, "EUR")} == {money}
    assert repr(money) == "Money.of('1.00', 'EUR')"
    assert str(Money.of("-0.05", "EUR")) == "-0.05 EUR"
