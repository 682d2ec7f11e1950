"""How every request reaches Stripe: form bodies, Bearer auth with the secret key, a pinned API
version, and the caller's idempotency key in `Idempotency-Key`.

The version is pinned so that Stripe's answers keep the shape this plugin reads, whatever the
account's default version is; it is the version of the OpenAPI description the requests are
checked against.
"""

from __future__ import annotations

from collections.abc import Callable

from paywire import FORM, BearerAuth, GatewaySettings, TransferFactory

__all__ = ["API_VERSION", "IDEMPOTENCY_HEADER", "Endpoint", "endpoints"]

API_VERSION = "2023-08-16"
IDEMPOTENCY_HEADER = "Idempotency-Key"
USER_AGENT = "paywire-stripe"

Endpoint = Callable[[str, str], TransferFactory]
"""Makes the transfer factory of one endpoint from its method and path template."""


def endpoints(settings: GatewaySettings) -> Endpoint:
    """Transfer factories for the endpoints of one configured method, sharing its key and timeouts."""
    auth = BearerAuth(settings.secret("secret_key"))
    headers = {"Stripe-Version": API_VERSION, "User-Agent": USER_AGENT}

    def endpoint(method: str, path: str) -> TransferFactory:
        return TransferFactory(
            settings.base_url,
            method,
            path,
            auth=auth,
            converter=FORM,
            idempotency_header=IDEMPOTENCY_HEADER,
            headers=headers,
            timeout=settings.timeout,
        )

    return endpoint
