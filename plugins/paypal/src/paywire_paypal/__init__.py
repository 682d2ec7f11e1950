"""paywire-paypal: PayPal (Orders v2, Payments v2, Vault v3, webhooks) as a paywire gateway.

Discovery reads only the definition below: the commands, the webhook verifier and the sandbox
are imported when a method is first built, so discovering plugins stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from paywire import Capabilities, GatewayDefinition, hookimpl
from paywire_paypal.currencies import CURRENCIES

if TYPE_CHECKING:
    from paywire import CommandPool, GatewaySettings, WebhookVerifier

__all__ = ["PAYPAL", "build_commands", "build_verifier", "register_gateways"]


def build_commands(settings: GatewaySettings) -> CommandPool:
    from paywire_paypal.commands import build_commands

    return build_commands(settings)


def build_verifier(settings: GatewaySettings) -> WebhookVerifier:
    from paywire_paypal.webhook import build_verifier

    return build_verifier(settings)


PAYPAL = GatewayDefinition(
    code="paypal",
    title="PayPal",
    build=build_commands,
    capabilities=Capabilities(capture_multiple=True, vault=True, buyer_action=True, webhooks=True),
    currencies=CURRENCIES,
    endpoints={"live": "https://api-m.paypal.com", "sandbox": "https://api-m.sandbox.paypal.com"},
    secrets=("client_id", "client_secret", "webhook_id"),
    webhook=build_verifier,
    sandbox="paywire_paypal.emulator.sandbox:sandbox",
    options=("webhook_verification", "webhook_tolerance", "webhook_cert_hosts", "webhook_ca_certs"),
)


@hookimpl
def register_gateways(register: Callable[[GatewayDefinition], None]) -> None:
    register(PAYPAL)
