"""The ledger against PayPal under any mix of the shop's captures and refunds, the dashboard's,
PayPal's own moves (a capture denied or reversed, a pending capture or refund decided, a payer's
dispute opened and decided, a reauthorization made beside paywire, created or held for review
and then created or denied), captures above the authorization (PayPal's overage: the
dashboard's, or the shop's after a dashboard capture it has not heard of), voids, lost answers
and their retries under the same key, reconciliation, and PayPal's events delivered late, twice
and in any order: at every step the ledger claims no more than PayPal holds, nor lets more be
captured or refunded than PayPal would take of what paywire was told, and once every
event is in and the payment reconciled it holds what PayPal holds (and reconciling it again
changes nothing), and no operation that took effect is recorded failed.

PayPal taking a completed capture's money back (`deny_capture`) lowers what it holds before the
shop can know: until its event is in or the payment reconciled, that capture still bounds the
ledger. A capture's COMPLETED arriving after PayPal took it back is taken as its reversal, as
PayPal holds it now; a late event that PayPal's present state contradicts otherwise is refused by
the plugin's confirmation, which applies nothing."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
import urllib3
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paywire import (
    Money,
    OutcomeUnknown,
    Payment,
    PaymentService,
    PaywireError,
    SQLiteLedger,
    WebhookVerificationError,
)
from paywire.ledger import TransactionStatus
from paywire.ledger.model import SettledBy, now
from paywire.testing.emulator import Fault
from paywire.testing.ledger_checks import offers_at_most, reconciled_again_changes_nothing
from paywire_paypal.emulator import PayPalEmulator
from paywire_paypal.emulator.model import CONSUMED_STATUSES
from paywire_paypal.emulator.payments import overage_limit

from .conftest import CLIENT_ID, CLIENT_SECRET, RETURN_URL, PayPal, new_emulator

_MOVED = frozenset({"COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"})  # a capture's or refund's money moved
_UNDONE = frozenset({"DECLINED", "FAILED", "CANCELLED"})  # PayPal decided it moved nothing
_REFUNDABLE = frozenset({"COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"})  # what is left of it, PayPal refunds
_BESIDE = frozenset({"dashboard capture", "dashboard refund", "dashboard void", "deny capture", "reverse capture",
                     "dispute", "decide", "reauthorize"})  # what PayPal does or is told outside paywire
_ACTIONS = (
    "deliver",
    "deliver",
    "deliver twice",
    "capture",
    "capture",
    "dashboard capture",
    "refund",
    "refund",
    "dashboard refund",
    "lost capture",
    "lost refund",
    "retry",
    "void",
    "dashboard void",
    "deny capture",
    "reverse capture",
    "dispute",
    "decide",
    "reauthorize",
    "reauthorize",
    "reconcile",
)
_DAY = 86400.0
# PayPal reauthorizes from day 4 of the original authorization (its 3-day honor period) to day 29:
# how many days after it a reauthorization is asked for (0: too soon, refused).
_DAYS = (0, 3, 4, 28)


def eur(minor: int) -> Money:
    return Money(minor, "EUR")


class Dashboard:
    """The merchant acting on PayPal outside paywire: REST calls with no paywire key or custom_id."""

    def __init__(self, url: str) -> None:
        self.url, self.pool = url, urllib3.PoolManager()
        self.login()

    def login(self) -> None:
        """A token (again: one PayPal gave expires once its clock moved days on)."""
        basic = base64.b64encode(f"{CLIENT_ID}:{CLIENT_SECRET}".encode()).decode()
        token = self.pool.request("POST", f"{self.url}/v1/oauth2/token", body=b"grant_type=client_credentials",
                                  headers={"Authorization": f"Basic {basic}",
                                           "Content-Type": "application/x-www-form-urlencoded"})
        self.token = json.loads(token.data)["access_token"]

    def post(self, path: str, body: dict[str, Any]) -> int:
        headers = {"Authorization": f"Bearer {self.token}", "Content-Type": "application/json"}
        return self.pool.request("POST", self.url + path, body=json.dumps(body).encode(), headers=headers,
                                 retries=False).status

    def capture(self, app: Any, authorization: str, amount: str, *, final: bool) -> str:
        """A capture of `authorization` made here, EUR `amount`: its id, as emulator `app` holds it."""
        before = set(app.captures)
        assert self.post(f"/v2/payments/authorizations/{authorization}/capture",
                         {"amount": {"currency_code": "EUR", "value": amount}, "final_capture": final}) == 201
        (made,) = set(app.captures) - before
        return str(made)


def _amount(minor: int) -> dict[str, str]:
    return {"currency_code": "EUR", "value": f"{minor // 100}.{minor % 100:02d}"}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_ledger_never_claims_more_than_paypal_and_ends_equal(tmp_path: Path, data: Any) -> None:
    app = new_emulator()  # one per example: its events are the example's
    with app.serve() as server:
        paypal = PayPal(app, server.url)
        gateway = paypal.gateway_with()
        with SQLiteLedger(str(tmp_path / f"ledger-{paypal.key()}.db")) as ledger, paypal.gateway, gateway:
            service = PaymentService(gateway, ledger)
            _run(service, app, Dashboard(server.url), data)


def _held(app: PayPalEmulator, order_id: str, told: Told | None = None) -> tuple[int, int, int]:
    """What PayPal holds of the order, read from its own state (or, for authorizations, as far as
    paywire was told: `told`): money authorized (what the live authorization covers: its amount, or
    what its captures took above it, PayPal's overage; or what was captured for intent CAPTURE),
    captured and refunded. A reauthorization replaces what the authorization it renews covered: it
    covers its amount on top of what captures of the authorizations before it took, no more than
    the larger of its amount and the original's; one PayPal reviews (PENDING) holds nothing yet,
    and one it denied nothing: the authorizations before it cover what they did."""
    order = app.orders[order_id]
    captures = [app.captures[c] for unit in order.purchase_units for c in unit.capture_ids]
    refunds = [app.refunds[r] for cap in captures for r in cap.refund_ids]
    moved = [c for c in captures if c.status in _MOVED]
    captured = sum(c.amount_minor for c in moved)
    auths = [app.authorizations[i] for unit in order.purchase_units for i in unit.authorization_ids
             if told is None or i not in told.unheard]
    live = [a for a in auths if _status(a, told) not in ("DENIED", "PENDING")]
    if order.intent != "AUTHORIZE":
        authorized = captured
    elif not live:
        authorized = 0
    else:
        auth, amount = live[-1], live[-1].amount_minor
        if auth.parent_id is not None:
            before = sum(c.amount_minor for c in moved if c.authorization_id != auth.id)
            amount = min(max(app.authorizations[auth.parent_id].amount_minor, amount), before + amount)
        authorized = max(amount, captured)
    return authorized, captured, sum(r.amount_minor for r in refunds if r.status == "COMPLETED")


def _status(obj: Any, told: Told | None) -> str:
    """An object's status as paywire was told of it (`told`), or as PayPal holds it (None)."""
    return told.before.get(obj.id, obj.status) if told else str(obj.status)


class Told:
    """What paywire was told of PayPal's objects: those made beside it (the dashboard's captures
    and refunds, PayPal's reversals) it has not heard of (`unheard`), and the status it last had
    reason to know of one PayPal changed behind its back (`before`: a capture denied, a pending
    capture or refund decided, an authorization voided in the dashboard), until the event
    announcing it (`news`) or reconciliation tells it."""

    def __init__(self) -> None:
        self.unheard: set[str] = set()
        self.before: dict[str, str] = {}
        self.news: dict[str, tuple[str, bool]] = {}  # an event's id -> its object, and whether it tells a change
        self.made: set[str] = set()  # all PayPal made beside paywire
        # Reconciled while a refund of paywire's own of the same amount is in flight without its
        # id, the ledger leaves out a dashboard refund PayPal holds pending (it may be that one:
        # reconcile names it once matched), until reconciled again.
        self.pending_left_out = False

    @staticmethod
    def snapshot(app: PayPalEmulator) -> tuple[int, dict[str, str]]:
        """PayPal's events so far, and the status of each of its objects."""
        with app.lock:
            return len(app.events), {**{a.id: a.status for a in app.authorizations.values()},
                                     **{c.id: c.status for c in app.captures.values()},
                                     **{r.id: r.status for r in app.refunds.values()}}

    def changed_beside(self, app: PayPalEmulator, snapshot: tuple[int, dict[str, str]]) -> None:
        """Record what PayPal made or changed outside paywire since `snapshot`, and the events telling it."""
        sent, before = snapshot
        _, now_ = self.snapshot(app)
        made = set(now_) - set(before)
        self.unheard |= made
        self.made |= made
        for obj_id, status in now_.items():
            old = before.get(obj_id)
            if old is None or old == status:
                continue
            if old == "PENDING" or status in ("DENIED", "VOIDED", "EXPIRED"):
                self.before.setdefault(obj_id, old)
        for event in app.events[sent:]:
            about = event["resource"].get("id")
            self.news[event["id"]] = (about, about not in made)

    def voided_with(self, app: PayPalEmulator, snapshot: tuple[int, dict[str, str]]) -> None:
        """A void through paywire goes to the original authorization, and PayPal voids the
        reauthorization it still reviewed with it: paywire was told of the original's void only,
        and of that one by its own event (or reconciliation)."""
        sent, before = snapshot
        with app.lock:
            voided = {a.id for a in app.authorizations.values()
                      if a.parent_id is not None and a.status == "VOIDED" and before.get(a.id) == "PENDING"}
            events = app.events[sent:]
        for auth_id in voided:
            self.before.setdefault(auth_id, "PENDING")
        for event in events:
            if event["resource"].get("id") in voided:
                self.news[event["id"]] = (event["resource"]["id"], True)

    def heard(self, app: PayPalEmulator, event: dict[str, Any]) -> None:
        """An event accepted: what it announced, paywire now holds; but a pending capture's or
        refund's event arriving once PayPal decided it tells nothing (the plugin takes it as
        `OTHER`: the decision's own event says what PayPal decided), nor does a reauthorization's
        created event arriving once PayPal reauthorized the original again since (no longer what
        captures act on: the event of the one they act on, or reconciliation, tells what it
        holds). One arriving once PayPal voided it still tells what it held."""
        about, change = self.news.get(event["id"], ("", False))
        pending = event["event_type"] in ("PAYMENT.CAPTURE.PENDING", "PAYMENT.REFUND.PENDING")
        with app.lock:
            obj = app.captures.get(about) or app.refunds.get(about)
            auth = app.authorizations.get(about)
            siblings = [app.authorizations[a] for o in app.orders.values() for u in o.purchase_units
                        for a in u.authorization_ids if auth is not None and about in u.authorization_ids]
        if pending and obj is not None and obj.status != "PENDING":
            return
        live = [a for a in siblings if a.status != "DENIED"]
        if auth is not None and auth.parent_id is not None and live[-1].id != about:
            return
        self.unheard.discard(about)
        if change:
            self.before.pop(about, None)

    def named(self, app: PayPalEmulator, service: PaymentService, payment_id: str) -> None:
        """What the ledger names, it was told of: the service reads the payment from PayPal after
        a refusal or an answer naming more than its operation made, and records what it finds made
        beside it, which PayPal may change after that read as after an event (`before`). A pending
        one it records succeeded, it learnt PayPal completed, whatever PayPal did with it since."""
        for txn in service.list_transactions(payment_id):
            reference = txn.provider_reference or ""
            self.unheard.discard(reference)
            with app.lock:
                obj = app.captures.get(reference) or app.refunds.get(reference)
            if (txn.status == TransactionStatus.SUCCEEDED and obj is not None and obj.status != "PENDING"
                    and self.before.get(reference) == "PENDING"):
                self.before[reference] = "COMPLETED"

    def reconciled(self, app: PayPalEmulator, refunding: frozenset[int] = frozenset()) -> None:
        """Reconciliation told paywire all; `refunding`: the amounts of its own refunds in flight
        without their ids."""
        self.unheard.clear()
        self.before.clear()
        with app.lock:
            self.pending_left_out = any(
                r.status == "PENDING" and r.amount_minor in refunding for i, r in app.refunds.items() if i in self.made)


def _would_take(app: PayPalEmulator, order_id: str, told: Told | None) -> tuple[int, int]:
    """The most PayPal would take, in minor units, in one capture of the order's authorization and
    in one refund (a refund acts on one capture: what the capture with most left has left), as far
    as paywire was told (`told`), or as PayPal holds it (None)."""
    with app.lock:
        unheard = told.unheard if told else set()

        def status(obj: Any) -> str:
            return told.before.get(obj.id, obj.status) if told else str(obj.status)

        order = app.orders[order_id]
        captures = [app.captures[c] for unit in order.purchase_units for c in unit.capture_ids if c not in unheard]
        refundable = [0]
        for cap in captures:
            spent = sum(app.refunds[r].amount_minor for r in cap.refund_ids
                        if r not in unheard and status(app.refunds[r]) not in _UNDONE)
            if status(cap) in _REFUNDABLE:
                refundable.append(cap.amount_minor - spent)
        # The last authorization paywire was told of: PayPal takes no capture of one it renewed, nor
        # of a reauthorization it has not created (PENDING, DENIED), as the emulator holds it.
        auths = [app.authorizations[a] for unit in order.purchase_units for a in unit.authorization_ids
                 if a not in unheard]
        auth = auths[-1] if auths and order.intent == "AUTHORIZE" else None
        if auth is None or status(auth) not in ("CREATED", "PARTIALLY_CAPTURED", "CAPTURED"):
            return 0, max(refundable)
        taken = [app.captures[c] for c in auth.capture_ids if c not in unheard
                 and status(app.captures[c]) in CONSUMED_STATUSES]
        if any(c.final_capture for c in taken) or sum(c.amount_minor for c in taken) >= auth.amount_minor:
            return 0, max(refundable)
        return overage_limit(app, auth) - sum(c.amount_minor for c in taken), max(refundable)


def offered_at_most_paypal(service: PaymentService, app: PayPalEmulator, payment_id: str, order_id: str,
                           told: Told) -> None:
    """A capture or refund of one minor unit more than PayPal would take (of what paywire was told,
    or of what it holds, the larger: an answer or a refusal tells paywire more than the test
    tracks) is refused by the service's rules, before anything is sent."""
    (capture, refund), (held_capture, held_refund) = _would_take(app, order_id, told), _would_take(app, order_id, None)
    offers_at_most(service, payment_id,  # what `Told` tolerates is not checked: see there
                   refund=None if told.pending_left_out else max(refund, held_refund),
                   capture=max(capture, held_capture))


def _run(service: PaymentService, app: PayPalEmulator, dashboard: Dashboard, data: Any) -> None:
    flow = data.draw(st.sampled_from(["authorize", "sale"]), label="flow")
    payer = data.draw(st.sampled_from(["approve", "pending", "refund_pending"]), label="payer")
    first = data.draw(st.sampled_from(["answered", "completion answer lost"]), label="first")
    start = service.authorize if flow == "authorize" else service.sale
    payment_id = start("paypal", eur(10000), source="paypal", return_url=RETURN_URL).id
    order_id = service.get_payment(payment_id).reference or ""
    app.approve(order_id, payer)
    if first != "answered":
        app.inject(Fault(kind="drop_after", path=r"/(authorize|capture)$"))
    try:
        service.complete(payment_id)
    except OutcomeUnknown:
        service.reconcile(payment_id=payment_id)
    lost: dict[str, str] = {}  # a ledger transaction whose answer was lost -> the PayPal object it made
    unheard: dict[str, int] = {}  # captures PayPal took back that the shop has not heard of -> amount
    delivered = 0
    waiting: list[dict[str, Any]] = []
    told = Told()

    def collect() -> None:
        nonlocal delivered
        waiting.extend(app.events[delivered:])
        delivered = len(app.events)

    def deliver(event: dict[str, Any]) -> None:
        # Signed by the machine's clock, which the verifier checks (PayPal's may have moved days on).
        body, headers = app.signer.sign(event, app.webhook_id, app.cert_url(), time.time())
        try:
            service.receive_webhook("paypal", headers, body)
        except WebhookVerificationError as error:
            if error.code != "event_contradicted":
                raise
            return  # stale: PayPal holds its object otherwise now, which a later event or reconcile says
        told.heard(app, event)
        if event["event_type"] == "PAYMENT.CAPTURE.DENIED":
            unheard.pop(event["resource"]["id"], None)

    def at_most_paypal() -> Payment:
        payment, (authorized, captured, refunded) = service.get_payment(payment_id), _held(app, order_id)
        taken_back = sum(unheard.values())
        # A reauthorization paywire was not told of may hold less than the one it renews.
        authorized = max(authorized, _held(app, order_id, told)[0])
        assert (
            payment.authorized.minor <= authorized + taken_back
            and payment.captured.minor <= captured + taken_back
            and payment.refunded.minor <= refunded
        ), (payment, authorized, captured, refunded)
        return payment

    collect()
    for _ in range(data.draw(st.integers(0, 10), label="steps")):
        action = data.draw(st.sampled_from(_ACTIONS), label="action")
        amount = eur(data.draw(st.sampled_from([1, 999, 2500, 4000, 10000]) | st.integers(1, 11500), label="amount"))
        before = told.snapshot(app)
        nameless = [t for t in service.list_transactions(payment_id) if t.open and not t.provider_reference]
        try:
            _step(service, app, dashboard, data, action, amount, payment_id, order_id, waiting, deliver, lost, unheard)
            if action == "reconcile":
                told.reconciled(app, frozenset(t.amount.minor for t in nameless if t.kind == "refund" and t.amount))
        except PaywireError:
            pass  # refused, declined or lost: the ledger says which, and the invariant below holds either way
        if action in _BESIDE:
            told.changed_beside(app, before)
        elif action in ("void", "retry"):
            told.voided_with(app, before)
        told.named(app, service, payment_id)
        collect()
        at_most_paypal()
        offered_at_most_paypal(service, app, payment_id, order_id, told)
    def decide() -> None:
        """PayPal decides what it holds pending (a payer's eCheck): the end state is a decided one."""
        before = told.snapshot(app)
        for cap in [c for c in app.captures.values() if c.status == "PENDING"]:
            app.settle_capture(cap.id, data.draw(st.sampled_from(["COMPLETED", "DECLINED"]), label="capture decided"))
        for ref in [r for r in app.refunds.values() if r.status == "PENDING"]:
            app.settle_refund(ref.id, data.draw(st.sampled_from(["COMPLETED", "FAILED", "CANCELLED"]),
                                                label="decided"))
        for auth in [a for a in app.authorizations.values() if a.status == "PENDING"]:
            app.decide_authorization(auth.id, data.draw(st.sampled_from(["CREATED", "DENIED"]), label="reviewed"))
        told.changed_beside(app, before)
        collect()

    decide()
    while waiting:
        deliver(waiting.pop(data.draw(st.integers(0, len(waiting) - 1), label="late event")))
        at_most_paypal()
        offered_at_most_paypal(service, app, payment_id, order_id, told)
    # A lost request PayPal refused may land until its life ends: sent again under its key, it is decided.
    for txn in service.list_transactions(payment_id, statuses=[TransactionStatus.UNKNOWN]):
        try:
            service.retry(txn.id)
        except PaywireError:
            pass
    decide()  # a retry may have made a capture PayPal holds pending in turn
    while waiting:
        deliver(waiting.pop())
    report = service.reconcile(payment_id=payment_id)
    if report.unresolved:
        # A lost request PayPal refused, whose retry's refusal (no amount left, say) may describe
        # its own effect: concluded only once it can no longer land.
        # The ledger's clock moved past the request's life, never a wait on the machine's speed.
        later = now() + timedelta(days=1)
        with mock.patch.object(service.ledger, "now", lambda: later):
            report = service.reconcile(payment_id=payment_id)
    assert report.clean, report
    unheard.clear()
    told.reconciled(app)
    offered_at_most_paypal(service, app, payment_id, order_id, told)
    payment = at_most_paypal()
    assert (payment.authorized.minor, payment.captured.minor, payment.refunded.minor) == _held(app, order_id)
    _nothing_that_took_effect_is_failed(service, app, payment_id, lost)
    _replays_agree(service, payment)
    reconciled_again_changes_nothing(service, payment_id)


def _step(
    service: PaymentService,
    app: PayPalEmulator,
    dashboard: Dashboard,
    data: Any,
    action: str,
    amount: Money,
    payment_id: str,
    order_id: str,
    waiting: list[dict[str, Any]],
    deliver: Callable[[dict[str, Any]], None],
    lost: dict[str, str],
    unheard: dict[str, int],
) -> None:
    order = app.orders[order_id]
    authorizations = [a for unit in order.purchase_units for a in unit.authorization_ids]
    captures = [app.captures[c] for unit in order.purchase_units for c in unit.capture_ids]

    def pick(items: list[Any], label: str) -> Any:
        return items[data.draw(st.integers(0, len(items) - 1), label=label)] if items else None

    if action.startswith("deliver") and waiting:
        index = data.draw(st.integers(0, len(waiting) - 1), label="event")
        deliver(waiting[index])
        if action == "deliver twice":
            deliver(waiting[index])
        waiting.pop(index)
    elif action == "capture":
        service.capture(payment_id, amount, final=data.draw(st.booleans(), label="final"))
    elif action == "dashboard capture" and authorizations:
        # Up to PayPal's overage limit: captures may take more than the authorization.
        auth = app.authorizations[authorizations[-1]]
        left = overage_limit(app, auth) - sum(app.captures[c].amount_minor for c in auth.capture_ids
                                              if app.captures[c].status in _MOVED | {"PENDING"})
        if left > 0:
            dashboard.post(f"/v2/payments/authorizations/{auth.id}/capture",
                           {"amount": _amount(min(amount.minor, left)),
                            "final_capture": data.draw(st.booleans(), label="final")})
    elif action == "refund":
        service.refund(payment_id, amount)
    elif action == "dashboard refund" and captures:
        dashboard.post(f"/v2/payments/captures/{pick(captures, 'capture').id}/refund", {"amount": _amount(amount.minor)})
    elif action in ("lost capture", "lost refund"):
        before = set(app.captures) | set(app.refunds)
        app.inject(Fault(kind="drop_after", path=r"/refund$" if action == "lost refund" else r"/capture$"))
        try:
            if action == "lost refund":
                service.refund(payment_id, amount)
            else:
                service.capture(payment_id, amount, final=data.draw(st.booleans(), label="final"))
        except OutcomeUnknown as error:
            made = (set(app.captures) | set(app.refunds)) - before
            if made and error.transaction_id:
                lost[error.transaction_id] = made.pop()
            raise
        finally:
            app.clear_faults()  # one refused before sending leaves the fault unused
    elif action == "retry":
        open_ = [
            t
            for t in service.list_transactions(payment_id)
            if t.status == TransactionStatus.UNKNOWN or (t.status == TransactionStatus.FAILED and t.retryable)
        ]
        if open_:
            service.retry(pick(open_, "retried").id)
    elif action == "void":
        service.void(payment_id)
    elif action == "dashboard void" and authorizations:
        dashboard.post(f"/v2/payments/authorizations/{authorizations[-1]}/void", {})
    elif action == "reauthorize" and authorizations:
        _reauthorize(app, dashboard, data, app.authorizations[authorizations[0]])
    elif action == "deny capture":
        completed = [c for c in captures if c.status == "COMPLETED"]
        if completed:
            denied = pick(completed, "denied")
            app.deny_capture(denied.id)
            unheard[denied.id] = denied.amount_minor
    elif action == "reverse capture":
        live = [c for c in captures if c.status in ("COMPLETED", "PARTIALLY_REFUNDED")]
        if live:
            app.reverse_capture(pick(live, "reversed").id)
    elif action == "decide":  # PayPal decides a pending capture, refund or reauthorization
        pending = [c.id for c in captures if c.status == "PENDING"]
        pending += [r.id for r in app.refunds.values() if r.status == "PENDING"]
        pending += [a for a in authorizations if app.authorizations[a].status == "PENDING"]
        chosen = pick(pending, "pending")
        if chosen in app.authorizations:
            app.decide_authorization(chosen, data.draw(st.sampled_from(["CREATED", "DENIED"]), label="review"))
        elif chosen in app.captures:
            app.settle_capture(chosen, data.draw(st.sampled_from(["COMPLETED", "DECLINED"]), label="decision"))
        elif chosen is not None:
            app.settle_refund(chosen, data.draw(st.sampled_from(["COMPLETED", "FAILED", "CANCELLED"]), label="dec"))
    elif action == "reconcile":
        service.reconcile(payment_id=payment_id)
        unheard.clear()
    elif action == "dispute":  # the payer disputes a capture, or PayPal decides an open dispute
        open_ = [d for d in app.disputes.values() if d.status == "OPEN"]
        try:
            if open_:
                app.resolve_dispute(open_[0].id, data.draw(st.booleans(), label="buyer wins"))
            elif captures:
                app.open_dispute(pick(captures, "disputed").id)
        except ValueError:
            pass  # nothing of the capture is left to dispute or reverse


def _reauthorize(app: PayPalEmulator, dashboard: Dashboard, data: Any, original: Any) -> None:
    """The merchant reauthorizes `original` beside paywire some days after it was made (PayPal's
    clock moves on; too soon, PayPal refuses), for an amount within PayPal's limit or at it (or one
    minor unit above it, refused), and PayPal creates it or holds it for review."""
    days = data.draw(st.sampled_from(_DAYS), label="days")
    behind = original.create_time + days * _DAY - app.now()
    if behind > 0:
        clock = app.clock
        app.clock = lambda: clock() + behind
        dashboard.login()
    limit = overage_limit(app, original)
    value = data.draw(st.sampled_from([1, original.amount_minor, limit, limit + 1]) | st.integers(1, limit),
                      label="reauthorized")
    app.review_reauthorizations = data.draw(st.booleans(), label="held for review")
    try:
        dashboard.post(f"/v2/payments/authorizations/{original.id}/reauthorize", {"amount": _amount(value)})
    finally:
        app.review_reauthorizations = False


def _nothing_that_took_effect_is_failed(
    service: PaymentService, app: PayPalEmulator, payment_id: str, lost: dict[str, str]
) -> None:
    """A capture or refund PayPal made and did not decide against is never recorded failed: not one
    whose answer was lost, nor one the ledger names as its PayPal object."""
    def took_effect(reference: str | None) -> bool:
        made = app.captures.get(reference or "") or app.refunds.get(reference or "")
        return made is not None and made.status not in _UNDONE

    for txn in service.list_transactions(payment_id):
        if txn.status == TransactionStatus.FAILED:
            assert not took_effect(txn.provider_reference), txn
            assert not took_effect(lost.get(txn.id)), (txn, lost[txn.id])


def _replays_agree(service: PaymentService, payment: Payment) -> None:
    """Each operation called again under its key answers what the ledger recorded, and changes
    nothing: a success returns the payment, a failure raises it (one PayPal decided, and settled
    from PayPal's word, as failed at the provider and sent no more)."""
    for txn in service.list_transactions(payment.id):
        if txn.origin != "service" or txn.kind not in ("authorize", "sale", "capture", "refund"):
            continue
        if txn.status == TransactionStatus.SUCCEEDED:
            assert service.retry(txn.id) == payment
        elif txn.status == TransactionStatus.FAILED and not txn.retryable:
            with pytest.raises(PaywireError) as replayed:
                service.retry(txn.id)
            assert not replayed.value.retryable and replayed.value.transaction_id == txn.id
            if txn.settled_by in (SettledBy.RECONCILE, SettledBy.WEBHOOK):
                assert (replayed.value.code, replayed.value.may_have_been_sent) == ("failed_at_provider", False)
    assert service.get_payment(payment.id) == payment
