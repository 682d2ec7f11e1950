"""PaymentMethods: test cards turned into `pm_...` objects, attach, detach, and Stripe's reuse rules.

Stripe's rules kept here: a test id (`pm_card_visa`) or token (`tok_visa`) yields a new PaymentMethod
each time it is used; a PaymentMethod not attached to a Customer can pay once, after which (or
after a detach) it "may not be used again"; one attached to a Customer can only be used with that
Customer; attaching validates the card, so a declining test card cannot be attached (except
`chargeCustomerFail`, which attaches and then declines charges).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paywire_stripe.emulator.cards import Decline, TestCard, card_for
from paywire_stripe.emulator.errors import StripeError, invalid_request, missing_param, no_such
from paywire_stripe.emulator.params import UNSET
from paywire_stripe.emulator.store import Context, PaymentMethodNotes, StripeObject

__all__ = [
    "attach",
    "card_error",
    "check_usable",
    "create",
    "detach",
    "new_payment_method",
    "resolve",
]

_EMPTY_ADDRESS = {"city": None, "country": None, "line1": None, "line2": None, "postal_code": None, "state": None}
_REUSED = (
    "The provided PaymentMethod was previously used with a PaymentIntent without Customer attachment, shared with "
    "a connected account without Customer attachment, or was detached from a Customer. It may not be used again. "
    "To use a PaymentMethod multiple times, you must attach it to a Customer first."
)


def billing_details(given: Mapping[str, Any] | None) -> dict[str, Any]:
    given = {k: (None if v is UNSET else v) for k, v in (given or {}).items()}
    address = {**_EMPTY_ADDRESS, **{k: (None if v is UNSET else v) for k, v in (given.get("address") or {}).items()}}
    return {"address": address, "email": given.get("email"), "name": given.get("name"), "phone": given.get("phone")}


def new_payment_method(
    ctx: Context,
    card: TestCard,
    details: Mapping[str, Any] | None = None,
    metadata: Mapping[str, Any] | None = None,
    allow_redisplay: str | None = None,
) -> StripeObject:
    """Store a fresh card PaymentMethod for `card` (or a bank account one for a test bank account)."""
    store = ctx.store
    pm_id = store.new_id("pm")
    if card.type == "us_bank_account":
        store.payment_methods[pm_id] = _bank_account(ctx, pm_id, card, details, metadata, allow_redisplay)
        store.payment_method_notes[pm_id] = PaymentMethodNotes(card)
        return store.payment_methods[pm_id]
    expiry_year = 2034
    store.payment_methods[pm_id] = {
        "id": pm_id,
        "object": "payment_method",
        "allow_redisplay": allow_redisplay or "unspecified",
        "billing_details": billing_details(details),
        "card": {
            "brand": card.brand,
            "checks": {"address_line1_check": None, "address_postal_code_check": None, "cvc_check": "pass"},
            "country": card.country,
            "display_brand": card.brand,
            "exp_month": 12,
            "exp_year": expiry_year,
            "fingerprint": card.fingerprint,
            "funding": card.funding,
            "generated_from": None,
            "last4": card.last4,
            "networks": {"available": [card.brand], "preferred": None},
            "three_d_secure_usage": {"supported": True},
            "wallet": None,
        },
        "created": store.now(),
        "customer": None,
        "livemode": False,
        "metadata": {k: v for k, v in (metadata or {}).items() if v is not UNSET},
        "type": "card",
    }
    store.payment_method_notes[pm_id] = PaymentMethodNotes(card)
    return store.payment_methods[pm_id]


def _bank_account(
    ctx: Context,
    pm_id: str,
    account: TestCard,
    details: Mapping[str, Any] | None,
    metadata: Mapping[str, Any] | None,
    allow_redisplay: str | None,
) -> StripeObject:
    """A verified `us_bank_account` PaymentMethod, as Stripe's test tokens give."""
    return {
        "id": pm_id,
        "object": "payment_method",
        "allow_redisplay": allow_redisplay or "unspecified",
        "billing_details": billing_details(details or {"name": "Jenny Rosen"}),
        "created": ctx.store.now(),
        "customer": None,
        "livemode": False,
        "metadata": {k: v for k, v in (metadata or {}).items() if v is not UNSET},
        "type": "us_bank_account",
        "us_bank_account": {
            "account_holder_type": "individual",
            "account_type": account.funding,
            "bank_name": account.brand,
            "financial_connections_account": None,
            "fingerprint": account.fingerprint,
            "last4": account.last4,
            "networks": {"preferred": "ach", "supported": ["ach"]},
            "routing_number": "110000000",
            "status_details": {},
        },
    }


def create(ctx: Context, params: Mapping[str, Any], param: str = "") -> StripeObject:
    """A card PaymentMethod from `type=card` and `card[token]=tok_...` (POST /v1/payment_methods,
    or `payment_method_data` on an intent, then `param` prefixes the names in errors)."""
    prefix = f"{param}[" if param else ""
    suffix = "]" if param else ""
    if params.get("payment_method"):  # Connect cloning: the emulator has no connected accounts
        raise invalid_request(
            "Cloning PaymentMethods to connected accounts is not available in the emulator.", param="payment_method"
        )
    if params.get("type") != "card":
        raise invalid_request(
            f"Invalid {prefix}type{suffix}: the emulator offers card PaymentMethods only (type=card).",
            param=f"{prefix}type{suffix}",
            saved=False,
        )
    card_params = params.get("card")
    if not isinstance(card_params, dict) or not card_params:
        raise missing_param(f"{prefix}card{suffix}")
    if "number" in card_params:
        raise invalid_request(
            "Sending credit card numbers directly to the Stripe API is generally unsafe. We suggest you use test "
            "tokens that map to the test card you are using, see https://stripe.com/docs/testing.",
            param=f"{prefix}card[number]{suffix}",
            saved=False,
        )
    token = card_params.get("token")
    if not isinstance(token, str) or not token:
        raise missing_param(f"{prefix}card[token]{suffix}")
    card = card_for(token)
    if card is None or card.delayed:
        raise no_such("token", token, f"{prefix}card[token]{suffix}")
    pm = new_payment_method(
        ctx, card, params.get("billing_details"), params.get("metadata"), params.get("allow_redisplay")
    )
    customer = params.get("customer")
    if isinstance(customer, str) and customer:
        attach(ctx, pm["id"], customer)
    return pm


def resolve(ctx: Context, reference: str, param: str = "payment_method") -> StripeObject:
    """The PaymentMethod `reference` names: a stored `pm_...`, or a new one for a test id/token."""
    card = card_for(reference)
    if card is not None:
        return new_payment_method(ctx, card)
    found = ctx.store.payment_methods.get(reference)
    if found is None:
        raise no_such("PaymentMethod", reference, param)
    return found


def card_error(ctx: Context, pm: StripeObject, decline: Decline, *, status: int = 402, **extra: Any) -> StripeError:
    """The 402 `card_error` of a decline, with the PaymentMethod embedded as Stripe does."""
    error = StripeError(
        status,
        "card_error",
        decline.message,
        code=decline.code,
        param=decline.param,
        should_retry=False,
        decline_code=decline.decline_code,
        **extra,
    )
    error.extra["payment_method"] = ctx.store.render(pm)
    return error


def check_usable(ctx: Context, pm: StripeObject, customer: str | None, param: str = "payment_method") -> None:
    """Stripe's reuse rules for paying with `pm` on behalf of `customer`."""
    notes = ctx.store.payment_method_notes[pm["id"]]
    owner = pm.get("customer")
    if owner is None and notes.consumed:
        raise invalid_request(_REUSED, param=param)
    if owner is not None and customer is None:
        raise invalid_request(
            f"The provided PaymentMethod {pm['id']} belongs to a Customer, but you did not provide that Customer. "
            "Pass the Customer's ID in the `customer` parameter to use it.",
            param=param,
        )
    if owner is not None and owner != customer:
        raise invalid_request(
            f"The provided PaymentMethod {pm['id']} belongs to a different Customer ({owner}) than the one provided "
            f"({customer}).",
            param=param,
        )


def attach(ctx: Context, pm_id: str, customer_id: str, *, validate: bool = True) -> StripeObject:
    """Attach (card validated as Stripe does) and emit `payment_method.attached`; idempotent per customer."""
    store = ctx.store
    customer = store.get("customer", customer_id, "customer")
    pm = resolve(ctx, pm_id, "payment_method")
    notes = store.payment_method_notes[pm["id"]]
    if pm["customer"] == customer["id"]:
        return pm
    if pm["customer"] is not None:
        raise invalid_request(
            "The payment method you provided has already been attached to a customer.", param="payment_method"
        )
    if notes.consumed:
        raise invalid_request(
            "This PaymentMethod was previously used without being attached to a Customer or was detached from a "
            "Customer, and may not be used again.",
            param="payment_method",
        )
    card = notes.card
    if validate and card.decline is not None and card.declines_setup:
        raise card_error(ctx, pm, card.decline)
    pm["customer"] = customer["id"]
    ctx.emit("payment_method.attached", pm)
    return pm


def detach(ctx: Context, pm_id: str) -> StripeObject:
    store = ctx.store
    pm = store.get("payment_method", pm_id, "payment_method", label="PaymentMethod")
    if pm["customer"] is None:
        raise invalid_request(
            "The payment method you provided is not attached to a customer so detachment is impossible.",
            param="payment_method",
        )
    customer = store.customers.get(pm["customer"])
    if customer is not None and customer["invoice_settings"]["default_payment_method"] == pm["id"]:
        customer["invoice_settings"]["default_payment_method"] = None
    pm["customer"] = None
    store.payment_method_notes[pm["id"]].consumed = True
    ctx.emit("payment_method.detached", pm)
    return pm
