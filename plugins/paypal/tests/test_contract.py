"""The PayPal plugin keeps the gateway contract, against its emulator (the sandbox its definition names).

PayPal is paid two ways, and the contract runs for both:

- `TestWalletCheckout`: a PayPal wallet the buyer approves on PayPal's page (order, approval,
  completion), so every property runs through PayPal's own checkout;
- `TestVaultedCard`: the sandbox's vaulted card, charged without the buyer.

PayPal takes HUF and TWD in whole units only (`amount_representable`).
"""

from __future__ import annotations

import base64
import functools
import json
import time
import uuid
from collections.abc import Callable, Collection, Mapping, Sequence
from decimal import Decimal
from typing import Any

import pytest
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa

import paywire_paypal
from paywire import (
    AuthenticationError,
    BuyerActionRequired,
    Capabilities,
    Declined,
    EventKind,
    IdempotencyConflict,
    InvalidRequest,
    MethodConfig,
    Money,
    ProviderUnavailable,
    RateLimited,
    StateError,
    Transfer,
)
from paywire.testing.contract import ErrorCase, GatewayContract, WebhookSigner, header_idempotency_key
from paywire.testing.harness import ContractHarness
from paywire.testing.strategies import Representable, WebhookPayload
from paywire_paypal import signature
from paywire_paypal.currencies import NO_DECIMALS
from paywire_paypal.emulator import PayPalEmulator
from paywire_paypal.emulator.amounts import parse_money
from paywire_paypal.emulator.model import Authorization, Capture, Refund


def paypal_error(status: int, name: str, issue: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"name": name, "message": f"{name.replace('_', ' ').lower()}", "debug_id": "a1b2c3d4e5f60"}
    if issue:
        body["details"] = [{"issue": issue, "description": f"{issue.replace('_', ' ').lower()}"}]
    body["links"] = [{"href": f"https://developer.paypal.com/api/rest/reference/orders/v2/errors/#{issue or name}",
                      "rel": "information_link", "method": "GET"}]
    return body


def paypal_value(amount: Money) -> dict[str, str]:
    """PayPal's money object, written here from PayPal's currency rules (not the plugin's encoder)."""
    places = 0 if amount.currency in NO_DECIMALS else 2
    value = amount.amount.quantize(Decimal(1).scaleb(-places))
    return {"currency_code": amount.currency, "value": str(value)}


def hold(app: PayPalEmulator, resource_type: str, resource_id: str, status: str, amount: dict[str, str]) -> None:
    """Put a capture, refund or authorization with this id, status and amount in the emulator's state."""
    minor, currency = parse_money(amount, "/amount")
    now = app.now()
    with app.lock:
        if resource_type == "capture":
            app.captures[resource_id] = Capture(
                id=resource_id, order_id="5O190127TN364715T", reference_id="default", authorization_id=None,
                amount_minor=minor, currency=currency, status=status, final_capture=True, fee_minor=0,
                create_time=now, update_time=now)
        elif resource_type == "refund":
            app.refunds[resource_id] = Refund(
                id=resource_id, capture_id="2GG279541U471931P", order_id="5O190127TN364715T", amount_minor=minor,
                currency=currency, fee_minor=0, total_refunded_minor=minor, status=status, create_time=now,
                update_time=now)
        else:
            app.authorizations[resource_id] = Authorization(
                id=resource_id, order_id="5O190127TN364715T", reference_id="default", amount_minor=minor,
                currency=currency, status=status, create_time=now, update_time=now, expiration_time=now + 86400)


@functools.cache
def forger() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


class PayPalContract(GatewayContract):
    """The fixtures both ways of paying share; the sandbox (emulator, credentials) is the kit's default."""

    @pytest.fixture
    def gateway_plugin(self) -> object:
        return paywire_paypal

    @pytest.fixture
    def fetch_finds_by_key(self) -> bool:
        return False  # PayPal has no lookup by PayPal-Request-Id: a lost first answer is resent with its key

    @pytest.fixture
    def amount_representable(self) -> Representable:
        def held(amount: Money) -> bool:  # written from PayPal's currency rules, not the plugin's encoder
            return amount.currency not in NO_DECIMALS or amount.amount == amount.amount.to_integral_value()

        return held

    @pytest.fixture
    def wire_idempotency_key(self) -> Callable[[Transfer], str | None]:
        """PayPal reads the key from PayPal-Request-Id."""
        return header_idempotency_key("PayPal-Request-Id")

    @pytest.fixture
    def wire_amount(self) -> Callable[[Transfer], Money | None]:
        def decode(transfer: Transfer) -> Money | None:
            body = json.loads(transfer.body or b"{}")
            units = body.get("purchase_units") if isinstance(body, dict) else None
            amount = units[0]["amount"] if units else body.get("amount") if isinstance(body, dict) else None
            return Money.of(Decimal(amount["value"]), amount["currency_code"]) if amount else None

        return decode

    @pytest.fixture
    def provider_errors(self) -> Sequence[ErrorCase]:
        declined_capture = {"id": "5O190127TN364715T", "intent": "CAPTURE", "status": "COMPLETED", "purchase_units": [{
            "reference_id": "default", "amount": {"currency_code": "EUR", "value": "100.00"},
            "payments": {"captures": [{"id": "3C679366HH908993F", "status": "DECLINED",
                                       "amount": {"currency_code": "EUR", "value": "100.00"},
                                       "processor_response": {"response_code": "0500"}}]}}]}
        unprocessable = "UNPROCESSABLE_ENTITY"
        return [
            ErrorCase(name="instrument declined", status=422, error=Declined, code="INSTRUMENT_DECLINED",
                      body=paypal_error(422, unprocessable, "INSTRUMENT_DECLINED")),
            ErrorCase(name="payer cannot pay", status=422, error=Declined, code="PAYER_CANNOT_PAY",
                      body=paypal_error(422, unprocessable, "PAYER_CANNOT_PAY"), command="complete"),
            ErrorCase(name="capture declined in a 201", status=201, error=Declined, code="DECLINED",
                      body=declined_capture, command="sale"),
            ErrorCase(name="payer action required", status=422, error=BuyerActionRequired,
                      code="PAYER_ACTION_REQUIRED", body=paypal_error(422, unprocessable, "PAYER_ACTION_REQUIRED")),
            ErrorCase(name="order not approved", status=422, error=BuyerActionRequired, code="ORDER_NOT_APPROVED",
                      body=paypal_error(422, unprocessable, "ORDER_NOT_APPROVED"), command="complete"),
            ErrorCase(name="authorization already captured", status=422, error=StateError,
                      code="AUTHORIZATION_ALREADY_CAPTURED", command="capture",
                      body=paypal_error(422, unprocessable, "AUTHORIZATION_ALREADY_CAPTURED")),
            ErrorCase(name="capture above the limit", status=422, error=StateError,
                      code="MAX_CAPTURE_AMOUNT_EXCEEDED", command="capture",
                      body=paypal_error(422, unprocessable, "MAX_CAPTURE_AMOUNT_EXCEEDED")),
            ErrorCase(name="authorization voided", status=422, error=StateError, code="AUTHORIZATION_VOIDED",
                      command="capture", body=paypal_error(422, unprocessable, "AUTHORIZATION_VOIDED")),
            ErrorCase(name="already voided", status=422, error=StateError, code="PREVIOUSLY_VOIDED",
                      command="void", body=paypal_error(422, unprocessable, "PREVIOUSLY_VOIDED")),
            ErrorCase(name="refund above the capture", status=422, error=StateError, code="REFUND_AMOUNT_EXCEEDED",
                      command="refund", body=paypal_error(422, unprocessable, "REFUND_AMOUNT_EXCEEDED")),
            ErrorCase(name="invalid parameter", status=400, error=InvalidRequest, code="INVALID_PARAMETER_VALUE",
                      body=paypal_error(400, "INVALID_REQUEST", "INVALID_PARAMETER_VALUE")),
            ErrorCase(name="unknown id", status=404, error=InvalidRequest, code="INVALID_RESOURCE_ID",
                      command="refund", body=paypal_error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")),
            ErrorCase(name="token refused", status=401, error=AuthenticationError, code="AUTHENTICATION_FAILURE",
                      body=paypal_error(401, "AUTHENTICATION_FAILURE")),
            ErrorCase(name="not permitted", status=403, error=AuthenticationError, code="PERMISSION_DENIED",
                      body=paypal_error(403, "NOT_AUTHORIZED", "PERMISSION_DENIED")),
            ErrorCase(name="request in progress", status=409, error=IdempotencyConflict, retryable=True,
                      code="PREVIOUS_REQUEST_IN_PROGRESS", command="capture",
                      body=paypal_error(409, "RESOURCE_CONFLICT", "PREVIOUS_REQUEST_IN_PROGRESS")),
            ErrorCase(name="rate limited", status=429, error=RateLimited, code="RATE_LIMIT_REACHED",
                      headers={"Retry-After": "2"}, body=paypal_error(429, "RATE_LIMIT_REACHED")),
            ErrorCase(name="internal error", status=500, error=ProviderUnavailable, code="INTERNAL_SERVER_ERROR",
                      body=paypal_error(500, "INTERNAL_SERVER_ERROR")),
            ErrorCase(name="unavailable", status=503, error=ProviderUnavailable, code="SERVICE_UNAVAILABLE",
                      command="capture", outcome="unknown", body=paypal_error(503, "SERVICE_UNAVAILABLE")),
        ]

    # -- webhooks, signed as PayPal signs them ------------------------------------------------------
    @pytest.fixture
    def webhook_signer(self, emulator: PayPalEmulator, method_config: MethodConfig) -> WebhookSigner:
        webhook_id = method_config.credentials["webhook_id"].reveal()

        def signed(body: bytes, *, timestamp: int | None = None, forged: bool = False) -> Mapping[str, str]:
            transmission_id = str(uuid.uuid4())
            at = time.gmtime(time.time() if timestamp is None else timestamp)
            transmission_time = time.strftime("%Y-%m-%dT%H:%M:%SZ", at)
            message = signature.signing_string(transmission_id, transmission_time, webhook_id, body).encode()
            key = forger() if forged else emulator.signer.key
            sig = base64.b64encode(key.sign(message, padding.PKCS1v15(), hashes.SHA256())).decode()
            return {"Content-Type": "application/json", signature.HEADER_TRANSMISSION_ID: transmission_id,
                    signature.HEADER_TRANSMISSION_TIME: transmission_time, signature.HEADER_TRANSMISSION_SIG: sig,
                    signature.HEADER_CERT_URL: emulator.cert_url(), signature.HEADER_AUTH_ALGO: signature.AUTH_ALGO}

        return signed

    @pytest.fixture
    def webhook_kinds(self) -> Collection[str]:
        """PayPal's reversals (PAYMENT.CAPTURE.REVERSED) return money as a refund does: no reversed events."""
        return (EventKind.AUTHORIZED, EventKind.CAPTURED, EventKind.CAPTURE_PENDING, EventKind.REFUNDED,
                EventKind.REFUND_PENDING, EventKind.VOIDED, EventKind.FAILED)

    @pytest.fixture
    def stale_webhook_age(self) -> int:
        """The plugin's documented default `webhook_tolerance` is 900 s (stated here, not read from it)."""
        return 901

    @pytest.fixture
    def webhook_body(self, emulator: PayPalEmulator) -> Callable[[WebhookPayload], bytes]:
        """The event PayPal sends for a payload, about an object PayPal holds: the plugin confirms
        money events by reading their object, so each rendered event's object is put in the
        emulator's state first, as PayPal would hold it."""
        shapes = {
            "captured": ("PAYMENT.CAPTURE.COMPLETED", "capture", "COMPLETED"),
            "capture_pending": ("PAYMENT.CAPTURE.PENDING", "capture", "PENDING"),
            "refunded": ("PAYMENT.CAPTURE.REFUNDED", "refund", "COMPLETED"),
            "refund_pending": ("PAYMENT.REFUND.PENDING", "refund", "PENDING"),
            "authorized": ("PAYMENT.AUTHORIZATION.CREATED", "authorization", "CREATED"),
            "voided": ("PAYMENT.AUTHORIZATION.VOIDED", "authorization", "VOIDED"),
            "failed": ("PAYMENT.CAPTURE.DENIED", "capture", "DECLINED"),
        }

        def render(payload: WebhookPayload) -> bytes:
            event_type, resource_type, status = shapes[payload.kind]
            hold(emulator, resource_type, payload.reference, status, paypal_value(payload.amount))
            resource: dict[str, Any] = {"id": payload.reference, "status": status,
                                        "amount": paypal_value(payload.amount)}
            if resource_type == "refund":
                resource["links"] = [{"href": "https://api-m.paypal.com/v2/payments/captures/2GG279541U471931P",
                                      "rel": "up", "method": "GET"}]
            else:
                resource["supplementary_data"] = {"related_ids": {"order_id": "5O190127TN364715T"}}
            return json.dumps({"id": payload.id, "event_version": "1.0", "create_time": "2024-02-03T10:00:00.000Z",
                               "resource_type": resource_type, "resource_version": "2.0", "event_type": event_type,
                               "summary": "an event", "resource": resource}).encode()

        return render


class TestWalletCheckout(PayPalContract):
    """Paid with a PayPal wallet the buyer approves: order, approval, completion."""

    @pytest.fixture
    def payment_source(self) -> str:
        return "paypal"

    @pytest.fixture
    def capabilities(self, harness: ContractHarness) -> Capabilities:
        # A wallet is vaulted only after the buyer approves a setup token, so it cannot be the
        # source the kit vaults directly: TestVaultedCard runs the vault properties.
        return harness.capabilities._replace(vault=False)


class TestVaultedCard(PayPalContract):
    """Paid from the vault: the sandbox's vaulted card, charged without the buyer."""
