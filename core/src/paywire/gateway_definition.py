"""What a provider plugin registers: its gateway definition and capabilities.

These are read at discovery, before any request, so they are plain named tuples: importing them
must not pull in what a request needs (attrs, urllib3, ssl).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple

from paywire.errors import ConfigurationError, PluginError

if TYPE_CHECKING:
    from paywire.command.pool import CommandPool
    from paywire.settings import GatewaySettings
    from paywire.webhook import WebhookVerifier

__all__ = ["Capabilities", "GatewayDefinition", "load_reference"]


class Capabilities(NamedTuple):
    """What a gateway (and a method configured on it) can do; Magento's can_* flags."""

    authorize: bool = True
    sale: bool = True
    capture: bool = True
    capture_partial: bool = True
    capture_multiple: bool = False
    void: bool = True
    refund: bool = True
    refund_partial: bool = True
    refund_multiple: bool = True
    vault: bool = False
    buyer_action: bool = False
    webhooks: bool = False
    # `void` also cancels a payment still waiting for its buyer, before anything is authorized
    # (Stripe cancels a PaymentIntent in requires_action); off where the provider has no such
    # cancel (a PayPal order awaiting approval), so `void` refuses it before sending anything.
    cancel_waiting: bool = False
    # A capture the provider undid after it succeeded (a chargeback) still counts against its
    # authorization, which the provider does not offer to capture again (PayPal). Off, what an
    # authorization still holds after such an undoing is what the provider's reading says.
    undone_capture_consumes: bool = False
    # `void` also releases what a partly captured authorization has left (PayPal voids an
    # authorization after a non-final partial capture): the captures stand, nothing more can be
    # captured. Its `fetch` then lists such a void (`ProviderOperation` kind "void"), which is how
    # reconciliation tells it from a final capture. Off, a payment with a capture is refused a
    # void before anything is sent.
    void_after_capture: bool = False
    # A final capture the provider made closes its authorization for good, also when the provider
    # declines it afterwards without ever reporting it done (Braintree: a final partial capture
    # held SETTLEMENT_PENDING, a bank account's, then declined at settlement; its authorization
    # takes no further capture). Off, such a capture leaves the rest to capture, as a capture the
    # provider refused when asked (PayPal: a DECLINED capture took nothing of its authorization).
    declined_final_capture_closes: bool = False

    def restrict(self, **flags: bool) -> Capabilities:
        """These capabilities with some switched off; a method cannot switch on what its gateway lacks."""
        unknown = set(flags) - set(self._fields)
        if unknown:
            raise ConfigurationError(f"unknown capability flags {sorted(unknown)}; known: {list(self._fields)}")
        return self._replace(**{name: getattr(self, name) and bool(on) for name, on in flags.items()})


class GatewayDefinition(NamedTuple):
    """A provider gateway as a plugin registers it.

    :param code: the provider code ("stripe"); also the default method code.
    :param title: a human name.
    :param build: builds the command pool from the settings (called once per configured method).
        Give it as "module:function": the module is imported when a method is first built, so
        discovering plugins stays cheap (a callable works too).
    :param capabilities: what the gateway can do.
    :param currencies: ISO codes the provider accepts; None when it accepts every currency.
    :param endpoints: default base URL per environment ("live", "sandbox").
    :param secrets: names of the credentials the gateway needs.
    :param webhook_secrets: those of `secrets` that belong to one webhook endpoint, not to the
        account (Stripe's signing secret, PayPal's webhook id): two methods of one account may
        each have an endpoint, and a credential, of their own. Every other credential tells the
        account (see `PaymentService`: one account's methods receive each other's events).
    :param webhook: builds the webhook verifier from the settings, if the provider sends webhooks;
        "module:function" as `build`.
    :param outcome_window: seconds the provider may need, after a request's last byte, before an
        operation it applied shows in what `fetch` reads (a search index catching up, an
        asynchronous write). Reconciliation adds it to a request's longest life before it
        concludes that a request was not applied.
    :param key_lives: seconds the provider keeps a command's idempotency key, by command, counted
        from the request that first carried it (Stripe prunes keys after 24 hours). A request
        sent again with its key after that may be applied a second time, so the payment service
        does not resend an unknown operation once its key may be gone: reconciliation settles it.
        A command not listed keeps its key for good (or the plugin finds the earlier operation
        by its key itself); 0 for one the provider deduplicates by no key at all, which is then
        never resent once it may have taken effect.
    :param sandbox: "module:function" returning the provider's offline `paywire.testing.Sandbox`
        (its emulator, test credentials and test sources); the demo and tests use it.
    :param options: the names of the provider-specific options a method may set
        (`[methods.<code>.options]`); a name not listed is a configuration error with the closest
        listed one suggested. None: not declared, nothing is checked.
    """

    code: str
    title: str
    build: Callable[[GatewaySettings], CommandPool] | str
    capabilities: Capabilities = Capabilities()
    currencies: frozenset[str] | None = None
    endpoints: Mapping[str, str] = {}
    secrets: tuple[str, ...] = ()
    webhook: Callable[[GatewaySettings], WebhookVerifier] | str | None = None
    sandbox: str | None = None
    outcome_window: float = 0.0
    key_lives: Mapping[str, float] = {}
    options: tuple[str, ...] | None = None
    webhook_secrets: tuple[str, ...] = ()

    def __repr__(self) -> str:
        return f"GatewayDefinition(code={self.code!r}, title={self.title!r})"

    def accepts(self, currency: str) -> bool:
        return self.currencies is None or currency in self.currencies


def load_reference(definition: GatewayDefinition, reference: Callable[..., Any] | str, what: str) -> Any:
    """`reference` itself, or what a "module:attribute" string names, imported now; a plugin whose
    reference does not resolve is named in the error."""
    if not isinstance(reference, str):
        return reference
    module, _, name = reference.partition(":")
    try:
        return getattr(importlib.import_module(module), name)
    except (ImportError, AttributeError) as exc:
        raise PluginError(f"gateway {definition.code!r}: its {what} {reference!r} cannot be loaded: {exc}",
                          plugin=definition.code) from exc
