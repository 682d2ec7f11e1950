"""Deliberately broken variants of the acme plugin, each with one defect seen in real integrations.

Each variant registers acme's gateway definition with one part swapped, so everything else (the
emulator, the sandbox, the other commands) is the real acme plugin.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from paywire import (
    CommandPool,
    Declined,
    ErrorMapper,
    ErrorRule,
    GatewayDefinition,
    GatewaySettings,
    PaywireError,
    Response,
    Result,
    Subject,
    WebhookEvent,
    hookimpl,
)
from paywire_acme import ACME
from paywire_acme.commands import ERRORS, build_commands, metadata_request, payment_request
from paywire_acme.webhook import build_verifier


class BrokenAcme:
    """The acme plugin with its gateway definition changed by `parts`."""

    def __init__(self, name: str, **parts: Any) -> None:
        self.__name__ = f"broken_acme_{name}"
        self.definition = ACME._replace(**parts)

    @hookimpl
    def register_gateways(self, register: Callable[[GatewayDefinition], None]) -> None:
        register(self.definition)


def _with(settings: GatewaySettings, **changed: Any) -> CommandPool:
    """Acme's commands, with some replaced by `changed(command) -> command` functions."""
    pool = build_commands(settings)
    commands = {code: changed[code](command) if code in changed else command for code, command in pool.items()}
    return CommandPool(commands, gateway=settings.gateway)


# -- 1. amounts converted through a float and rounded to two decimals --------------------------------
def _rounded(capture: bool) -> Callable[[Subject], dict[str, Any]]:
    build = payment_request(capture)

    def request(subject: Subject) -> dict[str, Any]:
        body = build(subject)
        assert subject.amount is not None
        major = round(float(subject.amount.amount), 2)
        body["amount"] = int(major * 10**subject.amount.exponent)
        return body

    return request


def rounding_commands(settings: GatewaySettings) -> CommandPool:
    return _with(settings,
                 authorize=lambda command: attrs.evolve(command, builder=[_rounded(False), metadata_request]),
                 sale=lambda command: attrs.evolve(command, builder=[_rounded(True), metadata_request]))


# -- 2. the API key quoted in error messages "to help debugging" ---------------------------------------
def leaky_commands(settings: GatewaySettings) -> CommandPool:
    key = settings.secret("api_key").reveal()

    def mapper(subject: Subject, response: Response, result: Result) -> PaywireError:
        error = ERRORS(subject, response, result)
        error.message = f"{error.message} (sent with key {key})"
        return error

    leak = {code: (lambda command: attrs.evolve(command, error_mapper=mapper)) for code in build_commands(settings)}
    return _with(settings, **leak)


# -- 3. the signature checked over the body as re-serialised after parsing ------------------------------
def reserialising_verifier(settings: GatewaySettings) -> Callable[[Mapping[str, str], bytes], WebhookEvent]:
    verify = build_verifier(settings)

    def lenient(headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        event: WebhookEvent = verify(headers, json.dumps(json.loads(body)).encode())
        return event

    return lenient


# -- 4. a decline mapped as retryable ------------------------------------------------------------------
RETRYING_DECLINES = ErrorMapper("acme", {**ERRORS.rules, "card_declined": ErrorRule(Declined, retryable=True)})


def retrying_decline_commands(settings: GatewaySettings) -> CommandPool:
    retry = {code: (lambda command: attrs.evolve(command, error_mapper=RETRYING_DECLINES))
             for code in build_commands(settings)}
    return _with(settings, **retry)


ROUNDING = BrokenAcme("rounding", build=rounding_commands)
LEAKY = BrokenAcme("leaky", build=leaky_commands)
LENIENT_WEBHOOK = BrokenAcme("lenient_webhook", webhook=reserialising_verifier)
RETRYABLE_DECLINE = BrokenAcme("retryable_decline", build=retrying_decline_commands)
