"""The endpoints: one route per Stripe operation, each parsing its parameters against the
endpoint's table and handing them to the module that holds the rules.

`StripeRoutes` is mixed into `StripeEmulator`, which provides the state (`store`), the request's
context and the event sink; routes run under the emulator's lock.
"""

from __future__ import annotations

import hmac
import re
from collections.abc import Mapping
from typing import Any

from paywire.testing.emulator import EmulatorRequest, Reply, route
from paywire_stripe.emulator import (
    challenges,
    customers,
    payment_intents,
    payment_methods,
    refunds,
    search,
    setup_intents,
)
from paywire_stripe.emulator.errors import invalid_request
from paywire_stripe.emulator.form import decode
from paywire_stripe.emulator.params import UNSET, validate
from paywire_stripe.emulator.replies import html_page, json_reply
from paywire_stripe.emulator.store import Challenge, Context, Store, StripeObject, created_matches

__all__ = ["StripeRoutes"]

_NOT_SEARCH = r"(?!search$)[^/]+"


class StripeRoutes:
    """Stripe's endpoints (a mixin of `StripeEmulator`)."""

    store: Store

    def _context(self) -> Context:
        raise NotImplementedError

    def _emit(self, event_type: str, obj: StripeObject) -> None:
        raise NotImplementedError

    @staticmethod
    def _params(request: EmulatorRequest, endpoint: str) -> dict[str, Any]:
        pairs = request.form() if request.method == "POST" else list(request.query)
        if request.method == "DELETE" and request.body:
            pairs = pairs + request.form()
        return validate(endpoint, decode(pairs))

    def _one(self, obj: StripeObject, params: Mapping[str, Any], status: int = 200) -> Reply:
        return json_reply(status, self.store.render(obj, params.get("expand") or ()))

    def _list(self, kind: str, items: list[StripeObject], params: Mapping[str, Any], url: str) -> Reply:
        items = [item for item in items if created_matches(item, params.get("created"))]
        page, has_more = self.store.page(kind, items, params)
        return json_reply(200, self.store.render_list(page, url, has_more, params.get("expand") or ()))

    # -- PaymentIntents ------------------------------------------------------------------------------
    @route("POST", r"/v1/payment_intents")
    def create_payment_intent(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "payment_intents.create")
        return self._one(payment_intents.create(self._context(), params), params)

    @route("GET", r"/v1/payment_intents")
    def list_payment_intents(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "payment_intents.list")
        items = [
            pi
            for pi in self.store.payment_intents.values()
            if params.get("customer") in (None, UNSET) or pi["customer"] == params["customer"]
        ]
        return self._list("payment_intent", items, params, "/v1/payment_intents")

    @route("GET", r"/v1/payment_intents/search")
    def search_payment_intents(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "payment_intents.search")
        query = search.parse(params["query"] if params["query"] is not UNSET else "")
        matches = [pi for pi in reversed(self.store.payment_intents.values())
                   if self.store.searchable(pi) and query.matches(pi)]
        offset = 0
        if params.get("page") not in (None, UNSET):
            token = str(params["page"])
            if not re.fullmatch(r"page_\d+", token):
                raise invalid_request(f"Invalid page: {token}", param="page", saved=False)
            offset = int(token[5:])
        limit = params.get("limit") or 10
        page = matches[offset : offset + limit]
        more = len(matches) > offset + limit
        result = self.store.render_list(
            page,
            "/v1/payment_intents/search",
            more,
            params.get("expand") or (),
            search=True,
            next_page=f"page_{offset + limit}" if more else None,
        )
        return json_reply(200, result)

    def _payment_intent(self, request: EmulatorRequest) -> StripeObject:
        return self.store.get("payment_intent", request.params["intent"], "intent")

    @route("GET", rf"/v1/payment_intents/(?P<intent>{_NOT_SEARCH})")
    def retrieve_payment_intent(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "payment_intents.retrieve")
        intent = self._payment_intent(request)
        secret = params.get("client_secret")
        if secret not in (None, UNSET) and not hmac.compare_digest(str(secret), intent["client_secret"]):
            raise invalid_request(
                "The client_secret provided does not match the client_secret associated with the PaymentIntent.",
                param="client_secret",
            )
        return self._one(intent, params)

    @route("POST", rf"/v1/payment_intents/(?P<intent>{_NOT_SEARCH})")
    def update_payment_intent(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "payment_intents.update")
        return self._one(payment_intents.update(self._context(), self._payment_intent(request), params), params)

    @route("POST", r"/v1/payment_intents/(?P<intent>[^/]+)/confirm")
    def confirm_payment_intent(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "payment_intents.confirm")
        return self._one(payment_intents.confirm(self._context(), self._payment_intent(request), params), params)

    @route("POST", r"/v1/payment_intents/(?P<intent>[^/]+)/capture")
    def capture_payment_intent(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "payment_intents.capture")
        return self._one(payment_intents.capture(self._context(), self._payment_intent(request), params), params)

    @route("POST", r"/v1/payment_intents/(?P<intent>[^/]+)/cancel")
    def cancel_payment_intent(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "payment_intents.cancel")
        return self._one(payment_intents.cancel(self._context(), self._payment_intent(request), params), params)

    # -- Refunds and charges -------------------------------------------------------------------------
    @route("POST", r"/v1/refunds")
    def create_refund(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "refunds.create")
        return self._one(refunds.create(self._context(), params), params)

    @route("GET", r"/v1/refunds")
    def list_refunds(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "refunds.list")
        items = [
            r
            for r in self.store.refunds.values()
            if params.get("charge") in (None, UNSET) or r["charge"] == params["charge"]
        ]
        items = [
            r
            for r in items
            if params.get("payment_intent") in (None, UNSET) or r["payment_intent"] == params["payment_intent"]
        ]
        return self._list("refund", items, params, "/v1/refunds")

    @route("GET", r"/v1/refunds/(?P<refund>[^/]+)")
    def retrieve_refund(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "refunds.retrieve")
        return self._one(self.store.get("refund", request.params["refund"], "refund"), params)

    @route("POST", r"/v1/refunds/(?P<refund>[^/]+)")
    def update_refund(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "refunds.update")
        refund = self.store.get("refund", request.params["refund"], "refund")
        return self._one(refunds.update(self._context(), refund, params), params)

    @route("GET", r"/v1/charges")
    def list_charges(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "charges.list")
        items = [
            c
            for c in self.store.charges.values()
            if all(
                params.get(name) in (None, UNSET) or c[name] == params[name]
                for name in ("customer", "payment_intent", "transfer_group")
            )
        ]
        return self._list("charge", items, params, "/v1/charges")

    @route("GET", r"/v1/charges/(?P<charge>[^/]+)")
    def retrieve_charge(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "charges.retrieve")
        return self._one(self.store.get("charge", request.params["charge"], "charge"), params)

    # -- Customers -----------------------------------------------------------------------------------
    @route("POST", r"/v1/customers")
    def create_customer(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "customers.create")
        return self._one(customers.create(self._context(), params), params)

    @route("GET", r"/v1/customers")
    def list_customers(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "customers.list")
        items = [
            c
            for c in self.store.customers.values()
            if not c.get("deleted") and (params.get("email") in (None, UNSET) or c["email"] == params["email"])
        ]
        return self._list("customer", items, params, "/v1/customers")

    @route("GET", r"/v1/customers/(?P<customer>[^/]+)")
    def retrieve_customer(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "customers.retrieve")
        customer = self.store.customers.get(request.params["customer"])
        if customer is None:
            self.store.get("customer", request.params["customer"], "customer")
        assert customer is not None
        return self._one(customer, params)

    @route("POST", r"/v1/customers/(?P<customer>[^/]+)")
    def update_customer(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "customers.update")
        customer = self.store.get("customer", request.params["customer"], "customer")
        return self._one(customers.update(self._context(), customer, params), params)

    @route("DELETE", r"/v1/customers/(?P<customer>[^/]+)")
    def delete_customer(self, request: EmulatorRequest) -> Reply:
        self._params(request, "customers.delete")
        customer = self.store.get("customer", request.params["customer"], "customer")
        return json_reply(200, customers.delete(self._context(), customer))

    @route("GET", r"/v1/customers/(?P<customer>[^/]+)/payment_methods")
    def list_customer_payment_methods(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "customers.payment_methods")
        customer = self.store.get("customer", request.params["customer"], "customer")
        return self._payment_method_list(customer["id"], params, f"/v1/customers/{customer['id']}/payment_methods")

    def _payment_method_list(self, customer: str | None, params: Mapping[str, Any], url: str) -> Reply:
        items = [
            pm
            for pm in self.store.payment_methods.values()
            if (pm["customer"] == customer if customer else pm["customer"] is not None)
            and params.get("type") in (None, UNSET, pm["type"])
        ]
        return self._list("payment_method", items, params, url)

    # -- PaymentMethods ------------------------------------------------------------------------------
    @route("POST", r"/v1/payment_methods")
    def create_payment_method(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "payment_methods.create")
        return self._one(payment_methods.create(self._context(), params), params)

    @route("GET", r"/v1/payment_methods")
    def list_payment_methods(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "payment_methods.list")
        customer = params.get("customer")
        if customer not in (None, UNSET):
            self.store.get("customer", str(customer), "customer")
        return self._payment_method_list(customer if isinstance(customer, str) else None, params, "/v1/payment_methods")

    @route("GET", r"/v1/payment_methods/(?P<payment_method>[^/]+)")
    def retrieve_payment_method(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "payment_methods.retrieve")
        pm = payment_methods.resolve(self._context(), request.params["payment_method"])
        return self._one(pm, params)

    @route("POST", r"/v1/payment_methods/(?P<payment_method>[^/]+)")
    def update_payment_method(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "payment_methods.update")
        pm = self.store.get("payment_method", request.params["payment_method"], "payment_method", label="PaymentMethod")
        if "metadata" in params:
            pm["metadata"] = customers.merge_metadata(pm["metadata"], params["metadata"])
        if isinstance(params.get("billing_details"), dict):
            current = pm["billing_details"]
            merged = {**current, **{k: v for k, v in params["billing_details"].items() if k != "address"}}
            merged["address"] = {**current["address"], **(params["billing_details"].get("address") or {})}
            pm["billing_details"] = payment_methods.billing_details(merged)
        if isinstance(params.get("card"), dict):
            pm["card"].update({k: v for k, v in params["card"].items() if k in ("exp_month", "exp_year")})
        if params.get("allow_redisplay") not in (None, UNSET):
            pm["allow_redisplay"] = params["allow_redisplay"]
        self._emit("payment_method.updated", pm)
        return self._one(pm, params)

    @route("POST", r"/v1/payment_methods/(?P<payment_method>[^/]+)/attach")
    def attach_payment_method(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "payment_methods.attach")
        pm = payment_methods.attach(self._context(), request.params["payment_method"], params["customer"])
        return self._one(pm, params)

    @route("POST", r"/v1/payment_methods/(?P<payment_method>[^/]+)/detach")
    def detach_payment_method(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "payment_methods.detach")
        return self._one(payment_methods.detach(self._context(), request.params["payment_method"]), params)

    # -- SetupIntents --------------------------------------------------------------------------------
    def _setup_intent(self, request: EmulatorRequest) -> StripeObject:
        return self.store.get("setup_intent", request.params["intent"], "intent", label="setupintent")

    @route("POST", r"/v1/setup_intents")
    def create_setup_intent(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "setup_intents.create")
        return self._one(setup_intents.create(self._context(), params), params)

    @route("GET", r"/v1/setup_intents")
    def list_setup_intents(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "setup_intents.list")
        items = [
            si
            for si in self.store.setup_intents.values()
            if all(
                params.get(name) in (None, UNSET) or si[name] == params[name] for name in ("customer", "payment_method")
            )
        ]
        return self._list("setup_intent", items, params, "/v1/setup_intents")

    @route("GET", r"/v1/setup_intents/(?P<intent>[^/]+)")
    def retrieve_setup_intent(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "setup_intents.retrieve")
        return self._one(self._setup_intent(request), params)

    @route("POST", r"/v1/setup_intents/(?P<intent>[^/]+)")
    def update_setup_intent(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "setup_intents.update")
        return self._one(setup_intents.update(self._context(), self._setup_intent(request), params), params)

    @route("POST", r"/v1/setup_intents/(?P<intent>[^/]+)/confirm")
    def confirm_setup_intent(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "setup_intents.confirm")
        return self._one(setup_intents.confirm(self._context(), self._setup_intent(request), params), params)

    @route("POST", r"/v1/setup_intents/(?P<intent>[^/]+)/cancel")
    def cancel_setup_intent(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "setup_intents.cancel")
        return self._one(setup_intents.cancel(self._context(), self._setup_intent(request), params), params)

    # -- Events --------------------------------------------------------------------------------------
    @route("GET", r"/v1/events")
    def list_events(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "events.list")
        wanted = set(params.get("types") or ()) | (
            {params["type"]} if params.get("type") not in (None, UNSET) else set()
        )
        items = [e for e in self.store.events.values() if not wanted or _type_matches(e["type"], wanted)]
        if params.get("delivery_success") is not None:
            items = [e for e in items if (e["pending_webhooks"] == 0) == params["delivery_success"]]
        return self._list("event", items, params, "/v1/events")

    @route("GET", r"/v1/events/(?P<id>[^/]+)")
    def retrieve_event(self, request: EmulatorRequest) -> Reply:
        params = self._params(request, "events.retrieve")
        return self._one(self.store.get("event", request.params["id"], "id"), params)

    # -- 3-D Secure ----------------------------------------------------------------------------------
    @route("GET", r"/redirect/authenticate/(?P<challenge>[^/]+)")
    def challenge_get(self, request: EmulatorRequest) -> Reply:
        return self._challenge(request, dict(request.query))

    @route("POST", r"/redirect/authenticate/(?P<challenge>[^/]+)")
    def challenge_post(self, request: EmulatorRequest) -> Reply:
        return self._challenge(request, {**dict(request.query), **dict(request.form())})

    def _challenge(self, request: EmulatorRequest, fields: Mapping[str, str]) -> Reply:
        challenge = self.store.challenges.get(request.params["challenge"])
        secret = fields.get("client_secret", "")
        if challenge is None or not hmac.compare_digest(secret.encode(), challenge.secret.encode()):
            return html_page(404, "Unknown authentication", "This 3-D Secure challenge does not exist.")
        if challenge.outcome is None:
            succeed = fields.get("outcome", "").lower() not in challenges.FAIL_OUTCOMES
            self._finish_challenge(challenge, succeed, self._context())
        if challenge.outcome is None:
            return html_page(
                409, "Authentication no longer pending", "This payment is no longer waiting for 3-D Secure."
            )
        intent = self.store.collection(challenge.kind)[challenge.intent]
        location = challenges.return_location(challenge, intent)
        if location:
            return Reply(302, b"", {"Location": location})
        return html_page(
            200, f"Authentication {challenge.outcome}", f"3-D Secure {challenge.outcome} for {intent['id']}."
        )

    def _finish_challenge(self, challenge: Challenge, succeed: bool, ctx: Context) -> None:
        module = payment_intents if challenge.kind == "payment_intent" else setup_intents
        module.complete_challenge(ctx, challenge, succeed)


def _type_matches(event_type: str, wanted: set[str]) -> bool:
    return any(event_type == w or (w.endswith(".*") and event_type.startswith(w[:-1])) for w in wanted)
