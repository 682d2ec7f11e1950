"""What `fetch` lists: every capture and refund Stripe holds on a PaymentIntent, as
`ProviderOperation`s that reconciliation matches to the ledger's open transactions.

A PaymentIntent captures once: its latest charge, reported under the intent's id (the reference
the capture and sale commands answer with). A bank debit's charge is `pending` while the intent
is `processing`, so its capture is "accepted" until Stripe settles it. Refunds come from
`GET /v1/refunds?payment_intent=...`, each with its status and the idempotency key paywire put in
its metadata, so a refund whose answer was lost is matched to the exact Stripe refund.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paywire import Money, ProviderOperation, Response, Subject
from paywire_stripe.amounts import from_stripe, wire_amount
from paywire_stripe.builders import CAPTURE_KEY_FIELD, IDEMPOTENCY_KEY_FIELD
from paywire_stripe.states import charge_of

__all__ = [
    "OPERATION_STATUS", "capture_operations", "listed_refunds", "refund_operation", "refunded_total", "without_release",
]

# Stripe's charge and refund statuses as `ProviderOperation.status`.
OPERATION_STATUS = {
    "succeeded": "succeeded",
    "pending": "accepted",
    "requires_action": "accepted",
    "failed": "failed",
    "canceled": "failed",
}


def _key(obj: Mapping[str, Any], field: str) -> str | None:
    metadata = obj.get("metadata")
    value = metadata.get(field) if isinstance(metadata, Mapping) else None
    return value if isinstance(value, str) and value else None


def capture_operations(intent: Mapping[str, Any]) -> tuple[ProviderOperation, ...]:
    """The intent's one capture, when its charge was captured (settled, in flight, or failed later)."""
    charge = charge_of(intent)
    key_field = CAPTURE_KEY_FIELD if intent.get("capture_method") == "manual" else IDEMPOTENCY_KEY_FIELD
    key = _key(intent, key_field)
    if charge is None:  # an answer without the expanded charge: only what the intent says for sure
        received = wire_amount(intent.get("amount_received") or 0)
        if not received:
            return ()
        return (ProviderOperation(kind="capture", reference=str(intent["id"]), idempotency_key=key,
                                  amount=from_stripe(received, str(intent["currency"]))),)
    if not charge.get("captured"):
        return ()
    status = OPERATION_STATUS.get(str(charge.get("status")), "accepted")
    return (ProviderOperation(kind="capture", reference=str(intent["id"]), status=status, idempotency_key=key,
                              amount=from_stripe(wire_amount(charge.get("amount_captured") or 0), str(charge["currency"]))),)


def refund_operation(refund: Mapping[str, Any]) -> ProviderOperation:
    """A refund; its parent is its PaymentIntent, the reference its capture is listed and answered
    under (a charge made without an intent: the charge), each field expanded or not."""
    ids = (value.get("id") if isinstance(value, Mapping) else value
           for value in (refund.get("payment_intent"), refund.get("charge")))
    return ProviderOperation(
        kind="refund",
        reference=str(refund["id"]),
        amount=from_stripe(wire_amount(refund["amount"]), str(refund["currency"])),
        status=OPERATION_STATUS.get(str(refund.get("status")), "accepted"),
        idempotency_key=_key(refund, IDEMPOTENCY_KEY_FIELD),
        parent=next((value for value in ids if isinstance(value, str) and value), None),
    )


def without_release(refunds: tuple[ProviderOperation, ...], charge: Mapping[str, Any]) -> tuple[ProviderOperation, ...]:
    """The refunds of a captured charge less the one that stands for what a partial capture released.

    At the pinned API version (before 2025-03-31.basil) Stripe books the uncaptured remainder of a
    partial capture as a Refund of the charge, listed with its refunds: succeeded, without paywire's
    key, of `amount - amount_captured`, and created with the capture, so older than any real refund
    (Stripe lists newest first). No money went back for it, so it is neither a refund nor refunded.
    """
    released = wire_amount(charge["amount"]) - wire_amount(charge.get("amount_captured") or 0)
    if released <= 0:
        return refunds
    amount = from_stripe(released, str(charge["currency"]))
    for index in reversed(range(len(refunds))):
        op = refunds[index]
        if op.status == "succeeded" and op.idempotency_key is None and op.amount == amount:
            return refunds[:index] + refunds[index + 1:]
    return refunds


def refunded_total(operations: tuple[ProviderOperation, ...]) -> Money | None:
    """What the succeeded refunds moved (pending ones are not money back yet); None without refunds."""
    amounts = [op.amount for op in operations if op.kind == "refund" and op.status == "succeeded"]
    refunds = [op for op in operations if op.kind == "refund"]
    if not refunds:
        return None
    currency = refunds[0].amount.currency
    return Money.minor_units(sum(amount.minor for amount in amounts), currency)


def listed_refunds(subject: Subject, response: Response) -> dict[str, Any]:
    """A page of `GET /v1/refunds`: its refunds as operations (the page stays in `raw`)."""
    items = [item for item in response.data.get("data") or ()
             if isinstance(item, dict) and item.get("object") == "refund"]
    return {"operations": tuple(refund_operation(item) for item in items)}
