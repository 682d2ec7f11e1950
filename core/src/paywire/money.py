"""Money: integer minor units with an ISO 4217 currency.

Amounts are never floats. Parsing refuses more decimals than the currency has instead of rounding,
and arithmetic or comparison across currencies is an error, so a mistake surfaces where it is made.
"""

from __future__ import annotations

import re
from decimal import MAX_PREC, Context, Decimal, DivisionByZero, InvalidOperation, Overflow
from functools import lru_cache, total_ordering
from typing import TYPE_CHECKING, Final

from paywire.errors import InvalidRequest

__all__ = ["CURRENCY_EXPONENTS", "MAX_MINOR", "Money", "exponent_of"]

# ISO 4217 active codes and their minor-unit exponents (list one, current edition).
_EXPONENT_0 = "BIF CLP DJF GNF ISK JPY KMF KRW PYG RWF UGX UYI VND VUV XAF XOF XPF"
_EXPONENT_3 = "BHD IQD JOD KWD LYD OMR TND"
_EXPONENT_4 = "CLF UYW"
_EXPONENT_2 = (
    "AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BMD BND BOB BOV BRL BSD BTN BWP BYN "
    "BZD CAD CDF CHE CHF CHW CNY COP COU CRC CUP CVE CZK DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP "
    "GEL GHS GIP GMD GTQ GYD HKD HNL HTG HUF IDR ILS INR IRR JMD KES KGS KHR KPW KYD KZT LAK LBP "
    "LKR LRD LSL MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR "
    "NZD PAB PEN PGK PHP PKR PLN QAR RON RSD RUB SAR SBD SCR SDG SEK SGD SHP SLE SOS SRD SSP STN "
    "SVC SYP SZL THB TJS TMT TOP TRY TTD TWD TZS UAH USD USN UYU UZS VED VES WST XCD XCG YER ZAR "
    "ZMW ZWG"
)

CURRENCY_EXPONENTS: Final[dict[str, int]] = {
    code: exponent
    for exponent, codes in ((0, _EXPONENT_0), (2, _EXPONENT_2), (3, _EXPONENT_3), (4, _EXPONENT_4))
    for code in codes.split()
}


def exponent_of(currency: str) -> int:
    """The number of decimals of an ISO 4217 currency; unknown codes are an `InvalidRequest`.

    Codes are upper case everywhere (Money, configuration, the command line): 'eur' is refused
    with the code it should be, never silently taken for EUR in one place and refused in another.
    """
    try:
        return CURRENCY_EXPONENTS[currency]
    except (KeyError, TypeError):
        hint = (f"; currency codes are upper case: {currency.upper()!r}"
                if isinstance(currency, str) and currency.upper() in CURRENCY_EXPONENTS else
                ": use an active ISO 4217 code in upper case, such as 'EUR'")
        raise InvalidRequest(f"unknown currency {currency!r}{hint}", param="currency") from None


# Scaling by a power of ten is exact under this context, whatever the caller's own decimal context
# (a thread's `getcontext().prec = 6` must not round 12345.67 to 12345.70).
_EXACT: Final = Context(prec=MAX_PREC, Emax=999_999, Emin=-999_999, traps=[InvalidOperation, DivisionByZero, Overflow])

_PLAIN_DECIMAL = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")

# The most minor units an amount may have: a signed 64-bit integer, what ledgers (SQLite's
# INTEGER, PostgreSQL's BIGINT) and providers store. Refused here, a larger amount never reaches a
# ledger that would fail on it with a driver's error.
MAX_MINOR: Final = 2**63 - 1


@lru_cache(maxsize=4096)
def _formatted(minor: int, currency: str) -> str:
    """`Money.format`, remembered: an operation writes its amount into what it sends, its stored
    request and its stored answer, and building the string costs several times the look-up."""
    exponent = CURRENCY_EXPONENTS[currency]
    sign = "-" if minor < 0 else ""
    whole, frac = divmod(abs(minor), 10**exponent)
    return f"{sign}{whole}.{frac:0{exponent}d}" if exponent else f"{sign}{whole}"


def _refused(minor: object) -> InvalidRequest:
    if type(minor) is not int:
        return InvalidRequest(f"Money needs an int of minor units, got {type(minor).__name__} {minor!r}; "
                              "use Money.of('12.34', currency) for decimal amounts", param="amount")
    return InvalidRequest(f"Money holds at most {MAX_MINOR} minor units either way (a signed 64-bit integer, "
                          f"what ledgers and providers store); got {minor}", param="amount")


_ZEROS: dict[str, Money] = {}  # `Money.zero` by currency (only known currencies: at most a few hundred)


@total_ordering
class Money:
    """An exact amount: `minor` units (cents, yen, fils, ...) of `currency`.

    Build it with `Money.of("19.99", "EUR")` from a decimal string or `Decimal`, or with
    `Money.minor_units(1999, "EUR")` from an integer amount of minor units.
    """

    # Plain read-only slots, not properties: amounts are read on every request and answer, and a
    # slot is read without a call. `__setattr__` and `__delattr__` keep them immutable; type
    # checkers see them as the read-only properties they are.
    __slots__ = ("currency", "minor")
    if TYPE_CHECKING:
        @property
        def minor(self) -> int:
            """The amount in minor units."""

        @property
        def currency(self) -> str: ...

    def __init__(self, minor: int, currency: str) -> None:
        if type(minor) is not int or not -MAX_MINOR <= minor <= MAX_MINOR:  # bool and float are refused alike
            raise _refused(minor)
        exponent_of(currency)
        object.__setattr__(self, "minor", minor)
        object.__setattr__(self, "currency", currency)

    def __setattr__(self, name: str, value: object) -> None:
        raise AttributeError("Money is immutable")

    def __delattr__(self, name: str) -> None:
        raise AttributeError("Money is immutable")

    def __reduce__(self) -> tuple[type[Money], tuple[int, str]]:
        return (Money, (self.minor, self.currency))

    @classmethod
    def minor_units(cls, minor: int, currency: str) -> Money:
        """Money from an integer count of minor units (1999 EUR cents is 19.99 EUR)."""
        return cls(minor, currency)

    @classmethod
    def of(cls, amount: str | Decimal | int, currency: str) -> Money:
        """Money from a decimal amount in major units: `Money.of("19.99", "EUR")`.

        A string must be a plain decimal ('19.99', '1000', '-5.5'): '1e3', ' 10 ' or '1,000' are
        refused rather than guessed at. A float is refused (it cannot hold most decimal amounts exactly); more decimals than the
        currency allows is an error rather than a rounding.
        """
        exponent = exponent_of(currency)
        if isinstance(amount, bool) or not isinstance(amount, (str, Decimal, int)):
            raise InvalidRequest(
                f"amount must be a str, Decimal or int, got {type(amount).__name__} {amount!r}; "
                "floats are refused because they cannot hold money exactly",
                param="amount",
            )
        if isinstance(amount, str) and not _PLAIN_DECIMAL.fullmatch(amount):
            raise InvalidRequest(
                f"amount {amount!r} is not a plain decimal number; write it like '19.99' (digits, "
                "an optional '-' and '.', no spaces, exponents or separators)", param="amount",
            )
        try:
            value = Decimal(amount)
        except InvalidOperation:  # pragma: no cover - the pattern admits only what Decimal parses
            raise InvalidRequest(f"amount {amount!r} is not a decimal number", param="amount") from None
        if not value.is_finite():
            raise InvalidRequest(f"amount {amount!r} is not a finite number", param="amount")
        try:
            scaled = value.scaleb(exponent, _EXACT)
        except Overflow:
            raise InvalidRequest(f"amount {amount!r} is more than Money can hold (at most {MAX_MINOR} minor units)",
                                 param="amount") from None
        if scaled != scaled.to_integral_value(context=_EXACT):
            raise InvalidRequest(
                f"amount {amount!r} has more decimals than {currency} allows ({exponent}); "
                "round it explicitly before building Money",
                param="amount",
            )
        if abs(scaled) > MAX_MINOR:  # before int(): past 4300 digits it raises ValueError, not this
            raise InvalidRequest(f"amount {amount!r} is more than Money can hold (at most {MAX_MINOR} minor units)",
                                 param="amount")
        return cls(int(scaled), currency)

    @classmethod
    def zero(cls, currency: str) -> Money:
        if cls is Money and type(currency) is str:
            # Immutable, so one per currency is shared: every new payment starts its six totals at it.
            zero = _ZEROS.get(currency)
            if zero is None:
                zero = _ZEROS[currency] = cls(0, currency)  # a currency refused is never kept
            return zero
        return cls(0, currency)

    @property
    def exponent(self) -> int:
        return CURRENCY_EXPONENTS[self.currency]

    @property
    def amount(self) -> Decimal:
        """The amount in major units, exactly, with the currency's number of decimals."""
        return Decimal(self.minor).scaleb(-self.exponent, _EXACT)

    def format(self) -> str:
        """The plain decimal string ('19.99', '1000', '1.250'), which `Money.of` parses back."""
        return _formatted(self.minor, self.currency)

    def _same(self, other: object) -> Money:
        if not isinstance(other, Money):
            raise TypeError(f"cannot combine Money with {type(other).__name__}")
        if other.currency != self.currency:
            raise InvalidRequest(
                f"cannot combine {self.currency} with {other.currency}: "
                "money of different currencies must be converted explicitly",
                param="currency",
            )
        return other

    def __add__(self, other: Money) -> Money:
        return Money(self.minor + self._same(other).minor, self.currency)

    def __sub__(self, other: Money) -> Money:
        return Money(self.minor - self._same(other).minor, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.minor, self.currency)

    def __abs__(self) -> Money:
        return Money(abs(self.minor), self.currency)

    def __bool__(self) -> bool:
        return self.minor != 0

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Money):
            return NotImplemented
        return self.minor == other.minor and self.currency == other.currency

    def __lt__(self, other: Money) -> bool:
        return self.minor < self._same(other).minor

    def __hash__(self) -> int:
        return hash((self.minor, self.currency))

    def __repr__(self) -> str:
        return f"Money.of('{self.format()}', '{self.currency}')"

    def __str__(self) -> str:
        return f"{self.format()} {self.currency}"
