"""The currencies Braintree can hold: its `Amount` is a whole number or has exactly two or three
decimals, so currencies of four decimals (CLF, UYW) cannot be sent."""

from __future__ import annotations

from typing import Final

from paywire.money import CURRENCY_EXPONENTS

__all__ = ["CURRENCIES"]

CURRENCIES: Final = frozenset(code for code, exponent in CURRENCY_EXPONENTS.items() if exponent <= 3)
