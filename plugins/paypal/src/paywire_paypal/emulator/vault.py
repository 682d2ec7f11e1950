"""Vault v3: setup tokens, the PayPal-wallet approval step, and payment tokens.

A card setup token is APPROVED at once (no buyer step); a PayPal-wallet setup token is
PAYER_ACTION_REQUIRED with an `approve` link (`/agreements/approve?approval_session_id=ID`, the
emulator's stand-in for PayPal's page) until the buyer approves it. Exchanging an approved setup
token for a payment token (`payment_source.token.type = SETUP_TOKEN`) marks it VAULTED; a second
exchange is SETUP_TOKEN_ALREADY_TOKENIZED. Orders paid with a payment token need no approval.

Full card numbers are checked (length, Luhn) and dropped: only brand, last digits and expiry stay.
"""

from __future__ import annotations

import datetime
import json
import re
from typing import Any

from paywire.testing.emulator import EmulatorRequest, Reply, route
from paywire_paypal.emulator import ids, render
from paywire_paypal.emulator.base import PayPalApp
from paywire_paypal.emulator.errors import PayPalError, not_found
from paywire_paypal.emulator.model import PaymentToken, SetupToken
from paywire_paypal.emulator.oauth import VAULT, VAULT_SETUP
from paywire_paypal.emulator.outcomes import APPROVAL_OUTCOMES, buyer_visit, redirect_or_json
from paywire_paypal.emulator.payments import DECLINE_CODES

__all__ = ["VaultAPI", "buyer", "store_payment_token"]

_CUSTOMER_ID = re.compile(r"^[0-9a-zA-Z_-]{1,36}$")


def buyer() -> dict[str, Any]:
    """A sandbox-like PayPal buyer, as the payer of an approved order or setup token."""
    account = ids.payer_id()
    return {
        "name": {"given_name": "John", "surname": "Doe"},
        "email_address": f"buyer-{account.lower()}@example.com",
        "payer_id": account,
        "address": {"country_code": "US"},
    }


def card_brand(number: str) -> str:
    if number.startswith(("34", "37")):
        return "AMEX"
    if number.startswith("4"):
        return "VISA"
    if number[:2] in {"51", "52", "53", "54", "55"} or 2221 <= int(number[:4]) <= 2720:
        return "MASTERCARD"
    if number.startswith(("6011", "65", "644", "645", "646", "647", "648", "649")):
        return "DISCOVER"
    return "UNKNOWN"


def luhn_ok(number: str) -> bool:
    total = 0
    for position, digit in enumerate(reversed(number)):
        value = int(digit) * (2 if position % 2 else 1)
        total += value - 9 if value > 9 else value
    return total % 10 == 0


def card_source(card: Any, field: str, today: datetime.date) -> tuple[dict[str, Any], str]:
    """Validate a card payment source; return its stored view (no full number) and test outcome."""
    if not isinstance(card, dict):
        raise PayPalError.of("INVALID_PARAMETER_SYNTAX", field=field)
    number, expiry = card.get("number"), card.get("expiry")
    if number is None:
        raise PayPalError.of("MISSING_REQUIRED_PARAMETER", field=f"{field}/number")
    if not isinstance(number, str) or not re.fullmatch(r"[0-9]{13,19}", number) or not luhn_ok(number):
        raise PayPalError.of("INVALID_PARAMETER_SYNTAX", field=f"{field}/number")  # never echo the number
    if expiry is None:
        raise PayPalError.of("MISSING_REQUIRED_PARAMETER", field=f"{field}/expiry")
    if not isinstance(expiry, str) or not re.fullmatch(r"[0-9]{4}-(0[1-9]|1[0-2])", expiry):
        raise PayPalError.of("INVALID_PARAMETER_SYNTAX", field=f"{field}/expiry", value=str(expiry))
    if (int(expiry[:4]), int(expiry[5:])) < (today.year, today.month):
        raise PayPalError(422, "CARD_EXPIRED", field=f"{field}/expiry", value=expiry)
    code = card.get("security_code")
    if code is not None and (not isinstance(code, str) or not re.fullmatch(r"[0-9]{3,4}", code)):
        raise PayPalError.of("INVALID_PARAMETER_SYNTAX", field=f"{field}/security_code")
    view: dict[str, Any] = {}
    name = card.get("name")
    if isinstance(name, str):
        view["name"] = name
    view |= {"last_digits": number[-4:], "brand": card_brand(number), "expiry": expiry}
    if isinstance(card.get("billing_address"), dict):
        view["billing_address"] = card["billing_address"]
    return view, name if name in DECLINE_CODES else "approve"


def store_payment_token(
    app: PayPalApp,
    customer_id: str,
    kind: str,
    source: dict[str, Any],
    outcome: str,
) -> PaymentToken:
    token = PaymentToken(ids.payment_token_id(), customer_id, kind, source, app.now(), outcome)
    app.payment_tokens[token.id] = token
    app.emit(
        "VAULT.PAYMENT-TOKEN.CREATED",
        "payment_token",
        "A payment token has been created.",
        render.payment_token(app, token),
        resource_version="3.0",
    )
    return token


def _customer_id(body: dict[str, Any]) -> str:
    """The merchant's customer id from the request, or a new PayPal-generated one."""
    customer = body.get("customer")
    if customer is None:
        return ids.customer_id()
    if not isinstance(customer, dict):
        raise PayPalError.of("INVALID_PARAMETER_SYNTAX", field="/customer")
    value = customer.get("id")
    if value is None:
        return ids.customer_id()
    if not isinstance(value, str) or not _CUSTOMER_ID.match(value):
        raise PayPalError.of("INVALID_PARAMETER_SYNTAX", field="/customer/id", value=str(value))
    return value


def _single_source(body: dict[str, Any], allowed: tuple[str, ...]) -> tuple[str, Any]:
    source = body.get("payment_source")
    if source is None:
        raise PayPalError.of("MISSING_REQUIRED_PARAMETER", field="/payment_source")
    if not isinstance(source, dict) or not source:
        raise PayPalError.of("INVALID_PARAMETER_SYNTAX", field="/payment_source")
    if len(source) > 1:
        raise PayPalError(422, "ONLY_ONE_PAYMENT_SOURCE_ALLOWED", field="/payment_source")
    kind, value = next(iter(source.items()))
    if kind not in allowed:
        raise PayPalError.of("NOT_SUPPORTED", field=f"/payment_source/{kind}", description=f"{kind} is not supported.")
    return kind, value


class VaultAPI(PayPalApp):
    def _today(self) -> datetime.date:
        return datetime.datetime.fromtimestamp(self.now(), datetime.UTC).date()

    # -- setup tokens --------------------------------------------------------------------------
    @route("POST", r"/v3/vault/setup-tokens")
    def create_setup_token(self, request: EmulatorRequest) -> Reply:
        self.authenticate(request, VAULT_SETUP)
        body = self.json_body(request)

        def run() -> Reply:
            kind, source = _single_source(body, ("card", "paypal"))
            customer_id = _customer_id(body)
            context: dict[str, Any] = {}
            if kind == "card":
                view, outcome = card_source(source, "/payment_source/card", self._today())
                status = "APPROVED"
            else:
                source = source if isinstance(source, dict) else {}
                context = source.get("experience_context") or {}
                view = {k: v for k, v in source.items() if k != "experience_context"}
                view.setdefault("usage_type", "MERCHANT")
                view.setdefault("customer_type", "CONSUMER")
                status, outcome = "PAYER_ACTION_REQUIRED", "approve"
            token = SetupToken(ids.resource_id(), customer_id, status, kind, view, context, self.now(), outcome)
            with self.lock:
                self.setup_tokens[token.id] = token
                return Reply.json(201, render.setup_token(self, token))

        def replay(first: Reply) -> Reply:
            with self.lock:
                return Reply.json(200, render.setup_token(self, self.setup_tokens[json.loads(first.body)["id"]]))

        return self.once(request, run, replay)

    @route("GET", r"/v3/vault/setup-tokens/(?P<id>[^/]+)")
    def get_setup_token(self, request: EmulatorRequest) -> Reply:
        self.authenticate(request, VAULT_SETUP)
        with self.lock:
            token = self.setup_tokens.get(request.params["id"])
            if token is None:
                raise not_found("id", request.params["id"])
            return Reply.json(200, render.setup_token(self, token))

    @route("GET", r"/agreements/approve")
    @route("POST", r"/agreements/approve")
    def approve_setup_token(self, request: EmulatorRequest) -> Reply:
        """The buyer approving a PayPal-wallet setup token (`payer=` picks the test outcome)."""
        with self.lock:
            token, payer = buyer_visit(request, self.setup_tokens, "approval_session_id")
            if token.status != "PAYER_ACTION_REQUIRED":
                raise PayPalError(
                    422, "PAYER_ACTION_REQUIRED" if token.status == "CREATED" else "SETUP_TOKEN_ALREADY_TOKENIZED"
                )
            params = {"approval_token_id": token.id, "approval_session_id": token.id}
            if payer == "cancel":
                return redirect_or_json(
                    token.experience_context.get("cancel_url"), params, {"id": token.id, "status": token.status}
                )
            person = buyer()
            token.source |= {
                "email_address": person["email_address"],
                "payer_id": person["payer_id"],
                "name": person["name"],
                "address": person["address"],
            }
            token.status, token.outcome = "APPROVED", payer
            return redirect_or_json(
                token.experience_context.get("return_url"), params, {"id": token.id, "status": token.status}
            )

    # -- payment tokens ------------------------------------------------------------------------
    @route("POST", r"/v3/vault/payment-tokens")
    def create_payment_token(self, request: EmulatorRequest) -> Reply:
        self.authenticate(request, VAULT)
        body = self.json_body(request)

        def run() -> Reply:
            kind, source = _single_source(body, ("token", "card"))
            with self.lock:
                if kind == "card":
                    view, outcome = card_source(source, "/payment_source/card", self._today())
                    token = store_payment_token(self, _customer_id(body), "card", view, outcome)
                else:
                    token = self._exchange(source)
                return Reply.json(201, render.payment_token(self, token))

        def replay(first: Reply) -> Reply:
            with self.lock:
                token = self.payment_tokens.get(json.loads(first.body)["id"])
                if token is None:
                    raise not_found("id", json.loads(first.body)["id"])
                return Reply.json(200, render.payment_token(self, token))

        return self.once(request, run, replay)

    def _exchange(self, source: Any) -> PaymentToken:
        if not isinstance(source, dict) or source.get("id") is None:
            raise PayPalError.of("MISSING_REQUIRED_PARAMETER", field="/payment_source/token/id")
        if source.get("type") is None:
            raise PayPalError.of("MISSING_REQUIRED_PARAMETER", field="/payment_source/token/type")
        if source["type"] != "SETUP_TOKEN":
            raise PayPalError.of(
                "INVALID_PARAMETER_VALUE", field="/payment_source/token/type", value=str(source["type"])
            )
        setup = self.setup_tokens.get(str(source["id"]))
        if setup is None:
            raise not_found("/payment_source/token/id", str(source["id"]), location="body")
        if setup.status == "VAULTED":
            raise PayPalError(422, "SETUP_TOKEN_ALREADY_TOKENIZED")
        if setup.status != "APPROVED":
            raise PayPalError(
                422,
                "PAYER_ACTION_REQUIRED",
                description="Please make sure setup up token is approved. Please complete the approval flow.",
            )
        token = store_payment_token(self, setup.customer_id, setup.source_kind, dict(setup.source), setup.outcome)
        setup.status, setup.payment_token_id = "VAULTED", token.id
        return token

    @route("GET", r"/v3/vault/payment-tokens")
    def list_payment_tokens(self, request: EmulatorRequest) -> Reply:
        self.authenticate(request, VAULT)
        query = dict(request.query)
        customer_id = query.get("customer_id")
        if not customer_id:
            raise PayPalError.of("MISSING_REQUIRED_PARAMETER", field="customer_id", location="query")
        try:
            page_size, page = int(query.get("page_size", "5")), int(query.get("page", "1"))
        except ValueError:
            raise PayPalError.of("INVALID_PARAMETER_SYNTAX", field="page_size", location="query") from None
        if page_size < 1 or page < 1:
            raise PayPalError.of(
                "INVALID_PARAMETER_VALUE", field="page_size" if page_size < 1 else "page", location="query"
            )
        with self.lock:
            tokens = sorted(
                (t for t in self.payment_tokens.values() if t.customer_id == customer_id), key=lambda t: t.create_time
            )
            chunk = tokens[(page - 1) * page_size : page * page_size]
            view: dict[str, Any] = {
                "customer": {"id": customer_id},
                "payment_tokens": [render.payment_token(self, t) for t in chunk],
                "links": [render.link(self, f"/v3/vault/payment-tokens?customer_id={customer_id}&page={page}", "self")],
            }
        if query.get("total_required", "false").lower() == "true":
            view["total_items"] = len(tokens)
            view["total_pages"] = max(1, -(-len(tokens) // page_size))
        return Reply.json(200, view)

    @route("GET", r"/v3/vault/payment-tokens/(?P<id>[^/]+)")
    def get_payment_token(self, request: EmulatorRequest) -> Reply:
        self.authenticate(request, VAULT)
        with self.lock:
            token = self.payment_tokens.get(request.params["id"])
            if token is None:
                raise not_found("id", request.params["id"])
            return Reply.json(200, render.payment_token(self, token))

    @route("DELETE", r"/v3/vault/payment-tokens/(?P<id>[^/]+)")
    def delete_payment_token(self, request: EmulatorRequest) -> Reply:
        self.authenticate(request, VAULT)
        with self.lock:
            token = self.payment_tokens.pop(request.params["id"], None)
            if token is None:
                raise not_found("id", request.params["id"])
            self.emit(
                "VAULT.PAYMENT-TOKEN.DELETED",
                "payment_token",
                "A payment token has been deleted.",
                {"id": token.id, "links": [render.link(self, f"/v3/vault/payment-tokens/{token.id}", "self")]},
                resource_version="3.0",
            )
        return Reply(204)

    # -- test controls -------------------------------------------------------------------------
    def vault_card(self, name: str = "John Doe", customer_id: str | None = None, expiry: str = "2031-12") -> str:
        """Test control: vault a Visa ending 1111 without the setup-token round trip; its id.

        `name` may be one of PayPal's rejection triggers (CCREJECT-REFUSED, ...) to get a card
        whose captures are DECLINED.
        """
        view = {"name": name, "last_digits": "1111", "brand": "VISA", "expiry": expiry}
        outcome = name if name in DECLINE_CODES else "approve"
        with self.lock:
            return store_payment_token(self, customer_id or ids.customer_id(), "card", view, outcome).id

    def vault_paypal(self, payer: str = "approve", customer_id: str | None = None) -> str:
        """Test control: vault an approved PayPal wallet whose buyer behaves as `payer`; its id."""
        if payer not in APPROVAL_OUTCOMES or payer == "cancel":
            raise ValueError(f"payer must be one of {', '.join(o for o in APPROVAL_OUTCOMES if o != 'cancel')}")
        person = buyer()
        view = {
            "email_address": person["email_address"],
            "payer_id": person["payer_id"],
            "name": person["name"],
            "address": person["address"],
            "usage_type": "MERCHANT",
            "customer_type": "CONSUMER",
        }
        with self.lock:
            return store_payment_token(self, customer_id or ids.customer_id(), "paypal", view, payer).id
