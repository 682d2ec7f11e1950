"""Stripe events (already verified) as paywire's `WebhookEvent`s.

What each event means for a payment:

    payment_intent.amount_capturable_updated   authorized   amount: amount_capturable
    payment_intent.succeeded                   captured     amount and total: amount_received
    payment_intent.canceled                    voided
    payment_intent.payment_failed              failed
    payment_intent.requires_action             action_required
    charge.succeeded                           captured (sale) or authorized (amount: what the card holds,
                                                            its amount_authorized where given)
    charge.captured                            captured     amount and total: amount_captured
    charge.refunded                            other        (voided if never captured): its amount_refunded
                                                            counts refunds still pending, which may fail,
                                                            so it is no floor; the refund events count
    charge.expired                             voided       (an authorization Stripe let lapse)
    charge.failed                              failed
    refund.created / refund.updated /          refunded     when the refund succeeded; amount: the refund's
    charge.refund.updated                      failed       when it failed or was canceled
                                               refund_pending  while it is pending or requires_action;
                                                            amount: the refund's
    refund.failed                              failed
    (a refund event whose reason is expired_uncaptured_charge is other: Stripe's booking of an
    authorization released uncaptured, no money back; so is one the verifier finds is Stripe's
    booking of a partial capture's or a cancellation's release, see `releases`)

A `payment_intent.processing` is `other`: the request was accepted and `payment_intent.succeeded` /
`payment_intent.payment_failed` settle it. A refund still `pending` (or `requires_action`) is
`refund_pending`: Stripe holds it against the charge, undecided, so one made in the dashboard is
held in flight until `refund.updated` / `charge.refund.updated` / `refund.failed` decide it (for a
refund of paywire's own, accepted already, it changes nothing). Everything else is `other`,
disputes (`charge.dispute.*`) among them: a chargeback takes
money from the balance but changes neither what the charge captured nor what it refunded, the
totals the ledger keeps. `reference` is the PaymentIntent (the refund, for refund
events, so a failed refund names exactly the refund that failed); `references` names every Stripe
id the object carries.

The signature (see `webhook.py`) is an HMAC over the exact raw body, so an event is Stripe's word
as it comes; only a refund that may be a release's booking is read from Stripe (`releases`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from paywire import EventKind, InvalidRequest, Money, WebhookEvent, WebhookVerificationError
from paywire_stripe.amounts import from_stripe, wire_amount
from paywire_stripe.states import charge_authorized

__all__ = ["parse_event"]

_INTENT_KINDS = {
    "payment_intent.amount_capturable_updated": EventKind.AUTHORIZED,
    "payment_intent.succeeded": EventKind.CAPTURED,
    "payment_intent.canceled": EventKind.VOIDED,
    "payment_intent.payment_failed": EventKind.FAILED,
    "payment_intent.requires_action": EventKind.ACTION_REQUIRED,
}
_ID_FIELDS = ("payment_intent", "charge", "customer", "payment_method", "latest_charge")


def _id(value: Any) -> str | None:
    if isinstance(value, Mapping):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _money(obj: Mapping[str, Any], field: str) -> Money | None:
    """An amount of the object as `Money`, or None where it has none paywire can hold (checked an
    integer first: `from_stripe` caches, and a list or object in its place would not hash)."""
    try:
        return from_stripe(wire_amount(obj[field]), str(obj["currency"]))
    except (KeyError, InvalidRequest):
        return None


def _references(obj: Mapping[str, Any]) -> dict[str, str]:
    kind, own = obj.get("object"), _id(obj.get("id"))
    found = {"charge" if name == "latest_charge" else name: ref for name in _ID_FIELDS if (ref := _id(obj.get(name)))}
    if own and isinstance(kind, str):
        found[kind] = own
    return found


def _meaning(event_type: str, obj: Mapping[str, Any]) -> tuple[str, Money | None, Money | None]:
    """(kind, amount, total) of an event about `obj`."""
    kind = obj.get("object")
    if kind == "payment_intent":
        meaning = _INTENT_KINDS.get(event_type, EventKind.OTHER)
        if meaning == EventKind.AUTHORIZED:
            return meaning, _money(obj, "amount_capturable"), None
        if meaning == EventKind.CAPTURED:
            received = _money(obj, "amount_received")
            return meaning, received, received
        return meaning, None, None
    if kind == "charge":
        return _charge_meaning(event_type, obj)
    if kind == "refund":
        return _refund_meaning(event_type, obj)
    return EventKind.OTHER, None, None


# A Refund "generated by Stripe internally" (the Refund schema's `reason`) for an authorization that
# expired uncaptured: no money went back (`charge.expired` voids the payment).
_RELEASE_REASON = "expired_uncaptured_charge"
_REFUND_EVENTS = frozenset({"refund.created", "refund.updated", "charge.refund.updated", "refund.failed"})


def _refund_meaning(event_type: str, refund: Mapping[str, Any]) -> tuple[str, Money | None, Money | None]:
    """A refund's event by the refund's status: succeeded is refunded, failed (or canceled) failed,
    pending or requires_action held undecided (refund_pending); any other status says nothing."""
    if event_type not in _REFUND_EVENTS or refund.get("reason") == _RELEASE_REASON:
        return EventKind.OTHER, None, None
    status = refund.get("status")
    if event_type == "refund.failed" or status in ("failed", "canceled"):
        return EventKind.FAILED, _money(refund, "amount"), None
    if status == "succeeded":
        return EventKind.REFUNDED, _money(refund, "amount"), None
    if status in ("pending", "requires_action"):
        return EventKind.REFUND_PENDING, _money(refund, "amount"), None
    return EventKind.OTHER, None, None


def _charge_meaning(event_type: str, charge: Mapping[str, Any]) -> tuple[str, Money | None, Money | None]:
    captured = bool(charge.get("captured"))
    if event_type in ("charge.captured", "charge.succeeded") and captured:
        amount = _money(charge, "amount_captured")
        return EventKind.CAPTURED, amount, amount
    if event_type == "charge.succeeded":
        # What the card holds: less than the charge's `amount` (what was asked) after a partial
        # authorization, and an authorized event's amount raises the payment's authorized floor.
        try:
            held = from_stripe(charge_authorized(charge), str(charge["currency"]))
        except (KeyError, InvalidRequest):
            held = None
        return EventKind.AUTHORIZED, held, None
    if event_type == "charge.refunded" and captured:
        return EventKind.OTHER, None, None
    if event_type in ("charge.refunded", "charge.expired"):  # an uncaptured authorization released
        return EventKind.VOIDED, None, None
    if event_type == "charge.failed":
        return EventKind.FAILED, None, None
    return EventKind.OTHER, None, None


def _malformed(why: str) -> WebhookVerificationError:
    return WebhookVerificationError(f"the webhook is not a Stripe event: {why}", provider="stripe", code="malformed")


def parse_event(body: bytes) -> WebhookEvent:
    """The `WebhookEvent` of a verified Stripe event body; a body of another shape is refused."""
    try:
        event = json.loads(body)
    except (ValueError, UnicodeDecodeError, RecursionError) as exc:  # RecursionError: nested too deep to read
        raise _malformed("the body is not JSON paywire can read") from exc
    if not isinstance(event, Mapping) or event.get("object") != "event":
        raise _malformed("the body is not an event object")
    event_id, event_type, data = event.get("id"), event.get("type"), event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(event_id, str) or not event_id or not isinstance(event_type, str) or not event_type:
        raise _malformed("the event has no id or type")
    if not isinstance(obj, Mapping):
        raise _malformed("the event carries no data.object")
    kind, amount, total = _meaning(event_type, obj)
    references = _references(obj)
    reference = references.get("refund") if obj.get("object") == "refund" else None
    created = event.get("created")
    return WebhookEvent(
        provider="stripe",
        id=event_id,
        type=event_type,
        kind=kind,
        reference=reference or references.get("payment_intent") or _id(obj.get("id")),
        references=references,
        amount=amount,
        total=total,
        occurred_at=datetime.fromtimestamp(created, UTC) if isinstance(created, int) and 0 <= created < 1 << 34 else None,
        data=event,
    )
