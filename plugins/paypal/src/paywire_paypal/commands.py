"""PayPal's command pool: every operation, assembled from the core's parts.

| command | PayPal call(s) |
|---|---|
| token | POST /v1/oauth2/token (HTTP Basic, grant_type=client_credentials); cached for the others |
| authorize, sale | [GET /v3/vault/payment-tokens/{source}] POST /v2/checkout/orders (intent AUTHORIZE, CAPTURE) |
| complete | GET /v2/checkout/orders/{reference}, POST .../authorize or .../capture |
| capture | POST /v2/payments/authorizations/{reference}/capture {amount?, final_capture} |
| void | POST /v2/payments/authorizations/{reference}/void |
| reauthorize | POST /v2/payments/authorizations/{reference}/reauthorize {amount?} |
| refund | POST /v2/payments/captures/{reference}/refund {amount?, note_to_payer?} |
| fetch | GET /v2/checkout/orders/{reference} (or the authorization or capture, then its order) |
| vault | POST /v3/vault/setup-tokens, POST /v3/vault/payment-tokens, or GET the payment token |
| unvault | [GET /v3/vault/payment-tokens/{source}, naming a customer] DELETE /v3/vault/payment-tokens/{source} |
| verify_webhook_signature | POST /v1/notifications/verify-webhook-signature (webhook API mode) |
| read_capture, read_refund, read_authorization | GET /v2/payments/captures/{id}, refunds/{id}, authorizations/{id} (`raw`: confirming a webhook) |

Every POST but token and verify_webhook_signature carries the idempotency key as
PayPal-Request-Id (void too: PayPal's server SDK sends it there, although the 2024 Payments
specification does not list it). Those two, and unvault, are repeatable (`TransferFactory`):
sending them twice cannot do anything twice, so the retry policy resends them without a key.
"""

from __future__ import annotations

from typing import Any

from paywire import (
    FORM,
    CommandPool,
    GatewayCommand,
    GatewaySettings,
    HandlerChain,
    Response,
    Subject,
    TransferFactory,
    ValidatorComposite,
)
from paywire_paypal.charge import CreateOrder
from paywire_paypal.command import PayPalCommand, endpoint
from paywire_paypal.complete import Complete
from paywire_paypal.errors import COMPLETION_ERRORS, ERRORS, PayPalErrorMapper
from paywire_paypal.fetch import Fetch, fetched_fields
from paywire_paypal.oauth import AccessTokens, BearerToken, client_auth, client_credentials, has_token
from paywire_paypal.orders import completed_fields, created_fields, order_request
from paywire_paypal.payments import (
    authorization_fields,
    capture_fields,
    capture_request,
    optional_amount,
    refund_fields,
    refund_request,
    void_fields,
)
from paywire_paypal.validators import (
    answered,
    answered_resource,
    deleted,
    not_declined,
    not_voided,
    refund_not_failed,
    same_amount,
    same_order,
)
from paywire_paypal.vault import (
    Unvault,
    Vault,
    payment_token_fields,
    payment_token_request,
    setup_token_fields,
    setup_token_request,
)
from paywire_paypal.webhook.api import COMMAND as VERIFY
from paywire_paypal.webhook.api import verification_fields, verification_request

__all__ = ["build_commands"]


def no_fields(subject: Subject, response: Response) -> dict[str, Any]:
    """For reads a composite command looks into (`raw`)."""
    return {}


def unvault_fields(subject: Subject, response: Response) -> dict[str, Any]:
    return {"reference": subject.source, "references": {"payment_token": subject.source}}


def token_command(settings: GatewaySettings, tokens: AccessTokens) -> GatewayCommand:
    """The token request; its handler fills `tokens`. It changes nothing at PayPal (the same
    token comes back until it expires), so it is repeatable: resent after a lost answer or a 5xx."""
    return GatewayCommand(
        builder=[client_credentials],
        transfer_factory=TransferFactory(
            settings.base_url, "POST", "/v1/oauth2/token",
            auth=client_auth(settings.secret("client_id"), settings.secret("client_secret")),
            converter=FORM, timeout=settings.timeout, repeatable=True,
        ),
        validator=ValidatorComposite([(answered, True), has_token]),
        error_mapper=ERRORS,
        handler=HandlerChain([tokens.store]),
    )


def build_commands(settings: GatewaySettings) -> CommandPool:
    tokens = AccessTokens()
    token = token_command(settings, tokens)
    tokens.use(token)
    bearer = BearerToken(tokens)

    def call(method: str, path: str, builders: list[Any], handlers: list[Any], **options: Any) -> GatewayCommand:
        return endpoint(settings, bearer, method, path, builders, handlers, **options)

    def read(path: str, handlers: list[Any]) -> GatewayCommand:
        return call("GET", path, [], handlers, answer_check=answered_resource)

    def pay(path: str, builders: list[Any], handlers: list[Any], validators: list[Any],
            errors: PayPalErrorMapper = ERRORS) -> GatewayCommand:
        return call("POST", path, builders, handlers, validators=validators, request_id=True, representation=True,
                    answer_check=answered_resource, error_mapper=errors)

    read_order = read("/v2/checkout/orders/{reference}", [fetched_fields])
    read_token = read("/v3/vault/payment-tokens/{source}", [payment_token_fields])
    orders = "/v2/checkout/orders"
    authorizations = "/v2/payments/authorizations/{reference}"
    read_authorization = read(authorizations, [no_fields])
    read_capture = read("/v2/payments/captures/{reference}", [no_fields])
    commands: dict[str, Any] = {
        "token": token,
        "authorize": CreateOrder(
            pay(orders, order_request("AUTHORIZE"), [created_fields], [not_declined, same_order("AUTHORIZE"), not_voided]),
            read_token),
        "sale": CreateOrder(
            pay(orders, order_request("CAPTURE"), [created_fields], [not_declined, same_order("CAPTURE"), not_voided]),
            read_token),
        "complete": Complete(
            read_order,
            pay(orders + "/{reference}/authorize", [], [completed_fields], [not_declined], COMPLETION_ERRORS),
            pay(orders + "/{reference}/capture", [], [completed_fields], [not_declined], COMPLETION_ERRORS),
        ),
        "capture": pay(authorizations + "/capture", [optional_amount, capture_request], [capture_fields],
                       [not_declined, same_amount]),
        "void": pay(authorizations + "/void", [], [void_fields], []),
        "reauthorize": pay(authorizations + "/reauthorize", [optional_amount], [authorization_fields],
                           [not_declined, same_amount]),
        "refund": pay("/v2/payments/captures/{reference}/refund", [optional_amount, refund_request],
                      [refund_fields], [refund_not_failed, same_amount]),
        "fetch": Fetch(read_order, (read_authorization, read_capture)),
        "read_order": read_order,
        "read_capture": read_capture,
        "read_refund": read("/v2/payments/refunds/{reference}", [no_fields]),
        "read_authorization": read_authorization,
        "vault": Vault(
            setup=call("POST", "/v3/vault/setup-tokens", [setup_token_request], [setup_token_fields],
                       require_request_id=True),
            exchange=call("POST", "/v3/vault/payment-tokens", [payment_token_request], [payment_token_fields],
                          require_request_id=True),
            lookup=read_token,
        ),
        # Deleting a token twice leaves it deleted (the second answer, a 404, is the first's
        # success: `deleted`); a verification only reads: both are resent after a lost answer.
        "unvault": Unvault(
            lookup=read_token,
            delete=call("DELETE", "/v3/vault/payment-tokens/{source}", [], [unvault_fields], answer_check=deleted,
                        repeatable=True),
        ),
        VERIFY: call("POST", "/v1/notifications/verify-webhook-signature", [verification_request],
                     [verification_fields], repeatable=True),
    }
    return CommandPool({name: PayPalCommand(name, command, tokens) for name, command in commands.items()},
                       gateway=settings.gateway)
