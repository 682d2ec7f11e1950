"""The hook specifications: everything a plugin can do.

Provider plugins register gateways; any plugin may extend any step of any command. Each spec
states its calling mode in one fixed sentence. Implementations may accept a subset of the
arguments (pluggy passes only what they name), so new arguments never break old plugins.

`gateway` is the configured method code (usually equal to the provider code, e.g. "stripe");
`provider` is the code of the plugin's gateway definition; `command` is the command code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any

import pluggy

if TYPE_CHECKING:
    from paywire.command.result import CommandResult
    from paywire.errors import PaywireError
    from paywire.gateway_definition import GatewayDefinition
    from paywire.http.client import Client
    from paywire.http.response import Response
    from paywire.http.transfer import Transfer
    from paywire.settings import GatewaySettings
    from paywire.subject import Subject
    from paywire.validator.result import Result
    from paywire.webhook import WebhookBatch, WebhookEvent, WebhookVerifier

hookspec = pluggy.HookspecMarker("paywire")
hookimpl = pluggy.HookimplMarker("paywire")


@hookspec
def register_gateways(register: Callable[[GatewayDefinition], None]) -> None:
    """Register the gateways this plugin provides by calling `register(definition)`.

    Called for every plugin, once, when the plugins load.

    Example::

        @hookimpl
        def register_gateways(register):
            register(GatewayDefinition(code="acme", title="Acme Pay", build=build_commands))
    """


@hookspec
def build_request(gateway: str, provider: str, command: str, subject: Subject) -> Mapping[str, Any] | None:
    """Return part of the request to deep-merge after the provider's own builders, or None.

    Called for every plugin; all results are merged, and a key set twice is an error naming both.

    Example (a shop adding its own metadata to every Stripe authorization)::

        @hookimpl
        def build_request(provider, command, subject):
            if provider == "stripe" and command == "authorize":
                return {"metadata": {"shop": "eu-1"}}
    """


@hookspec(firstresult=True)
def perform_command(
    gateway: str, provider: str, command: str, subject: Subject, transfer: Transfer,
    perform: Callable[[], CommandResult],
) -> CommandResult | None:
    """Run a command whose request is built: send `transfer` (retries included), validate the
    answer, map errors and handle it, and return the result.

    Stops at the first non-None result. paywire's own implementation runs last and calls
    `perform()`; use `@hookimpl(wrapper=True)` to wrap the whole command. The wrapper sees how it
    ended, whichever step ended it: the result, or the error the command raises (what the payment
    service records its outcome from), where `send_transfer` sees one attempt, and `map_error` and
    `handle_response` only the answers that reach them.

    Example (logging how every command ended)::

        @hookimpl(wrapper=True)
        def perform_command(command):
            try:
                result = yield
            except Exception as error:
                log.info("%s raised %s", command, type(error).__name__)
                raise
            log.info("%s: %s", command, result.status)
            return result
    """


@hookspec(firstresult=True)
def send_transfer(gateway: str, command: str, transfer: Transfer, client: Client) -> Response | None:
    """Send `transfer` and return the response.

    Stops at the first non-None result. paywire's own implementation runs last and sends with the
    gateway's client; use `@hookimpl(wrapper=True)` to wrap it (logging, tracing, recording,
    fault injection) or return a response to answer without the network.

    Example (timing every call)::

        @hookimpl(wrapper=True)
        def send_transfer(transfer):
            started = time.perf_counter()
            response = yield
            log.info("%s %s took %.3fs", transfer.method, transfer.url, time.perf_counter() - started)
            return response
    """


@hookspec
def validate_response(
    gateway: str, provider: str, command: str, subject: Subject, response: Response
) -> Result | None:
    """Return an extra validation `Result` for a provider answer (fraud, AVS/CVV policy), or None.

    Called for every plugin; the results are added to the provider's own validation, and any
    failure makes the command fail through the error mapper. A refusal of an answer the provider's
    own validation took for its success is an unknown outcome, whatever its code: the provider
    applied the request.

    Example (refusing answers without a CVC check)::

        @hookimpl
        def validate_response(provider, response):
            if provider == "stripe" and response.data.get("cvc_check") == "fail":
                return Result.failure("CVC check failed", "cvc_check_failed")
    """


@hookspec(firstresult=True)
def map_error(
    gateway: str, provider: str, command: str, subject: Subject, response: Response, result: Result,
    error: PaywireError,
) -> PaywireError | None:
    """Return an error to raise instead of `error`, the one the provider's mapper chose, or None.

    Stops at the first non-None result.

    Example (a shop's own wording for declines)::

        @hookimpl
        def map_error(error):
            if isinstance(error, Declined):
                error.customer_message = "Your bank said no. Try another card?"
                return error
    """


@hookspec
def handle_response(
    gateway: str, provider: str, command: str, subject: Subject, response: Response, result: CommandResult
) -> None:
    """Observe a successful command after the provider's handlers produced `result`.

    Called for every plugin; return values are ignored.

    Example (auditing every capture)::

        @hookimpl
        def handle_response(command, result):
            if command == "capture":
                audit.write(result.reference, result.amount)
    """


@hookspec(firstresult=True)
def parse_webhook(
    gateway: str, provider: str, headers: Mapping[str, str], body: bytes, settings: GatewaySettings,
    verifier: WebhookVerifier | None,
) -> WebhookEvent | WebhookBatch | None:
    """Verify a webhook's signature and parse it into a `WebhookEvent` (or a `WebhookBatch`, for a
    delivery holding several events); raise on a bad signature.

    Stops at the first non-None result. paywire's own implementation runs last and calls
    `verifier`, the one the gateway definition built for these settings; headers arrive with
    lower-cased names and the body is the raw bytes received.

    Example::

        @hookimpl
        def parse_webhook(provider, headers, body, settings):
            if provider == "acme":
                return verify_acme(headers, body, settings.secret("webhook_secret"))
    """


@hookspec(firstresult=True)
def get_secret(gateway: str, provider: str, name: str) -> str | None:
    """Return the secret `name` (an API key, a client secret) for `gateway`, or None.

    Stops at the first non-None result. paywire's own implementation runs last and reads the
    environment variable `PAYWIRE_<GATEWAY>_<NAME>` (upper case).

    Example (a secrets manager)::

        @hookimpl
        def get_secret(gateway, name):
            return vault.read(f"payments/{gateway}/{name}")
    """
