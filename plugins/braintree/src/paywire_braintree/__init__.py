"""paywire-braintree: Braintree over its GraphQL API as a paywire gateway, its webhooks, and
`paywire_braintree.emulator`, a local stand-in for Braintree that validates every document
against Braintree's published schema.

Discovering plugins imports only this module: the gateway definition is plain data, and the
commands and the webhook verifier are imported when a method is first built.
"""

from __future__ import annotations

from collections.abc import Callable

from paywire import Capabilities, GatewayDefinition, hookimpl
from paywire_braintree.currencies import CURRENCIES

__all__ = ["BRAINTREE", "register_gateways"]


BRAINTREE = GatewayDefinition(
    code="braintree",
    title="Braintree",
    build="paywire_braintree.commands:build_commands",
    capabilities=Capabilities(capture_multiple=True, vault=True, webhooks=True, declined_final_capture_closes=True),
    currencies=CURRENCIES,
    endpoints={
        "live": "https://payments.braintree-api.com",
        "sandbox": "https://payments.sandbox.braintree-api.com",
    },
    secrets=("public_key", "private_key"),
    webhook="paywire_braintree.webhook:build_verifier",
    sandbox="paywire_braintree.sandbox:sandbox",
    options=("merchant_accounts", "custom_fields"),
    # A first operation whose answer was lost is found through search.transactions, whose index
    # may trail the write it reports.
    outcome_window=60.0,
    # Braintree's mutations take no idempotency key, and a vaulted payment method cannot be found
    # by one: a vault whose answer was lost is never sent again (it could store the payment method
    # twice, or make a second customer). Every other command finds what an earlier attempt made
    # (search by key, the transaction's state) or, for unvault, takes "not found" as done.
    key_lives={"vault": 0.0},
)


@hookimpl
def register_gateways(register: Callable[[GatewayDefinition], None]) -> None:
    register(BRAINTREE)
