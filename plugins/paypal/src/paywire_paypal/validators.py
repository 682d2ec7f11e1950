"""Checks of PayPal's answers, before any handler reads them.

A 2xx answer is not always a success: a vaulted card's capture can come back DECLINED inside a
201 order, and PayPal answers a repeated PayPal-Request-Id with the first request's resource
whatever the new body said. Both become failures here, so that the error mapper turns them into
`Declined` and `IdempotencyConflict` instead of a result that pretends otherwise.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from paywire import InvalidRequest, Money, Response, Result, Subject
from paywire_paypal.amounts import from_paypal
from paywire_paypal.errors import REUSED_KEY, UNREADABLE, VOIDED_ORDER, read_error
from paywire_paypal.order_state import cancelled, taken_back

__all__ = [
    "answered",
    "answered_resource",
    "deleted",
    "not_declined",
    "not_voided",
    "refund_not_failed",
    "same_amount",
    "same_order",
]


def answered(subject: Subject, response: Response) -> Result:
    """2xx with a JSON object (or no body at all: 204), else PayPal's error as a failure."""
    if response.ok:
        if isinstance(response.data, Mapping) or (response.status == 204 and not response.body):
            return Result.success()
        return Result.failure(f"PayPal answered HTTP {response.status} with a body that is not a JSON object",
                              UNREADABLE)
    error = read_error(response)
    message = error.description or f"PayPal answered HTTP {response.status}"
    return Result(False, (message,), (error.code,) if error.code else ())


def answered_resource(subject: Subject, response: Response) -> Result:
    """`answered`, for an endpoint whose success is a resource: a 2xx must carry the resource's
    `id`. One without it (an error-shaped or empty object from something in front of PayPal) is
    no answer the handlers can read; `UNREADABLE` makes it an unknown outcome. A 204 without a
    body is PayPal's success with no resource (a void answers so): the handler reads it, if it can."""
    checked = answered(subject, response)
    bodiless = response.status == 204 and not response.body
    if checked.ok and response.ok and not bodiless and not (isinstance(response.data, Mapping) and "id" in response.data):
        return Result.failure(f"PayPal answered HTTP {response.status} without the resource's id", UNREADABLE)
    return checked


def deleted(subject: Subject, response: Response) -> Result:
    """`answered`, for a DELETE: a 404 after an earlier attempt of the same request may have
    arrived (the retry policy sent it again) is the deletion that attempt made, not a refusal."""
    if response.status == 404 and response.unsure:
        return Result.success()
    return answered(subject, response)


def _payments(data: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    """(kind, payment) for every authorization and capture an order (or a payment object) holds."""
    units = data.get("purchase_units")
    if isinstance(units, list):
        for unit in units:
            payments = unit.get("payments") if isinstance(unit, Mapping) else None
            if isinstance(payments, Mapping):
                for kind in ("authorizations", "captures"):
                    for payment in payments.get(kind) or ():
                        if isinstance(payment, Mapping):
                            yield kind, payment
    elif "status" in data:
        yield "", data


def not_declined(subject: Subject, response: Response) -> Result:
    """A DECLINED or FAILED capture, or a DENIED authorization, in a 2xx answer is a decline: no
    money moved (FAILED is one of a capture's statuses in Payments v2, beside DECLINED). Not so
    one whose money was taken back (`taken_back`, a chargeback): PayPal answers a
    repeated PayPal-Request-Id with the capture as it is now, and that capture succeeded; its
    reversal is recorded from PayPal's event or by reconciliation."""
    data = response.data
    if not isinstance(data, Mapping):
        return Result.success()
    for _, payment in _payments(data):
        status = payment.get("status")
        reason = (payment.get("status_details") or {}).get("reason") if isinstance(
            payment.get("status_details"), Mapping) else None
        if status in ("DECLINED", "DENIED", "FAILED") and not taken_back(payment):
            processor = payment.get("processor_response")
            code = processor.get("response_code") if isinstance(processor, Mapping) else None
            return Result(False, (f"PayPal {status.lower()} the payment" + (f" ({reason})" if reason else ""),),
                          ("CAPTURE_FAILED" if status == "FAILED" else str(status),
                           *([code] if isinstance(code, str) else [])))
    return Result.success()


def not_voided(subject: Subject, response: Response) -> Result:
    """An order PayPal voided before anything was authorized or captured in it (`cancelled`) ends
    the payment: nobody can complete it, and nothing was or will be paid in it."""
    if isinstance(response.data, Mapping) and cancelled(response.data):
        return Result.failure("PayPal voided the order before anything was authorized or captured in it",
                              VOIDED_ORDER)
    return Result.success()


def refund_not_failed(subject: Subject, response: Response) -> Result:
    """A refund PayPal answers FAILED or CANCELLED did not happen."""
    status = response.data.get("status") if isinstance(response.data, Mapping) else None
    if status in ("FAILED", "CANCELLED"):
        return Result.failure(f"PayPal reports the refund {status.lower()}", f"REFUND_{status}")
    return Result.success()


def _reused(what: str) -> Result:
    return Result.failure(
        f"PayPal answered with the {what} of an earlier request with this PayPal-Request-Id, which differs "
        "from this one: an idempotency key was reused for another request", REUSED_KEY)


def same_order(intent: str) -> Any:
    """The created order is the one asked for: PayPal replays a repeated key whatever the new body says."""

    def check(subject: Subject, response: Response) -> Result:
        data = response.data
        if not isinstance(data, Mapping) or subject.amount is None:
            return Result.success()
        if data.get("intent", intent) != intent:
            return _reused("order")
        units = data.get("purchase_units")
        amount = units[0].get("amount") if isinstance(units, list) and units and isinstance(units[0], Mapping) else None
        if isinstance(amount, Mapping) and _another_amount(amount, subject.amount):
            return _reused("order")
        return Result.success()

    check.__qualname__ = f"same_order({intent})"
    return check


def same_amount(subject: Subject, response: Response) -> Result:
    """A capture, refund or reauthorization answers the amount asked for (see `same_order`)."""
    data = response.data
    if not isinstance(data, Mapping) or subject.amount is None or not isinstance(data.get("amount"), Mapping):
        return Result.success()
    if _another_amount(data["amount"], subject.amount):
        return _reused("payment")
    return Result.success()


def _another_amount(answered: Mapping[str, Any], asked: Money) -> bool:
    """Whether PayPal's answer names another amount than the one asked for, compared as money:
    "10.5" is "10.50", and one written another way is no sign of a reused key (the request took
    effect: recorded failed, it would be lost). One paywire cannot read is the handler's to
    refuse as unreadable (an unknown outcome, never a failure)."""
    try:
        return from_paypal(answered) != asked
    except InvalidRequest:
        return False
