"""What a configuration may hold, checked key by key and value by value.

A typo (`ledgr`, `conect`, `retrun_url`) names the key and the closest known one; a wrong type or
value (`timeout = 5`, `min_total = "abc"`, `currencies = ["EURO"]`) is one line saying what is
allowed. Nothing is silently ignored or guessed.
"""

from __future__ import annotations

import difflib
import os
import re
from collections.abc import Callable, Collection, Mapping
from decimal import Decimal
from typing import Any

from paywire.countries import COUNTRY_CODES
from paywire.errors import ConfigurationError
from paywire.money import CURRENCY_EXPONENTS
from paywire.security import masked_url

__all__ = ["CAPABILITY_FLAGS", "ENVIRONMENTS", "PAYMENT_ACTIONS", "PAYWIRE_KEYS", "check_code", "check_keys",
           "check_limits", "check_options", "check_value", "method_values", "paywire_table"]

CAPABILITY_FLAGS = {
    "can_authorize": "authorize",
    "can_sale": "sale",
    "can_capture": "capture",
    "can_capture_partial": "capture_partial",
    "can_capture_multiple": "capture_multiple",
    "can_void": "void",
    "can_refund": "refund",
    "can_refund_partial": "refund_partial",
    "can_refund_multiple": "refund_multiple",
    "can_vault": "vault",
}
PAYMENT_ACTIONS = ("authorize", "authorize_capture")
ENVIRONMENTS = ("sandbox", "live")
PAYWIRE_KEYS = ("ledger", "serve", "buyer_wait")
TIMEOUT_KEYS = ("connect", "read")
# An HTTP timeout past a day is a mistake (`inf`, `1e300`); past some 24 days (2**31 ms) the
# operating system's waits overflow, and every request would fail with it.
LONGEST_TIMEOUT = 24 * 3600.0
_DECIMAL = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_METHOD_CODE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")


def check_code(code: Any) -> None:
    """Refuse a method code that cannot name the method everywhere it must: its environment
    variables (`PAYWIRE_<CODE>_API_KEY`, which a shell cannot set with a space or a dot in it) and
    its webhook path (`/webhooks/<code>`, which no empty code or `/` can be)."""
    if not isinstance(code, str) or not _METHOD_CODE.fullmatch(code):
        raise ConfigurationError(f"method code {code!r} is not allowed; use letters, digits, '_' and '-', starting "
                                 "with a letter or digit (it names the method's environment variables, "
                                 "PAYWIRE_<CODE>_..., and its webhook path)")


def check_keys(table: Mapping[str, Any], known: Collection[str], where: str) -> None:
    """Refuse the first key of `table` not in `known`, suggesting the closest known one."""
    for key in table:
        if key not in known:
            close = difflib.get_close_matches(str(key), [str(k) for k in known], n=1, cutoff=0.6)
            hint = f"; did you mean {close[0]!r}?" if close else f"; known: {', '.join(sorted(known)) or 'none'}"
            raise ConfigurationError(f"unknown setting {key!r} in {where}{hint}")


def check_options(code: str, provider: str, options: Mapping[str, Any], known: Collection[str] | None) -> None:
    """A method's provider-specific options against those its plugin declares (None: undeclared)."""
    if known is not None:
        check_keys(options, known, f"[methods.{code}.options] (provider {provider!r} takes "
                                   f"{', '.join(sorted(known)) or 'no options'})")


def paywire_table(table: Any) -> dict[str, Any]:
    """The `[paywire]` table, checked."""
    if not isinstance(table, Mapping):
        raise ConfigurationError("[paywire] must be a table, e.g. ledger = \"sqlite:///paywire.db\"")
    check_keys(table, PAYWIRE_KEYS, "[paywire]")
    if "ledger" in table and (not isinstance(table["ledger"], str) or not table["ledger"]):
        raise ConfigurationError(f"[paywire] ledger must be a URL string such as 'sqlite:///paywire.db', "
                                 f"not {table['ledger']!r}")
    if "serve" in table and not isinstance(table["serve"], Mapping):  # its keys: paywire.serve.server
        raise ConfigurationError("[paywire.serve] must be a table, e.g. port = 8080")
    if "buyer_wait" in table:
        from paywire.service.waiting import checked

        checked(table["buyer_wait"], "[paywire] buyer_wait")
    return dict(table)


def _wrong(code: str, key: str, value: Any, allowed: str) -> ConfigurationError:
    return ConfigurationError(f"method {code!r}: {key} = {_shown(key, value)} is not allowed; {allowed}")


def _shown(key: str, value: Any) -> str:
    """A setting's value as an error shows it: never a credential's, nor a URL's password."""
    if key.split(".")[0] == "credentials":
        return f"<a {type(value).__name__}, not shown>"
    if isinstance(value, str):
        return repr(masked_url(value))
    return repr(value)


def _credentials(code: str, key: str, value: Any) -> dict[str, Any]:
    table = _table(code, key, value)
    for name, secret in table.items():
        if not isinstance(secret, str) or not secret:
            from paywire.settings import env_name

            raise _wrong(code, f"{key}.{name}", secret, f"write a non-empty string, or better leave it out of the "
                                                        f"file and set {env_name(code, name)}")
    return table


def _text(code: str, key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise _wrong(code, key, value, "write a non-empty string")
    return value


def _flag(code: str, key: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise _wrong(code, key, value, "write true or false")
    return value


def _choice(options: tuple[str, ...]) -> Callable[[str, str, Any], str]:
    def check(code: str, key: str, value: Any) -> str:
        if value not in options:
            raise _wrong(code, key, value, "use one of " + ", ".join(repr(o) for o in options))
        return str(value)
    return check


def _integer(code: str, key: str, value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise _wrong(code, key, value, "write a whole number")
    return value


def _total(code: str, key: str, value: Any) -> str:
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return str(value)
    if isinstance(value, str) and _DECIMAL.fullmatch(value):
        return value
    raise _wrong(code, key, value, "write the order total as a decimal string such as '10.00'")


def _codes(valid: Collection[str], what: str, example: str) -> Callable[[str, str, Any], frozenset[str]]:
    def check(code: str, key: str, value: Any) -> frozenset[str]:
        if isinstance(value, str) or not isinstance(value, (list, tuple, set, frozenset)):
            raise _wrong(code, key, value, f"write a list of {what} such as [{example!r}]")
        for item in value:
            if not isinstance(item, str) or item not in valid:  # a list or table in it is not even hashable
                upper = item.upper() if isinstance(item, str) else None
                hint = f" (codes are upper case: {upper!r})" if upper in valid else ""
                raise _wrong(code, key, item, f"write {what} such as {example!r}{hint}")
        return frozenset(value)
    return check


def _seconds(code: str, key: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= LONGEST_TIMEOUT:
        raise _wrong(code, key, value, f"write a positive number of seconds, at most {LONGEST_TIMEOUT:.0f} (a day)")
    return float(value)


def _table(code: str, key: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise _wrong(code, key, value, f"write a table: [methods.{code}.{key}]")
    return dict(value)


_FIELDS: dict[str, Callable[[str, str, Any], Any]] = {
    "provider": _text,
    "active": _flag,
    "title": _text,
    "payment_action": _choice(PAYMENT_ACTIONS),
    "countries": _codes(COUNTRY_CODES, "ISO 3166-1 alpha-2 country codes", "DE"),
    "currencies": _codes(CURRENCY_EXPONENTS, "ISO 4217 currency codes", "EUR"),
    "min_total": _total,
    "max_total": _total,
    "sort_order": _integer,
    "environment": _choice(ENVIRONMENTS),
    "base_url": _text,
    "ca_certs": _text,
    "connect_timeout": _seconds,
    "read_timeout": _seconds,
    "options": _table,
    "credentials": _credentials,
}
_TABLES = ("timeout", "capabilities")


def check_value(code: str, key: str, value: Any) -> Any:
    """The value of setting `key` of method `code`, checked (and converted)."""
    return _FIELDS[key](code, key, value)


def check_limits(code: str, min_total: str | None, max_total: str | None) -> None:
    """Refuse order total limits that no total meets. Both are decimal strings applied in the
    order's currency (checked by `check_value`), so any two compare; a method, from a file or
    built in code, is checked here when it is made."""
    if min_total is not None and max_total is not None and Decimal(min_total) > Decimal(max_total):
        raise ConfigurationError(f"method {code!r}: min_total {min_total} is above max_total {max_total}, so no "
                                 "order total could use it; lower min_total or raise max_total")


def method_values(code: str, data: Mapping[str, Any]) -> dict[str, Any]:
    """The `MethodConfig` fields of method `code` from its table, each checked (the two limits
    together by `check_limits`, when the MethodConfig is made); environment overrides
    (`PAYWIRE_<CODE>_BASE_URL`, `PAYWIRE_<CODE>_ENVIRONMENT`) applied."""
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"method {code!r} must be a table: [methods.{code}]")
    for key in data:  # the commonest mistake: a credential written among the settings
        if key not in _FIELDS and re.search(r"key|secret|token|password", str(key), re.IGNORECASE):
            from paywire.settings import env_name

            raise ConfigurationError(f"[methods.{code}] {key}: a credential is not a setting; set the environment "
                                     f"variable {env_name(code, str(key))}, or write it under "
                                     f"[methods.{code}.credentials]")
    check_keys(data, [*_FIELDS, *_TABLES, *CAPABILITY_FLAGS], f"[methods.{code}]")
    values: dict[str, Any] = {}
    flags: dict[str, bool] = {}
    for key, value in data.items():
        if key in CAPABILITY_FLAGS:
            flags[CAPABILITY_FLAGS[key]] = _flag(code, key, value)
        elif key == "capabilities":
            table = _table(code, key, value)
            check_keys(table, CAPABILITY_FLAGS.values(), f"[methods.{code}.capabilities]")
            flags.update({name: _flag(code, f"capabilities.{name}", on) for name, on in table.items()})
        elif key == "timeout":
            if not isinstance(value, Mapping):
                raise _wrong(code, key, value, "write a table of seconds: timeout = { connect = 5, read = 30 }")
            check_keys(value, TIMEOUT_KEYS, f"[methods.{code}.timeout]")
            for part, seconds in value.items():
                values[f"{part}_timeout"] = _seconds(code, f"timeout.{part}", seconds)
        elif value is not None:
            values[key] = _FIELDS[key](code, key, value)
    for name in ("base_url", "environment"):
        variable = f"PAYWIRE_{code}_{name}".upper().replace("-", "_")
        override = os.environ.get(variable)
        if override:
            values[name] = _FIELDS[name](code, f"{name} (from {variable})", override)
    if flags:
        values["capabilities"] = flags
    return values
