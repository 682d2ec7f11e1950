"""Refunds: several partial refunds per charge, never more than was captured and not yet refunded.

Stripe's errors: a refund above what is left answers `amount_too_large` with `Refund amount ($X) is
greater than charge amount ($Y)` (nothing refunded yet) or `... greater than unrefunded amount on
charge ($Y)`; a fully refunded charge answers `charge_already_refunded`. An uncaptured
PaymentIntent has no successful charge to refund: cancel it to release the authorization.

Refunds of most cards succeed at once. Those of `pm_card_pendingRefund` and of bank debits start
`pending`, and those of `pm_card_refundFail` start `succeeded`; `settle` finishes them as Stripe
does later: `refund.updated` and `charge.refund.updated`, plus `refund.failed` when one fails, which
gives the amount back to the charge (`amount_refunded`) and books a failure balance transaction.
A charge a chargeback made unrefundable answers `charge_disputed` (see `disputes`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paywire_stripe.emulator import charges, disputes
from paywire_stripe.emulator.currencies import check_amount, display
from paywire_stripe.emulator.customers import merge_metadata
from paywire_stripe.emulator.errors import StripeError, amount_too_large, invalid_request
from paywire_stripe.emulator.params import UNSET
from paywire_stripe.emulator.store import Context, StripeObject

__all__ = ["create", "settle", "update"]


def _charge_to_refund(ctx: Context, params: Mapping[str, Any]) -> StripeObject:
    store = ctx.store
    intent_id = params.get("payment_intent") if params.get("payment_intent") is not UNSET else None
    charge_id = params.get("charge") if params.get("charge") is not UNSET else None
    if not intent_id and not charge_id:
        raise invalid_request(
            "One of the following params should be provided for this request: payment_intent or charge.", saved=False
        )
    if intent_id:
        intent = store.get("payment_intent", intent_id, "payment_intent")
        charge = store.charges.get(intent["latest_charge"] or "")
        if charge is None or charge["status"] != "succeeded" or not charge["captured"]:
            raise invalid_request(
                f"This PaymentIntent ({intent_id}) does not have a successful charge to refund.", param="payment_intent"
            )
        if charge_id and charge_id != charge["id"]:
            raise invalid_request(
                f"The charge {charge_id} does not belong to the PaymentIntent {intent_id}.", param="charge"
            )
        return charge
    charge = store.get("charge", str(charge_id), "charge")
    if charge["status"] != "succeeded":
        raise invalid_request(f"Charge {charge['id']} has failed and cannot be refunded.", param="charge")
    if not charge["captured"]:
        raise invalid_request(
            f"Charge {charge['id']} has not been captured. Cancel its PaymentIntent to release the authorization.",
            param="charge",
        )
    return charge


def create(ctx: Context, params: Mapping[str, Any]) -> StripeObject:
    store = ctx.store
    charge = _charge_to_refund(ctx, params)
    currency = charge["currency"]
    if params.get("currency") not in (None, UNSET) and str(params["currency"]).lower() != currency:
        raise invalid_request(
            f"The currency of the refund must match the charge's currency ({currency}).", param="currency", saved=False
        )
    refused = disputes.refusal(ctx, charge)
    if refused is not None:
        raise refused
    left = charges.unrefunded(store, charge)
    if left <= 0:
        raise StripeError(
            400,
            "invalid_request_error",
            f"Charge {charge['id']} has already been refunded.",
            code="charge_already_refunded",
            param="charge",
        )
    amount = params.get("amount") if params.get("amount") is not UNSET else None
    if amount is None:
        amount = left
    if amount > left:
        untouched = charge["amount_refunded"] == 0
        limit = (
            f"charge amount ({display(charge['amount'], currency)})"
            if untouched
            else (f"unrefunded amount on charge ({display(left, currency)})")
        )
        raise amount_too_large(f"Refund amount ({display(amount, currency)}) is greater than {limit}")
    check_amount(amount, currency, charge=False)
    method = store.payment_method_notes[charge["payment_method"]].card
    delayed = method.delayed or method.refund == "pending"
    refund = refund_object(ctx, charge, amount, method_type=method.type, status="pending" if delayed else "succeeded",
                           metadata=merge_metadata({}, params.get("metadata")),
                           reason=params.get("reason") if params.get("reason") is not UNSET else None)
    refund_id = refund["id"]
    refund["balance_transaction"] = charges.balance_transaction(ctx, refund, -amount, "refund")
    store.refunds[refund_id] = refund
    charge["amount_refunded"] += amount
    charge["refunded"] = charges.unrefunded(store, charge) <= 0
    ctx.emit("refund.created", refund)
    ctx.emit("charge.refunded", charge)
    return refund


def refund_object(ctx: Context, charge: StripeObject, amount: int, *, method_type: str, status: str,
                  metadata: dict[str, Any], reason: str | None) -> StripeObject:
    """A new Refund of `charge`, as Stripe writes it (not yet stored)."""
    return {
        "id": ctx.store.new_id("re"),
        "object": "refund",
        "amount": amount,
        "balance_transaction": None,
        "charge": charge["id"],
        "created": ctx.store.now(),
        "currency": charge["currency"],
        "destination_details": _destination(method_type),
        "metadata": metadata,
        "payment_intent": charge["payment_intent"],
        "reason": reason,
        "receipt_number": None,
        "source_transfer_reversal": None,
        "status": status,
        "transfer_reversal": None,
    }


def _destination(method_type: str) -> dict[str, Any]:
    if method_type == "us_bank_account":
        return {"type": "us_bank_transfer", "us_bank_transfer": {"reference": None, "reference_status": "pending"}}
    return {
        "card": {"reference_status": "pending", "reference_type": "acquirer_reference_number", "type": "refund"},
        "type": "card",
    }


def settle(ctx: Context, refund: StripeObject, succeed: bool | None = None) -> StripeObject:
    """Finish a refund as Stripe does later: a pending one succeeds, a `refundFail` card's fails,
    unless `succeed` says otherwise. A release booked as a refund (see `payment_intents`) sends
    no money back and is never decided later."""
    store = ctx.store
    charge = store.charges[refund["charge"]]
    method = store.payment_method_notes[charge["payment_method"]].card
    if refund["id"] in store.release_refunds:
        raise ValueError(f"{refund['id']} books a release, not money sent back; nothing is left to settle")
    if refund["status"] == "pending":
        succeed = method.refund != "fails" if succeed is None else succeed
    elif refund["status"] == "succeeded" and method.refund == "fails" and not succeed:
        succeed = False
    else:
        raise ValueError(f"{refund['id']} is {refund['status']}; nothing is left to settle")
    if succeed:
        refund["status"] = "succeeded"
    else:
        refund.update(status="failed", failure_reason="expired_or_canceled_card" if method.type == "card" else "declined")
        refund["failure_balance_transaction"] = charges.balance_transaction(ctx, refund, refund["amount"], "refund_failure")
        charge["amount_refunded"] -= refund["amount"]
        charge["refunded"] = charges.unrefunded(store, charge) <= 0
        ctx.emit("refund.failed", refund)
    ctx.emit("refund.updated", refund)
    ctx.emit("charge.refund.updated", refund)
    return refund


def update(ctx: Context, refund: StripeObject, params: Mapping[str, Any]) -> StripeObject:
    if "metadata" in params:
        refund["metadata"] = merge_metadata(refund["metadata"], params["metadata"])
        ctx.emit("refund.updated", refund)
    return refund
