"""A method's own provider commands, for code that runs outside a gateway: webhook verifiers that
read from the provider to confirm what an event claims.

A verifier is built from the method's settings alone, so it runs the plugin's commands on a pool of
its own: its own HTTP client and paywire's default hooks only, not the plugins registered on the
gateway (a shop's hooks are for the shop's operations). The pool is built on first use and shared
by the threads that verify.
"""

from __future__ import annotations

import threading
from collections.abc import Callable

from paywire.command.context import CommandContext
from paywire.command.pool import CommandPool
from paywire.command.result import CommandResult
from paywire.http.client import Urllib3Client
from paywire.http.retry import Retry
from paywire.plugins import Plugins
from paywire.settings import GatewaySettings
from paywire.subject import Subject

__all__ = ["OwnCommands"]


class OwnCommands:
    """Runs a method's commands by name (see the module docstring).

    :param settings: the method's settings.
    :param build: the plugin's command pool factory (its `GatewayDefinition.build`).
    :param ca_certs: a CA bundle to trust instead of the system's.
    """

    def __init__(self, settings: GatewaySettings, build: Callable[[GatewaySettings], CommandPool], *,
                 ca_certs: str | None = None) -> None:
        self._settings = settings
        self._build = build
        self._ca_certs = ca_certs
        self._lock = threading.Lock()
        self._pool: CommandPool | None = None
        self._client: Urllib3Client | None = None

    def __repr__(self) -> str:
        return f"OwnCommands({self._settings.gateway!r})"

    def run(self, command: str, subject: Subject) -> CommandResult:
        with self._lock:
            if self._pool is None or self._client is None:
                self._client = Urllib3Client(ca_certs=self._ca_certs)
                self._pool = self._build(self._settings)
            pool, client = self._pool, self._client
        context = CommandContext(self._settings.gateway, self._settings.provider, command, client, Plugins(), Retry())
        return pool[command].execute(subject, context)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
