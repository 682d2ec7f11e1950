"""Response handlers: Stripe's objects as `CommandResult` fields.

Every PaymentIntent answer carries its latest charge (the commands expand it), so each result
reports the payment's state and exact running totals, not only what the operation did.

Stripe answers some requests before it knows their outcome: a PaymentIntent in `processing` after
confirm or capture (bank debits settle days later) and a Refund `pending` (or `requires_action`).
Those results are "accepted": the ledger keeps them in flight until `payment_intent.succeeded` /
`payment_intent.payment_failed` or `refund.updated` / `refund.failed` (or a `fetch`) settles them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paywire import BuyerAction, ProviderState, Response, Subject
from paywire_stripe.amounts import from_stripe, wire_amount
from paywire_stripe.builders import IDEMPOTENCY_KEY_FIELD, ORDER_FIELD
from paywire_stripe.states import charge_of, intent_state, intent_totals, settled_state, totals

__all__ = [
    "customer_result",
    "detached_result",
    "fetched_result",
    "found_intent_result",
    "intent_fields",
    "intent_result",
    "payment_method_result",
    "refund_result",
    "vaulted_result",
]


def _references(**ids: Any) -> dict[str, str]:
    """The ids among `ids` by name, each an expandable field, expanded or not (one loop: this
    reads every answer)."""
    found: dict[str, str] = {}
    for name, value in ids.items():
        if isinstance(value, dict):
            value = value.get("id")
        if isinstance(value, str) and value:
            found[name] = value
    return found


def _buyer_action(intent: Mapping[str, Any], subject: Subject) -> BuyerAction:
    """Stripe's redirect; or, for an intent confirmed without a `return_url` (`use_stripe_sdk`),
    the action Stripe.js's `handleNextAction` takes with the intent's client secret, which the
    action holds in memory only."""
    next_action = intent.get("next_action")
    next_action = next_action if isinstance(next_action, dict) else {}
    redirect = next_action.get("redirect_to_url")
    if isinstance(redirect, dict) and redirect.get("url"):
        return BuyerAction(str(redirect["url"]), redirect.get("return_url") or subject.return_url)
    secret = intent.get("client_secret")
    return BuyerAction("", subject.return_url, str(next_action.get("type") or "use_stripe_sdk"),
                       client_secret=secret if isinstance(secret, str) and secret else None)


def intent_fields(intent: Mapping[str, Any], subject: Subject) -> dict[str, Any]:
    """A PaymentIntent's id, references, state, totals and, when it waits for the buyer, the action."""
    figures = intent_totals(intent)
    state = intent_state(intent, figures)
    fields: dict[str, Any] = {
        "reference": intent["id"],
        "references": _references(payment=intent["id"], charge=intent.get("latest_charge"),
                                  customer=intent.get("customer"), payment_method=intent.get("payment_method")),
        "state": state,
        **figures.money(),
    }
    if state == ProviderState.ACTION_REQUIRED:
        fields["status"] = "action_required"
        fields["action"] = _buyer_action(intent, subject)
    elif state == ProviderState.PROCESSING:
        fields["status"] = "accepted"
    return fields


def _applied(intent: Mapping[str, Any]) -> int | None:
    """What the operation that produced `intent` applied (the authorization or the capture), or,
    while it is `processing`, what it will apply if Stripe settles it."""
    if intent["status"] == "requires_capture":
        return wire_amount(intent["amount_capturable"])
    if intent["status"] == "succeeded":
        return wire_amount(intent["amount_received"])
    if intent["status"] == "processing":
        charge = charge_of(intent)
        captured = wire_amount(charge.get("amount_captured") or 0) if charge is not None and charge.get("captured") else 0
        return captured or wire_amount(intent["amount"])
    return None


def intent_result(subject: Subject, response: Response) -> dict[str, Any]:
    """authorize, sale, complete, capture, void: the intent, and the amount authorized or captured."""
    intent = response.data
    fields = intent_fields(intent, subject)
    applied = _applied(intent)
    if applied is not None:
        fields["amount"] = from_stripe(applied, intent["currency"])
    return fields


def _read(intent: Mapping[str, Any], subject: Subject) -> dict[str, Any]:
    """What `fetch` reports of an intent: its state and totals, and what Stripe still lets be
    captured of it (`amount_capturable`: zero once captured, as one capture closes a PaymentIntent,
    and once canceled)."""
    return {**intent_fields(intent, subject),
            "capturable": from_stripe(wire_amount(intent.get("amount_capturable") or 0), str(intent["currency"]))}


def fetched_result(subject: Subject, response: Response) -> dict[str, Any]:
    """fetch by reference: the intent's state and totals."""
    return _read(response.data, subject)


def found_intent_result(subject: Subject, response: Response) -> dict[str, Any]:
    """fetch by idempotency key: the newest intent of a search or list created with the subject's
    key (and order), or `not_found`."""
    wanted = {IDEMPOTENCY_KEY_FIELD: subject.idempotency_key}
    if subject.order is not None:
        wanted[ORDER_FIELD] = subject.order.id
    found = [
        item for item in response.data.get("data") or ()
        if isinstance(item, dict) and all((item.get("metadata") or {}).get(k) == v for k, v in wanted.items())
    ]
    if not found:
        return {"state": ProviderState.NOT_FOUND}
    newest = max(found, key=lambda intent: intent.get("created") or 0)
    return {**_read(newest, subject), "raw": newest}


def refund_result(subject: Subject, response: Response) -> dict[str, Any]:
    """refund: the refund, the amount refunded, and the payment's totals from its charge; a refund
    Stripe has not finished (`pending`, `requires_action`) is accepted, without totals (Stripe's
    already count it)."""
    refund = response.data
    charge = refund.get("charge")
    fields: dict[str, Any] = {
        "reference": refund["id"],
        "references": _references(refund=refund["id"], payment=refund.get("payment_intent"), charge=charge),
        "amount": from_stripe(wire_amount(refund["amount"]), refund["currency"]),
    }
    if refund.get("status") in ("pending", "requires_action"):
        fields["status"] = "accepted"
    elif isinstance(charge, dict):
        figures = totals(charge)
        fields.update(state=settled_state(figures), **figures.money())
    return fields


def customer_result(subject: Subject, response: Response) -> dict[str, Any]:
    customer = response.data
    return {"reference": customer["id"], "references": {"customer": customer["id"]}}


def payment_method_result(subject: Subject, response: Response) -> dict[str, Any]:
    """A PaymentMethod: its id, and the Customer it is attached to (none once detached)."""
    method = response.data
    return {"reference": method["id"],
            "references": _references(customer=method.get("customer"), payment_method=method["id"])}


def vaulted_result(subject: Subject, response: Response) -> dict[str, Any]:
    """vault: the attached PaymentMethod is the reusable token."""
    return {**payment_method_result(subject, response), "token": response.data["id"]}


def detached_result(subject: Subject, response: Response) -> dict[str, Any]:
    return {"reference": response.data["id"]}
