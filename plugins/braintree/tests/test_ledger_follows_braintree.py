"""The ledger against Braintree under any mix of the shop's captures, refunds and voids, the
Control Panel's captures, voids and refunds, the batch settling or declining what was submitted,
authorizations left to expire, the bank returning a settled bank debit or refund, lost answers,
requests that never reached Braintree, their retries, reconciliation, and Braintree's
notifications delivered late, twice and in any order: at every step the ledger claims no more than
Braintree holds, nor lets more be refunded or captured than Braintree would take of what paywire
was told, and once every notification is in and the payment reconciled, it holds what Braintree
holds, and nothing that took effect at Braintree is recorded failed."""

from __future__ import annotations

import itertools
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any
from unittest import mock

import pytest
from graphql import GraphQLError
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import paywire_braintree
from paywire import (
    Gateway,
    Money,
    OutcomeUnknown,
    Payment,
    PaymentService,
    PaywireError,
    Plugins,
    Retry,
    SQLiteLedger,
    StateError,
)
from paywire.ledger import TransactionStatus
from paywire.ledger.model import now
from paywire.testing.emulator import EmulatorServer, Fault
from paywire.testing.ledger_checks import offers_at_most
from paywire.testing.sandbox import load_sandbox
from paywire_braintree.emulator import BraintreeEmulator
from paywire_braintree.emulator.model import CAPTURED, Transaction

_ledgers = itertools.count()
_MOVED = ("SUBMITTED_FOR_SETTLEMENT", "SETTLING", "SETTLED", "SETTLEMENT_CONFIRMED")
_WAITING = ("SUBMITTED_FOR_SETTLEMENT", "SETTLEMENT_PENDING", "SETTLING")
_SETTLED = ("SETTLING", "SETTLED", "SETTLEMENT_CONFIRMED")
_NOT_REFUNDED = ("PROCESSOR_DECLINED", "SETTLEMENT_DECLINED", "FAILED")
_UNDECIDED = ("AUTHORIZED", "SETTLEMENT_PENDING")  # a refund Braintree has not decided
_SUBMITTED = ("SUBMITTED_FOR_SETTLEMENT", "SETTLEMENT_PENDING")  # a sale or whole capture made
_LOST = {"capture": r"/graphql/(partialCaptureTransaction|captureTransaction)$",
         "refund": r"/graphql/(refundTransaction|reverseTransaction)$",
         "void": r"/graphql/reverseTransaction$"}
_ACTIONS = (
    "deliver", "deliver", "deliver twice", "redeliver", "capture", "capture", "final capture", "refund", "refund", "lost capture",
    "lost refund", "retry", "panel capture", "panel void", "panel refund", "settle", "settle", "decline settlement",
    "reconcile", "lost capture, voided", "lost refund, panel twin", "void", "lost void", "lost final capture",
    "expire", "bank return", "unsent",
)


class _Braintree(BraintreeEmulator):
    """The emulator keeping its notifications for the test to deliver when and as often as it likes."""

    def __init__(self, public_key: str, private_key: str, settlement: str) -> None:
        super().__init__(public_key, private_key, settlement=settlement)
        self.webhook_url = "http://127.0.0.1:9/kept"  # never posted: kept below
        self.sent: list[bytes] = []
        self.news: dict[bytes, str] = {}  # a notification of a settlement declined: that transaction
        self.delivered: list[bytes] = []  # for Braintree's redeliveries, any time later
        self.about: dict[bytes, str] = {}  # a notification: the transaction it is about

    def deliver_webhook(self, body: bytes, headers: Mapping[str, str]) -> None:
        self.sent.append(body)

    def notify(self, kind: str, transaction: Transaction) -> None:
        sent = len(self.sent)
        super().notify(kind, transaction)
        self.about.update((body, transaction.id) for body in self.sent[sent:])


def eur(minor: int) -> Money:
    return Money(minor, "EUR")


def _minor(value: Decimal) -> int:
    return int(value * 100)


def _captures(app: BraintreeEmulator, root: Transaction) -> list[Transaction]:
    """The payment's captures: an authorization's partial ones, or the sale or whole capture itself,
    once submitted for settlement: SUBMITTED_FOR_SETTLEMENT, or SETTLEMENT_PENDING for a bank account
    (captured money whose settlement is not decided yet, counted once it settles)."""
    if root.children:
        return [app.transactions[c] for c in root.children]
    return [root] if any(e["status"] in _SUBMITTED for e in root.history) else []


def _reversed_by_the_shop(app: BraintreeEmulator, capture: Transaction) -> bool:
    """A capture the shop refunded in full before settlement: voided under its own void key (one
    inherited from its authorization is a void that never landed there)."""
    key = capture.custom.get("paywire_void_key")
    inherited = app.transactions[capture.parent].custom.get("paywire_void_key") if capture.parent else None
    return capture.status == "VOIDED" and key is not None and key != inherited


def held(app: BraintreeEmulator, reference: str, told: Mapping[str, str] | None = None) -> tuple[int, int]:
    """What Braintree holds for the payment: (captured, refunded) in minor units, read from its
    records; the refunds of a capture the bank returned count nothing, as the outcome model reads
    them (no money the payment held was given back). `told` gives the status paywire last had reason to know for a transaction the batch
    declined or the Control Panel voided, until a notification or reconciliation tells it."""
    with app.lock:
        def status(t: Transaction) -> str:
            return (told or {}).get(t.id, t.status)

        root = app.transactions[reference]
        captured = refunded = Decimal(0)
        for capture in _captures(app, root):
            if status(capture) in _MOVED or _reversed_by_the_shop(app, capture):
                captured += capture.amount
            if _reversed_by_the_shop(app, capture):
                refunded += capture.amount
            if status(capture) in _MOVED:  # a refund of a capture the bank returned gave back nothing it held
                refunded += sum((app.transactions[r].amount for r in capture.refunds
                                 if status(app.transactions[r]) in _MOVED), Decimal(0))
        return _minor(captured), _minor(refunded)


def refundable(app: BraintreeEmulator, reference: str, told: Mapping[str, str], unheard: set[str]) -> int:
    """What Braintree would refund of the payment, in minor units, as far as paywire was told: each
    capture settling or settled less its refunds standing, and all of one submitted for settlement
    (the refund in full that reverses it). A refund made in the Control Panel counts once a
    notification or reconciliation told of it (`unheard` until then), and not while Braintree has
    not decided it: the ledger has no place for such a refund yet (pinned in
    test_pending_panel_operations)."""
    with app.lock:
        def status(t: Transaction) -> str:
            return told.get(t.id, t.status)

        total = Decimal(0)
        for capture in _captures(app, app.transactions[reference]):
            refunds = [app.transactions[r] for r in capture.refunds if r not in unheard]
            spent = sum((r.amount for r in refunds if status(r) not in _NOT_REFUNDED
                         and not (r.origin == "CONTROL_PANEL" and status(r) in _UNDECIDED)), Decimal(0))
            if status(capture) in _SETTLED:
                total += capture.amount - spent
            elif status(capture) == "SUBMITTED_FOR_SETTLEMENT" and not capture.refunds:
                total += capture.amount
        return _minor(total)


def capturable(app: BraintreeEmulator, reference: str, told: Mapping[str, str], unheard: set[str]) -> int:
    """What Braintree would still capture of an authorization, in minor units, as far as paywire
    was told: all of it while AUTHORIZED, or, captured in parts and open to more, what its captures
    (those paywire was told of) have left; nothing of anything else."""
    with app.lock:
        root = app.transactions[reference]
        status = told.get(root.id, root.status)
        if root.id in unheard and not root.children:  # captured whole in the Control Panel, not told yet
            return _minor(root.amount)
        if not root.children:
            return _minor(root.amount) if status == "AUTHORIZED" else 0
        closer = next((c for c in reversed(root.children) if c in unheard), None)
        if (root.closed and closer is None) or status not in ("AUTHORIZED", "SETTLEMENT_PENDING"):
            return 0  # a capture paywire was not told of may have closed it: then it is open as far as paywire knows
        taken = sum((app.transactions[c].amount for c in root.children
                     if c not in unheard and told.get(c, app.transactions[c].status) in CAPTURED), Decimal(0))
        return _minor(root.amount - taken)


def offered_at_most_braintree(service: PaymentService, app: BraintreeEmulator, payment_id: str, reference: str,
                              told: Mapping[str, str], unheard: set[str]) -> None:
    """A refund or capture of one minor unit more than Braintree would take (of what paywire was
    told, or of what it holds, the larger: a refusal that reconciles tells paywire more than the
    test tracks) is refused by the service's rules, before anything is sent."""
    offers_at_most(service, payment_id,
                   refund=max(refundable(app, reference, told, unheard), refundable(app, reference, {}, unheard)),
                   capture=max(capturable(app, reference, told, unheard), capturable(app, reference, {}, unheard)))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_the_ledger_never_claims_more_than_braintree_and_ends_equal(tmp_path: Path, data: Any) -> None:
    settlement = data.draw(st.sampled_from(["instant", "batch"]), label="settlement")
    with _served(tmp_path / f"ledger-{next(_ledgers)}.db", settlement, wait_timeout=5.0) as (service, app):
        _run(service, app, data, ("fake-valid-nonce", "paywire-emulator-refund-pending-nonce"))


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_a_bank_accounts_ledger_never_claims_more_than_braintree_and_ends_equal(tmp_path: Path, data: Any) -> None:
    """The same for a US bank account (ACH), whose sales, captures and refunds Braintree holds
    SETTLEMENT_PENDING until the batch settles or declines them: taken, nothing moved yet."""
    settlement = data.draw(st.sampled_from(["instant", "batch"]), label="settlement")
    with _served(tmp_path / f"ledger-{next(_ledgers)}.db", settlement, wait_timeout=5.0) as (service, app):
        _run(service, app, data, ("paywire-emulator-bank-account-nonce",))


@contextmanager
def _served(path: Path, settlement: str, **options: Any) -> Iterator[tuple[PaymentService, _Braintree]]:
    """A payment service (with `options`) on a SQLite ledger at `path`, through a gateway sending
    each request once to an emulator of its own that keeps its notifications, settling as
    `settlement` says; and that emulator."""
    sandbox = load_sandbox(paywire_braintree.BRAINTREE)
    assert isinstance(sandbox.app, BraintreeEmulator)
    app = _Braintree(sandbox.app.public_key, sandbox.app.private_key, settlement)
    plugins = Plugins()
    plugins.register(paywire_braintree)
    ledger = SQLiteLedger(str(path))
    try:
        with EmulatorServer(app) as server, Gateway([sandbox.method("braintree", server.url)], plugins=plugins,
                                                    retry=Retry.never()) as gateway:
            yield PaymentService(gateway, ledger, **options), app
    finally:
        ledger.close()


def _run(service: PaymentService, app: _Braintree, data: Any, sources: tuple[str, ...]) -> None:
    flow = data.draw(st.sampled_from(["authorize", "sale"]), label="flow")
    source = data.draw(st.sampled_from(sources), label="source")
    lost = data.draw(st.booleans(), label="first answer lost")
    if lost:
        app.inject(Fault(kind="drop_after", path=r"/graphql/(authorize|charge)PaymentMethod$"))
    try:
        payment_id = (service.authorize if flow == "authorize" else service.sale)(
            "braintree", eur(10000), source=source, order_id="order-1", idempotency_key="first").id
    except OutcomeUnknown as error:
        payment_id = error.payment_id or ""
    app.clear_faults()
    if lost and data.draw(st.booleans(), label="voided in the Control Panel before the batch"):
        _void_submitted(app, "first", {})  # the sale made: it took effect, and the void undid it
    if lost:
        service.reconcile(payment_id=payment_id)
    reference = service.get_payment(payment_id).reference or ""
    assert reference in app.transactions
    waiting: list[bytes] = []
    told: dict[str, str] = {}  # what paywire may still believe of a transaction undone behind its back
    unheard: set[str] = set()  # made in the Control Panel: paywire learns of it when notified or reconciling
    amounts: list[int] = []

    def collect() -> None:
        waiting.extend(app.sent)
        app.sent.clear()

    def deliver(body: bytes) -> None:
        service.receive_webhook("braintree", {"content-type": "application/x-www-form-urlencoded"}, body)
        app.delivered.append(body)
        if body in app.news:
            told.pop(app.news[body], None)  # the notification says what was undone
        unheard.discard(app.about.get(body, ""))

    def at_most_braintree() -> Payment:
        payment = service.get_payment(payment_id)
        captured, refunded = held(app, reference, told)
        assert payment.captured.minor <= captured and payment.refunded.minor <= refunded, (payment, captured, refunded)
        return payment

    for number in range(data.draw(st.integers(0, 12), label="steps")):
        action = data.draw(st.sampled_from(_ACTIONS), label="action")
        if amounts and data.draw(st.booleans(), label="an amount again"):
            amount = eur(data.draw(st.sampled_from(amounts), label="amount"))
        else:
            amount = eur(data.draw(st.integers(1, 6000), label="amount"))
        amounts.append(amount.minor)
        try:
            _step(service, app, data, action, amount, payment_id, reference, f"step-{number}", waiting, told, deliver,
                  unheard)
        except PaywireError:
            pass  # refused, declined or lost: the ledger says which, and the invariant below holds either way
        collect()
        at_most_braintree()
        offered_at_most_braintree(service, app, payment_id, reference, told, unheard)
    for transaction in list(app.transactions.values()):  # the batch runs
        if transaction.status in _WAITING and not transaction.children:
            app.settle(transaction.id)
    collect()
    while waiting:
        deliver(waiting.pop(data.draw(st.integers(0, len(waiting) - 1), label="late notification")))
        at_most_braintree()
        offered_at_most_braintree(service, app, payment_id, reference, told, unheard)
    for txn in service.list_transactions(payment_id, statuses=[TransactionStatus.UNKNOWN]):
        try:
            service.retry(txn.id)
        except PaywireError:
            pass
    collect()
    while waiting:
        deliver(waiting.pop())
    # A request whose answer was lost and that Braintree shows nothing of is concluded not applied
    # only once it can no longer land: reconcile after its life.
    later = now() + timedelta(days=1)
    with mock.patch.object(service.ledger, "now", lambda: later):
        report = service.reconcile(payment_id=payment_id)
    assert report.clean, report
    told.clear()
    unheard.clear()
    offered_at_most_braintree(service, app, payment_id, reference, told, unheard)
    payment = at_most_braintree()
    assert (payment.captured.minor, payment.refunded.minor) == held(app, reference)
    _nothing_that_took_effect_is_failed(service, app, payment_id)
    _nothing_voided_once_submitted_is_failed(service, app, payment_id)


def _step(service: PaymentService, app: _Braintree, data: Any, action: str, amount: Money, payment_id: str,
          reference: str, key: str, waiting: list[bytes], told: dict[str, str], deliver: Any,
          unheard: set[str]) -> None:
    root = app.transactions[reference]
    if action == "redeliver":
        if app.delivered:
            deliver(app.delivered[data.draw(st.integers(0, len(app.delivered) - 1), label="redelivered")])
    elif action.startswith("deliver"):
        if not waiting:
            return
        index = data.draw(st.integers(0, len(waiting) - 1), label="notification")
        deliver(waiting[index] if action == "deliver twice" else waiting.pop(index))
        if action == "deliver twice":
            deliver(waiting.pop(index))
    elif action in ("capture", "final capture"):
        service.capture(payment_id, amount, final=action == "final capture", idempotency_key=key)
    elif action == "refund":
        service.refund(payment_id, amount, idempotency_key=key)
    elif action == "lost refund, panel twin":
        # The merchant refunds the same amount in the Control Panel, its notification delivered
        # before reconciliation: it waits on the lost refund, which it may be.
        app.inject(Fault(kind="drop_after", path=_LOST["refund"]))
        try:
            service.refund(payment_id, amount, idempotency_key=key)
        except PaywireError:
            pass
        finally:
            app.clear_faults()
        sent = len(app.sent)
        _panel(app, data, "panel refund", amount, root, told, unheard)
        for body in app.sent[sent:]:
            deliver(body)
    elif action == "unsent":  # a 503 before Braintree: nothing applied, the outcome unknown to the shop
        operation = data.draw(st.sampled_from(["capture", "refund", "void"]), label="unsent")
        app.inject(Fault(kind="status", status=503, path=_LOST[operation]))
        try:
            if operation == "void":
                service.void(payment_id, idempotency_key=key)
            elif operation == "capture":
                service.capture(payment_id, amount, final=data.draw(st.booleans(), label="final"), idempotency_key=key)
            else:
                service.refund(payment_id, amount, idempotency_key=key)
        finally:
            app.clear_faults()
    elif action in ("void", "lost void"):
        if action == "lost void":
            app.inject(Fault(kind="drop_after", path=_LOST["void"]))
        try:
            service.void(payment_id, idempotency_key=key)
        finally:
            app.clear_faults()
    elif action in ("lost capture", "lost refund", "lost capture, voided", "lost final capture"):
        operation = action.split()[-1] if action.endswith("final capture") else action.split()[1].rstrip(",")
        app.inject(Fault(kind="drop_after", path=_LOST[operation]))
        try:
            if operation == "capture":
                service.capture(payment_id, amount, final=action == "lost final capture", idempotency_key=key)
            else:
                service.refund(payment_id, amount, idempotency_key=key)
        finally:
            app.clear_faults()  # one refused before sending leaves the fault unused
            if action.endswith("voided"):
                _void_submitted(app, key, told)
    elif action == "retry":
        open_ = [t for t in service.list_transactions(payment_id)
                 if t.status == TransactionStatus.UNKNOWN or (t.status == TransactionStatus.FAILED and t.retryable)]
        if open_:
            service.retry(open_[data.draw(st.integers(0, len(open_) - 1), label="retried")].id)
    elif action == "reconcile":
        service.reconcile(payment_id=payment_id)
        told.clear()
        # Told of all, but a Control Panel refund Braintree has not decided (see `refundable`):
        # its notification, once it settles, tells of it.
        undecided = {t for t in unheard if app.transactions[t].kind == "credit"
                     and app.transactions[t].status in _UNDECIDED}
        unheard.intersection_update(undecided)
    else:
        _panel(app, data, action, amount, root, told, unheard)


def _panel(app: _Braintree, data: Any, action: str, amount: Money, root: Transaction, told: dict[str, str],
           unheard: set[str]) -> None:
    """What happens at Braintree without paywire: the merchant in the Control Panel, the batch.
    What the Control Panel makes or voids paywire learns of only when notified or reconciling
    (`unheard`, `told`)."""
    value = Decimal(amount.minor) / 100
    with app.lock:
        captures = _captures(app, root)
        if action == "panel capture":
            ops = app.operations
            whole = data.draw(st.booleans(), label="whole") and not root.children
            call = (lambda: ops.capture({"transactionId": root.id})) if whole else \
                (lambda: ops.partial_capture({"transactionId": root.id, "transaction": {"amount": f"{value:.2f}"}}))
            candidates: list[tuple[Transaction, Any]] = [(root, call)]
        elif action == "panel void":
            candidates = [(t, lambda t=t: app.operations.reverse({"transactionId": t.id}))
                          for t in [root, *captures] if t.status in ("AUTHORIZED", "SUBMITTED_FOR_SETTLEMENT")]
        elif action == "panel refund":
            candidates = [(t, lambda t=t: app.operations.refund(
                {"transactionId": t.id, "refund": {"amount": f"{value:.2f}"}}, origin="CONTROL_PANEL"))
                for t in captures]
        elif action == "expire":  # left uncaptured too long; Braintree notifies nothing
            candidates = [(root, lambda: app.operations.expire(root))]
        elif action == "bank return":  # the customer's bank returns a settled bank debit or refund
            returnable = [*captures, *(app.transactions[r] for c in captures for r in c.refunds)]
            candidates = [(t, lambda t=t: app.operations.bank_return(t)) for t in returnable
                          if root.source == _BANK and t.status == "SETTLED" and not t.children]
        else:  # the batch settles or declines one submitted capture or refund
            outcome = "SETTLED" if action == "settle" else "SETTLEMENT_DECLINED"
            related = [*captures, *(app.transactions[r] for c in captures for r in c.refunds)]
            candidates = [(t, lambda t=t: app.operations.settle(t, outcome))
                          for t in related if t.status in _WAITING and not t.children]
        if not candidates:
            return
        transaction, call = candidates[data.draw(st.integers(0, len(candidates) - 1), label="which")]
        before, sent, known = transaction.status, len(app.sent), set(app.transactions)
        try:
            call()
        except Exception as refused:  # Braintree's validation error: nothing changed
            if type(refused).__name__ != "GraphQLError":
                raise
            return
        unheard.update(set(app.transactions) - known)
        if action == "panel capture" and transaction.status != before and not transaction.children:
            unheard.add(transaction.id)  # captured whole
        if action in ("panel void", "expire"):
            told.setdefault(transaction.id, before)  # a void or an expiry notifies nothing
        if transaction.status in ("VOIDED", "SETTLEMENT_DECLINED") and before in _MOVED:
            told.setdefault(transaction.id, before)  # taken back: paywire learns it only when told
            app.news.update((body, transaction.id) for body in app.sent[sent:])  # a void notifies nothing


def _nothing_that_took_effect_is_failed(service: PaymentService, app: BraintreeEmulator, payment_id: str) -> None:
    """A capture or refund recorded failed names nothing that moved money at Braintree, nor does
    any transaction made under a key the ledger holds only as failed; nor, whether reconciliation
    or a retry's answer concluded it, anything the batch declined after it was submitted for
    settlement (it took effect and was undone: reversed)."""
    for txn in service.list_transactions(payment_id, statuses=[TransactionStatus.FAILED]):
        if txn.kind not in ("capture", "refund", "sale"):
            continue
        made = [t for t in app.transactions.values()
                if t.order_id == txn.idempotency_key or t.id == txn.provider_reference]
        assert not any(t.status in _MOVED for t in made), (txn, made)
        assert not any(t.status == "SETTLEMENT_DECLINED" and any(e["status"] in _MOVED for e in t.history)
                       for t in made), (txn, made)


def test_a_control_panel_capture_declined_at_settlement_is_not_claimed_once_notified(tmp_path: Path) -> None:
    """A capture made in the Control Panel is in the ledger only as reconcile()'s floor, with no
    transaction of its own. Its settlement_declined notification names its authorization
    (`authorized-transaction-id`), so it reaches the payment: it waits for the capture's row, and
    the floor that counted the capture is dropped meanwhile."""
    with _served(tmp_path / "ledger.db", "batch") as (service, app):
        payment = service.authorize("braintree", eur(10000), source="fake-valid-nonce", idempotency_key="auth")
        with app.lock:
            capture = app.operations.partial_capture({"transactionId": payment.reference,
                                                      "transaction": {"amount": "0.01"}})
        service.reconcile(payment_id=payment.id)
        assert service.get_payment(payment.id).captured == eur(1)
        app.settle(capture.id, "SETTLEMENT_DECLINED")
        (body,) = app.sent
        service.receive_webhook("braintree", {"content-type": "application/x-www-form-urlencoded"}, body)
        assert held(app, payment.reference or "") == (0, 0)
        assert service.get_payment(payment.id).captured == eur(0)


def _nothing_voided_once_submitted_is_failed(service: PaymentService, app: BraintreeEmulator,
                                             payment_id: str) -> None:
    """A sale or capture the Control Panel voided once SUBMITTED_FOR_SETTLEMENT took effect and was
    undone: whether reconciliation or a retry's answer concluded it, the request that made it is
    never recorded failed (a sale is matched by its paywire_key, a capture by its orderId)."""
    for txn in service.list_transactions(payment_id, statuses=[TransactionStatus.FAILED]):
        if txn.kind not in ("capture", "sale"):
            continue
        made = [t for t in app.transactions.values()
                if (t.custom.get("paywire_key") if txn.kind == "sale" else t.order_id) == txn.idempotency_key]
        assert not any(t.status == "VOIDED" and any(e["status"] == "SUBMITTED_FOR_SETTLEMENT" for e in t.history)
                       for t in made), (txn, made)


def _void_submitted(app: _Braintree, key: str, told: dict[str, str]) -> None:
    """The Control Panel voids, before the batch, what the request under `key` made (a capture by
    its orderId, the first sale by its paywire_key) while it is SUBMITTED_FOR_SETTLEMENT."""
    with app.lock:
        for transaction in list(app.transactions.values()):
            if key in (transaction.order_id, transaction.custom.get("paywire_key")) and not transaction.children \
                    and transaction.status == "SUBMITTED_FOR_SETTLEMENT":
                app.operations.reverse({"transactionId": transaction.id})
                told.setdefault(transaction.id, "SUBMITTED_FOR_SETTLEMENT")  # a void notifies nothing


_BANK = "paywire-emulator-bank-account-nonce"
_FORM = {"content-type": "application/x-www-form-urlencoded"}


def _bank_capture_declined(service: PaymentService, app: _Braintree, amount: int, final: bool,
                           told_by: str) -> Payment:
    """A bank account's authorization of 100.00 with the service's own capture of `amount`, which
    Braintree holds SETTLEMENT_PENDING and the batch then declines; paywire told by the
    capture's transaction_settlement_declined notification or by reconciliation."""
    payment = service.authorize("braintree", eur(10000), source=_BANK, idempotency_key="auth")
    service.capture(payment.id, eur(amount), final=final, idempotency_key="capture")
    (capture,) = app.transactions[payment.reference or ""].children
    assert app.transactions[capture].status == "SETTLEMENT_PENDING"
    app.settle(capture, "SETTLEMENT_DECLINED")
    if told_by == "notification":
        (body,) = app.sent
        service.receive_webhook("braintree", _FORM, body)
    else:
        assert service.reconcile(payment_id=payment.id).clean
    assert [t.status for t in service.list_transactions(payment.id) if t.kind == "capture"] == [TransactionStatus.FAILED]
    return service.get_payment(payment.id)


@pytest.mark.parametrize("told_by", ["notification", "reconciliation"])
def test_a_bank_accounts_final_capture_declined_from_settlement_pending_leaves_nothing_to_capture(
        tmp_path: Path, told_by: str) -> None:
    """Braintree closes an authorization at its final partial capture, and a capture declined at
    settlement does not reopen it (it documents no such thing: partial captures are taken only of
    an AUTHORIZED or SETTLEMENT_PENDING authorization, and `finalCapture` ends them): the ledger
    offers no capture either, refusing before anything is sent, however it learnt of the decline."""
    with _served(tmp_path / "ledger.db", "batch") as (service, app):
        payment = _bank_capture_declined(service, app, 3000, True, told_by)
        assert (payment.captured, payment.capture_closed) == (eur(0), True)
        calls = len(app.calls)
        with pytest.raises(StateError) as refused:
            service.capture(payment.id, eur(1), idempotency_key="again")
        assert refused.value.code == "capture_closed" and len(app.calls) == calls
        with app.lock, pytest.raises(GraphQLError, match="Cannot submit for settlement"):
            app.operations.partial_capture({"transactionId": payment.reference, "transaction": {"amount": "0.01"}})


@pytest.mark.parametrize("told_by", ["notification", "reconciliation"])
def test_a_bank_accounts_capture_of_all_of_it_declined_from_settlement_pending_voids_the_payment(
        tmp_path: Path, told_by: str) -> None:
    """A capture of all the authorization had left, declined so: Braintree takes no more of it
    (`handlers._spent`), so the notification makes the service read the payment, as reconciliation
    does, and both leave it voided."""
    with _served(tmp_path / "ledger.db", "batch") as (service, app):
        payment = _bank_capture_declined(service, app, 10000, False, told_by)
        assert (payment.state, payment.captured, payment.capturable) == ("voided", eur(0), eur(0))


def test_a_bank_accounts_sale_holds_its_money_once_settled(tmp_path: Path) -> None:
    """A sale Braintree holds SETTLEMENT_PENDING was submitted for settlement: captured money
    whose settlement is not decided, counted nowhere yet (the ledger records it accepted, `held`
    counts it not moved), and held by both once it settles."""
    with _served(tmp_path / "ledger.db", "batch") as (service, app):
        payment = service.sale("braintree", eur(10000), source=_BANK, idempotency_key="sale")
        reference = payment.reference or ""
        assert app.transactions[reference].status == "SETTLEMENT_PENDING"
        assert (payment.captured.minor, payment.refunded.minor) == held(app, reference) == (0, 0)
        app.settle(reference)
        (body,) = app.sent
        service.receive_webhook("braintree", _FORM, body)
        settled = service.get_payment(payment.id)
        assert (settled.captured.minor, settled.refunded.minor) == held(app, reference) == (10000, 0)
