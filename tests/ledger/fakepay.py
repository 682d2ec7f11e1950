"""FakePay: a small stateful provider (emulator over real HTTP) and its gateway plugin, built only
on paywire's public API, for testing the payment service against any-provider behaviour.

The emulator keeps real state (authorized, captured, refunded per payment; captures and refunds
as objects), enforces the limits a provider enforces, deduplicates by Idempotency-Key through
`IdempotencyStore`, and counts every operation it applied, so tests can prove nothing was
charged twice.

Test tokens: `tok_ok` succeeds, `tok_decline` is declined, `tok_3ds` needs buyer action
(declined when vaulted, i.e. off-session).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
from collections.abc import Callable, Mapping
from typing import Any

from paywire import (
    JSON,
    BearerAuth,
    BuyerAction,
    Capabilities,
    CommandPool,
    Declined,
    ErrorMapper,
    ErrorRule,
    Gateway,
    GatewayCommand,
    GatewayDefinition,
    GatewaySettings,
    HandlerChain,
    IdempotencyConflict,
    MethodConfig,
    Money,
    Plugins,
    ProviderState,
    Response,
    Result,
    Retry,
    Subject,
    TransferFactory,
    ValidatorComposite,
    WebhookEvent,
    WebhookVerificationError,
    hookimpl,
)
from paywire.testing.emulator import EmulatorApp, EmulatorRequest, Reply, route

API_KEY = "fk_test_ledgerkey123"
WEBHOOK_SECRET = "fkwh_ledgersecret456"

# -- the emulator ---------------------------------------------------------------------------------


class FakePayApp(EmulatorApp):
    def __init__(self) -> None:
        super().__init__()
        self.payments: dict[str, dict[str, Any]] = {}
        self.captures: dict[str, dict[str, Any]] = {}
        self.refunds: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, str] = {}  # creation idempotency key -> payment id
        self.vaulted: dict[str, str] = {}
        self.applied: list[tuple[str, str, int]] = []  # (operation, payment id, amount) actually applied
        self.refusals: list[tuple[str, str]] = []  # (code, path) of operations the provider refused
        self._ids = itertools.count(1)

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    # -- helpers ---------------------------------------------------------------------------------
    def error(self, status: int, code: str, message: str) -> Reply:
        self.refusals.append((code, message))
        return Reply.json(status, {"error": {"code": code, "message": message}})

    def view(self, payment: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in payment.items() if not k.startswith("_")}

    def idempotent(self, request: EmulatorRequest, operation: Callable[[], Reply]) -> Reply:
        key = request.header("idempotency-key")
        if not key:
            with self.lock:
                return operation()
        fingerprint = hashlib.sha256(request.body).hexdigest()
        scope = f"{request.method} {request.path}"
        verdict, stored = self.idempotency.begin(scope, key, fingerprint)
        if verdict == "replay":
            assert stored is not None
            return stored
        if verdict == "conflict":
            return self.error(409, "idempotency_conflict", "key reused with different parameters")
        if verdict == "in_flight":
            return self.error(409, "idempotency_in_flight", "a request with this key is in progress")
        try:
            with self.lock:
                reply = operation()
        except BaseException:
            self.idempotency.abandon(scope, key)
            raise
        self.idempotency.finish(scope, key, reply)
        return reply

    # -- routes ----------------------------------------------------------------------------------
    @route("POST", "/v1/payments")
    def create(self, request: EmulatorRequest) -> Reply:
        data = request.json()
        key = request.header("idempotency-key")

        def run() -> Reply:
            source = data.get("source")
            if source == "tok_decline" or (source == "tok_3ds" and data.get("vaulted")):
                code = "card_declined" if source == "tok_decline" else "authentication_required"
                return Reply.json(402, {"error": {"code": code, "message": "The card was declined.",
                                                  "decline_code": "generic_decline"}})
            pid = self._id("fp")
            amount = int(data["amount"])
            payment: dict[str, Any] = {
                "id": pid, "amount": amount, "currency": data["currency"], "status": "requires_action",
                "capture": bool(data.get("capture")), "authorized": 0, "captured": 0, "refunded": 0,
                "closed": False, "order_id": data.get("order_id"), "captures": [],
            }
            self.payments[pid] = payment
            if key:
                self.by_key[key] = pid
            if source == "tok_3ds":
                payment["next_action"] = {"redirect_url": f"https://fakepay.example/3ds/{pid}",
                                          "return_url": data.get("return_url")}
                return Reply.json(200, self.view(payment))
            self._establish(payment)
            return Reply.json(200, self.view(payment))

        return self.idempotent(request, run)

    def _establish(self, payment: dict[str, Any]) -> None:
        payment.pop("next_action", None)
        payment["authorized"] = payment["amount"]
        self.applied.append(("authorize", payment["id"], payment["amount"]))
        if payment["capture"]:
            cap = self._capture(payment, payment["amount"], final=True)
            payment["capture_id"] = cap["id"]
        else:
            payment["status"] = "authorized"

    def _capture(self, payment: dict[str, Any], amount: int, *, final: bool) -> dict[str, Any]:
        cap = {"id": self._id("cap"), "payment": payment["id"], "amount": amount, "refunded": 0}
        self.captures[cap["id"]] = cap
        payment["captures"].append(cap["id"])
        payment["captured"] += amount
        payment["closed"] = payment["closed"] or final or payment["captured"] >= payment["authorized"]
        self._restate(payment)
        self.applied.append(("capture", payment["id"], amount))
        return cap

    @staticmethod
    def _restate(payment: dict[str, Any]) -> None:
        if payment["refunded"]:
            full = payment["refunded"] >= payment["captured"] and payment["closed"]
            payment["status"] = "refunded" if full else "partially_refunded"
        elif payment["captured"]:
            payment["status"] = "captured" if payment["closed"] else "partially_captured"

    def _payment(self, request: EmulatorRequest) -> dict[str, Any] | None:
        return self.payments.get(request.params["id"])

    @route("POST", "/v1/payments/(?P<id>[^/]+)/complete")
    def complete(self, request: EmulatorRequest) -> Reply:
        def run() -> Reply:
            payment = self._payment(request)
            if payment is None:
                return self.error(404, "not_found", "no such payment")
            if payment["status"] != "requires_action":
                return self.error(400, "invalid_state", f"payment is {payment['status']}")
            self._establish(payment)
            return Reply.json(200, self.view(payment))

        return self.idempotent(request, run)

    @route("POST", "/v1/payments/(?P<id>[^/]+)/captures")
    def capture(self, request: EmulatorRequest) -> Reply:
        data = request.json()

        def run() -> Reply:
            payment = self._payment(request)
            if payment is None:
                return self.error(404, "not_found", "no such payment")
            if payment["status"] in ("requires_action", "voided") or payment["closed"]:
                return self.error(400, "invalid_state", f"payment is {payment['status']}")
            amount = int(data["amount"])
            if amount <= 0 or amount > payment["authorized"] - payment["captured"]:
                return self.error(400, "amount_too_large", "capture exceeds the authorization")
            cap = self._capture(payment, amount, final=bool(data.get("final", True)))
            return Reply.json(200, {"id": cap["id"], "amount": amount, "currency": payment["currency"],
                                    "payment": payment["id"]})

        return self.idempotent(request, run)

    @route("POST", "/v1/payments/(?P<id>[^/]+)/void")
    def void(self, request: EmulatorRequest) -> Reply:
        def run() -> Reply:
            payment = self._payment(request)
            if payment is None:
                return self.error(404, "not_found", "no such payment")
            if payment["status"] != "authorized" or payment["captured"]:
                return self.error(400, "invalid_state", f"payment is {payment['status']}")
            payment["status"] = "voided"
            payment["closed"] = True
            self.applied.append(("void", payment["id"], 0))
            return Reply.json(200, self.view(payment))

        return self.idempotent(request, run)

    @route("POST", "/v1/captures/(?P<id>[^/]+)/refunds")
    def refund(self, request: EmulatorRequest) -> Reply:
        data = request.json()

        def run() -> Reply:
            cap = self.captures.get(request.params["id"])
            if cap is None:
                return self.error(404, "not_found", "no such capture")
            amount = int(data["amount"])
            if amount <= 0 or amount > cap["amount"] - cap["refunded"]:
                return self.error(400, "amount_too_large", "refund exceeds the capture")
            payment = self.payments[cap["payment"]]
            cap["refunded"] += amount
            payment["refunded"] += amount
            self._restate(payment)
            refund = {"id": self._id("re"), "amount": amount, "capture": cap["id"], "payment": payment["id"]}
            self.refunds[refund["id"]] = refund
            self.applied.append(("refund", payment["id"], amount))
            return Reply.json(200, {**refund, "currency": payment["currency"]})

        return self.idempotent(request, run)

    @route("GET", "/v1/payments/(?P<id>[^/]+)")
    def get(self, request: EmulatorRequest) -> Reply:
        with self.lock:
            payment = self._payment(request)
            if payment is None:
                return self.error(404, "not_found", "no such payment")
            return Reply.json(200, self.view(payment))

    @route("GET", "/v1/payments")
    def search(self, request: EmulatorRequest) -> Reply:
        key = dict(request.query).get("idempotency_key", "")
        with self.lock:
            pid = self.by_key.get(key)
            if pid is None:
                return self.error(404, "not_found", "no payment made with this key")
            return Reply.json(200, self.view(self.payments[pid]))

    @route("POST", "/v1/vault")
    def vault(self, request: EmulatorRequest) -> Reply:
        data = request.json()

        def run() -> Reply:
            token = self._id("vt")
            self.vaulted[token] = data["source"]
            self.applied.append(("vault", token, 0))
            return Reply.json(200, {"token": token, "customer": data.get("customer") or self._id("cus")})

        return self.idempotent(request, run)

    @route("DELETE", "/v1/vault/(?P<id>[^/]+)")
    def unvault(self, request: EmulatorRequest) -> Reply:
        with self.lock:
            if self.vaulted.pop(request.params["id"], None) is None:
                return self.error(404, "not_found", "no such token")
            return Reply.json(200, {"deleted": True})

    # -- test helpers ----------------------------------------------------------------------------
    def buyer_completes(self, pid: str) -> None:
        """The buyer passes 3-D Secure on the provider's page (no API call from the shop)."""
        with self.lock:
            self._establish(self.payments[pid])

    def totals(self, pid: str) -> tuple[int, int, int]:
        with self.lock:
            p = self.payments[pid]
            return p["authorized"], p["captured"], p["refunded"]

    def count(self, operation: str, pid: str | None = None) -> int:
        with self.lock:
            return sum(1 for op, owner, _ in self.applied if op == operation and (pid is None or owner == pid))

    def event(self, event_id: str, kind: str, reference: str, *, amount: int | None = None,
              total: int | None = None, currency: str = "EUR", references: Mapping[str, str] | None = None,
              secret: str = WEBHOOK_SECRET) -> tuple[dict[str, str], bytes]:
        """A signed webhook delivery (headers, raw body)."""
        body = json.dumps({"id": event_id, "type": f"payment.{kind}", "kind": kind, "reference": reference,
                           "references": dict(references or {}), "amount": amount, "total": total,
                           "currency": currency}).encode()
        signature = hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()
        return {"FakePay-Signature": signature, "Content-Type": "application/json"}, body


# -- the plugin -----------------------------------------------------------------------------------
def _answered_ok(subject: Subject, response: Response) -> Result:
    if response.ok:
        return Result.success()
    error = (response.data or {}).get("error", {}) if isinstance(response.data, dict) else {}
    return Result.failure(error.get("message", f"HTTP {response.status}"), error.get("code", "http_error"))


def _fetch_ok(subject: Subject, response: Response) -> Result:
    return Result.success() if response.ok or response.status == 404 else _answered_ok(subject, response)


_STATES = {
    "requires_action": ProviderState.ACTION_REQUIRED, "authorized": ProviderState.AUTHORIZED,
    "partially_captured": ProviderState.PARTIALLY_CAPTURED, "captured": ProviderState.CAPTURED,
    "partially_refunded": ProviderState.PARTIALLY_REFUNDED, "refunded": ProviderState.REFUNDED,
    "voided": ProviderState.VOIDED,
}


def _payment_result(subject: Subject, response: Response) -> dict[str, Any]:
    data = response.data
    currency = data["currency"]
    references = {"payment": data["id"]}
    if data.get("captures"):
        references["capture"] = data["captures"][-1]
    result: dict[str, Any] = {
        "references": references, "state": _STATES[data["status"]],
        "amount": Money(data["amount"], currency), "authorized": Money(data["authorized"], currency),
        "captured": Money(data["captured"], currency), "refunded": Money(data["refunded"], currency),
        "reference": data.get("capture_id") or data["id"],
    }
    if data["status"] == "requires_action":
        action = data["next_action"]
        result.update(status="action_required", reference=data["id"],
                      action=BuyerAction(action["redirect_url"], action.get("return_url")))
    return result


def _fetch_result(subject: Subject, response: Response) -> dict[str, Any]:
    if response.status == 404:
        return {"state": ProviderState.NOT_FOUND}
    return _payment_result(subject, response)


def _object_result(subject: Subject, response: Response) -> dict[str, Any]:
    data = response.data
    return {"reference": data["id"], "amount": Money(data["amount"], data["currency"])}


def build_commands(settings: GatewaySettings) -> CommandPool:
    auth = BearerAuth(settings.secret("api_key"))
    table = ErrorMapper(settings.provider, rules={
        "card_declined": ErrorRule(Declined), "authentication_required": ErrorRule(Declined),
        "idempotency_in_flight": ErrorRule(IdempotencyConflict, retryable=True),
    })

    def mapper(subject: Subject, response: Response, result: Result) -> Any:
        error = table(subject, response, result)
        if isinstance(error, Declined) and isinstance(response.data, dict):
            error.decline_code = response.data.get("error", {}).get("decline_code")
        return error
    validator = ValidatorComposite([_answered_ok])

    def command(method: str, path: str | Callable[[Subject], str], builder: Callable[[Subject], Any],
                handler: Callable[[Subject, Response], Any], check: Any = validator) -> GatewayCommand:
        return GatewayCommand(
            builder=[builder],
            transfer_factory=TransferFactory(settings.base_url, method, path, auth=auth, converter=JSON,
                                             idempotency_header="Idempotency-Key", timeout=settings.timeout),
            validator=check, error_mapper=mapper, handler=HandlerChain([handler]),
        )

    def create(capture: bool) -> Callable[[Subject], Any]:
        def build(s: Subject) -> dict[str, Any]:
            assert s.amount is not None
            return {"amount": s.amount.minor, "currency": s.amount.currency, "source": s.source, "capture": capture,
                    "vaulted": s.vaulted, "return_url": s.return_url, "order_id": s.order.id if s.order else None,
                    "customer": s.buyer.reference if s.buyer else None, "metadata": dict(s.metadata)}
        return build

    def amount(s: Subject) -> dict[str, Any]:
        assert s.amount is not None
        return {"amount": s.amount.minor, "final": s.final}

    def fetch_path(s: Subject) -> str:
        return f"/v1/payments/{s.reference}" if s.reference else "/v1/payments"

    def fetch_query(s: Subject) -> dict[str, Any]:
        return {} if s.reference else {"idempotency_key": s.idempotency_key}

    return CommandPool({
        "authorize": command("POST", "/v1/payments", create(False), _payment_result),
        "sale": command("POST", "/v1/payments", create(True), _payment_result),
        "complete": command("POST", "/v1/payments/{reference}/complete", lambda s: {}, _payment_result),
        "capture": command("POST", "/v1/payments/{reference}/captures", amount, _object_result),
        "void": command("POST", "/v1/payments/{reference}/void", lambda s: {"reason": s.reason},
                        lambda s, r: {"reference": r.data["id"], "state": ProviderState.VOIDED}),
        "refund": command("POST", "/v1/captures/{reference}/refunds", amount, _object_result),
        "fetch": command("GET", fetch_path, fetch_query, _fetch_result, ValidatorComposite([_fetch_ok])),
        "vault": command("POST", "/v1/vault", lambda s: {"source": s.source,
                                                         "customer": s.buyer.reference if s.buyer else None},
                         lambda s, r: {"token": r.data["token"], "reference": r.data["customer"],
                                       "references": {"customer": r.data["customer"]}}),
        "unvault": command("DELETE", "/v1/vault/{source}", lambda s: {}, lambda s, r: {}),
    }, gateway=settings.gateway)


def build_verifier(settings: GatewaySettings) -> Callable[[Mapping[str, str], bytes], WebhookEvent]:
    secret = settings.secret("webhook_secret").reveal().encode()

    def verify(headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        expected = hmac.new(secret, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(headers.get("fakepay-signature", ""), expected):
            raise WebhookVerificationError("bad FakePay signature", provider=settings.provider)
        try:
            data = json.loads(body)
            currency = data["currency"]
            return WebhookEvent(
                provider=settings.provider, id=data["id"], type=data["type"], kind=data["kind"],
                reference=data["reference"], references=data.get("references") or {},
                amount=Money(data["amount"], currency) if data.get("amount") is not None else None,
                total=Money(data["total"], currency) if data.get("total") is not None else None,
            )
        except (ValueError, KeyError, TypeError) as exc:
            raise WebhookVerificationError(f"malformed FakePay event: {exc}", provider=settings.provider) from exc

    return verify


FAKEPAY = GatewayDefinition(
    code="fakepay", title="FakePay", build=build_commands,
    capabilities=Capabilities(capture_multiple=True, vault=True, buyer_action=True, webhooks=True),
    endpoints={"sandbox": "http://127.0.0.1:9"}, secrets=("api_key", "webhook_secret"), webhook=build_verifier,
)


class FakePayPlugin:
    @hookimpl
    def register_gateways(self, register: Callable[[GatewayDefinition], None]) -> None:
        register(FAKEPAY)


# Method codes: "fakepay" can do everything; "fakepay_single" captures and refunds once, in full.
SINGLE = {"capture_multiple": False, "capture_partial": False, "refund_multiple": False, "refund_partial": False}


def make_gateway(url: str, *, retry: Retry | None = None, extra: list[object] | None = None,
                 read_timeout: float = 10.0) -> Gateway:
    plugins = Plugins()
    plugins.register(FakePayPlugin(), "fakepay")
    for index, plugin in enumerate(extra or ()):
        plugins.register(plugin, f"extra{index}")
    credentials = {"api_key": API_KEY, "webhook_secret": WEBHOOK_SECRET}
    methods = [
        MethodConfig(code="fakepay", base_url=url, credentials=credentials, read_timeout=read_timeout),
        MethodConfig(code="fakepay_single", provider="fakepay", base_url=url, credentials=credentials,
                     capabilities=SINGLE, read_timeout=read_timeout),
    ]
    return Gateway(methods, plugins=plugins, retry=retry or Retry.never())
