"""Braintree webhooks: a form-encoded POST of bt_signature and bt_payload.

The signature (see `signature`) is checked in constant time before anything is parsed; the body
size, its form and the payload's alphabet are checked before that. The HMAC binds the exact
payload, the notification's timestamp included, so a verified event is trusted as it comes;
notifications older than `TOLERANCE` are refused (Braintree retries a failed delivery for a day).
"""

from __future__ import annotations

import base64
import binascii
import re
import time
from collections.abc import Mapping
from datetime import datetime
from urllib.parse import parse_qsl

from paywire import GatewaySettings, WebhookEvent, WebhookVerifier
from paywire.errors import InvalidRequest, WebhookVerificationError
from paywire_braintree.notification import parse_notification
from paywire_braintree.signature import matches

__all__ = ["MAX_BODY", "TOLERANCE", "build_verifier"]

MAX_BODY = 256 * 1024
TOLERANCE = 26 * 3600
_PAYLOAD = re.compile(rb"[A-Za-z0-9+=/\n]+")
_FORM = "application/x-www-form-urlencoded"


def _refuse(message: str) -> WebhookVerificationError:
    return WebhookVerificationError(message, provider="braintree")


def _form(body: bytes) -> list[tuple[str, str]] | None:
    """The form's pairs, or None. The parser's own errors quote the body (bt_signature names the
    public key), so none of them is kept as the context of the refusal."""
    try:
        return parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=True, max_num_fields=4)
    except (UnicodeDecodeError, ValueError):
        return None


def _notification(payload: bytes) -> tuple[WebhookEvent, datetime] | None:
    try:
        return parse_notification(base64.b64decode(payload.replace(b"\n", b""), validate=True))
    # InvalidRequest: an amount Money refuses; LookupError: an XML declaration naming an unknown encoding.
    except (binascii.Error, ValueError, SyntaxError, LookupError, InvalidRequest):
        return None


def _fields(headers: Mapping[str, str], body: bytes) -> tuple[str, bytes]:
    if len(body) > MAX_BODY:
        raise _refuse(f"the webhook body is larger than {MAX_BODY} bytes")
    content_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != _FORM:
        raise _refuse(f"Braintree posts webhooks as {_FORM}")
    pairs = _form(body)
    if pairs is None:
        raise _refuse("the webhook body is not a form of bt_signature and bt_payload")
    names = [name for name, _ in pairs]
    if sorted(names) != ["bt_payload", "bt_signature"]:
        raise _refuse("the webhook body must hold bt_signature and bt_payload, once each")
    fields = dict(pairs)
    payload = fields["bt_payload"].encode("ascii", "replace")
    if not _PAYLOAD.fullmatch(payload):
        raise _refuse("bt_payload holds characters outside base64")
    return fields["bt_signature"], payload


def build_verifier(settings: GatewaySettings) -> WebhookVerifier:
    public_key = settings.secret("public_key").reveal()
    private_key = settings.secret("private_key")

    def verify(headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        signature, payload = _fields(headers, body)
        if not matches(signature, payload, public_key, private_key.reveal()):
            raise _refuse("bt_signature does not sign bt_payload with this method's key pair")
        parsed = _notification(payload)
        if parsed is None:
            raise _refuse("the notification is malformed: not base64 of one <notification> (entities refused)")
        event, at = parsed
        if abs(time.time() - at.timestamp()) > TOLERANCE:
            raise _refuse("the notification's timestamp is outside the tolerance")
        return event

    return verify
