"""The Braintree gateway keeps paywire's gateway contract, against the emulator of its sandbox.

Braintree's webhook signature travels in the body (`bt_signature` next to `bt_payload` in one form)
and binds the payload, the notification's timestamp included: the signer re-signs the notification
with the time or the key pair the kit asks for, and the scheme names the two signed fields.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Callable, Collection, Sequence
from typing import Any

import pytest

import paywire_braintree
from paywire import (
    AuthenticationError,
    Declined,
    EventKind,
    InvalidRequest,
    MethodConfig,
    Money,
    ProviderState,
    ProviderUnavailable,
    RateLimited,
    Transfer,
)
from paywire.testing.contract import (
    ErrorCase,
    ExpectedStates,
    GatewayContract,
    PaymentModel,
    SignedWebhook,
    WebhookScheme,
    expected_states,
    field_spans,
)
from paywire.testing.strategies import Bounds, WebhookPayload
from paywire_braintree.builders import KEY_FIELD, VOID_KEY_FIELD
from paywire_braintree.emulator.webhooks import signed_form

FORM = {"Content-Type": "application/x-www-form-urlencoded"}
_AT = re.compile(rb"<timestamp[^>]*>[^<]*</timestamp>")


def braintree_error(error_class: str, message: str, legacy_code: str | None = None) -> dict[str, Any]:
    extensions = {"errorClass": error_class, **({"legacyCode": legacy_code} if legacy_code else {})}
    return {"data": None, "errors": [{"message": message, "extensions": extensions}],
            "extensions": {"requestId": "req-contract"}}


def refused(status: str, **event: Any) -> dict[str, Any]:
    transaction = {"id": "dHJhbnNhY3Rpb25fY29udHJhY3Q", "legacyId": "contract", "status": status,
                   "amount": {"value": "100.00", "currencyCode": "EUR"},
                   "statusHistory": [{"__typename": "Event", "status": status, **event}]}
    return {"data": {"authorizePaymentMethod": {"transaction": transaction}}}


class TestBraintreeContract(GatewayContract):
    @pytest.fixture
    def gateway_plugin(self) -> object:
        return paywire_braintree

    @pytest.fixture
    def expected_states(self) -> ExpectedStates:
        """Braintree shows no trace of a final partial capture: the authorization stays
        SETTLEMENT_PENDING, as after any partial capture (its SDK's integration tests), so fetch
        can report one closed below its amount only as partially captured."""
        def states(payment: PaymentModel) -> Collection[str]:
            allowed = expected_states(payment)
            if payment.closed and 0 < payment.captured < payment.authorized and payment.refunded == 0:
                return {*allowed, ProviderState.PARTIALLY_CAPTURED}
            return allowed

        return states

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
    def wire_idempotency_key(self) -> Callable[[Transfer], str | None]:
        """Braintree takes no idempotency key: the plugin writes its own into the variables, where
        it reads it back (an authorization's or sale's custom field paywire_key, a capture's or
        refund's orderId, a void's paywire_void_key). A search's orderId is a read, not a key."""

        def custom(fields: object, name: str) -> str | None:
            found = [field.get("value") for field in fields if isinstance(field, dict) and field.get("name") == name] \
                if isinstance(fields, list) else []
            return str(found[0]) if found else None

        def decode(transfer: Transfer) -> str | None:
            variables = json.loads(transfer.body or b"{}").get("variables") or {}
            given = variables.get("input") if isinstance(variables, dict) else None
            if not isinstance(given, dict):
                return None
            transaction, refund = given.get("transaction"), given.get("refund")
            if "paymentMethodId" in given and isinstance(transaction, dict):
                return custom(transaction.get("customFields"), KEY_FIELD)
            if "transactionId" in given and isinstance(transaction, dict):
                return transaction.get("orderId")
            if isinstance(refund, dict):
                return refund.get("orderId")
            return custom(given.get("customFields"), VOID_KEY_FIELD)

        return decode

    @pytest.fixture
    def refuses_keys_in_flight(self) -> bool:
        """Braintree deduplicates on no key, so it has no "in progress" answer to map: the plugin
        finds an earlier operation by the key it writes, and concurrent duplicates are kept to one
        call by the payment service's claim on the key."""
        return False

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
    def webhook_body(self) -> Callable[[WebhookPayload], bytes]:
        """The notification XML; the signer stamps its time and signs it into the form."""
        return settled_notification

    @pytest.fixture
    def webhook_signer(self, method_config: MethodConfig) -> Callable[..., SignedWebhook]:
        public, private = (method_config.credentials[name].reveal() for name in ("public_key", "private_key"))

        def sign(body: bytes, *, timestamp: int | None = None, forged: bool = False) -> SignedWebhook:
            at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() if timestamp is None else timestamp))
            stamped = _AT.sub(f'<timestamp type="datetime">{at}</timestamp>'.encode(), body, count=1)
            return SignedWebhook(FORM, signed_form(public, private + "_forged" if forged else private, stamped))

        return sign

    @pytest.fixture
    def webhook_scheme(self) -> WebhookScheme:
        """bt_signature and bt_payload, signed inside the form; the payload's timestamp is signed; the
        notifications carry no id, so the plugin derives one (kind, transaction, timestamp)."""
        return WebhookScheme(signed_spans=lambda body: field_spans(body, ("bt_signature", "bt_payload")), headers=(),
                             event_ids=False)

    @pytest.fixture
    def webhook_kinds(self) -> Collection[str]:
        """transaction_settled of a sale or a credit, transaction_settlement_declined."""
        return (EventKind.CAPTURED, EventKind.REFUNDED, EventKind.REVERSED)

    @pytest.fixture
    def stale_webhook_age(self) -> int:
        """Braintree retries a delivery for a day: older than the verifier's 26 hours is stale."""
        return 26 * 3600 + 1


def settled_notification(payload: WebhookPayload) -> bytes:
    kind = "transaction_settlement_declined" if payload.kind == EventKind.REVERSED else "transaction_settled"
    return (
        '<notification><timestamp type="datetime">-</timestamp><kind>{kind}</kind><subject>'
        "<transaction><id>{id}</id><type>{type}</type><status>settled</status>"
        "<currency-iso-code>{currency}</currency-iso-code><amount>{amount}</amount></transaction>"
        "</subject></notification>"
    ).format(kind=kind, id=payload.reference, type="credit" if payload.kind == EventKind.REFUNDED else "sale",
             currency=payload.amount.currency, amount=payload.amount.amount).encode()
