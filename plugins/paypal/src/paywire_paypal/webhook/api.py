"""Verification by PayPal: `POST /v1/notifications/verify-webhook-signature`.

The transmission headers, this method's webhook id and the event go to PayPal, which answers
SUCCESS or FAILURE. The call runs as the pool's `verify_webhook_signature` command, on the
verifier's own pool (`paywire.OwnCommands`). PayPal checks the event as JSON it re-serialises, so this
mode fits events whose bytes PayPal produced unchanged; headers, the transmission time and the
certificate URL are checked here first, exactly as offline, so a malformed or foreign webhook
costs no call.

PayPal receives the whole event here, but what it checks is the same signature over
`transmission id|time|webhook id|CRC32(event)`: a SUCCESS binds the event's CRC32, not the event.
(Developers see this as "re-serialised events fail": a changed CRC32 fails, a kept one passes.)
So this mode confirms the events that move money by reading their object from PayPal, exactly
as the offline mode does (`confirm`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any, cast

from paywire import (
    OwnCommands,
    PaywireError,
    Response,
    Secret,
    Subject,
    WebhookEvent,
    WebhookVerificationError,
)
from paywire_paypal.webhook.certificates import CertificateTrust
from paywire_paypal.webhook.events import load_body, read_event
from paywire_paypal.webhook.offline import check_time
from paywire_paypal.webhook.transmission import read_transmission

__all__ = ["COMMAND", "ApiVerifier", "verification_fields", "verification_request"]

COMMAND = "verify_webhook_signature"
_FIELDS = ("auth_algo", "cert_url", "transmission_id", "transmission_sig", "transmission_time", "webhook_id",
           "webhook_event")


def verification_request(subject: Subject) -> dict[str, Any]:
    """The request body, from the subject's options (the fields PayPal's endpoint names)."""
    return {name: subject.options[name] for name in _FIELDS}


def verification_fields(subject: Subject, response: Response) -> dict[str, Any]:
    """PayPal's verdict as the result's state: "SUCCESS" or "FAILURE"."""
    return {"state": str(response.data.get("verification_status")), "raw": None}


class ApiVerifier:
    """A `WebhookVerifier` asking PayPal (see the module docstring)."""

    def __init__(self, pool: OwnCommands, webhook_id: Secret, trust: CertificateTrust, tolerance: float,
                 confirm: Callable[[Mapping[str, Any]], WebhookEvent]) -> None:
        self._pool = pool
        self._webhook_id = webhook_id
        self.trust = trust
        self.tolerance = tolerance
        self.confirm = confirm

    def __repr__(self) -> str:
        return f"ApiVerifier({self.trust!r}, tolerance={self.tolerance})"

    def __call__(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        transmission = read_transmission(headers)
        check_time(transmission.at, self.tolerance)
        self.trust.check(transmission.cert_url)
        event = load_body(body)
        if not isinstance(event, Mapping):
            raise WebhookVerificationError("the webhook body is not a JSON object in the shape of PayPal's events",
                                           provider="paypal", code="malformed_event")
        fields: dict[str, Any] = {
            "auth_algo": transmission.auth_algo,
            "cert_url": transmission.cert_url,
            "transmission_id": transmission.id,
            "transmission_sig": transmission.sig,
            "transmission_time": transmission.time,
            "webhook_id": self._webhook_id.reveal(),
            "webhook_event": event,
        }
        subject = Subject(options=cast("dict[str, str]", fields))
        try:
            verdict = self._pool.run(COMMAND, subject).state
        except PaywireError as error:
            raise WebhookVerificationError(
                f"PayPal's verify-webhook-signature could not be asked ({type(error).__name__}: {error.code})",
                provider="paypal", code="verification_unavailable", retryable=error.retryable,
            ) from error
        if verdict != "SUCCESS":
            raise WebhookVerificationError("PayPal did not verify the webhook's signature", provider="paypal",
                                           code="bad_signature")
        return self.confirm(read_event(body))

    def close(self) -> None:
        self._pool.close()
