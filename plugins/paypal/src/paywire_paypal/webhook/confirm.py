"""Events that move money are confirmed by reading their object from PayPal.

PayPal's signature covers `transmission id|time|webhook id|CRC32(body)`: only a CRC32 of the
body, which is linear, so anyone holding one genuine signed delivery can rewrite its event id,
resource id and amount and fix four filler bytes to keep the CRC32, and the signature still
verifies (offline, and by verify-webhook-signature, which checks the same signed string over the
event it is given). The signature proves that PayPal sent *a* body with that CRC32, not this one.

So an event about a capture, a refund or an authorization is taken only as a pointer: its
resource is read from PayPal (`GET /v2/payments/captures/{id}`, `/refunds/{id}`,
`/authorizations/{id}`) with the method's own credentials, and the event returned is built from
what PayPal answered (id, status, amount, parent ids), never from the body's claims. It is
refused (`WebhookVerificationError`, nothing applied) when PayPal does not hold that object, or
when the object's status says another kind of event than the one claimed (a "completed" capture
PayPal holds as declined). A pending refund's event is taken as `REFUND_PENDING` while PayPal
holds the refund PENDING, a pending capture's as `CAPTURE_PENDING` while PayPal holds the capture
PENDING, and either as `OTHER` once PayPal decided it (late: the event of the decision says what
PayPal decided, and a decided operation is never held in flight again).

A capture PayPal holds DENIED (or DECLINED, FAILED) for a reason that says its money was taken
back after it was captured (`status_details.reason` CHARGEBACK, BUYER_COMPLAINT or REFUNDED, as
Payments v2 documents them) is `REVERSED`: the capture succeeded and PayPal undid it, so the
ledger records its reversal, as reconciliation does on reading it. So is a completed event about
it arriving late, after PayPal took the money back: it was true when sent, and refused it would be
redelivered for days. Denied without such a reason (a pending capture PayPal decided against) it
is `FAILED`.

An authorization's created event is also checked against its order: one PayPal reauthorized
since (the order lists a live authorization after it) is `OTHER`. Delivered after its
reauthorization's event (PayPal retries a delivery for days, and reauthorizes from day 4 on), it
would point captures back at the authorization PayPal no longer captures. The created event of
a reauthorization (the order lists it as the live one, after the authorization it renews) names
that one too (`REAUTHORIZED`): what it holds, more or less than before, replaces what the payment
held. So it does once PayPal voided it (with the original, a void of the payment): the order
reads what it held as authorized, and the payment would otherwise claim the original's amount
until a reconciliation; the void's own events (or the void's answer) say it is voided. An
original authorization's created event arriving once it was voided is `OTHER`: its authorization
was recorded by the operation that made it. The voided event of a reauthorization (PayPal voids
one with its original, also one it still reviewed, PENDING) names the one it renews the same way:
it says the payment is voided, and what the order reads as authorized, the reauthorization's
amount, as reconciliation would; without it the payment would claim the original's amount, which
no created event (PayPal sends none for one voided in review) ever replaces.

CHECKOUT.PAYMENT-APPROVAL.REVERSED fails the order it names (PayPal cancelled it: the capture
window after approval passed), so it is confirmed the same way: the order is read
(`GET /v2/checkout/orders/{id}`) and the event taken as `FAILED` only when PayPal holds it as
VOIDED; an order still approved, or completed, contradicts it. Other events about orders, and
events about vault tokens, move no money and are taken as they come.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

import attrs

from paywire import (
    REAUTHORIZED,
    EventKind,
    InvalidRequest,
    OwnCommands,
    PaywireError,
    Subject,
    WebhookEvent,
    WebhookVerificationError,
)
from paywire_paypal.order_state import order_id_of, renewed, renews, taken_back
from paywire_paypal.webhook.events import KINDS, event_from, resource_id

__all__ = ["CONFIRMED", "READS", "Confirmer", "fetched_kind"]

# resource_type -> the pool command reading it by id (commands.py).
READS: Final = {"capture": "read_capture", "refund": "read_refund", "authorization": "read_authorization"}
# Event type prefixes that are about a resource PayPal must confirm.
CONFIRMED: Final = ("PAYMENT.CAPTURE.", "PAYMENT.REFUND.", "PAYMENT.AUTHORIZATION.")
# The one order event that moves a payment (it fails it), confirmed by reading the order.
APPROVAL_REVERSED: Final = "CHECKOUT.PAYMENT-APPROVAL.REVERSED"
# What the fetched object's status says happened, per resource type.
_STATUS_KINDS: Final[Mapping[str, Mapping[str, str]]] = {
    "capture": {"COMPLETED": EventKind.CAPTURED, "PARTIALLY_REFUNDED": EventKind.CAPTURED,
                "REFUNDED": EventKind.CAPTURED, "PENDING": EventKind.CAPTURE_PENDING, "DECLINED": EventKind.FAILED,
                "DENIED": EventKind.FAILED, "FAILED": EventKind.FAILED},
    "refund": {"COMPLETED": EventKind.REFUNDED, "PENDING": EventKind.REFUND_PENDING, "FAILED": EventKind.FAILED,
               "CANCELLED": EventKind.FAILED},
    "authorization": {"CREATED": EventKind.AUTHORIZED, "PARTIALLY_CAPTURED": EventKind.AUTHORIZED,
                      "CAPTURED": EventKind.AUTHORIZED, "VOIDED": EventKind.VOIDED, "EXPIRED": EventKind.VOIDED,
                      "PENDING": EventKind.OTHER, "DENIED": EventKind.FAILED},
    "checkout-order": {"VOIDED": EventKind.FAILED},
}
# What the confirmation reads: the payment objects, and the order an approval reversal names.
_READS: Final = {**READS, "checkout-order": "read_order"}
_NOT_FOUND: Final = frozenset({"INVALID_RESOURCE_ID", "RESOURCE_NOT_FOUND"})
# Kinds of an operation PayPal holds undecided: true only while PayPal still holds it PENDING.
_PENDING: Final = frozenset({EventKind.REFUND_PENDING, EventKind.CAPTURE_PENDING})


def _refuse(message: str, code: str, *, retryable: bool = False) -> WebhookVerificationError:
    return WebhookVerificationError(message, provider="paypal", code=code, retryable=retryable)


def needs_confirmation(event: Mapping[str, Any]) -> bool:
    """Whether the event moves money (a capture, refund, authorization, approval reversal): see the docstring."""
    event_type = str(event.get("event_type"))
    return event_type.startswith(CONFIRMED) or event_type == APPROVAL_REVERSED or event.get("resource_type") in READS


def fetched_kind(resource_type: str, resource: Mapping[str, Any], claimed: str) -> str:
    """The kind the fetched object supports; refuses an event whose claim it contradicts."""
    actual = _STATUS_KINDS[resource_type].get(str(resource.get("status")))
    if claimed == EventKind.OTHER:
        return EventKind.OTHER  # pending, or a type paywire does not act on: no effect either way
    if claimed in _PENDING and actual != claimed:
        return EventKind.OTHER  # decided since: its own event says how, and one that lied moves nothing
    if resource_type == "capture" and taken_back(resource):
        if claimed not in (EventKind.CAPTURED, EventKind.FAILED, EventKind.REFUNDED):
            raise _refuse(
                f"PayPal holds the event's capture as taken back ({_reason(resource)}), which "
                "contradicts the event; nothing was applied",
                "event_contradicted",
            )
        return EventKind.REVERSED  # denied or reversed after it was captured: the capture is undone
    if claimed == EventKind.AUTHORIZED and actual == EventKind.VOIDED:
        return EventKind.OTHER  # an authorization created, since voided: nothing left to record
    if actual != claimed:
        raise _refuse(f"PayPal holds the event's {resource_type} as {resource.get('status')}, which contradicts "
                      "the event; nothing was applied", "event_contradicted")
    return actual


def _reason(resource: Mapping[str, Any]) -> str | None:
    details = resource.get("status_details")
    reason = details.get("reason") if isinstance(details, Mapping) else None
    return reason if isinstance(reason, str) else None


class Confirmer:
    """Confirms a verified event by reading its resource from PayPal (see the module docstring)."""

    def __init__(self, pool: OwnCommands) -> None:
        self._pool = pool

    def __repr__(self) -> str:
        return f"Confirmer({self._pool!r})"

    def __call__(self, event: Mapping[str, Any]) -> WebhookEvent:
        if not needs_confirmation(event):
            return event_from(event, event["resource"])
        resource_type = str(event.get("resource_type") or "")
        if event["event_type"] == APPROVAL_REVERSED:
            resource_type = "checkout-order"  # whatever the body says: the order is what PayPal cancelled
        if resource_type not in _READS:
            raise _refuse(f"a {event.get('event_type')} event about a {resource_type or 'missing'} resource "
                          "cannot be confirmed; nothing was applied", "unconfirmable_event")
        resource = self._read(resource_type, str(resource_id(event)))
        claimed = KINDS.get(str(event["event_type"]), EventKind.OTHER)
        kind = fetched_kind(resource_type, resource, claimed)
        voided = claimed == EventKind.AUTHORIZED and _STATUS_KINDS[resource_type].get(
            str(resource.get("status"))) == EventKind.VOIDED
        # An authorization's voided event: of a reauthorization, it also says what that held.
        replaced = resource_type == "authorization" and kind == EventKind.VOIDED
        order = self._order(resource) if kind == EventKind.AUTHORIZED or voided or replaced else None
        if order is not None and not replaced and renewed(order, str(resource["id"])):
            kind = EventKind.OTHER  # reauthorized since: captures act on its reauthorization
        elif voided and order is not None and renews(order, str(resource["id"])) is not None:
            kind = EventKind.AUTHORIZED  # a reauthorization voided since: what it held still replaced the original's
        confirmed = event_from({**event, "resource_type": resource_type}, resource, kind)
        original = renews(order, str(resource["id"])) if order is not None and kind in (
            EventKind.AUTHORIZED, EventKind.VOIDED) else None
        if original is None:
            return confirmed
        # A reauthorization: what it holds replaces what the one it renews held.
        return attrs.evolve(confirmed, references={**confirmed.references, REAUTHORIZED: original})

    def _order(self, authorization: Mapping[str, Any]) -> Mapping[str, Any] | None:
        """The order of the authorization, which says whether PayPal reauthorized it since, or it
        is a reauthorization (see the module docstring): None when it names no order PayPal holds,
        which then lists no reauthorization of it."""
        order_id = order_id_of(authorization)
        if order_id is None:
            return None
        try:
            return self._read("checkout-order", order_id)
        except WebhookVerificationError as error:
            if error.code == "unconfirmed_event":
                return None
            raise

    def _read(self, resource_type: str, resource_id: str) -> Mapping[str, Any]:
        try:
            resource = self._pool.run(_READS[resource_type], Subject(reference=resource_id)).raw
        except InvalidRequest as error:
            if error.status == 404 or error.code in _NOT_FOUND:
                raise _refuse(f"PayPal holds no {resource_type} with the event's id; nothing was applied",
                              "unconfirmed_event") from error
            raise _refuse(f"PayPal refused to show the event's {resource_type} ({error.code})",
                          "confirmation_refused") from error
        except PaywireError as error:
            raise _refuse(f"the event's {resource_type} could not be read from PayPal ({type(error).__name__}: "
                          f"{error.code}); nothing was applied", "confirmation_unavailable",
                          retryable=error.retryable) from error
        if not isinstance(resource, Mapping) or resource.get("id") != resource_id:
            raise _refuse(f"PayPal answered the event's {resource_type} without it", "unconfirmed_event")
        return resource
