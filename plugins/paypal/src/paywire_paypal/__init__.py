"""paywire-paypal: PayPal (Orders v2, Payments v2, Vault v3, webhooks) as a paywire gateway.

Discovery reads only the definition below: the commands, the webhook verifier and the sandbox
are imported when a method is first built, so discovering plugins stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable

from paywire import Capabilities, GatewayDefinition, hookimpl
from paywire_paypal.currencies import CURRENCIES

__all__ = ["PAYPAL", "register_gateways"]


PAYPAL = GatewayDefinition(
    code="paypal",
    title="PayPal",
    build="paywire_paypal.commands:build_commands",
    capabilities=Capabilities(capture_multiple=True, vault=True, buyer_action=True, webhooks=True,
                              undone_capture_consumes=True, void_after_capture=True),
    currencies=CURRENCIES,
    endpoints={"live": "https://api-m.paypal.com", "sandbox": "https://api-m.sandbox.paypal.com"},
    secrets=("client_id", "client_secret", "webhook_id"),
    webhook_secrets=("webhook_id",),  # each listener URL has its own; the app's client id tells the account
    webhook="paywire_paypal.webhook:build_verifier",
    sandbox="paywire_paypal.emulator.sandbox:sandbox",
    # How long PayPal keeps a PayPal-Request-Id, by API (its specs' "stores keys for"): Orders v2
    # 6 hours, Payments v2 45 days, Vault v3 3 hours. Not a void: voiding again moves no money.
    key_lives={"authorize": 6 * 3600.0, "sale": 6 * 3600.0, "complete": 6 * 3600.0,
               "capture": 45 * 86400.0, "reauthorize": 45 * 86400.0, "refund": 45 * 86400.0, "vault": 3 * 3600.0},
    options=("webhook_verification", "webhook_tolerance", "webhook_cert_hosts", "webhook_ca_certs"),
)


@hookimpl
def register_gateways(register: Callable[[GatewayDefinition], None]) -> None:
    register(PAYPAL)
