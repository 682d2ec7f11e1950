"""Validators: an answer is valid when it is the Stripe object the command asked for.

Anything else fails with Stripe's codes for the error mapper: an error object, a body that is not
a Stripe object (a proxy's page), a refund that failed at once, or an intent back in
`requires_payment_method` after a failed attempt.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from paywire import Response, Result, Subject, ValidatorComposite

__all__ = ["Check", "answered", "finished", "paid", "refunded"]


class Check(Protocol):
    """A validator of one answer (the core's validator signature)."""

    def __call__(self, subject: Subject, response: Response) -> Result: ...


def _codes(error: Mapping[str, object]) -> list[str]:
    return [code for name in ("code", "decline_code", "type") if isinstance(code := error.get(name), str) and code]


def _failure(error: Mapping[str, object], default: str) -> Result:
    message = error.get("message")
    return Result(False, (message if isinstance(message, str) and message else default,), _codes(error))


_VALID = Result.success()  # what every check answers for a valid answer, made once

# Fields the handlers read, besides `id`, by object.
_FIELDS = {"payment_intent": ("status", "currency", "amount"), "refund": ("currency", "amount")}


def _is(kind: str) -> Check:
    fields = _FIELDS.get(kind, ())
    listing = kind in ("list", "search_result")

    def check(subject: Subject, response: Response) -> Result:
        data = response.data
        if response.ok and isinstance(data, dict) and data.get("object") == kind:
            if listing:
                shaped = isinstance(data.get("data"), list)
            else:
                shaped = isinstance(data.get("id"), str)
                for name in fields:  # a loop, not all() over a generator: this checks every answer
                    if data.get(name) is None:
                        shaped = False
                        break
            if shaped:
                return _VALID
        error = data.get("error") if isinstance(data, dict) else None
        if isinstance(error, dict):
            return _failure(error, f"Stripe answered HTTP {response.status}")
        return Result.failure(f"expected a Stripe {kind}, got HTTP {response.status}", "unexpected_answer")

    return check


def paid(subject: Subject, response: Response) -> Result:
    """A confirmed intent did not come back failed (status `requires_payment_method` with an error)."""
    error = response.data.get("last_payment_error")
    if response.data.get("status") == "requires_payment_method" and isinstance(error, dict):
        return _failure(error, "the payment failed")
    return _VALID


def finished(subject: Subject, response: Response) -> Result:
    """An intent read to complete it no longer waits for the buyer and was not canceled."""
    status = response.data.get("status")
    if status == "requires_action":
        return Result.failure("the buyer has not finished 3-D Secure yet", "requires_action")
    if status == "canceled":
        return Result.failure("the PaymentIntent was canceled", "payment_intent_unexpected_state")
    return _VALID


def refunded(subject: Subject, response: Response) -> Result:
    """A refund Stripe created did not fail at once."""
    status = response.data.get("status")
    if status in ("failed", "canceled"):
        return Result.failure(f"the refund is {status}", str(response.data.get("failure_reason") or f"refund_{status}"))
    return _VALID


def answered(kind: str, *checks: Check) -> ValidatorComposite:
    """The answer is a Stripe `kind` object (the chain stops here if not), then passes `checks`."""
    entries: list[Check | tuple[Check, bool]] = [(_is(kind), True), *checks]
    return ValidatorComposite(entries)
