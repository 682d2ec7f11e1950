"""Method configuration (Magento's config.xml and value handlers) and the payment method list.

A payment method is defined by configuration alone (Magento's method adapter): which provider,
whether it is active, its title, payment action, where it may be offered, its environment and
endpoint, and which capabilities it switches off. Secrets never live here: they come from the
environment or a `get_secret` hook (or, from code, as `credentials`).
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Iterable, Iterator, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from paywire.errors import ConfigurationError
from paywire.money import Money
from paywire.security import Secret

__all__ = ["CAPABILITY_FLAGS", "MethodConfig", "PaymentMethodList", "load_config"]

CAPABILITY_FLAGS = {
    "can_authorize": "authorize",
    "can_sale": "sale",
    "can_capture": "capture",
    "can_capture_partial": "capture_partial",
    "can_capture_multiple": "capture_multiple",
    "can_void": "void",
    "can_refund": "refund",
    "can_refund_partial": "refund_partial",
    "can_vault": "vault",
}
PAYMENT_ACTIONS = ("authorize", "authorize_capture")
ENVIRONMENTS = ("sandbox", "live")


def _codes(value: Iterable[str] | None) -> frozenset[str]:
    return frozenset(item.upper() for item in (value or ()))


def _frozen(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


def _secrets(value: Mapping[str, str | Secret] | None) -> Mapping[str, Secret]:
    return MappingProxyType({k: v if isinstance(v, Secret) else Secret(v) for k, v in (value or {}).items()})


def _decimal_text(value: str | int | None) -> str | None:
    if value is None:
        return None
    if isinstance(value, float):
        raise ConfigurationError(f"order total limit {value!r} is a float; write it as a string like '10.00'")
    return str(value)


@attrs.frozen(kw_only=True)
class MethodConfig:
    """One configured payment method.

    :param code: the method code used in calls and in the ledger (e.g. "stripe", "stripe_eu").
    :param provider: the gateway provider code; defaults to `code`.
    :param payment_action: "authorize" (capture later) or "authorize_capture" (sale).
    :param countries: billing countries where it is offered (empty: everywhere).
    :param currencies: currencies it is offered in (empty: every currency the provider takes).
    :param min_total: the smallest order total, a decimal string in the order's currency.
    :param base_url: the API endpoint; defaults to the provider's for the environment.
    :param capabilities: capability flags (`can_void = false`, ...) switching features off.
    :param options: provider-specific settings passed to the plugin.
    """

    code: str
    provider: str = attrs.field(default=attrs.Factory(lambda self: self.code, takes_self=True))
    active: bool = True
    title: str | None = None
    payment_action: str = attrs.field(default="authorize", validator=attrs.validators.in_(PAYMENT_ACTIONS))
    countries: frozenset[str] = attrs.field(factory=frozenset, converter=_codes)
    currencies: frozenset[str] = attrs.field(factory=frozenset, converter=_codes)
    min_total: str | None = attrs.field(default=None, converter=_decimal_text)
    max_total: str | None = attrs.field(default=None, converter=_decimal_text)
    sort_order: int = 0
    environment: str = attrs.field(default="sandbox", validator=attrs.validators.in_(ENVIRONMENTS))
    base_url: str | None = None
    ca_certs: str | None = None
    connect_timeout: float = 5.0
    read_timeout: float = 30.0
    capabilities: Mapping[str, bool] = attrs.field(factory=dict, converter=_frozen)
    options: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen)
    credentials: Mapping[str, Secret] = attrs.field(factory=dict, converter=_secrets, repr=False)

    @classmethod
    def from_mapping(cls, code: str, data: Mapping[str, Any]) -> MethodConfig:
        """A method from a TOML table or dict; capability flags may be given as `can_*` keys."""
        values = dict(data)
        flags = dict(values.pop("capabilities", {}) or {})
        for key in list(values):
            if key in CAPABILITY_FLAGS:
                flags[CAPABILITY_FLAGS[key]] = values.pop(key)
        timeout = values.pop("timeout", None)
        if isinstance(timeout, Mapping):
            values.setdefault("connect_timeout", timeout.get("connect", 5.0))
            values.setdefault("read_timeout", timeout.get("read", 30.0))
        known = {field.name for field in attrs.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigurationError(
                f"method {code!r}: unknown settings {unknown}; known settings are "
                f"{sorted(known - {'code'}) + sorted(CAPABILITY_FLAGS)}"
            )
        for name in ("base_url", "environment"):
            override = os.environ.get(f"PAYWIRE_{code}_{name}".upper())
            if override:
                values[name] = override
        try:
            return cls(code=code, capabilities=flags, **values)
        except (TypeError, ValueError) as exc:
            raise ConfigurationError(f"method {code!r}: {exc}") from exc

    def limits(self, currency: str) -> tuple[Money | None, Money | None]:
        low = Money.of(self.min_total, currency) if self.min_total is not None else None
        high = Money.of(self.max_total, currency) if self.max_total is not None else None
        return low, high

    def available_for(self, *, country: str | None, amount: Money | None) -> bool:
        """Whether this method may be offered for a checkout in `country` totalling `amount`."""
        if not self.active:
            return False
        if country is not None and self.countries and country.upper() not in self.countries:
            return False
        if amount is None:
            return True
        if self.currencies and amount.currency not in self.currencies:
            return False
        low, high = self.limits(amount.currency)
        return not ((low is not None and amount < low) or (high is not None and amount > high))


class PaymentMethodList:
    """The configured methods (Magento's PaymentMethodList), in sort order."""

    def __init__(self, methods: Iterable[MethodConfig]) -> None:
        self._methods = sorted(methods, key=lambda m: (m.sort_order, m.code))
        codes = [m.code for m in self._methods]
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        if duplicates:
            raise ConfigurationError(f"payment methods configured twice: {duplicates}")

    def __iter__(self) -> Iterator[MethodConfig]:
        return iter(self._methods)

    def __len__(self) -> int:
        return len(self._methods)

    def get(self, code: str) -> MethodConfig:
        for method in self._methods:
            if method.code == code:
                return method
        known = ", ".join(m.code for m in self._methods) or "none"
        raise ConfigurationError(f"unknown payment method {code!r}; configured methods: {known}")

    def available(
        self, *, country: str | None = None, currency: str | None = None, amount: Money | None = None,
        supported: Mapping[str, frozenset[str] | None] | None = None,
    ) -> list[MethodConfig]:
        """Methods that may be offered for this checkout context, in sort order.

        `supported` maps provider codes to the currencies the provider accepts (None: all).
        """
        if amount is not None and currency is not None and amount.currency != currency:
            raise ConfigurationError(f"amount is in {amount.currency} but currency {currency} was asked for")
        currency = amount.currency if amount is not None else currency
        result = []
        for method in self._methods:
            if not method.available_for(country=country, amount=amount):
                continue
            if currency is not None:
                if method.currencies and currency not in method.currencies:
                    continue
                accepted = (supported or {}).get(method.provider)
                if accepted is not None and currency not in accepted:
                    continue
            result.append(method)
        return result


def load_config(source: str | Path | Mapping[str, Any] | None) -> tuple[list[MethodConfig], Mapping[str, Any]]:
    """Methods and the `[paywire]` table from a TOML file, a dict, or `PAYWIRE_CONFIG`/`./paywire.toml`.

    Returns no methods (and the caller configures one per installed provider) when there is no file.
    """
    if source is None:
        env = os.environ.get("PAYWIRE_CONFIG")
        source = Path(env) if env else (Path("paywire.toml") if Path("paywire.toml").exists() else None)
        if source is None:
            return [], {}
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            data: Mapping[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ConfigurationError(f"configuration file {str(path)!r} does not exist") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"configuration file {str(path)!r} is not valid TOML: {exc}") from None
    else:
        data = source
    unknown = sorted(set(data) - {"methods", "paywire"})
    if unknown:
        raise ConfigurationError(f"unknown configuration tables {unknown}; use [paywire] and [methods.<code>]")
    methods = [MethodConfig.from_mapping(code, table) for code, table in (data.get("methods") or {}).items()]
    return methods, dict(data.get("paywire") or {})
