"""A state machine of the payment service against FakePay, with operations made at the provider
outside paywire and reversals (the provider undoing a capture, a sale's capture or a refund after
reporting it done), refunds whose answer was lost, webhooks in any order, duplicated, with running
totals snapshotted when they were sent (so delivered stale), retries and reconciliation.

FakePay's own state is what the provider holds; a reversal is made as the provider would make it
(the object failed, its totals lowered, the refunds of an undone capture undone). Once every event
about a payment was delivered, the ledger never claims more captured or refunded than that.
"""

from __future__ import annotations

import itertools
import json
import random
import sys
from collections.abc import Callable
from typing import Any

from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, multiple, rule

from paywire import Declined, EventKind, Gateway, InvalidRequest, Money, PaywireError, UnsupportedOperation
from paywire.errors import StateError
from paywire.ledger import Ledger
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import FakePayApp

TYPED = (StateError, InvalidRequest, UnsupportedOperation, Declined)
_counter = itertools.count()


class Machine(RuleBasedStateMachine):
    payments = Bundle("payments")

    def __init__(self, app: FakePayApp, gateway: Gateway, make_ledger: Callable[[], Ledger]) -> None:
        super().__init__()
        self.app = app
        app.clear_faults()
        self.ledger = make_ledger()
        self.service = PaymentService(gateway, self.ledger, margin=0)
        self.pid: dict[str, str] = {}  # ledger payment id -> FakePay id
        self.events: list[tuple[str, dict[str, str], bytes]] = []  # (FakePay id, headers, body)
        self.required: set[int] = set()  # indexes of events the ledger must see to be informed (reversals)
        self.delivered: set[int] = set()
        self.steps: list[str] = []
        with app.lock:
            self.outbox_seen = len(app.outbox)

    # -- helpers -------------------------------------------------------------------------------------
    def log(self, text: str) -> None:
        self.steps.append(text)

    def _collect(self) -> None:
        """The provider's own emitted events since last time join the deliverable events."""
        with self.app.lock:
            new = self.app.outbox[self.outbox_seen:]
            self.outbox_seen = len(self.app.outbox)
        for headers, body in new:
            data = json.loads(body)
            pid = data["references"].get("payment") or data["reference"]
            if pid not in self.app.payments:
                obj = self.app.captures.get(pid) or self.app.refunds.get(pid)
                pid = obj["payment"] if obj else pid
            self.events.append((pid, headers, body))

    def _snapshot(self, pid: str) -> None:
        """The provider reports its running totals (as events about the payment object)."""
        with self.app.lock:
            p = self.app.payments[pid]
            captured, refunded = p["captured"], p["refunded"]
        n = next(_counter)
        if captured:
            self.events.append((pid, *self.app.event(f"evt_tc_{n}", EventKind.CAPTURED, pid, total=captured)))
        if refunded:
            self.events.append((pid, *self.app.event(f"evt_tr_{n}", EventKind.REFUNDED, pid, total=refunded)))

    def _informed(self, pid: str) -> bool:
        return all(i in self.delivered for i, event in enumerate(self.events) if event[0] == pid)

    def _call(self, what: str, payment_id: str | None, call: Callable[[], Any]) -> Any:
        informed = payment_id is None or self._informed(self.pid[payment_id])
        before = len(self.app.refusals)
        try:
            result = call()
            self.log(f"{what} -> ok")
            return result
        except TYPED as refused:
            self.log(f"{what} -> refused {type(refused).__name__} {refused.code}")
            return None
        except PaywireError as error:
            self.log(f"{what} -> {type(error).__name__} {error.code}: {error}")
            refusals = self.app.refusals[before:]
            assert not (informed and refusals), (
                f"the ledger let through what the provider refused: {refusals}", self.steps)
            return None
        finally:
            self._collect()
            if payment_id is not None:
                self._snapshot(self.pid[payment_id])

    # -- service operations --------------------------------------------------------------------------
    @rule(target=payments, method=st.sampled_from(["fakepay", "fakepay_single"]), sale=st.booleans(),
          amount=st.integers(100, 10_000), source=st.sampled_from(["tok_ok", "tok_ok", "tok_ok", "tok_async"]))
    def open_payment(self, method: str, sale: bool, amount: int, source: str) -> Any:
        make = self.service.sale if sale else self.service.authorize
        payment = self._call(f"{'sale' if sale else 'authorize'}({method}, {amount}, {source})", None,
                             lambda: make(method, Money(amount, "EUR"), source=source))
        if payment is None or not payment.reference:
            return multiple()
        self.pid[payment.id] = payment.reference
        self.log(f"  = {payment.id} / {payment.reference}")
        return payment.id

    @rule(payment=payments, share=st.floats(0.05, 1.0), final=st.booleans(), whole=st.booleans())
    def capture(self, payment: str, share: float, final: bool, whole: bool) -> None:
        current = self.service.get_payment(payment)
        amount = max(1, int(current.capturable.minor * share))
        if whole:
            self._call(f"capture({payment}, all)", payment, lambda: self.service.capture(payment))
        else:
            self._call(f"capture({payment}, {amount}, final={final})", payment,
                       lambda: self.service.capture(payment, Money(amount, "EUR"), final=final))

    @rule(payment=payments, share=st.floats(0.05, 1.0), whole=st.booleans())
    def refund(self, payment: str, share: float, whole: bool) -> None:
        current = self.service.get_payment(payment)
        pid = self.pid[payment]
        informed = self._informed(pid)
        with self.app.lock:
            p = self.app.payments[pid]
            pending = sum(self.app.refunds[r]["amount"] for r in p["_refunds"]
                          if self.app.refunds[r]["status"] == "pending")
            holds = p["captured"] - p["refunded"] - pending
        amount = current.refundable.minor if whole else max(1, int(current.refundable.minor * share))
        done = self._call(f"refund({payment}, {amount})", payment,
                          lambda: self.service.refund(payment, Money(amount, "EUR")))
        if done is not None:
            assert not informed or amount <= holds, (
                f"a refund of {amount} let through while the provider holds {holds} refundable", self.steps)

    @rule(payment=payments, share=st.floats(0.05, 1.0))
    def refund_answer_lost(self, payment: str, share: float) -> None:
        """A refund the provider applies whose answer is lost: the ledger holds it unknown, without
        its reference, until a retry or reconciliation records it."""
        current = self.service.get_payment(payment)
        pid = self.pid[payment]
        with self.app.lock:
            p = self.app.payments[pid]
            holds = p["captured"] - p["refunded"] - sum(
                self.app.refunds[r]["amount"] for r in p["_refunds"] if self.app.refunds[r]["status"] == "pending")
        amount = max(1, int(current.refundable.minor * share))
        if amount > holds:  # one the provider refuses is `refund`'s case
            return
        refused = len(self.app.refusals)
        self.app.inject(Fault("status_after", status=500, path="/refunds$", method="POST"))
        try:
            self._call(f"refund({payment}, {amount}), answer lost", payment,
                       lambda: self.service.refund(payment, Money(amount, "EUR")))
        finally:
            self.app.clear_faults()
        if len(self.app.refusals) > refused:  # refused, so never to be listed: a retry hears the refusal again
            self.retry_unknown(payment)

    @rule(payment=payments)
    def retry_unknown(self, payment: str) -> None:
        for txn in self.service.list_transactions(payment, statuses=["unknown"]):
            self._call(f"retry({txn.id})", payment, lambda txn_id=txn.id: self.service.retry(txn_id))

    @rule(payment=payments)
    def void(self, payment: str) -> None:
        self._call(f"void({payment})", payment, lambda: self.service.void(payment))

    # -- the provider, outside paywire ---------------------------------------------------------------
    @rule(payment=payments, share=st.floats(0.05, 1.0))
    def outside_capture(self, payment: str, share: float) -> None:
        pid = self.pid[payment]
        with self.app.lock:
            p = self.app.payments[pid]
            if p["status"] not in ("authorized", "partially_captured") or p["closed"] or p["capture"]:
                return
            left = p["authorized"] - p["captured"] - self.app._pending_captures(p)
            if left <= 0:
                return
            amount = max(1, int(left * share))
            cap = self.app._capture(p, amount, final=False)
        self.log(f"provider: capture {cap['id']} of {amount} on {pid} outside paywire")
        self._collect()
        self._snapshot(pid)

    @rule(pick=st.integers(0, 1000), share=st.floats(0.05, 1.0))
    def outside_refund(self, pick: int, share: float) -> None:
        with self.app.lock:
            caps = [c for c in self.app.captures.values() if c["status"] == "succeeded" and c["payment"] in
                    self.pid.values() and c["amount"] - c["refunded"] - c["_pending_refunds"] > 0]
            if not caps:
                return
            cap = caps[pick % len(caps)]
            amount = max(1, int((cap["amount"] - cap["refunded"] - cap["_pending_refunds"]) * share))
            p = self.app.payments[cap["payment"]]
            refund = {"id": self.app._id("re"), "amount": amount, "currency": "EUR", "capture": cap["id"],
                      "payment": p["id"], "status": "succeeded", "idempotency_key": None}
            self.app.refunds[refund["id"]] = refund
            p["_refunds"].append(refund["id"])
            self.app._refund_succeeded(p, cap, refund)
        self.log(f"provider: refund {refund['id']} of {amount} on {cap['id']} outside paywire")
        self._collect()
        self._snapshot(p["id"])

    @rule(payment=payments)
    def outside_void(self, payment: str) -> None:
        """The provider releases the rest of an authorization (PayPal allows it after a partial capture)."""
        pid = self.pid[payment]
        with self.app.lock:
            p = self.app.payments[pid]
            if p["status"] not in ("authorized", "partially_captured") or p["closed"] or p["capture"] \
                    or self.app._pending_captures(p):
                return
            p["closed"] = True
            if not p["captured"]:
                p["status"] = "voided"
        self.log(f"provider: voids the rest of {pid}")
        self.events.append((pid, *self.app.event(f"evt_void_{next(_counter)}", EventKind.VOIDED, pid)))

    @rule(pick=st.integers(0, 1000), as_failed=st.booleans())
    def provider_reverses(self, pick: int, as_failed: bool) -> None:
        """The provider undoes a capture (a sale's too) or a refund it reported done."""
        with self.app.lock:
            objects = [o for o in [*self.app.captures.values(), *self.app.refunds.values()]
                       if o["status"] == "succeeded" and o["payment"] in self.pid.values()]
            if not objects:
                return
            obj = objects[pick % len(objects)]
            p = self.app.payments[obj["payment"]]
            obj["status"] = "failed"
            if obj["id"].startswith("re_"):
                self.app.captures[obj["capture"]]["refunded"] -= obj["amount"]
                p["refunded"] -= obj["amount"]
                kind = EventKind.FAILED if as_failed else EventKind.REVERSED
                refs = {"capture": obj["capture"], "payment": p["id"]}
                what = f"refund {obj['id']} of {obj['amount']}"
            else:
                for r in list(p["_refunds"]):  # a refund still pending on it fails (the provider says so)
                    if self.app.refunds[r]["capture"] == obj["id"] and self.app.refunds[r]["status"] == "pending":
                        self.app.decide(r, succeed=False)
                p["captured"] -= obj["amount"]
                for r in p["_refunds"]:
                    refund = self.app.refunds[r]
                    if refund["capture"] == obj["id"] and refund["status"] == "succeeded":
                        refund["status"] = "failed"
                        p["refunded"] -= refund["amount"]
                obj["refunded"] = 0
                if p.get("capture_id") == obj["id"]:  # a sale's capture: the sale failed
                    p["status"], p["authorized"], p["closed"] = "failed", 0, True
                kind, refs = EventKind.REVERSED, {"payment": p["id"]}
                what = f"capture {obj['id']} of {obj['amount']}"
            if p["status"] != "failed":
                FakePayApp._restate(p)
                if not p["captured"] and not p["refunded"]:
                    p["status"] = "voided" if p["closed"] and p["status"] == "voided" else p["status"]
        self._collect()
        self.log(f"provider: undoes {what} on {p['id']} ({kind} event)")
        self.required.add(len(self.events))
        self.events.append((p["id"], *self.app.event(f"evt_rev_{next(_counter)}", kind, obj["id"], references=refs)))
        self._snapshot(p["id"])

    @rule(pick=st.integers(0, 1000), succeed=st.booleans())
    def provider_decides(self, pick: int, succeed: bool) -> None:
        undecided = [o for o in self.app.undecided() if o in self.app.captures or o in self.app.refunds]
        if undecided:
            obj = undecided[pick % len(undecided)]
            self.app.decide(obj, succeed=succeed)
            self.log(f"provider: decides {obj} succeed={succeed}")
            self._collect()
            owner = (self.app.captures.get(obj) or self.app.refunds.get(obj))["payment"]
            self._snapshot(owner)

    # -- deliveries and upkeep -----------------------------------------------------------------------
    @rule(pick=st.integers(0, 10_000), twice=st.booleans())
    def deliver(self, pick: int, twice: bool) -> None:
        if not self.events:
            return
        index = pick % len(self.events)
        _, headers, body = self.events[index]
        for _ in range(2 if twice else 1):
            receipt = self.service.receive_webhook("fakepay", headers, body)
        self.delivered.add(index)
        data = json.loads(body)
        self.log(f"deliver #{index} {data['kind']} ref={data['reference']} amount={data['amount']} "
                 f"total={data['total']} -> {receipt.status}")

    @rule(seed=st.integers(0, 2**16), reverse=st.booleans())
    def deliver_rest(self, seed: int, reverse: bool) -> None:
        """Every event not delivered yet arrives, in some order."""
        rest = [i for i in range(len(self.events)) if i not in self.delivered]
        random.Random(seed).shuffle(rest)
        for index in rest:
            self.deliver(index, False)

    @rule(payment=payments, captured=st.booleans(), on_object=st.booleans())
    def fresh_total(self, payment: str, captured: bool, on_object: bool) -> None:
        """The provider reports its current running total, delivered at once."""
        pid = self.pid[payment]
        _, cap, ref = self.app.totals(pid)
        kind = EventKind.CAPTURED if captured else EventKind.REFUNDED
        n = next(_counter)
        if on_object:  # an event about the payment object: its amount is the running total
            event = self.app.event(f"evt_fresh_{n}", kind, pid, amount=cap if captured else ref)
        else:
            event = self.app.event(f"evt_fresh_{n}", kind, pid, total=cap if captured else ref)
        receipt = self.service.receive_webhook("fakepay", *event)
        self.log(f"fresh {kind} {'amount' if on_object else 'total'}={cap if captured else ref} on {pid} "
                 f"-> {receipt.status}")

    @rule(payment=payments)
    def reconcile(self, payment: str) -> None:
        report = self.service.reconcile(payment_id=payment)
        self.log(f"reconcile({payment}) mismatches={len(report.mismatches)}")
        assert report.errors == (), report.errors

    # -- invariants ------------------------------------------------------------------------------------
    @invariant()
    def ledger_within_provider(self) -> None:
        for payment_id, pid in self.pid.items():
            payment = self.service.get_payment(payment_id)
            assert payment.refunded <= payment.captured <= payment.authorized, (payment, self.steps)
            if not self._informed(pid):
                continue
            ledger = (payment.authorized.minor, payment.captured.minor, payment.refunded.minor)
            provider = self.app.totals(pid)
            assert ledger[1] <= provider[1] and ledger[2] <= provider[2], (
                f"{payment_id}: ledger (auth, captured, refunded) {ledger} > provider {provider}", self.steps)

    def teardown(self) -> None:
        try:
            if sys.exc_info()[0] is None:
                self.everything_agrees()
        finally:
            self.ledger.close()

    def everything_agrees(self) -> None:
        for object_id in self.app.undecided():
            if object_id in self.app.captures or object_id in self.app.refunds:
                self.app.decide(object_id, succeed=True)
        self._collect()
        self.deliver_rest(0, False)
        self.ledger_within_provider()
        for payment_id, pid in self.pid.items():
            report = self.service.reconcile(payment_id=payment_id)
            payment = self.service.get_payment(payment_id)
            ledger = (payment.authorized.minor, payment.captured.minor, payment.refunded.minor)
            provider = self.app.totals(pid)
            assert ledger[1:] == provider[1:] and not report.mismatches, (
                f"after reconcile {payment_id}: ledger {ledger} provider {provider}", report, self.steps)
            assert [t.id for t in self.service.list_transactions(payment_id) if t.open] == [], self.steps
