"""Stripe's webhook signature scheme, as one pure function both sides share.

Stripe signs each delivery with the endpoint's secret (`whsec_...`, used as-is as the HMAC key):
`Stripe-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256 of "<t>.<raw body>">`. The emulator signs
with it; the plugin's verifier recomputes it and compares in constant time, so the two cannot drift.
"""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["SCHEME", "compute_signature", "signature_header"]

SCHEME = "v1"


def compute_signature(secret: str, timestamp: int, payload: bytes) -> str:
    """The hex `v1` signature of `payload` sent at `timestamp` (unix seconds) under `secret`."""
    signed = str(int(timestamp)).encode("ascii") + b"." + payload
    return hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()


def signature_header(secret: str, timestamp: int, payload: bytes) -> str:
    """The full `Stripe-Signature` header value for `payload` sent at `timestamp`."""
    return f"t={int(timestamp)},{SCHEME}={compute_signature(secret, timestamp, payload)}"
