"""paywire's own hook implementations, registered like any plugin's and run last.

Imports stay inside the functions: this module loads with the plugin manager at start-up, and
what a request needs is imported when the first request is sent.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

from paywire.hookspecs import hookimpl

if TYPE_CHECKING:
    from paywire.command.result import CommandResult
    from paywire.http.client import Client
    from paywire.http.response import Response
    from paywire.http.transfer import Transfer
    from paywire.webhook import WebhookBatch, WebhookEvent, WebhookVerifier


@hookimpl(trylast=True)
def perform_command(perform: Callable[[], CommandResult]) -> CommandResult:
    return perform()


@hookimpl(trylast=True)
def send_transfer(transfer: Transfer, client: Client) -> Response:
    return client.send(transfer)


@hookimpl(trylast=True)
def get_secret(gateway: str, provider: str, name: str) -> str | None:
    from paywire.settings import secret_from_environment

    return secret_from_environment(gateway, provider, name)


@hookimpl(trylast=True)
def parse_webhook(headers: Mapping[str, str], body: bytes,
                  verifier: WebhookVerifier | None) -> WebhookEvent | WebhookBatch | None:
    return verifier(headers, body) if verifier is not None else None
