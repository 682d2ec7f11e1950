"""Offline verification: the signature checked here, against PayPal's certificate.

PayPal signs `transmission id|transmission time|webhook id|CRC32 of the raw body` with
SHA256withRSA. The certificate comes from PAYPAL-CERT-URL, fetched only where `CertificateTrust`
allows and cached; the webhook id is this method's own, so an event signed for another webhook
(another shop, another app) does not verify. Only the raw bytes received are checked.

The signature binds only a CRC32 of the body, so an event that moves money is then confirmed by
reading its object from PayPal (`confirm`); the others are taken as they come.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding

from paywire import Secret, WebhookEvent, WebhookVerificationError
from paywire_paypal.webhook.certificates import CertificateStore
from paywire_paypal.webhook.events import read_event
from paywire_paypal.webhook.transmission import read_transmission

__all__ = ["OfflineVerifier", "check_time"]


def check_time(at: datetime, tolerance: float) -> None:
    """A transmission older (or further ahead) than `tolerance` seconds is refused as a replay."""
    if abs((datetime.now(UTC) - at).total_seconds()) > tolerance:
        raise WebhookVerificationError("the webhook's transmission time is outside the tolerance",
                                       provider="paypal", code="stale_transmission")


class OfflineVerifier:
    """A `WebhookVerifier` checking PayPal's signature locally."""

    def __init__(self, webhook_id: Secret, certificates: CertificateStore, tolerance: float,
                 confirm: Callable[[Mapping[str, Any]], WebhookEvent]) -> None:
        self._webhook_id = webhook_id
        self.certificates = certificates
        self.tolerance = tolerance
        self.confirm = confirm

    def __repr__(self) -> str:
        return f"OfflineVerifier({self.certificates!r}, tolerance={self.tolerance})"

    def __call__(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        transmission = read_transmission(headers)
        check_time(transmission.at, self.tolerance)
        key = self.certificates.public_key(transmission.cert_url)
        try:
            key.verify(transmission.signature, transmission.signed_string(self._webhook_id.reveal(), body),
                       padding.PKCS1v15(), hashes.SHA256())
        except InvalidSignature:
            raise WebhookVerificationError(
                "the webhook's signature does not match its body, transmission and this method's webhook id",
                provider="paypal", code="bad_signature",
            ) from None
        return self.confirm(read_event(body))
