"""Disputes: a cardholder contesting a captured charge with their bank, which the shop does not start.

`open_dispute` makes Stripe's Dispute of a charge: a chargeback (`needs_response`) withdraws the
disputed amount from the balance at once (`charge.dispute.created`, then
`charge.dispute.funds_withdrawn`) and makes the charge refundable no more (`is_charge_refundable`
false: a refund is refused with `charge_disputed`); an inquiry (`warning_needs_response`) withdraws
nothing and leaves the charge refundable. `close_dispute` decides it: a chargeback won gives the
funds back (`charge.dispute.funds_reinstated`), lost keeps them withdrawn; either way
`charge.dispute.closed`. A dispute touches neither the charge's `amount_captured` nor its
`amount_refunded`, only its `disputed` flag (https://docs.stripe.com/disputes/how-disputes-work).
"""

from __future__ import annotations

from paywire_stripe.emulator import charges
from paywire_stripe.emulator.errors import StripeError
from paywire_stripe.emulator.store import Context, StripeObject

__all__ = ["close", "open_dispute", "refusal"]

_OPEN = ("needs_response", "under_review", "warning_needs_response", "warning_under_review")


def open_dispute(ctx: Context, charge: StripeObject, amount: int | None, inquiry: bool, reason: str) -> StripeObject:
    """A new dispute of `amount` (default: what the charge has not refunded) of a captured charge."""
    if charge["status"] != "succeeded" or not charge["captured"]:
        raise ValueError(f"{charge['id']} holds no captured money to dispute")
    disputed = charges.unrefunded(ctx.store, charge) if amount is None else amount
    if not 0 < disputed <= charge["amount_captured"]:
        raise ValueError(f"{charge['id']} cannot be disputed for {disputed}")
    dispute: StripeObject = {
        "id": ctx.store.new_id("dp"),
        "object": "dispute",
        "amount": disputed,
        "balance_transactions": [],
        "charge": charge["id"],
        "created": ctx.store.now(),
        "currency": charge["currency"],
        "evidence_details": {"due_by": ctx.store.now() + 7 * 86400, "has_evidence": False, "past_due": False,
                             "submission_count": 0},
        "is_charge_refundable": inquiry,
        "livemode": False,
        "metadata": {},
        "payment_intent": charge["payment_intent"],
        "reason": reason,
        "status": "warning_needs_response" if inquiry else "needs_response",
    }
    ctx.store.disputes[dispute["id"]] = dispute
    charge["disputed"] = True
    ctx.emit("charge.dispute.created", dispute)
    if not inquiry:
        dispute["balance_transactions"].append(charges.balance_transaction(ctx, dispute, -disputed, "adjustment"))
        ctx.emit("charge.dispute.funds_withdrawn", dispute)
    return dispute


def close(ctx: Context, dispute: StripeObject, won: bool) -> StripeObject:
    """Decide an open dispute: an inquiry closes (`warning_closed`), a chargeback is won or lost."""
    if dispute["status"] not in _OPEN:
        raise ValueError(f"{dispute['id']} is {dispute['status']}; it was decided already")
    if dispute["status"].startswith("warning_"):
        dispute["status"] = "warning_closed"
    elif won:
        dispute["status"] = "won"
        dispute["balance_transactions"].append(
            charges.balance_transaction(ctx, dispute, dispute["amount"], "adjustment"))
        ctx.emit("charge.dispute.funds_reinstated", dispute)
    else:
        dispute["status"] = "lost"
    ctx.emit("charge.dispute.closed", dispute)
    return dispute


def refusal(ctx: Context, charge: StripeObject) -> StripeError | None:
    """Stripe's refusal of a refund of a charge a chargeback made unrefundable, if one did."""
    if any(d["charge"] == charge["id"] and not d["is_charge_refundable"] for d in ctx.store.disputes.values()):
        return StripeError(400, "invalid_request_error",
                           f"Charge {charge['id']} has been charged back; cannot issue a refund.",
                           code="charge_disputed", param="charge")
    return None
