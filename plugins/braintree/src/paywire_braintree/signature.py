"""Braintree's webhook signature: bt_signature is "<public key>|<hex HMAC-SHA1 of bt_payload>",
keyed with SHA1 of the private key; during a key rotation several pairs arrive joined by "&"."""

from __future__ import annotations

import hashlib
import hmac

__all__ = ["matches", "sign"]


def _digest(private_key: str, payload: bytes) -> str:
    # SHA-1 is Braintree's choice for this signature, not ours: the scheme is fixed by the provider.
    return hmac.new(hashlib.sha1(private_key.encode()).digest(), payload, hashlib.sha1).hexdigest()  # noqa: S324


def sign(public_key: str, private_key: str, payload: bytes) -> str:
    return f"{public_key}|{_digest(private_key, payload)}"


def matches(signature: str, payload: bytes, public_key: str, private_key: str) -> bool:
    """Whether the pair for `public_key` signs `payload` (or `payload` plus the newline a web
    framework may have stripped, as Braintree's SDKs accept). Compared in constant time."""
    pairs = [pair.split("|", 1) for pair in signature.split("&") if "|" in pair]
    ours = [digest for key, digest in pairs if hmac.compare_digest(key.encode(), public_key.encode())]
    if len(ours) != 1:
        return False
    given = ours[0].encode("ascii", "replace")
    return any(hmac.compare_digest(_digest(private_key, body).encode(), given) for body in (payload, payload + b"\n"))
