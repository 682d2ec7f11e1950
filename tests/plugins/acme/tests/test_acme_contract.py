"""The acme plugin keeps the gateway contract, tested against its emulator over loopback HTTP."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Mapping, Sequence

import pytest

import paywire_acme
from paywire import (
    AuthenticationError,
    Declined,
    EventKind,
    IdempotencyConflict,
    InvalidRequest,
    MethodConfig,
    Money,
    ProviderUnavailable,
    RateLimited,
    Transfer,
)
from paywire.testing.contract import ErrorCase, GatewayContract, WebhookSigner
from paywire.testing.strategies import WebhookPayload
from paywire_acme.webhook import sign


def acme_error(code: str, message: str, **extra: str) -> dict[str, object]:
    return {"error": {"code": code, "message": message, **extra}}


class TestAcmeContract(GatewayContract):
    """The emulator, the method and the test sources come from acme's sandbox (its definition names it)."""

    @pytest.fixture
    def gateway_plugin(self) -> object:
        return paywire_acme

    @pytest.fixture
    def wire_amount(self) -> Callable[[Transfer], Money]:
        def decode(transfer: Transfer) -> Money:
            body = json.loads(transfer.body or b"{}")  # Acme takes integer minor units
            return Money.minor_units(body["amount"], body["currency"])

        return decode

    @pytest.fixture
    def provider_errors(self) -> Sequence[ErrorCase]:
        return [
            ErrorCase(name="card declined", status=402, error=Declined, code="card_declined",
                      body=acme_error("card_declined", "the card was declined", decline_code="insufficient_funds")),
            ErrorCase(name="invalid request", status=400, error=InvalidRequest, code="invalid_request",
                      body=acme_error("invalid_request", "amount must be a positive integer", param="amount")),
            ErrorCase(name="invalid state", status=422, error=InvalidRequest, code="invalid_state", command="capture",
                      body=acme_error("invalid_state", "cannot capture a payment that is voided")),
            ErrorCase(name="not found", status=404, error=InvalidRequest, code="not_found", command="refund",
                      body=acme_error("not_found", "no such payment")),
            ErrorCase(name="bad API key", status=401, error=AuthenticationError, code="unauthorized",
                      body=acme_error("unauthorized", "invalid API key")),
            ErrorCase(name="idempotency conflict", status=409, error=IdempotencyConflict, code="idempotency_conflict",
                      body=acme_error("idempotency_conflict", "this key was used with a different request")),
            ErrorCase(name="request in progress", status=409, error=IdempotencyConflict, code="request_in_progress",
                      retryable=True, body=acme_error("request_in_progress", "a request with this key is in progress")),
            ErrorCase(name="rate limited", status=429, error=RateLimited, headers={"Retry-After": "2"},
                      body=acme_error("rate_limited", "slow down")),
            ErrorCase(name="server error", status=500, error=ProviderUnavailable, code="server_error",
                      body=acme_error("server_error", "internal error")),
        ]

    @pytest.fixture
    def webhook_signer(self, method_config: MethodConfig) -> WebhookSigner:
        configured = method_config.credentials["webhook_secret"].reveal()

        def signed(body: bytes, *, timestamp: int | None = None, forged: bool = False) -> Mapping[str, str]:
            at = int(time.time()) if timestamp is None else timestamp
            secret = f"{configured}_forged" if forged else configured
            return {"Content-Type": "application/json", "Acme-Timestamp": str(at),
                    "Acme-Signature": sign(secret, at, body)}

        return signed

    @pytest.fixture
    def webhook_body(self) -> Callable[[WebhookPayload], bytes]:
        def render(payload: WebhookPayload) -> bytes:
            data = {"id": payload.reference, "currency": payload.amount.currency, "last_amount": payload.amount.minor}
            return json.dumps({"id": payload.id, "type": f"payment.{payload.kind}", "data": data}).encode()

        return render

    @pytest.fixture
    def webhook_kinds(self) -> Collection[str]:
        """Acme never undoes an operation it reported done: it sends no reversed events."""
        return (EventKind.AUTHORIZED, EventKind.CAPTURED, EventKind.REFUNDED, EventKind.VOIDED, EventKind.FAILED)

    @pytest.fixture
    def stale_webhook_age(self) -> int:
        """Acme documents a 300 s tolerance (stated here, not read from the plugin under test)."""
        return 301
