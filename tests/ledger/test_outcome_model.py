"""The outcome model, case by case, against the FakePay emulator over loopback HTTP.

A transaction fails only on evidence that the provider did not and will not apply it; anything
else after bytes may have left is unknown, and reconciliation concludes "not applied" only once the
request can no longer land. Whatever settles a transaction records the provider's reference for
it, so every later event about it matches, and the ledger never claims more than the provider
holds. "Accepted" operations count as in flight until a webhook or a fetch settles them.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path

import pytest
import urllib3

from paywire import (
    ConfigurationError,
    EventKind,
    InvalidRequest,
    OutcomeUnknown,
    PaywireError,
    ProviderUnavailable,
    Retry,
    StateError,
    TransportError,
    hookimpl,
)
from paywire.ledger import EventStatus, Ledger, Payment, PaymentState, TransactionStatus
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from paywire.testing.ports import refusing_port
from tests.ledger.fakepay import WEBHOOK_SECRET, FakePayApp, make_gateway
from tests.ledger.support import (
    FAST,
    PATIENT,
    agree,
    cause_chain,
    eur,
    only,
    step_past_life,
    wait_out_life,
    wait_until,
    within_life,
)

S = TransactionStatus
LATE_READ = 1.0  # the read timeout the client gives up after (on a request FakePay keeps from landing till then)
PATHS = {"authorize": "/v1/payments$", "capture": "/captures$", "refund": "/refunds$"}


# -- fixtures and helpers ---------------------------------------------------------------------------
@pytest.fixture
def late(fakepay: tuple[FakePayApp, str], ledger: Ledger) -> Iterator[PaymentService]:
    """A client that gives up after 1 s, on a provider that declares its requests may take up
    to a minute to show (its outcome window covers the time a test keeps a request from landing).
    Only the late requests go through it: whatever is to be answered goes through `patient`."""
    gateway = make_gateway(fakepay[1], connect_timeout=2.0, read_timeout=LATE_READ, outcome_window=60.0)
    yield PaymentService(gateway, ledger, margin=0)
    gateway.close()


def calls(app: FakePayApp) -> int:
    with app.lock:
        return len(app.calls)


def rows(service: PaymentService) -> tuple[int, int]:
    return len(service.list_payments(limit=1000)), len(service.list_transactions())


def deliver(service: PaymentService, event: tuple[dict[str, str], bytes]) -> str:
    receipt = service.receive_webhook("fakepay", *event)
    return receipt.status


def provider_object(app: FakePayApp, kind: str, key: str) -> str:
    """The id of what the provider made for the request sent with idempotency key `key`."""
    with app.lock:
        if kind in ("authorize", "sale"):
            return app.by_key[key]
        objects = app.captures if kind == "capture" else app.refunds
        (found,) = [obj["id"] for obj in objects.values() if obj["idempotency_key"] == key]
        return found


def start(service: PaymentService, kind: str) -> tuple[str | None, Callable[[PaymentService], Payment]]:
    """A payment ready for `kind` (None for authorize) and the call that runs `kind` on it through
    a service, with the caller's idempotency key (so calling it again is the caller retrying)."""
    if kind == "authorize":
        return None, lambda s: s.authorize("fakepay", eur("20.00"), source="tok_ok", idempotency_key="auth-1")
    if kind == "capture":
        payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
        return payment.id, lambda s: s.capture(payment.id, eur("30.00"), idempotency_key="capture-1")
    payment = service.sale("fakepay", eur("100.00"), source="tok_ok")
    return payment.id, lambda s: s.refund(payment.id, eur("30.00"), idempotency_key="refund-1")


def accepted(service: PaymentService, kind: str) -> Payment:
    """A payment holding a `kind` the provider accepted and decides later: a 50.00 authorization
    (authorize), a capture of 20.00 of it, or a refund of 20.00 of a 50.00 sale."""
    if kind == "authorize":
        return service.authorize("fakepay", eur("50.00"), source="tok_pending")
    if kind == "capture":
        payment = service.authorize("fakepay", eur("50.00"), source="tok_async")
        return service.capture(payment.id, eur("20.00"), final=False)
    payment = service.sale("fakepay", eur("50.00"), source="tok_async")
    return service.refund(payment.id, eur("20.00"))


def webhook_made(service: PaymentService, payment_id: str) -> list[str]:
    return [t.kind for t in service.list_transactions(payment_id) if t.origin == "webhook"]


# -- (1) latency longer than the read timeout -------------------------------------------------------
@pytest.mark.parametrize("kind", ["authorize", "capture", "refund"])
def test_a_request_answered_after_the_read_timeout_is_never_concluded_failed_and_settles_once_applied(
    late: PaymentService, patient: PaymentService, app: FakePayApp, kind: str,
) -> None:
    service = patient  # only the late request goes through `late`
    payment_id, call = start(service, kind)
    landing = app.arriving_late("POST", PATHS[kind])
    try:
        with pytest.raises(OutcomeUnknown) as lost:
            call(late)
        txn_id = lost.value.transaction_id or ""
        payment_id = payment_id or lost.value.payment_id or ""
        assert service.get_transaction(txn_id).status == S.UNKNOWN

        early = service.reconcile()  # the provider does not hold it yet, but it may still land
        assert (txn_id, S.FAILED) not in [(s.transaction_id, s.status) for s in early.settled]
        assert service.get_transaction(txn_id).status == S.UNKNOWN
        assert txn_id in [u.transaction_id for u in early.unresolved]
        assert all(u.status is None and u.note for u in early.unresolved)
    finally:
        landing.set()

    wait_until(lambda: app.count(kind) == 1, f"the emulator applied the {kind}")
    service.reconcile()
    txn = service.get_transaction(txn_id)
    assert (txn.status, txn.settled_by) == (S.SUCCEEDED, "reconcile")
    assert txn.provider_reference == provider_object(app, kind, txn.idempotency_key)
    agree(service, app, payment_id)

    again = call(service)  # the caller retries: the stored outcome, no second charge
    assert again.id == payment_id
    assert service.retry(txn_id).id == payment_id  # type: ignore[union-attr]
    assert app.count(kind) == 1
    agree(service, app, payment_id)


def test_a_completion_answered_after_the_read_timeout_is_not_concluded_while_the_buyer_seems_to_wait(
    late: PaymentService, patient: PaymentService, app: FakePayApp,
) -> None:
    """Until the late completion lands the provider still shows the payment waiting for the
    buyer: that says the completion has not landed yet, not that it never will."""
    service = patient  # only the late completion goes through `late`
    payment = service.authorize("fakepay", eur("20.00"), source="tok_3ds", return_url="https://shop.example/back")
    landing = app.arriving_late("POST", "/complete$")
    try:
        with pytest.raises(OutcomeUnknown) as lost:
            late.complete(payment.id, idempotency_key="complete-1")
        txn_id = lost.value.transaction_id or ""

        early = service.reconcile()
        assert service.get_transaction(txn_id).status == S.UNKNOWN
        assert [u.transaction_id for u in early.unresolved] == [txn_id]
    finally:
        landing.set()

    wait_until(lambda: app.count("authorize") == 1, "the emulator applied the completion")
    service.reconcile()
    txn = service.get_transaction(txn_id)
    assert (txn.status, txn.settled_by) == (S.SUCCEEDED, "reconcile")
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.authorized, payment.action) == (PaymentState.AUTHORIZED, eur("20.00"), None)
    agree(service, app, payment.id)
    assert service.complete(payment.id, idempotency_key="complete-1") == payment  # the caller retries: replayed


def test_a_completion_that_never_landed_fails_after_its_life_and_the_buyer_can_still_finish(
    fast_service: PaymentService, patient: PaymentService, app: FakePayApp,
) -> None:
    service = patient  # only the lost completion goes through fast_service: its life is waited out
    payment = service.authorize("fakepay", eur("20.00"), source="tok_3ds", return_url="https://shop.example/back")
    app.inject(Fault("status", status=502, path="/complete$"))  # answered without touching anything
    with pytest.raises(OutcomeUnknown) as lost:
        fast_service.complete(payment.id)
    txn_id = lost.value.transaction_id or ""
    early = service.reconcile()
    if within_life(service, [txn_id]):
        assert early.settled == ()
    wait_out_life(service, [txn_id])
    settled = early.settled + service.reconcile().settled
    assert [(s.transaction_id, s.status) for s in settled] == [(txn_id, S.FAILED)]
    waiting = service.get_payment(payment.id)
    assert (waiting.state, waiting.action) == (PaymentState.ACTION_REQUIRED, payment.action)
    done = service.complete(payment.id)  # the same completion, under its key
    assert (done.state, done.authorized) == (PaymentState.AUTHORIZED, eur("20.00"))
    completes = [t for t in service.list_transactions(payment.id) if t.kind == "complete"]
    assert [t.status for t in completes] == [S.FAILED, S.SUCCEEDED]
    assert completes[0].idempotency_key == completes[1].idempotency_key
    agree(service, app, payment.id)


def test_a_request_that_never_arrived_fails_only_after_its_longest_life(
    fast_service: PaymentService, patient: PaymentService, app: FakePayApp,
) -> None:
    """The request left no trace at the provider (the connection broke while it was written):
    until its settle_after, reconcile says it is still open; after, it is a retryable failure."""
    service = patient  # only the lost capture goes through fast_service: its life is waited out
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    app.inject(Fault("status", status=502, path="/captures$"))  # answered without touching anything
    with pytest.raises(OutcomeUnknown) as lost:
        fast_service.capture(payment.id, eur("30.00"))
    txn_id = lost.value.transaction_id or ""
    early = service.reconcile()
    if within_life(service, [txn_id]):
        assert early.settled == () and [u.transaction_id for u in early.unresolved] == [txn_id]
        assert service.get_transaction(txn_id).status == S.UNKNOWN
        with pytest.raises(StateError):  # still counted as in flight
            service.capture(payment.id, eur("70.01"))

    wait_out_life(service, [txn_id])
    settled = early.settled + service.reconcile().settled
    assert [(s.transaction_id, s.status) for s in settled] == [(txn_id, S.FAILED)]
    txn = service.get_transaction(txn_id)
    assert (txn.status, txn.retryable, txn.settled_by) == (S.FAILED, True, "reconcile")
    payment = service.capture(payment.id, eur("100.00"))  # the amount is free again
    assert app.count("capture") == 1
    agree(service, app, payment.id)


def test_settle_after_is_the_longest_life_of_the_request_plus_window_and_margin(
    fakepay: tuple[FakePayApp, str], ledger: Ledger,
) -> None:
    # (total + 1) * (connect + read) + total * backoff_max + outcome_window + margin
    # = 2 * 1.0 + 1 * 0.25 + 0.25 + 0.5 = 3.0 seconds after it was sent
    gateway = make_gateway(fakepay[1], retry=Retry(total=1, backoff_factor=0, backoff_max=0.25),
                           outcome_window=0.25, **FAST)
    try:
        service = PaymentService(gateway, ledger, margin=0.5)
        payment = service.authorize("fakepay", eur("10.00"), source="tok_ok")
        txn = only(service.list_transactions(payment.id), "authorize")
        assert txn.settle_after is not None
        life = txn.settle_after - txn.created_at
        assert timedelta(seconds=3.0) <= life <= timedelta(seconds=3.5), life
    finally:
        gateway.close()


class _Hold:
    """Pauses a command at some point of its run (`holding` once it waits) until `release`."""

    def __init__(self, command: str) -> None:
        self.command = command
        self.holding = threading.Event()
        self.release = threading.Event()


class HoldBeforeSending(_Hold):
    """Holds a command's request before it leaves (a paused process) until released."""

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Iterator[None]:
        if command == self.command and not self.release.is_set():
            self.holding.set()
            self.release.wait(60)
        return (yield)


def test_a_late_real_answer_wins_over_reconciliations_guess(fakepay: tuple[FakePayApp, str], ledger: Ledger,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    app, url = fakepay
    hold = HoldBeforeSending("capture")
    # Every request is answered, however loaded the machine: the capture's long life is stepped
    # past on the ledger's clock, not waited out.
    gateway = make_gateway(url, extra=[hold], **PATIENT)
    service = PaymentService(gateway, ledger, margin=0)
    outcome: list[object] = []
    try:
        payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
        worker = threading.Thread(target=lambda: outcome.append(service.capture(payment.id, eur("40.00"))))
        worker.start()
        assert hold.holding.wait(30)
        txn = only(service.list_transactions(payment.id), "capture")
        step_past_life(service, [txn.id], monkeypatch)
        guess = service.reconcile()  # the worker seems gone and the provider holds nothing
        assert guess.marked_unknown == (txn.id,)
        assert [(s.transaction_id, s.status) for s in guess.settled] == [(txn.id, S.FAILED)]
        hold.release.set()  # the worker wakes up and sends after all
        worker.join(30)
        assert outcome and isinstance(outcome[0], Payment), outcome
        settled = service.get_transaction(txn.id)
        assert (settled.status, settled.settled_by) == (S.SUCCEEDED, "answer")
        assert settled.provider_reference == provider_object(app, "capture", settled.idempotency_key)
        assert service.get_payment(payment.id).captured == eur("40.00")
        agree(service, app, payment.id)
    finally:
        hold.release.set()
        gateway.close()



class HoldTheAnswer(_Hold):
    """Holds the first answer to a command once it is back (a worker paused before recording it)
    until released."""

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Iterator[None]:
        response = yield
        if command == self.command and not self.holding.is_set():
            self.holding.set()
            self.release.wait(60)
        return response


def test_a_late_not_applied_answer_never_fails_a_resend_made_meanwhile(fakepay: tuple[FakePayApp, str],
                                                                       ledger: Ledger,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """A capture refused before processing (503 not_processed) whose worker pauses before
    recording that; past its life a retry with its key resends it, the provider applies it and
    the answer is lost. The first worker's answer proves only that its own send was not applied:
    it must not record the operation failed over the resend's unknown outcome."""
    app, url = fakepay
    hold = HoldTheAnswer("capture")
    # Every answer that comes is read, however loaded the machine: the lives are stepped past on
    # the ledger's clock, not waited out.
    gateway = make_gateway(url, extra=[hold], **PATIENT)
    service = PaymentService(gateway, ledger, margin=0)
    first: list[BaseException] = []

    def capture() -> None:
        try:
            service.capture(payment.id, eur("40.00"), idempotency_key="cap-1")
        except PaywireError as exc:
            first.append(exc)

    try:
        payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
        app.not_processed()
        worker = threading.Thread(target=capture)
        worker.start()
        assert hold.holding.wait(30)
        txn = only(service.list_transactions(payment.id), "capture")
        step_past_life(service, [txn.id], monkeypatch)
        app.inject(Fault("drop_after", path="/captures$", method="POST"))
        with pytest.raises(OutcomeUnknown):
            service.capture(payment.id, eur("40.00"), idempotency_key="cap-1")
        assert app.count("capture") == 1  # the resend was applied
        hold.release.set()
        worker.join(30)
        assert [type(e) for e in first] == [OutcomeUnknown]
        assert service.get_transaction(txn.id).status == S.UNKNOWN
        step_past_life(service, [txn.id], monkeypatch)
        service.reconcile()
        assert service.get_payment(payment.id).captured == eur("40.00")
        agree(service, app, payment.id)
    finally:
        hold.release.set()
        gateway.close()


# -- (2) a 5xx after the provider applied the effect ------------------------------------------------
@pytest.mark.parametrize("status", [502, 504, 500])
@pytest.mark.parametrize("kind", ["authorize", "capture", "refund"])
def test_a_5xx_after_the_effect_is_unknown_then_settled_with_its_reference_so_webhooks_match(
    patient: PaymentService, app: FakePayApp, kind: str, status: int,
) -> None:
    service = patient
    payment_id, call = start(service, kind)
    app.inject(Fault("status_after", status=status, path=PATHS[kind], method="POST"))
    with pytest.raises(OutcomeUnknown) as lost:
        call(service)
    assert [e.status for e in cause_chain(lost.value) if isinstance(e, ProviderUnavailable)] == [status]
    txn_id = lost.value.transaction_id or ""
    payment_id = payment_id or lost.value.payment_id or ""
    assert service.get_transaction(txn_id).status == S.UNKNOWN  # not failed: it did take effect
    assert app.count(kind) == 1

    report = service.reconcile()
    assert [(s.transaction_id, s.status) for s in report.settled] == [(txn_id, S.SUCCEEDED)]
    txn = service.get_transaction(txn_id)
    reference = provider_object(app, kind, txn.idempotency_key)
    assert (txn.provider_reference, txn.settled_by) == (reference, "reconcile")
    agree(service, app, payment_id)

    for event in app.events_about(reference):  # the provider's own events now match it
        receipt = service.receive_webhook("fakepay", *event)
        assert (receipt.status, receipt.payment_id) == (EventStatus.APPLIED, payment_id)
    assert webhook_made(service, payment_id) == []  # nothing counted a second time
    agree(service, app, payment_id)


def test_a_5xx_the_provider_documents_as_not_applied_is_a_retryable_failure(
    patient: PaymentService, app: FakePayApp,
) -> None:
    service = patient
    app.not_processed()
    with pytest.raises(ProviderUnavailable) as refused:
        service.authorize("fakepay", eur("10.00"), source="tok_ok", idempotency_key="maint-1")
    assert not refused.value.may_have_been_sent
    txn = service.get_transaction(refused.value.transaction_id or "")
    assert (txn.status, txn.retryable) == (S.FAILED, True)
    payment = service.authorize("fakepay", eur("10.00"), source="tok_ok", idempotency_key="maint-1")
    assert payment.state == PaymentState.AUTHORIZED and app.count("authorize") == 1


# -- (3) a refund whose answer was lost ------------------------------------------------------------
@pytest.mark.parametrize("webhook", ["before_reconcile", "after_reconcile"])
def test_a_lost_refund_settled_by_reconcile_matches_the_providers_refund_event(
    patient: PaymentService, app: FakePayApp, webhook: str,
) -> None:
    service = patient
    payment = service.sale("fakepay", eur("100.00"), source="tok_ok")
    app.inject(Fault("drop_after", path="/refunds$"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.refund(payment.id, eur("30.00"))
    txn_id = lost.value.transaction_id or ""
    refund_id = provider_object(app, "refund", service.get_transaction(txn_id).idempotency_key)
    (event,) = app.events_about(refund_id)

    if webhook == "before_reconcile":
        assert deliver(service, event) in (EventStatus.APPLIED, EventStatus.DEFERRED)
        assert service.get_payment(payment.id).refunded <= eur("30.00")
    service.reconcile()
    if webhook == "after_reconcile":
        assert deliver(service, event) == EventStatus.APPLIED
    assert deliver(service, event) == "duplicate"

    txn = service.get_transaction(txn_id)
    assert (txn.status, txn.provider_reference) == (S.SUCCEEDED, refund_id)
    assert service.get_payment(payment.id).refunded == eur("30.00")
    assert webhook_made(service, payment.id) == []
    agree(service, app, payment.id)

    payment = service.refund(payment.id, eur("70.00"))  # a legitimate later refund is allowed
    assert payment.refunded == eur("100.00")
    agree(service, app, payment.id)


# -- (5) accepted: the provider decides later -------------------------------------------------------
@pytest.mark.parametrize("succeed", [True, False], ids=["succeeds", "fails"])
def test_an_accepted_capture_blocks_an_over_capture_and_is_settled_by_the_providers_event(
    patient: PaymentService, app: FakePayApp, succeed: bool,
) -> None:
    service = patient
    payment = service.authorize("fakepay", eur("100.00"), source="tok_async")
    payment = service.capture(payment.id, eur("60.00"), final=False)
    txn = only(service.list_transactions(payment.id), "capture")
    cap_id = provider_object(app, "capture", txn.idempotency_key)
    assert (txn.status, txn.provider_reference) == (S.ACCEPTED, cap_id)
    assert payment.captured == eur("0.00")  # in flight, not captured

    before = calls(app)
    with pytest.raises(StateError):  # 60.00 may still be captured: 40.01 more would exceed 100.00
        service.capture(payment.id, eur("40.01"), final=False)
    with pytest.raises(StateError):
        service.void(payment.id)
    assert calls(app) == before

    assert deliver(service, app.decide(cap_id, succeed=succeed)) == EventStatus.APPLIED
    txn = service.get_transaction(txn.id)
    assert (txn.status, txn.settled_by) == (S.SUCCEEDED if succeed else S.FAILED, "webhook")
    payment = service.get_payment(payment.id)
    assert payment.captured == (eur("60.00") if succeed else eur("0.00"))
    assert webhook_made(service, payment.id) == []
    agree(service, app, payment.id)
    if not succeed:  # the failed capture released its amount
        service.capture(payment.id, eur("100.00"))
        assert service.get_payment(payment.id).captured == eur("0.00")  # accepted again, in flight


@pytest.mark.parametrize("succeed", [True, False], ids=["succeeds", "fails"])
def test_an_accepted_refund_blocks_an_over_refund_and_is_settled_by_the_providers_event(
    patient: PaymentService, app: FakePayApp, succeed: bool,
) -> None:
    service = patient
    payment = service.sale("fakepay", eur("100.00"), source="tok_async")
    payment = service.refund(payment.id, eur("60.00"))
    txn = only(service.list_transactions(payment.id), "refund")
    refund_id = provider_object(app, "refund", txn.idempotency_key)
    assert (txn.status, txn.provider_reference, payment.refunded) == (S.ACCEPTED, refund_id, eur("0.00"))
    before = calls(app)
    with pytest.raises(StateError):
        service.refund(payment.id, eur("40.01"))
    assert calls(app) == before

    assert deliver(service, app.decide(refund_id, succeed=succeed)) == EventStatus.APPLIED
    txn = service.get_transaction(txn.id)
    assert (txn.status, txn.settled_by) == (S.SUCCEEDED if succeed else S.FAILED, "webhook")
    assert service.get_payment(payment.id).refunded == (eur("60.00") if succeed else eur("0.00"))
    assert webhook_made(service, payment.id) == []
    agree(service, app, payment.id)


@pytest.mark.parametrize("decided_by", ["webhook", "reconcile"])
@pytest.mark.parametrize("kind", ["capture", "refund"])
def test_a_failure_the_provider_decided_is_never_resent_under_its_key(
    patient: PaymentService, app: FakePayApp, kind: str, decided_by: str,
) -> None:
    """The provider holds the key with its failure (or replays the acceptance it first gave):
    sent again with it, the request could only be answered the same, and an attempt that replayed
    the acceptance stayed open for good, its amount counted as in flight. The failure is final;
    the same call again is a new operation under a key of its own."""
    service = patient
    payment = accepted(service, kind)
    first = only(service.list_transactions(payment.id), kind)
    event = app.decide(first.provider_reference or "", succeed=False)
    if decided_by == "webhook":
        assert deliver(service, event) == EventStatus.APPLIED
    else:
        assert [(s.transaction_id, s.status) for s in service.reconcile().settled] == [(first.id, S.FAILED)]
    failed = service.get_transaction(first.id)
    assert (failed.status, failed.retryable) == (S.FAILED, False)
    with pytest.raises(PaywireError):
        service.retry(first.id)  # the stored failure, nothing sent
    again = getattr(service, kind)(payment.id, eur("20.00"))  # a new operation, a new key
    ops = [t for t in service.list_transactions(payment.id) if t.kind == kind]
    assert [t.status for t in ops] == [S.FAILED, S.ACCEPTED] and ops[0].idempotency_key != ops[1].idempotency_key
    assert deliver(service, app.decide(ops[1].provider_reference or "")) == EventStatus.APPLIED
    assert [t for t in service.list_transactions(payment.id) if t.open] == []
    again = service.get_payment(again.id)
    assert getattr(again, "captured" if kind == "capture" else "refunded") == eur("20.00")
    agree(service, app, again.id)


def test_a_refund_of_everything_leaves_out_what_is_being_refunded(patient: PaymentService,
                                                                  app: FakePayApp) -> None:
    service = patient
    payment = service.sale("fakepay", eur("10.00"), source="tok_async")
    service.refund(payment.id, eur("4.00"))  # accepted: in flight
    payment = service.refund(payment.id)  # the rest, as a capture without an amount takes the rest
    refunds = [t for t in service.list_transactions(payment.id) if t.kind == "refund"]
    assert [(t.amount, t.status) for t in refunds] == [(eur("4.00"), S.ACCEPTED), (eur("6.00"), S.ACCEPTED)]
    for refund in refunds:
        assert deliver(service, app.decide(refund.provider_reference or "")) == EventStatus.APPLIED
    assert service.get_payment(payment.id).refunded == eur("10.00")
    agree(service, app, payment.id)


@pytest.mark.parametrize("succeed", [True, False], ids=["succeeds", "fails"])
def test_an_accepted_authorization_is_in_flight_until_the_providers_event(
    patient: PaymentService, app: FakePayApp, succeed: bool,
) -> None:
    service = patient
    payment = service.authorize("fakepay", eur("50.00"), source="tok_pending")
    txn = only(service.list_transactions(payment.id), "authorize")
    assert (txn.status, payment.state, payment.authorized) == (S.ACCEPTED, PaymentState.PENDING, eur("0.00"))
    with pytest.raises(StateError):
        service.capture(payment.id, eur("50.00"))

    assert deliver(service, app.decide(payment.reference or "", succeed=succeed)) == EventStatus.APPLIED
    txn = service.get_transaction(txn.id)
    assert (txn.status, txn.settled_by) == (S.SUCCEEDED if succeed else S.FAILED, "webhook")
    payment = service.get_payment(payment.id)
    if succeed:
        assert (payment.state, payment.authorized) == (PaymentState.AUTHORIZED, eur("50.00"))
        payment = service.capture(payment.id)
        assert payment.captured == eur("50.00")
    else:
        assert (payment.state, payment.authorized) == (PaymentState.FAILED, eur("0.00"))
    agree(service, app, payment.id)


@pytest.mark.parametrize("first", ["event", "reconcile", "reconcile alone"])
def test_an_accepted_sale_counts_once_and_its_refund_goes_to_the_capture_it_became(
    patient: PaymentService, app: FakePayApp, first: str,
) -> None:
    """A sale answered before the provider decided holds the payment's reference; the provider's
    captured event names the capture it became. Whichever settles the sale first, the event is
    that sale (never a second capture "made outside paywire"), and a refund acts on that capture."""
    service = patient
    payment = service.sale("fakepay", eur("7.00"), source="tok_pending")
    txn = only(service.list_transactions(payment.id), "sale")
    assert (txn.status, payment.captured) == (S.ACCEPTED, eur("0.00"))
    event = app.decide(payment.reference or "")
    if first == "event":
        assert deliver(service, event) == EventStatus.APPLIED
        assert service.reconcile().settled == ()
    else:
        assert [(s.transaction_id, s.status) for s in service.reconcile().settled] == [(txn.id, S.SUCCEEDED)]
        if first == "reconcile":
            assert deliver(service, event) == EventStatus.APPLIED  # late, and about the settled sale
    assert [t.kind for t in service.list_transactions(payment.id)] == ["sale"]
    with app.lock:
        capture = app.payments[payment.reference or ""]["capture_id"]
    assert service.get_transaction(txn.id).provider_reference == capture
    agree(service, app, payment.id)
    payment = service.refund(payment.id, eur("3.00"))
    assert payment.refunded == eur("3.00")
    agree(service, app, payment.id)


@pytest.mark.parametrize("kind", ["authorize", "capture", "refund"])
def test_an_accepted_operation_is_settled_by_reconcile_once_the_provider_decided(
    patient: PaymentService, app: FakePayApp, kind: str,
) -> None:
    service = patient
    payment = accepted(service, kind)
    txn = only(service.list_transactions(payment.id), kind)
    assert txn.status == S.ACCEPTED

    waiting = service.reconcile()  # the provider has not decided: it stays accepted, and is reported
    assert waiting.settled == ()
    assert [(u.transaction_id, u.status) for u in waiting.unresolved] == [(txn.id, None)]
    assert service.get_transaction(txn.id).status == S.ACCEPTED

    event = app.decide(txn.provider_reference or "", succeed=True)  # its event is not delivered yet
    report = service.reconcile()
    assert [(s.transaction_id, s.status) for s in report.settled] == [(txn.id, S.SUCCEEDED)]
    assert service.get_transaction(txn.id).settled_by == "reconcile"
    agree(service, app, payment.id)
    assert deliver(service, event) == EventStatus.APPLIED  # late, and about a settled operation
    assert webhook_made(service, payment.id) == []
    agree(service, app, payment.id)


# -- (6) refused before sending: nothing recorded; nothing sent: failed and retryable --------------
def test_a_method_whose_ca_certs_file_is_missing_records_nothing(
    fakepay: tuple[FakePayApp, str], ledger: Ledger, app: FakePayApp, tmp_path: Path,
) -> None:
    https = fakepay[1].replace("http://", "https://")
    gateway = make_gateway(https, ca_certs=str(tmp_path / "missing-ca.pem"), **FAST)
    try:
        service = PaymentService(gateway, ledger, margin=0)
        with pytest.raises(ConfigurationError, match="ca_certs"):
            service.authorize("fakepay", eur("10.00"), source="tok_ok")
        assert rows(service) == (0, 0) and calls(app) == 0
    finally:
        gateway.close()


def test_a_missing_secret_records_nothing(fakepay: tuple[FakePayApp, str], ledger: Ledger, app: FakePayApp,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("PAYWIRE_FAKEPAY_API_KEY", raising=False)
    gateway = make_gateway(fakepay[1], credentials={"webhook_secret": WEBHOOK_SECRET}, **FAST)
    try:
        service = PaymentService(gateway, ledger, margin=0)
        with pytest.raises(ConfigurationError, match="api_key"):
            service.sale("fakepay", eur("10.00"), source="tok_ok")
        assert rows(service) == (0, 0) and calls(app) == 0
    finally:
        gateway.close()


def test_a_card_number_in_a_field_records_nothing(patient: PaymentService, app: FakePayApp) -> None:
    service = patient
    with pytest.raises(InvalidRequest, match="card number"):
        service.sale("fakepay", eur("10.00"), source="tok_ok", metadata={"note": "4242-4242-4242-4242"})
    assert rows(service) == (0, 0) and calls(app) == 0
    payment = service.sale("fakepay", eur("10.00"), source="tok_ok")
    before_rows, before_calls = rows(service), calls(app)
    with pytest.raises(InvalidRequest, match="card number"):
        service.refund(payment.id, eur("1.00"), reason="customer card 4242 4242 4242 4242")
    assert (rows(service), calls(app)) == (before_rows, before_calls)


def test_connection_refused_is_a_retryable_failure_never_left_pending(
    fakepay: tuple[FakePayApp, str], ledger: Ledger, app: FakePayApp,
) -> None:
    with refusing_port() as port:  # nothing answers there, and nothing can take it meanwhile
        nowhere = make_gateway(f"http://127.0.0.1:{port}", **FAST)
        reachable = make_gateway(fakepay[1], **PATIENT)  # answered, however loaded the machine
        try:
            down = PaymentService(nowhere, ledger, margin=0)
            with pytest.raises(TransportError) as refused:
                down.authorize("fakepay", eur("10.00"), source="tok_ok")
            assert not isinstance(refused.value, OutcomeUnknown) and not refused.value.may_have_been_sent
            assert any(isinstance(e, urllib3.exceptions.NewConnectionError) for e in cause_chain(refused.value))
            txn = down.get_transaction(refused.value.transaction_id or "")
            assert (txn.status, txn.retryable) == (S.FAILED, True)
            payment = down.get_payment(refused.value.payment_id or "")
            assert payment.state == PaymentState.FAILED  # not pending: nothing is in flight
            assert [t for t in down.list_transactions(payment.id) if t.open] == []
            assert down.reconcile().settled == ()  # nothing to reconcile

            up = PaymentService(reachable, ledger, margin=0)  # the provider is reachable again
            revived = up.retry(txn.id)
            assert revived.state == PaymentState.AUTHORIZED  # type: ignore[union-attr]

            with pytest.raises(TransportError) as again:  # a follow-up that could not connect
                down.capture(payment.id, eur("10.00"))
            capture = down.get_transaction(again.value.transaction_id or "")
            assert (capture.status, capture.retryable) == (S.FAILED, True)
            assert up.capture(payment.id, eur("10.00")).captured == eur("10.00")  # not reserved by it
            assert app.count("capture") == 1
            agree(up, app, payment.id)
        finally:
            nowhere.close()
            reachable.close()


# -- (7) the error chain ------------------------------------------------------------------------------
def test_a_timeouts_error_chain_is_acyclic_and_keeps_the_urllib3_cause(late: PaymentService, patient: PaymentService,
                                                                       app: FakePayApp) -> None:
    payment = patient.authorize("fakepay", eur("10.00"), source="tok_ok")
    landing = app.arriving_late("POST", "/captures$")
    try:
        with pytest.raises(OutcomeUnknown) as lost:
            late.capture(payment.id, eur("10.00"))
    finally:
        landing.set()
    chain = cause_chain(lost.value)  # fails on a cycle
    paywire_part = [e for e in chain if isinstance(e, PaywireError)]
    assert chain[: len(paywire_part)] == paywire_part  # paywire's errors first, then their cause
    assert isinstance(chain[len(paywire_part)], urllib3.exceptions.ReadTimeoutError), chain
    wait_until(lambda: app.count("capture") == 1, "the late capture landed")  # leave the emulator idle


# -- reconciliation reports --------------------------------------------------------------------------
def test_reconcile_settles_what_it_can_and_reports_each_payment_it_cannot(
    patient: PaymentService, app: FakePayApp,
) -> None:
    service = patient
    payments = [service.authorize("fakepay", eur("10.00"), source="tok_ok") for _ in range(3)]
    lost = []
    for payment in payments:
        app.inject(Fault("drop_after", path="/captures$"))
        with pytest.raises(OutcomeUnknown) as error:
            service.capture(payment.id, eur("10.00"))
        lost.append(error.value.transaction_id)
    bad = payments[1]
    app.inject(Fault("status", status=500, method="GET", path=f"/v1/payments/{bad.reference}$", times=10))
    report = service.reconcile()
    assert [payment_id for payment_id, _ in report.errors] == [bad.id]
    assert sorted((s.transaction_id, s.status) for s in report.settled) == sorted(
        [(lost[0], S.SUCCEEDED), (lost[2], S.SUCCEEDED)])
    assert service.get_transaction(lost[1] or "").status == S.UNKNOWN
    app.clear_faults()
    assert [(s.transaction_id, s.status) for s in service.reconcile().settled] == [(lost[1], S.SUCCEEDED)]
    for payment in payments:
        agree(service, app, payment.id)


def test_reconcile_reports_every_payment_whose_totals_differ_from_the_providers(
    patient: PaymentService, app: FakePayApp,
) -> None:
    service = patient
    tampered = []
    for _ in range(2):
        payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
        payment = service.capture(payment.id, eur("30.00"), final=False)
        app.inject(Fault("drop_after", path="/captures$"))
        with pytest.raises(OutcomeUnknown):
            service.capture(payment.id, eur("20.00"), final=False)
        first = only([t for t in service.list_transactions(payment.id) if t.status == S.SUCCEEDED], "capture")
        with app.lock:  # the provider's books lose the first capture (a correction on its side)
            books = app.payments[payment.reference or ""]
            books["_captures"].remove(first.provider_reference)
            books["captured"] -= 3_000
        tampered.append(payment.id)
    clean = service.authorize("fakepay", eur("5.00"), source="tok_ok")
    report = service.reconcile()
    assert len(report.settled) == 2
    assert sorted((m.payment_id, m.field, m.ledger, m.provider) for m in report.mismatches) == sorted(
        (payment_id, "captured", eur("50.00"), eur("20.00")) for payment_id in tampered)
    assert clean.id not in [m.payment_id for m in report.mismatches]


def test_events_about_a_payment_whose_first_answer_was_lost_wait_and_match_once_reconciled(
    patient: PaymentService, app: FakePayApp,
) -> None:
    """The provider's event about a payment whose first answer was lost waits (unmatched) until
    reconcile learns the payment's reference; then it matches, and nothing counts twice."""
    service = patient
    app.inject(Fault("drop_after", path="/v1/payments$", method="POST"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.sale("fakepay", eur("30.00"), source="tok_ok")
    reference = next(iter(app.payments))
    events = app.events_about(reference)
    assert [deliver(service, e) for e in events] == [EventStatus.UNMATCHED] * len(events)
    service.reconcile()
    payment = service.get_payment(lost.value.payment_id or "")
    assert payment.reference == reference
    assert [e.status for e in service.ledger.list_events()] == [EventStatus.APPLIED] * len(events)
    assert webhook_made(service, payment.id) == []
    agree(service, app, payment.id)
    kinds = {e.kind for e in service.ledger.list_events()}
    assert kinds == {EventKind.CAPTURED}
