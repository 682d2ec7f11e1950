"""Payments v2: capture, void and reauthorize an authorization; refund a capture.

Each POST carries the idempotency key as PayPal-Request-Id and asks for the whole resource back.
A capture without an amount takes the full authorized amount (PayPal's rule, whatever earlier
captures took: after a partial capture it captures more than is left, within PayPal's overage
limit), so the payment service always sends the amount; `final` (final_capture) releases the
rest. A refund without an amount refunds what is left of the capture; its reason becomes the note
PayPal shows the payer, and its idempotency key its `custom_id` (PayPal echoes it on the refund,
so `fetch` can name the key each refund was made with, and tell a refund PayPal or the dashboard
made, which has none, from paywire's).

A capture, refund or reauthorization PayPal answers PENDING (a capture held for review or waiting
for an eCheck to clear, a refund funded by eCheck, an authorization under review) is `accepted`:
PayPal took it and decides later, by webhook (PAYMENT.CAPTURE.COMPLETED / DENIED,
PAYMENT.CAPTURE.REFUNDED / PAYMENT.REFUND.FAILED, PAYMENT.AUTHORIZATION.CREATED).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

from paywire import REAUTHORIZED, VOID_TARGET, ProviderState, Response, Subject
from paywire_paypal.amounts import from_paypal, to_paypal
from paywire_paypal.order_state import KEY_NOT_ECHOED, order_id_of

__all__ = [
    "authorization_fields",
    "capture_fields",
    "capture_request",
    "optional_amount",
    "refund_fields",
    "refund_request",
    "void_fields",
]

# What PayPal echoes as a refund's custom_id (the refund schema's pattern and length).
_CUSTOM_ID: Final = re.compile(r"[A-Za-z0-9\-_.,]{1,127}")


def optional_amount(subject: Subject) -> dict[str, Any]:
    """`amount`, when the subject names one (otherwise PayPal captures the full authorized amount,
    or refunds what is left of the capture)."""
    return {"amount": to_paypal(subject.amount)} if subject.amount is not None else {}


def capture_request(subject: Subject) -> dict[str, Any]:
    return {"final_capture": subject.final}


def refund_request(subject: Subject) -> dict[str, Any]:
    """The note to the payer, and the idempotency key as `custom_id`; a key PayPal cannot echo
    as `KEY_NOT_ECHOED`, so the refund is still known to be paywire's."""
    request: dict[str, Any] = {"note_to_payer": subject.reason[:255]} if subject.reason else {}
    key = subject.idempotency_key
    if key:
        request["custom_id"] = key if _CUSTOM_ID.fullmatch(key) else KEY_NOT_ECHOED
    return request


def _accepted(payment: Mapping[str, Any], fields: dict[str, Any]) -> dict[str, Any]:
    """A PENDING capture, refund or reauthorization: PayPal decides later (`status_details.reason`
    says why, in `raw`)."""
    if payment.get("status") == "PENDING":
        fields |= {"status": "accepted", "state": ProviderState.PROCESSING}
    return fields


def _references(subject: Subject, payment: Mapping[str, Any], own: str, parent: str) -> dict[str, str]:
    references = {own: str(payment["id"])}
    if subject.reference:
        references.setdefault(parent, subject.reference)
    order_id = order_id_of(payment)
    if order_id:
        references |= {"payment": order_id, "order": order_id}
    return references


def capture_fields(subject: Subject, response: Response) -> dict[str, Any]:
    """The capture: `reference` is what refunds act on."""
    capture = response.data
    fields: dict[str, Any] = {
        "reference": capture["id"],
        "amount": from_paypal(capture["amount"]),
        "references": _references(subject, capture, "capture", "authorization"),
    }
    return _accepted(capture, fields)


def void_fields(subject: Subject, response: Response) -> dict[str, Any]:
    """The voided authorization (PayPal may answer 204 without it), named as what voids act on:
    after a reauthorization that is the original, not the reauthorization captures act on."""
    authorization = response.data if isinstance(response.data, Mapping) else {"id": subject.reference}
    fields: dict[str, Any] = {
        "reference": authorization["id"],
        "references": _references(subject, authorization, VOID_TARGET, VOID_TARGET),
    }
    if authorization.get("status", "VOIDED") == "VOIDED":
        fields["state"] = ProviderState.VOIDED
    return fields


def authorization_fields(subject: Subject, response: Response) -> dict[str, Any]:
    """A reauthorization: the new authorization, which later captures and voids act on;
    `accepted` while PayPal reviews it (PENDING): nothing is held for captures until it decides."""
    authorization = response.data
    fields: dict[str, Any] = {
        "reference": authorization["id"],
        "amount": from_paypal(authorization["amount"]),
        "state": ProviderState.AUTHORIZED,
        "references": _references(subject, authorization, "authorization", REAUTHORIZED),
    }
    if subject.reference:  # voids go to the authorization it renews: PayPal voids a reauthorization through it
        fields["references"][VOID_TARGET] = subject.reference
    return _accepted(authorization, fields)


def refund_fields(subject: Subject, response: Response) -> dict[str, Any]:
    refund = response.data
    fields: dict[str, Any] = {
        "reference": refund["id"],
        "amount": from_paypal(refund["amount"]),
        "references": _references(subject, refund, "refund", "capture"),
    }
    return _accepted(refund, fields)
