"""paywire-stripe: Stripe's PaymentIntents, Refunds, Customers and PaymentMethods as a paywire
gateway, its webhooks, and `paywire_stripe.emulator`, a local stand-in for Stripe.

Discovering plugins imports only this module: the gateway definition is plain data, and the
commands and the webhook verifier are imported when a method is first built.
"""

from __future__ import annotations

from collections.abc import Callable

from paywire import Capabilities, GatewayDefinition, hookimpl
from paywire_stripe.currencies import CURRENCIES

__all__ = ["STRIPE", "register_gateways"]


STRIPE = GatewayDefinition(
    code="stripe",
    title="Stripe",
    build="paywire_stripe.commands:build_commands",
    capabilities=Capabilities(capture_multiple=False, vault=True, buyer_action=True, webhooks=True,
                              cancel_waiting=True),
    currencies=CURRENCIES,
    endpoints={"live": "https://api.stripe.com", "sandbox": "https://api.stripe.com"},
    secrets=("secret_key", "webhook_secret"),
    webhook_secrets=("webhook_secret",),  # each endpoint has its own; the secret key tells the account
    webhook="paywire_stripe.webhook:build_verifier",
    sandbox="paywire_stripe.sandbox:sandbox",
    # Not for the search index: fetch by key falls back on listing every intent created since the
    # first send (current, not indexed), so its not_found is conclusive however far the index lags.
    # Kept as a margin for a request Stripe may still be processing after the client gave up on it.
    outcome_window=60.0,
    # Stripe prunes idempotency keys once they are 24 hours old; a request sent again later runs anew.
    key_lives=dict.fromkeys(("authorize", "sale", "complete", "capture", "void", "refund", "vault", "unvault"),
                            24 * 3600.0),
    options=("return_url", "payment_method_types", "webhook_tolerance", "webhook_max_bytes"),
)


@hookimpl
def register_gateways(register: Callable[[GatewayDefinition], None]) -> None:
    register(STRIPE)
