"""A verified PayPal event as paywire's `WebhookEvent`.

PayPal's event names the resource it is about (`resource_type`: capture, refund, authorization,
checkout-order) and carries it whole. Every id the resource names becomes a reference, so the
payment service can match the event whichever id it kept: the order (also as "payment", the
primary object), the authorization, the capture, the refund.

CHECKOUT.PAYMENT-APPROVAL.REVERSED, as PayPal documents it, names its order as `resource.order_id`
and has no `resource.id`, and a dispute (CUSTOMER.DISPUTE.*, Disputes v1) is named by `dispute_id`:
`resource_id` reads the id where the event type keeps it. A dispute's event is `OTHER` (it moves
no captured or refunded money; one decided for the buyer does, as PAYMENT.CAPTURE.REVERSED), and
references the dispute and the capture it contests, so it is stored with that capture's payment.

An event is always about its resource: `reference` is the capture of PAYMENT.CAPTURE.* events
(the one denied, declined or completed), the refund of PAYMENT.CAPTURE.REFUNDED/REVERSED and
PAYMENT.REFUND.* (the one refunded, pending, failed or cancelled). A pending refund's event is
`REFUND_PENDING`: PayPal holds its amount against the capture undecided, so one made in PayPal's
dashboard is held in flight until decided; a pending capture's is `CAPTURE_PENDING`, held so
against its authorization. A capture's event says whether the capture was final
(`closes_capture`, from the capture's `final_capture`): PayPal then takes no further capture of
its authorization (CAPTURED), so a final capture made in PayPal's dashboard closes the payment's
capture in the ledger; as PayPal echoes `final_capture` as asked, such an event is no capture
of the service's own sent not final, and waits for none. `read_event` reads the body;
`event_from` builds the event from a resource (the body's, or the object fetched from PayPal when
the verifier confirms it, see `confirm`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from paywire import EventKind, InvalidRequest, Money, WebhookEvent, WebhookVerificationError
from paywire_paypal.amounts import from_paypal
from paywire_paypal.order_state import order_id_of, up_id

__all__ = ["KINDS", "event_from", "load_body", "read_event", "resource_id"]

KINDS: Final = {
    "CHECKOUT.ORDER.APPROVED": EventKind.APPROVED,
    "CHECKOUT.PAYMENT-APPROVAL.REVERSED": EventKind.FAILED,
    "PAYMENT.AUTHORIZATION.CREATED": EventKind.AUTHORIZED,
    "PAYMENT.AUTHORIZATION.VOIDED": EventKind.VOIDED,
    "PAYMENT.CAPTURE.COMPLETED": EventKind.CAPTURED,
    "PAYMENT.CAPTURE.DECLINED": EventKind.FAILED,
    "PAYMENT.CAPTURE.DENIED": EventKind.FAILED,
    "PAYMENT.CAPTURE.PENDING": EventKind.CAPTURE_PENDING,
    "PAYMENT.CAPTURE.REFUNDED": EventKind.REFUNDED,
    "PAYMENT.CAPTURE.REVERSED": EventKind.REFUNDED,
    "PAYMENT.REFUND.COMPLETED": EventKind.REFUNDED,
    "PAYMENT.REFUND.PENDING": EventKind.REFUND_PENDING,
    "PAYMENT.REFUND.FAILED": EventKind.FAILED,
    "PAYMENT.REFUND.CANCELLED": EventKind.FAILED,
}


# Event types whose resource names its object in another field than `id` (PayPal's documented shape).
_ID_FIELDS: Final = {"CHECKOUT.PAYMENT-APPROVAL.REVERSED": "order_id"}
_DISPUTE_EVENTS: Final = "CUSTOMER.DISPUTE."  # a Disputes v1 dispute: named by `dispute_id`


def _id_field(event_type: str) -> str:
    return "dispute_id" if event_type.startswith(_DISPUTE_EVENTS) else _ID_FIELDS.get(event_type, "id")


def _own_id(event_type: str, resource: Mapping[str, Any]) -> str | None:
    value = resource.get(_id_field(event_type))
    return value if isinstance(value, str) else None


def resource_id(event: Mapping[str, Any]) -> str | None:
    """The id of the object a (read) event is about, or None when its resource has none."""
    return _own_id(str(event["event_type"]), event["resource"])


def _malformed(why: str) -> WebhookVerificationError:
    return WebhookVerificationError(f"the PayPal event is malformed: {why}", provider="paypal", code="malformed_event")


def _disputed(own: str, resource: Mapping[str, Any]) -> dict[str, str]:
    """A dispute, and the first capture it contests (`seller_transaction_id`)."""
    references = {"dispute": own}
    disputed = resource.get("disputed_transactions")
    first = disputed[0] if isinstance(disputed, list) and disputed else None
    capture = first.get("seller_transaction_id") if isinstance(first, Mapping) else None
    if isinstance(capture, str) and capture:
        references["capture"] = capture
    return references


def _references(resource_type: str, own: str, resource: Mapping[str, Any]) -> dict[str, str]:
    references: dict[str, str] = {}
    if resource_type == "dispute":
        return _disputed(own, resource)
    if resource_type == "checkout-order":
        references["order"] = own
        references["payment"] = own
        return references
    if resource_type in ("capture", "authorization", "refund"):
        references[resource_type] = own
    order_id = order_id_of(resource)
    if order_id:
        references |= {"order": order_id, "payment": order_id}
    supplementary = resource.get("supplementary_data")
    related = supplementary.get("related_ids") if isinstance(supplementary, Mapping) else None
    if isinstance(related, Mapping) and isinstance(related.get("authorization_id"), str):
        references.setdefault("authorization", related["authorization_id"])
    if resource_type == "refund":
        capture = up_id(resource, "captures")
        if capture:
            references["capture"] = capture
    return references


def _amount(resource_type: str, resource: Mapping[str, Any]) -> Money | None:
    amount = resource.get("amount")
    if resource_type == "checkout-order":
        units = resource.get("purchase_units")
        first = units[0] if isinstance(units, list) and units and isinstance(units[0], Mapping) else {}
        amount = first.get("amount")
    return from_paypal(amount) if isinstance(amount, Mapping) else None


def _time(value: Any) -> datetime | None:
    try:
        return datetime.fromisoformat(value) if isinstance(value, str) else None
    except ValueError:
        return None


# PayPal's events nest a handful of levels. Python's JSON parser and encoder recurse: a body nested
# deep enough raises RecursionError, and one just shallow enough to parse may not encode again
# where the stack is deeper (the API verifier sends the event to PayPal).
_MAX_DEPTH: Final = 32


def _too_deep(value: Any) -> bool:
    stack = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item if isinstance(item, list) else ()
        if children and depth >= _MAX_DEPTH:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def load_body(body: bytes) -> Any:
    """The JSON value of a webhook body, or None when it is not JSON or nests deeper than PayPal's events."""
    try:
        value = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError):
        return None
    return None if _too_deep(value) else value


def read_event(body: bytes) -> Mapping[str, Any]:
    """The event object of a body, checked for the fields every event has."""
    event = load_body(body)
    if event is None:
        raise _malformed("the body is not JSON, or nests deeper than PayPal's events")
    if not isinstance(event, Mapping):
        raise _malformed("the body is not a JSON object")
    event_id, event_type = event.get("id"), event.get("event_type")
    resource = event.get("resource")
    if not isinstance(event_id, str) or not isinstance(event_type, str) or not isinstance(resource, Mapping):
        raise _malformed("it needs an id, an event_type and a resource")
    if not isinstance(event.get("resource_type") or "", str):
        raise _malformed("its resource_type is not a string")
    if resource_id(event) is None:
        raise _malformed(f"its resource has no {_id_field(event_type)}")
    return event


def event_from(event: Mapping[str, Any], resource: Mapping[str, Any], kind: str | None = None) -> WebhookEvent:
    """The `WebhookEvent` of `event` about `resource` (its own, or the one fetched from PayPal)."""
    resource_type = str(event.get("resource_type") or "")
    try:
        amount = _amount(resource_type, resource)
    except InvalidRequest:
        raise _malformed("its amount is not one paywire can hold") from None
    event_type = str(event["event_type"])
    # A resource read from PayPal (the order an approval reversal names) carries its `id`.
    own = str(resource["id"] if isinstance(resource.get("id"), str) else _own_id(event_type, resource))
    return WebhookEvent(
        provider="paypal",
        id=str(event["id"]),
        type=event_type,
        kind=KINDS.get(event_type, EventKind.OTHER) if kind is None else kind,
        reference=own,
        references=_references(resource_type, own, resource),
        amount=amount,
        # Payments v2's capture says it (read-only, false unless the capture request set it).
        closes_capture=resource_type == "capture" and resource.get("final_capture") is True,
        occurred_at=_time(event.get("create_time")),
        data={**event, "resource": resource},
    )
