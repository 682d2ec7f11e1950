"""PaymentIntents: Stripe's state machine for one payment.

Statuses and transitions as Stripe: `requires_payment_method` -> (payment method attached)
`requires_confirmation` -> (confirm) `requires_action` (3-D Secure) | `requires_capture` (manual
capture) | `succeeded` (automatic capture; card payments skip `processing`) | back to
`requires_payment_method` with `last_payment_error` after a decline or failed authentication;
`canceled` from any status but `succeeded`. Capture takes at most `amount_capturable` and releases
the rest; `amount_received` is what was captured.

A bank debit (the `pm_usBankAccount_...` test accounts) confirms into `processing` with a `pending`
charge (`payment_intent.processing`, `charge.pending`); `settle` later makes it `succeeded`
(`charge.succeeded`, `payment_intent.succeeded`) or fails it back to `requires_payment_method`
(`charge.failed`, `payment_intent.payment_failed`), as Stripe does days later. ACH Direct Debit
supports USD and automatic capture only.

An intent that asks for partial authorization
(`payment_method_options[card][request_partial_authorization]=if_available`) paid with a card
whose issuer approves part of it (`pm_card_debit_partialAuthorization`) is authorized for that
part, with manual or automatic capture: its `amount` and `amount_capturable` (or
`amount_received`) become what was approved, and its charge says what was asked
(https://docs.stripe.com/payments/partial-authorization). Unasked, that card is declined.

From API version 2023-08-16 a PaymentIntent created without `payment_method_types` enables
`automatic_payment_methods` (redirects allowed), and confirming it then needs a `return_url`;
from 2024-04-10 the default `capture_method` is `automatic_async`. Both follow the request's
`Stripe-Version`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, NoReturn

from paywire_stripe.emulator import challenges, charges, payment_methods, refunds
from paywire_stripe.emulator.cards import AUTHENTICATION_REQUIRED, Decline
from paywire_stripe.emulator.currencies import (
    MINIMUMS,
    THREE_DECIMAL,
    WHOLE_UNITS_IN_TWO_DECIMALS,
    check_amount,
    check_currency,
)
from paywire_stripe.emulator.customers import merge_metadata
from paywire_stripe.emulator.errors import StripeError, amount_too_large, doc_url, invalid_request, unexpected_state
from paywire_stripe.emulator.params import UNSET, plain, shipping
from paywire_stripe.emulator.store import Challenge, Context, IntentNotes, StripeObject

__all__ = ["cancel", "capture", "complete_challenge", "confirm", "create", "expire", "settle", "update"]

CONFIRMABLE = ("requires_payment_method", "requires_confirmation", "requires_action")
_LABELS = {"payment_intent": "PaymentIntent", "setup_intent": "SetupIntent"}
CANCELABLE = ("requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing")
UPDATABLE_BEFORE_CONFIRM = frozenset(
    (
        "amount",
        "currency",
        "payment_method",
        "payment_method_data",
        "capture_method",
        "payment_method_types",
        "setup_future_usage",
        "customer",
        "application_fee_amount",
        "payment_method_configuration",
        "payment_method_options",
    )
)
RETURN_URL_REQUIRED = (
    "This PaymentIntent is configured to accept payment methods enabled in your Dashboard. Because some of these "
    "payment methods might redirect your customer off of your page, you must provide a `return_url`. If you don't "
    "want to accept redirect-based payment methods, set `automatic_payment_methods[enabled]` to `true` and "
    "`automatic_payment_methods[allow_redirects]` to `never` when creating Setup Intents and Payment Intents."
)
AUTHENTICATION_FAILED = (
    "The provided PaymentMethod has failed authentication. You can provide payment_method_data or a new "
    "PaymentMethod to attempt to fulfill this PaymentIntent again."
)
DYNAMIC_PAYMENT_METHODS_VERSION = "2023-08-16"
# Before 2025-03-31.basil a partial capture books the released remainder, and a cancellation the
# released authorization, as a Refund of the charge, listed with its refunds and counted in its
# `amount_refunded`; from basil neither (no Refund, no `charge.refunded`, `amount_refunded` and
# `refunded` untouched), as the version of the request that captures or cancels says (https://docs.stripe.com/changelog/basil/2025-03-31/remove-refund-from-partial-capture-and-payment-cancellation-flow).
RELEASE_WITHOUT_REFUND_VERSION = "2025-03-31"
AUTOMATIC_ASYNC_CAPTURE_VERSION = "2024-04-10"


def _value(params: Mapping[str, Any], name: str, default: Any = None) -> Any:
    return plain(params.get(name, default))


def automatic_payment_methods(ctx: Context, params: Mapping[str, Any]) -> dict[str, Any] | None:
    """The `automatic_payment_methods` an intent gets, following the request's API version."""
    given = _value(params, "automatic_payment_methods")
    if (
        given is None
        and params.get("payment_method_types") is None
        and ctx.api_version >= DYNAMIC_PAYMENT_METHODS_VERSION
    ):
        return {"allow_redirects": "always", "enabled": True}
    if given is None or not given.get("enabled"):
        return None
    if params.get("payment_method_types") is not None:
        raise invalid_request(
            "You may only specify one of these parameters: automatic_payment_methods, payment_method_types.",
            param="automatic_payment_methods",
            saved=False,
        )
    return {"allow_redirects": given.get("allow_redirects", "always"), "enabled": True}


def require_return_url(obj: StripeObject, notes: IntentNotes, given: str | None) -> None:
    methods = obj.get("automatic_payment_methods")
    if methods and methods.get("allow_redirects") != "never" and not (given or notes.return_url):
        raise invalid_request(RETURN_URL_REQUIRED, param="return_url", saved=False)


def _only_with_confirm(params: Mapping[str, Any]) -> None:
    for name in ("off_session", "return_url", "error_on_requires_action", "mandate", "mandate_data"):
        if params.get(name) not in (None, UNSET, False):
            raise invalid_request(
                f"The parameter `{name}` can only be used when `confirm=true`.", param=name, saved=False
            )


def _payment_method_from(ctx: Context, params: Mapping[str, Any]) -> StripeObject | None:
    reference = _value(params, "payment_method")
    data = _value(params, "payment_method_data")
    if reference and data:
        raise invalid_request(
            "You cannot provide both `payment_method` and `payment_method_data`.",
            param="payment_method_data",
            saved=False,
        )
    if data:
        return payment_methods.create(ctx, data, "payment_method_data")
    if reference:
        return payment_methods.resolve(ctx, reference)
    return None


def create(ctx: Context, params: Mapping[str, Any]) -> StripeObject:
    store = ctx.store
    currency = check_currency(params["currency"])
    amount = params["amount"]
    check_amount(amount, currency)
    methods = automatic_payment_methods(ctx, params)
    confirming = bool(params.get("confirm"))
    if not confirming:
        _only_with_confirm(params)
    customer = _value(params, "customer")
    if customer:
        customer = store.get("customer", customer, "customer")["id"]
    notes = IntentNotes(return_url=_value(params, "return_url"))
    intent_id = store.new_id("pi")
    default_capture = "automatic_async" if ctx.api_version >= AUTOMATIC_ASYNC_CAPTURE_VERSION else "automatic"
    intent: StripeObject = {
        "id": intent_id,
        "object": "payment_intent",
        "amount": amount,
        "amount_capturable": 0,
        "amount_details": {"tip": {}},
        "amount_received": 0,
        "application": None,
        "application_fee_amount": _value(params, "application_fee_amount"),
        "automatic_payment_methods": methods,
        "canceled_at": None,
        "cancellation_reason": None,
        "capture_method": _value(params, "capture_method") or default_capture,
        "client_secret": f"{intent_id}_secret_{store.new_id('s', 25)[2:]}",
        "confirmation_method": _value(params, "confirmation_method") or "automatic",
        "created": store.now(),
        "currency": currency,
        "customer": customer,
        "description": _value(params, "description"),
        "invoice": None,
        "last_payment_error": None,
        "latest_charge": None,
        "livemode": False,
        "metadata": merge_metadata({}, params.get("metadata")),
        "next_action": None,
        "on_behalf_of": _value(params, "on_behalf_of"),
        "payment_method": None,
        "payment_method_configuration_details": ({"id": "pmc_emulator_default", "parent": None} if methods else None),
        "payment_method_options": _payment_method_options(params),
        "payment_method_types": [t for t in plain(params.get("payment_method_types")) or ["card"] if t],
        "processing": None,
        "receipt_email": _value(params, "receipt_email"),
        "review": None,
        "setup_future_usage": _value(params, "setup_future_usage"),
        "shipping": shipping(params.get("shipping")),
        "source": None,
        "statement_descriptor": _value(params, "statement_descriptor"),
        "statement_descriptor_suffix": _value(params, "statement_descriptor_suffix"),
        "status": "requires_payment_method",
        "transfer_data": _value(params, "transfer_data"),
        "transfer_group": _value(params, "transfer_group"),
    }
    if confirming:
        require_return_url(intent, notes, None)
        if not (params.get("payment_method") or params.get("payment_method_data")):
            raise missing_payment_method(intent)
    pm = _payment_method_from(ctx, params)
    if pm is not None:
        intent["payment_method"] = pm["id"]
        intent["status"] = "requires_confirmation"
    store.payment_intents[intent_id] = intent
    store.intent_notes[intent_id] = notes
    ctx.emit("payment_intent.created", intent)
    if confirming:
        _attempt(
            ctx,
            intent,
            notes,
            off_session=_truthy(params.get("off_session")),
            error_on_requires_action=bool(params.get("error_on_requires_action")),
        )
    return intent


def _payment_method_options(params: Mapping[str, Any]) -> dict[str, Any]:
    options: dict[str, Any] = {
        "card": {"installments": None, "mandate_options": None, "network": None, "request_three_d_secure": "automatic"}
    }
    given = plain(params.get("payment_method_options"))
    if isinstance(given, dict):
        for method, values in given.items():
            if isinstance(values, dict):
                options.setdefault(method, {}).update(values)
    return options


def _truthy(value: Any) -> bool:
    return value not in (None, False, UNSET)


def _intent_state_error(intent: StripeObject, message: str) -> StripeError:
    """`unexpected_state` for either kind of intent: Stripe names the code and the embedded object after it."""
    kind = intent["object"]
    embedded: dict[str, Any] = {kind: intent}
    return unexpected_state(message, code=f"{kind}_unexpected_state", **embedded)


def missing_payment_method(intent: StripeObject) -> StripeError:
    """Confirming a PaymentIntent or a SetupIntent without a payment method: Stripe words both alike."""
    label = _LABELS[intent["object"]]
    return _intent_state_error(
        intent,
        f"You cannot confirm this {label} because it's missing a payment method. You can either update the "
        f"{label} with a payment method and then confirm it again, or confirm it again directly with a "
        "payment method.",
    )


def check_confirmable(ctx: Context, intent: StripeObject, params: Mapping[str, Any]) -> IntentNotes:
    """The checks confirming a PaymentIntent or a SetupIntent starts with, in Stripe's order; returns its notes."""
    store = ctx.store
    status = intent["status"]
    label = _LABELS[intent["object"]]
    if status == "succeeded":
        raise _intent_state_error(
            store.render(intent),
            f"You cannot confirm this {label} because it has already succeeded after being previously confirmed.",
        )
    if status not in CONFIRMABLE:
        raise _intent_state_error(
            store.render(intent),
            f"You cannot confirm this {label} because it has a status of {status}. Only a {label} with "
            f"one of the following statuses may be confirmed: {', '.join(CONFIRMABLE)}.",
        )
    client_secret = _value(params, "client_secret")
    if client_secret and client_secret != intent["client_secret"]:
        raise invalid_request(
            f"The client_secret provided does not match the client_secret associated with the {label}.",
            param="client_secret",
            saved=False,
        )
    notes = store.intent_notes[intent["id"]]
    require_return_url(intent, notes, _value(params, "return_url"))
    if not (intent["payment_method"] or params.get("payment_method") or params.get("payment_method_data")):
        raise missing_payment_method(store.render(intent))
    return notes


def update(ctx: Context, intent: StripeObject, params: Mapping[str, Any]) -> StripeObject:
    status = intent["status"]
    for name in sorted(UPDATABLE_BEFORE_CONFIRM & params.keys()):
        if status not in CONFIRMABLE:
            raise unexpected_state(
                f"This PaymentIntent's {name} could not be updated because it has a status of {status}. You may only "
                f"update the {name} of a PaymentIntent with one of the following statuses: "
                f"{', '.join(CONFIRMABLE)}.",
                param=name,
                payment_intent=ctx.store.render(intent),
            )
    currency = check_currency(params["currency"]) if _value(params, "currency") else intent["currency"]
    amount = _value(params, "amount") or intent["amount"]
    if "amount" in params or "currency" in params:
        check_amount(amount, currency)
        intent["amount"], intent["currency"] = amount, currency
    if _value(params, "customer"):
        intent["customer"] = ctx.store.get("customer", params["customer"], "customer")["id"]
    for name in (
        "application_fee_amount",
        "capture_method",
        "description",
        "receipt_email",
        "setup_future_usage",
        "shipping",
        "statement_descriptor",
        "statement_descriptor_suffix",
        "transfer_data",
        "transfer_group",
    ):
        if name in params:
            intent[name] = _value(params, name)
    if params.get("payment_method_types") is not None:
        intent["payment_method_types"] = [t for t in plain(params["payment_method_types"]) if t]
        intent["automatic_payment_methods"] = None
    if "payment_method_options" in params:
        intent["payment_method_options"] = _payment_method_options(params)
    if "metadata" in params:
        intent["metadata"] = merge_metadata(intent["metadata"], params["metadata"])
    pm = _payment_method_from(ctx, params)
    if pm is not None:
        intent["payment_method"] = pm["id"]
    if ("payment_method" in params or "payment_method_data" in params) and status in CONFIRMABLE:
        intent["status"] = "requires_confirmation" if intent["payment_method"] else "requires_payment_method"
        intent["next_action"] = None
    return intent


def confirm(ctx: Context, intent: StripeObject, params: Mapping[str, Any]) -> StripeObject:
    notes = check_confirmable(ctx, intent, params)
    pm = _payment_method_from(ctx, params)
    if pm is not None:
        intent["payment_method"] = pm["id"]
    for name in ("capture_method", "receipt_email", "setup_future_usage"):
        if name in params:
            intent[name] = _value(params, name)
    if "shipping" in params:
        intent["shipping"] = shipping(params["shipping"])
    if params.get("payment_method_types") is not None:
        intent["payment_method_types"] = [t for t in plain(params["payment_method_types"]) if t]
    if "payment_method_options" in params:
        intent["payment_method_options"] = _payment_method_options(params)
    if _value(params, "return_url"):
        notes.return_url = params["return_url"]
    authenticated, notes.authenticated = notes.authenticated and pm is None, False
    _attempt(
        ctx,
        intent,
        notes,
        off_session=_truthy(params.get("off_session")),
        error_on_requires_action=bool(params.get("error_on_requires_action")),
        authenticated=authenticated,
    )
    return intent


def _attempt(
    ctx: Context,
    intent: StripeObject,
    notes: IntentNotes,
    *,
    off_session: bool,
    error_on_requires_action: bool = False,
    authenticated: bool = False,
) -> None:
    """One payment attempt with the intent's PaymentMethod: succeed, decline, or ask for 3-D Secure."""
    store = ctx.store
    pm = store.payment_methods[intent["payment_method"]]
    payment_methods.check_usable(ctx, pm, intent["customer"])
    if pm["type"] not in intent["payment_method_types"] and not intent["automatic_payment_methods"]:
        raise invalid_request(
            f"The PaymentMethod provided ({pm['type']}) is not allowed for this PaymentIntent. Please attach a "
            f"PaymentMethod of one of the following types: {', '.join(intent['payment_method_types'])}.",
            param="payment_method",
        )
    notes.off_session = off_session
    pm_notes = store.payment_method_notes[pm["id"]]
    card = pm_notes.card
    if card.delayed:
        _process(ctx, intent, pm)
        return
    requested = intent["amount"] if _asks_partial_authorization(intent) else None
    needs_authentication = card.authentication == "always" or (
        card.authentication == "setup" and not (off_session and pm_notes.setup_authenticated)
    )
    if needs_authentication and not authenticated:
        if off_session or error_on_requires_action:
            _decline(ctx, intent, pm, AUTHENTICATION_REQUIRED, requested=requested)
        intent["status"] = "requires_action"
        intent["next_action"] = challenges.start(ctx, "payment_intent", intent, notes)
        intent["last_payment_error"] = None
        ctx.emit("payment_intent.requires_action", intent)
        return
    held = _partially_authorized(intent, card.partial) if requested is not None and card.partial else None
    if card.decline is not None and held is None:
        _decline(ctx, intent, pm, card.decline, requested=requested)
    if held is not None:
        intent["amount"] = held  # Stripe's intent (and charge) then show what the issuer approved
    _succeed(ctx, intent, pm, authenticated=authenticated, requested=requested)


def _asks_partial_authorization(intent: StripeObject) -> bool:
    """Whether the intent asked for partial authorization, without which Stripe makes none."""
    card = intent["payment_method_options"].get("card") or {}
    return bool(card.get("request_partial_authorization") == "if_available")


def _partially_authorized(intent: StripeObject, percent: int) -> int | None:
    """What a partially authorizing issuer approves: `percent` of the amount rounded down to an
    amount Stripe can charge, or None below Stripe's minimum charge (Stripe then declines)."""
    currency = intent["currency"]
    step = 100 if currency in WHOLE_UNITS_IN_TWO_DECIMALS else 10 if currency in THREE_DECIMAL else 1
    held = intent["amount"] * percent // 100 // step * step
    return held if held >= max(MINIMUMS.get(currency, 1), 1) else None


def _succeed(
    ctx: Context, intent: StripeObject, pm: StripeObject, *, authenticated: bool, requested: int | None = None
) -> None:
    store = ctx.store
    manual = intent["capture_method"] == "manual"
    charge = charges.new_charge(ctx, intent, pm, captured=not manual, authenticated=authenticated, requested=requested)
    intent.update(latest_charge=charge["id"], last_payment_error=None, next_action=None)
    if manual:
        intent.update(status="requires_capture", amount_capturable=intent["amount"])
    else:
        intent.update(status="succeeded", amount_received=intent["amount"])
    pm_notes = store.payment_method_notes[pm["id"]]
    if intent["setup_future_usage"]:
        if intent["customer"] and pm["customer"] is None:
            payment_methods.attach(ctx, pm["id"], intent["customer"], validate=False)
        pm_notes.setup_authenticated = True  # set up during an on-session payment
    elif pm["customer"] is None:
        pm_notes.consumed = True
    ctx.emit("charge.succeeded", charge)
    ctx.emit("payment_intent.amount_capturable_updated" if manual else "payment_intent.succeeded", intent)


def _process(ctx: Context, intent: StripeObject, pm: StripeObject) -> None:
    """A bank debit: accepted into `processing` with a pending charge; `settle` decides it later."""
    if intent["capture_method"] == "manual":
        raise invalid_request(
            f"The payment method type `{pm['type']}` does not support manual capture. Use capture_method=automatic.",
            param="capture_method",
        )
    if intent["currency"] != "usd":
        raise invalid_request(
            f"The currency provided ({intent['currency']}) is invalid. Payments with {pm['type']} support the "
            "following currencies: usd.",
            param="currency",
        )
    charge = charges.new_charge(ctx, intent, pm, captured=True, pending=True)
    intent.update(status="processing", latest_charge=charge["id"], last_payment_error=None, next_action=None)
    if pm["customer"] is None:
        ctx.store.payment_method_notes[pm["id"]].consumed = True
    ctx.emit("charge.pending", charge)
    ctx.emit("payment_intent.processing", intent)


def settle(ctx: Context, intent: StripeObject, succeed: bool | None = None) -> StripeObject:
    """Finish a `processing` intent as the bank did: its test account's outcome, or `succeed`'s."""
    store = ctx.store
    if intent["status"] != "processing":
        raise ValueError(f"{intent['id']} is {intent['status']}, not processing")
    charge = store.charges[intent["latest_charge"]]
    pm = store.payment_methods[charge["payment_method"]]
    account = store.payment_method_notes[pm["id"]].card
    if succeed is None and not account.settles:
        raise ValueError(f"{intent['id']} stays processing ({pm['id']} never settles); say how it ends")
    decline = account.decline or Decline("payment_failed", "generic_decline", "The payment failed.")
    if succeed if succeed is not None else account.decline is None:
        charge.update(status="succeeded", paid=True)
        charge["balance_transaction"] = charges.balance_transaction(ctx, charge, charge["amount"], "charge")
        intent.update(status="succeeded", amount_received=charge["amount_captured"])
        ctx.emit("charge.succeeded", charge)
        ctx.emit("payment_intent.succeeded", intent)
        return intent
    charge.update(status="failed", failure_code=decline.code, failure_message=decline.message,
                  outcome={**charge["outcome"], "network_status": "declined_by_network", "type": "issuer_declined"})
    intent.update(
        status="requires_payment_method",
        payment_method=None,
        last_payment_error={
            "charge": charge["id"],
            "code": decline.code,
            "decline_code": decline.decline_code,
            "doc_url": doc_url(decline.code),
            "message": decline.message,
            "payment_method": store.render(pm),
            "type": "card_error",
        },
    )
    ctx.emit("charge.failed", charge)
    ctx.emit("payment_intent.payment_failed", intent)
    return intent


def _decline(
    ctx: Context, intent: StripeObject, pm: StripeObject, decline: Decline, *, requested: int | None = None
) -> NoReturn:
    """Record a declined attempt and raise Stripe's 402 `card_error` with the intent embedded."""
    store = ctx.store
    charge = charges.new_charge(ctx, intent, pm, captured=False, decline=decline, requested=requested)
    error: dict[str, Any] = {
        "charge": charge["id"],
        "code": decline.code,
        "decline_code": decline.decline_code,
        "doc_url": doc_url(decline.code),
        "message": decline.message,
    }
    if decline.param:
        error["param"] = decline.param
    error.update(payment_method=store.render(pm), type="card_error")
    intent.update(
        status="requires_payment_method",
        payment_method=None,
        next_action=None,
        latest_charge=charge["id"],
        last_payment_error=error,
    )
    ctx.emit("charge.failed", charge)
    ctx.emit("payment_intent.payment_failed", intent)
    raise payment_methods.card_error(ctx, pm, decline, charge=charge["id"], payment_intent=store.render(intent))


def complete_challenge(ctx: Context, challenge: Challenge, succeeded: bool) -> StripeObject:
    """The buyer finished 3-D Secure: resume the payment, or fail it as Stripe does."""
    store = ctx.store
    intent = store.payment_intents[challenge.intent]
    notes = store.intent_notes[intent["id"]]
    if intent["status"] != "requires_action" or notes.challenge != challenge.id:
        return intent
    notes.challenge = None
    challenge.outcome = "succeeded" if succeeded else "failed"
    pm = store.payment_methods[intent["payment_method"]]
    if not succeeded:
        intent.update(
            status="requires_payment_method",
            payment_method=None,
            next_action=None,
            last_payment_error={
                "code": "payment_intent_authentication_failure",
                "doc_url": doc_url("payment_intent_authentication_failure"),
                "message": AUTHENTICATION_FAILED,
                "payment_method": store.render(pm),
                "type": "invalid_request_error",
            },
        )
        ctx.emit("payment_intent.payment_failed", intent)
        return intent
    if intent["confirmation_method"] == "manual":
        notes.authenticated = True
        intent.update(status="requires_confirmation", next_action=None)
        return intent
    try:
        _attempt(ctx, intent, notes, off_session=False, authenticated=True)
    except StripeError:
        pass  # a decline after authentication: recorded on the intent like any other
    return intent


def capture(ctx: Context, intent: StripeObject, params: Mapping[str, Any]) -> StripeObject:
    store = ctx.store
    if intent["status"] != "requires_capture":
        raise unexpected_state(
            f"This PaymentIntent could not be captured because it has a status of {intent['status']}. Only a "
            "PaymentIntent with one of the following statuses may be captured: requires_capture.",
            payment_intent=store.render(intent),
        )
    capturable = intent["amount_capturable"]
    amount = _value(params, "amount_to_capture") or capturable
    if amount > capturable:
        raise amount_too_large(
            "The payment could not be captured because the requested capture amount is greater than the amount you "
            "can capture for this charge.",
            param="amount_to_capture",
        )
    check_amount(amount, intent["currency"], "amount_to_capture", charge=False)
    charge = store.charges[intent["latest_charge"]]
    charge.update(captured=True, amount_captured=amount)
    charge["balance_transaction"] = charges.balance_transaction(ctx, charge, amount, "charge")
    if amount < charge["amount"] and ctx.api_version < RELEASE_WITHOUT_REFUND_VERSION:
        charge["amount_refunded"] = charge["amount"] - amount  # from basil the release is no refund
        store.booked_releases.add(charge["id"])
        _release_refund(ctx, charge, charge["amount"] - amount)
    for name in ("statement_descriptor", "statement_descriptor_suffix", "application_fee_amount"):
        if name in params:
            intent[name] = _value(params, name)
    if "metadata" in params:
        intent["metadata"] = merge_metadata(intent["metadata"], params["metadata"])
    intent.update(status="succeeded", amount_received=amount, amount_capturable=0)
    ctx.emit("charge.captured", charge)
    ctx.emit("payment_intent.succeeded", intent)
    return intent


def _release_refund(ctx: Context, charge: StripeObject, amount: int, reason: str | None = None) -> None:
    """The Refund Stripe creates (API versions before 2025-03-31.basil) for what a partial capture, a
    cancellation or an expiry released: succeeded at once, no metadata, no reason but an expiry's
    `expired_uncaptured_charge`; `charge.amount_refunded` counts it."""
    refund = refunds.refund_object(ctx, charge, amount, method_type="card", status="succeeded", metadata={},
                                   reason=reason)
    ctx.store.refunds[refund["id"]] = refund
    ctx.store.release_refunds.add(refund["id"])


def expire(ctx: Context, intent: StripeObject) -> StripeObject:
    """The card authorization of an uncaptured intent lapsed (7 days for most cards): Stripe releases
    it and cancels the intent itself, `cancellation_reason` `automatic`, with `charge.expired` (from
    2025-03-31.basil the reason is `expired`, and no Refund nor `charge.refunded` books the release)."""
    if intent["status"] != "requires_capture":
        raise ValueError(f"{intent['id']} is {intent['status']}; only an uncaptured authorization expires")
    charge = ctx.store.charges[intent["latest_charge"]]
    basil = ctx.api_version >= RELEASE_WITHOUT_REFUND_VERSION
    if not basil:
        charge.update(amount_refunded=charge["amount"], refunded=True)
        _release_refund(ctx, charge, charge["amount"], "expired_uncaptured_charge")
        ctx.emit("charge.refunded", charge)
    ctx.store.intent_notes[intent["id"]].challenge = None
    intent.update(status="canceled", canceled_at=ctx.store.now(), cancellation_reason="expired" if basil else "automatic",
                  amount_capturable=0, next_action=None)
    ctx.emit("charge.expired", charge)
    ctx.emit("payment_intent.canceled", intent)
    return intent


def cancel(ctx: Context, intent: StripeObject, params: Mapping[str, Any]) -> StripeObject:
    store = ctx.store
    status = intent["status"]
    if status not in CANCELABLE:
        raise unexpected_state(
            f"You cannot cancel this PaymentIntent because it has a status of {status}. Only a PaymentIntent with one "
            f"of the following statuses may be canceled: {', '.join(CANCELABLE)}.",
            payment_intent=store.render(intent),
        )
    if status == "requires_capture" and ctx.api_version < RELEASE_WITHOUT_REFUND_VERSION:
        # Releasing the authorization books a Refund of it; from basil nothing is refunded.
        charge = store.charges[intent["latest_charge"]]
        charge.update(amount_refunded=charge["amount"], refunded=True)
        _release_refund(ctx, charge, charge["amount"])
        ctx.emit("charge.refunded", charge)
    store.intent_notes[intent["id"]].challenge = None
    intent.update(
        status="canceled",
        canceled_at=store.now(),
        cancellation_reason=_value(params, "cancellation_reason"),
        amount_capturable=0,
        next_action=None,
    )
    ctx.emit("payment_intent.canceled", intent)
    return intent
