"""Identifiers and timestamps in the formats PayPal uses, so clients' parsers see familiar shapes."""

from __future__ import annotations

import secrets
import string
from datetime import UTC, datetime

_UPPER = string.ascii_uppercase + string.digits
_LOWER = string.ascii_lowercase + string.digits


def resource_id() -> str:
    """17 upper-case alphanumerics, like order, authorization, capture and refund ids ("5O190127TN364715T")."""
    return "".join(secrets.choice(_UPPER) for _ in range(17))


def payment_token_id() -> str:
    """A vault payment token id ("8kk8451t")."""
    return "".join(secrets.choice(_LOWER) for _ in range(8))


def payer_id() -> str:
    """A PayPal account id: 13 characters from PayPal's alphabet (no 0, 1, I, O)."""
    alphabet = "23456789ABCDEFGHJKLMNPQRSTUVWXYZ"
    return "".join(secrets.choice(alphabet) for _ in range(13))


def customer_id() -> str:
    return "".join(secrets.choice(string.ascii_letters + string.digits) for _ in range(10))


def debug_id() -> str:
    """The correlation id of one response (`Paypal-Debug-Id` header and `debug_id` field)."""
    return secrets.token_hex(7)[:13]


def event_id() -> str:
    return f"WH-{resource_id()}-{resource_id()}"


def timestamp(epoch: float) -> str:
    """RFC 3339 in UTC with second precision, as in PayPal's create_time fields."""
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
