"""Acme webhooks: `Acme-Signature` is the hex HMAC-SHA256 of "<Acme-Timestamp>.<raw body>"."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from collections.abc import Mapping

from paywire import EventKind, GatewaySettings, Money, WebhookEvent
from paywire.errors import WebhookVerificationError

TOLERANCE = 300
_KINDS = {
    "payment.authorized": EventKind.AUTHORIZED,
    "payment.captured": EventKind.CAPTURED,
    "payment.refunded": EventKind.REFUNDED,
    "payment.voided": EventKind.VOIDED,
    "payment.failed": EventKind.FAILED,
}


def sign(secret: str, timestamp: int, body: bytes) -> str:
    return hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()


def build_verifier(settings: GatewaySettings):  # type: ignore[no-untyped-def]
    secret = settings.secret("webhook_secret")

    def verify(headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        try:
            timestamp = int(headers["acme-timestamp"])
            signature = headers["acme-signature"]
        except (KeyError, ValueError):
            raise WebhookVerificationError("Acme-Timestamp and Acme-Signature headers are required", provider="acme") from None
        if abs(time.time() - timestamp) > TOLERANCE:
            raise WebhookVerificationError("webhook timestamp is outside the tolerance", provider="acme")
        if not hmac.compare_digest(sign(secret.reveal(), timestamp, body).encode(), signature.encode("utf-8", "replace")):
            raise WebhookVerificationError("webhook signature does not match", provider="acme")
        try:
            event = json.loads(body)
            payment = event["data"]
            return WebhookEvent(
                provider="acme", id=event["id"], type=event["type"], kind=_KINDS.get(event["type"], EventKind.OTHER),
                reference=payment["id"], references={"payment": payment["id"]},
                amount=Money.minor_units(int(payment["last_amount"]), payment["currency"]),
                data=event,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookVerificationError(f"webhook payload is malformed: {exc}", provider="acme") from None

    return verify
