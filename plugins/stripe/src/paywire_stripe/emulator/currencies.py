"""Stripe's currency rules for amounts, as documented at https://docs.stripe.com/currencies.

What the emulator enforces:

- the currency must be one Stripe accepts (its `Invalid currency: xyz. Stripe currently supports
  these currencies: ...` list); codes are case-insensitive and answered in lower case;
- amounts are integers in Stripe's minor unit: two decimals unless listed otherwise; zero-decimal
  BIF CLP DJF GNF JPY KMF KRW MGA PYG RWF VND VUV XAF XOF XPF; three-decimal BHD JOD KWD OMR TND;
- special cases: ISK and UGX are zero-decimal in practice but keep a two-decimal representation,
  so an amount must be a multiple of 100 (`500` is 5 ISK) -> `invalid_charge_amount_no_decimal_compatible`;
  three-decimal amounts must end in 0 ("round to the nearest ten") -> `invalid_charge_amount`.
  Both apply to payments, captures and refunds. HUF and TWD are ordinary two-decimal currencies
  for charges (their divisible-by-100 rule concerns payouts, which the emulator does not offer);
- the minimum charge per currency from Stripe's table (0.50 USD, 0.30 GBP, 50 JPY, 175.00 HUF,
  ...) -> `amount_too_small`, `Amount must be at least $0.50 usd`. Stripe compares other
  currencies after converting to the account's settlement currency; without exchange rates the
  emulator only requires a positive amount for them;
- at most eight digits (`99999999`, twelve for IDR), as the API reference states
  -> `amount_too_large`.
"""

from __future__ import annotations

from typing import Final

from paywire_stripe.emulator.errors import StripeError, invalid_request

__all__ = [
    "SUPPORTED",
    "ZERO_DECIMAL",
    "check_amount",
    "check_currency",
    "display",
    "exponent",
]

SUPPORTED: Final = frozenset(
    (
        "usd aed afn all amd ang aoa ars aud awg azn bam bbd bdt bgn bhd bif bmd bnd bob brl bsd bwp byn "
        "bzd cad cdf chf clp cny cop crc cve czk djf dkk dop dzd egp etb eur fjd fkp gbp gel gip gmd gnf "
        "gtq gyd hkd hnl hrk htg huf idr ils inr isk jmd jod jpy kes kgs khr kmf krw kwd kyd kzt lak lbp "
        "lkr lrd lsl mad mdl mga mkd mmk mnt mop mur mvr mwk mxn myr mzn nad ngn nio nok npr nzd omr pab "
        "pen pgk php pkr pln pyg qar ron rsd rub rwf sar sbd scr sek sgd shp sle sos srd std szl thb tjs "
        "tnd top try ttd twd tzs uah ugx uyu uzs vnd vuv wst xaf xcd xof xpf yer zar zmw usdc btn ghs eek "
        "lvl svc vef ltl sll mro"
    ).split()
)
_SUPPORTED_IN_ORDER = (
    "usd, aed, afn, all, amd, ang, aoa, ars, aud, awg, azn, bam, bbd, bdt, bgn, bhd, bif, bmd, bnd, bob, "
    "brl, bsd, bwp, byn, bzd, cad, cdf, chf, clp, cny, cop, crc, cve, czk, djf, dkk, dop, dzd, egp, etb, "
    "eur, fjd, fkp, gbp, gel, gip, gmd, gnf, gtq, gyd, hkd, hnl, hrk, htg, huf, idr, ils, inr, isk, jmd, "
    "jod, jpy, kes, kgs, khr, kmf, krw, kwd, kyd, kzt, lak, lbp, lkr, lrd, lsl, mad, mdl, mga, mkd, mmk, "
    "mnt, mop, mur, mvr, mwk, mxn, myr, mzn, nad, ngn, nio, nok, npr, nzd, omr, pab, pen, pgk, php, pkr, "
    "pln, pyg, qar, ron, rsd, rub, rwf, sar, sbd, scr, sek, sgd, shp, sle, sos, srd, std, szl, thb, tjs, "
    "tnd, top, try, ttd, twd, tzs, uah, ugx, uyu, uzs, vnd, vuv, wst, xaf, xcd, xof, xpf, yer, zar, zmw, "
    "usdc, btn, ghs, eek, lvl, svc, vef, ltl, sll, mro"
)

ZERO_DECIMAL: Final = frozenset("bif clp djf gnf jpy kmf krw mga pyg rwf vnd vuv xaf xof xpf".split())
THREE_DECIMAL: Final = frozenset("bhd jod kwd omr tnd".split())
WHOLE_UNITS_IN_TWO_DECIMALS: Final = frozenset(("isk", "ugx"))

# Minimum charge amounts in minor units (Stripe's table).
MINIMUMS: Final[dict[str, int]] = {
    "usd": 50,
    "aed": 200,
    "ars": 50,
    "aud": 50,
    "brl": 50,
    "cad": 50,
    "chf": 50,
    "cop": 50,
    "czk": 1500,
    "dkk": 250,
    "eur": 50,
    "gbp": 30,
    "hkd": 400,
    "huf": 17500,
    "idr": 50,
    "ils": 50,
    "inr": 50,
    "jpy": 50,
    "krw": 50,
    "mxn": 1000,
    "myr": 200,
    "nok": 300,
    "nzd": 50,
    "php": 50,
    "pln": 200,
    "ron": 200,
    "rub": 50,
    "sek": 300,
    "sgd": 50,
    "thb": 1000,
    "zar": 50,
}
_MAXIMUM_DIGITS: Final[dict[str, int]] = {"idr": 12}
_SYMBOLS: Final[dict[str, str]] = {
    "usd": "$",
    "aud": "$",
    "cad": "$",
    "nzd": "$",
    "sgd": "$",
    "hkd": "$",
    "mxn": "$",
    "eur": "€",
    "gbp": "£",
    "jpy": "¥",
    "inr": "₹",
    "krw": "₩",
}


def exponent(currency: str) -> int:
    """Decimals of Stripe's minor unit for `currency` (ISK and UGX count as two, as Stripe sends them)."""
    if currency in ZERO_DECIMAL:
        return 0
    if currency in THREE_DECIMAL:
        return 3
    return 2


def display(amount: int, currency: str, *, code: bool = False) -> str:
    """`$0.50`, `¥1,000`, `1.250 kwd`: how Stripe's messages show an amount (`code`: `$0.50 usd`)."""
    digits = exponent(currency)
    whole, fraction = divmod(abs(amount), 10**digits)
    number = f"{whole:,}" + (f".{fraction:0{digits}d}" if digits else "")
    sign = "-" if amount < 0 else ""
    symbol = _SYMBOLS.get(currency)
    if symbol:
        return f"{sign}{symbol}{number}" + (f" {currency}" if code else "")
    return f"{sign}{number} {currency}"


def check_currency(currency: str, param: str = "currency") -> str:
    """The lower-case code of a currency Stripe accepts, or Stripe's `Invalid currency` error."""
    code = currency.lower()
    if code not in SUPPORTED:
        raise invalid_request(
            f"Invalid currency: {currency}. Stripe currently supports these currencies: {_SUPPORTED_IN_ORDER}",
            param=param,
            saved=False,
        )
    return code


def check_amount(amount: int, currency: str, param: str = "amount", *, charge: bool = True) -> None:
    """Refuse an amount Stripe refuses for `currency`; `charge` adds the minimum and maximum."""
    if charge:
        minimum = MINIMUMS.get(currency)
        if minimum is not None and amount < minimum:
            raise StripeError(
                400,
                "invalid_request_error",
                f"Amount must be at least {display(minimum, currency, code=True)}",
                code="amount_too_small",
                param=param,
                saved=False,
            )
        maximum = 10 ** _MAXIMUM_DIGITS.get(currency, 8) - 1
        if amount > maximum:
            raise StripeError(
                400,
                "invalid_request_error",
                f"Amount must be no more than {display(maximum, currency)}",
                code="amount_too_large",
                param=param,
                saved=False,
            )
    if currency in WHOLE_UNITS_IN_TWO_DECIMALS and amount % 100:
        raise StripeError(
            400,
            "invalid_request_error",
            f"Invalid amount. Currency {currency.upper()} has become effectively zero-decimal and charged amounts "
            "must be evenly divisible by 100. See https://stripe.com/docs/currencies#special-cases for more "
            "information.",
            code="invalid_charge_amount_no_decimal_compatible",
            param=param,
            saved=False,
        )
    if currency in THREE_DECIMAL and amount % 10:
        raise StripeError(
            400,
            "invalid_request_error",
            f"Invalid amount. {currency.upper()} is a three-decimal currency: amounts must end in 0 (round to the "
            f"nearest ten, for example 5.124 {currency.upper()} is sent as 5120 or 5130).",
            code="invalid_charge_amount",
            param=param,
            saved=False,
        )
