"""Provider-side moves the ledger property test does not generate, through the payment service on
SQLite and PostgreSQL: refunds Stripe fails after they succeeded whose answer was lost, pending
refunds, authorizations lapsing or canceled while a capture's or a void's answer was lost, disputes
among partial refunds, events delivered before the operation's answer is recorded, in reverse and
twice, amounts in zero- and three-decimal currencies. After every step the ledger claims no more
than the emulator holds (read from its own store, not through the plugin), and in the end it holds
exactly that, reconcile is clean, and nothing that took effect is recorded failed."""

from __future__ import annotations

import itertools
import json
import os
import secrets
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paywire import Money, PaymentService, PaywireError, StateError, hookimpl
from paywire.ledger import TransactionStatus, open_ledger
from paywire.testing.emulator import Fault
from paywire_stripe.amounts import from_stripe, to_stripe
from paywire_stripe.emulator import StripeEmulator

Deliver = Callable[[set[str]], list[str]]
_RETURN = "https://shop.example/r"
_POSTGRES = os.environ.get("PAYWIRE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


def _postgres_schema() -> Iterator[str]:
    """A fresh schema of the test's own on the PostgreSQL server, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg", reason="the PostgreSQL ledger's driver: core[postgresql], which every session installs")
    try:
        psycopg.connect(_POSTGRES, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL must be reachable in CI: {exc}")
        pytest.skip(f"no PostgreSQL server at {_POSTGRES}")
    schema = f"pwtest_{os.getpid()}_{secrets.token_hex(4)}"
    yield schema
    with psycopg.connect(_POSTGRES, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def service(request: pytest.FixtureRequest, gateway: Any, tmp_path: Path) -> Iterator[PaymentService]:
    """A payment service on the gateway, with a ledger of its own on SQLite and on PostgreSQL."""
    if request.param == "sqlite":
        ledger = open_ledger(f"sqlite:///{tmp_path / 'ledger.db'}")
        yield PaymentService(gateway, ledger, wait_timeout=5.0)
        ledger.close()
        return
    for schema in _postgres_schema():
        ledger = open_ledger(f"{_POSTGRES}?schema={schema}")
        yield PaymentService(gateway, ledger, wait_timeout=5.0)
        ledger.close()


def held(app: Any, intent_id: str) -> tuple[int, int, int]:
    """(authorized, captured, refunded) of the intent in minor units, from the emulator's store:
    refunded counts succeeded refunds, less what a capture or a cancellation released where that was
    booked as a refund."""
    with app.lock:
        intent = app.store.payment_intents[intent_id]
        charge = app.store.charges.get(intent["latest_charge"] or "")
        if charge is None or charge["status"] != "succeeded":
            return 0, 0, 0
        card = charge["payment_method_details"].get("card") or {}
        authorized = card.get("amount_authorized") or charge["amount"]
        captured = charge["amount_captured"] if charge["captured"] else 0
        # A release booked as a refund: a partial capture's, or the whole of an uncaptured one's.
        booked = charge["id"] in app.store.booked_releases or not charge["captured"]
        released = charge["amount"] - captured if booked else 0
        refunded = sum(r["amount"] for r in app.store.refunds.values()
                       if r["charge"] == charge["id"] and r["status"] == "succeeded")
        figures = (authorized, captured, max(0, refunded - released))
        return tuple(from_stripe(amount, intent["currency"]).minor for amount in figures)  # type: ignore[return-value]


def check(service: PaymentService, app: Any, payment_id: str, *, equal: bool = False) -> None:
    payment = service.get_payment(payment_id)
    ledger = (payment.authorized.minor, payment.captured.minor, payment.refunded.minor)
    stripe = held(app, payment.reference or "")
    if equal:
        assert ledger == stripe, (ledger, stripe)
    else:
        assert all(mine <= theirs for mine, theirs in zip(ledger, stripe, strict=True)), (ledger, stripe)


def nothing_applied_is_failed(service: PaymentService, app: Any, payment_id: str) -> None:
    """Every failed refund's key names no refund Stripe made that succeeded."""
    for txn in service.list_transactions(payment_id):
        if txn.kind == "refund" and txn.status == TransactionStatus.FAILED:
            made = [r for r in app.store.refunds.values()
                    if (r.get("metadata") or {}).get("paywire_idempotency_key") == txn.idempotency_key]
            assert all(r["status"] != "succeeded" for r in made), (txn, made)


def settle_all(service: PaymentService, app: Any, payment_id: str, seen: set[str], deliver_all: Deliver) -> None:
    deliver_all(seen)
    check(service, app, payment_id)
    for txn in service.list_transactions(payment_id, statuses=[TransactionStatus.UNKNOWN]):
        try:
            service.retry(txn.id)
        except PaywireError:
            pass
        check(service, app, payment_id)
    deliver_all(seen)
    report = service.reconcile(payment_id=payment_id)
    assert report.clean, report
    check(service, app, payment_id, equal=True)
    nothing_applied_is_failed(service, app, payment_id)


@pytest.mark.parametrize("order", ["events first", "retry first", "reconcile first"])
def test_a_lost_refund_stripe_fails_later_is_not_counted_from_its_stale_replay(
        service: PaymentService, app: Any, deliver_all: Deliver, order: str) -> None:
    seen: set[str] = set()
    payment = service.sale("stripe", Money(10000, "EUR"), source="pm_card_refundFail", return_url=_RETURN)
    deliver_all(seen)
    app.inject(Fault(kind="drop_after", path=r"^/v1/refunds$"))
    with pytest.raises(PaywireError):
        service.refund(payment.id, Money(3000, "EUR"))
    check(service, app, payment.id)
    [refund] = [r for r in app.store.refunds.values() if r["metadata"]]
    app.settle(refund["id"], False)
    check(service, app, payment.id)
    [txn] = [t for t in service.list_transactions(payment.id) if t.kind == "refund"]
    steps = {"events first": lambda: deliver_all(seen), "retry first": lambda: service.retry(txn.id),
             "reconcile first": lambda: service.reconcile(payment_id=payment.id)}
    for name in [order, *[n for n in steps if n != order]]:
        try:
            steps[name]()
        except PaywireError:
            pass
        check(service, app, payment.id)
    settle_all(service, app, payment.id, seen, deliver_all)


def test_a_lost_refund_retried_after_stripe_failed_it_and_a_second_refund(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver) -> None:
    seen: set[str] = set()
    payment = service.sale("stripe", Money(10000, "EUR"), source="pm_card_refundFail", return_url=_RETURN)
    app.inject(Fault(kind="drop_after", path=r"^/v1/refunds$"))
    with pytest.raises(PaywireError):
        service.refund(payment.id, Money(6000, "EUR"))
    [refund] = [r for r in app.store.refunds.values() if r["metadata"]]
    app.settle(refund["id"], False)
    api.post("/v1/refunds", {"payment_intent": payment.reference, "amount": 7000})
    check(service, app, payment.id)
    [txn] = [t for t in service.list_transactions(payment.id) if t.kind == "refund"]
    try:
        service.retry(txn.id)
    except PaywireError:
        pass
    check(service, app, payment.id)
    settle_all(service, app, payment.id, seen, deliver_all)


def test_a_dashboard_refund_event_before_the_failed_event_of_a_refund_that_succeeded(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver) -> None:
    """Stripe fails a refund after it succeeded and reverses it on the balance, so the dashboard
    may refund that money again. The ledger, not told of the failure yet, still counts the first
    refund: refunds past all it held authorized, the dashboard refund's event has the service read
    the payment from Stripe rather than claim more captured or authorized than Stripe holds."""
    seen: set[str] = set()
    payment = service.sale("stripe", Money(1000, "EUR"), source="pm_card_refundFail", return_url=_RETURN)
    deliver_all(seen)
    service.refund(payment.id, Money(613, "EUR"))
    [refund] = app.store.refunds.values()
    app.settle(refund["id"], False)
    service.refund(payment.id, Money(1, "EUR"))
    api.post("/v1/refunds", {"payment_intent": payment.reference, "amount": 526})
    [dashboard] = [e for e in app.store.events if e not in seen and app.store.events[e]["type"] == "refund.created"
                   and app.store.events[e]["data"]["object"]["amount"] == 526]
    body, headers = app.signed_event(dashboard)
    service.receive_webhook("stripe", headers, body)
    seen.add(dashboard)
    after, (authorized, captured, refunded) = service.get_payment(payment.id), held(app, payment.reference or "")
    assert after.authorized.minor <= authorized and after.captured.minor <= captured  # 11.40 each: not so
    assert after.refunded.minor <= refunded + 613  # the failed refund: Stripe's word on it is the one it had
    settle_all(service, app, payment.id, seen, deliver_all)


@pytest.mark.parametrize("move", ["expire", "cancel"])
def test_a_capture_lost_before_it_ran_then_the_authorization_ended(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver, move: str) -> None:
    seen: set[str] = set()
    payment = service.authorize("stripe", Money(5000, "EUR"), source="pm_card_visa", return_url=_RETURN)
    deliver_all(seen)
    app.inject(Fault(kind="status", status=502, path=r"/capture$"))
    with pytest.raises(PaywireError):
        service.capture(payment.id, Money(2000, "EUR"))
    if move == "expire":
        app.expire(payment.reference)
    else:
        api.post(f"/v1/payment_intents/{payment.reference}/cancel", {})
    check(service, app, payment.id)
    settle_all(service, app, payment.id, seen, deliver_all)


def test_a_capture_answer_lost_events_first_then_dashboard_refund(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver) -> None:
    seen: set[str] = set()
    payment = service.authorize("stripe", Money(5000, "EUR"), source="pm_card_visa", return_url=_RETURN)
    app.inject(Fault(kind="drop_after", path=r"/capture$"))
    with pytest.raises(PaywireError):
        service.capture(payment.id, Money(2000, "EUR"))
    deliver_all(seen)
    check(service, app, payment.id)
    api.post("/v1/refunds", {"payment_intent": payment.reference, "amount": 500})
    deliver_all(seen)
    check(service, app, payment.id)
    service.refund(payment.id, Money(1000, "EUR"))
    check(service, app, payment.id)
    settle_all(service, app, payment.id, seen, deliver_all)


@pytest.mark.parametrize(("currency", "total", "parts"), [
    ("JPY", 10000, (3000, 1, 6999)),
    ("KRW", 5000, (2500, 2500)),
    ("BHD", 10000, (3330, 10)),
    ("ISK", 5000, (1000, 4000)),
])
def test_amounts_in_other_units_follow_partial_refunds_and_their_events(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver, currency: str, total: int,
        parts: tuple[int, ...]) -> None:
    seen: set[str] = set()
    payment = service.authorize("stripe", Money(total, currency), source="pm_card_visa", return_url=_RETURN)
    payment = service.capture(payment.id, Money(total - parts[-1], currency))
    check(service, app, payment.id)
    for number, part in enumerate(parts[:-1]):
        if number % 2:
            api.post("/v1/refunds", {"payment_intent": payment.reference, "amount": to_stripe(Money(part, currency))})
        else:
            service.refund(payment.id, Money(part, currency))
        deliver_all(seen)
        check(service, app, payment.id)
    settle_all(service, app, payment.id, seen, deliver_all)


@pytest.mark.parametrize("origin", ["dashboard", "lost answer"])
@pytest.mark.parametrize("order", ["reversed", "failed first", "created last"])
def test_a_failed_refunds_events_in_any_order(service: PaymentService, app: Any, api: Any, deliver_all: Deliver,
                                              origin: str, order: str) -> None:
    seen: set[str] = set()
    payment = service.sale("stripe", Money(10000, "EUR"), source="pm_card_refundFail", return_url=_RETURN)
    deliver_all(seen)
    if origin == "dashboard":
        api.post("/v1/refunds", {"payment_intent": payment.reference, "amount": 3000})
    else:
        app.inject(Fault(kind="drop_after", path=r"^/v1/refunds$"))
        with pytest.raises(PaywireError):
            service.refund(payment.id, Money(3000, "EUR"))
    [refund] = [r for r in app.store.refunds.values()]
    app.settle(refund["id"], False)
    pending = [e for e in app.store.events if e not in seen]
    if order == "reversed":
        pending.reverse()
    elif order == "failed first":
        pending.sort(key=lambda e: app.store.events[e]["type"] != "refund.failed")
    else:
        pending.sort(key=lambda e: app.store.events[e]["type"] == "refund.created")
    for event_id in pending:
        seen.add(event_id)
        body, headers = app.signed_event(event_id)
        service.receive_webhook("stripe", headers, body)
        check(service, app, payment.id)
    settle_all(service, app, payment.id, seen, deliver_all)


@pytest.mark.parametrize("origin", ["service", "dashboard", "lost answer"])
@pytest.mark.parametrize("outcome", [True, False])
def test_a_pending_refund_is_not_claimed_before_stripe_decides_it(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver, origin: str, outcome: bool) -> None:
    seen: set[str] = set()
    payment = service.sale("stripe", Money(10000, "EUR"), source="pm_card_pendingRefund", return_url=_RETURN)
    service.refund(payment.id, Money(1000, "EUR"))
    [first] = [r["id"] for r in app.store.refunds.values()]
    app.settle(first, True)
    if origin == "dashboard":
        api.post("/v1/refunds", {"payment_intent": payment.reference, "amount": 3000})
    elif origin == "lost answer":
        app.inject(Fault(kind="drop_after", path=r"^/v1/refunds$"))
        with pytest.raises(PaywireError):
            service.refund(payment.id, Money(3000, "EUR"))
    else:
        service.refund(payment.id, Money(3000, "EUR"))
    check(service, app, payment.id)
    service.reconcile(payment_id=payment.id)
    check(service, app, payment.id)
    deliver_all(seen)
    check(service, app, payment.id)
    service.reconcile(payment_id=payment.id)
    check(service, app, payment.id)
    [second] = [r["id"] for r in app.store.refunds.values() if r["status"] == "pending"]
    app.settle(second, outcome)
    check(service, app, payment.id)
    settle_all(service, app, payment.id, seen, deliver_all)


def deliver_shuffled(service: PaymentService, app: Any, seen: set[str], order: str) -> None:
    """Deliver every event `seen` lacks: in order, reversed, or each twice, the second time late."""
    pending = [e for e in app.store.events if e not in seen]
    seen.update(pending)
    if order == "reversed":
        pending.reverse()
    elif order == "twice":
        pending = pending + pending[::-1]
    for event_id in pending:
        body, headers = app.signed_event(event_id)
        service.receive_webhook("stripe", headers, body)


@pytest.mark.parametrize("order", ["in order", "reversed", "twice"])
@pytest.mark.parametrize("won", [True, False])
@pytest.mark.parametrize("lost", ["ran", "did not run"])
def test_a_chargeback_among_partial_refunds_and_a_lost_refund_answer(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver, order: str, won: bool, lost: str) -> None:
    """A dispute moves no refund and no capture at Stripe (the charge's amounts stay), and refuses
    refunds while it is a chargeback: the ledger follows, and a refund Stripe refused for it is
    failed, one it made before it is not."""
    seen: set[str] = set()
    payment = service.sale("stripe", Money(10000, "EUR"), source="pm_card_visa", return_url=_RETURN)
    service.refund(payment.id, Money(2000, "EUR"))
    api.post("/v1/refunds", {"payment_intent": payment.reference, "amount": 500})
    app.inject(Fault(kind="drop_after", path=r"^/v1/refunds$") if lost == "ran"
               else Fault(kind="status", status=502, path=r"^/v1/refunds$"))
    with pytest.raises(PaywireError):
        service.refund(payment.id, Money(3000, "EUR"))
    dispute = app.dispute(payment.reference)
    deliver_shuffled(service, app, seen, order)
    check(service, app, payment.id)
    with pytest.raises(PaywireError) as refused:
        service.refund(payment.id, Money(1000, "EUR"))
    assert isinstance(refused.value, StateError) and not refused.value.retryable, refused.value
    assert (refused.value.code, refused.value.state_conflict) == ("charge_disputed", False)
    check(service, app, payment.id)
    [txn] = [t for t in service.list_transactions(payment.id, statuses=[TransactionStatus.UNKNOWN])]
    try:
        service.retry(txn.id)
    except PaywireError as error:
        assert lost == "did not run" and error.code == "charge_disputed"
    check(service, app, payment.id)
    service.reconcile(payment_id=payment.id)
    check(service, app, payment.id)
    app.close_dispute(dispute["id"], won)
    deliver_shuffled(service, app, seen, order)
    settle_all(service, app, payment.id, seen, deliver_all)
    payment = service.get_payment(payment.id)
    assert payment.refunded == Money(5500 if lost == "ran" else 2500, "EUR")
    assert [t.kind for t in service.list_transactions(payment.id) if t.kind == "reversal"] == []


def test_an_inquiry_leaves_the_charge_refundable(service: PaymentService, app: Any, deliver_all: Deliver) -> None:
    seen: set[str] = set()
    payment = service.sale("stripe", Money(10000, "EUR"), source="pm_card_visa", return_url=_RETURN)
    dispute = app.dispute(payment.reference, inquiry=True)
    deliver_all(seen)
    service.refund(payment.id, Money(4000, "EUR"))
    app.close_dispute(dispute["id"], False)
    settle_all(service, app, payment.id, seen, deliver_all)
    assert service.get_payment(payment.id).refunded == Money(4000, "EUR")


class Between:
    """Runs `moves[command]` after Stripe answered that command and before the service records
    the answer: Stripe and the dashboard moving on, and events arriving, while the database is slow."""

    def __init__(self) -> None:
        self.moves: dict[str, Callable[[], None]] = {}

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Iterator[None]:
        response: Any = yield
        move = self.moves.pop(command, None)
        if move is not None:
            move()
        return response


@pytest.fixture
def between(gateway: Any) -> Between:
    hook = Between()
    gateway.plugins.register(hook, name="between")
    return hook


@pytest.mark.parametrize("order", ["in order", "reversed", "twice"])
def test_a_refund_failed_and_its_events_delivered_before_its_answer_is_recorded(
        service: PaymentService, app: Any, between: Between, deliver_all: Deliver, order: str) -> None:
    seen: set[str] = set()
    payment = service.sale("stripe", Money(10000, "EUR"), source="pm_card_refundFail", return_url=_RETURN)
    deliver_all(seen)

    def fail_it() -> None:
        [refund] = [r for r in app.store.refunds.values()]
        app.settle(refund["id"], False)
        deliver_shuffled(service, app, seen, order)
        check(service, app, payment.id)

    between.moves["refund"] = fail_it
    service.refund(payment.id, Money(3000, "EUR"))
    check(service, app, payment.id)
    settle_all(service, app, payment.id, seen, deliver_all)


@pytest.mark.parametrize("order", ["in order", "reversed", "twice"])
@pytest.mark.parametrize("flow", ["sale", "capture"])
def test_dashboard_refunds_and_their_events_before_a_capture_answer_is_recorded(
        service: PaymentService, app: Any, api: Any, between: Between, deliver_all: Deliver, order: str,
        flow: str) -> None:
    seen: set[str] = set()

    def refund_it() -> None:
        intent = list(app.store.payment_intents)[-1]
        api.post("/v1/refunds", {"payment_intent": intent, "amount": 700})
        [refund] = [r for r in app.store.refunds.values() if r["amount"] == 700]
        app.settle(refund["id"], False)
        api.post("/v1/refunds", {"payment_intent": intent, "amount": 300})
        deliver_shuffled(service, app, seen, order)

    between.moves[flow] = refund_it
    if flow == "sale":
        payment = service.sale("stripe", Money(5000, "EUR"), source="pm_card_refundFail", return_url=_RETURN)
    else:
        payment = service.authorize("stripe", Money(5000, "EUR"), source="pm_card_refundFail", return_url=_RETURN)
        payment = service.capture(payment.id, Money(4000, "EUR"))
    check(service, app, payment.id)
    settle_all(service, app, payment.id, seen, deliver_all)


@pytest.mark.parametrize("outcome", [True, False])
@pytest.mark.parametrize("refused", ["refund", "capture"])
def test_a_refusal_that_makes_the_service_read_stripe_while_a_dashboard_refund_is_pending(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver, outcome: bool, refused: str) -> None:
    seen: set[str] = set()
    if refused == "refund":
        payment = service.sale("stripe", Money(10000, "EUR"), source="pm_card_pendingRefund", return_url=_RETURN)
    else:
        payment = service.authorize("stripe", Money(10000, "EUR"), source="pm_card_pendingRefund",
                                    return_url=_RETURN)
        api.post(f"/v1/payment_intents/{payment.reference}/capture", {})
    api.post("/v1/refunds", {"payment_intent": payment.reference, "amount": 6000})
    with pytest.raises(PaywireError):
        if refused == "refund":
            service.refund(payment.id, Money(5000, "EUR"))
        else:
            service.capture(payment.id, Money(5000, "EUR"))
    check(service, app, payment.id)
    service.reconcile(payment_id=payment.id)
    check(service, app, payment.id)
    [refund] = [r["id"] for r in app.store.refunds.values()]
    app.settle(refund, outcome)
    check(service, app, payment.id)
    settle_all(service, app, payment.id, seen, deliver_all)


@pytest.mark.parametrize("outcome", [True, False])
@pytest.mark.parametrize("then", ["retry", "reconcile"])
@pytest.mark.parametrize("flow", ["sale", "capture"])
def test_a_lost_answer_read_back_while_a_dashboard_refund_is_pending(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver, outcome: bool, then: str,
        flow: str) -> None:
    seen: set[str] = set()
    if flow == "sale":
        app.inject(Fault(kind="drop_after", path=r"^/v1/payment_intents$"))
        with pytest.raises(PaywireError) as lost:
            service.sale("stripe", Money(10000, "EUR"), source="pm_card_pendingRefund", return_url=_RETURN)
        payment_id = lost.value.payment_id or ""
        intent = list(app.store.payment_intents)[-1]
    else:
        payment = service.authorize("stripe", Money(10000, "EUR"), source="pm_card_pendingRefund",
                                    return_url=_RETURN)
        payment_id, intent = payment.id, payment.reference or ""
        app.inject(Fault(kind="drop_after", path=r"/capture$"))
        with pytest.raises(PaywireError):
            service.capture(payment.id, Money(8000, "EUR"))
    api.post("/v1/refunds", {"payment_intent": intent, "amount": 6000})
    [txn] = service.list_transactions(payment_id, statuses=[TransactionStatus.UNKNOWN])
    if then == "retry":
        service.retry(txn.id)
    else:
        service.reconcile(payment_id=payment_id)
    check(service, app, payment_id)
    [refund] = [r["id"] for r in app.store.refunds.values() if r["amount"] == 6000]
    app.settle(refund, outcome)
    check(service, app, payment_id)
    settle_all(service, app, payment_id, seen, deliver_all)


@pytest.mark.parametrize("order", ["events first", "retry first"])
@pytest.mark.parametrize("move", ["ran", "did not run, then captured in the dashboard", "did not run, then expired"])
def test_a_lost_void(service: PaymentService, app: Any, api: Any, deliver_all: Deliver, order: str,
                     move: str) -> None:
    seen: set[str] = set()
    payment = service.authorize("stripe", Money(5000, "EUR"), source="pm_card_visa", return_url=_RETURN)
    deliver_all(seen)
    app.inject(Fault(kind="drop_after", path=r"/cancel$") if move == "ran"
               else Fault(kind="status", status=504, path=r"/cancel$"))
    with pytest.raises(PaywireError):
        service.void(payment.id)
    if "dashboard" in move:
        api.post(f"/v1/payment_intents/{payment.reference}/capture", {"amount_to_capture": 3000})
    elif "expired" in move:
        app.expire(payment.reference)
    [txn] = service.list_transactions(payment.id, statuses=[TransactionStatus.UNKNOWN])
    for step in (["events", "retry"] if order == "events first" else ["retry", "events"]):
        try:
            service.retry(txn.id) if step == "retry" else deliver_all(seen)
        except PaywireError:
            pass
        check(service, app, payment.id)
    settle_all(service, app, payment.id, seen, deliver_all)
    void = service.get_transaction(txn.id).status
    if move == "ran":
        assert void == TransactionStatus.SUCCEEDED
    elif "dashboard" in move:
        assert void == TransactionStatus.FAILED
    # An expiry releases the authorization as the void would have: Stripe's payment_intent.canceled
    # settles the void succeeded when it comes first, Stripe's refusal of the retry fails it when
    # that comes first; either way the payment is voided with nothing captured.


_MOVES = ("deliver", "deliver", "deliver twice", "capture", "lost capture", "unsent capture", "dashboard capture",
          "refund", "lost refund", "unsent refund", "dashboard refund", "void", "lost void", "unsent void",
          "dashboard cancel", "expire", "dispute", "decide refund", "retry", "reconcile", "answer late")
_PATHS = {"capture": r"/capture$", "refund": r"^/v1/refunds$", "void": r"/cancel$"}
_ledgers = itertools.count()


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_ledger_follows_stripe_through_the_moves_the_ledger_property_leaves_out(
        gateway_at: Any, webhook_secret: str, api: Any, tmp_path: Path, data: Any) -> None:
    """Voids, lapsed and canceled authorizations, requests refused before they ran, disputes,
    events arriving before an answer is recorded, and a zero-decimal currency, mixed with the
    moves of the ledger property: at every step the ledger claims no more than the emulator's store
    holds (a refund Stripe failed after it succeeded counts until the shop is told), and in the end
    it holds exactly that, reconcile is clean, and no capture or refund Stripe made is failed."""
    app = StripeEmulator(webhook_secret=webhook_secret)
    with app.serve() as server:
        ledger = open_ledger(f"sqlite:///{tmp_path / f'ledger-{next(_ledgers)}.db'}")
        try:
            _Moves(PaymentService(gateway_at(server.url), ledger, wait_timeout=5.0), app,
                   type(api)(server.url), data).run()
        finally:
            ledger.close()


class _Moves:
    """One example: a payment, a few moves, then everything delivered and reconciled."""

    def __init__(self, service: PaymentService, app: StripeEmulator, api: Any, data: Any) -> None:
        self.service, self.app, self.api, self.data = service, app, api, data
        self.currency = data.draw(st.sampled_from(["EUR", "JPY"]), label="currency")
        self.seen: set[str] = set()
        self.waiting: list[str] = []
        self.unheard: dict[str, int] = {}  # refunds Stripe failed after they succeeded, not told yet
        self.late = False  # deliver what Stripe sent before the next answer is recorded
        service.gateway.plugins.register(self, name="answer_late")

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Iterator[None]:
        response: Any = yield
        if self.late:
            self.collect()
            while self.waiting:
                self.deliver(self.waiting.pop(self.data.draw(st.integers(0, len(self.waiting) - 1))))
        return response

    def draw(self, strategy: Any, label: str) -> Any:
        return self.data.draw(strategy, label=label)

    def collect(self) -> None:
        new = [e for e in list(self.app.store.events) if e not in self.seen]
        self.seen.update(new)
        self.waiting.extend(new)

    def deliver(self, event_id: str) -> None:
        body, headers = self.app.signed_event(event_id)
        self.service.receive_webhook("stripe", headers, body)
        told = json.loads(body)["data"]["object"]
        if told.get("object") == "refund" and told.get("status") in ("failed", "canceled"):
            self.unheard.pop(told["id"], None)

    def check(self, *, equal: bool = False) -> None:
        payment = self.service.get_payment(self.payment_id)
        mine = (payment.authorized.minor, payment.captured.minor, payment.refunded.minor)
        authorized, captured, refunded = held(self.app, self.intent)
        if equal:
            assert mine == (authorized, captured, refunded), (mine, self.service.list_transactions(payment.id))
        else:
            bound = (authorized, captured, refunded + sum(self.unheard.values()))  # JPY, EUR: Stripe's unit
            assert all(a <= b for a, b in zip(mine, bound, strict=True)), (mine, bound, self.unheard)

    def run(self) -> None:
        money = Money(1000, self.currency)
        start = self.service.sale if self.draw(st.booleans(), "sale") else self.service.authorize
        card = self.draw(st.sampled_from(["pm_card_visa", "pm_card_refundFail", "pm_card_pendingRefund"]), "card")
        lost = self.draw(st.booleans(), "first answer lost")
        if lost:
            self.app.inject(Fault(kind="drop_after", path=r"^/v1/payment_intents$"))
        try:
            self.payment_id = start("stripe", money, source=card, return_url=_RETURN).id
        except PaywireError as error:
            self.payment_id = error.payment_id or ""
        if lost:
            self.service.reconcile(payment_id=self.payment_id)
        self.intent = self.service.get_payment(self.payment_id).reference or ""
        self.collect()
        for _ in range(self.draw(st.integers(0, 10), "moves")):
            move = self.draw(st.sampled_from(_MOVES), "move")
            self.late = move == "answer late"
            if self.late:
                move = self.draw(st.sampled_from(["capture", "refund", "void"]), "answered late")
            amount = Money(self.draw(st.integers(1, money.minor), "amount"), self.currency)
            try:
                self.move(move, amount)
            except PaywireError:
                pass  # refused, declined or lost: the ledger says which
            finally:
                self.late = False
                self.app.clear_faults()  # one refused before sending leaves its fault unused
            self.collect()
            self.check()
        self.settle()

    def move(self, move: str, amount: Money) -> None:
        app, api, service, intent = self.app, self.api, self.service, self.intent
        operation = move.split()[-1]
        if move.startswith("deliver") and self.waiting:
            index = self.draw(st.integers(0, len(self.waiting) - 1), "event")
            if move == "deliver twice":
                self.deliver(self.waiting[index])
            self.deliver(self.waiting.pop(index))
        elif operation in _PATHS and not move.startswith("dashboard"):
            if move.startswith(("lost", "unsent")):
                app.inject(Fault(kind="drop_after" if move.startswith("lost") else "status", status=502,
                                 path=_PATHS[operation]))
            if operation == "void":
                service.void(self.payment_id)
            else:
                (service.capture if operation == "capture" else service.refund)(self.payment_id, amount)
        elif move == "dashboard capture":
            api.post(f"/v1/payment_intents/{intent}/capture", {"amount_to_capture": to_stripe(amount)})
        elif move == "dashboard refund":
            api.post("/v1/refunds", {"payment_intent": intent, "amount": to_stripe(amount)})
        elif move == "dashboard cancel":
            api.post(f"/v1/payment_intents/{intent}/cancel", {})
        elif move == "expire" and app.get(intent)["status"] == "requires_capture":
            app.expire(intent)
        elif move == "dispute":
            open_ = [d for d in app.store.disputes.values() if d["status"] in ("needs_response", "warning_needs_response")]
            try:
                if open_:
                    app.close_dispute(open_[0]["id"], self.draw(st.booleans(), "won"))
                else:
                    app.dispute(intent, inquiry=self.draw(st.booleans(), "inquiry"))
            except ValueError:
                pass  # nothing captured and unrefunded to dispute
        elif move == "decide refund":
            undecided = [r for r in app.store.refunds.values() if r["status"] in ("pending", "succeeded")]
            if undecided:
                refund = undecided[self.draw(st.integers(0, len(undecided) - 1), "refund")]
                done = refund["status"] == "succeeded"
                try:
                    app.settle(refund["id"], False if done else self.draw(st.booleans(), "succeeds"))
                except ValueError:
                    pass  # a card whose refunds stay done
                if done and refund["status"] == "failed":
                    self.unheard[refund["id"]] = refund["amount"]
        elif move == "retry":
            open_ = self.service.list_transactions(self.payment_id, statuses=[TransactionStatus.UNKNOWN])
            if open_:
                service.retry(open_[self.draw(st.integers(0, len(open_) - 1), "retried")].id)
        elif move == "reconcile":
            service.reconcile(payment_id=self.payment_id)
            self.unheard.clear()

    def settle(self) -> None:
        """Every lost request sent again under its key, every refund decided, every event delivered."""
        for txn in self.service.list_transactions(self.payment_id, statuses=[TransactionStatus.UNKNOWN]):
            try:
                self.service.retry(txn.id)
            except PaywireError:
                pass
            self.check()
        for refund in [r for r in self.app.store.refunds.values() if r["status"] == "pending"]:
            self.app.settle(refund["id"], True)
        self.collect()
        while self.waiting:
            self.deliver(self.waiting.pop(self.draw(st.integers(0, len(self.waiting) - 1), "late event")))
            self.check()
        report = self.service.reconcile(payment_id=self.payment_id)
        assert report.clean, report
        assert not self.unheard, self.unheard
        self.check(equal=True)
        nothing_applied_is_failed(self.service, self.app, self.payment_id)
        keys = (self.app.get(self.intent)["metadata"] or {}).get("paywire_capture_key")
        assert not [t for t in self.service.list_transactions(self.payment_id)
                    if t.kind == "capture" and t.status == TransactionStatus.FAILED and t.idempotency_key == keys]


@pytest.mark.xfail(strict=True, reason=(
    "Decision needed: from 2025-03-31.basil a partial capture books no Refund for what it released, "
    "and the version is that of the request that captured (the dashboard's, another integration's), "
    "which the charge does not show. The plugin reads at its pinned version and takes a keyless "
    "refund of exactly the released amount for the release (`without_release`, `ReleaseFilter`), so "
    "a real one is never counted. Telling them apart needs a choice: require the account's captures "
    "at the pinned version, match the release by its creation with the capture's balance transaction, "
    "or pin the plugin to basil and drop the release handling."))
def test_a_refund_of_exactly_what_a_basil_capture_released_is_counted(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver) -> None:
    seen: set[str] = set()
    payment = service.authorize("stripe", Money(10000, "EUR"), source="pm_card_visa", return_url=_RETURN)
    basil = {"Stripe-Version": "2025-03-31.basil"}
    api.post(f"/v1/payment_intents/{payment.reference}/capture", {"amount_to_capture": 6000}, headers=basil)
    api.post("/v1/refunds", {"payment_intent": payment.reference, "amount": 4000}, headers=basil)
    api.post("/v1/refunds", {"payment_intent": payment.reference, "amount": 1000}, headers=basil)
    deliver_all(seen)
    check(service, app, payment.id)
    settle_all(service, app, payment.id, seen, deliver_all)


@pytest.mark.parametrize("order", ["failure first", "reversed"])
def test_a_refund_failure_delivered_while_the_payment_holds_nothing_waits_for_its_refund(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver, order: str) -> None:
    """The sale was declined, the buyer paid its intent with another card, a refund made in the
    dashboard failed after it succeeded: its failure, delivered before any event of the payment
    that followed, names a refund the ledger does not hold. It once failed the payment and was
    spent, so the refund's own late event counted it for good; it waits for the refund instead."""
    seen: set[str] = set()
    with pytest.raises(PaywireError) as declined:
        service.sale("stripe", Money(1000, "EUR"), source="pm_card_chargeDeclined", return_url=_RETURN)
    payment_id = declined.value.payment_id or ""
    intent = service.get_payment(payment_id).reference
    api.post(f"/v1/payment_intents/{intent}/confirm", {"payment_method": "pm_card_refundFail", "return_url": _RETURN})
    api.post("/v1/refunds", {"payment_intent": intent, "amount": 1})
    [refund] = list(app.store.refunds.values())
    app.settle(refund["id"], False)
    pending = [e for e in app.store.events if e not in seen]
    if order == "reversed":
        pending.reverse()
    else:
        pending.sort(key=lambda e: app.store.events[e]["type"] != "refund.failed")
    for event_id in pending:
        seen.add(event_id)
        body, headers = app.signed_event(event_id)
        service.receive_webhook("stripe", headers, body)
        check(service, app, payment_id)
    settle_all(service, app, payment_id, seen, deliver_all)


def _declined_then_paid(service: PaymentService, api: Any, start: Callable[[], object]) -> tuple[str, str]:
    """Run `start`, a first operation Stripe declines, then pay its PaymentIntent with another card
    as the buyer may (Stripe lets them, on the same intent): the payment's id and the intent's."""
    with pytest.raises(PaywireError) as declined:
        start()
    payment_id = declined.value.payment_id or ""
    intent = service.get_payment(payment_id).reference or ""
    api.post(f"/v1/payment_intents/{intent}/confirm", {"payment_method": "pm_card_visa", "return_url": _RETURN})
    return payment_id, intent


def test_a_sale_declined_then_paid_by_the_buyer_answers_its_retry_under_its_key_with_the_payment(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver) -> None:
    """The sale was declined, and the buyer then paid its intent with another card (Stripe lets
    them, on the same PaymentIntent). The shop, retrying the sale under its key (it never saw the
    first answer), is answered the payment as it stands, captured: told "declined" again, it would
    ask the buyer to pay a second time."""
    seen: set[str] = set()
    sale = {"source": "pm_card_chargeDeclined", "return_url": _RETURN, "idempotency_key": "order-42-sale"}
    payment_id, _ = _declined_then_paid(service, api, lambda: service.sale("stripe", Money(1000, "EUR"), **sale))
    deliver_all(seen)
    paid = service.sale("stripe", Money(1000, "EUR"), **sale)
    assert (paid.id, paid.state, paid.captured) == (payment_id, "captured", Money(1000, "EUR"))
    assert len(app.store.payment_intents) == 1
    assert [t.attempt for t in service.list_transactions(payment_id) if t.kind == "sale"] == [1]
    check(service, app, payment_id, equal=True)
    with pytest.raises(PaywireError) as another:  # the key stays the sale's: another use is still refused
        service.sale("stripe", Money(2000, "EUR"), **sale)
    assert another.value.code == "idempotency_key_reused"


@pytest.mark.parametrize("flow", ["sale", "authorize", "complete"])
def test_a_first_operation_declined_then_paid_answers_its_retry_with_the_payment_before_any_event(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver, flow: str) -> None:
    """The decline (a card's, or a failed 3-D Secure challenge's) left its PaymentIntent, which the
    buyer then paid with another card, and no event came yet: the retry under the key reads the
    intent before answering, so the shop is answered the payment Stripe holds, not the stored
    decline (told "declined", it would take the money a second time)."""
    seen: set[str] = set()
    key = f"order-43-{flow}"
    if flow == "complete":
        waiting = service.authorize("stripe", Money(1000, "EUR"), source="pm_card_threeDSecure2Required",
                                    return_url=_RETURN)
        app.complete_challenge(waiting.reference, succeed=False)

        def start() -> Any:
            return service.complete(waiting.id, idempotency_key=key)
    else:
        def start() -> Any:
            return (service.sale if flow == "sale" else service.authorize)(
                "stripe", Money(1000, "EUR"), source="pm_card_chargeDeclined", return_url=_RETURN,
                idempotency_key=key)
    with pytest.raises(PaywireError) as declined:
        start()
    payment_id = declined.value.payment_id or ""
    assert service.get_payment(payment_id).state == "failed"
    intent = service.get_payment(payment_id).reference
    api.post(f"/v1/payment_intents/{intent}/confirm", {"payment_method": "pm_card_visa", "return_url": _RETURN})
    paid = start()
    assert (paid.id, paid.state) == (payment_id, "captured" if flow == "sale" else "authorized")
    assert len(app.store.payment_intents) == 1
    check(service, app, payment_id, equal=True)
    if flow != "sale":
        service.capture(payment_id, Money(600, "EUR"))
    service.refund(payment_id, Money(400, "EUR"))
    check(service, app, payment_id, equal=True)
    settle_all(service, app, payment_id, seen, deliver_all)


def test_a_decline_still_standing_at_stripe_is_the_answer_to_its_retry(
        service: PaymentService, app: Any, deliver_all: Deliver) -> None:
    """Read, the intent still waits for a payment method: the stored decline stands, said checked;
    a read that fails leaves the stored decline as the answer, saying it could not be checked."""
    seen: set[str] = set()
    sale = {"source": "pm_card_chargeDeclined", "return_url": _RETURN, "idempotency_key": "order-44-sale"}
    with pytest.raises(PaywireError) as declined:
        service.sale("stripe", Money(1000, "EUR"), **sale)
    payment_id = declined.value.payment_id or ""
    calls = len(app.store.payment_intents)
    with pytest.raises(PaywireError) as again:
        service.sale("stripe", Money(1000, "EUR"), **sale)
    assert (type(again.value), again.value.code) == (type(declined.value), declined.value.code)
    assert (again.value.details["replayed"], again.value.details["reconciled"]) == (True, True)
    app.inject(Fault(kind="status", status=500, path=r"^/v1/payment_intents/"))
    with pytest.raises(PaywireError) as unread:
        service.sale("stripe", Money(1000, "EUR"), **sale)
    app.clear_faults()
    assert (type(unread.value), unread.value.code) == (type(declined.value), declined.value.code)
    assert unread.value.details["reconciled"] is False and unread.value.details["reconcile_error"]
    assert service.get_payment(payment_id).state == "failed"
    assert len(app.store.payment_intents) == calls
    settle_all(service, app, payment_id, seen, deliver_all)


def _no_read(app: Any) -> None:
    """Stripe fails the service's next read of an intent (a 500: unknown, read again later)."""
    app.inject(Fault(kind="status", status=500, method="GET", path=r"^/v1/payment_intents/"))


def _read_later(service: PaymentService, payment_id: str) -> None:
    """The Janitor's pass once the read the payment owes is due (its lease over)."""
    from paywire.ledger.model import Look
    from paywire.serve.janitor import Janitor

    assert list(service.ledger.owed_reads()) == [payment_id]
    with service.ledger.unit() as u:
        u.payment(payment_id, lock=True)
        u.set_owed_read(payment_id, Look(0, u.now()))
    assert Janitor(service).run_pass().caught_up == (payment_id,)
    assert service.ledger.owed_reads() == {}


@pytest.mark.parametrize("currency", ["EUR", "JPY"])
@pytest.mark.parametrize("read", ["answered", "failed, then the Janitor", "failed, then reconcile"])
def test_a_refund_after_a_dashboard_refund_reconcile_read_is_counted_with_it(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver, currency: str, read: str) -> None:
    """Reconcile read a refund made in the dashboard (a floor under the refunded total); the shop's
    refund then succeeds, which that total cannot take in: the payment is read at once, or, the
    read failing, owes one that the Janitor or reconcile() makes."""
    seen: set[str] = set()
    payment = service.sale("stripe", Money(10000, currency), source="pm_card_visa", return_url=_RETURN)
    api.post("/v1/refunds", {"payment_intent": payment.reference, "amount": to_stripe(Money(2500, currency))})
    service.reconcile(payment_id=payment.id)
    assert service.get_payment(payment.id).refunded == Money(2500, currency)
    if read != "answered":
        _no_read(app)
    payment = service.refund(payment.id, Money(3000, currency))
    check(service, app, payment.id)
    if read == "failed, then the Janitor":
        _read_later(service, payment.id)
    elif read == "failed, then reconcile":
        assert service.reconcile().caught_up == (payment.id,)
    assert service.get_payment(payment.id).refunded == Money(5500, currency)
    assert service.ledger.owed_reads() == {}
    check(service, app, payment.id, equal=True)
    with pytest.raises(StateError) as beyond:  # what is left is what Stripe has left: 4500
        service.refund(payment.id, Money(4501, currency))
    assert beyond.value.code == "refund_exceeds_captured"
    service.refund(payment.id, Money(4500, currency))
    settle_all(service, app, payment.id, seen, deliver_all)


@pytest.mark.parametrize("known", ["not yet", "by its event", "by reconcile"])
@pytest.mark.parametrize("read", ["answered", "failed"])
def test_a_capture_after_a_dashboard_capture_is_refused_and_the_payment_read(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver, known: str, read: str) -> None:
    """Stripe captures a PaymentIntent once: after the dashboard's partial capture the shop's
    capture is refused, by Stripe as a state conflict (then the intent is read) or, the ledger
    knowing of it, before sending; the ledger holds what Stripe captured, never more."""
    seen: set[str] = set()
    payment = service.authorize("stripe", Money(5000, "JPY"), source="pm_card_visa", return_url=_RETURN)
    deliver_all(seen)
    api.post(f"/v1/payment_intents/{payment.reference}/capture", {"amount_to_capture": 3000})
    if known == "by its event":
        deliver_all(seen)
    elif known == "by reconcile":
        service.reconcile(payment_id=payment.id)
    if read == "failed":
        _no_read(app)
    with pytest.raises(PaywireError) as refused:
        service.capture(payment.id, Money(2000, "JPY"))
    check(service, app, payment.id)
    if known == "not yet":
        assert (refused.value.code, refused.value.state_conflict) == ("payment_intent_unexpected_state", True)
        assert refused.value.details["reconciled"] is (read == "answered")
        if read == "failed":
            assert service.get_payment(payment.id).captured == Money(0, "JPY")
            _read_later(service, payment.id)
    else:
        assert refused.value.code == "no_capture_multiple"
        app.clear_faults()
    assert service.get_payment(payment.id).captured == Money(3000, "JPY")
    assert service.ledger.owed_reads() == {}
    check(service, app, payment.id, equal=True)
    with pytest.raises(PaywireError):
        service.capture(payment.id)
    service.refund(payment.id, Money(3000, "JPY"))
    settle_all(service, app, payment.id, seen, deliver_all)


@pytest.mark.parametrize("operation", ["capture", "void", "refund"])
def test_an_operation_stripe_refuses_for_a_dashboard_cancel_or_refund_owes_a_read_until_made(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver, operation: str) -> None:
    """A capture or void of an intent canceled in the dashboard, or a refund of more than the
    dashboard left, is refused by Stripe as a state conflict: recorded failed, and the read
    that fails leaves the payment owing one, as it was until then; reconcile() reads it."""
    seen: set[str] = set()
    start = service.sale if operation == "refund" else service.authorize
    payment = start("stripe", Money(5000, "EUR"), source="pm_card_visa", return_url=_RETURN)
    deliver_all(seen)
    if operation == "refund":
        api.post("/v1/refunds", {"payment_intent": payment.reference, "amount": 4000})
    else:
        api.post(f"/v1/payment_intents/{payment.reference}/cancel", {})
    _no_read(app)
    with pytest.raises(PaywireError) as refused:
        if operation == "refund":
            service.refund(payment.id, Money(2000, "EUR"))
        else:
            getattr(service, operation)(payment.id)
    assert refused.value.state_conflict and refused.value.details["reconciled"] is False
    assert refused.value.details["reconcile_error"]
    assert service.get_transaction(refused.value.transaction_id or "").status == TransactionStatus.FAILED
    assert list(service.ledger.owed_reads()) == [payment.id]
    check(service, app, payment.id)
    report = service.reconcile()
    assert report.caught_up == (payment.id,) and not report.errors
    assert service.ledger.owed_reads() == {}
    check(service, app, payment.id, equal=True)
    assert service.get_payment(payment.id).state == ("partially_refunded" if operation == "refund" else "voided")
    settle_all(service, app, payment.id, seen, deliver_all)


@pytest.mark.parametrize("operation", ["capture", "refund"])
def test_a_resend_stripe_answers_from_its_stored_first_answer_owes_a_read_until_made(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver, operation: str) -> None:
    """A capture's or refund's answer was lost; refunds were made in the dashboard meanwhile; the
    retry under its key gets Stripe's stored first answer (the intent as it was then): the
    payment owes a read, which failing, reconcile() makes later."""
    seen: set[str] = set()
    payment = service.authorize("stripe", Money(5000, "EUR"), source="pm_card_visa", return_url=_RETURN)
    if operation == "refund":
        payment = service.capture(payment.id)
    app.inject(Fault(kind="drop_after", path=r"/capture$" if operation == "capture" else r"^/v1/refunds$"))
    with pytest.raises(PaywireError) as lost:
        if operation == "capture":
            service.capture(payment.id, Money(4000, "EUR"))
        else:
            service.refund(payment.id, Money(1000, "EUR"))
    api.post("/v1/refunds", {"payment_intent": payment.reference, "amount": 500})
    # The capture's resend reads the intent itself (its answer takes the intent's totals); the
    # service's read lists the charge's refunds too, and that listing fails.
    app.inject(Fault(kind="status", status=500, method="GET", path=r"^/v1/refunds"))
    payment = service.retry(lost.value.transaction_id or "")  # type: ignore[assignment]
    check(service, app, payment.id)
    assert list(service.ledger.owed_reads()) == [payment.id]
    assert service.reconcile().caught_up == (payment.id,)
    check(service, app, payment.id, equal=True)
    assert service.get_payment(payment.id).refunded == Money(500 if operation == "capture" else 1500, "EUR")
    settle_all(service, app, payment.id, seen, deliver_all)


def test_a_completion_declined_then_paid_by_the_buyer_completes_before_any_event(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver) -> None:
    """The buyer failed 3-D Secure (the completion was declined), then paid the PaymentIntent with
    another card, and came back before Stripe's event: completing the payment again reads the
    intent, so the shop is answered the authorization Stripe holds, not "failed" (told that, it
    would ask the buyer to pay a second time)."""
    seen: set[str] = set()
    waiting = service.authorize("stripe", Money(1000, "EUR"), source="pm_card_threeDSecure2Required",
                                return_url=_RETURN)
    app.complete_challenge(waiting.reference, succeed=False)
    with pytest.raises(PaywireError):
        service.complete(waiting.id)
    assert service.get_payment(waiting.id).state == "failed"
    api.post(f"/v1/payment_intents/{waiting.reference}/confirm",
             {"payment_method": "pm_card_visa", "return_url": _RETURN})
    paid = service.complete(waiting.id)
    assert (paid.id, paid.state, paid.authorized) == (waiting.id, "authorized", Money(1000, "EUR"))
    check(service, app, waiting.id, equal=True)
    settle_all(service, app, waiting.id, seen, deliver_all)


@pytest.mark.parametrize("read", ["answered", "failed"])
def test_a_sale_paid_after_its_decline_then_refunded_in_the_dashboard_and_by_the_shop(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver, read: str) -> None:
    """The payment is known only from Stripe's totals (its sale was declined, the buyer paid the
    intent since, and the retry under the key read it): a refund made in the dashboard, then the
    shop's, are counted together, the shop's refund read at once, or once it is caught up."""
    seen: set[str] = set()
    sale = {"source": "pm_card_chargeDeclined", "return_url": _RETURN, "idempotency_key": "order-45-sale"}
    payment_id, intent = _declined_then_paid(service, api, lambda: service.sale("stripe", Money(10000, "JPY"), **sale))
    api.post("/v1/refunds", {"payment_intent": intent, "amount": 3000})
    paid = service.sale("stripe", Money(10000, "JPY"), **sale)
    assert (paid.captured, paid.refunded) == (Money(10000, "JPY"), Money(3000, "JPY"))
    if read == "failed":
        _no_read(app)
    service.refund(payment_id, Money(2000, "JPY"))
    check(service, app, payment_id)
    if read == "failed":
        assert service.reconcile().caught_up == (payment_id,)
    assert service.get_payment(payment_id).refunded == Money(5000, "JPY")
    check(service, app, payment_id, equal=True)
    service.refund(payment_id)
    settle_all(service, app, payment_id, seen, deliver_all)
    assert service.get_payment(payment_id).state == "refunded"


@pytest.mark.parametrize("event", ["not yet", "delivered"])
@pytest.mark.parametrize("flow", ["sale", "authorize"])
def test_a_payment_declined_then_paid_by_the_buyer_is_answered_by_complete(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver, flow: str, event: str) -> None:
    """The first operation was declined, the buyer paid its PaymentIntent with another card on the
    shop's page (Stripe.js), and the shop finishes the payment as after any buyer action: complete()
    answers the payment Stripe holds, whether its event came first or not, never "failed"."""
    seen: set[str] = set()
    payment_id, _ = _declined_then_paid(service, api, lambda: (service.sale if flow == "sale" else service.authorize)(
        "stripe", Money(1000, "EUR"), source="pm_card_chargeDeclined", return_url=_RETURN))
    if event == "delivered":
        deliver_all(seen)
    paid = service.complete(payment_id)
    assert (paid.id, paid.state) == (payment_id, "captured" if flow == "sale" else "authorized")
    assert len(app.store.payment_intents) == 1
    check(service, app, payment_id, equal=True)
    settle_all(service, app, payment_id, seen, deliver_all)


@pytest.mark.parametrize("paid", [True, False])
def test_a_retry_of_an_authorize_whose_completion_was_declined_reads_the_intent_before_answering(
        service: PaymentService, app: Any, api: Any, deliver_all: Deliver, paid: bool) -> None:
    """The authorize answered 3-D Secure, the buyer failed the challenge (the completion declined,
    the payment failed), then paid the PaymentIntent with another card, and no event came yet.
    The shop retrying the authorize under its key is answered the payment Stripe holds, as a
    retry of the completion or complete() is, not the failed one the ledger held (told that, it
    would take the money a second time); unpaid, it is answered failed, as before."""
    seen: set[str] = set()
    call = {"source": "pm_card_threeDSecure2Required", "return_url": _RETURN, "idempotency_key": "order-46-auth"}
    waiting = service.authorize("stripe", Money(1000, "EUR"), **call)
    app.complete_challenge(waiting.reference, succeed=False)
    with pytest.raises(PaywireError):
        service.complete(waiting.id)
    assert service.get_payment(waiting.id).state == "failed"
    if paid:
        api.post(f"/v1/payment_intents/{waiting.reference}/confirm",
                 {"payment_method": "pm_card_visa", "return_url": _RETURN})
    again = service.authorize("stripe", Money(1000, "EUR"), **call)
    expected = ("authorized", Money(1000, "EUR")) if paid else ("failed", Money(0, "EUR"))
    assert (again.id, again.state, again.authorized) == (waiting.id, *expected)
    assert len(app.store.payment_intents) == 1
    check(service, app, waiting.id, equal=True)
    settle_all(service, app, waiting.id, seen, deliver_all)
