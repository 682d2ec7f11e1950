"""Payments v2: capture, void and reauthorize an authorization; refund a capture.

Each POST carries the idempotency key as PayPal-Request-Id and asks for the whole resource back.
A capture without an amount takes what is left of the authorization; `final` (final_capture)
releases the rest. A refund without an amount refunds what is left of the capture; its reason
becomes the note PayPal shows the payer.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paywire import ProviderState, Response, Subject
from paywire_paypal.amounts import from_paypal, to_paypal
from paywire_paypal.order_state import order_id_of

__all__ = [
    "authorization_fields",
    "capture_fields",
    "capture_request",
    "optional_amount",
    "refund_fields",
    "refund_request",
    "void_fields",
]

_PENDING = {"PENDING": ProviderState.PENDING}


def optional_amount(subject: Subject) -> dict[str, Any]:
    """`amount`, when the subject names one (PayPal takes the rest otherwise)."""
    return {"amount": to_paypal(subject.amount)} if subject.amount is not None else {}


def capture_request(subject: Subject) -> dict[str, Any]:
    return {"final_capture": subject.final}


def refund_request(subject: Subject) -> dict[str, Any]:
    return {"note_to_payer": subject.reason[:255]} if subject.reason else {}


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
    if capture.get("status") in _PENDING:
        fields["state"] = _PENDING[capture["status"]]
    return fields


def void_fields(subject: Subject, response: Response) -> dict[str, Any]:
    """The voided authorization (PayPal may answer 204 without it)."""
    authorization = response.data if isinstance(response.data, Mapping) else {"id": subject.reference}
    fields: dict[str, Any] = {
        "reference": authorization["id"],
        "references": _references(subject, authorization, "authorization", "authorization"),
    }
    if authorization.get("status", "VOIDED") == "VOIDED":
        fields["state"] = ProviderState.VOIDED
    return fields


def authorization_fields(subject: Subject, response: Response) -> dict[str, Any]:
    """A reauthorization: the new authorization, which later captures and voids act on."""
    authorization = response.data
    return {
        "reference": authorization["id"],
        "amount": from_paypal(authorization["amount"]),
        "state": ProviderState.AUTHORIZED,
        "references": _references(subject, authorization, "authorization", "reauthorized"),
    }


def refund_fields(subject: Subject, response: Response) -> dict[str, Any]:
    refund = response.data
    fields: dict[str, Any] = {
        "reference": refund["id"],
        "amount": from_paypal(refund["amount"]),
        "references": _references(subject, refund, "refund", "capture"),
    }
    if refund.get("status") in _PENDING:
        fields["state"] = _PENDING[refund["status"]]
    return fields
