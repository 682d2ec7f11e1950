"""The method's own PayPal commands, for the webhook verifiers (verify-webhook-signature, and the
reads that confirm an event that moves money).

A verifier is built from the method's settings alone, so it runs the commands on a pool of its
own: its own access token, its own HTTP client (trusting `webhook_ca_certs` in the sandbox) and
paywire's default hooks only, not the plugins registered on the gateway. The pool is built on
first use and shared by the threads that verify.
"""

from __future__ import annotations

import threading

from paywire import CommandContext, CommandPool, CommandResult, GatewaySettings, Plugins, Retry, Subject, Urllib3Client
from paywire_paypal.webhook.certificates import CA_CERTS_OPTION

__all__ = ["OwnPool"]


class OwnPool:
    """Runs the method's PayPal commands by name (see the module docstring)."""

    def __init__(self, settings: GatewaySettings) -> None:
        self._settings = settings
        self._lock = threading.Lock()
        self._pool: CommandPool | None = None
        self._client: Urllib3Client | None = None

    def __repr__(self) -> str:
        return f"OwnPool({self._settings.gateway!r})"

    def run(self, command: str, subject: Subject) -> CommandResult:
        with self._lock:
            if self._pool is None or self._client is None:
                from paywire_paypal.commands import build_commands

                settings = self._settings
                ca_certs = settings.option(CA_CERTS_OPTION) if settings.environment == "sandbox" else None
                self._client = Urllib3Client(ca_certs=ca_certs)
                self._pool = build_commands(settings)
            pool, client = self._pool, self._client
        context = CommandContext(self._settings.gateway, self._settings.provider, command, client, Plugins(), Retry())
        return pool[command].execute(subject, context)

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
