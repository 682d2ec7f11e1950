"""paywire-acme: a sample third-party gateway plugin, built only on paywire's public API.

Acme Pay is a small JSON API (see `emulator.py` for the whole of it). This package shows what a
plugin needs: a gateway definition registered through the `paywire` entry point, its commands
assembled from builders, transfer factories, validators, an error mapper and handlers, and a
webhook verifier. The commands are imported when first built, not at discovery, so that
discovering plugins stays cheap.
"""

from __future__ import annotations

from collections.abc import Callable

from paywire import Capabilities, GatewayDefinition, hookimpl

ACME = GatewayDefinition(
    code="acme",
    title="Acme Pay",
    build="paywire_acme.commands:build_commands",
    capabilities=Capabilities(capture_multiple=True, buyer_action=True, webhooks=True),
    endpoints={"live": "https://api.acme-pay.example", "sandbox": "https://sandbox.acme-pay.example"},
    secrets=("api_key", "webhook_secret"),
    webhook="paywire_acme.webhook:build_verifier",
    sandbox="paywire_acme.emulator:sandbox",
)


@hookimpl
def register_gateways(register: Callable[[GatewayDefinition], None]) -> None:
    register(ACME)
