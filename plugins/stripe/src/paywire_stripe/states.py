"""A PaymentIntent and its latest charge, read as paywire's state and running totals.

The charge holds the exact amounts: `amount` is what was asked for, and what was authorized (when
the charge succeeded) unless its card's `amount_authorized` says less (a partial authorization,
which Stripe makes only when asked to: then an uncaptured intent's `amount_capturable` is what it
holds); `amount_captured` is what was captured, and `amount_refunded` what was refunded (pending
refunds included) *plus* what a partial capture released, which Stripe books as refunded. paywire's
refunded total leaves the release out. A charge still `pending` (a bank debit in `processing`) is
marked captured by Stripe but holds no money yet, so it counts for nothing until it succeeds.
A capture above `amount` (an overcapture) releases nothing; an intent still `requires_capture`
after a multicapture's non-final capture holds its `amount_capturable` plus what was captured.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NamedTuple

from paywire import Money, ProviderState
from paywire_stripe.amounts import from_stripe, wire_amount

__all__ = ["Totals", "charge_authorized", "charge_of", "intent_state", "intent_totals", "settled_state", "totals"]


class Totals(NamedTuple):
    """Running totals of one payment, in Stripe's units of its currency."""

    currency: str
    authorized: int
    captured: int
    refunded: int

    def money(self) -> dict[str, Money]:
        currency = self.currency
        return {"authorized": from_stripe(self.authorized, currency), "captured": from_stripe(self.captured, currency),
                "refunded": from_stripe(self.refunded, currency)}


def charge_of(intent: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The expanded latest charge of an intent, if the answer carries it."""
    charge = intent.get("latest_charge")
    return charge if isinstance(charge, dict) else None


def charge_authorized(charge: Mapping[str, Any]) -> int:
    """What the charge's card authorization holds: its `amount_authorized`, where the answer
    carries one, else the charge's amount."""
    # `type(...) is dict` first: decoded JSON is dicts, and isinstance against the Mapping ABC
    # costs a Python-level __instancecheck__.
    details = charge.get("payment_method_details")
    card = details.get("card") if type(details) is dict or isinstance(details, Mapping) else None
    held = card.get("amount_authorized") if type(card) is dict or isinstance(card, Mapping) else None
    return wire_amount(held) if held is not None else wire_amount(charge["amount"])


def totals(charge: Mapping[str, Any]) -> Totals:
    """The totals a charge records."""
    amount = wire_amount(charge["amount"])
    succeeded = charge.get("status") == "succeeded"
    captured = wire_amount(charge.get("amount_captured") or 0) if succeeded and charge.get("captured") else 0
    # An overcapture (https://docs.stripe.com/payments/overcapture) or a tip captures more than
    # `amount`: the authorization covered all of it, nothing was released, and nothing of
    # `amount_refunded` stands for a release.
    authorized = max(charge_authorized(charge), captured) if succeeded else 0
    released = max(0, amount - captured) if captured else 0
    refunded = max(0, wire_amount(charge.get("amount_refunded") or 0) - released) if captured else 0
    return Totals(str(charge["currency"]), authorized, captured, refunded)


def _from_intent(intent: Mapping[str, Any]) -> Totals:
    """Totals from the intent alone (no expanded charge): what its own fields say for sure."""
    status = intent["status"]
    authorized = wire_amount(intent["amount"]) if status in ("requires_capture", "succeeded") else 0
    return Totals(str(intent["currency"]), authorized, wire_amount(intent.get("amount_received") or 0), 0)


def intent_totals(intent: Mapping[str, Any]) -> Totals:
    charge = charge_of(intent)
    figures = totals(charge) if charge is not None else _from_intent(intent)
    if intent.get("status") == "requires_capture":
        # What Stripe holds, whatever was asked: what is still capturable plus what was captured,
        # which is nothing but after a multicapture's non-final capture
        # (https://docs.stripe.com/payments/multicapture); that released nothing yet, so all of
        # the charge's `amount_refunded` is refunds.
        refunded = figures.refunded
        if charge is not None and figures.captured:
            refunded = min(figures.captured, wire_amount(charge.get("amount_refunded") or 0))
        figures = Totals(figures.currency, wire_amount(intent.get("amount_capturable")) + figures.captured,
                         figures.captured, refunded)
    return figures


def settled_state(figures: Totals) -> str:
    """The state of a payment whose authorization is settled, from its totals."""
    if figures.captured == 0:
        return ProviderState.AUTHORIZED
    if figures.refunded == 0:
        return ProviderState.CAPTURED  # one capture closes a PaymentIntent
    return ProviderState.REFUNDED if figures.refunded >= figures.captured else ProviderState.PARTIALLY_REFUNDED


def intent_state(intent: Mapping[str, Any], figures: Totals) -> str:
    """paywire's `ProviderState` of a PaymentIntent."""
    status = intent["status"]
    if status == "requires_action":
        return ProviderState.ACTION_REQUIRED
    if status == "processing":  # confirmed or captured; Stripe settles it later (bank debits)
        return ProviderState.PROCESSING
    if status == "requires_confirmation":
        return ProviderState.PENDING
    if status == "requires_payment_method":  # after a decline or failed authentication, or not confirmed yet
        return ProviderState.FAILED if intent.get("last_payment_error") else ProviderState.PENDING
    if status == "canceled":
        return ProviderState.VOIDED if figures.authorized else ProviderState.FAILED
    if status == "requires_capture":
        return ProviderState.AUTHORIZED
    return settled_state(figures)
