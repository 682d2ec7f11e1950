"""The Stripe gateway keeps paywire's gateway contract, against the emulator of its sandbox.

Amounts are read back from the wire and judged representable with the emulator's table of
Stripe's currency rules, written apart from the plugin's own.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Collection, Iterator, Mapping, Sequence
from typing import Any
from urllib.parse import parse_qsl

import attrs
import pytest

import paywire_stripe
from paywire import (
    AuthenticationError,
    Declined,
    EventKind,
    IdempotencyConflict,
    InvalidRequest,
    Money,
    ProviderUnavailable,
    RateLimited,
    StateError,
    Subject,
    Transfer,
    hookimpl,
)
from paywire.config import MethodConfig
from paywire.gateway import Gateway
from paywire.testing.contract import ErrorCase, GatewayContract, WebhookSigner
from paywire.testing.harness import GatewayFactory
from paywire.testing.recorder import TransferRecorder
from paywire.testing.sandbox import Sandbox
from paywire.testing.strategies import Bounds, Representable, WebhookPayload
from paywire_stripe.builders import IDEMPOTENCY_KEY_FIELD
from paywire_stripe.emulator import currencies as stripe_currencies
from paywire_stripe.signature import signature_header

MAX_DIGITS = {"IDR": 12}


def stripe_shift(currency: str) -> int:
    """Decimal places Stripe's unit has more than ISO's, from the emulator's table of Stripe's rules."""
    return stripe_currencies.exponent(currency.lower()) - Money.zero(currency).exponent


def stripe_units(money: Money) -> int | None:
    """`money` in Stripe's units, or None where Stripe cannot hold it."""
    shift = stripe_shift(money.currency)
    if shift < 0 and money.minor % 10**-shift:
        return None
    amount = money.minor * 10**shift if shift >= 0 else money.minor // 10**-shift
    return None if money.currency.lower() in stripe_currencies.THREE_DECIMAL and amount % 10 else amount


def stripe_error(type_: str, message: str, **fields: str) -> dict[str, Any]:
    return {"error": {"type": type_, "message": message, **fields}}


class AsksForPartialAuthorization:
    """A shop on Stripe's partial authorizations (an IC+ feature), which Stripe makes only when the
    payment asks: it asks, through `build_request`, when paying with `source`. Only then, so that
    every other check runs the plugin's own requests."""

    def __init__(self, source: str | None) -> None:
        self.source = source

    @hookimpl
    def build_request(self, provider: str, command: str, subject: Subject) -> Mapping[str, Any] | None:
        if provider == "stripe" and command in ("authorize", "sale") and subject.source == self.source:
            return {"payment_method_options": {"card": {"request_partial_authorization": "if_available"}}}
        return None


@attrs.define
class ShopGatewayFactory(GatewayFactory):
    """The kit's gateways, each with the shop's `AsksForPartialAuthorization`."""

    source: str | None = None

    def __call__(self, **changes: Any) -> Gateway:
        gateway = super().__call__(**changes)
        gateway.plugins.register(AsksForPartialAuthorization(self.source), name="shop.partial_authorization")
        return gateway


class TestStripeContract(GatewayContract):
    @pytest.fixture
    def gateway_plugin(self) -> object:
        return paywire_stripe

    @pytest.fixture
    def gateway_factory(
        self,
        gateway_plugin: object,
        method_config: MethodConfig,
        transfer_recorder: TransferRecorder,
        partial_authorization_source: str | None,
    ) -> Iterator[GatewayFactory]:
        """Gateways that ask for partial authorization with the sandbox's partial-authorization card."""
        factory = ShopGatewayFactory(
            gateway_plugin, method_config, transfer_recorder, source=partial_authorization_source
        )
        yield factory
        factory.close()

    @pytest.fixture
    def accepted_amount(self) -> Money:
        return Money.of("42.00", "USD")  # the sandbox's "accepted" source is an ACH debit: USD only

    @pytest.fixture
    def amount_representable(self) -> Representable:
        return lambda money: stripe_units(money) is not None

    @pytest.fixture
    def amount_bounds(self) -> Bounds:
        """Stripe's minimum charge and eight digits of its unit (twelve for IDR), in minor units."""

        def bounds(currency: str) -> tuple[int, int]:
            if currency not in paywire_stripe.STRIPE.currencies:  # type: ignore[operator]
                return 1, 99_999_999
            shift = stripe_shift(currency)
            minimum = stripe_currencies.MINIMUMS.get(currency.lower(), 1)
            maximum = 10 ** MAX_DIGITS.get(currency, 8) - 1
            if shift >= 0:
                return -(-minimum // 10**shift), maximum // 10**shift
            return minimum * 10**-shift, maximum * 10**-shift

        return bounds

    @pytest.fixture
    def wire_amount(self) -> Callable[[Transfer], Money | None]:
        def decode(transfer: Transfer) -> Money | None:
            form = dict(parse_qsl((transfer.body or b"").decode()))
            if "amount" not in form:
                return None
            currency = form["currency"].upper()
            shift = stripe_shift(currency)
            amount = int(form["amount"])
            return Money.minor_units(amount // 10**shift if shift >= 0 else amount * 10**-shift, currency)

        return decode

    @pytest.fixture
    def provider_errors(self) -> Sequence[ErrorCase]:
        retry = {"Stripe-Should-Retry": "true"}
        no_retry = {"Stripe-Should-Retry": "false"}
        return [
            ErrorCase(name="card declined", status=402, error=Declined, code="card_declined", headers=no_retry,
                      body=stripe_error("card_error", "Your card has insufficient funds.", code="card_declined",
                                        decline_code="insufficient_funds")),
            ErrorCase(name="expired card", status=402, error=Declined, code="expired_card",
                      body=stripe_error("card_error", "Your card has expired.", code="expired_card",
                                        decline_code="expired_card", param="exp_month")),
            ErrorCase(name="off-session authentication", status=402, error=Declined, code="authentication_required",
                      body=stripe_error("card_error", "This transaction requires authentication.",
                                        code="authentication_required", decline_code="authentication_required")),
            ErrorCase(name="missing parameter", status=400, error=InvalidRequest, code="parameter_missing",
                      body=stripe_error("invalid_request_error", "Missing required param: amount.",
                                        code="parameter_missing", param="amount")),
            ErrorCase(name="capture in the wrong state", status=400, error=StateError, command="capture",
                      code="payment_intent_unexpected_state",
                      body=stripe_error("invalid_request_error", "This PaymentIntent could not be captured.",
                                        code="payment_intent_unexpected_state")),
            ErrorCase(name="refund beyond the capture", status=400, error=StateError, command="refund",
                      code="amount_too_large",
                      body=stripe_error("invalid_request_error", "Refund amount is greater than charge amount",
                                        code="amount_too_large", param="amount")),
            ErrorCase(name="refund of a refunded charge", status=400, error=StateError, command="refund",
                      code="charge_already_refunded",
                      body=stripe_error("invalid_request_error", "Charge has already been refunded.",
                                        code="charge_already_refunded")),
            ErrorCase(name="unknown intent", status=404, error=InvalidRequest, command="fetch", code="resource_missing",
                      body=stripe_error("invalid_request_error", "No such payment_intent: 'pi_x'",
                                        code="resource_missing", param="intent")),
            ErrorCase(name="bad API key", status=401, error=AuthenticationError, code="invalid_request_error",
                      body=stripe_error("invalid_request_error", "Invalid API Key provided: sk_test_****abcd")),
            ErrorCase(name="authentication error type", status=401, error=AuthenticationError,
                      code="authentication_error",
                      body=stripe_error("authentication_error", "Invalid API Key provided.")),
            ErrorCase(name="restricted key", status=403, error=AuthenticationError, code="secret_key_required",
                      body=stripe_error("invalid_request_error", "This key lacks the required permission.",
                                        code="secret_key_required")),
            ErrorCase(name="key reused with other parameters", status=400, error=IdempotencyConflict,
                      code="idempotency_error", retryable=False,
                      body=stripe_error("idempotency_error", "Keys for idempotent requests can only be used "
                                        "with the same parameters they were first used with.")),
            ErrorCase(name="key in flight", status=409, error=IdempotencyConflict, code="idempotency_key_in_use",
                      retryable=True, headers=retry,
                      body=stripe_error("idempotency_error", "There is currently another in-progress "
                                        "request using this Idempotent Key.", code="idempotency_key_in_use")),
            ErrorCase(name="key in flight, no Stripe-Should-Retry", status=409, error=IdempotencyConflict,
                      code="idempotency_key_in_use", retryable=True,
                      body=stripe_error("idempotency_error", "There is currently another in-progress "
                                        "request using this Idempotent Key.", code="idempotency_key_in_use")),
            ErrorCase(name="object locked", status=429, error=RateLimited, code="lock_timeout", headers=retry,
                      body=stripe_error("invalid_request_error", "This object cannot be accessed right now.",
                                        code="lock_timeout")),
            ErrorCase(name="object locked (409)", status=409, error=RateLimited, code="lock_timeout", headers=retry,
                      body=stripe_error("invalid_request_error", "This object cannot be accessed right now.",
                                        code="lock_timeout")),
            ErrorCase(name="gateway timeout", status=504, error=ProviderUnavailable, code=None,
                      body=b"<html>504 Gateway Time-out</html>"),
            ErrorCase(name="rate limit", status=429, error=RateLimited, code="rate_limit", headers={"Retry-After": "2"},
                      body=stripe_error("invalid_request_error", "Request rate limit exceeded.",
                                        code="rate_limit")),
            ErrorCase(name="rate limit error type", status=429, error=RateLimited, code="rate_limit_error",
                      body=stripe_error("rate_limit_error", "Too many requests.")),
            ErrorCase(name="API error", status=500, error=ProviderUnavailable, code="api_error", headers=retry,
                      body=stripe_error("api_error", "An unknown error occurred.")),
            ErrorCase(name="unavailable", status=503, error=ProviderUnavailable, code="api_error",
                      body=stripe_error("api_error", "Stripe is temporarily unavailable.")),
        ]

    @pytest.fixture
    def webhook_signer(self, sandbox: Sandbox) -> WebhookSigner:
        def signed(body: bytes, *, timestamp: int | None = None, forged: bool = False) -> Mapping[str, str]:
            secret = "whsec_forged_0123456789" if forged else sandbox.credentials["webhook_secret"]
            at = int(time.time()) if timestamp is None else timestamp
            return {"Content-Type": "application/json", "Stripe-Signature": signature_header(secret, at, body)}

        return signed

    @pytest.fixture
    def stale_webhook_age(self) -> int:
        return 301  # Stripe's tolerance is 300 s

    @pytest.fixture
    def webhook_kinds(self) -> Collection[str]:
        """Stripe reports a refund that failed after it succeeded as failed, and has no other reversal;
        a refund it has not decided yet is refund_pending."""
        return (EventKind.AUTHORIZED, EventKind.CAPTURED, EventKind.REFUNDED, EventKind.REFUND_PENDING,
                EventKind.VOIDED, EventKind.FAILED)

    @pytest.fixture
    def webhook_body(self) -> Callable[[WebhookPayload], bytes]:
        """Events as Stripe sends them for each kind: intent events, and for refunds a refund paywire
        made (its key in the metadata; a keyless one is read from Stripe first, see `releases`)."""
        types = {
            "authorized": ("payment_intent.amount_capturable_updated", "requires_capture"),
            "captured": ("payment_intent.succeeded", "succeeded"),
            "voided": ("payment_intent.canceled", "canceled"),
            "failed": ("payment_intent.payment_failed", "requires_payment_method"),
        }

        def render(payload: WebhookPayload) -> bytes:
            amount = stripe_units(payload.amount)
            currency = payload.amount.currency.lower()
            if payload.kind in ("refunded", "refund_pending"):
                event_type = "refund.created"
                obj: dict[str, Any] = {"id": "re_3ContractRefund0001", "object": "refund", "amount": amount,
                                       "currency": currency, "payment_intent": payload.reference,
                                       "status": "succeeded" if payload.kind == "refunded" else "pending",
                                       "metadata": {IDEMPOTENCY_KEY_FIELD: "contract-key"}}
            else:
                event_type, status = types[payload.kind]
                obj = {"id": payload.reference, "object": "payment_intent", "amount": amount, "currency": currency,
                       "status": status, "amount_capturable": amount if status == "requires_capture" else 0,
                       "amount_received": amount if status == "succeeded" else 0}
            event = {"id": payload.id, "object": "event", "api_version": "2023-08-16", "created": int(time.time()),
                     "type": event_type, "data": {"object": obj}}
            return json.dumps(event, indent=2).encode()

        return render
