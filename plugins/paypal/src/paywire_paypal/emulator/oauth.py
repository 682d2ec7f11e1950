"""OAuth 2.0 client credentials: `POST /v1/oauth2/token` and the scopes each API needs.

PayPal answers a repeated token request with the same token while it is valid (its `expires_in`
counting down), and a new one once it has expired; the emulator does the same, so a client's
token cache and its handling of a token that expires mid-flow can both be tested
(`expire_tokens()` ends every token now).
"""

from __future__ import annotations

import base64
import binascii
import hmac
import secrets
from typing import Any

from paywire.testing.emulator import EmulatorRequest, Reply, route
from paywire_paypal.emulator import ids
from paywire_paypal.emulator.base import PayPalApp
from paywire_paypal.emulator.model import AccessToken

__all__ = ["ALL_SCOPES", "ORDERS", "PAYMENTS", "REFUNDS", "VAULT", "VAULT_SETUP", "WEBHOOKS", "OAuthAPI"]

# The scopes each API's operations accept (from the `security` of PayPal's OpenAPI files).
ORDERS = (
    "https://uri.paypal.com/services/payments/payment",
    "https://uri.paypal.com/services/payments/orders/client-side-integration",
)
PAYMENTS = ("https://uri.paypal.com/services/payments/payment/authcapture",)
REFUNDS = ("https://uri.paypal.com/services/payments/refund",)
VAULT = ("https://uri.paypal.com/services/vault/payment-tokens/readwrite",)
VAULT_SETUP = (
    "https://uri.paypal.com/services/vault/payment-tokens/read",
    "https://uri.paypal.com/services/vault/payment-tokens/readwrite",
)
WEBHOOKS = (
    "https://uri.paypal.com/services/applications/webhooks",
    "https://uri.paypal.com/services/applications/verify-webhook-signature",
)
ALL_SCOPES = frozenset(
    (
        *ORDERS,
        *PAYMENTS,
        *REFUNDS,
        *VAULT,
        *VAULT_SETUP,
        *WEBHOOKS,
        "https://uri.paypal.com/services/payments/realtimepayment",
        "https://uri.paypal.com/services/payments/reversepayment",
        "openid",
    )
)
APP_ID = "APP-80W284485P519543T"


class OAuthAPI(PayPalApp):
    @route("POST", r"/v1/oauth2/token")
    def oauth_token(self, request: EmulatorRequest) -> Reply:
        if not self._client_authenticated(request):
            return Reply.json(401, {"error": "invalid_client", "error_description": "Client Authentication failed"})
        form = dict(request.form())
        grant = form.get("grant_type")
        if not grant:
            return Reply.json(400, {"error": "unsupported_grant_type", "error_description": "Grant Type is NULL"})
        if grant != "client_credentials":
            return Reply.json(400, {"error": "unsupported_grant_type", "error_description": "unsupported grant_type"})
        requested = frozenset(form.get("scope", "").split())
        scopes = ALL_SCOPES & requested if requested else ALL_SCOPES
        if not scopes:
            return Reply.json(
                400, {"error": "invalid_scope", "error_description": "No permissions to set target_client_id"}
            )
        now = self.now()
        with self.lock:
            token = next(
                (t for t in self.tokens.values() if t.scopes == scopes and t.expires_at > now),
                None,
            )
            if token is None:
                token = AccessToken("A21AA" + secrets.token_urlsafe(60), scopes, now + self.token_ttl)
                self.tokens[token.value] = token
        payload: dict[str, Any] = {
            "scope": " ".join(sorted(token.scopes)),
            "access_token": token.value,
            "token_type": "Bearer",
            "app_id": APP_ID,
            "expires_in": max(0, int(token.expires_at - now)),
            "nonce": f"{ids.timestamp(now)}{secrets.token_urlsafe(32)}",
        }
        return Reply.json(200, payload)

    def _client_authenticated(self, request: EmulatorRequest) -> bool:
        kind, _, encoded = (request.header("authorization") or "").partition(" ")
        if kind.lower() != "basic":
            return False
        try:
            client_id, _, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
        except (binascii.Error, UnicodeDecodeError):
            return False
        return hmac.compare_digest(client_id, self.client_id) and hmac.compare_digest(secret, self._client_secret)

    def expire_tokens(self) -> None:
        """End every access token now: the next API call with one gets PayPal's 401 invalid_token."""
        now = self.now()
        with self.lock:
            for token in self.tokens.values():
                token.expires_at = min(token.expires_at, now)
