"""Money in PayPal's wire format, exactly or not at all.

PayPal writes amounts as `{"currency_code": "EUR", "value": "10.50"}`: a decimal string with two
decimals, or none for HUF, JPY and TWD. ISO 4217 gives HUF and TWD two decimals, so an amount with
cents in those currencies cannot be sent; it is refused before sending, never rounded. So is an
amount above PayPal's maximum (999999999999999.99), which PayPal would refuse after paywire had
recorded the operation.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from decimal import Decimal, InvalidOperation
from typing import Any

from paywire import InvalidRequest, Money
from paywire_paypal.currencies import CURRENCIES, NO_DECIMALS

__all__ = ["from_paypal", "paypal_exponent", "to_paypal"]

# Whole units PayPal's amounts hold at most: "Should be less than or equal to 999999999999999.99"
# (its MAX_VALUE_EXCEEDED issue); 999999999999999 in a currency without decimals.
_MAX_DIGITS = 15

# An amount PayPal answers: its specs' `money.value` pattern in ASCII digits, at most 32
# characters, without the minus sign it allows (the amounts paywire reads, of orders,
# authorizations, captures and refunds, are never negative). Anything else ("1e3", " 10.00",
# Arabic-Indic digits, "1_000", all of which `Decimal` would take) is not PayPal's format: it is
# unreadable, never guessed at.
_VALUE = re.compile(r"[0-9]+|[0-9]*\.[0-9]+")
_MAX_VALUE = 32


def paypal_exponent(currency: str) -> int:
    """Decimals PayPal writes for `currency`."""
    return 0 if currency in NO_DECIMALS else 2


def to_paypal(money: Money, param: str = "amount") -> dict[str, str]:
    """`money` as PayPal's money object; `InvalidRequest` naming `param` when PayPal cannot hold it."""
    currency = money.currency
    if currency not in CURRENCIES:
        raise InvalidRequest(
            f"PayPal does not accept {currency}; nothing was sent",
            param="currency",
            provider="paypal",
            code="currency_not_supported",
        )
    if money.minor <= 0:
        raise InvalidRequest(
            f"{money} is not a positive amount; PayPal takes amounts above zero; nothing was sent",
            param=param,
            provider="paypal",
            code="amount_not_positive",
        )
    places = paypal_exponent(currency)
    shift = money.exponent - places
    whole, rest = divmod(money.minor, 10**shift) if shift > 0 else (money.minor * 10**-shift, 0)
    if rest:
        raise InvalidRequest(
            f"{money} cannot be sent to PayPal, which takes {currency} in whole units only; nothing was sent",
            param=param,
            provider="paypal",
            code="amount_not_representable",
        )
    if whole >= 10 ** (_MAX_DIGITS + places):
        raise InvalidRequest(
            f"{money} is more than PayPal takes (at most {'9' * _MAX_DIGITS}{'.99' if places else ''} {currency}); "
            "nothing was sent",
            param=param,
            provider="paypal",
            code="amount_too_large",
        )
    units, cents = divmod(whole, 10**places)
    value = f"{units}.{cents:0{places}d}" if places else str(units)
    return {"currency_code": currency, "value": value}


def from_paypal(obj: Any) -> Money:
    """A PayPal money object as `Money`; `InvalidRequest` when it is not one paywire can hold."""
    if not isinstance(obj, Mapping):
        raise InvalidRequest(f"PayPal answered {type(obj).__name__} where an amount belongs",
                             provider="paypal", code="unexpected_amount")
    currency, value = obj.get("currency_code"), obj.get("value")
    try:
        if (not isinstance(value, str) or not isinstance(currency, str) or len(value) > _MAX_VALUE
                or not _VALUE.fullmatch(value)):
            raise InvalidOperation
        return Money.of(Decimal(value), currency)
    except (InvalidOperation, InvalidRequest):
        raise InvalidRequest(f"PayPal answered an amount paywire cannot hold: {value!r} {currency!r}",
                             provider="paypal", code="unexpected_amount") from None
