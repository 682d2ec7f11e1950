"""FakePay: a small stateful provider (emulator over real HTTP) and its gateway plugin, built only
on paywire's public API, for testing the payment service against any-provider behaviour.

The emulator keeps real state (authorized, captured, refunded per payment; captures and refunds
as objects with their status and the idempotency key they were made with), enforces the limits a
provider enforces, deduplicates by Idempotency-Key through `IdempotencyStore`, counts every
operation it applied (so tests can prove nothing was charged twice), and emits a signed webhook
event for everything that moves money (`outbox`; also POSTed to `webhook_url` when set).

Test tokens: `tok_ok` succeeds, `tok_decline` is declined, `tok_3ds` needs buyer action
(declined when vaulted, i.e. off-session), `tok_pending` is accepted and decided later (the
payment answers "processing"), `tok_async` authorizes at once but every capture and refund on the
payment is accepted and decided later (answered "pending"), `tok_partial` is a prepaid card with
less balance: the bank authorizes half of what is asked, at least one minor unit (a partial
authorization; the payment's `amount` stays what was asked, its `authorized` says what is held, and
answers report that as the operation's amount), `tok_partial_capture` authorizes in full but the
issuer honours half of each capture, at least one minor unit (answered at once with what was
captured). `decide(object id, succeed)` is the
provider making up its mind: it settles the payment, capture or refund and emits the event.

FakePay's documented error semantics: an HTTP 503 with error code `not_processed` (maintenance)
means the request was refused before any processing and was not applied; any other 5xx may come
after the operation took effect.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import re
import threading
from collections.abc import Callable, Generator, Mapping
from typing import Any

import attrs

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
    ProviderOperation,
    ProviderState,
    ProviderUnavailable,
    Response,
    Result,
    Retry,
    StateError,
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
        self.outbox: list[tuple[dict[str, str], bytes]] = []  # every signed event the provider emitted
        self.inflight = 0  # requests received and not yet answered (a late one may still land)
        # False: a reading lists no captures or refunds, only the payment's running totals (a
        # provider whose fetch lists no operations): what reconciliation learns then is those totals.
        self.lists_operations = True
        self.received = 0  # requests received in all (a sent one not yet read is not counted)
        self._not_processed = 0
        self._late: list[tuple[str, str, threading.Event]] = []  # (method, path pattern, landing)
        self._ids = itertools.count(1)
        self._events = itertools.count(1)

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{next(self._ids):06d}"

    # -- provider-wide behaviour -------------------------------------------------------------------
    def answer(self, request: EmulatorRequest) -> tuple[Reply | None, bool]:
        with self.lock:
            self.inflight += 1
            self.received += 1
        try:
            return super().answer(request)
        finally:
            with self.lock:
                self.inflight -= 1

    def dispatch(self, request: EmulatorRequest) -> tuple[Reply | None, bool]:
        if not request.path.startswith("/_paywire/"):
            with self.lock:
                late = next((entry for entry in self._late
                             if entry[0] == request.method and re.search(entry[1], request.path)), None)
                if late is not None:
                    self._late.remove(late)
            if late is not None:
                late[2].wait(self.HOLD_LIMIT)
            with self.lock:
                refuse = self._not_processed > 0
                if refuse:
                    self._not_processed -= 1
            if refuse:  # documented: refused before processing, nothing applied
                return Reply.json(503, {"error": {"code": "not_processed", "message": "FakePay is in maintenance; "
                                                  "the request was not processed"}}), False
        return super().dispatch(request)

    def arriving_late(self, method: str, path: str) -> threading.Event:
        """The next `method` request whose path matches `path` waits, before FakePay reads it,
        until the event returned is set: it lands after its client gave up on it however long
        the client took (a latency would race the client's read timeout on a loaded machine)."""
        landing = threading.Event()
        with self.lock:
            self._late.append((method, path, landing))
        return landing

    def not_processed(self, times: int = 1) -> None:
        """The next `times` API requests are refused before processing (503 `not_processed`)."""
        with self.lock:
            self._not_processed += times

    def lapse(self, payment_id: str) -> None:
        """The authorization lapsed (held too long): FakePay releases it, says nothing, and refuses
        a capture or void of it (400 `authorization_expired`)."""
        with self.lock:
            payment = self.payments[payment_id]
            assert payment["status"] == "authorized" and not payment["captured"]
            payment.update(status="voided", closed=True, _lapsed=True)

    def clear_faults(self) -> None:
        super().clear_faults()
        with self.lock:
            self._not_processed = 0

    # -- helpers ---------------------------------------------------------------------------------
    def error(self, status: int, code: str, message: str) -> Reply:
        self.refusals.append((code, message))
        return Reply.json(status, {"error": {"code": code, "message": message}})

    def view(self, payment: dict[str, Any]) -> dict[str, Any]:
        out = {k: v for k, v in payment.items() if not k.startswith("_")}
        # An operation made without a key (in the dashboard) is listed with "" for one: every
        # request of paywire's carries its key, so that is none of them (ProviderOperation).
        out["captures"] = [self._listed(self.captures[c]) for c in payment["_captures"]]
        out["refunds"] = [self._listed(self.refunds[r]) for r in payment["_refunds"]]
        out["operations_listed"] = self.lists_operations
        return out

    @classmethod
    def _listed(cls, obj: dict[str, Any]) -> dict[str, Any]:
        return {**cls._public(obj), "idempotency_key": obj.get("idempotency_key") or ""}

    @staticmethod
    def _public(obj: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in obj.items() if not k.startswith("_")}

    def emit(self, kind: str, reference: str, *, amount: int | None = None, currency: str = "EUR",
             references: Mapping[str, str] | None = None) -> tuple[dict[str, str], bytes]:
        """Emit a signed event as the provider does: kept in `outbox`, POSTed to `webhook_url`."""
        with self.lock:
            event = self.event(f"evt_{next(self._events):06d}", kind, reference, amount=amount, currency=currency,
                               references=references)
            self.outbox.append(event)
        self.deliver_webhook(event[1], event[0])
        return event

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
            self.hold_point(request)
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
                "closed": False, "order_id": data.get("order_id"), "idempotency_key": key,
                "_captures": [], "_refunds": [], "_async": source == "tok_async",
                "_held": max(1, amount // 2) if source == "tok_partial" else amount,
                "_half_captures": source == "tok_partial_capture",
            }
            self.payments[pid] = payment
            if key:
                self.by_key[key] = pid
            if source == "tok_3ds":
                payment["next_action"] = {"redirect_url": f"https://fakepay.example/3ds/{pid}",
                                          "return_url": data.get("return_url")}
                return Reply.json(200, self.view(payment))
            if source == "tok_pending":
                payment["status"] = "processing"
                return Reply.json(202, self.view(payment))
            self._establish(payment)
            return Reply.json(200, self.view(payment))

        return self.idempotent(request, run)

    def _establish(self, payment: dict[str, Any]) -> None:
        payment.pop("next_action", None)
        held = payment["authorized"] = payment["_held"]
        self.applied.append(("authorize", payment["id"], held))
        if payment["capture"]:
            cap = self._capture(payment, held, final=True, key=payment.get("idempotency_key"), emit=False)
            payment["capture_id"] = cap["id"]
            self.emit("captured", payment["id"], amount=held, currency=payment["currency"],
                      references={"payment": payment["id"], "capture": cap["id"]})
        else:
            payment["status"] = "authorized"
            self.emit("authorized", payment["id"], amount=held, currency=payment["currency"])

    def _capture(self, payment: dict[str, Any], amount: int, *, final: bool, key: str | None = None,
                 status: str = "succeeded", emit: bool = True) -> dict[str, Any]:
        cap = {"id": self._id("cap"), "payment": payment["id"], "amount": amount, "currency": payment["currency"],
               "status": status, "idempotency_key": key, "final": final, "refunded": 0, "_pending_refunds": 0}
        self.captures[cap["id"]] = cap
        payment["_captures"].append(cap["id"])
        if status == "succeeded":
            self._capture_succeeded(payment, cap, emit=emit)
        return cap

    def _capture_succeeded(self, payment: dict[str, Any], cap: dict[str, Any], *, emit: bool = True) -> None:
        cap["status"] = "succeeded"
        payment["captured"] += cap["amount"]
        payment["closed"] = payment["closed"] or cap["final"] or payment["captured"] >= payment["authorized"]
        self._restate(payment)
        self.applied.append(("capture", payment["id"], cap["amount"]))
        if emit:
            self.emit("captured", cap["id"], amount=cap["amount"], currency=payment["currency"],
                      references={"payment": payment["id"]})

    @staticmethod
    def _restate(payment: dict[str, Any]) -> None:
        if payment["refunded"]:
            full = payment["refunded"] >= payment["captured"] and payment["closed"]
            payment["status"] = "refunded" if full else "partially_refunded"
        elif payment["captured"]:
            payment["status"] = "captured" if payment["closed"] else "partially_captured"

    def _payment(self, request: EmulatorRequest) -> dict[str, Any] | None:
        return self.payments.get(request.params["id"])

    def _pending_captures(self, payment: dict[str, Any]) -> int:
        return sum(self.captures[c]["amount"] for c in payment["_captures"] if self.captures[c]["status"] == "pending")

    @route("POST", "/v1/payments/(?P<id>[^/]+)/complete")
    def complete(self, request: EmulatorRequest) -> Reply:
        def run() -> Reply:
            payment = self._payment(request)
            if payment is None:
                return self.error(404, "not_found", "no such payment")
            if payment["status"] != "requires_action":
                return self.error(400, "invalid_state", f"payment is {payment['status']}")
            payment["_returned_with"] = (request.json() or {}).get("redirect_result")
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
            if payment.get("_lapsed"):
                return self.error(400, "authorization_expired", "the authorization has expired")
            if payment["status"] in ("requires_action", "processing", "failed", "voided") or payment["closed"]:
                return self.error(400, "invalid_state", f"payment is {payment['status']}")
            amount = int(data["amount"])
            if amount <= 0 or amount > payment["authorized"] - payment["captured"] - self._pending_captures(payment):
                return self.error(400, "amount_too_large", "capture exceeds the authorization")
            status = "pending" if payment["_async"] else "succeeded"
            applied = max(1, amount // 2) if payment["_half_captures"] else amount
            cap = self._capture(payment, applied, final=bool(data.get("final", True)),
                                key=request.header("idempotency-key"), status=status)
            return Reply.json(202 if status == "pending" else 200, self._public(cap))

        return self.idempotent(request, run)

    @route("POST", "/v1/payments/(?P<id>[^/]+)/void")
    def void(self, request: EmulatorRequest) -> Reply:
        def run() -> Reply:
            payment = self._payment(request)
            if payment is None:
                return self.error(404, "not_found", "no such payment")
            if payment.get("_lapsed"):
                return self.error(400, "authorization_expired", "the authorization has expired")
            if payment["status"] != "authorized" or payment["captured"] or self._pending_captures(payment):
                return self.error(400, "invalid_state", f"payment is {payment['status']}")
            payment["status"] = "voided"
            payment["closed"] = True
            self.applied.append(("void", payment["id"], 0))
            self.emit("voided", payment["id"], currency=payment["currency"])
            return Reply.json(200, self.view(payment))

        return self.idempotent(request, run)

    @route("POST", "/v1/captures/(?P<id>[^/]+)/refunds")
    def refund(self, request: EmulatorRequest) -> Reply:
        data = request.json()

        def run() -> Reply:
            cap = self.captures.get(request.params["id"])
            if cap is None:
                return self.error(404, "not_found", "no such capture")
            if cap["status"] != "succeeded":
                return self.error(400, "invalid_state", f"capture is {cap['status']}")
            amount = int(data["amount"])
            if amount <= 0 or amount > cap["amount"] - cap["refunded"] - cap["_pending_refunds"]:
                return self.error(400, "amount_too_large", "refund exceeds the capture")
            payment = self.payments[cap["payment"]]
            refund = {"id": self._id("re"), "amount": amount, "currency": payment["currency"], "capture": cap["id"],
                      "payment": payment["id"], "status": "pending" if payment["_async"] else "succeeded",
                      "idempotency_key": request.header("idempotency-key")}
            self.refunds[refund["id"]] = refund
            payment["_refunds"].append(refund["id"])
            if refund["status"] == "pending":
                cap["_pending_refunds"] += amount
                return Reply.json(202, refund)
            self._refund_succeeded(payment, cap, refund)
            return Reply.json(200, refund)

        return self.idempotent(request, run)

    def _refund_succeeded(self, payment: dict[str, Any], cap: dict[str, Any], refund: dict[str, Any]) -> None:
        refund["status"] = "succeeded"
        cap["refunded"] += refund["amount"]
        payment["refunded"] += refund["amount"]
        self._restate(payment)
        self.applied.append(("refund", payment["id"], refund["amount"]))
        self.emit("refunded", refund["id"], amount=refund["amount"], currency=payment["currency"],
                  references={"capture": cap["id"], "payment": payment["id"]})

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

    def refund_beside(self, cap_id: str, amount: int | None = None, *, status: str = "succeeded",
                      emit: bool = False) -> str:
        """The capture refunded in the provider's dashboard (all of it by default), with no word to
        the ledger: the refund's id. Succeeded, its event emitted (not delivered) with `emit`; or
        held undecided (`status="pending"`), with no event yet."""
        with self.lock:
            cap = self.captures[cap_id]
            payment = self.payments[cap["payment"]]
            refund = {"id": self._id("re"), "amount": amount or cap["amount"], "currency": payment["currency"],
                      "capture": cap_id, "payment": payment["id"], "status": status, "idempotency_key": None}
            self.refunds[refund["id"]] = refund
            payment["_refunds"].append(refund["id"])
            if status == "pending":
                cap["_pending_refunds"] += refund["amount"]
            elif emit:
                self._refund_succeeded(payment, cap, refund)
            else:
                cap["refunded"] += refund["amount"]
                payment["refunded"] += refund["amount"]
                self._restate(payment)
            return str(refund["id"])

    def decide(self, object_id: str, *, succeed: bool = True,
               applied: int | None = None) -> tuple[dict[str, str], bytes]:
        """The provider decides an accepted payment (`tok_pending`), capture or refund (`tok_async`)
        and emits the signed event saying so; returns that event (headers, raw body). `applied`: a
        capture or refund that succeeds takes only that much (the bank honours part of it)."""
        with self.lock:
            before = len(self.outbox)
            if object_id in self.payments:
                payment = self.payments[object_id]
                assert payment["status"] == "processing", f"{object_id} is {payment['status']}, not processing"
                if succeed:
                    self._establish(payment)
                else:
                    payment["status"] = "failed"
                    payment["closed"] = True
                    self.emit("failed", object_id, currency=payment["currency"])
            elif object_id in self.captures:
                cap = self.captures[object_id]
                assert cap["status"] == "pending", f"{object_id} is {cap['status']}, not pending"
                payment = self.payments[cap["payment"]]
                if succeed:
                    cap["amount"] = cap["amount"] if applied is None else applied
                    self._capture_succeeded(payment, cap)
                else:
                    cap["status"] = "failed"
                    self.emit("failed", object_id, currency=payment["currency"], references={"payment": payment["id"]})
            else:
                refund = self.refunds[object_id]
                assert refund["status"] == "pending", f"{object_id} is {refund['status']}, not pending"
                cap = self.captures[refund["capture"]]
                payment = self.payments[refund["payment"]]
                cap["_pending_refunds"] -= refund["amount"]
                if succeed:
                    refund["amount"] = refund["amount"] if applied is None else applied
                    self._refund_succeeded(payment, cap, refund)
                else:
                    refund["status"] = "failed"
                    self.emit("failed", object_id, currency=payment["currency"],
                              references={"capture": cap["id"], "payment": payment["id"]})
            return self.outbox[before]

    def undecided(self) -> list[str]:
        """Ids of every accepted payment, capture and refund the provider has not decided yet."""
        with self.lock:
            return ([p["id"] for p in self.payments.values() if p["status"] == "processing"]
                    + [c["id"] for c in self.captures.values() if c["status"] == "pending"]
                    + [r["id"] for r in self.refunds.values() if r["status"] == "pending"])

    def fail_refund(self, refund_id: str) -> tuple[dict[str, str], bytes]:
        """Fail a refund the provider had done (returned by the bank) and say so: its failed event."""
        with self.lock:
            refund = self.refunds[refund_id]
            refund["status"] = "failed"
            self.captures[refund["capture"]]["refunded"] -= refund["amount"]
            self.payments[refund["payment"]]["refunded"] -= refund["amount"]
            return self.emit("failed", refund_id, references={"capture": refund["capture"],
                                                               "payment": refund["payment"]})

    def totals(self, pid: str) -> tuple[int, int, int]:
        with self.lock:
            p = self.payments[pid]
            return p["authorized"], p["captured"], p["refunded"]

    def count(self, operation: str, pid: str | None = None) -> int:
        with self.lock:
            return sum(1 for op, owner, _ in self.applied if op == operation and (pid is None or owner == pid))

    def events_about(self, reference: str) -> list[tuple[dict[str, str], bytes]]:
        """The emitted events whose object is `reference`."""
        with self.lock:
            return [event for event in self.outbox if json.loads(event[1])["reference"] == reference]

    def event(self, event_id: str, kind: str, reference: str, *, amount: int | None = None,
              total: int | None = None, currency: str = "EUR", references: Mapping[str, str] | None = None,
              secret: str = WEBHOOK_SECRET, total_currency: str | None = None,
              closes_capture: bool = False) -> tuple[dict[str, str], bytes]:
        """A signed webhook delivery (headers, raw body); the total in `currency` unless
        `total_currency` says otherwise; `closes_capture`: its capture was final."""
        body = json.dumps({"id": event_id, "type": f"payment.{kind}", "kind": kind, "reference": reference,
                           "references": dict(references or {}), "amount": amount, "total": total,
                           "currency": currency, **({"total_currency": total_currency} if total_currency else {}),
                           **({"closes_capture": True} if closes_capture else {}),
                           }).encode()
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
    "requires_action": ProviderState.ACTION_REQUIRED, "processing": ProviderState.PROCESSING,
    "authorized": ProviderState.AUTHORIZED, "partially_captured": ProviderState.PARTIALLY_CAPTURED,
    "captured": ProviderState.CAPTURED, "partially_refunded": ProviderState.PARTIALLY_REFUNDED,
    "refunded": ProviderState.REFUNDED, "voided": ProviderState.VOIDED, "failed": ProviderState.FAILED,
}
# FakePay's status of a capture or refund -> the operation status paywire reads.
_OPERATION_STATUS = {"succeeded": "succeeded", "pending": "accepted", "failed": "failed", "reversed": "reversed"}


def _payment_result(subject: Subject, response: Response) -> dict[str, Any]:
    data = response.data
    currency = data["currency"]
    references = {"payment": data["id"]}
    settled = [c["id"] for c in data.get("captures", ()) if c["status"] == "succeeded"]
    if settled:
        references["capture"] = settled[-1]
    result: dict[str, Any] = {
        "references": references, "state": _STATES[data["status"]],
        # What the operation applied: what is authorized once it is (less than asked after a
        # partial authorization), what was asked before.
        "amount": Money(data["authorized"] or data["amount"], currency),
        "authorized": Money(data["authorized"], currency),
        "captured": Money(data["captured"], currency), "refunded": Money(data["refunded"], currency),
        "reference": data.get("capture_id") or data["id"],
    }
    if data["status"] == "requires_action":  # its next action may be unnamed (a read naming none)
        action = data.get("next_action")
        result.update(status="action_required", reference=data["id"],
                      action=BuyerAction(action["redirect_url"], action.get("return_url")) if action else None)
    elif data["status"] == "processing":
        result.update(status="accepted", reference=data["id"])
    return result


def _fetch_result(subject: Subject, response: Response) -> dict[str, Any]:
    if response.status == 404:
        return {"state": ProviderState.NOT_FOUND}
    result = _payment_result(subject, response)
    if result.get("status") == "accepted":
        del result["status"]  # the fetch itself succeeded; the state says the payment is processing
    data = response.data
    currency = data["currency"]
    if not data.get("operations_listed", True):
        return result
    result["operations"] = [
        ProviderOperation(kind=kind, reference=obj["id"], amount=Money(obj["amount"], currency),
                          status=_OPERATION_STATUS[obj["status"]], idempotency_key=obj.get("idempotency_key"),
                          parent=obj.get("capture"))
        for kind, objects in (("capture", data["captures"]), ("refund", data["refunds"]))
        for obj in objects
    ]
    return result


def _object_result(subject: Subject, response: Response) -> dict[str, Any]:
    data = response.data
    return {"reference": data["id"], "amount": Money(data["amount"], data["currency"]),
            "status": "accepted" if data.get("status") == "pending" else "succeeded"}


def build_commands(settings: GatewaySettings) -> CommandPool:
    auth = BearerAuth(settings.secret("api_key"))
    table = ErrorMapper(settings.provider, rules={
        "card_declined": ErrorRule(Declined), "authentication_required": ErrorRule(Declined),
        "idempotency_in_flight": ErrorRule(IdempotencyConflict, retryable=True),
        "not_processed": ErrorRule(ProviderUnavailable),
        "authorization_expired": ErrorRule(StateError, state_conflict=True),
    })

    def mapper(subject: Subject, response: Response, result: Result) -> Any:
        error = table(subject, response, result)
        if isinstance(error, Declined) and isinstance(response.data, dict):
            error.decline_code = response.data.get("error", {}).get("decline_code")
        if error.code == "not_processed":  # documented: refused before processing, nothing applied
            error.may_have_been_sent = False
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
        return {"amount": s.amount.minor, "final": s.final, "reason": s.reason}

    def fetch_path(s: Subject) -> str:
        return f"/v1/payments/{s.reference}" if s.reference else "/v1/payments"

    def fetch_query(s: Subject) -> dict[str, Any]:
        return {} if s.reference else {"idempotency_key": s.idempotency_key}

    return CommandPool({
        "authorize": command("POST", "/v1/payments", create(False), _payment_result),
        "sale": command("POST", "/v1/payments", create(True), _payment_result),
        "complete": command("POST", "/v1/payments/{reference}/complete",
                            lambda s: {"redirect_result": s.options["redirect_result"]}
                            if "redirect_result" in s.options else {}, _payment_result),
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
                total=Money(data["total"], data.get("total_currency", currency)) if data.get("total") is not None else None,
                closes_capture=data.get("closes_capture") is True,
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
    def __init__(self, definition: GatewayDefinition = FAKEPAY) -> None:
        self.definition = definition

    @hookimpl
    def register_gateways(self, register: Callable[[GatewayDefinition], None]) -> None:
        register(self.definition)


class ClaimsMore:
    """The authorize answer says more is authorized than was asked (a provider's or a proxy's
    mistake): it cannot say what is held."""

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Generator[None, Any, Any]:
        response: Any = yield
        if command == "authorize" and response.status == 200:
            data = json.loads(response.body)
            data["authorized"] = data["amount"] + 1
            return attrs.evolve(response, body=json.dumps(data).encode(), data=None)
        return response


# Method codes: "fakepay" can do everything; "fakepay_single" captures and refunds once, in full.
SINGLE = {"capture_multiple": False, "capture_partial": False, "refund_multiple": False, "refund_partial": False}
CREDENTIALS = {"api_key": API_KEY, "webhook_secret": WEBHOOK_SECRET}


def make_gateway(url: str, *, retry: Retry | None = None, extra: list[object] | None = None,
                 connect_timeout: float = 5.0, read_timeout: float = 10.0, ca_certs: str | None = None,
                 outcome_window: float = 0.0, credentials: Mapping[str, str] | None = None,
                 key_lives: Mapping[str, float] | None = None) -> Gateway:
    """A gateway with the methods "fakepay" and "fakepay_single" on the emulator at `url`.

    `outcome_window` is FakePay's declared window (seconds an applied request may take to show in
    a fetch); tests whose emulator answers late declare a window covering that latency.
    `key_lives`: how long FakePay declares it keeps idempotency keys (for good by default).
    """
    plugins = Plugins()
    definition = FAKEPAY._replace(outcome_window=outcome_window, key_lives=dict(key_lives or {}))
    plugins.register(FakePayPlugin(definition), "fakepay")
    for index, plugin in enumerate(extra or ()):
        plugins.register(plugin, f"extra{index}")
    common: dict[str, Any] = {
        "base_url": url, "credentials": dict(CREDENTIALS if credentials is None else credentials),
        "connect_timeout": connect_timeout, "read_timeout": read_timeout, "ca_certs": ca_certs,
    }
    methods = [
        MethodConfig(code="fakepay", **common),
        MethodConfig(code="fakepay_single", provider="fakepay", capabilities=SINGLE, **common),
    ]
    return Gateway(methods, plugins=plugins, retry=retry or Retry.never())
