"""A provider's offline sandbox: its emulator and what it takes to run payments against it.

A provider plugin names a factory for it in its gateway definition
(`GatewayDefinition(sandbox="paywire_acme.emulator:sandbox")`); the demo, the documentation's
examples and users' own tests start the emulator and configure a method from it, with no
account and no network.
"""

from __future__ import annotations

import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from paywire.config import MethodConfig
from paywire.errors import ConfigurationError
from paywire.gateway_definition import GatewayDefinition, load_reference
from paywire.testing.emulator import EmulatorApp

__all__ = ["Sandbox", "follow_redirect", "load_sandbox"]


def follow_redirect(url: str) -> None:
    """Act as the buyer by visiting the redirect URL (an emulator's challenge or approval page)."""
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310 - an emulator's loopback URL
        response.read()


@attrs.frozen(kw_only=True)
class Sandbox:
    """An emulator plus the test credentials, options and test sources that work with it.

    :param app: the emulator (serve it with `EmulatorServer`).
    :param credentials: the secrets the gateway needs, as the emulator accepts them.
    :param options: provider options for the method configuration.
    :param sources: test payment sources by role: "ok" succeeds, "decline" is declined,
        "buyer_action" needs 3-D Secure or approval, "vault" can be stored for later,
        "accepted" pays through an operation the provider accepts and decides later (a bank
        debit, an eCheck: the sale, or else the capture, answers `accepted`), "refund_accepted"
        is paid at once but its refunds are accepted and decided later, "authorization_accepted"
        is authorized only after the provider's review (its authorization answers `accepted`),
        "partial_authorization" is authorized at once for less than asked (a prepaid card's balance),
        "partial_capture" is authorized in full but its captures are applied for less than asked,
        "partial_refund" is paid at once but its refunds are applied for less than asked.
    :param act_as_buyer: completes a buyer action given its redirect URL.
    :param settle: decides an operation the provider accepted, as the provider would later:
        `settle(reference, succeed)` with the `reference` of the accepted result; the provider
        then reports it (fetch, and its webhook). Needed with any of the `*accepted` sources.
    """

    app: EmulatorApp
    credentials: Mapping[str, str] = attrs.field(repr=False)
    options: Mapping[str, Any] = attrs.field(factory=dict)
    sources: Mapping[str, str] = attrs.field(factory=dict)
    act_as_buyer: Callable[[str], None] = follow_redirect
    settle: Callable[[str, bool], object] | None = None

    def method(self, code: str, base_url: str, **settings: Any) -> MethodConfig:
        """A sandbox method configuration pointing at the emulator served at `base_url`."""
        return MethodConfig.from_mapping(code, {"base_url": base_url, "environment": "sandbox",
                                                "credentials": dict(self.credentials),
                                                "options": dict(self.options), **settings})


def load_sandbox(definition: GatewayDefinition) -> Sandbox:
    """The sandbox a gateway definition names, built fresh."""
    if not definition.sandbox:
        raise ConfigurationError(f"gateway {definition.code!r} ships no sandbox emulator")
    sandbox = load_reference(definition, definition.sandbox, "sandbox")()
    if not isinstance(sandbox, Sandbox):
        raise ConfigurationError(f"{definition.sandbox} returned {type(sandbox).__name__}, not a Sandbox")
    return sandbox
