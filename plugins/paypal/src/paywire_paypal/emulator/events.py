"""Webhook events as PayPal sends them, and the RSA identity that signs them.

The emulator serialises an event once, compactly, in its own key order; the signature's CRC is
over those bytes. `verify-webhook-signature` receives the event as parsed JSON and serialises it
the same way, so an untouched event verifies and any change to it does not.
"""

from __future__ import annotations

import base64
import copy
import datetime
import functools
import hashlib
import json
import uuid
from collections.abc import Mapping
from typing import Any

import attrs
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.x509.oid import NameOID

from paywire_paypal import signature
from paywire_paypal.emulator import ids

__all__ = ["Signer", "build_event", "event_body"]


def event_body(event: Mapping[str, Any]) -> bytes:
    """The canonical bytes of an event: compact JSON in the event's own key order."""
    return json.dumps(event, separators=(",", ":")).encode()


def build_event(
    event_type: str,
    resource_type: str,
    summary: str,
    resource: dict[str, Any],
    resource_version: str,
    now: float,
    base_url: str,
) -> dict[str, Any]:
    event_id = ids.event_id()
    created = datetime.datetime.fromtimestamp(now, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
    href = f"{base_url}/v1/notifications/webhooks-events/{event_id}"
    return {
        "id": event_id,
        "event_version": "1.0",
        "create_time": created,
        "resource_type": resource_type,
        "resource_version": resource_version,
        "event_type": event_type,
        "summary": summary,
        "resource": copy.deepcopy(resource),  # a snapshot: later changes to the state must not alter it
        "links": [
            {"href": href, "rel": "self", "method": "GET"},
            {"href": f"{href}/resend", "rel": "resend", "method": "POST"},
        ],
    }


@attrs.frozen
class Signer:
    """The private key and X.509 certificate webhooks are signed with, and where the cert is served."""

    key: rsa.RSAPrivateKey = attrs.field(repr=False)
    certificate_pem: bytes = attrs.field(repr=False)

    @classmethod
    def create(cls, key_pem: bytes | None = None, certificate_pem: bytes | None = None) -> Signer:
        """Use the given PEM key and certificate, or a generated pair (shared within the process)."""
        if key_pem is None and certificate_pem is None:
            return _generated()
        if key_pem is None or certificate_pem is None:
            raise ValueError("give both signing_key_pem and certificate_pem, or neither")
        key = serialization.load_pem_private_key(key_pem, password=None)
        if not isinstance(key, rsa.RSAPrivateKey):
            raise ValueError("PayPal signs webhooks with SHA256withRSA: the signing key must be an RSA key")
        return cls(key, certificate_pem)

    @property
    def cert_path(self) -> str:
        """A path shaped like PayPal's (/v1/notifications/certs/CERT-360caa42-fca2a594-a5cafa77)."""
        digest = hashlib.sha256(self.certificate_pem).hexdigest()
        return f"/v1/notifications/certs/CERT-{digest[:8]}-{digest[8:16]}-{digest[16:24]}"

    def sign(
        self, event: Mapping[str, Any], webhook_id: str, cert_url: str, now: float
    ) -> tuple[bytes, dict[str, str]]:
        body = event_body(event)
        transmission_id = str(uuid.uuid4())
        transmission_time = ids.timestamp(now)
        message = signature.signing_string(transmission_id, transmission_time, webhook_id, body).encode()
        sig = base64.b64encode(self.key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()
        headers = {
            "Content-Type": "application/json",
            signature.HEADER_TRANSMISSION_ID: transmission_id,
            signature.HEADER_TRANSMISSION_TIME: transmission_time,
            signature.HEADER_TRANSMISSION_SIG: sig,
            signature.HEADER_CERT_URL: cert_url,
            signature.HEADER_AUTH_ALGO: signature.AUTH_ALGO,
        }
        return body, headers


@functools.cache
def _generated() -> Signer:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "PayPal emulator webhook signing")])
    now = datetime.datetime.now(datetime.UTC)
    certificate = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=3650))
        .sign(key, hashes.SHA256())
    )
    return Signer(key, certificate.public_bytes(serialization.Encoding.PEM))
