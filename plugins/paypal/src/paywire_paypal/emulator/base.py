"""The plumbing every PayPal route shares: state, debug ids, errors, auth, PayPal-Request-Id, Prefer.

`PayPalApp` holds the state and the helpers; the API modules (oauth, orders, payments, vault,
webhooks) are mixins over it and `app.PayPalEmulator` puts them together.
"""

from __future__ import annotations

import contextvars
import json
import ssl
import time
from collections.abc import Callable, Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final

import attrs

from paywire.testing.emulator import EmulatorApp, EmulatorRequest, EmulatorServer, IdempotencyStore, Reply
from paywire_paypal.emulator import events, ids
from paywire_paypal.emulator.errors import PayPalError, issue_status
from paywire_paypal.emulator.model import (
    AccessToken,
    Authorization,
    Capture,
    Order,
    PaymentToken,
    Refund,
    SetupToken,
)

__all__ = ["OVERAGE_MAX", "PayPalApp"]

# The most an overage adds above an authorization, by currency, in minor units: PayPal's USD 75
# ("up to 115% of or $75 USD more than the original authorized amount, whichever is less"). PayPal
# converts it for other currencies; the emulator converts none, so they have the percentage alone
# unless given.
OVERAGE_MAX: Final[Mapping[str, int]] = MappingProxyType({"USD": 7500})

_DEBUG_ID: contextvars.ContextVar[str] = contextvars.ContextVar("paypal_debug_id", default="")


class PayPalApp(EmulatorApp):
    """State and shared helpers of the PayPal emulator (see `PayPalEmulator` for the public API)."""

    def __init__(
        self,
        *,
        client_id: str,
        client_secret: str,
        webhook_id: str | None = None,
        token_ttl: float = 32400,
        capture_overage_percent: int = 115,
        capture_overage_max: Mapping[str, int] = OVERAGE_MAX,
        max_captures: int | None = None,
        request_id_ttl: float = 6 * 3600,
        public_url: str | None = None,
        webhook_url: str | None = None,
        signing_key_pem: bytes | None = None,
        certificate_pem: bytes | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        super().__init__()
        self.client_id = client_id
        self._client_secret = client_secret
        self.webhook_id = webhook_id or ids.resource_id()
        self.token_ttl = token_ttl
        self.capture_overage_percent = capture_overage_percent
        self.capture_overage_max = dict(capture_overage_max)
        self.max_captures = max_captures
        self.public_url = public_url.rstrip("/") if public_url else None
        self.webhook_url = webhook_url
        self.clock = clock
        self.idempotency = IdempotencyStore(ttl=request_id_ttl)
        self.signer = events.Signer.create(signing_key_pem, certificate_pem)

        self.tokens: dict[str, AccessToken] = {}
        self.orders: dict[str, Order] = {}
        self.authorizations: dict[str, Authorization] = {}
        self.captures: dict[str, Capture] = {}
        self.refunds: dict[str, Refund] = {}
        self.setup_tokens: dict[str, SetupToken] = {}
        self.payment_tokens: dict[str, PaymentToken] = {}
        self.events: list[dict[str, Any]] = []  # every webhook event emitted, in order

    def __repr__(self) -> str:
        return f"<{type(self).__name__} client_id={self.client_id!r} url={self.url('')!r}>"

    # -- serving -------------------------------------------------------------------------------
    def serve(
        self, host: str = "127.0.0.1", port: int = 0, ssl_context: ssl.SSLContext | None = None
    ) -> EmulatorServer:
        """An `EmulatorServer` for this app (a context manager); its `url` is the API base URL."""
        return EmulatorServer(self, host, port, ssl_context=ssl_context)

    def url(self, path: str) -> str:
        """An absolute URL on this emulator (links, approval pages, the certificate): `public_url`
        when configured (a proxy in front), else the server's URL (`base_url`, set by the server)."""
        return (self.public_url or self.base_url or "http://127.0.0.1") + path

    def now(self) -> float:
        return self.clock()

    # -- dispatch: debug ids and PayPal's error shape --------------------------------------------
    def dispatch(self, request: EmulatorRequest) -> tuple[Reply | None, bool]:
        debug_id = ids.debug_id()
        token = _DEBUG_ID.set(debug_id)
        try:
            reply, drop = super().dispatch(request)
        finally:
            _DEBUG_ID.reset(token)
        if reply is not None:
            reply = attrs.evolve(reply, headers={**reply.headers, "Paypal-Debug-Id": debug_id})
        return reply, drop

    def handle(self, request: EmulatorRequest) -> Reply:
        try:
            return super().handle(request)
        except PayPalError as error:
            return self.error_reply(error, request)
        except Exception:  # noqa: BLE001 - a bug in a handler must still answer in PayPal's shape
            return self.error_reply(PayPalError(500), request)

    def error_reply(self, error: PayPalError, request: EmulatorRequest | None = None) -> Reply:
        api = "orders/v2"
        if request is not None:
            if request.path.startswith("/v2/payments"):
                api = "payments/v2"
            elif request.path.startswith("/v3/vault"):
                api = "payment-tokens/v3"
            elif request.path.startswith("/v1/notifications"):
                api = "webhooks/v1"
        return Reply.json(error.status, error.payload(_DEBUG_ID.get() or ids.debug_id(), api), error.headers)

    def not_found(self, request: EmulatorRequest) -> Reply:
        return self.error_reply(PayPalError(404), request)

    def fault_reply(self, status: int, headers: Mapping[str, str]) -> Reply:
        """An injected status in PayPal's error shape, with its debug id in the body and the header.

        A `status_after` fault answers this after the operation ran: its PayPal-Request-Id keeps
        the real result, which a retry with that id gets back (see `once`)."""
        debug_id = _DEBUG_ID.get() or ids.debug_id()
        return Reply.json(status, PayPalError(status).payload(debug_id), {**headers, "Paypal-Debug-Id": debug_id})

    # -- request helpers -----------------------------------------------------------------------
    def authenticate(self, request: EmulatorRequest, scopes: Iterable[str]) -> AccessToken:
        """The caller's live access token, which must hold one of `scopes`; else PayPal's 401/403."""
        header = request.header("authorization") or ""
        kind, _, value = header.partition(" ")
        if kind.lower() != "bearer" or not value.strip():
            raise PayPalError(401)
        with self.lock:
            token = self.tokens.get(value.strip())
            if token is None or token.expires_at <= self.now():
                raise _InvalidToken()
        if not token.scopes.intersection(scopes):
            raise PayPalError(403, "PERMISSION_DENIED")
        return token

    def mock_response(self, request: EmulatorRequest) -> None:
        """PayPal's sandbox negative testing: `PayPal-Mock-Response: {"mock_application_codes": "X"}`."""
        raw = request.header("paypal-mock-response")
        if not raw:
            return
        try:
            code = json.loads(raw).get("mock_application_codes")
        except (ValueError, AttributeError):
            raise PayPalError.of("INVALID_PARAMETER_SYNTAX", field="PayPal-Mock-Response", location="header") from None
        if isinstance(code, str) and code:
            status = issue_status(code)
            raise PayPalError(status, code if status < 500 else None)

    def json_body(self, request: EmulatorRequest) -> dict[str, Any]:
        if not request.body.strip():
            return {}
        try:
            body = json.loads(request.body)
        except ValueError:
            raise PayPalError.of("MALFORMED_REQUEST_JSON") from None
        if not isinstance(body, dict):
            raise PayPalError.of("MALFORMED_REQUEST_JSON")
        return body

    @staticmethod
    def wants_representation(request: EmulatorRequest) -> bool:
        return "return=representation" in (request.header("prefer") or "").replace(" ", "").lower()

    def once(
        self,
        request: EmulatorRequest,
        run: Callable[[], Reply],
        replay: Callable[[Reply], Reply],
    ) -> Reply:
        """Run a POST at most once per PayPal-Request-Id.

        PayPal returns "the latest status of the previous request that used that same header"
        without comparing bodies, so a repeat gets `replay(first_reply)` (the resource as it is now,
        HTTP 200). Failed attempts are not kept: a retry after an error runs again. A repeat while
        the first is still running (or held at `hold_point`, between running and keeping its
        answer) is 409 PREVIOUS_REQUEST_IN_PROGRESS.
        """
        key = request.header("paypal-request-id")
        if not key:
            return run()
        if len(key) > 108:
            raise PayPalError.of("INVALID_STRING_LENGTH", field="PayPal-Request-Id", location="header")
        scope = f"{request.method} {request.path}"
        state, stored = self.idempotency.begin(scope, key, "")
        if state == "in_flight":
            raise PayPalError(409, "PREVIOUS_REQUEST_IN_PROGRESS")
        if state == "replay" and stored is not None:
            return replay(stored)
        try:
            reply = run()
            self.hold_point(request)
        except BaseException:
            self.idempotency.abandon(scope, key)
            raise
        if reply.status < 400:
            self.idempotency.finish(scope, key, reply)
        else:
            self.idempotency.abandon(scope, key)
        return reply

    # -- webhooks ------------------------------------------------------------------------------
    def emit(
        self,
        event_type: str,
        resource_type: str,
        summary: str,
        resource: dict[str, Any],
        resource_version: str = "2.0",
    ) -> dict[str, Any]:
        """Record a webhook event and send it, signed, to `webhook_url` (when one is set)."""
        event = events.build_event(
            event_type, resource_type, summary, resource, resource_version, self.now(), self.url("")
        )
        with self.lock:
            self.events.append(event)
        if self.webhook_url:
            body, headers = self.signed_event(event)
            self.deliver_webhook(body, headers)
        return event

    def signed_event(self, event: Mapping[str, Any]) -> tuple[bytes, dict[str, str]]:
        """The exact bytes and headers PayPal would POST for `event` to the webhook `webhook_id`."""
        return self.signer.sign(event, self.webhook_id, self.cert_url(), self.now())

    def cert_url(self) -> str:
        """Where the signing certificate is served (the PAYPAL-CERT-URL of every webhook)."""
        return self.url(self.signer.cert_path)

    @property
    def certificate_pem(self) -> bytes:
        """The PEM certificate whose key signs webhooks (trust it to verify them offline)."""
        return self.signer.certificate_pem


class _InvalidToken(PayPalError):
    """PayPal answers an unknown or expired bearer token in the OAuth error shape, not its usual one."""

    def __init__(self) -> None:
        super().__init__(401)

    def payload(self, debug_id: str, api: str = "orders/v2") -> dict[str, Any]:
        return {"error": "invalid_token", "error_description": "Access Token not found in cache"}
