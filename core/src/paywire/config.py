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
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs

from paywire.config_schema import CAPABILITY_FLAGS, check_code, check_limits, check_value
from paywire.countries import check_country
from paywire.errors import ConfigurationError, InvalidRequest
from paywire.money import Money, exponent_of
from paywire.security import Secret, shown_options, shown_url

__all__ = ["CAPABILITY_FLAGS", "MethodConfig", "PaymentMethodList", "load_config"]

def _codes(value: Iterable[str] | None) -> frozenset[str]:
    return frozenset(value or ())


def _frozen(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


def _secrets(value: Mapping[str, str | Secret] | None) -> Mapping[str, Secret]:
    return MappingProxyType({k: v if isinstance(v, Secret) else Secret(v) for k, v in (value or {}).items()})


def _checked(name: str) -> Any:
    """A field validator applying the configuration schema's check, for methods built in code."""
    def check(instance: MethodConfig, attribute: attrs.Attribute[Any], value: Any) -> None:
        check_value(instance.code, name, value)
    return check


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
    :param max_total: the largest order total, likewise; not below `min_total`.
    :param base_url: the API endpoint; defaults to the provider's for the environment.
    :param capabilities: capability flags (`can_void = false`, ...) switching features off.
    :param options: provider-specific settings passed to the plugin.
    """

    code: str = attrs.field(validator=lambda _, __, value: check_code(value))
    provider: str = attrs.field(default=attrs.Factory(lambda self: self.code, takes_self=True))
    active: bool = True
    title: str | None = None
    payment_action: str = attrs.field(default="authorize", validator=_checked("payment_action"))
    countries: frozenset[str] = attrs.field(factory=frozenset, converter=_codes, validator=_checked("countries"))
    currencies: frozenset[str] = attrs.field(factory=frozenset, converter=_codes, validator=_checked("currencies"))
    min_total: str | None = attrs.field(default=None, converter=_decimal_text,
                                        validator=attrs.validators.optional(_checked("min_total")))
    max_total: str | None = attrs.field(default=None, converter=_decimal_text,
                                        validator=attrs.validators.optional(_checked("max_total")))
    sort_order: int = 0
    environment: str = attrs.field(default="sandbox", validator=_checked("environment"))
    base_url: str | None = attrs.field(default=None, repr=shown_url)
    ca_certs: str | None = None
    connect_timeout: float = attrs.field(default=5.0, validator=_checked("connect_timeout"))
    read_timeout: float = attrs.field(default=30.0, validator=_checked("read_timeout"))
    capabilities: Mapping[str, bool] = attrs.field(factory=dict, converter=_frozen)
    options: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen, repr=shown_options)
    credentials: Mapping[str, Secret] = attrs.field(factory=dict, converter=_secrets, repr=False)

    def __attrs_post_init__(self) -> None:
        check_limits(self.code, self.min_total, self.max_total)  # the fields' own checks ran first

    @classmethod
    def from_mapping(cls, code: str, data: Mapping[str, Any]) -> MethodConfig:
        """A method from a TOML table or dict; capability flags may be given as `can_*` keys.

        Every key and value is checked here, so a typo or a wrong type is one line naming the
        setting and what it accepts; `PAYWIRE_<CODE>_BASE_URL` and `_ENVIRONMENT` override the
        table (and apply with no table at all).
        """
        from paywire.config_schema import method_values

        values = method_values(code, data)
        try:
            return cls(code=code, **values)
        except (TypeError, ValueError) as exc:  # pragma: no cover - method_values checks every field first
            raise ConfigurationError(f"method {code!r}: {exc}") from None

    def limits(self, currency: str) -> tuple[Money | None, Money | None]:
        low = Money.of(self.min_total, currency) if self.min_total is not None else None
        high = Money.of(self.max_total, currency) if self.max_total is not None else None
        return low, high

    def unavailable(self, *, country: str | None, amount: Money | None) -> str | None:
        """Why this method may not be offered for a checkout in `country` totalling `amount`
        (one phrase naming the setting), or None when it may."""
        if not self.active:
            return "it is not active"
        if country is not None and self.countries and country not in self.countries:
            return f"it is not offered in {country} (countries: {', '.join(sorted(self.countries))})"
        if amount is None:
            return None
        if self.currencies and amount.currency not in self.currencies:
            return f"it does not take {amount.currency} (currencies: {', '.join(sorted(self.currencies))})"
        if self.min_total is not None and amount.amount < Decimal(self.min_total):
            return f"{amount} is below its min_total {self.min_total}"
        if self.max_total is not None and amount.amount > Decimal(self.max_total):
            return f"{amount} is above its max_total {self.max_total}"
        return None

    def available_for(self, *, country: str | None, amount: Money | None) -> bool:
        """Whether this method may be offered for a checkout in `country` totalling `amount`."""
        return self.unavailable(country=country, amount=amount) is None


class PaymentMethodList:
    """The configured methods (Magento's PaymentMethodList), in sort order."""

    def __init__(self, methods: Iterable[MethodConfig]) -> None:
        self._methods = sorted(methods, key=lambda m: (m.sort_order, m.code))
        codes = [m.code for m in self._methods]
        duplicates = sorted({c for c in codes if codes.count(c) > 1})
        if duplicates:
            raise ConfigurationError(f"payment methods configured twice: {duplicates}")
        from paywire.settings import env_name

        readers: dict[str, list[str]] = {}
        for code in codes:  # 'cards-eu' and 'cards_eu', 'Cards' and 'cards': one PAYWIRE_CARDS_EU_API_KEY
            readers.setdefault(env_name(code, ""), []).append(code)
        shared = next((both for both in readers.values() if len(both) > 1), None)
        if shared:
            raise ConfigurationError(f"payment methods {' and '.join(map(repr, shared))} would read the same "
                                     f"environment variables ({env_name(shared[0], 'API_KEY')}, ...), so one "
                                     "account's credentials and environment for both; rename one")

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
        if country is not None:
            check_country(country)  # 'de' or 'XX' would match nothing: say so instead
        if currency is not None:
            exponent_of(currency)
        if amount is not None and not isinstance(amount, Money):  # a float failed untyped on its currency
            raise InvalidRequest(f"the checkout amount must be Money, not {type(amount).__name__} {amount!r}: give "
                                 "Money.of(\"19.99\", currency) (floats are refused: they cannot hold money exactly)",
                                 param="amount")
        if amount is not None and currency is not None and amount.currency != currency:
            raise InvalidRequest(f"the checkout amount is in {amount.currency} but currency {currency} was asked for: "
                                 "give one currency, or both alike", param="currency")
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


MAX_CONFIG_CHARS = 1 << 20  # a paywire.toml is a few kilobytes; a device or a stream that never ends is refused


def load_config(source: str | Path | Mapping[str, Any] | None) -> tuple[list[MethodConfig], Mapping[str, Any]]:
    """Methods and the `[paywire]` table from a TOML file, a dict, or `PAYWIRE_CONFIG`/`./paywire.toml`.

    Returns no methods (and the caller configures one per installed provider) when there is no file.
    """
    if source is None:
        env = os.environ.get("PAYWIRE_CONFIG")
        source = Path(env) if env else (Path("paywire.toml") if Path("paywire.toml").exists() else None)
        if source is None:
            return [], {}
    if isinstance(source, str) and not source.strip():  # Path("") is the current folder
        raise ConfigurationError("the configuration file's name is empty (--config '', or PAYWIRE_CONFIG set to "
                                 "nothing): name the paywire.toml to read")
    if isinstance(source, (str, Path)):
        path = Path(source)
        try:
            with path.open(encoding="utf-8") as file:  # read no further than a configuration can be
                text = file.read(MAX_CONFIG_CHARS + 1)
            if len(text) > MAX_CONFIG_CHARS:
                raise ConfigurationError(
                    f"configuration file {str(path)!r} is larger than {MAX_CONFIG_CHARS} characters, far more than "
                    "any paywire configuration: name the paywire.toml to read (--config or PAYWIRE_CONFIG)")
            data: Mapping[str, Any] = tomllib.loads(text)
        except FileNotFoundError:
            raise ConfigurationError(f"configuration file {str(path)!r} does not exist") from None
        except UnicodeDecodeError:
            raise ConfigurationError(f"configuration file {str(path)!r} is not UTF-8 text") from None
        except OSError as exc:
            raise ConfigurationError(f"cannot read configuration file {str(path)!r}: {exc.strerror}") from None
        except tomllib.TOMLDecodeError as exc:
            raise ConfigurationError(f"configuration file {str(path)!r} is not valid TOML: {exc}") from None
        try:
            return _read_tables(data)
        except ConfigurationError as error:  # which file to fix, not only which table of it
            error.message = f"configuration file {str(path)!r}: {error.message}"
            raise
    return _read_tables(source)


def _read_tables(data: Mapping[str, Any]) -> tuple[list[MethodConfig], Mapping[str, Any]]:
    from paywire.config_schema import check_keys, paywire_table

    if not isinstance(data, Mapping):
        raise ConfigurationError(f"configuration must be a table, not {type(data).__name__}")
    check_keys(data, ("methods", "paywire"), "the configuration's top level")
    tables = data.get("methods") or {}
    if not isinstance(tables, Mapping) or not all(isinstance(t, Mapping) for t in tables.values()):
        raise ConfigurationError("[methods] must hold one table per method: [methods.<code>]")
    methods = [MethodConfig.from_mapping(str(code), table) for code, table in tables.items()]
    return methods, paywire_table(data.get("paywire") or {})
