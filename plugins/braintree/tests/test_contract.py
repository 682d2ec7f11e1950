"""The Braintree gateway keeps paywire's gateway contract, against the emulator of its sandbox.

Every mixin of the kit runs except `WebhookContract`: its signer returns headers for a body it
did not write, while Braintree signs inside the body (bt_signature next to bt_payload in one form),
so a wrong key or a stale timestamp cannot be expressed through it. test_webhooks.py holds the
same checks for Braintree's scheme (every single-byte change of the signed form, every character
of bt_signature, another key pair, a stale notification, malformed forms).
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from typing import Any

import pytest

import paywire_braintree
from paywire import (
    AuthenticationError,
    Declined,
    InvalidRequest,
    MethodConfig,
    Money,
    ProviderUnavailable,
    RateLimited,
    Transfer,
)
from paywire.testing.contract import (
    AmountContract,
    BuilderContract,
    BuyerActionContract,
    CaptureContract,
    ErrorCase,
    ErrorMappingContract,
    IdempotencyContract,
    LifecycleContract,
    RefundContract,
    SecretContract,
    TransportFaultContract,
    VaultContract,
    VoidContract,
)
from paywire.testing.contract.fixtures import WebhookSigner
from paywire.testing.strategies import Bounds, WebhookPayload
from paywire_braintree.emulator.webhooks import signed_form


def braintree_error(error_class: str, message: str, legacy_code: str | None = None) -> dict[str, Any]:
    extensions = {"errorClass": error_class, **({"legacyCode": legacy_code} if legacy_code else {})}
    return {"data": None, "errors": [{"message": message, "extensions": extensions}],
            "extensions": {"requestId": "req-contract"}}


def refused(status: str, **event: Any) -> dict[str, Any]:
    transaction = {"id": "dHJhbnNhY3Rpb25fY29udHJhY3Q", "legacyId": "contract", "status": status,
                   "amount": {"value": "100.00", "currencyCode": "EUR"},
                   "statusHistory": [{"__typename": "Event", "status": status, **event}]}
    return {"data": {"authorizePaymentMethod": {"transaction": transaction}}}


class TestBraintreeContract(
    AmountContract,
    BuilderContract,
    ErrorMappingContract,
    TransportFaultContract,
    IdempotencyContract,
    LifecycleContract,
    CaptureContract,
    VoidContract,
    RefundContract,
    VaultContract,
    BuyerActionContract,
    SecretContract,
):
    @pytest.fixture
    def gateway_plugin(self) -> object:
        return paywire_braintree

    @pytest.fixture
    def wire_amount(self) -> Callable[[Transfer], Money | None]:
        def decode(transfer: Transfer) -> Money | None:
            variables = json.loads(transfer.body or b"{}").get("variables") or {}
            transaction = (variables.get("input") or {}).get("transaction")
            if not isinstance(transaction, dict) or "amount" not in transaction:
                return None
            # the sandbox's merchant accounts are named paywire_<currency>: Braintree's currency is the account's
            currency = str(transaction["merchantAccountId"]).removeprefix("paywire_").upper()
            return Money.of(transaction["amount"], currency)

        return decode

    @pytest.fixture
    def amount_bounds(self) -> Bounds:
        """Braintree's sandbox declines 2000.00 and above (test amounts): stay below."""
        return lambda currency: (1, 2000 * 10 ** Money.zero(currency).exponent - 1)

    @pytest.fixture
    def provider_errors(self) -> Sequence[ErrorCase]:
        return [
            ErrorCase(name="processor declined", status=200, error=Declined, code="2001",
                      body=refused("PROCESSOR_DECLINED", processorResponse={"legacyCode": "2001",
                                                                           "message": "Insufficient Funds"})),
            ErrorCase(name="gateway rejected", status=200, error=Declined, code="cvv",
                      body=refused("GATEWAY_REJECTED", gatewayRejectionReason="CVV")),
            ErrorCase(name="processor failure", status=200, error=Declined, code="3000",
                      body=refused("FAILED", processorResponse={"legacyCode": "3000", "message": "Unavailable"})),
            ErrorCase(name="validation", status=200, error=InvalidRequest, code="81503",
                      body=braintree_error("VALIDATION", "Amount is an invalid format.", "81503")),
            ErrorCase(name="refund before settlement", status=200, error=InvalidRequest, code="91506", command="refund",
                      body=braintree_error("VALIDATION", "Cannot refund transaction unless it is settled.", "91506")),
            ErrorCase(name="not found", status=200, error=InvalidRequest, code="NOT_FOUND", command="capture",
                      body=braintree_error("NOT_FOUND", "An object with this ID was not found.")),
            ErrorCase(name="unsupported client", status=200, error=InvalidRequest, code="UNSUPPORTED_CLIENT",
                      body=braintree_error("UNSUPPORTED_CLIENT", "Braintree-Version is not supported.")),
            ErrorCase(name="authentication", status=401, error=AuthenticationError, code="AUTHENTICATION",
                      body=braintree_error("AUTHENTICATION", "Authentication credentials are invalid.")),
            ErrorCase(name="authorization", status=200, error=AuthenticationError, code="AUTHORIZATION",
                      body=braintree_error("AUTHORIZATION", "You do not have permission.")),
            ErrorCase(name="resource limit", status=429, error=RateLimited, code="RESOURCE_LIMIT",
                      headers={"Retry-After": "3"}, body=braintree_error("RESOURCE_LIMIT", "Too many requests.")),
            ErrorCase(name="internal", status=200, error=ProviderUnavailable, code="INTERNAL",
                      body=braintree_error("INTERNAL", "An internal error occurred.")),
            ErrorCase(name="service availability", status=503, error=ProviderUnavailable, code="SERVICE_AVAILABILITY",
                      body=braintree_error("SERVICE_AVAILABILITY", "The service is unavailable.")),
        ]

    @pytest.fixture
    def webhook_body(self, method_config: MethodConfig) -> Callable[[WebhookPayload], bytes]:
        """A signed form (Braintree signs inside the body), for the kit's secret checks."""
        public, private = (method_config.credentials[name].reveal() for name in ("public_key", "private_key"))

        def render(payload: WebhookPayload) -> bytes:
            return signed_form(public, private, settled_notification(payload))

        return render

    @pytest.fixture
    def webhook_signer(self) -> WebhookSigner:
        """Braintree's signature travels in the body: the headers are only its content type."""

        def headers(body: bytes, *, timestamp: int | None = None, forged: bool = False) -> dict[str, str]:
            return {"Content-Type": "application/x-www-form-urlencoded"}

        return headers


def settled_notification(payload: WebhookPayload) -> bytes:
    credit = payload.kind == "refunded"
    return (
        '<notification><timestamp type="datetime">{at}</timestamp><kind>transaction_settled</kind><subject>'
        "<transaction><id>{id}</id><type>{type}</type><status>settled</status>"
        "<currency-iso-code>{currency}</currency-iso-code><amount>{amount}</amount></transaction>"
        "</subject></notification>"
    ).format(at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), id=payload.reference,
             type="credit" if credit else "sale", currency=payload.amount.currency,
             amount=payload.amount.amount).encode()
