"""Customers: create (optionally attaching a PaymentMethod), update, delete.

Deleting keeps a `{"id", "object": "customer", "deleted": true}` stub that retrieve returns, as
Stripe does, and detaches the Customer's PaymentMethods.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paywire_stripe.emulator import payment_methods
from paywire_stripe.emulator.errors import invalid_request
from paywire_stripe.emulator.params import UNSET, address, plain
from paywire_stripe.emulator.store import Context, StripeObject

__all__ = ["create", "delete", "merge_metadata", "update"]

_PLAIN_FIELDS = (
    "address",
    "balance",
    "description",
    "email",
    "name",
    "phone",
    "preferred_locales",
    "shipping",
    "tax_exempt",
    "next_invoice_sequence",
)


def merge_metadata(current: dict[str, str], given: Any) -> dict[str, str]:
    """Stripe's metadata update: keys sent empty are removed, `metadata=` clears everything."""
    if given is UNSET:
        return {}
    merged = dict(current)
    for key, value in (given or {}).items():
        if value is UNSET:
            merged.pop(key, None)
        else:
            merged[key] = value
    return merged


def create(ctx: Context, params: Mapping[str, Any]) -> StripeObject:
    store = ctx.store
    customer_id = store.new_id("cus", 14)
    settings = params.get("invoice_settings") or {}
    customer: StripeObject = {
        "id": customer_id,
        "object": "customer",
        "address": None,
        "balance": 0,
        "created": store.now(),
        "currency": None,
        "default_source": None,
        "delinquent": False,
        "description": None,
        "discount": None,
        "email": None,
        "invoice_prefix": customer_id[4:12].upper(),
        "invoice_settings": {
            "custom_fields": None,
            "default_payment_method": None,
            "footer": None,
            "rendering_options": None,
        },
        "livemode": False,
        "metadata": merge_metadata({}, params.get("metadata")),
        "name": None,
        "next_invoice_sequence": 1,
        "phone": None,
        "preferred_locales": [],
        "shipping": None,
        "tax_exempt": "none",
        "test_clock": None,
    }
    _apply(customer, params)
    store.customers[customer_id] = customer
    ctx.emit("customer.created", customer)
    if params.get("payment_method") not in (None, UNSET):
        payment_methods.attach(ctx, params["payment_method"], customer_id)
    if settings.get("default_payment_method") not in (None, UNSET):
        _set_default(ctx, customer, settings["default_payment_method"])
    return customer


def _apply(customer: StripeObject, params: Mapping[str, Any]) -> None:
    for name in _PLAIN_FIELDS:
        if name in params:
            customer[name] = plain(params[name])
    if isinstance(customer["address"], dict):
        customer["address"] = address(customer["address"])
    if customer["tax_exempt"] is None:
        customer["tax_exempt"] = "none"


def _set_default(ctx: Context, customer: StripeObject, pm_id: str) -> None:
    pm = ctx.store.get("payment_method", pm_id, "invoice_settings[default_payment_method]", label="PaymentMethod")
    if pm["customer"] != customer["id"]:
        raise invalid_request(
            f"The customer does not have a payment method with the ID {pm_id}. The payment method must be attached "
            "to the customer.",
            param="invoice_settings[default_payment_method]",
        )
    customer["invoice_settings"]["default_payment_method"] = pm_id


def update(ctx: Context, customer: StripeObject, params: Mapping[str, Any]) -> StripeObject:
    _apply(customer, params)
    if "metadata" in params:
        customer["metadata"] = merge_metadata(customer["metadata"], params["metadata"])
    settings = params.get("invoice_settings")
    if isinstance(settings, dict) and "default_payment_method" in settings:
        if settings["default_payment_method"] is UNSET:
            customer["invoice_settings"]["default_payment_method"] = None
        else:
            _set_default(ctx, customer, settings["default_payment_method"])
    ctx.emit("customer.updated", customer)
    return customer


def delete(ctx: Context, customer: StripeObject) -> StripeObject:
    store = ctx.store
    for pm in store.payment_methods.values():
        if pm["customer"] == customer["id"]:
            pm["customer"] = None
            store.payment_method_notes[pm["id"]].consumed = True
    ctx.emit("customer.deleted", customer)
    stub: StripeObject = {"id": customer["id"], "object": "customer", "deleted": True}
    store.customers[customer["id"]] = stub
    return stub
