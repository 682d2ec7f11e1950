"""What a provider plugin registers: a gateway definition, its capabilities and its settings."""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import attrs

from paywire.errors import ConfigurationError
from paywire.security import Secret

if TYPE_CHECKING:
    from paywire.command.pool import CommandPool
    from paywire.http.transfer import Timeout
    from paywire.webhook import WebhookVerifier

__all__ = ["Capabilities", "GatewayDefinition", "GatewaySettings"]


@attrs.frozen
class Capabilities:
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

    def restrict(self, **flags: bool) -> Capabilities:
        """These capabilities with some switched off; a method cannot switch on what its gateway lacks."""
        unknown = set(flags) - set(attrs.fields_dict(Capabilities))
        if unknown:
            raise ConfigurationError(f"unknown capability flags {sorted(unknown)}")
        return attrs.evolve(self, **{name: getattr(self, name) and on for name, on in flags.items()})


def _frozen(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


def _codes(value: frozenset[str] | set[str] | list[str] | tuple[str, ...] | None) -> frozenset[str] | None:
    return None if value is None else frozenset(value)


@attrs.frozen(kw_only=True)
class GatewaySettings:
    """The configuration a gateway's commands are built from.

    Secrets are fetched on demand through the `get_secret` hook (the environment by default), so a
    missing credential is reported by name only when a command that needs it is built.
    """

    gateway: str
    provider: str
    environment: str
    base_url: str
    options: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen)
    timeout: Timeout
    credentials: Mapping[str, Secret] = attrs.field(factory=dict, converter=_frozen, repr=False)
    secret_lookup: Callable[[str, str, str], str | None] | None = attrs.field(default=None, repr=False, eq=False)

    def secret(self, name: str) -> Secret:
        """The credential `name`, from the configuration or the `get_secret` hook."""
        if name in self.credentials:
            return self.credentials[name]
        value = self.secret_lookup(self.gateway, self.provider, name) if self.secret_lookup else None
        if not value:
            raise ConfigurationError(
                f"missing credential {name!r} for gateway {self.gateway!r}: set the environment "
                f"variable {env_name(self.gateway, name)} (or provide it through a get_secret hook)",
                provider=self.provider,
            )
        return Secret(value)

    def option(self, name: str, default: Any = None) -> Any:
        return self.options.get(name, default)


def env_name(gateway: str, name: str) -> str:
    return f"PAYWIRE_{gateway}_{name}".upper().replace("-", "_")


def secret_from_environment(gateway: str, provider: str, name: str) -> str | None:
    return os.environ.get(env_name(gateway, name))


@attrs.frozen(kw_only=True)
class GatewayDefinition:
    """A provider gateway as a plugin registers it.

    :param code: the provider code ("stripe"); also the default method code.
    :param title: a human name.
    :param build: builds the command pool from the settings (called once per configured method).
    :param capabilities: what the gateway can do.
    :param currencies: ISO codes the provider accepts; None when it accepts every currency.
    :param endpoints: default base URL per environment ("live", "sandbox").
    :param secrets: names of the credentials the gateway needs (documented, checked by `doctor`).
    :param webhook: builds the webhook verifier from the settings, if the provider sends webhooks.
    """

    code: str
    title: str
    build: Callable[[GatewaySettings], CommandPool] = attrs.field(repr=False)
    capabilities: Capabilities = Capabilities()
    currencies: frozenset[str] | None = attrs.field(default=None, converter=_codes)
    endpoints: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen)
    secrets: tuple[str, ...] = attrs.field(default=(), converter=tuple)
    webhook: Callable[[GatewaySettings], WebhookVerifier] | None = attrs.field(default=None, repr=False)
