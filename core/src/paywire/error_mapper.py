"""The error mapper (Magento's ErrorMessageMapper): a failed answer becomes one typed error.

Rules keyed by the provider's code come first; the HTTP status decides the rest. The provider's
code is always kept on the error, with a customer-safe message next to the technical one. A 2xx
that the validators refused and no rule explains is an unknown outcome: the provider answered
success, so there is no evidence that it did not apply the request.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import attrs

from paywire.errors import (
    AuthenticationError,
    Declined,
    IdempotencyConflict,
    InvalidRequest,
    OutcomeUnknown,
    PaywireError,
    ProviderUnavailable,
    RateLimited,
)
from paywire.http.response import Response
from paywire.http.retry import parse_retry_after
from paywire.subject import Subject
from paywire.validator.result import Result

__all__ = ["ErrorMapper", "ErrorMapperProtocol", "ErrorRule", "error_for_status"]


class ErrorMapperProtocol(Protocol):
    def __call__(self, subject: Subject, response: Response, result: Result) -> PaywireError: ...


@attrs.frozen
class ErrorRule:
    """How one provider code maps: the error class, an optional customer message, retryability,
    and whether it says the payment is not in the state the ledger holds (`state_conflict`)."""

    error: type[PaywireError]
    customer_message: str | None = None
    retryable: bool | None = None
    state_conflict: bool = False


def error_for_status(status: int) -> type[PaywireError]:
    """The error class an HTTP status means when the provider gave no more specific code.

    Only a 4xx or 5xx is a failure answer. A 2xx the validators cannot read may have been applied;
    a 3xx (redirects are never followed) comes from something between paywire and the provider (a
    proxy, a load balancer, a captive portal) after the request reached it, and says nothing about
    whether the provider applied it (a 303 after a POST even says it was processed): both are
    unknown outcomes.
    """
    if status < 400:
        return OutcomeUnknown
    if status in (401, 403):
        return AuthenticationError
    if status == 402:
        return Declined
    if status == 409:
        return IdempotencyConflict
    if status == 429:
        return RateLimited
    if status >= 500:
        return ProviderUnavailable
    return InvalidRequest


@attrs.frozen
class ErrorMapper:
    """Table-driven mapping from provider codes, falling back to the HTTP status."""

    provider: str
    rules: Mapping[str, ErrorRule] = attrs.field(factory=dict)

    def __call__(self, subject: Subject, response: Response, result: Result) -> PaywireError:
        message = "; ".join(result.messages) or f"{self.provider} answered HTTP {response.status}"
        code = result.codes[0] if result.codes else None
        rule = next((self.rules[c] for c in result.codes if c in self.rules), None)
        error_class = rule.error if rule else error_for_status(response.status)
        extra: dict[str, object] = {}
        if issubclass(error_class, RateLimited):
            extra["retry_after"] = parse_retry_after(response.header("retry-after"))
        if issubclass(error_class, Declined) and result.codes:
            extra["decline_code"] = result.codes[-1]  # the most specific reason the provider gave
        return error_class(
            message,
            provider=self.provider,
            code=code,
            status=response.status,
            retryable=rule.retryable if rule else None,
            customer_message=rule.customer_message if rule else None,
            state_conflict=rule.state_conflict if rule else False,
            **extra,  # type: ignore[arg-type]
        )
