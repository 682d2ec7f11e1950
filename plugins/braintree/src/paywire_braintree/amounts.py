"""Money in Braintree's `Amount` format: a decimal string with the currency's own exponent
("10.00", "1000" for JPY, "1.250" for KWD), exactly or not at all."""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Any

from paywire import InvalidRequest, Money
from paywire.money import exponent_of
from paywire_braintree.objects import OBJECT

__all__ = ["from_braintree", "to_braintree"]

# Braintree's Amount as it answers one: ASCII digits with an optional fraction, never negative
# ("Amount cannot be negative", 81501). Anything else ("1e3", " 10.00", "+5", "1_000",
# Arabic-Indic digits, all of which `Decimal` would take) is unreadable, never guessed at.
_AMOUNT = re.compile(r"[0-9]+(?:\.[0-9]+)?")
# Digit strings this long or shorter are minor amounts well inside Money's bound (2**63 - 1).
_EXACT_DIGITS = 18


def to_braintree(money: Money, param: str = "amount") -> str:
    """`money` as Braintree's Amount; refused (nothing sent) when it is not a positive amount."""
    if money.minor <= 0:
        raise InvalidRequest(f"{money} is not a positive amount; Braintree takes amounts above zero; nothing was sent",
                             param=param, provider="braintree", code="amount_not_positive")
    if money.exponent > 3:
        raise InvalidRequest(f"Braintree cannot hold {money.currency} amounts (four decimals); nothing was sent",
                             param="currency", provider="braintree", code="currency_not_supported")
    units, rest = divmod(money.minor, 10**money.exponent)
    return f"{units}.{rest:0{money.exponent}d}" if money.exponent else str(units)


def from_braintree(amount: Any) -> Money:
    """A MonetaryAmount (`{"value": "10.00", "currencyCode": "EUR"}`) as Money."""
    if not isinstance(amount, OBJECT):
        raise ValueError(f"Braintree answered {type(amount).__name__} where an amount belongs")
    currency, text = amount.get("currencyCode"), amount.get("value")
    if not isinstance(text, str):  # Braintree's Amount is a string: a JSON number was already rounded to a float
        raise ValueError(f"Braintree answered the amount {text!r}, not a decimal string")
    if not _AMOUNT.fullmatch(text) or not isinstance(currency, str):
        raise ValueError(f"Braintree answered the amount {text!r} {currency!r}, not a decimal string of digits "
                         "and a currency code")
    exponent = exponent_of(currency)  # an unknown currency refused as `Money.of` refuses it
    units, _, fraction = text.partition(".")
    if len(fraction) == exponent and len(text) <= _EXACT_DIGITS:
        # The usual answer: exactly the currency's decimals, far below Money's bound. Its minor
        # units are its digits, as `Money.of` would scale them; anything else takes that road.
        return Money(int(units + fraction), currency)
    try:
        value = Decimal(text)
    except InvalidOperation:  # pragma: no cover - the pattern admits only what Decimal parses
        raise ValueError(f"Braintree answered the amount {text!r}") from None
    return Money.of(value, currency)
