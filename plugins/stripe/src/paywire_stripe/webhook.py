"""Verifying Stripe's webhooks before anything reads them.

`Stripe-Signature: t=<unix seconds>,v1=<hex>[,v1=<hex>...]` carries the HMAC-SHA256 of
"<t>.<raw body>" under the endpoint's secret; Stripe sends one v1 per active secret while a secret
is being rolled. A delivery verifies when some v1 matches some configured secret (compared in
constant time) and `t` is within the tolerance of now, either way: an old delivery may be a
replay, a future one a forged clock. Anything else is refused with `WebhookVerificationError`
before the body is parsed.

Settings: the `webhook_secret` credential (several comma-separated during a rotation), the
`webhook_tolerance` option (seconds, default 300) and `webhook_max_bytes` (default 1 MiB).

A verified event is Stripe's word, with one exception read from Stripe: a refund event that may be
Stripe's booking of a released authorization (`releases`).
"""

from __future__ import annotations

import hmac
import time
from collections.abc import Callable, Mapping, Sequence

from paywire import ConfigurationError, GatewaySettings, OwnCommands, Secret, WebhookEvent, WebhookVerificationError
from paywire_stripe.events import parse_event
from paywire_stripe.signature import SCHEME, compute_signature

__all__ = ["DEFAULT_TOLERANCE", "MAX_BYTES", "StripeWebhookVerifier", "build_verifier", "parse_signature"]

DEFAULT_TOLERANCE = 300
MAX_BYTES = 1024 * 1024
_MAX_HEADER = 4096  # a timestamp and a few signatures; more is not a Stripe header


def _refuse(message: str, code: str) -> WebhookVerificationError:
    return WebhookVerificationError(message, provider="stripe", code=code)


def parse_signature(header: str | None) -> tuple[int, list[str]]:
    """The timestamp and the v1 signatures of a `Stripe-Signature` value; other schemes are skipped.

    Exactly one `t` and at least one v1 are required, and every part must be `name=value`.
    """
    if not header:
        raise _refuse("the Stripe-Signature header is missing", "signature_missing")
    if len(header) > _MAX_HEADER or not header.isascii():
        raise _refuse("the Stripe-Signature header is malformed", "signature_malformed")
    timestamps: list[str] = []
    signatures: list[str] = []
    for part in header.split(","):
        name, equals, value = part.partition("=")
        if not equals or not name or not value:
            raise _refuse("the Stripe-Signature header is malformed", "signature_malformed")
        if name == "t":
            timestamps.append(value)
        elif name == SCHEME:
            signatures.append(value)
    if len(timestamps) != 1 or not timestamps[0].isdigit() or len(timestamps[0]) > 12:
        raise _refuse("the Stripe-Signature header needs exactly one timestamp t=<unix seconds>", "signature_malformed")
    if not signatures:
        raise _refuse(f"the Stripe-Signature header has no {SCHEME} signature", "signature_malformed")
    return int(timestamps[0]), signatures


class StripeWebhookVerifier:
    """A `WebhookVerifier` for one endpoint: verifies, then parses into a `WebhookEvent`.

    :param secrets: the endpoint's signing secrets (`whsec_...`); any of them may have signed.
    :param tolerance: seconds a delivery's timestamp may be away from now.
    :param max_bytes: the largest body read.
    :param clock: the current Unix time (tests move it).
    :param confirm: what a parsed event goes through before it is reported: a configured method's
        verifier tells Stripe's bookings of released authorizations from refunds (`releases`).
    """

    def __init__(self, secrets: Sequence[Secret], *, tolerance: float = DEFAULT_TOLERANCE,
                 max_bytes: int = MAX_BYTES, clock: Callable[[], float] = time.time,
                 confirm: Callable[[WebhookEvent], WebhookEvent] | None = None) -> None:
        if not secrets:
            raise ConfigurationError("a Stripe webhook verifier needs at least one signing secret", provider="stripe")
        self._secrets = tuple(secrets)
        self.tolerance = tolerance
        self.max_bytes = max_bytes
        self._clock = clock
        self._confirm = confirm

    def __repr__(self) -> str:
        return f"StripeWebhookVerifier({len(self._secrets)} secret(s), tolerance={self.tolerance}s)"

    def __call__(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        self.verify(headers, body)
        event = parse_event(body)
        return self._confirm(event) if self._confirm is not None else event

    def verify(self, headers: Mapping[str, str], body: bytes) -> None:
        """Raise `WebhookVerificationError` unless `body` was signed by Stripe for this endpoint, lately."""
        if not isinstance(body, bytes):
            raise _refuse("the webhook body must be the raw bytes received", "body_not_bytes")
        if len(body) > self.max_bytes:
            raise _refuse(f"the webhook body of {len(body)} bytes exceeds {self.max_bytes}", "too_large")
        header = next((value for name, value in headers.items() if name.lower() == "stripe-signature"), None)
        timestamp, signatures = parse_signature(header)
        expected = [compute_signature(secret.reveal(), timestamp, body).encode() for secret in self._secrets]
        offered = [signature.encode() for signature in signatures]
        if not any(hmac.compare_digest(want, given) for want in expected for given in offered):
            raise _refuse("no Stripe-Signature signature matches the body under this endpoint's secret",
                          "signature_mismatch")
        age = self._clock() - timestamp
        if age > self.tolerance:
            raise _refuse(f"the webhook was signed {int(age)} s ago, more than the {self.tolerance} s tolerated",
                          "timestamp_stale")
        if -age > self.tolerance:
            raise _refuse(f"the webhook is signed {int(-age)} s in the future, more than the {self.tolerance} s "
                          "tolerated", "timestamp_future")


def build_verifier(settings: GatewaySettings) -> StripeWebhookVerifier:
    """The verifier of a configured method, from its `webhook_secret` and options."""
    from paywire_stripe.commands import build_commands
    from paywire_stripe.releases import ReleaseFilter

    secrets = [Secret(part.strip()) for part in settings.secret("webhook_secret").reveal().split(",") if part.strip()]
    return StripeWebhookVerifier(
        secrets,
        tolerance=settings.positive("webhook_tolerance", DEFAULT_TOLERANCE),
        max_bytes=int(settings.positive("webhook_max_bytes", MAX_BYTES, whole=True)),
        confirm=ReleaseFilter(OwnCommands(settings, build_commands)),
    )
