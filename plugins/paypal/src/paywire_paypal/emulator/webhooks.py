"""Webhooks v1: the signing certificate's URL and `POST /v1/notifications/verify-webhook-signature`.

Verification is real: the event given is serialised the way the emulator sends events, its CRC
goes into PayPal's signed string, and the signature must verify with the emulator's certificate
(the one `PAYPAL-CERT-URL` points at). Any change to the event, the ids, the time or the
signature gives FAILURE.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from paywire.testing.emulator import EmulatorRequest, Reply, route
from paywire_paypal import signature
from paywire_paypal.emulator.base import PayPalApp
from paywire_paypal.emulator.errors import PayPalError, not_found
from paywire_paypal.emulator.events import event_body
from paywire_paypal.emulator.oauth import WEBHOOKS

__all__ = ["WebhooksAPI"]

_REQUIRED = ("auth_algo", "cert_url", "transmission_id", "transmission_sig", "transmission_time", "webhook_id")


class WebhooksAPI(PayPalApp):
    @route("GET", r"/v1/notifications/certs/(?P<name>[^/]+)")
    def get_certificate(self, request: EmulatorRequest) -> Reply:
        if request.path != self.signer.cert_path:
            raise not_found("cert", request.params["name"])
        return Reply(200, self.certificate_pem, {"Content-Type": "application/x-pem-file"})

    @route("POST", r"/v1/notifications/verify-webhook-signature")
    def verify_webhook_signature(self, request: EmulatorRequest) -> Reply:
        self.authenticate(request, WEBHOOKS)
        body = self.json_body(request)
        for key in _REQUIRED:
            if not isinstance(body.get(key), str) or not body[key]:
                raise PayPalError.of("MISSING_REQUIRED_PARAMETER", field=f"/{key}")
        event = body.get("webhook_event")
        if not isinstance(event, dict):
            raise PayPalError.of("MISSING_REQUIRED_PARAMETER", field="/webhook_event")
        status = "SUCCESS" if self.verify(body, event) else "FAILURE"
        return Reply.json(200, {"verification_status": status})

    def verify(self, fields: dict[str, Any], event: dict[str, Any]) -> bool:
        """True when the transmission `fields` are a valid signature of `event` by this emulator."""
        if urlsplit(fields["cert_url"]).path != self.signer.cert_path:
            return False
        return signature.verify_transmission(
            self.certificate_pem,
            fields["transmission_sig"],
            fields["transmission_id"],
            fields["transmission_time"],
            fields["webhook_id"],
            event_body(event),
            fields["auth_algo"],
        )
