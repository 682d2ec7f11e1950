"""JSON views of the state, shaped as PayPal's Orders v2, Payments v2 and Vault v3 responses.

Every view is computed from the current state, so a replayed request (same PayPal-Request-Id)
shows the resource as it is now, which is what PayPal documents.
"""

from __future__ import annotations

from typing import Any

from paywire_paypal.emulator import ids
from paywire_paypal.emulator.amounts import money
from paywire_paypal.emulator.base import PayPalApp
from paywire_paypal.emulator.model import Authorization, Capture, Order, PaymentToken, Refund, SetupToken

__all__ = [
    "approve_path",
    "authorization",
    "capture",
    "minimal",
    "order",
    "order_after_payment",
    "order_created",
    "payment_token",
    "refund",
    "setup_token",
]

_SELLER_PROTECTION = {"status": "ELIGIBLE", "dispute_categories": ["ITEM_NOT_RECEIVED", "UNAUTHORIZED_TRANSACTION"]}
MERCHANT = {"email_address": "merchant@example.com", "merchant_id": "7KNGBPH2U58GQ"}


def link(app: PayPalApp, path: str, rel: str, method: str = "GET") -> dict[str, str]:
    return {"href": app.url(path), "rel": rel, "method": method}


def approve_path(order_id: str) -> str:
    """The buyer-facing approval page of an order (PayPal's is https://www.paypal.com/checkoutnow?token=ID)."""
    return f"/checkoutnow?token={order_id}"


def minimal(view: dict[str, Any]) -> dict[str, Any]:
    """PayPal's `Prefer: return=minimal` answer: id, status and HATEOAS links."""
    return {key: view[key] for key in ("id", "status", "links") if key in view}


def authorization(app: PayPalApp, auth: Authorization) -> dict[str, Any]:
    path = f"/v2/payments/authorizations/{auth.id}"
    links = [link(app, path, "self")]
    if auth.status in ("CREATED", "PARTIALLY_CAPTURED"):
        links += [
            link(app, f"{path}/capture", "capture", "POST"),
            link(app, f"{path}/void", "void", "POST"),
            link(app, f"{path}/reauthorize", "reauthorize", "POST"),
        ]
    links.append(link(app, f"/v2/checkout/orders/{auth.order_id}", "up"))
    view: dict[str, Any] = {"id": auth.id, "status": auth.status}
    if auth.status == "PENDING":
        view["status_details"] = {"reason": "PENDING_REVIEW"}
    view["amount"] = money(auth.amount_minor, auth.currency)
    if auth.invoice_id is not None:
        view["invoice_id"] = auth.invoice_id
    if auth.custom_id is not None:
        view["custom_id"] = auth.custom_id
    view |= {
        "seller_protection": _SELLER_PROTECTION,
        "supplementary_data": {"related_ids": {"order_id": auth.order_id}},
        "payee": MERCHANT,
        "expiration_time": ids.timestamp(auth.expiration_time),
        "create_time": ids.timestamp(auth.create_time),
        "update_time": ids.timestamp(auth.update_time),
        "links": links,
    }
    return view


def capture(app: PayPalApp, cap: Capture) -> dict[str, Any]:
    path = f"/v2/payments/captures/{cap.id}"
    links = [link(app, path, "self")]
    if cap.status in ("COMPLETED", "PARTIALLY_REFUNDED"):
        links.append(link(app, f"{path}/refund", "refund", "POST"))
    up = (
        f"/v2/payments/authorizations/{cap.authorization_id}"
        if cap.authorization_id
        else f"/v2/checkout/orders/{cap.order_id}"
    )
    links.append(link(app, up, "up"))
    view: dict[str, Any] = {"id": cap.id, "status": cap.status}
    if cap.status_reason:
        view["status_details"] = {"reason": cap.status_reason}
    view["amount"] = money(cap.amount_minor, cap.currency)
    view["final_capture"] = cap.final_capture
    view["seller_protection"] = _SELLER_PROTECTION
    if cap.status != "DECLINED":
        view["seller_receivable_breakdown"] = {
            "gross_amount": money(cap.amount_minor, cap.currency),
            "paypal_fee": money(cap.fee_minor, cap.currency),
            "net_amount": money(cap.amount_minor - cap.fee_minor, cap.currency),
        }
    for key in ("invoice_id", "custom_id", "note_to_payer"):
        if getattr(cap, key) is not None:
            view[key] = getattr(cap, key)
    if cap.processor_response:
        view["processor_response"] = cap.processor_response
    related = {"order_id": cap.order_id}
    if cap.authorization_id:
        related["authorization_id"] = cap.authorization_id
    view |= {
        "disbursement_mode": "INSTANT",
        "supplementary_data": {"related_ids": related},
        "payee": MERCHANT,
        "create_time": ids.timestamp(cap.create_time),
        "update_time": ids.timestamp(cap.update_time),
        "links": links,
    }
    return view


def refund(app: PayPalApp, ref: Refund) -> dict[str, Any]:
    view: dict[str, Any] = {"id": ref.id, "amount": money(ref.amount_minor, ref.currency)}
    view["seller_payable_breakdown"] = {
        "gross_amount": money(ref.amount_minor, ref.currency),
        "paypal_fee": money(ref.fee_minor, ref.currency),
        "net_amount": money(ref.amount_minor - ref.fee_minor, ref.currency),
        "total_refunded_amount": money(ref.total_refunded_minor, ref.currency),
    }
    for key in ("invoice_id", "custom_id", "note_to_payer"):
        if getattr(ref, key) is not None:
            view[key] = getattr(ref, key)
    view["status"] = ref.status
    if ref.status_reason:
        view["status_details"] = {"reason": ref.status_reason}
    view |= {
        "create_time": ids.timestamp(ref.create_time),
        "update_time": ids.timestamp(ref.update_time),
        "links": [
            link(app, f"/v2/payments/refunds/{ref.id}", "self"),
            link(app, f"/v2/payments/captures/{ref.capture_id}", "up"),
        ],
    }
    return view


def _order_links(app: PayPalApp, order: Order) -> list[dict[str, str]]:
    path = f"/v2/checkout/orders/{order.id}"
    links = [link(app, path, "self")]
    action = "capture" if order.intent == "CAPTURE" else "authorize"
    if order.status == "CREATED":
        links += [
            link(app, approve_path(order.id), "approve"),
            link(app, path, "update", "PATCH"),
            link(app, f"{path}/{action}", action, "POST"),
        ]
    elif order.status == "PAYER_ACTION_REQUIRED":
        links.append(link(app, approve_path(order.id), "payer-action"))
    elif order.status == "APPROVED":
        links += [link(app, path, "update", "PATCH"), link(app, f"{path}/{action}", action, "POST")]
    return links


def _payment_source(app: PayPalApp, order: Order) -> dict[str, Any] | None:
    if order.source_kind is None:
        return None
    source: dict[str, Any] = {}
    token = app.payment_tokens.get(order.vault_token_id) if order.vault_token_id else None
    if token is not None:
        source = {k: v for k, v in token.source.items() if k not in ("usage_type", "customer_type")}
        if order.source_kind == "paypal":
            # The vault keeps the buyer as `payer_id` (Payment Method Tokens v3); an order shows
            # the wallet as Orders v2's paypal_wallet_response, where it is `account_id`.
            source = {("account_id" if k == "payer_id" else k): v for k, v in source.items()}
            source.setdefault("account_status", "VERIFIED")
    elif order.payer is not None:
        source = {
            "email_address": order.payer["email_address"],
            "account_id": order.payer["payer_id"],
            "account_status": "VERIFIED",
            "name": order.payer["name"],
            "address": order.payer["address"],
        }
    saved = app.payment_tokens.get(order.saved_token_id) if order.saved_token_id else None
    if saved is not None:
        source["attributes"] = {
            "vault": {
                "id": saved.id,
                "status": "VAULTED",
                "customer": {"id": saved.customer_id},
                "links": [link(app, f"/v3/vault/payment-tokens/{saved.id}", "self")],
            }
        }
    return {order.source_kind: source}


def _purchase_unit(app: PayPalApp, order: Order, index: int, full: bool) -> dict[str, Any]:
    unit = order.purchase_units[index]
    view: dict[str, Any] = {"reference_id": unit.reference_id}
    if full:
        amount: dict[str, Any] = money(unit.amount_minor, unit.currency)
        if "breakdown" in unit.request.get("amount", {}):
            amount["breakdown"] = unit.request["amount"]["breakdown"]
        view["amount"] = amount
        view["payee"] = MERCHANT
        for key in ("description", "custom_id", "invoice_id", "soft_descriptor", "items"):
            if key in unit.request:
                view[key] = unit.request[key]
    if "shipping" in unit.request:
        view["shipping"] = unit.request["shipping"]
    payments: dict[str, Any] = {}
    if unit.authorization_ids:
        payments["authorizations"] = [authorization(app, app.authorizations[i]) for i in unit.authorization_ids]
    if unit.capture_ids:
        payments["captures"] = [capture(app, app.captures[i]) for i in unit.capture_ids]
        refund_ids = [r for i in unit.capture_ids for r in app.captures[i].refund_ids]
        if refund_ids:
            payments["refunds"] = [refund(app, app.refunds[r]) for r in refund_ids]
    if payments:
        view["payments"] = payments
    return view


def _source_entry(app: PayPalApp, order: Order) -> dict[str, Any]:
    """The `payment_source` entry of an order answer: every answer has it once the order has a source."""
    source = _payment_source(app, order)
    return {} if source is None else {"payment_source": source}


def _payer_entry(order: Order) -> dict[str, Any]:
    """The `payer` entry of an order answer, present only once the order has a payer."""
    return {} if order.payer is None else {"payer": order.payer}


def order(app: PayPalApp, order: Order) -> dict[str, Any]:
    """The full representation (GET, or any call with `Prefer: return=representation`)."""
    return {
        "id": order.id,
        "intent": order.intent,
        "status": order.status,
        **_source_entry(app, order),
        "purchase_units": [_purchase_unit(app, order, i, full=True) for i in range(len(order.purchase_units))],
        **_payer_entry(order),
        "create_time": ids.timestamp(order.create_time),
        "update_time": ids.timestamp(order.update_time),
        "links": _order_links(app, order),
    }


def approval_reversed(app: PayPalApp, order: Order) -> dict[str, Any]:
    """The resource of CHECKOUT.PAYMENT-APPROVAL.REVERSED as PayPal documents it: the order is named
    by `order_id` (there is no `id`), with its units' ids and the payment source."""
    units = [{"reference_id": unit.reference_id,
              **{name: unit.request[name] for name in ("custom_id", "invoice_id") if unit.request.get(name)}}
             for unit in order.purchase_units]
    return {"order_id": order.id, "purchase_units": units, **_source_entry(app, order)}


def order_created(app: PayPalApp, order: Order) -> dict[str, Any]:
    """The minimal answer to create order: id, status, payment source (when given) and links."""
    return {"id": order.id, "status": order.status, **_source_entry(app, order), "links": _order_links(app, order)}


def order_after_payment(app: PayPalApp, order: Order) -> dict[str, Any]:
    """The minimal answer to authorize/capture order: what a client needs to read the payment."""
    return {
        "id": order.id,
        "status": order.status,
        **_source_entry(app, order),
        "purchase_units": [_purchase_unit(app, order, i, full=False) for i in range(len(order.purchase_units))],
        **_payer_entry(order),
        "links": _order_links(app, order),
    }


def setup_token(app: PayPalApp, token: SetupToken) -> dict[str, Any]:
    links = [link(app, f"/v3/vault/setup-tokens/{token.id}", "self")]
    if token.status == "PAYER_ACTION_REQUIRED":
        links.append(link(app, f"/agreements/approve?approval_session_id={token.id}", "approve"))
    elif token.status == "APPROVED":
        links.append(link(app, "/v3/vault/payment-tokens", "confirm", "POST"))
    return {
        "id": token.id,
        "customer": {"id": token.customer_id},
        "status": token.status,
        "payment_source": {token.source_kind: token.source},
        "links": links,
    }


def payment_token(app: PayPalApp, token: PaymentToken) -> dict[str, Any]:
    path = f"/v3/vault/payment-tokens/{token.id}"
    return {
        "id": token.id,
        "customer": {"id": token.customer_id},
        "payment_source": {token.source_kind: token.source},
        "links": [link(app, path, "self"), link(app, path, "delete", "DELETE")],
    }
