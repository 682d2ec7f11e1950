"""Ordinary shop data (order ids, keys, provider references, dates, phone numbers, IBANs, ...),
generated from a `random.Random`, to check that the card-number guard never refuses it.

Plain functions of a seeded generator, so a measurement over a million strings runs without
hypothesis; `paywire.testing.strategies.shop_strings` draws the same data for property tests.
"""

from __future__ import annotations

import random
import string
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Final

__all__ = ["SHOP_KINDS", "shop_string"]

_EPOCH = datetime(2015, 1, 1)


def _moment(rng: random.Random) -> datetime:
    return _EPOCH + timedelta(seconds=rng.randrange(15 * 365 * 86400), microseconds=rng.randrange(10**6))


def _digits(rng: random.Random, count: int) -> str:
    return "".join(rng.choice(string.digits) for _ in range(count))


def _alnum(rng: random.Random, count: int, alphabet: str = string.ascii_letters + string.digits) -> str:
    return "".join(rng.choice(alphabet) for _ in range(count))


def order_id(rng: random.Random) -> str:
    day, n = _moment(rng), rng.randrange(100_000)
    return rng.choice([
        f"ORD-{day:%Y%m%d}{n:05d}", f"A-{n}", f"#{1000 + n}", f"{day:%Y}-{n:06d}", f"SO{rng.randrange(10**10):010d}",
        f"{rng.randrange(10**9):09d}", f"WEB-{day:%y%m%d}-{n:05d}", f"{day:%Y%m%d}{n:05d}",
    ])


def idempotency_key(rng: random.Random) -> str:
    day, n = _moment(rng), rng.randrange(100_000)
    millis = int(day.timestamp() * 1000)
    return rng.choice([
        f"checkout-{day:%Y%m%d}{n:05d}", f"order-{order_id(rng)}-auth", str(uuid.UUID(int=rng.getrandbits(128))),
        f"retry-{millis}-{rng.randrange(10)}", f"{millis}{rng.randrange(1000):03d}", f"cart:{n}:{millis}",
    ])


def provider_reference(rng: random.Random) -> str:
    return rng.choice([
        "pi_" + _alnum(rng, 24), "ch_" + _alnum(rng, 24), "re_" + _alnum(rng, 24),       # Stripe
        _alnum(rng, 17, string.ascii_uppercase + string.digits),                         # PayPal
        _alnum(rng, 8, string.ascii_lowercase + string.digits),                          # Braintree
        "88" + _digits(rng, 14), "85" + _digits(rng, 14),                                # Adyen PSP reference
        _digits(rng, 11),                                                                # Authorize.net transId
        str(uuid.UUID(int=rng.getrandbits(128))),                                        # Klarna, Mollie-like
    ])


def date_or_time(rng: random.Random) -> str:
    moment = _moment(rng)
    return moment.strftime(rng.choice([
        "%Y-%m-%d", "%d.%m.%Y", "%m/%d/%Y", "%Y-%m-%dT%H:%M:%S.%fZ", "%Y-%m-%d %H:%M:%S", "%Y%m%d%H%M%S",
        "%d/%m/%Y %H:%M", "%Y.%m.%d",
    ]))


def phone_number(rng: random.Random) -> str:
    local = _digits(rng, rng.randrange(7, 11))
    country = rng.choice(["1", "44", "49", "33", "39", "34", "31", "41", "43", "45", "46", "47", "48", "61", "81", "86", "91"])
    return rng.choice([
        f"+{country}{local}", f"+{country} {local[:3]} {local[3:]}", f"+{country} ({local[:3]}) {local[3:6]}-{local[6:]}",
        f"0{local}", f"0{local[:3]}/{local[3:]}", f"+{country} {local[:2]} {local[2:6]} {local[6:]}",
        f"00{country} {local}",
    ])


def iban(rng: random.Random) -> str:
    country, length = rng.choice([("DE", 18), ("FR", 23), ("GB", 18), ("NL", 14), ("ES", 20), ("IT", 23), ("AT", 16)])
    bban = _digits(rng, length) if country not in ("GB", "NL") else (
        _alnum(rng, 4, string.ascii_uppercase) + _digits(rng, length - 4))
    numeric = "".join(str(int(char, 36)) for char in bban + country + "00")
    check = 98 - int(numeric) % 97
    plain = f"{country}{check:02d}{bban}"
    return plain if rng.random() < 0.5 else " ".join(plain[i : i + 4] for i in range(0, len(plain), 4))


def amount_text(rng: random.Random) -> str:
    major, minor = rng.randrange(100_000), rng.randrange(100)
    return rng.choice([f"{major}.{minor:02d} EUR", f"{major:,}.{minor:02d}", f"{major:,}.{minor:02d}".replace(",", " "),
                       f"qty {rng.randrange(1, 50)} x {major}.{minor:02d}", f"{major * 100 + minor}"])


def address(rng: random.Random) -> str:
    return rng.choice([
        f"Hauptstraße {rng.randrange(1, 300)}, {rng.randrange(10000, 99999)} Berlin",
        f"{rng.randrange(1, 9999)} Market St, San Francisco, CA {rng.randrange(10000, 99999)}",
        f"Flat {rng.randrange(1, 99)}, {rng.randrange(1, 300)} High Street, London SW1A {rng.randrange(1, 9)}AA",
    ])


def tracking_number(rng: random.Random) -> str:
    usps = "94" + _digits(rng, 20)
    return rng.choice([
        "1Z" + _alnum(rng, 6, string.ascii_uppercase + string.digits) + _digits(rng, 10),     # UPS
        usps, " ".join(usps[i : i + 4] for i in range(0, 22, 4)),                              # USPS
        _digits(rng, 10),                                                                       # DHL Express
        "JJD" + _digits(rng, 18),                                                               # DHL Paket
    ])


def sentence(rng: random.Random) -> str:
    return (f"Order {order_id(rng)} placed {date_or_time(rng)} for {amount_text(rng)}; call {phone_number(rng)}, "
            f"ship to {address(rng)}, tracking {tracking_number(rng)}, ref {provider_reference(rng)}")


SHOP_KINDS: Final[dict[str, Callable[[random.Random], str]]] = {
    "order id": order_id,
    "idempotency key": idempotency_key,
    "provider reference": provider_reference,
    "date or time": date_or_time,
    "phone number": phone_number,
    "IBAN": iban,
    "amount": amount_text,
    "address": address,
    "tracking number": tracking_number,
    "sentence": sentence,
}


def shop_string(rng: random.Random, kind: str | None = None) -> str:
    """One string of the given `kind` (one of `SHOP_KINDS`; any kind when None)."""
    make = SHOP_KINDS[kind] if kind is not None else rng.choice(list(SHOP_KINDS.values()))
    return make(rng)
