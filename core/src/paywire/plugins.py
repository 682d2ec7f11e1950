"""Plugin loading and the typed facade over pluggy's plugin manager.

Plugins are found through the `paywire` entry-point group, loaded lazily and once, filtered by
two environment variables, and checked with `check_pending()`. A plugin that fails to import or
breaks the hook contract is reported by name and distribution; the others still load.

- `PAYWIRE_PLUGINS`: an allow-list of entry-point names, separated by commas or spaces (unset:
  all); a name that is not installed is a `PluginWarning`.
- `PAYWIRE_DISABLE_PLUGINS`: a deny-list, the same way.

Callers never touch `pm.hook`; the methods here fill the hook arguments from a command context.
"""

from __future__ import annotations

import os
import threading
import warnings
from collections.abc import Callable, Mapping
from importlib import metadata
from typing import TYPE_CHECKING, Any, NamedTuple, cast

import pluggy

from paywire import _default_hooks, hookspecs
from paywire.errors import ConfigurationError, PluginError

if TYPE_CHECKING:
    from paywire.command.context import CommandContext
    from paywire.command.result import CommandResult
    from paywire.errors import PaywireError
    from paywire.gateway_definition import GatewayDefinition
    from paywire.http.response import Response
    from paywire.http.transfer import Transfer
    from paywire.settings import GatewaySettings
    from paywire.subject import Subject
    from paywire.validator.result import Result
    from paywire.webhook import WebhookBatch, WebhookEvent, WebhookVerifier

__all__ = ["ENTRY_POINT_GROUP", "PluginFailure", "PluginInfo", "PluginWarning", "Plugins", "default_plugins"]

ENTRY_POINT_GROUP = "paywire"


class PluginInfo(NamedTuple):
    """A loaded plugin: its entry-point name and the distribution that provides it."""

    name: str
    distribution: str | None = None
    version: str | None = None


class PluginFailure(NamedTuple):
    """A plugin that did not load, and why."""

    name: str
    distribution: str | None
    reason: str


class PluginWarning(UserWarning):
    """Plugin configuration that is probably a mistake, such as an allow-list naming a plugin
    that is not installed."""


def _env_list(name: str) -> set[str] | None:
    """The names in environment variable `name`, separated by commas and/or spaces."""
    value = os.environ.get(name)
    if value is None:
        return None
    return set(value.replace(",", " ").split())


class Plugins:
    """The plugin manager of one paywire process (or one test).

    `Plugins()` holds only paywire's own default hooks; `load_entry_points()` adds the installed
    plugins, and `register()` adds one in-process (tests, application code).
    """

    def __init__(self) -> None:
        self._pm = pluggy.PluginManager(ENTRY_POINT_GROUP)
        self._pm.add_hookspecs(hookspecs)
        self._pm.register(_default_hooks, name="paywire.default")
        self.loaded: list[PluginInfo] = []
        self.failures: list[PluginFailure] = []
        self._gateways: dict[str, GatewayDefinition] | None = None
        self._owners: dict[str, str] = {}
        self._conflicts: dict[str, str] = {}  # gateway codes two plugins register, and why neither is used
        self.extended: frozenset[str] = frozenset()  # see `implemented`

    # -- loading ----------------------------------------------------------------------------------
    def load_entry_points(self) -> Plugins:
        allow = _env_list("PAYWIRE_PLUGINS")
        deny = _env_list("PAYWIRE_DISABLE_PLUGINS") or set()
        entry_points = metadata.entry_points(group=ENTRY_POINT_GROUP)
        installed = {entry_point.name for entry_point in entry_points}
        for variable, names in (("PAYWIRE_PLUGINS", allow or set()), ("PAYWIRE_DISABLE_PLUGINS", deny)):
            for name in sorted(names - installed):
                warnings.warn(f"{variable} names {name!r}, which is not an installed paywire plugin "
                              f"(installed: {', '.join(sorted(installed)) or 'none'})", PluginWarning, stacklevel=2)
        for entry_point in entry_points:
            if (allow is not None and entry_point.name not in allow) or entry_point.name in deny:
                continue
            if self._pm.has_plugin(entry_point.name):
                continue
            dist = entry_point.dist
            info = PluginInfo(entry_point.name, dist.name if dist else None, dist.version if dist else None)
            try:
                plugin = entry_point.load()
                self._register(plugin, info)
            except Exception as exc:  # noqa: BLE001 - one broken plugin must not stop the others
                self._failed(info.name, f"{type(exc).__name__}: {exc}", info.distribution)
        return self

    def register(self, plugin: object, name: str | None = None) -> None:
        """Register an in-process plugin (a module or an object with `@hookimpl` methods)."""
        info = PluginInfo(name or getattr(plugin, "__name__", None) or type(plugin).__name__)
        self._register(plugin, info)

    def _register(self, plugin: object, info: PluginInfo) -> None:
        try:
            self._pm.register(plugin, name=info.name)
            self._pm.check_pending()
        except pluggy.PluginValidationError as exc:
            if self._pm.is_registered(plugin):
                self._pm.unregister(plugin)
            raise PluginError(
                f"plugin {info.name!r} ({info.distribution or 'not installed'}) does not match the "
                f"hook specifications: {exc}",
                plugin=info.name,
                distribution=info.distribution,
            ) from exc
        self.loaded.append(info)
        self._gateways = None
        self.extended = frozenset(
            name for name in self.hook_names()
            if any(impl.plugin_name != "paywire.default" for impl in getattr(self._pm.hook, name).get_hookimpls())
        )

    def implemented(self, hook: str) -> bool:
        """Whether any plugin besides paywire's defaults implements `hook`.

        The pipeline skips calling hooks nobody extends, which keeps its overhead small; on its hot
        path it reads `extended`, the names of those hooks, found whenever a plugin is registered.
        """
        return hook in self.extended

    # -- gateways ---------------------------------------------------------------------------------
    def gateways(self) -> Mapping[str, GatewayDefinition]:
        """Every registered gateway definition by provider code.

        A plugin whose `register_gateways` raises, or registers something that is not a
        `GatewayDefinition`, is a failure of its own (`failures`, as one that did not import):
        the others still load. A code two plugins register is theirs to settle: neither is used,
        and both are reported, rather than payments going to whichever registered last.
        """
        if self._gateways is None:
            from paywire.gateway_definition import GatewayDefinition  # here: it imports this module

            found: dict[str, GatewayDefinition] = {}
            owners: dict[str, str] = {}
            taken: dict[str, str] = {}  # every code registered, and by whom first
            for impl in self._pm.hook.register_gateways.get_hookimpls():
                mine: dict[str, GatewayDefinition] = {}

                def register(definition: GatewayDefinition, _mine: dict[str, GatewayDefinition] = mine) -> None:
                    if not isinstance(definition, GatewayDefinition):
                        raise TypeError(f"register() takes a GatewayDefinition, not {type(definition).__name__}")
                    if definition.code in _mine:
                        raise PluginError(f"gateway {definition.code!r} is registered twice")
                    _mine[definition.code] = definition

                try:
                    impl.function(register=register)
                except Exception as exc:  # noqa: BLE001 - one broken plugin must not stop the others
                    self._failed(impl.plugin_name, f"register_gateways raised {type(exc).__name__}: {exc}")
                    continue
                for code, definition in mine.items():
                    first = taken.setdefault(code, impl.plugin_name)
                    if first != impl.plugin_name:
                        found.pop(code, None)
                        owners.pop(code, None)
                        self._conflicts[code] = (f"gateway {code!r} is registered by both {first!r} and "
                                                 f"{impl.plugin_name!r}; uninstall or disable one (PAYWIRE_DISABLE_PLUGINS)")
                        for plugin in (first, impl.plugin_name):
                            self._failed(plugin, self._conflicts[code])
                    elif code not in owners:
                        found[code], owners[code] = definition, impl.plugin_name
            self._gateways, self._owners = found, owners
        return self._gateways

    def _failed(self, plugin: str, reason: str, distribution: str | None = None) -> None:
        """Record why `plugin` did not load; `reason`, often an exception's text (which may quote
        a credential or a card number), is redacted, as it is printed and raised again."""
        from paywire.security import redact  # here: it loads attrs, which loading plugins does not need

        if distribution is None:
            info = next((info for info in self.loaded if info.name == plugin), None)
            distribution = info.distribution if info else None
        failure = PluginFailure(plugin, distribution, redact(reason))
        if failure not in self.failures:
            self.failures.append(failure)

    def gateway(self, code: str, *, method: str | None = None) -> GatewayDefinition:
        """The definition of provider `code`; a provider not installed is a `ConfigurationError`
        saying how to install it (`method`: the configured method that names it)."""
        gateways = self.gateways()
        if code not in gateways:
            if code in self._conflicts:
                raise ConfigurationError(self._conflicts[code])
            who = f"method {method!r} names provider {code!r}, which" if method else f"gateway provider {code!r}"
            failed = next((f for f in self.failures if f.name == code), None)
            if failed is not None:
                raise ConfigurationError(f"{who} failed to load ({failed.distribution}): {failed.reason}")
            what = f"{who} is not installed" if method else f"no gateway provider {code!r} is installed"
            raise ConfigurationError(
                f"{what}; install it: pip install paywire-{code} (from a paywire clone: pip install "
                f"./plugins/{code}); installed: {', '.join(sorted(gateways)) or 'none'}"
            )
        return gateways[code]

    def owner(self, code: str) -> PluginInfo | None:
        """The plugin that registered gateway `code`."""
        self.gateways()
        name = self._owners.get(code)
        return next((info for info in self.loaded if info.name == name), None)

    # -- hook calls -------------------------------------------------------------------------------
    def build_request(self, ctx: CommandContext, subject: Subject) -> list[tuple[str, Mapping[str, Any]]]:
        parts: list[tuple[str, Mapping[str, Any]]] = []
        if "build_request" not in self.extended:
            return parts
        hook = self._pm.hook.build_request
        for impl in reversed(hook.get_hookimpls()):
            if impl.hookwrapper or impl.wrapper:
                continue
            part = cast("Mapping[str, Any] | None", impl.function(**_args(impl, gateway=ctx.gateway, provider=ctx.provider, command=ctx.command, subject=subject)))
            if part:
                parts.append((f"plugin {impl.plugin_name}", part))
        return parts

    def perform_command(self, ctx: CommandContext, subject: Subject, transfer: Transfer,
                        perform: Callable[[], CommandResult]) -> CommandResult:
        if "perform_command" not in self.extended:
            return perform()
        result: CommandResult = self._pm.hook.perform_command(
            gateway=ctx.gateway, provider=ctx.provider, command=ctx.command, subject=subject, transfer=transfer,
            perform=perform,
        )
        return result

    def send_transfer(self, ctx: CommandContext, transfer: Transfer) -> Response:
        if "send_transfer" not in self.extended:
            return ctx.client.send(transfer)
        response: Response = self._pm.hook.send_transfer(
            gateway=ctx.gateway, command=ctx.command, transfer=transfer, client=ctx.client
        )
        return response

    def validate_response(self, ctx: CommandContext, subject: Subject, response: Response) -> list[Result]:
        results: list[Result] = self._pm.hook.validate_response(
            gateway=ctx.gateway, provider=ctx.provider, command=ctx.command, subject=subject, response=response
        )
        return results

    def map_error(
        self, ctx: CommandContext, subject: Subject, response: Response, result: Result, error: PaywireError
    ) -> PaywireError | None:
        mapped: PaywireError | None = self._pm.hook.map_error(
            gateway=ctx.gateway, provider=ctx.provider, command=ctx.command, subject=subject,
            response=response, result=result, error=error,
        )
        return mapped

    def handle_response(self, ctx: CommandContext, subject: Subject, response: Response, result: CommandResult) -> None:
        self._pm.hook.handle_response(
            gateway=ctx.gateway, provider=ctx.provider, command=ctx.command, subject=subject,
            response=response, result=result,
        )

    def parse_webhook(
        self, settings: GatewaySettings, verifier: WebhookVerifier | None, headers: Mapping[str, str], body: bytes
    ) -> WebhookEvent | WebhookBatch:
        gateway, provider = settings.gateway, settings.provider
        event: WebhookEvent | WebhookBatch | None = self._pm.hook.parse_webhook(
            gateway=gateway, provider=provider, headers=headers, body=body, settings=settings, verifier=verifier
        )
        if event is None:
            from paywire.errors import WebhookVerificationError

            raise WebhookVerificationError(f"no plugin can verify webhooks for gateway {gateway!r}", provider=provider)
        return event

    def get_secret(self, gateway: str, provider: str, name: str) -> str | None:
        value: str | None = self._pm.hook.get_secret(gateway=gateway, provider=provider, name=name)
        return value

    def hook_names(self) -> list[str]:
        return sorted(name for name in dir(self._pm.hook) if not name.startswith("_"))


def _args(impl: Any, **available: Any) -> dict[str, Any]:
    return {name: available[name] for name in impl.argnames}


_default: Plugins | None = None
_default_lock = threading.Lock()


def default_plugins() -> Plugins:
    """The process-wide plugins, loaded from entry points on first use."""
    global _default
    if _default is None:
        with _default_lock:
            if _default is None:
                _default = Plugins().load_entry_points()
    return _default
