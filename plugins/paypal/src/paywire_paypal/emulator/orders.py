"""Orders v2: create, get, patch, authorize, capture, and the buyer's approval page.

An order without a payment source is CREATED with an `approve` link; with
`payment_source.paypal` it is PAYER_ACTION_REQUIRED with a `payer-action` link; both links point
at `/checkoutnow?token=ORDER_ID` on the emulator, where the test buyer approves (see
`outcomes`). Capture or authorize before approval is ORDER_NOT_APPROVED, a second time
ORDER_ALREADY_CAPTURED / ORDER_ALREADY_AUTHORIZED. An order paid with a vaulted instrument
(`payment_source.paypal.vault_id` or `payment_source.card.vault_id`) needs no approval: it is
captured or authorized when created and answered COMPLETED, and it needs a PayPal-Request-Id.
Cards are accepted only through the vault (the emulated merchant is not enabled to take card
numbers in orders: NOT_ENABLED_FOR_CARD_PROCESSING).
"""

from __future__ import annotations

import copy
import json
import re
from typing import Any

from paywire.testing.emulator import EmulatorRequest, Reply, route
from paywire_paypal.emulator import ids, render
from paywire_paypal.emulator.amounts import parse_money
from paywire_paypal.emulator.base import PayPalApp
from paywire_paypal.emulator.errors import PayPalError, not_found
from paywire_paypal.emulator.model import Order, PurchaseUnit
from paywire_paypal.emulator.oauth import ORDERS
from paywire_paypal.emulator.outcomes import buyer_visit, redirect_or_json
from paywire_paypal.emulator.payments import authorize_unit, capture_unit, check_invoice_id
from paywire_paypal.emulator.vault import buyer, store_payment_token

__all__ = ["OrdersAPI", "validate_unit"]

_BREAKDOWN_PLUS = ("item_total", "tax_total", "shipping", "handling", "insurance")
_BREAKDOWN_MINUS = ("shipping_discount", "discount")
_STRINGS = {"description": 127, "custom_id": 127, "invoice_id": 127, "soft_descriptor": 22, "reference_id": 256}
_QUANTITY = re.compile(r"^[1-9][0-9]{0,9}$")
_PATCH_PATH = re.compile(r"^/purchase_units/@reference_id=='(?P<ref>[^']*)'(?P<rest>(/[a-z_]+)+)$")
_PATCHABLE = {
    "/amount",
    "/description",
    "/custom_id",
    "/invoice_id",
    "/soft_descriptor",
    "/items",
    "/shipping/name",
    "/shipping/address",
    "/shipping",
}


def validate_unit(unit: Any, where: str) -> tuple[int, str]:
    """Check one purchase unit (strings, amount, breakdown, items); return its (amount, currency)."""
    if not isinstance(unit, dict):
        raise PayPalError.of("INVALID_PARAMETER_SYNTAX", field=where)
    for key, limit in _STRINGS.items():
        value = unit.get(key)
        if value is not None and (not isinstance(value, str) or not 1 <= len(value) <= limit):
            raise PayPalError.of("INVALID_STRING_LENGTH", field=f"{where}/{key}", value=str(value))
    amount = unit.get("amount")
    if amount is None:
        raise PayPalError.of("MISSING_REQUIRED_PARAMETER", field=f"{where}/amount")
    minor, currency = parse_money(amount, f"{where}/amount")

    def same_currency(part_currency: str, field: str) -> None:
        if part_currency != currency:
            raise PayPalError(422, "MULTI_CURRENCY_ORDER", field=field, value=part_currency)

    breakdown = amount.get("breakdown")
    parts: dict[str, int] = {}
    if breakdown is not None:
        if not isinstance(breakdown, dict):
            raise PayPalError.of("INVALID_PARAMETER_SYNTAX", field=f"{where}/amount/breakdown")
        for key in (*_BREAKDOWN_PLUS, *_BREAKDOWN_MINUS):
            if key in breakdown:
                field = f"{where}/amount/breakdown/{key}"
                parts[key], part_currency = parse_money(breakdown[key], field, allow_zero=True)
                same_currency(part_currency, f"{field}/currency_code")
        total = sum(parts.get(k, 0) for k in _BREAKDOWN_PLUS) - sum(parts.get(k, 0) for k in _BREAKDOWN_MINUS)
        if total != minor:
            raise PayPalError(422, "AMOUNT_MISMATCH", field=f"{where}/amount/value", value=amount["value"])
    items = unit.get("items")
    if items is None:
        return minor, currency
    if not isinstance(items, list):
        raise PayPalError.of("INVALID_PARAMETER_SYNTAX", field=f"{where}/items")
    item_total = tax_total = 0
    taxed = False
    for index, item in enumerate(items):
        field = f"{where}/items/{index}"
        if not isinstance(item, dict):
            raise PayPalError.of("INVALID_PARAMETER_SYNTAX", field=field)
        for key in ("name", "quantity", "unit_amount"):
            if key not in item:
                raise PayPalError.of("MISSING_REQUIRED_PARAMETER", field=f"{field}/{key}")
        if not isinstance(item["quantity"], str) or not _QUANTITY.match(item["quantity"]):
            raise PayPalError.of("INVALID_PARAMETER_SYNTAX", field=f"{field}/quantity", value=str(item["quantity"]))
        quantity = int(item["quantity"])
        unit_minor, unit_currency = parse_money(item["unit_amount"], f"{field}/unit_amount", allow_zero=True)
        same_currency(unit_currency, f"{field}/unit_amount/currency_code")
        item_total += unit_minor * quantity
        if "tax" in item:
            tax_minor, tax_currency = parse_money(item["tax"], f"{field}/tax", allow_zero=True)
            same_currency(tax_currency, f"{field}/tax/currency_code")
            tax_total += tax_minor * quantity
            taxed = True
    if items and "item_total" not in parts:
        raise PayPalError(422, "ITEM_TOTAL_REQUIRED", field=f"{where}/amount/breakdown/item_total")
    if items and parts["item_total"] != item_total:
        raise PayPalError(422, "ITEM_TOTAL_MISMATCH", field=f"{where}/amount/breakdown/item_total")
    if taxed and "tax_total" not in parts:
        raise PayPalError(422, "TAX_TOTAL_REQUIRED", field=f"{where}/amount/breakdown/tax_total")
    if taxed and parts["tax_total"] != tax_total:
        raise PayPalError(422, "TAX_TOTAL_MISMATCH", field=f"{where}/amount/breakdown/tax_total")
    return minor, currency


def _object(value: Any, field: str) -> dict[str, Any]:
    """An optional JSON object of the request: {} when absent, INVALID_PARAMETER_SYNTAX when not an object."""
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise PayPalError.of("INVALID_PARAMETER_SYNTAX", field=field)
    return value


def _unit_field(reference_id: str) -> str:
    return f"/purchase_units/@reference_id=='{reference_id}'"


def validate_units(body: dict[str, Any], intent: str) -> list[PurchaseUnit]:
    units = body.get("purchase_units")
    if units is None:
        raise PayPalError.of("MISSING_REQUIRED_PARAMETER", field="/purchase_units")
    if not isinstance(units, list) or not units:
        raise PayPalError.of("INVALID_ARRAY_MIN_ITEMS", field="/purchase_units")
    if len(units) > 10:
        raise PayPalError.of("INVALID_ARRAY_MAX_ITEMS", field="/purchase_units")
    if intent == "AUTHORIZE" and len(units) > 1:
        raise PayPalError(422, "UNSUPPORTED_INTENT", field="/intent", value=intent)
    result: list[PurchaseUnit] = []
    for index, unit in enumerate(units):
        if len(units) > 1 and not (isinstance(unit, dict) and unit.get("reference_id")):
            raise PayPalError(422, "REFERENCE_ID_REQUIRED", field=f"/purchase_units/{index}/reference_id")
        reference_id = unit.get("reference_id", "default") if isinstance(unit, dict) else "default"
        if any(existing.reference_id == reference_id for existing in result):
            raise PayPalError(422, "DUPLICATE_REFERENCE_ID", field=f"/purchase_units/{index}/reference_id")
        minor, currency = validate_unit(unit, _unit_field(reference_id))
        if result and currency != result[0].currency:
            raise PayPalError(422, "MULTI_CURRENCY_ORDER", field=f"{_unit_field(reference_id)}/amount/currency_code")
        result.append(PurchaseUnit(reference_id, minor, currency, copy.deepcopy(unit)))
    return result


class OrdersAPI(PayPalApp):
    def _order(self, order_id: str) -> Order:
        order = self.orders.get(order_id)
        if order is None:
            raise not_found("order_id", order_id)
        return order

    # -- create ----------------------------------------------------------------------------------
    @route("POST", r"/v2/checkout/orders")
    def create_order(self, request: EmulatorRequest) -> Reply:
        self.authenticate(request, ORDERS)
        self.mock_response(request)
        body = self.json_body(request)

        def run() -> Reply:
            order = self._new_order(body, request)
            with self.lock:
                if order.vault_token_id is not None:
                    self._pay(order)
                self.orders[order.id] = order
                return self._order_reply(request, 201, order, created=True)

        def replay(first: Reply) -> Reply:
            with self.lock:
                return self._order_reply(request, 200, self._order(json.loads(first.body)["id"]), created=True)

        return self.once(request, run, replay)

    def _new_order(self, body: dict[str, Any], request: EmulatorRequest) -> Order:
        intent = body.get("intent")
        if intent is None:
            raise PayPalError.of("MISSING_REQUIRED_PARAMETER", field="/intent")
        if intent not in ("CAPTURE", "AUTHORIZE"):
            raise PayPalError.of("INVALID_PARAMETER_VALUE", field="/intent", value=str(intent))
        units = validate_units(body, intent)
        now = self.now()
        order = Order(ids.resource_id(), intent, "CREATED", units, now, now)
        legacy = _object(body.get("application_context"), "/application_context")
        order.experience_context = {k: legacy[k] for k in ("return_url", "cancel_url") if k in legacy}
        source = body.get("payment_source")
        if source is None:
            return order
        if not isinstance(source, dict) or not source:
            raise PayPalError.of("INVALID_PARAMETER_SYNTAX", field="/payment_source")
        if len(source) > 1:
            raise PayPalError(422, "ONLY_ONE_PAYMENT_SOURCE_ALLOWED", field="/payment_source")
        kind, detail = next(iter(source.items()))
        detail = _object(detail, f"/payment_source/{kind}")
        if kind not in ("paypal", "card"):
            raise PayPalError.of(
                "NOT_SUPPORTED", field=f"/payment_source/{kind}", description=f"{kind} is not supported."
            )
        order.source_kind = kind
        vault_id = detail.get("vault_id")
        if vault_id is not None:
            if not request.header("paypal-request-id"):
                raise PayPalError.of("PAYPAL_REQUEST_ID_REQUIRED", field="PayPal-Request-Id", location="header")
            with self.lock:
                token = self.payment_tokens.get(str(vault_id))
            if token is None:
                raise not_found(f"/payment_source/{kind}/vault_id", str(vault_id), location="body")
            if token.source_kind != kind:
                raise PayPalError(
                    422, "MISMATCHED_VAULT_ID_TO_PAYMENT_SOURCE", field=f"/payment_source/{kind}/vault_id"
                )
            order.vault_token_id, order.outcome, order.customer_id = token.id, token.outcome, token.customer_id
            return order
        if kind == "card":
            raise PayPalError(422, "NOT_ENABLED_FOR_CARD_PROCESSING", field="/payment_source/card")
        order.experience_context |= _object(
            detail.get("experience_context"), "/payment_source/paypal/experience_context"
        )
        attributes = _object(detail.get("attributes"), "/payment_source/paypal/attributes")
        vault = _object(attributes.get("vault"), "/payment_source/paypal/attributes/vault")
        customer = _object(attributes.get("customer"), "/payment_source/paypal/attributes/customer")
        order.store_in_vault = vault.get("store_in_vault") == "ON_SUCCESS"
        order.customer_id = customer.get("id") if isinstance(customer.get("id"), str) else None
        order.status = "PAYER_ACTION_REQUIRED"
        return order

    # -- read and update -------------------------------------------------------------------------
    @route("GET", r"/v2/checkout/orders/(?P<id>[^/]+)")
    def get_order(self, request: EmulatorRequest) -> Reply:
        self.authenticate(request, ORDERS)
        self.mock_response(request)
        with self.lock:
            return Reply.json(200, render.order(self, self._order(request.params["id"])))

    @route("PATCH", r"/v2/checkout/orders/(?P<id>[^/]+)")
    def patch_order(self, request: EmulatorRequest) -> Reply:
        self.authenticate(request, ORDERS)
        self.mock_response(request)
        try:
            operations = json.loads(request.body or b"null")
        except ValueError:
            raise PayPalError.of("MALFORMED_REQUEST_JSON") from None
        if not isinstance(operations, list) or not operations:
            raise PayPalError.of("MALFORMED_REQUEST_JSON")
        with self.lock:
            order = self._order(request.params["id"])
            if order.status in ("COMPLETED", "VOIDED"):
                raise PayPalError(422, "ORDER_ALREADY_COMPLETED")
            intent = order.intent
            requests = {unit.reference_id: copy.deepcopy(unit.request) for unit in order.purchase_units}
            for index, operation in enumerate(operations):
                intent = self._apply(operation, index, intent, requests)
            checked = {ref: validate_unit(req, _unit_field(ref)) for ref, req in requests.items()}
            if intent == "AUTHORIZE" and len(requests) > 1:
                raise PayPalError(422, "UNSUPPORTED_INTENT", field="/intent", value=intent)
            order.intent = intent
            for unit in order.purchase_units:
                unit.request = requests[unit.reference_id]
                unit.amount_minor, unit.currency = checked[unit.reference_id]
            order.update_time = self.now()
        return Reply(204)

    @staticmethod
    def _apply(operation: Any, index: int, intent: str, requests: dict[str, dict[str, Any]]) -> str:
        """Apply one JSON Patch operation to copies of the purchase units; return the intent."""
        if not isinstance(operation, dict) or operation.get("op") not in ("add", "replace", "remove"):
            raise PayPalError.of("INVALID_PARAMETER_VALUE", field=f"/{index}/op")
        op, path = operation["op"], operation.get("path")
        if not path:
            raise PayPalError(422, "PATCH_PATH_REQUIRED", field=f"/{index}/path")
        if op != "remove" and "value" not in operation:
            raise PayPalError(422, "PATCH_VALUE_REQUIRED", field=f"/{index}/value")
        if path == "/intent":
            if op != "replace" or operation["value"] not in ("CAPTURE", "AUTHORIZE"):
                raise PayPalError.of("INVALID_PARAMETER_VALUE", field="/intent", value=str(operation.get("value")))
            return str(operation["value"])
        match = _PATCH_PATH.match(path)
        if match is None:
            raise PayPalError(422, "INVALID_JSON_POINTER_FORMAT", field=f"/{index}/path", value=path)
        target = requests.get(match["ref"])
        if target is None:
            raise PayPalError(422, "REFERENCE_ID_NOT_FOUND", field=f"/{index}/path", value=path)
        if match["rest"] not in _PATCHABLE:
            raise PayPalError(422, "NOT_PATCHABLE", field=f"/{index}/path", value=path)
        *parents, leaf = match["rest"].strip("/").split("/")
        for key in parents:
            target = target.setdefault(key, {})
        present = leaf in target
        if (op == "add" and present) or (op in ("replace", "remove") and not present):
            raise PayPalError.of("INVALID_PATCH_OPERATION", field=f"/{index}/op", value=op)
        if op == "remove":
            if leaf == "amount":
                raise PayPalError.of("FIELD_NOT_PATCHABLE", field=f"/{index}/path", value=path)
            del target[leaf]
        else:
            target[leaf] = copy.deepcopy(operation["value"])
        return intent

    # -- authorize and capture -------------------------------------------------------------------
    @route("POST", r"/v2/checkout/orders/(?P<id>[^/]+)/capture")
    def capture_order(self, request: EmulatorRequest) -> Reply:
        return self._complete(request, "CAPTURE")

    @route("POST", r"/v2/checkout/orders/(?P<id>[^/]+)/authorize")
    def authorize_order(self, request: EmulatorRequest) -> Reply:
        return self._complete(request, "AUTHORIZE")

    def _complete(self, request: EmulatorRequest, action: str) -> Reply:
        self.authenticate(request, ORDERS)
        self.mock_response(request)
        self.json_body(request)

        def run() -> Reply:
            with self.lock:
                order = self._order(request.params["id"])
                if order.intent != action:
                    raise PayPalError(
                        422,
                        "ACTION_DOES_NOT_MATCH_INTENT",
                        description=f"Order was created with an intent to '{order.intent}'. Please use "
                        f"v2/checkout/orders/order_id/{order.intent.lower()} to complete the transaction.",
                    )
                if order.status == "COMPLETED":
                    raise PayPalError(
                        422, "ORDER_ALREADY_CAPTURED" if action == "CAPTURE" else "ORDER_ALREADY_AUTHORIZED"
                    )
                if order.status == "VOIDED":
                    raise PayPalError(422, "ORDER_COMPLETED_OR_VOIDED")
                if order.status != "APPROVED":
                    raise PayPalError(422, "ORDER_NOT_APPROVED")
                self._pay(order)
                return self._order_reply(request, 201, order)

        def replay(first: Reply) -> Reply:
            with self.lock:
                return self._order_reply(request, 200, self._order(request.params["id"]))

        return self.once(request, run, replay)

    def _pay(self, order: Order) -> None:
        """Authorize or capture every purchase unit of an approved (or vault-paid) order."""
        approve_link = render.link(self, render.approve_path(order.id), "redirect")
        if order.outcome == "decline":
            raise PayPalError(422, "INSTRUMENT_DECLINED", links=[approve_link] if not order.vault_token_id else ())
        if order.outcome == "payer_action":
            if order.vault_token_id is None:
                order.status, order.update_time = "PAYER_ACTION_REQUIRED", self.now()
            raise PayPalError(422, "PAYER_ACTION_REQUIRED", links=[{**approve_link, "rel": "payer-action"}])
        if order.intent == "CAPTURE":
            for unit in order.purchase_units:
                check_invoice_id(self, unit.request.get("invoice_id"), order.id)
        succeeded = False
        for unit in order.purchase_units:
            if order.intent == "CAPTURE":
                cap = capture_unit(
                    self,
                    order,
                    unit,
                    unit.amount_minor,
                    outcome=order.outcome,
                    invoice_id=unit.request.get("invoice_id"),
                    custom_id=unit.request.get("custom_id"),
                )
                succeeded |= cap.status != "DECLINED"
            else:
                auth = authorize_unit(self, order, unit, outcome=order.outcome)
                succeeded |= auth.status != "DENIED"
        order.status, order.update_time = "COMPLETED", self.now()
        if order.store_in_vault and succeeded and order.payer is not None:
            source = {
                "email_address": order.payer["email_address"],
                "payer_id": order.payer["payer_id"],
                "name": order.payer["name"],
                "address": order.payer["address"],
                "usage_type": "MERCHANT",
                "customer_type": "CONSUMER",
            }
            customer = order.customer_id or ids.customer_id()
            token = store_payment_token(self, customer, "paypal", source, order.outcome)
            order.saved_token_id, order.customer_id = token.id, customer

    def _order_reply(self, request: EmulatorRequest, status: int, order: Order, created: bool = False) -> Reply:
        if self.wants_representation(request):
            return Reply.json(status, render.order(self, order))
        if created and order.vault_token_id is None:
            return Reply.json(status, render.order_created(self, order))
        return Reply.json(status, render.order_after_payment(self, order))

    # -- the buyer's side ------------------------------------------------------------------------
    @route("GET", r"/checkoutnow")
    @route("POST", r"/checkoutnow")
    def approve_order_page(self, request: EmulatorRequest) -> Reply:
        """The buyer visiting the approve / payer-action link (`payer=` picks the test outcome)."""
        with self.lock:
            order, payer = buyer_visit(request, self.orders, "token")
            self.approve(order.id, payer)
            back = {"token": order.id}
            if payer == "cancel":
                return redirect_or_json(
                    order.experience_context.get("cancel_url"), back, {"id": order.id, "status": order.status}
                )
            assert order.payer is not None
            back["PayerID"] = order.payer["payer_id"]
            return redirect_or_json(
                order.experience_context.get("return_url"),
                back,
                {"id": order.id, "status": order.status, "payer_id": order.payer["payer_id"]},
            )

    def approve(self, order_id: str, payer: str = "approve") -> None:
        """Test control: the buyer approves (or, with `payer`, cancels or picks a failing instrument)."""
        with self.lock:
            order = self._order(order_id)
            if order.status not in ("CREATED", "PAYER_ACTION_REQUIRED", "APPROVED"):
                raise PayPalError(422, "ORDER_COMPLETED_OR_VOIDED", description=f"The order is {order.status}.")
            if payer == "cancel":
                return
            order.payer = order.payer or buyer()
            order.source_kind = order.source_kind or "paypal"
            order.status, order.outcome, order.update_time = "APPROVED", payer, self.now()
            self.emit(
                "CHECKOUT.ORDER.APPROVED",
                "checkout-order",
                "An order has been approved by buyer",
                render.order(self, order),
            )

    def reverse_approval(self, order_id: str) -> None:
        """Test control: the capture window after approval passed. PayPal cancels the order (VOIDED)
        and sends CHECKOUT.PAYMENT-APPROVAL.REVERSED."""
        with self.lock:
            order = self._order(order_id)
            if order.status != "APPROVED":
                raise PayPalError(422, "ORDER_NOT_APPROVED", description=f"The order is {order.status}.")
            order.status, order.update_time = "VOIDED", self.now()
            self.emit(
                "CHECKOUT.PAYMENT-APPROVAL.REVERSED",
                "checkout-order",
                "A payment has been reversed after approval.",
                render.approval_reversed(self, order),
            )
