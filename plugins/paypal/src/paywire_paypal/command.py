"""What every PayPal command is made of: one endpoint's `GatewayCommand`, and the pool's wrapper.

Every call sends JSON with `Authorization: Bearer <token>`; the POSTs PayPal deduplicates carry
the idempotency key as `PayPal-Request-Id` (1 to 108 characters: a longer key is refused before
anything is sent); and calls whose answer is read ask for it with `Prefer: return=representation`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

from paywire import (
    JSON,
    Auth,
    CommandContext,
    CommandResult,
    GatewayCommand,
    GatewaySettings,
    HandlerChain,
    InvalidRequest,
    Subject,
    TransferFactory,
    ValidatorComposite,
)
from paywire_paypal.errors import ERRORS, PayPalErrorMapper
from paywire_paypal.oauth import AccessTokens
from paywire_paypal.validators import answered

__all__ = ["MAX_REQUEST_ID", "PayPalCommand", "endpoint", "request_id_fits", "request_id_given"]

MAX_REQUEST_ID: Final = 108
REQUEST_ID_HEADER: Final = "PayPal-Request-Id"
REPRESENTATION: Final = {"Prefer": "return=representation"}


def request_id_fits(subject: Subject) -> dict[str, Any]:
    """Refuses an idempotency key PayPal-Request-Id cannot carry; adds nothing to the request."""
    key = subject.idempotency_key
    if key and len(key) > MAX_REQUEST_ID:
        raise InvalidRequest(
            f"the idempotency key has {len(key)} characters; PayPal-Request-Id takes 1 to {MAX_REQUEST_ID}; "
            "nothing was sent",
            param="idempotency_key",
            provider="paypal",
            code="idempotency_key_too_long",
        )
    return {}


def request_id_given(subject: Subject) -> dict[str, Any]:
    """Refuses a request without the PayPal-Request-Id its endpoint requires (Vault v3)."""
    if not subject.idempotency_key:
        raise InvalidRequest(
            "PayPal requires a PayPal-Request-Id here: give an idempotency key; nothing was sent",
            param="idempotency_key", provider="paypal", code="idempotency_key_required",
        )
    return request_id_fits(subject)


def endpoint(
    settings: GatewaySettings,
    auth: Auth,
    method: str,
    path: str | Any,
    builders: Sequence[Any],
    handlers: Sequence[Any],
    *,
    validators: Sequence[Any] = (),
    request_id: bool = False,
    require_request_id: bool = False,
    repeatable: bool = False,
    representation: bool = False,
    answer_check: Any = answered,
    error_mapper: PayPalErrorMapper = ERRORS,
) -> GatewayCommand:
    """The command of one PayPal endpoint: JSON, bearer auth, PayPal's validators and error mapper.

    :param request_id: the endpoint deduplicates on PayPal-Request-Id (the subject's key).
    :param require_request_id: ... and refuses requests without one.
    :param repeatable: sending it twice cannot do anything twice, key or not (`TransferFactory`).
    :param representation: ask for the whole resource in the answer.
    :param answer_check: the first validator, which says whether PayPal answered success.
    :param error_mapper: `COMPLETION_ERRORS` for an approved order's authorize or capture.
    """
    request_id = request_id or require_request_id
    checks = [request_id_given] if require_request_id else [request_id_fits] if request_id else []
    return GatewayCommand(
        builder=[*builders, *checks],
        transfer_factory=TransferFactory(
            settings.base_url,
            method,
            path,
            auth=auth,
            converter=JSON,
            idempotency_header=REQUEST_ID_HEADER if request_id else None,
            headers=REPRESENTATION if representation else {},
            timeout=settings.timeout,
            repeatable=repeatable,
        ),
        validator=ValidatorComposite([(answer_check, True), *validators]),
        error_mapper=error_mapper,
        handler=HandlerChain(list(handlers)),
    )


class PayPalCommand:
    """A command of PayPal's pool: it lends the token command the context of the run, then runs.

    The access token is fetched inside a request (when its headers are computed), through the
    pool's `token` command, which needs the client and hooks that only a run's context holds.
    """

    def __init__(self, name: str, inner: Any, tokens: AccessTokens) -> None:
        self._name = name
        self._inner = inner
        self._tokens = tokens

    def __repr__(self) -> str:
        return f"PayPalCommand({self._name!r})"

    def execute(self, subject: Subject, context: CommandContext) -> CommandResult:
        with self._tokens.running(context):
            result: CommandResult = self._inner.execute(subject, context)
        return result
