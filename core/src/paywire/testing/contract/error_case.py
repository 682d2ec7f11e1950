"""One error answer a provider can give, and the typed error paywire must turn it into."""

from __future__ import annotations

import json
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any

import attrs

from paywire.errors import (
    AuthenticationError,
    BuyerActionRequired,
    Declined,
    InvalidRequest,
    PaywireError,
    ProviderUnavailable,
    RateLimited,
    WebhookVerificationError,
)
from paywire.http.response import Response

__all__ = ["ErrorCase", "retryable_meaning"]

# What retrying means for each kind of error, whatever a plugin's table says.
_MEANING: tuple[tuple[type[PaywireError], bool], ...] = (
    (Declined, False),
    (BuyerActionRequired, False),
    (AuthenticationError, False),
    (InvalidRequest, False),  # StateError and UnsupportedOperation too
    (WebhookVerificationError, False),
    (RateLimited, True),
    (ProviderUnavailable, True),
)


def retryable_meaning(error: type[PaywireError]) -> bool | None:
    """Whether an error of this class is retryable by its meaning; None where either can be true."""
    for kind, retryable in _MEANING:
        if issubclass(error, kind):
            return retryable
    return None


def _headers(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType({name.lower(): text for name, text in value.items()})


@attrs.frozen(kw_only=True)
class ErrorCase:
    """A provider error answer and what it must map to.

    :param name: a short label shown in failures ("card declined").
    :param status: the HTTP status the provider answers with.
    :param body: the answer body: bytes as sent, or a mapping sent as JSON.
    :param error: the exact `PaywireError` class it must raise.
    :param code: the provider code the error must keep (`error.code`), if any.
    :param command: the command that receives the answer.
    :param retryable: only for errors whose class allows both (IdempotencyConflict, ...); the kit
        holds the others to their meaning (a decline is never retryable, a 503 always is).
    """

    name: str
    status: int
    body: bytes | Mapping[str, Any]
    error: type[PaywireError]
    code: str | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_headers)
    command: str = "authorize"
    retryable: bool | None = None

    def __attrs_post_init__(self) -> None:
        meaning = retryable_meaning(self.error)
        if meaning is not None and self.retryable is not None and self.retryable != meaning:
            raise ValueError(
                f"ErrorCase {self.name!r}: a {self.error.__name__} is {'' if meaning else 'never '}retryable "
                "by its meaning; leave retryable unset"
            )

    @property
    def expected_retryable(self) -> bool | None:
        return self.retryable if self.retryable is not None else retryable_meaning(self.error)

    def response(self) -> Response:
        body = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
        headers = {"content-type": "application/json", **self.headers}
        return Response(status=self.status, headers=headers, body=body)
