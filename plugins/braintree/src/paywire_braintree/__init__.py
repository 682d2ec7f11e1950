"""paywire-braintree: Braintree over its GraphQL API as a paywire gateway, its webhooks, and
`paywire_braintree.emulator`, a local stand-in for Braintree that validates every document
against Braintree's published schema.

Discovering plugins imports only this module: the gateway definition is plain data, and the
commands and the webhook verifier are imported when a method is first built.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from paywire import Capabilities, GatewayDefinition, hookimpl
from paywire_braintree.currencies import CURRENCIES

if TYPE_CHECKING:
    from paywire import CommandPool, GatewaySettings, WebhookVerifier

__all__ = ["BRAINTREE", "build_commands", "build_verifier", "register_gateways"]


def build_commands(settings: GatewaySettings) -> CommandPool:
    from paywire_braintree.commands import build_commands

    return build_commands(settings)


def build_verifier(settings: GatewaySettings) -> WebhookVerifier:
    from paywire_braintree.webhook import build_verifier

    return build_verifier(settings)


BRAINTREE = GatewayDefinition(
    code="braintree",
    title="Braintree",
    build=build_commands,
    capabilities=Capabilities(capture_multiple=True, vault=True, webhooks=True),
    currencies=CURRENCIES,
    endpoints={
        "live": "https://payments.braintree-api.com",
        "sandbox": "https://payments.sandbox.braintree-api.com",
    },
    secrets=("public_key", "private_key"),
    webhook=build_verifier,
    sandbox="paywire_braintree.sandbox:sandbox",
    options=("merchant_accounts", "custom_fields"),
    # A first operation whose answer was lost is found through search.transactions, whose index
    # may trail the write it reports.
    outcome_window=60.0,
)


@hookimpl
def register_gateways(register: Callable[[GatewayDefinition], None]) -> None:
    register(BRAINTREE)
