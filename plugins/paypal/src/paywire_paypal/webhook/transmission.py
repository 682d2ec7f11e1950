"""The transmission headers of a PayPal webhook, read strictly.

Every delivery carries PAYPAL-TRANSMISSION-ID, -TIME and -SIG, PAYPAL-CERT-URL and
PAYPAL-AUTH-ALGO. Anything missing, oversized, or not in the shape PayPal sends is refused before
any certificate is fetched or any API is asked. The signature must be canonical base64: base64
decoders ignore the unused low bits of the last character, so two spellings would otherwise
verify as one.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from datetime import datetime
from typing import Final, NamedTuple

from paywire import WebhookVerificationError
from paywire_paypal import signature

__all__ = ["Transmission", "read_transmission"]

_ID: Final = re.compile(r"[0-9A-Za-z_-]{1,50}")
_TIME: Final = re.compile(r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,6})?(Z|[+-]\d{2}:\d{2})")
_MAX_SIG: Final = 1024  # base64 of a 4096-bit RSA signature is 684 characters
_MAX_URL: Final = 500  # verify-webhook-signature's limit for cert_url


class Transmission(NamedTuple):
    """One delivery's signature headers, checked for shape (not yet for authenticity)."""

    id: str
    time: str
    at: datetime
    sig: str  # canonical base64, as received
    cert_url: str
    auth_algo: str

    @property
    def signature(self) -> bytes:
        return base64.b64decode(self.sig)

    def signed_string(self, webhook_id: str, body: bytes) -> bytes:
        return signature.signing_string(self.id, self.time, webhook_id, body).encode()


def _refuse(message: str, code: str = "malformed_headers") -> WebhookVerificationError:
    return WebhookVerificationError(message, provider="paypal", code=code)


def _header(headers: Mapping[str, str], name: str) -> str:
    value = headers.get(name.lower())
    if not value:
        raise _refuse(f"the webhook has no {name} header", "missing_header")
    return value


def read_transmission(headers: Mapping[str, str]) -> Transmission:
    """The transmission headers of a delivery; `WebhookVerificationError` if any is absent or malformed."""
    lowered = {str(name).lower(): str(value) for name, value in headers.items()}
    transmission_id = _header(lowered, signature.HEADER_TRANSMISSION_ID)
    if not _ID.fullmatch(transmission_id):
        raise _refuse(f"{signature.HEADER_TRANSMISSION_ID} is not a transmission id")
    time_text = _header(lowered, signature.HEADER_TRANSMISSION_TIME)
    if not _TIME.fullmatch(time_text):
        raise _refuse(f"{signature.HEADER_TRANSMISSION_TIME} is not an RFC 3339 time")
    try:
        at = datetime.fromisoformat(time_text)
    except ValueError:
        raise _refuse(f"{signature.HEADER_TRANSMISSION_TIME} is not a valid time") from None
    sig_text = _header(lowered, signature.HEADER_TRANSMISSION_SIG)
    try:
        sig = base64.b64decode(sig_text, validate=True) if len(sig_text) <= _MAX_SIG else b""
    except (binascii.Error, ValueError):
        sig = b""
    if not sig or base64.b64encode(sig).decode("ascii") != sig_text:
        raise _refuse(f"{signature.HEADER_TRANSMISSION_SIG} is not a canonical base64 signature")
    cert_url = _header(lowered, signature.HEADER_CERT_URL)
    if len(cert_url) > _MAX_URL or not cert_url.isascii() or any(char.isspace() for char in cert_url):
        raise _refuse(f"{signature.HEADER_CERT_URL} is not a URL")
    algo = _header(lowered, signature.HEADER_AUTH_ALGO)
    if algo != signature.AUTH_ALGO:
        raise _refuse(f"{signature.HEADER_AUTH_ALGO} must be {signature.AUTH_ALGO}")
    return Transmission(transmission_id, time_text, at, sig_text, cert_url, algo)
