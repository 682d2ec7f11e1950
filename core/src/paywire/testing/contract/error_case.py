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
    IdempotencyConflict,
    InvalidRequest,
    PaywireError,
    ProviderUnavailable,
    RateLimited,
    TransportError,
    WebhookVerificationError,
)
from paywire.http.response import Response
from paywire.service.outcome import is_unknown

__all__ = ["ErrorCase", "outcome_of", "retryable_meaning"]

FAILED = "failed"
UNKNOWN = "unknown"

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


def outcome_of(error: PaywireError) -> str:
    """How the ledger records an operation that raised `error`: "failed" or "unknown"."""
    return UNKNOWN if is_unknown(error) else FAILED


def _fixed_outcome(error: type[PaywireError]) -> str | None:
    """The outcome an error of this class always has; None where `may_have_been_sent` decides."""
    if issubclass(error, (TransportError, ProviderUnavailable)):
        return None
    return UNKNOWN if issubclass(error, IdempotencyConflict) else FAILED


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
    :param outcome: how the ledger must record it, "failed" (the provider did not and will not
        apply the request) or "unknown" (it may have); only for errors whose class allows both
        (`ProviderUnavailable`: "unknown" unless the provider documents the answer as not applied,
        as a provider may document a 503 it answers before taking the request). The kit checks
        the raised error's `may_have_been_sent` against it.
    """

    name: str
    status: int
    body: bytes | Mapping[str, Any]
    error: type[PaywireError]
    code: str | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_headers)
    command: str = "authorize"
    retryable: bool | None = None
    outcome: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.outcome not in (None, FAILED, UNKNOWN):
            raise ValueError(f"ErrorCase {self.name!r}: outcome is 'failed' or 'unknown', not {self.outcome!r}")
        fixed = _fixed_outcome(self.error)
        if fixed is not None and self.outcome is not None and self.outcome != fixed:
            raise ValueError(f"ErrorCase {self.name!r}: a {self.error.__name__} is always recorded {fixed}; "
                             "leave outcome unset")
        meaning = retryable_meaning(self.error)
        if meaning is not None and self.retryable is not None and self.retryable != meaning:
            raise ValueError(
                f"ErrorCase {self.name!r}: a {self.error.__name__} is {'' if meaning else 'never '}retryable "
                "by its meaning; leave retryable unset"
            )

    @property
    def expected_retryable(self) -> bool | None:
        return self.retryable if self.retryable is not None else retryable_meaning(self.error)

    @property
    def expected_outcome(self) -> str:
        return self.outcome or _fixed_outcome(self.error) or UNKNOWN

    def response(self) -> Response:
        body = self.body if isinstance(self.body, bytes) else json.dumps(self.body).encode()
        headers = {"content-type": "application/json", **self.headers}
        return Response(status=self.status, headers=headers, body=body)
