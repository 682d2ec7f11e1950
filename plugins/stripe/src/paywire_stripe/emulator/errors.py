"""Stripe's error responses: one exception carrying the wire shape, and the common cases.

Stripe answers every failure as `{"error": {"type", "message", "code"?, "param"?, ...}}` with a
meaningful HTTP status. Its documented v1 types are `api_error`, `card_error`, `idempotency_error`
and `invalid_request_error`; authentication failures (401) and rate limits (429) are
`invalid_request_error` bodies distinguished by status (and `code: rate_limit`), which is what the
official SDKs key on. Messages follow Stripe's wording where it is known.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

__all__ = [
    "StripeError",
    "amount_too_large",
    "empty_string",
    "invalid_request",
    "missing_param",
    "no_such",
    "unexpected_state",
    "unknown_param",
]


def doc_url(code: str) -> str:
    return f"https://stripe.com/docs/error-codes/{code.replace('_', '-')}"


class StripeError(Exception):
    """A Stripe error response.

    :param saved: whether an idempotency key stores this answer. Stripe stores the outcome once an
        endpoint began executing; requests refused while validating parameters are not stored, so
        a corrected retry with the same key is possible.
    """

    def __init__(
        self,
        status: int,
        type: str,
        message: str,
        *,
        code: str | None = None,
        param: str | None = None,
        saved: bool = True,
        should_retry: bool | None = None,
        headers: Mapping[str, str] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.type = type
        self.message = message
        self.code = code
        self.param = param
        self.saved = saved
        self.should_retry = should_retry
        self.headers = dict(headers or {})
        self.extra = extra

    def body(self) -> dict[str, Any]:
        error: dict[str, Any] = {}
        if self.code is not None:
            error["code"] = self.code
            error["doc_url"] = doc_url(self.code)
        error.update(self.extra)
        error["message"] = self.message
        if self.param is not None:
            error["param"] = self.param
        error["type"] = self.type
        return {"error": error}

    def response_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.should_retry is not None:
            headers["Stripe-Should-Retry"] = "true" if self.should_retry else "false"
        return headers


def invalid_request(
    message: str, param: str | None = None, *, code: str | None = None, status: int = 400, saved: bool = True
) -> StripeError:
    return StripeError(status, "invalid_request_error", message, code=code, param=param, saved=saved)


def unknown_param(name: str) -> StripeError:
    return invalid_request(f"Received unknown parameter: {name}", name, code="parameter_unknown", saved=False)


def missing_param(name: str) -> StripeError:
    return invalid_request(f"Missing required param: {name}.", name, code="parameter_missing", saved=False)


def empty_string(name: str) -> StripeError:
    return invalid_request(
        f"You passed an empty string for '{name}'. We assume empty values are an attempt to unset a "
        f"parameter; however '{name}' cannot be unset. You should remove '{name}' from your request "
        "or supply a non-empty value.",
        name,
        code="parameter_invalid_empty",
        saved=False,
    )


def no_such(kind: str, object_id: str, param: str) -> StripeError:
    """`No such payment_intent: 'pi_123'` (404, resource_missing)."""
    return StripeError(
        404, "invalid_request_error", f"No such {kind}: '{object_id}'", code="resource_missing", param=param
    )


def unexpected_state(
    message: str, *, param: str | None = None, code: str = "payment_intent_unexpected_state", **extra: Any
) -> StripeError:
    """A request the object's status does not allow; Stripe embeds the object (`payment_intent=`)."""
    return StripeError(400, "invalid_request_error", message, code=code, param=param, **extra)


def amount_too_large(message: str, param: str = "amount") -> StripeError:
    return StripeError(400, "invalid_request_error", message, code="amount_too_large", param=param)
