"""A stateful emulator of the Acme Pay API, on paywire's emulator base.

    POST /v1/payments                  {amount, currency, source, capture, order, return_url, metadata}
    GET  /v1/payments/{id}             GET /v1/payments/lookup?idempotency_key=K
    POST /v1/payments/{id}/complete    after the buyer's challenge (GET /challenge/{id})
    POST /v1/payments/{id}/capture     {amount?, final}
    POST /v1/payments/{id}/void
    POST /v1/payments/{id}/refunds     {amount?}

Test sources: `tok_ok` succeeds, `tok_decline` is declined (insufficient_funds: the payment is
kept as `failed`, and named in the error), `tok_3ds` needs the buyer, `tok_async` is a bank
debit: its sales and captures stay `processing` (the amount held as `pending`) until
`settle(id, succeed)` decides them; `tok_review` is an authorization the provider reviews
(`processing`, nothing authorized) until `settle` decides it; `tok_partial` is a prepaid card
authorized for half the amount asked (a partial authorization: the payment's `amount` is what it
holds, `requested` what was asked); `tok_partial_capture` is authorized in full, but the issuer honours
only half of each capture asked on it (the answer's `last_amount` is what was captured);
`tok_partial_refund` pays at once, but Acme returns only half of each refund asked on it (it keeps
its fee: the refund's `amount` is what it returned). Captures are allowed until `final` or the authorized amount is
reached; refunds never exceed what was captured. `Acme-Idempotency-Key` replays the stored answer for the same body,
answers 409 `idempotency_conflict` for a different one, and 409 `request_in_progress` while the first request with
the key is still being handled.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import time
from typing import Any

from paywire.testing.emulator import EmulatorApp, EmulatorRequest, Reply, main, route
from paywire.testing.sandbox import Sandbox
from paywire_acme.webhook import sign

_ids = itertools.count(1)


def _error(status: int, code: str, message: str, **extra: Any) -> Reply:
    return Reply.json(status, {"error": {"code": code, "message": message, **extra}})


class AcmeEmulator(EmulatorApp):
    def __init__(self, api_key: str = "acme_test_key", webhook_secret: str = "acme_whsec") -> None:
        super().__init__()
        self.api_key = api_key
        self.webhook_secret = webhook_secret
        self.payments: dict[str, dict[str, Any]] = {}
        self.by_key: dict[str, str] = {}
        self.events: list[tuple[bytes, dict[str, str]]] = []

    def fault_reply(self, status: int, headers: Any) -> Reply:
        return Reply(status, json.dumps({"error": {"code": "server_error", "message": "injected"}}).encode(),
                     {"Content-Type": "application/json", **headers})

    def handle(self, request: EmulatorRequest) -> Reply:
        buyer_page = request.path.startswith("/challenge/")
        if not buyer_page and request.header("authorization") != f"Bearer {self.api_key}":
            return _error(401, "unauthorized", "invalid API key")
        key = request.header("acme-idempotency-key")
        if request.method != "POST" or not key:
            return super().handle(request)
        fingerprint = hashlib.sha256(request.path.encode() + request.body).hexdigest()
        state, stored = self.idempotency.begin("acme", key, fingerprint)
        if state == "replay" and stored is not None:
            return stored
        if state == "conflict":
            return _error(409, "idempotency_conflict", "this key was used with a different request")
        if state == "in_flight":
            return _error(409, "request_in_progress", "a request with this key is in progress; try again shortly")
        reply = super().handle(request)
        self.hold_point(request)  # applied, its key still claimed
        if reply.status >= 500:
            self.idempotency.abandon("acme", key)
        else:
            self.idempotency.finish("acme", key, reply)
            if request.path == "/v1/payments" and reply.status in (200, 402):
                answer = json.loads(reply.body)
                self.by_key[key] = answer.get("id") or answer["error"]["payment"]
        return reply

    # -- helpers ------------------------------------------------------------------------------------
    def _view(self, payment: dict[str, Any], last_amount: int | None = None) -> Reply:
        body = dict(payment)
        if last_amount is not None:
            body["last_amount"] = last_amount
        return Reply.json(200, body)

    def _status(self, p: dict[str, Any]) -> str:
        if p["failed"]:
            return "failed"
        if p["voided"]:
            return "voided"
        if p["pending"] or p["review"]:
            return "processing"
        if p["requires_action"]:
            return "requires_action"
        if p["refunded"]:
            return "refunded" if p["refunded"] == p["captured"] else "partially_refunded"
        if p["captured"]:
            return "captured" if p["closed"] else "partially_captured"
        return "authorized"

    def _emit(self, kind: str, payment: dict[str, Any], amount: int) -> None:
        event = {"id": f"evt_{next(_ids)}", "type": kind, "data": {**payment, "last_amount": amount}}
        body = json.dumps(event).encode()
        timestamp = int(time.time())
        headers = {"Content-Type": "application/json", "Acme-Timestamp": str(timestamp),
                   "Acme-Signature": sign(self.webhook_secret, timestamp, body)}
        self.events.append((body, headers))
        self.deliver_webhook(body, headers)

    def _take(self, payment: dict[str, Any], amount: int, *, final: bool) -> None:
        """Capture `amount`: at once, or held as pending for a bank debit (`tok_async`)."""
        payment["pending" if payment["source"] == "tok_async" else "captured"] += amount
        payment["closed"] = final or payment["captured"] + payment["pending"] == payment["amount"]
        payment["status"] = self._status(payment)

    def settle(self, payment_id: str, succeed: bool = True) -> None:
        """Test control: the decision on a processing payment: its review, or its pending capture."""
        with self.lock:
            payment = self.payments[payment_id]
            if payment["review"]:
                payment["review"], payment["failed"] = False, not succeed
                if succeed and payment["capture"]:
                    self._take(payment, payment["amount"], final=True)
                payment["status"] = self._status(payment)
                self._emit("payment.authorized" if succeed else "payment.failed", payment, payment["amount"])
                return
            if not payment["pending"]:
                raise ValueError(f"{payment_id} has nothing pending")
            amount, payment["pending"] = payment["pending"], 0
            if succeed:
                payment["captured"] += amount
            elif payment["capture"]:
                payment["failed"] = True  # a sale the bank refused
            else:
                payment["closed"] = False  # the refused capture took nothing: the authorization stays
            payment["status"] = self._status(payment)
            self._emit("payment.captured" if succeed else "payment.failed", payment, amount)

    def _get(self, request: EmulatorRequest) -> dict[str, Any] | None:
        return self.payments.get(request.params["id"])

    # -- routes ---------------------------------------------------------------------------------------
    @route("POST", "/v1/payments")
    def create(self, request: EmulatorRequest) -> Reply:
        data = request.json() or {}
        amount, source = data.get("amount"), data.get("source")
        if not isinstance(amount, int) or amount <= 0:
            return _error(400, "invalid_request", "amount must be a positive integer", param="amount")
        requested = amount
        if source == "tok_partial":
            amount = max(1, amount // 2)
        with self.lock:
            pid = f"pay_{next(_ids)}"
            payment = {
                "id": pid, "amount": amount, "requested": requested, "currency": data.get("currency"), "captured": 0, "refunded": 0,
                "pending": 0, "voided": False, "closed": False, "failed": source == "tok_decline",
                "review": source == "tok_review",
                "capture": bool(data.get("capture")), "source": source,
                "requires_action": source == "tok_3ds", "metadata": data.get("metadata") or {},
                "order": data.get("order"),
            }
            payment["status"] = self._status(payment)
            self.payments[pid] = payment
            if payment["failed"]:
                return _error(402, "card_declined", "the card was declined", decline_code="insufficient_funds",
                              payment=pid)
            if payment["requires_action"]:
                payment["action"] = {"redirect_url": f"{self.base_url}/challenge/{pid}"}
            elif payment["capture"] and not payment["review"]:
                self._take(payment, amount, final=True)
            payment["status"] = self._status(payment)
            if not payment["requires_action"] and not payment["pending"] and not payment["review"]:
                self._emit("payment.captured" if payment["capture"] else "payment.authorized", payment, amount)
            return self._view(payment, amount)

    @route("GET", "/v1/payments/lookup")
    def lookup(self, request: EmulatorRequest) -> Reply:
        key = dict(request.query).get("idempotency_key", "")
        pid = self.by_key.get(key)
        if pid is None:
            return _error(404, "not_found", "no payment was created with this idempotency key")
        return self._view(self.payments[pid])

    @route("GET", "/v1/payments/(?P<id>[^/]+)")
    def retrieve(self, request: EmulatorRequest) -> Reply:
        payment = self._get(request)
        return self._view(payment) if payment else _error(404, "not_found", "no such payment")

    @route("POST", "/v1/payments/(?P<id>[^/]+)/complete")
    def complete(self, request: EmulatorRequest) -> Reply:
        with self.lock:
            payment = self._get(request)
            if payment is None:
                return _error(404, "not_found", "no such payment")
            if payment["requires_action"] and not payment.get("challenge_passed"):
                return _error(422, "invalid_state", "the buyer has not completed the challenge")
            if payment["requires_action"]:
                payment["requires_action"] = False
                if payment["capture"]:
                    self._take(payment, payment["amount"], final=True)
                payment["status"] = self._status(payment)
            return self._view(payment, payment["amount"])

    @route("GET", "/challenge/(?P<id>[^/]+)")
    def challenge(self, request: EmulatorRequest) -> Reply:
        with self.lock:
            payment = self._get(request)
            if payment is None:
                return _error(404, "not_found", "no such payment")
            payment["challenge_passed"] = True
            return Reply(200, b"challenge passed", {"Content-Type": "text/plain"})

    @route("POST", "/v1/payments/(?P<id>[^/]+)/capture")
    def capture(self, request: EmulatorRequest) -> Reply:
        data = request.json() or {}
        with self.lock:
            payment = self._get(request)
            if payment is None:
                return _error(404, "not_found", "no such payment")
            if payment["voided"] or payment["closed"] or payment["requires_action"] or payment["failed"] or payment["review"]:
                return _error(422, "invalid_state", f"cannot capture a payment that is {payment['status']}")
            remaining = payment["amount"] - payment["captured"] - payment["pending"]
            amount = data.get("amount", remaining)
            if not isinstance(amount, int) or amount <= 0 or amount > remaining:
                return _error(422, "invalid_state", f"capture amount must be between 1 and {remaining}", param="amount")
            if payment["source"] == "tok_partial_capture":
                amount = max(1, amount // 2)
            self._take(payment, amount, final=bool(data.get("final", True)))
            if not payment["pending"]:
                self._emit("payment.captured", payment, amount)
            return self._view(payment, amount)

    @route("POST", "/v1/payments/(?P<id>[^/]+)/void")
    def void(self, request: EmulatorRequest) -> Reply:
        with self.lock:
            payment = self._get(request)
            if payment is None:
                return _error(404, "not_found", "no such payment")
            if payment["captured"] or payment["pending"] or payment["voided"] or payment["failed"] or payment["review"]:
                return _error(422, "invalid_state", f"cannot void a payment that is {payment['status']}")
            payment["voided"] = True
            payment["status"] = self._status(payment)
            self._emit("payment.voided", payment, payment["amount"])
            return self._view(payment)

    @route("POST", "/v1/payments/(?P<id>[^/]+)/refunds")
    def refund(self, request: EmulatorRequest) -> Reply:
        data = request.json() or {}
        with self.lock:
            payment = self._get(request)
            if payment is None:
                return _error(404, "not_found", "no such payment")
            remaining = payment["captured"] - payment["refunded"]
            amount = data.get("amount", remaining)
            if not isinstance(amount, int) or amount <= 0 or amount > remaining:
                return _error(422, "invalid_state", f"refund amount must be between 1 and {remaining}", param="amount")
            if payment["source"] == "tok_partial_refund":
                amount = max(1, amount // 2)
            payment["refunded"] += amount
            payment["status"] = self._status(payment)
            self._emit("payment.refunded", payment, amount)
            return Reply.json(200, {"id": f"ref_{next(_ids)}", "payment": payment["id"], "amount": amount,
                                    "currency": payment["currency"]})


def sandbox() -> Sandbox:
    """Acme's offline sandbox: the emulator, its test key and its test sources."""
    app = AcmeEmulator()
    return Sandbox(app=app, credentials={"api_key": app.api_key, "webhook_secret": app.webhook_secret},
                   sources={"ok": "tok_ok", "decline": "tok_decline", "buyer_action": "tok_3ds", "accepted": "tok_async",
                            "authorization_accepted": "tok_review", "partial_authorization": "tok_partial",
                            "partial_capture": "tok_partial_capture", "partial_refund": "tok_partial_refund"},
                   settle=app.settle)


if __name__ == "__main__":
    main(AcmeEmulator(), prog="python -m paywire_acme.emulator")
