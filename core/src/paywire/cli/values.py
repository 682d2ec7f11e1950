"""Argument value types of the command line: a bad value is a usage error (exit 2) naming what is
allowed, before any configuration or ledger is opened."""

from __future__ import annotations

import argparse
import math

from paywire.countries import check_country
from paywire.errors import InvalidRequest
from paywire.money import exponent_of
from paywire.service.inputs import PAYMENT_STATES, TRANSACTION_STATUSES, require_key

__all__ = ["PAYMENT_STATES", "TRANSACTION_STATUSES", "country", "currency", "idempotency_key", "port", "positive_int",
           "seconds"]

_LARGEST = 2**63 - 1  # the ledgers' BIGINT



def country(value: str) -> str:
    """An ISO 3166-1 alpha-2 country code, upper case (`DE`)."""
    try:
        return check_country(value)
    except InvalidRequest as error:
        raise argparse.ArgumentTypeError(error.message) from None


def currency(value: str) -> str:
    """An ISO 4217 currency code, upper case (`EUR`)."""
    try:
        exponent_of(value)
    except InvalidRequest as error:
        raise argparse.ArgumentTypeError(error.message) from None
    return value


def idempotency_key(value: str) -> str:
    """An idempotency key as the payment service takes it: not empty or blank (`"$KEY"` with KEY
    unset is a mistake, not "no key"), printable ASCII."""
    try:
        require_key(value)
    except InvalidRequest as error:
        raise argparse.ArgumentTypeError(error.message) from None
    return value


def positive_int(value: str) -> int:
    """A whole number above zero (a `--limit`)."""
    if not value.isascii() or not value.isdigit() or int(value) < 1:
        raise argparse.ArgumentTypeError(f"{value!r} is not a whole number above zero")
    if int(value) > _LARGEST:
        raise argparse.ArgumentTypeError(f"{value!r} is too large (at most {_LARGEST})")
    return int(value)


def port(value: str) -> int:
    """A TCP port to listen on, 0 to 65535 (0: any free port)."""
    if not value.isascii() or not value.isdigit() or int(value) > 65535:
        raise argparse.ArgumentTypeError(f"{value!r} is not a port number (0 to 65535)")
    return int(value)


def seconds(value: str) -> float:
    """A finite number of seconds above zero (`--interval`, a backoff)."""
    try:
        number = float(value)
    except ValueError:
        number = math.nan
    if not math.isfinite(number) or number <= 0:
        raise argparse.ArgumentTypeError(f"{value!r} is not a number of seconds above zero")
    return number
