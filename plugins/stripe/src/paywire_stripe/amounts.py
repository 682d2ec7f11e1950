"""Money in Stripe's units, exactly or not at all.

Stripe takes integer amounts in its own minor unit of each currency, which is not always ISO
4217's (https://docs.stripe.com/currencies):

- zero-decimal currencies are sent as whole units; MGA is among them although ISO gives it two
  decimals, so an MGA amount with cents cannot be sent;
- ISK and UGX are zero-decimal for ISO but Stripe keeps a two-decimal representation with the
  decimals always 00 (5 ISK is sent as 500);
- three-decimal currencies (BHD, JOD, KWD, OMR, TND) must end in 0: Stripe's partners take
  hundredths only.

An amount Stripe cannot hold exactly is refused before sending; it is never rounded.
"""

from __future__ import annotations

from functools import lru_cache
from typing import Final

from paywire import InvalidRequest, Money
from paywire_stripe.currencies import CURRENCIES

__all__ = ["from_stripe", "stripe_exponent", "to_stripe", "wire_amount"]

_ZERO_DECIMAL: Final = frozenset("BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF VND VUV XAF XOF XPF".split())
_THREE_DECIMAL: Final = frozenset("BHD JOD KWD OMR TND".split())


def stripe_exponent(currency: str) -> int:
    """Decimals of Stripe's unit for `currency` (two for ISK and UGX, as Stripe counts them)."""
    if currency in _ZERO_DECIMAL:
        return 0
    if currency in _THREE_DECIMAL:
        return 3
    return 2


# Decimal places Stripe's unit has more (or, negative, fewer) than ISO's minor unit.
_SHIFT: Final = {code: stripe_exponent(code) - Money.zero(code).exponent for code in CURRENCIES}


def _refuse(money: Money, rule: str, param: str) -> InvalidRequest:
    return InvalidRequest(f"{money} cannot be sent to Stripe, which takes {money.currency} {rule}; nothing was sent",
                          param=param, provider="stripe", code="amount_not_representable")


def to_stripe(money: Money, param: str = "amount") -> int:
    """`money` as Stripe's integer amount; `InvalidRequest` naming `param` when Stripe cannot hold it."""
    shift = _SHIFT.get(money.currency)
    if shift is None:
        raise InvalidRequest(f"Stripe does not accept {money.currency}; nothing was sent", param="currency",
                             provider="stripe", code="currency_not_supported")
    amount: int
    if shift >= 0:
        amount = money.minor * 10**shift
    else:
        amount, rest = divmod(money.minor, 10**-shift)
        if rest:
            raise _refuse(money, "in whole units only", param)
    if amount % 10 and money.currency in _THREE_DECIMAL:
        raise _refuse(money, "amounts ending in 0 (whole hundredths)", param)
    return amount


def wire_amount(value: object) -> int:
    """An amount field of a Stripe answer, which Stripe writes as an integer of at least zero;
    anything else (1999.5, "1999", true, -500) is an `InvalidRequest`, never truncated by `int()`
    into another amount."""
    if type(value) is not int or value < 0:
        raise InvalidRequest(f"Stripe answered an amount paywire cannot hold: {value!r}",
                             provider="stripe", code="unexpected_amount")
    return value


@lru_cache(maxsize=4096, typed=True)  # Money is immutable; an answer holds the same amounts several times
def from_stripe(amount: int, currency: str) -> Money:
    """Stripe's `amount` in `currency` (any case) as `Money`; `InvalidRequest` if it cannot be one
    (Stripe's amounts of intents, charges and refunds are never negative)."""
    code = currency.upper()
    shift = _SHIFT.get(code)
    if shift is None or type(amount) is not int or amount < 0:
        raise InvalidRequest(f"Stripe answered an amount paywire cannot hold: {amount!r} {currency!r}",
                             provider="stripe", code="unexpected_amount")
    if shift <= 0:
        return Money(amount * 10**-shift, code)
    minor, rest = divmod(amount, 10**shift)
    if rest:
        raise InvalidRequest(f"Stripe answered {amount} {currency}, a fraction of {code}'s smallest unit",
                             provider="stripe", code="unexpected_amount")
    return Money(minor, code)
