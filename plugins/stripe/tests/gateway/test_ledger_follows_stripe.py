"""The ledger against Stripe under any mix of the shop's operations (voids included), the
dashboard's (cancellations included), authorizations Stripe lets lapse, lost answers, requests that
never reached Stripe, retries, refunds Stripe decides later, disputes, and Stripe's events
delivered late, twice and in any order: at every step the ledger claims no more than Stripe holds (a refund Stripe failed after
it succeeded counts as Stripe's until an event or a reconcile tells the shop: nothing else can),
and once every event is in and the payment reconciled, it holds what Stripe holds (and reconciling
it again changes nothing), and a replay of each operation says what the ledger recorded."""

from __future__ import annotations

import itertools
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paywire import CommandResult, Declined, Money, OutcomeUnknown, Payment, PaymentService, PaywireError, Subject
from paywire.ledger import TransactionStatus
from paywire.ledger.model import SettledBy
from paywire.ledger.url import open_ledger
from paywire.testing.emulator import Fault
from paywire.testing.ledger_checks import reconciled_again_changes_nothing
from paywire_stripe.emulator import StripeEmulator

_ledgers = itertools.count()
_RETURN = "https://shop.example/r"
_ACTIONS = (
    "deliver",
    "deliver",
    "deliver twice",
    "capture",
    "dashboard capture",
    "refund",
    "dashboard refund",
    "lost refund",
    "lost capture",
    "retry",
    "decide refund",
    "dispute",
    "reconcile",
    "void",
    "lost void",
    "dashboard cancel",
    "expire",
    "unsent",
)


def eur(minor: int) -> Money:
    return Money(minor, "EUR")


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_ledger_never_claims_more_than_stripe_and_ends_equal(
    gateway_at: Any, webhook_secret: str, api: Any, tmp_path: Path, data: Any
) -> None:
    app = StripeEmulator(webhook_secret=webhook_secret)  # one per example: its events are the example's
    with app.serve() as server:
        ledger = open_ledger(f"sqlite:///{tmp_path / f'ledger-{next(_ledgers)}.db'}")
        try:
            _run(PaymentService(gateway_at(server.url), ledger, wait_timeout=5.0), app, type(api)(server.url), data)
        finally:
            ledger.close()


def _run(service: PaymentService, app: StripeEmulator, api: Any, data: Any) -> None:
    flow = data.draw(st.sampled_from(["authorize", "sale"]), label="flow")
    card = data.draw(st.sampled_from(["pm_card_visa", "pm_card_refundFail", "pm_card_pendingRefund"]), label="card")
    first = data.draw(st.sampled_from(["paid", "declined", "declined, answer lost", "answer lost"]), label="first")
    start = service.authorize if flow == "authorize" else service.sale
    if "lost" in first:
        app.inject(Fault(kind="drop_after", path=r"^/v1/payment_intents$"))
    try:
        payment_id = start(
            "stripe", eur(1000), source="pm_card_chargeDeclined" if "declined" in first else card, return_url=_RETURN
        ).id
    except (Declined, OutcomeUnknown) as error:
        payment_id = error.payment_id or ""
    if "lost" in first:
        service.reconcile(payment_id=payment_id)
    intent = service.get_payment(payment_id).reference or ""
    if "declined" in first:  # the buyer pays the declined intent with another card
        assert api.post(f"/v1/payment_intents/{intent}/confirm", {"payment_method": card, "return_url": _RETURN}).body[
            "status"
        ] in ("succeeded", "requires_capture")
    seen: set[str] = set()
    waiting: list[str] = []
    # Refunds Stripe failed after they succeeded, by id, that no event or reconcile told the shop of
    # yet: the ledger cannot know, so until it is told Stripe's word on them is the one it had.
    unheard: dict[str, int] = {}

    def collect() -> None:
        waiting.extend(e for e in list(app.store.events) if e not in seen)
        seen.update(waiting)

    def deliver(event_id: str) -> None:
        body, headers = app.signed_event(event_id)
        service.receive_webhook("stripe", headers, body)
        told = json.loads(body)["data"]["object"]
        if told.get("object") == "refund" and told.get("status") in ("failed", "canceled"):
            unheard.pop(told["id"], None)

    def stripe_holds() -> CommandResult:
        return service.gateway.execute("stripe", "fetch", Subject(reference=intent))

    def at_most_stripe() -> Payment:
        payment, held = service.get_payment(payment_id), stripe_holds()
        assert held.authorized is not None and held.captured is not None and held.refunded is not None
        assert (
            payment.authorized <= held.authorized
            and payment.captured <= held.captured
            and payment.refunded.minor <= held.refunded.minor + sum(unheard.values())
        ), (payment, held, unheard)
        return payment

    collect()
    for _ in range(data.draw(st.integers(0, 8), label="steps")):
        action = data.draw(st.sampled_from(_ACTIONS), label="action")
        amount = eur(data.draw(st.integers(1, 1000), label="amount"))
        try:
            _step(service, app, api, data, action, amount, payment_id, intent, waiting, deliver, unheard)
        except PaywireError:
            pass  # refused, declined or lost: the ledger says which, and the invariant below holds either way
        collect()
        at_most_stripe()
    _settle_pending_refunds(app)
    collect()
    while waiting:
        deliver(waiting.pop(data.draw(st.integers(0, len(waiting) - 1), label="late event")))
        at_most_stripe()
    # A request whose answer was lost and that Stripe refused may land until its life ends: sent
    # again under its key, Stripe answers what it answered then.
    for txn in service.list_transactions(payment_id, statuses=[TransactionStatus.UNKNOWN]):
        try:
            service.retry(txn.id)
        except PaywireError:
            pass
    _settle_pending_refunds(app)  # a refund such a retry made pending: Stripe decides it too
    collect()
    while waiting:
        deliver(waiting.pop())
    report = service.reconcile(payment_id=payment_id)
    assert report.clean, report
    assert not unheard, unheard  # every failure was delivered
    payment, held = at_most_stripe(), stripe_holds()
    assert (payment.authorized, payment.captured, payment.refunded) == (held.authorized, held.captured, held.refunded)
    _replays_agree(service, payment)
    reconciled_again_changes_nothing(service, payment_id)


def _settle_pending_refunds(app: StripeEmulator) -> None:
    """Stripe decides every refund it holds pending: they succeed."""
    for refund in [r for r in app.store.refunds.values() if r["status"] == "pending"]:
        app.settle(refund["id"], True)


def _step(
    service: PaymentService,
    app: StripeEmulator,
    api: Any,
    data: Any,
    action: str,
    amount: Money,
    payment_id: str,
    intent: str,
    waiting: list[str],
    deliver: Any,
    unheard: dict[str, int],
) -> None:
    if action.startswith("deliver") and waiting:
        index = data.draw(st.integers(0, len(waiting) - 1), label="event")
        deliver(waiting[index] if action == "deliver twice" else waiting.pop(index))
        if action == "deliver twice":
            deliver(waiting.pop(index))
    elif action == "capture":
        service.capture(payment_id, amount)
    elif action == "dashboard capture":
        api.post(f"/v1/payment_intents/{intent}/capture", {"amount_to_capture": amount.minor})
    elif action == "refund":
        service.refund(payment_id, amount)
    elif action == "dashboard refund":
        api.post("/v1/refunds", {"payment_intent": intent, "amount": amount.minor})
    elif action in ("lost refund", "lost capture"):
        app.inject(Fault(kind="drop_after", path=r"^/v1/refunds$" if action == "lost refund" else r"/capture$"))
        try:
            (service.refund if action == "lost refund" else service.capture)(payment_id, amount)
        finally:
            app.clear_faults()  # one refused before sending leaves the fault unused
    elif action in ("void", "lost void"):
        if action == "lost void":
            app.inject(Fault(kind="drop_after", path=r"/cancel$"))
        try:
            service.void(payment_id)
        finally:
            app.clear_faults()
    elif action == "unsent":  # a 503 before Stripe: nothing applied, the outcome unknown to the shop
        operation = data.draw(st.sampled_from(["capture", "refund", "void"]), label="unsent")
        app.inject(Fault(kind="status", status=503, path=r"^/v1/refunds$|/capture$|/cancel$"))
        try:
            if operation == "void":
                service.void(payment_id)
            else:
                (service.refund if operation == "refund" else service.capture)(payment_id, amount)
        finally:
            app.clear_faults()
    elif action == "dashboard cancel":  # refused by Stripe once captured: nothing changes then
        api.post(f"/v1/payment_intents/{intent}/cancel", {})
    elif action == "expire":  # the uncaptured authorization lapses: Stripe cancels the intent itself
        try:
            app.expire(intent)
        except ValueError:
            pass  # captured, canceled, or never authorized
    elif action == "retry":
        open_ = [
            t
            for t in service.list_transactions(payment_id)
            if t.status == TransactionStatus.UNKNOWN or (t.status == TransactionStatus.FAILED and t.retryable)
        ]
        if open_:
            service.retry(open_[data.draw(st.integers(0, len(open_) - 1), label="retried")].id)
    elif action == "decide refund":  # a pending refund decided, or a refundFail card's refund failed after it succeeded
        undecided = [r for r in app.store.refunds.values() if r["status"] in ("pending", "succeeded")]
        if undecided:
            refund = undecided[data.draw(st.integers(0, len(undecided) - 1), label="refund")]
            done = refund["status"] == "succeeded"
            try:
                app.settle(refund["id"], False if done else data.draw(st.booleans()))
            except ValueError:
                pass  # a card whose refunds stay done
            if done and app.store.refunds[refund["id"]]["status"] == "failed":
                unheard[refund["id"]] = refund["amount"]  # in EUR, Stripe's unit is the minor unit
    elif action == "dispute":  # the cardholder's bank: a chargeback or inquiry, or its decision
        open_ = [d for d in app.store.disputes.values() if d["status"] in ("needs_response", "warning_needs_response")]
        try:
            if open_:
                app.close_dispute(open_[0]["id"], data.draw(st.booleans(), label="won"))
            else:
                app.dispute(intent, inquiry=data.draw(st.booleans(), label="inquiry"))
        except ValueError:
            pass  # nothing captured and unrefunded to dispute
    elif action == "reconcile":
        service.reconcile(payment_id=payment_id)
        unheard.clear()


def _replays_agree(service: PaymentService, payment: Payment) -> None:
    """Each operation called again under its key answers what the ledger recorded, and sends and
    changes nothing: a success returns the payment, a failure raises it (one Stripe decided, and
    settled from Stripe's word, as failed at the provider and sent no more), except a declined
    first operation whose intent the buyer paid since with another card: the payment answers it,
    so the shop never asks for the money twice."""
    for txn in service.list_transactions(payment.id):
        if txn.origin != "service" or txn.kind not in ("authorize", "sale", "capture", "refund"):
            continue
        paid_since = txn.kind in ("authorize", "sale") and payment.authorized.minor > 0 and not txn.retryable
        if txn.status == TransactionStatus.SUCCEEDED or (txn.status == TransactionStatus.FAILED and paid_since):
            assert service.retry(txn.id) == payment
        elif txn.status == TransactionStatus.FAILED and not txn.retryable:
            with pytest.raises(PaywireError) as replayed:
                service.retry(txn.id)
            assert not replayed.value.retryable and replayed.value.transaction_id == txn.id
            if txn.settled_by in (SettledBy.RECONCILE, SettledBy.WEBHOOK):
                assert (replayed.value.code, replayed.value.may_have_been_sent) == ("failed_at_provider", False)
    assert service.get_payment(payment.id) == payment
