"""PayPal's money rules: decimal strings, its own currency list, and no decimals for HUF, JPY and TWD.

Amounts are held as integer minor units of the currency's PayPal exponent (0 or 2) and rendered
back with exactly that many decimals, the way PayPal normalises "10.5" to "10.50".
"""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Any

from paywire.money import CURRENCY_EXPONENTS
from paywire_paypal.emulator.errors import PayPalError

__all__ = ["NO_DECIMAL_CURRENCIES", "SUPPORTED_CURRENCIES", "format_minor", "parse_money"]

# https://developer.paypal.com/api/rest/reference/currency-codes/ (REST Payments API currencies).
SUPPORTED_CURRENCIES = frozenset(
    "AUD BRL CAD CNY CZK DKK EUR HKD HUF ILS JPY MYR MXN TWD NZD NOK PHP PLN GBP RUB SGD SEK CHF THB USD".split()
)
# "This currency does not support decimals. If you pass a decimal amount, an error occurs."
NO_DECIMAL_CURRENCIES = frozenset({"HUF", "JPY", "TWD"})

# The `money.value` pattern of the specs, matched whole (`fullmatch`: Python's `$` also matches
# before a final newline, which PayPal's pattern does not allow).
_VALUE = re.compile(r"(-?[0-9]+)|(-?([0-9]+)?[.][0-9]+)")
_MAX = Decimal("999999999999999.99")


def exponent(currency: str) -> int:
    return 0 if currency in NO_DECIMAL_CURRENCIES else 2


def format_minor(minor: int, currency: str) -> str:
    """Minor units as PayPal writes them: "10.50" USD, "1000" JPY."""
    places = exponent(currency)
    if places == 0:
        return str(minor)
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**places)
    return f"{sign}{whole}.{frac:0{places}d}"


def money(minor: int, currency: str) -> dict[str, str]:
    return {"currency_code": currency, "value": format_minor(minor, currency)}


def parse_money(
    obj: Any,
    field: str,
    *,
    allow_zero: bool = False,
    no_decimals_issue: str = "DECIMAL_PRECISION",
) -> tuple[int, str]:
    """Validate a `{currency_code, value}` object and return (minor units, currency).

    :param field: the JSON pointer of the object, for the error's `field`.
    :param allow_zero: breakdown parts may be 0 (then a negative is CANNOT_BE_NEGATIVE).
    :param no_decimals_issue: Orders v2 calls a decimal JPY amount DECIMAL_PRECISION, Payments v2
        calls it DECIMALS_NOT_SUPPORTED.
    """
    if not isinstance(obj, dict):
        raise PayPalError.of("MISSING_REQUIRED_PARAMETER" if obj is None else "INVALID_PARAMETER_SYNTAX", field=field)
    currency, value = obj.get("currency_code"), obj.get("value")
    if currency is None:
        raise PayPalError.of("MISSING_REQUIRED_PARAMETER", field=f"{field}/currency_code")
    if value is None:
        raise PayPalError.of("MISSING_REQUIRED_PARAMETER", field=f"{field}/value")
    if not isinstance(currency, str) or len(currency) != 3:
        raise PayPalError.of("INVALID_STRING_LENGTH", field=f"{field}/currency_code", value=str(currency))
    if not isinstance(value, str) or len(value) > 32 or not _VALUE.fullmatch(value):
        raise PayPalError.of("INVALID_PARAMETER_SYNTAX", field=f"{field}/value", value=str(value))
    if currency not in SUPPORTED_CURRENCIES:
        issue = "CURRENCY_NOT_SUPPORTED" if currency in CURRENCY_EXPONENTS else "INVALID_CURRENCY_CODE"
        raise PayPalError(422, issue, field=f"{field}/currency_code", value=currency)
    amount = Decimal(value)
    at = f"{field}/value"
    if amount < 0 or (amount == 0 and not allow_zero):
        raise PayPalError(
            422, "CANNOT_BE_NEGATIVE" if allow_zero else "CANNOT_BE_ZERO_OR_NEGATIVE", field=at, value=value
        )
    places = -amount.as_tuple().exponent  # type: ignore[operator]
    if currency in NO_DECIMAL_CURRENCIES and "." in value:
        raise PayPalError(422, no_decimals_issue, field=at, value=value)
    if places > 2:
        raise PayPalError(422, "DECIMAL_PRECISION", field=at, value=value)
    if amount > _MAX:
        raise PayPalError(422, "MAX_VALUE_EXCEEDED", field=at, value=value)
    return int(amount.scaleb(exponent(currency))), currency
