"""Orders v2: the order an authorize or sale creates, and what its answers mean.

`source` picks how the buyer pays:

- "paypal" (or none): the buyer approves on PayPal. With a `return_url` the order names
  `payment_source.paypal` and its experience context (PayPal's payer-action link, back to the
  shop afterwards); without one it is created for PayPal's JavaScript buttons (the approve link).
  The answer is `action_required`; `complete` authorizes or captures once the buyer approved.
- anything else: a Vault v3 payment token (`payment_source.<kind>.vault_id`, the kind read from
  the token, see `charge.py`). PayPal pays such an order when it is created, without the buyer:
  the answer is the authorization or capture itself, and a PayPal-Request-Id is required.

The order's own id (`custom_id`) is the shop's order id; its items are sent when they add up to
the amount, with the item total as the breakdown (PayPal refuses an order whose items do not).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from paywire import Address, BuyerAction, InvalidRequest, Money, ProviderState, Response, Subject
from paywire_paypal.amounts import from_paypal, to_paypal
from paywire_paypal.order_state import authorization_of, cancelled, capture_of, order_fields

__all__ = [
    "VAULT_SOURCE_OPTION",
    "WALLET",
    "completed_fields",
    "created_fields",
    "is_wallet",
    "order_request",
]

WALLET: Final = "paypal"
VAULT_SOURCE_OPTION: Final = "vault_source"  # Subject.options: the kind of a vault token ("card", "paypal", ...)
_TEXT_LIMITS: Final = {"line1": 300, "line2": 300, "city": 120, "state": 300, "postal_code": 60}


def is_wallet(source: str | None) -> bool:
    """Whether `source` asks for PayPal's approval flow rather than naming a vault token."""
    return source is None or source == WALLET


def _limited(value: str, limit: int, param: str) -> str:
    if len(value) > limit:
        raise InvalidRequest(f"{param} has {len(value)} characters; PayPal takes at most {limit}; nothing was sent",
                             param=param, provider="paypal", code="too_long")
    return value


def _items(subject: Subject, amount: Money) -> dict[str, Any]:
    """Items and their breakdown, when the order's items add up to exactly the amount."""
    order = subject.order
    if order is None or not order.items:
        return {}
    total = 0  # minor units, unbounded: items that add up past what Money holds add up to another amount
    items = []
    for item in order.items:
        if item.unit_price.currency != amount.currency or not 1 <= item.quantity < 10**10:
            return {}
        total += item.unit_price.minor * item.quantity
        try:
            price = to_paypal(item.unit_price, "order.items.unit_price")
        except InvalidRequest:
            return {}
        entry: dict[str, Any] = {"name": item.name[:127] or "item", "quantity": str(item.quantity), "unit_amount": price}
        if item.sku and len(item.sku) <= 127:
            entry["sku"] = item.sku
        items.append(entry)
    if total != amount.minor:
        return {}
    return {"items": items, "breakdown": {"item_total": to_paypal(amount, "order.items")}}


def _shipping(address: Address | None) -> dict[str, Any]:
    if address is None or address.country is None:
        return {}
    portable: dict[str, Any] = {"country_code": address.country}
    for field, key in (("line1", "address_line_1"), ("line2", "address_line_2"), ("city", "admin_area_2"),
                       ("state", "admin_area_1"), ("postal_code", "postal_code")):
        value = getattr(address, field)
        if value:
            portable[key] = _limited(value, _TEXT_LIMITS[field], f"order.shipping.{field}")
    shipping: dict[str, Any] = {"type": "SHIPPING", "address": portable}
    if address.name:
        shipping["name"] = {"full_name": _limited(address.name, 300, "order.shipping.name")}
    return {"shipping": shipping}


def purchase_unit(subject: Subject) -> dict[str, Any]:
    """The order's one purchase unit: amount (with items), the shop's order id, shipping."""
    if subject.amount is None:
        raise InvalidRequest("an order needs an amount; nothing was sent", param="amount", provider="paypal")
    amount = to_paypal(subject.amount)
    unit: dict[str, Any] = {"amount": amount}
    items = _items(subject, subject.amount)
    if items:
        amount["breakdown"] = items["breakdown"]
        unit["items"] = items["items"]
    order = subject.order
    if order is not None:
        unit["custom_id"] = _limited(order.id, 127, "order.id")
        if order.description:
            unit["description"] = order.description[:127]
        unit |= _shipping(order.shipping)
    return {"purchase_units": [unit]}


def payment_source(subject: Subject) -> dict[str, Any]:
    """The payer's experience on PayPal (with a return URL), or the vault token that pays."""
    source = subject.source
    if is_wallet(source):
        if subject.vaulted:
            raise InvalidRequest("a vaulted charge needs a Vault payment token as its source; nothing was sent",
                                 param="source", provider="paypal", code="vault_token_required")
        if not subject.return_url:
            return {}  # PayPal's buttons approve it (the approve link)
        context: dict[str, Any] = {"return_url": subject.return_url, "cancel_url": subject.return_url,
                                   "user_action": "PAY_NOW"}
        if subject.order is not None and _shipping(subject.order.shipping):
            context["shipping_preference"] = "SET_PROVIDED_ADDRESS"
        return {"payment_source": {WALLET: {"experience_context": context}}}
    kind = subject.options.get(VAULT_SOURCE_OPTION, WALLET)
    if not subject.idempotency_key:
        raise InvalidRequest("PayPal pays an order from the vault only with a PayPal-Request-Id: give an "
                             "idempotency key; nothing was sent", param="idempotency_key", provider="paypal",
                             code="idempotency_key_required")
    paying: dict[str, Any] = {"vault_id": source}
    if kind == "card":
        # Who started the charge: the buyer at checkout, or the shop without the buyer (vaulted).
        paying["stored_credential"] = {"payment_initiator": "MERCHANT" if subject.vaulted else "CUSTOMER",
                                       "payment_type": "UNSCHEDULED", "usage": "SUBSEQUENT"}
    return {"payment_source": {kind: paying}}


def order_request(intent: str) -> Any:
    """The create-order request for intent AUTHORIZE (authorize) or CAPTURE (sale)."""

    def intent_of(subject: Subject) -> dict[str, Any]:
        return {"intent": intent}

    intent_of.__qualname__ = f"intent({intent})"
    return [intent_of, purchase_unit, payment_source]


def completed_fields(subject: Subject, response: Response) -> dict[str, Any]:
    """An authorized or captured order: the authorization (capture/void act on it) or the capture
    (refunds act on it) as `reference`, its amount, the order's state and totals; `accepted` when
    PayPal holds that payment PENDING (it decides later and says so by webhook).

    An order VOIDED with an authorization inside was completed, and its authorization voided since
    (PayPal then voids the order): a retry under the key finds it so, and its state says voided.
    One waiting for the payer again is buyer action; any other status (Orders v2 lists CREATED,
    SAVED, APPROVED) shows nothing authorized or captured and cannot say whether the request took
    effect, so it is unreadable (the outcome unknown). The validators have refused an order voided
    with nothing inside (`validators.not_voided`)."""
    order = response.data
    if order.get("status") == "PAYER_ACTION_REQUIRED":
        return created_fields(subject, response)
    if order.get("status") not in ("COMPLETED", "VOIDED") or cancelled(order):
        raise InvalidRequest(f"PayPal answered the order {order.get('status')!s:.40}, not completed",
                             provider="paypal", code="unexpected_order")
    fields = order_fields(order)
    payment = authorization_of(order) if order.get("intent") == "AUTHORIZE" else capture_of(order)
    if payment is not None and isinstance(payment.get("amount"), Mapping):
        fields["amount"] = from_paypal(payment["amount"])
    if payment is not None and payment.get("status") == "PENDING":
        fields["status"] = "accepted"
    return fields


def created_fields(subject: Subject, response: Response) -> dict[str, Any]:
    """A new order: waiting for the buyer (the approval link as `action`), or paid from the vault
    (completed, or voided since: see `completed_fields`)."""
    order = response.data
    if order.get("status") in ("COMPLETED", "VOIDED"):
        return completed_fields(subject, response)
    fields = order_fields(order)
    links = {link.get("rel"): link.get("href") for link in order.get("links") or () if isinstance(link, Mapping)}
    redirect = links.get("payer-action") or links.get("approve")
    fields["status"] = "action_required"
    if isinstance(redirect, str) and fields["state"] == ProviderState.ACTION_REQUIRED:
        fields["action"] = BuyerAction(redirect, subject.return_url)
    return fields
