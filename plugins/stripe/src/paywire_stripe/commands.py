"""Stripe's commands, assembled from the core's parts (see `docs/commands.md` for the contract).

    authorize  POST /v1/payment_intents                    capture_method=manual, confirm=true
    sale       POST /v1/payment_intents                    capture_method=automatic, confirm=true
    complete   GET  /v1/payment_intents/{id}               then POST .../confirm if it waits for that
    capture    POST /v1/payment_intents/{id}/capture       amount_to_capture
    void       POST /v1/payment_intents/{id}/cancel        cancellation_reason
    refund     POST /v1/refunds                            payment_intent, amount, reason
    fetch      GET  /v1/payment_intents/{id}               or, by key, GET /v1/payment_intents/search
                                                           (then, if it finds none, GET /v1/payment_intents
                                                           created since the first send, page by page);
               GET  /v1/refunds?payment_intent={id}        its refunds, once something was captured
    vault      POST /v1/customers (unless given), then POST /v1/payment_methods/{pm}/attach
               [then GET /v1/payment_methods/{pm}, when the attach got no definite answer]
    unvault    [GET /v1/payment_methods/{pm}, naming a customer] POST /v1/payment_methods/{pm}/detach

Every PaymentIntent request expands `latest_charge`, so each answer carries exact totals. Resent
after a lost answer, authorize, sale and capture then GET the intent: Stripe answers a resend with
its stored answer, the intent as it was then (`Current`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from paywire import (
    CommandPool,
    GatewayCommand,
    GatewaySettings,
    HandlerChain,
    PaywireError,
    Response,
    Result,
    Subject,
    ValidatorComposite,
)
from paywire_stripe import builders, handlers, operations
from paywire_stripe.composites import Complete, Current, Fetch, Unvault, Vault
from paywire_stripe.endpoints import endpoints
from paywire_stripe.error_mapping import map_error, map_refund_error, should_retry
from paywire_stripe.validation import answered, finished, paid, refunded

__all__ = ["build_commands"]

Builder = Callable[[Subject], Mapping[str, Any]]
Handler = Callable[[Subject, Response], Mapping[str, Any]]


def build_commands(settings: GatewaySettings) -> CommandPool:
    """The command pool of one configured Stripe method.

    Options: `payment_method_types` (default `["card"]`), `return_url` (where the buyer comes back
    after 3-D Secure when the subject names none).
    """
    endpoint = endpoints(settings)
    settings.return_url()  # a bad default refused before any operation falls back on it
    options = settings.options

    def command(method: str, path: str, build: Builder, validator: ValidatorComposite,
                handler: Handler, *, read: GatewayCommand | None = None,
                error_mapper: Callable[[Subject, Response, Result], PaywireError] = map_error) -> GatewayCommand:
        """One request's command; with `read`, a PaymentIntent write that reads the intent when
        it is resent (`Current`)."""
        parts: dict[str, Any] = {
            "builder": builders.keyed(build) if method == "POST" else build,
            "transfer_factory": endpoint(method, path),
            "validator": validator,
            "error_mapper": error_mapper,
            "handler": HandlerChain([handler]),
            "retry_hint": should_retry,
        }
        return GatewayCommand(**parts) if read is None else Current(**parts, read=read)

    intent = "/v1/payment_intents/{reference}"
    payment_method = "/v1/payment_methods/{source}"
    paid_intent = answered("payment_intent", paid)
    retrieve = command("GET", intent, builders.retrieve_query, answered("payment_intent"), handlers.fetched_result)
    read_method = command("GET", payment_method, builders.no_request, answered("payment_method"),
                          handlers.payment_method_result)
    return CommandPool(
        {
            "authorize": command("POST", "/v1/payment_intents", builders.payment_request("manual", options),
                                 paid_intent, handlers.intent_result, read=retrieve),
            "sale": command("POST", "/v1/payment_intents", builders.payment_request("automatic", options),
                            paid_intent, handlers.intent_result, read=retrieve),
            "complete": Complete(
                retrieve=command("GET", intent, builders.retrieve_query,
                                 answered("payment_intent", paid, finished), handlers.intent_result),
                confirm=command("POST", intent + "/confirm", builders.confirm_request(options),
                                paid_intent, handlers.intent_result),
            ),
            "capture": command("POST", intent + "/capture", builders.capture_request,
                               answered("payment_intent"), handlers.intent_result, read=retrieve),
            "void": command("POST", intent + "/cancel", builders.void_request,
                            answered("payment_intent"), handlers.intent_result),
            "refund": command("POST", "/v1/refunds", builders.refund_request,
                              answered("refund", refunded), handlers.refund_result, error_mapper=map_refund_error),
            "fetch": Fetch(
                retrieve=retrieve,
                search=command("GET", "/v1/payment_intents/search", builders.search_query,
                               answered("search_result"), handlers.found_intent_result),
                listed=command("GET", "/v1/payment_intents", builders.listed_query,
                               answered("list"), handlers.found_intent_result),
                refunds=command("GET", "/v1/refunds", builders.refunds_query, answered("list"),
                                operations.listed_refunds),
            ),
            "vault": Vault(
                customer=command("POST", "/v1/customers", builders.customer_request,
                                 answered("customer"), handlers.customer_result),
                attach=command("POST", payment_method + "/attach", builders.attach_request,
                               answered("payment_method"), handlers.vaulted_result),
                read=read_method,
            ),
            "unvault": Unvault(
                read=read_method,
                detach=command("POST", payment_method + "/detach", builders.no_request,
                               answered("payment_method"), handlers.detached_result),
            ),
        },
        gateway=settings.gateway,
    )
