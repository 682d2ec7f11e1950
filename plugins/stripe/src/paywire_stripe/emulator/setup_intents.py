"""SetupIntents: saving a card for later (off-session) payments.

Confirming validates the card: declining test cards fail with 402 `card_error` (the SetupIntent
back to `requires_payment_method` with `last_setup_error`); cards that need authentication ask
for 3-D Secure (`requires_action`); on success the PaymentMethod is attached to the Customer and
counts as set up, so a later off-session payment with `authenticationRequiredOnSetup` succeeds.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from paywire_stripe.emulator import challenges, payment_methods
from paywire_stripe.emulator.customers import merge_metadata
from paywire_stripe.emulator.errors import StripeError, doc_url, invalid_request, unexpected_state
from paywire_stripe.emulator.params import plain
from paywire_stripe.emulator.payment_intents import (
    automatic_payment_methods,
    check_confirmable,
    missing_payment_method,
    require_return_url,
)
from paywire_stripe.emulator.store import Challenge, Context, IntentNotes, StripeObject

__all__ = ["cancel", "complete_challenge", "confirm", "create", "update"]

CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
STATE = "setup_intent_unexpected_state"


def _value(params: Mapping[str, Any], name: str) -> Any:
    return plain(params.get(name))


def _payment_method_from(ctx: Context, params: Mapping[str, Any]) -> StripeObject | None:
    data = _value(params, "payment_method_data")
    if data and _value(params, "payment_method"):
        raise invalid_request(
            "You cannot provide both `payment_method` and `payment_method_data`.",
            param="payment_method_data",
            saved=False,
        )
    if data:
        return payment_methods.create(ctx, data, "payment_method_data")
    if _value(params, "payment_method"):
        return payment_methods.resolve(ctx, params["payment_method"])
    return None


def create(ctx: Context, params: Mapping[str, Any]) -> StripeObject:
    store = ctx.store
    methods = automatic_payment_methods(ctx, params)
    customer = _value(params, "customer")
    if customer:
        customer = store.get("customer", customer, "customer")["id"]
    intent_id = store.new_id("seti")
    notes = IntentNotes(return_url=_value(params, "return_url"))
    intent: StripeObject = {
        "id": intent_id,
        "object": "setup_intent",
        "application": None,
        "automatic_payment_methods": methods,
        "cancellation_reason": None,
        "client_secret": f"{intent_id}_secret_{store.new_id('s', 32)[2:]}",
        "created": store.now(),
        "customer": customer,
        "description": _value(params, "description"),
        "flow_directions": _value(params, "flow_directions"),
        "last_setup_error": None,
        "latest_attempt": None,
        "livemode": False,
        "mandate": None,
        "metadata": merge_metadata({}, params.get("metadata")),
        "next_action": None,
        "on_behalf_of": _value(params, "on_behalf_of"),
        "payment_method": None,
        "payment_method_configuration_details": ({"id": "pmc_emulator_default", "parent": None} if methods else None),
        "payment_method_options": {
            "card": {"mandate_options": None, "network": None, "request_three_d_secure": "automatic"}
        },
        "payment_method_types": [t for t in plain(params.get("payment_method_types")) or ["card"] if t],
        "single_use_mandate": None,
        "status": "requires_payment_method",
        "usage": params.get("usage") or "off_session",
    }
    confirming = bool(params.get("confirm"))
    if confirming:
        require_return_url(intent, notes, None)
        if not (params.get("payment_method") or params.get("payment_method_data")):
            raise missing_payment_method(intent)
    elif _value(params, "return_url"):
        raise invalid_request(
            "The parameter `return_url` can only be used when `confirm=true`.", param="return_url", saved=False
        )
    pm = _payment_method_from(ctx, params)
    if pm is not None:
        intent.update(payment_method=pm["id"], status="requires_confirmation")
    store.setup_intents[intent_id] = intent
    store.intent_notes[intent_id] = notes
    ctx.emit("setup_intent.created", intent)
    if confirming:
        _attempt(ctx, intent, notes)
    return intent


def update(ctx: Context, intent: StripeObject, params: Mapping[str, Any]) -> StripeObject:
    if intent["status"] in ("succeeded", "canceled") and params.keys() - {"metadata", "description", "expand"}:
        raise unexpected_state(
            f"You cannot update this SetupIntent because it has a status of {intent['status']}.",
            code=STATE,
            setup_intent=ctx.store.render(intent),
        )
    if _value(params, "customer"):
        intent["customer"] = ctx.store.get("customer", params["customer"], "customer")["id"]
    if "description" in params:
        intent["description"] = _value(params, "description")
    if "metadata" in params:
        intent["metadata"] = merge_metadata(intent["metadata"], params["metadata"])
    if params.get("payment_method_types") is not None:
        intent.update(
            payment_method_types=[t for t in plain(params["payment_method_types"]) if t], automatic_payment_methods=None
        )
    pm = _payment_method_from(ctx, params)
    if pm is not None:
        intent.update(payment_method=pm["id"], status="requires_confirmation", next_action=None)
    return intent


def confirm(ctx: Context, intent: StripeObject, params: Mapping[str, Any]) -> StripeObject:
    notes = check_confirmable(ctx, intent, params)
    pm = _payment_method_from(ctx, params)
    if pm is not None:
        intent["payment_method"] = pm["id"]
    if _value(params, "return_url"):
        notes.return_url = params["return_url"]
    _attempt(ctx, intent, notes)
    return intent


def _attempt(ctx: Context, intent: StripeObject, notes: IntentNotes, *, authenticated: bool = False) -> None:
    store = ctx.store
    pm = store.payment_methods[intent["payment_method"]]
    payment_methods.check_usable(ctx, pm, intent["customer"])
    card = store.payment_method_notes[pm["id"]].card
    intent["latest_attempt"] = store.new_id("setatt")
    if card.authentication is not None and not authenticated:
        intent.update(
            status="requires_action",
            next_action=challenges.start(ctx, "setup_intent", intent, notes),
            last_setup_error=None,
        )
        ctx.emit("setup_intent.requires_action", intent)
        return
    if card.decline is not None and card.declines_setup:
        _fail(ctx, intent, pm)
    intent.update(status="succeeded", next_action=None, last_setup_error=None)
    if intent["customer"] and pm["customer"] is None:
        payment_methods.attach(ctx, pm["id"], intent["customer"], validate=False)
    store.payment_method_notes[pm["id"]].setup_authenticated = True
    ctx.emit("setup_intent.succeeded", intent)


def _fail(ctx: Context, intent: StripeObject, pm: StripeObject) -> NoReturn:
    store = ctx.store
    decline = store.payment_method_notes[pm["id"]].card.decline
    assert decline is not None
    intent.update(
        status="requires_payment_method",
        payment_method=None,
        next_action=None,
        last_setup_error={
            "code": decline.code,
            "decline_code": decline.decline_code,
            "doc_url": doc_url(decline.code),
            "message": decline.message,
            "payment_method": store.render(pm),
            "type": "card_error",
        },
    )
    ctx.emit("setup_intent.setup_failed", intent)
    raise payment_methods.card_error(ctx, pm, decline, setup_intent=store.render(intent))


def complete_challenge(ctx: Context, challenge: Challenge, succeeded: bool) -> StripeObject:
    store = ctx.store
    intent = store.setup_intents[challenge.intent]
    notes = store.intent_notes[intent["id"]]
    if intent["status"] != "requires_action" or notes.challenge != challenge.id:
        return intent
    notes.challenge = None
    challenge.outcome = "succeeded" if succeeded else "failed"
    if succeeded:
        try:
            _attempt(ctx, intent, notes, authenticated=True)
        except StripeError:
            pass  # a decline after authentication: recorded on the intent
        return intent
    pm = store.payment_methods[intent["payment_method"]]
    intent.update(
        status="requires_payment_method",
        payment_method=None,
        next_action=None,
        last_setup_error={
            "code": "setup_intent_authentication_failure",
            "doc_url": doc_url("setup_intent_authentication_failure"),
            "message": "The latest attempt to set up the payment method has failed because authentication failed.",
            "payment_method": store.render(pm),
            "type": "invalid_request_error",
        },
    )
    ctx.emit("setup_intent.setup_failed", intent)
    return intent


def cancel(ctx: Context, intent: StripeObject, params: Mapping[str, Any]) -> StripeObject:
    if intent["status"] not in CONFIRMABLE:
        raise unexpected_state(
            f"You can only cancel a SetupIntent when its status is one of {', '.join(CONFIRMABLE)}; this one has a "
            f"status of {intent['status']}.",
            code=STATE,
            setup_intent=ctx.store.render(intent),
        )
    ctx.store.intent_notes[intent["id"]].challenge = None
    intent.update(status="canceled", cancellation_reason=_value(params, "cancellation_reason"), next_action=None)
    ctx.emit("setup_intent.canceled", intent)
    return intent
