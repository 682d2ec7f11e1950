"""The settings a gateway's commands are built from, and where secrets come from."""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any

import attrs

from paywire.errors import ConfigurationError, InvalidRequest
from paywire.http.transfer import Timeout
from paywire.security import Secret, shown_options, shown_url

__all__ = ["GatewaySettings", "env_name", "secret_from_environment"]


def _frozen(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


def env_name(gateway: str, name: str) -> str:
    """The environment variable holding secret `name` of `gateway`: PAYWIRE_<GATEWAY>_<NAME>."""
    return f"PAYWIRE_{gateway}_{name}".upper().replace("-", "_")


def secret_from_environment(gateway: str, provider: str, name: str) -> str | None:
    return os.environ.get(env_name(gateway, name))


@attrs.frozen(kw_only=True)
class GatewaySettings:
    """The configuration a gateway's commands are built from.

    Secrets are fetched on demand through the `get_secret` hook (the environment by default), so a
    missing credential is reported by name only when a command that needs it is built.
    """

    gateway: str
    provider: str
    environment: str
    base_url: str = attrs.field(repr=shown_url)
    options: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen, repr=shown_options)
    timeout: Timeout = attrs.field(factory=Timeout)
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

    def positive(self, name: str, default: float, *, whole: bool = False) -> float:
        """The option `name` as a positive, finite number (`whole`: an int, such as a count of
        bytes), or a `ConfigurationError` naming it: a tolerance of nan or inf would turn a check
        off without a word, and a text would fail only at the first webhook."""
        value = self.options.get(name, default)
        if isinstance(value, bool) or not isinstance(value, int if whole else (int, float)) or not 0 < value < math.inf:
            raise ConfigurationError(f"method {self.gateway!r}: option {name} = {value!r} is not allowed; write a "
                                     f"positive {'whole ' if whole else ''}number", provider=self.provider)
        return value

    def return_url(self, name: str = "return_url") -> str | None:
        """The option `name` as a return URL (None: unset), or a `ConfigurationError` naming it:
        checked as a per-call `return_url` is, so a bad default fails at configuration, not after
        an operation that falls back on it was recorded. The error never quotes the URL."""
        from paywire.service.inputs import require_return_url  # the one rule; a top-level import cycles

        value = self.options.get(name)
        try:
            require_return_url(value)
        except InvalidRequest:
            raise ConfigurationError(f"method {self.gateway!r}: option {name} is not an absolute URL a buyer can be "
                                     "sent back to; write one such as 'https://shop.example/checkout/return' (no "
                                     "spaces; not javascript: or data:)", provider=self.provider) from None
        return value
