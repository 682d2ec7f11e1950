"""Reconciliation: unknown outcomes settled from the provider's state through `fetch`; an operation
the provider does not hold is concluded not applied only once its request can no longer land."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paywire import Money, OutcomeUnknown, hookimpl
from paywire.cli.operations import payment_view
from paywire.ledger import Ledger, Payment, PaymentState, TransactionStatus
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import FakePayApp, make_gateway
from tests.ledger.support import FAST, agree, eur, store_unmatched, wait_out_life, wait_until, within_life

S = TransactionStatus


class LoseRequests:
    """Fails chosen commands as if the connection broke after writing but before the provider read
    the request: the outcome is unknown to the client, but nothing happened."""

    def __init__(self) -> None:
        self.commands: set[str] = set()

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Iterator[None]:
        if command in self.commands:
            raise OutcomeUnknown("connection reset while sending (injected)")
        return (yield)


@pytest.fixture
def lose() -> LoseRequests:
    return LoseRequests()


@contextmanager
def _services(url: str, ledger: Ledger, lose: LoseRequests,
              *extra: object) -> Iterator[tuple[PaymentService, PaymentService]]:
    """Two services on one ledger: the first for the requests a test needs answered and every
    reconcile (generous timeouts: a loaded machine's slow answer is still an answer); the second
    for the requests `lose` loses, with FAST's short life, which a test waits out."""
    with make_gateway(url, extra=list(extra), read_timeout=30) as patient, \
            make_gateway(url, extra=[lose, *extra], **FAST) as fast:
        yield PaymentService(patient, ledger, margin=0), PaymentService(fast, ledger, margin=0)


@pytest.fixture
def services(fakepay: tuple[FakePayApp, str], ledger: Ledger,
             lose: LoseRequests) -> Iterator[tuple[PaymentService, PaymentService]]:
    with _services(fakepay[1], ledger, lose) as pair:
        yield pair


@pytest.fixture
def svc(services: tuple[PaymentService, PaymentService]) -> PaymentService:
    return services[0]


@pytest.fixture
def hurried(services: tuple[PaymentService, PaymentService]) -> PaymentService:
    """`svc`'s partner for the requests `lose` loses (their short life is waited out)."""
    return services[1]


def test_lost_authorize_answer_is_found_by_key(svc: PaymentService, app: FakePayApp) -> None:
    app.inject(Fault("drop_after", path="/v1/payments$"))
    with pytest.raises(OutcomeUnknown) as lost:
        svc.authorize("fakepay", eur("50.00"), source="tok_ok", order_id="A-7")
    payment_id = lost.value.payment_id or ""
    assert svc.get_payment(payment_id).reference is None
    report = svc.reconcile()
    assert report.clean and [s.status for s in report.settled] == [S.SUCCEEDED]
    payment = svc.get_payment(payment_id)
    assert (payment.state, payment.authorized) == (PaymentState.AUTHORIZED, eur("50.00"))
    agree(svc, app, payment_id)
    svc.capture(payment_id, eur("50.00"))  # and it works from there, with the reference fetched
    agree(svc, app, payment_id)
    assert svc.reconcile() == type(report)()  # nothing left to do


def test_request_that_never_arrived_stays_unknown_until_its_life_passed_then_fails(
        svc: PaymentService, hurried: PaymentService, app: FakePayApp, lose: LoseRequests) -> None:
    lose.commands = {"authorize"}
    with pytest.raises(OutcomeUnknown) as lost:
        hurried.authorize("fakepay", eur("5.00"), source="tok_ok")
    lose.commands = set()
    txn_id = lost.value.transaction_id or ""
    early = svc.reconcile()  # the provider does not hold it, but the request might still land
    if within_life(svc, [txn_id]):
        assert early.settled == ()
        assert [(u.transaction_id, u.status) for u in early.unresolved] == [(txn_id, None)]
        assert early.unresolved[0].note  # says why, and until when
        assert svc.get_transaction(txn_id).status == S.UNKNOWN
        assert svc.get_payment(lost.value.payment_id or "").state == PaymentState.PENDING

    wait_out_life(svc, [txn_id])
    report = svc.reconcile()
    assert [(s.kind, s.status) for s in early.settled + report.settled] == [("authorize", S.FAILED)]
    txn = svc.get_transaction(txn_id)
    assert (txn.status, txn.retryable, txn.settled_by) == (S.FAILED, True, "reconcile")
    assert svc.get_payment(lost.value.payment_id or "").state == PaymentState.FAILED
    assert app.count("authorize") == 0


def test_unknown_captures_refunds_and_voids(svc: PaymentService, hurried: PaymentService, app: FakePayApp,
                                            lose: LoseRequests) -> None:
    payment = svc.authorize("fakepay", eur("100.00"), source="tok_ok")
    app.inject(Fault("drop_after", path="/captures$"))
    with pytest.raises(OutcomeUnknown) as applied:
        svc.capture(payment.id, eur("30.00"))  # applied, answer lost
    lose.commands = {"capture"}
    with pytest.raises(OutcomeUnknown) as never:
        hurried.capture(payment.id, eur("30.00"), idempotency_key="second")  # never arrived
    lose.commands = set()
    never_id = never.value.transaction_id or ""
    report = svc.reconcile()
    if within_life(svc, [never_id]):
        assert [s.status for s in report.settled if s.kind == "capture"] == [S.SUCCEEDED]  # found by its key
        assert [u.transaction_id for u in report.unresolved] == [never_id]
    wait_out_life(svc, [never_id])
    settled = report.settled + svc.reconcile().settled
    assert sorted((s.transaction_id, s.status) for s in settled) == sorted(
        [(applied.value.transaction_id, S.SUCCEEDED), (never_id, S.FAILED)])
    agree(svc, app, payment.id)
    app.inject(Fault("drop_after", path="/refunds$"))
    with pytest.raises(OutcomeUnknown):
        svc.refund(payment.id, eur("10.00"))
    assert svc.reconcile().settled[0].status == S.SUCCEEDED
    agree(svc, app, payment.id)
    assert svc.get_payment(payment.id).refunded == eur("10.00")

    other = svc.authorize("fakepay", eur("20.00"), source="tok_ok")
    app.inject(Fault("drop_after", path="/void$"))
    with pytest.raises(OutcomeUnknown):
        svc.void(other.id)
    with pytest.raises(Exception, match="being voided"):
        svc.capture(other.id, eur("1.00"))
    assert svc.reconcile().settled[0].status == S.SUCCEEDED
    assert svc.get_payment(other.id).state == PaymentState.VOIDED


def test_operations_are_told_apart_by_their_keys_not_their_totals(svc: PaymentService, hurried: PaymentService,
                                                                   app: FakePayApp, lose: LoseRequests) -> None:
    """Two unknown captures and one made in the provider's dashboard: the provider's total alone
    could not say which of them took effect; the operations it lists (with their keys) can."""
    payment = svc.authorize("fakepay", eur("100.00"), source="tok_ok")
    reference = payment.reference or ""
    app.inject(Fault("drop_after", path="/captures$"))
    with pytest.raises(OutcomeUnknown) as applied:
        svc.capture(payment.id, eur("10.00"))
    lose.commands = {"capture"}
    with pytest.raises(OutcomeUnknown) as never:
        hurried.capture(payment.id, eur("20.00"))
    lose.commands = set()
    never_id = never.value.transaction_id or ""
    with app.lock:  # someone captures 5.00 at the provider directly
        app._capture(app.payments[reference], 500, final=False)
    report = svc.reconcile()
    if within_life(svc, [never_id]):
        assert [(s.transaction_id, s.status) for s in report.settled] == [(applied.value.transaction_id, S.SUCCEEDED)]
        assert [(u.transaction_id, u.status) for u in report.unresolved] == [(never_id, None)]
    captured = svc.get_payment(payment.id).captured
    assert captured == eur("15.00")  # never more than the provider holds, and now exactly that
    wait_out_life(svc, [never_id])
    settled = report.settled + svc.reconcile().settled
    # The dashboard's capture, recorded from the list once no open capture may be it.
    (beside,) = [(t.id, t.amount) for t in svc.list_transactions(payment.id) if t.origin == "reconcile"]
    assert beside[1] == eur("5.00")
    assert sorted((s.transaction_id, s.status) for s in settled) == sorted(
        [(applied.value.transaction_id, S.SUCCEEDED), (never_id, S.FAILED), (beside[0], S.SUCCEEDED)])
    agree(svc, app, payment.id)


def test_equal_amounts_are_settled_by_their_keys(svc: PaymentService, hurried: PaymentService, app: FakePayApp,
                                                 lose: LoseRequests) -> None:
    payment = svc.authorize("fakepay", eur("100.00"), source="tok_ok")
    app.inject(Fault("drop_after", path="/captures$"))
    with pytest.raises(OutcomeUnknown) as applied:
        svc.capture(payment.id, eur("10.00"))
    lose.commands = {"capture"}
    with pytest.raises(OutcomeUnknown) as never:
        hurried.capture(payment.id, eur("10.00"), idempotency_key="other-10")
    lose.commands = set()
    never_id = never.value.transaction_id or ""
    report = svc.reconcile()
    if within_life(svc, [never_id]):
        assert [(s.transaction_id, s.status) for s in report.settled] == [(applied.value.transaction_id, S.SUCCEEDED)]
    wait_out_life(svc, [never_id])
    settled = report.settled + svc.reconcile().settled
    assert sorted((s.transaction_id, s.status) for s in settled) == sorted(
        [(applied.value.transaction_id, S.SUCCEEDED), (never_id, S.FAILED)])
    agree(svc, app, payment.id)


def test_buyer_action_found_by_reconcile(svc: PaymentService, app: FakePayApp) -> None:
    app.inject(Fault("drop_after", path="/v1/payments$"))
    with pytest.raises(OutcomeUnknown) as lost:
        svc.authorize("fakepay", eur("15.00"), source="tok_3ds")
    svc.reconcile()
    payment = svc.get_payment(lost.value.payment_id or "")
    assert payment.state == PaymentState.ACTION_REQUIRED
    app.buyer_completes(payment.reference or "")  # on the provider's page; the shop made no call
    assert svc.reconcile().settled == ()  # nothing unknown: the ledger is not asked about it
    report = svc.reconcile(payment_id=payment.id)  # asked about one payment, it always looks
    assert report.clean
    payment = svc.get_payment(payment.id)
    assert (payment.state, payment.authorized, payment.action) == (PaymentState.AUTHORIZED, eur("15.00"), None)
    svc.capture(payment.id)
    agree(svc, app, payment.id)


def _waiting_unnamed(svc: PaymentService, app: FakePayApp) -> Payment:
    """A 3-D Secure authorize whose answer was lost, reconciled from a read of the payment that
    names no action for the buyer (as PayPal's order read names no approval link)."""
    app.inject(Fault("drop_after", path="/v1/payments$"))
    with pytest.raises(OutcomeUnknown) as lost:
        svc.authorize("fakepay", eur("15.00"), source="tok_3ds")
    (made,) = app.payments.values()
    with app.lock:
        made["next_action"] = None
    assert svc.reconcile().clean
    return svc.get_payment(lost.value.payment_id or "")


def test_a_wait_whose_reading_names_no_action_is_recorded_without_one(svc: PaymentService, app: FakePayApp) -> None:
    """The payment waits for its buyer, and the ledger makes up no redirect (an empty URL) the
    shop would send them to: it has no action, as the command line shows it."""
    payment = _waiting_unnamed(svc, app)
    assert (payment.state, payment.action) == (PaymentState.ACTION_REQUIRED, None)
    assert "action" not in payment_view(payment) and "redirect_url" not in payment_view(payment)
    payment = svc.complete(payment.id)  # the buyer came back
    assert (payment.state, payment.authorized, payment.action) == (PaymentState.AUTHORIZED, eur("15.00"), None)
    agree(svc, app, payment.id)


def test_a_wait_without_an_action_ends_when_the_provider_fails_it(svc: PaymentService, app: FakePayApp) -> None:
    """Waiting needs no action: the provider holding the payment failed (authentication failed)
    ends the wait all the same."""
    payment = _waiting_unnamed(svc, app)
    with app.lock:
        app.payments[payment.reference or ""].update(status="failed", closed=True)
    assert svc.reconcile(payment_id=payment.id).clean
    payment = svc.get_payment(payment.id)
    assert (payment.state, payment.authorized, payment.action) == (PaymentState.FAILED, eur("0.00"), None)


class _EventsDuringFetch:
    """The provider moves on while reconcile waits for its answer: after `times` fetches have been
    answered, the buyer finishes 3-D Secure (then the shop's staff capture a part in the
    provider's dashboard) and the event is applied before reconcile settles that answer."""

    def __init__(self, app: FakePayApp, times: int) -> None:
        self.app, self.times, self.payment = app, times, ""
        self.service: PaymentService | None = None
        self.receipts: list[str] = []

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Iterator[None]:
        response = yield
        if command == "fetch" and self.times and self.service is not None:
            self.times -= 1
            if not self.receipts:
                self.app.buyer_completes(self.payment)
                event = self.app.outbox[-1]
            else:  # an event of no effect would leave the payment as reconcile read it: this one changes it
                with self.app.lock:
                    self.app._capture(self.app.payments[self.payment], 100, final=False)
                    event = self.app.outbox[-1]
            self.receipts.append(self.service.receive_webhook("fakepay", *event).status)
        return response  # type: ignore[no-any-return]


@pytest.mark.parametrize("times", [1, 3], ids=["once", "every time"])
def test_an_event_applied_while_reconcile_waits_for_the_provider_is_never_taken_back(
    fakepay: tuple[FakePayApp, str], ledger: Ledger, times: int,
) -> None:
    """The provider's answer replaces the payment's floors, so an answer older than an event
    applied meanwhile would take the event back, and the event is never applied again. The
    provider is asked again instead; a payment that changes every time is reported, unchanged."""
    app, url = fakepay
    hook = _EventsDuringFetch(app, times)
    gateway = make_gateway(url, extra=[hook])
    try:
        service = hook.service = PaymentService(gateway, ledger)
        payment = service.authorize("fakepay", eur("12.00"), source="tok_3ds")
        assert payment.state == PaymentState.ACTION_REQUIRED
        hook.payment = payment.reference or ""
        report = service.reconcile(payment_id=payment.id)
        assert hook.receipts == ["applied"] * times
        if times == 1:
            assert report.clean
        else:
            assert [(owner, why.split(":")[0]) for owner, why in report.errors] == [(payment.id, "StateError")]
        payment = service.get_payment(payment.id)
        captured = Money(100 * (times - 1), "EUR")
        assert (payment.state, payment.authorized, payment.captured) == (
            PaymentState.PARTIALLY_CAPTURED if times > 1 else PaymentState.AUTHORIZED, eur("12.00"), captured)
        agree(service, app, payment.id)
    finally:
        gateway.close()


def test_fetch_failures_are_reported_and_change_nothing(svc: PaymentService, app: FakePayApp) -> None:
    payment = svc.authorize("fakepay", eur("10.00"), source="tok_ok")
    app.inject(Fault("drop_after", path="/captures$"))
    with pytest.raises(OutcomeUnknown):
        svc.capture(payment.id, eur("10.00"))
    app.inject(Fault("status", status=500, method="GET", times=5))
    report = svc.reconcile()
    assert report.errors and report.errors[0][0] == payment.id and not report.settled
    assert [t.status for t in svc.list_transactions(payment.id)][-1] == S.UNKNOWN
    app.clear_faults()
    assert svc.reconcile().settled[0].status == S.SUCCEEDED


class ListNoOperations:
    """A provider whose fetch reports its running totals but lists none of its captures or refunds
    (the case reconciliation splits the totals for)."""

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Iterator[None]:
        response: Any = yield
        if command == "fetch" and response.status == 200:
            data = {**json.loads(response.body), "captures": [], "refunds": []}
            return attrs.evolve(response, body=json.dumps(data).encode(), data=None)
        return response


def test_a_total_that_equal_amounts_could_each_make_up_settles_neither(
        fakepay: tuple[FakePayApp, str], ledger: Ledger, lose: LoseRequests) -> None:
    """Two unknown captures of 10.00 and a provider total of 10.00: either could be the one that
    took effect, so neither is guessed; the one that never arrived is never recorded as captured
    (a retry of the other, "failed", would then count its 10.00 twice)."""
    app = fakepay[0]
    with _services(fakepay[1], ledger, lose, ListNoOperations()) as (svc, hurried):
        payment = svc.authorize("fakepay", eur("100.00"), source="tok_ok")
        lose.commands = {"capture"}
        with pytest.raises(OutcomeUnknown) as never:
            hurried.capture(payment.id, eur("10.00"), idempotency_key="never-arrived")
        lose.commands = set()
        app.inject(Fault("drop_after", path="/captures$"))
        with pytest.raises(OutcomeUnknown) as applied:  # short-lived too: both lives are waited out
            hurried.capture(payment.id, eur("10.00"), idempotency_key="applied")
        # its lost answer may come after FAST's read timeout on a loaded machine: it lands all the same
        wait_until(lambda: app.count("capture") == 1, "the emulator applied the capture")
        truth = {never.value.transaction_id: S.FAILED, applied.value.transaction_id: S.SUCCEEDED}
        for _ in range(2):
            report = svc.reconcile()
            assert all(truth[s.transaction_id] == s.status for s in report.settled if s.kind == "capture"), report
            assert {u.transaction_id for u in report.unresolved} <= set(truth)
            assert svc.get_payment(payment.id).captured == eur("10.00")
            wait_out_life(svc, [t for t in truth if t])
        for transaction_id, status in truth.items():
            assert svc.get_transaction(transaction_id or "").status in (status, S.UNKNOWN)


@contextmanager
def _reconciled_lost_captures(fakepay: tuple[FakePayApp, str], ledger: Ledger, lose: LoseRequests,
                              captures: list[tuple[int, bool]],
                              listing: object) -> Iterator[tuple[PaymentService, FakePayApp, Payment, dict[str, str]]]:
    """A payment with one unknown capture per `(minor, applied)` (applied with its answer lost, or
    never arrived), reconciled through a provider whose fetch `listing` alters; checks that what
    was settled agrees with what happened and that the ledger's total is the provider's. Yields
    the service, the provider, the payment and what truly happened to each capture transaction."""
    app = fakepay[0]
    try:
        with _services(fakepay[1], ledger, lose, listing) as (svc, hurried):
            payment = svc.authorize("fakepay", eur("100.00"), source="tok_ok")
            truth: dict[str, str] = {}
            for index, (minor, applied) in enumerate(captures):
                lose.commands = set() if applied else {"capture"}
                if applied:  # its answer lost: through svc, so that it lands before it is lost
                    app.inject(Fault("drop_after", path="/captures$"))
                with pytest.raises(OutcomeUnknown) as lost:
                    (svc if applied else hurried).capture(payment.id, Money(minor, "EUR"), final=False,
                                                          idempotency_key=f"{payment.id}-{index}")
                truth[lost.value.transaction_id or ""] = S.SUCCEEDED if applied else S.FAILED
            lose.commands = set()
            report = svc.reconcile(payment_id=payment.id)
            assert all(truth[s.transaction_id] == s.status for s in report.settled), (captures, report)
            assert svc.get_payment(payment.id).captured.minor == app.totals(payment.reference or "")[1]
            yield svc, app, payment, truth
    finally:
        lose.commands = set()


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from([500, 1_000, 1_500]), st.booleans()), min_size=1, max_size=4))
def test_a_split_total_never_settles_a_capture_against_what_happened(
        fakepay: tuple[FakePayApp, str], ledger: Ledger, lose: LoseRequests, captures: list[tuple[int, bool]]) -> None:
    """Unknown captures, some applied and some never arrived, reconciled from the provider's total
    alone: whatever reconciliation settles agrees with what happened; the rest stays open."""
    with _reconciled_lost_captures(fakepay, ledger, lose, captures, ListNoOperations()):
        pass  # the checks are the helper's


class ListNoCaptureKeys:
    """A provider whose fetch lists its captures without the key each was made with (PayPal's
    captures carry none): reconciliation can match them by amount alone."""

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Iterator[None]:
        response: Any = yield
        if command == "fetch" and response.status == 200:
            data = json.loads(response.body)
            data["captures"] = [{**capture, "idempotency_key": None} for capture in data["captures"]]
            return attrs.evolve(response, body=json.dumps(data).encode(), data=None)
        return response


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from([500, 1_000]), st.booleans()), min_size=1, max_size=4))
def test_captures_told_apart_by_amount_alone_are_never_settled_against_what_happened(
        fakepay: tuple[FakePayApp, str], ledger: Ledger, lose: LoseRequests, captures: list[tuple[int, bool]]) -> None:
    """Unknown captures, some applied and some never arrived, reconciled from operations listed
    without keys: whatever is settled agrees with what happened, and retrying every capture not
    settled succeeded (with its key) leaves the ledger's total exactly the provider's: nothing
    counts twice."""
    with _reconciled_lost_captures(fakepay, ledger, lose, captures, ListNoCaptureKeys()) as (svc, app, payment, truth):
        for transaction_id in truth:  # the caller retries whatever is not known to have succeeded
            if svc.get_transaction(transaction_id).status != S.SUCCEEDED:
                svc.retry(transaction_id)
        assert app.count("capture", payment.reference) == len(captures)  # each applied once
        assert svc.get_payment(payment.id).captured.minor == app.totals(payment.reference or "")[1]


class ListNoRefundKeys:
    """A provider whose fetch lists its refunds without the key each was made with, and with the
    capture each is on or without (`parents`): reconciliation can match them by amount alone."""

    def __init__(self, parents: bool) -> None:
        self.parents = parents

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Iterator[None]:
        response: Any = yield
        if command == "fetch" and response.status == 200:
            data = json.loads(response.body)
            data["refunds"] = [{**refund, "idempotency_key": None, "capture": refund["capture"] if self.parents else None}
                               for refund in data["refunds"]]
            return attrs.evolve(response, body=json.dumps(data).encode(), data=None)
        return response


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.booleans(), st.sampled_from([500, 1_000]), st.booleans()), min_size=1, max_size=4),
       st.booleans())
def test_refunds_told_apart_by_amount_and_capture_are_never_settled_against_what_happened(
        fakepay: tuple[FakePayApp, str], ledger: Ledger, lose: LoseRequests, refunds: list[tuple[bool, int, bool]],
        parents: bool) -> None:
    """Unknown refunds (`(before the second capture, minor, applied)`: on the first capture or, made
    after the second, mostly on it), some applied and some never arrived, reconciled from refunds
    listed without keys, with the capture each is on or without: whatever is settled agrees with
    what happened, and retrying every refund not settled succeeded leaves the ledger's refunded
    total exactly the provider's: nothing counts twice."""
    app = fakepay[0]
    try:
        with _services(fakepay[1], ledger, lose, ListNoRefundKeys(parents)) as (svc, hurried):
            payment = svc.authorize("fakepay", eur("100.00"), source="tok_ok")
            svc.capture(payment.id, eur("40.00"), final=False)
            truth: dict[str, str] = {}
            for phase in (True, False):
                if not phase:
                    svc.capture(payment.id, eur("30.00"), final=False)
                for index, (first, minor, applied) in enumerate(refunds):
                    if first != phase:
                        continue
                    lose.commands = set() if applied else {"refund"}
                    if applied:  # its answer lost: through svc, so that it lands before it is lost
                        app.inject(Fault("drop_after", path="/refunds$"))
                    with pytest.raises(OutcomeUnknown) as lost:
                        (svc if applied else hurried).refund(payment.id, Money(minor, "EUR"),
                                                         idempotency_key=f"{payment.id}-refund-{index}")
                    truth[lost.value.transaction_id or ""] = S.SUCCEEDED if applied else S.FAILED
            lose.commands = set()
            report = svc.reconcile(payment_id=payment.id)
            assert all(truth[s.transaction_id] == s.status for s in report.settled if s.kind == "refund"), (refunds, report)
            for transaction_id in truth:  # the caller retries whatever is not known to have succeeded
                if svc.get_transaction(transaction_id).status != S.SUCCEEDED:
                    svc.retry(transaction_id)
            assert app.count("refund", payment.reference) == len(refunds)  # each applied once
            assert svc.get_payment(payment.id).refunded.minor == app.totals(payment.reference or "")[2]
    finally:
        lose.commands = set()


def test_transactions_left_open_run_after_run_never_keep_newer_ones_from_being_settled(
        svc: PaymentService, app: FakePayApp) -> None:
    """`reconcile(limit)` with more open transactions than `limit`, the oldest staying open run
    after run (a sale the provider has not decided, a capture whose payment the provider cannot
    answer for): a newer one whose answer was lost is still settled within a few runs, as the
    Janitor's passes would."""
    undecided = svc.sale("fakepay", eur("1.00"), source="tok_pending")
    unreadable = svc.authorize("fakepay", eur("2.00"), source="tok_ok")
    app.inject(Fault("drop_after", path="/captures$"))
    with pytest.raises(OutcomeUnknown):
        svc.capture(unreadable.id, eur("2.00"))
    app.inject(Fault("drop_after", path="/v1/payments$"))
    with pytest.raises(OutcomeUnknown) as lost:
        svc.authorize("fakepay", eur("3.00"), source="tok_ok")
    newer = lost.value.transaction_id or ""
    app.inject(Fault("status", status=500, method="GET", path=f"/v1/payments/{unreadable.reference}$", times=100))
    reports = [svc.reconcile(limit=2) for _ in range(3)]
    assert svc.get_transaction(newer).status == S.SUCCEEDED, reports
    assert [r.errors[0][0] for r in reports if r.errors][:1] == [unreadable.id]  # reported, not settled
    assert svc.list_transactions(undecided.id)[0].status == S.ACCEPTED
    assert svc.list_transactions(unreadable.id)[-1].status == S.UNKNOWN


def test_an_event_that_cannot_be_applied_keeps_neither_the_others_nor_the_report_from_a_run(
        svc: PaymentService, app: FakePayApp, fakepay: tuple[FakePayApp, str], ledger: Ledger) -> None:
    """An event stored unmatched for a payment of a method the configuration no longer has cannot
    be applied (its capabilities are unknown): the events stored after it are applied all the same
    (every pass failed at it before, and never reached them), and a reconcile run reports it among
    its errors instead of raising, its report of what it settled lost."""
    from paywire import ConfigurationError, Retry, Subject
    from paywire.gateway import Gateway

    gone = svc.authorize("fakepay_single", eur("10.00"), source="tok_ok")
    kept = svc.authorize("fakepay", eur("20.00"), source="tok_ok")
    for payment, key in ((gone, "dashboard-1"), (kept, "dashboard-2")):
        svc.gateway.execute(payment.method, "capture", Subject(reference=payment.reference, amount=eur("5.00"),
                                                               idempotency_key=key))
    stuck = store_unmatched(svc, "fakepay_single", *app.outbox[-2])
    waiting = store_unmatched(svc, "fakepay", *app.outbox[-1])
    app.inject(Fault("drop_after", path="/v1/payments$"))
    with pytest.raises(OutcomeUnknown):
        svc.authorize("fakepay", eur("30.00"), source="tok_ok")
    full = svc.gateway.methods.get("fakepay")
    with Gateway([full], plugins=svc.gateway.plugins, retry=Retry.never()) as gateway:  # fakepay_single removed
        service = PaymentService(gateway, ledger, margin=0)
        matched = service.match_unmatched()  # the failure reported, once the rest were applied
        assert matched.applied == 1 and [event for event, _ in matched.failures] == [f"fakepay/{stuck}"]
        assert isinstance(matched.failures[0][1], ConfigurationError)
        assert ledger.get_event("fakepay", waiting).status == "applied"
        report = service.reconcile()
    assert [s.status for s in report.settled] == [S.SUCCEEDED]
    assert [e[0] for e in report.errors] == [f"fakepay/{stuck}"] and "ConfigurationError" in report.errors[0][1]
    assert ledger.get_event("fakepay", stuck).status == "unmatched"  # applied once the method is back
    assert svc.get_payment(kept.id).captured == eur("5.00")


def test_events_that_cannot_be_applied_filling_a_run_do_not_keep_it_from_the_ones_after(
        svc: PaymentService, app: FakePayApp, ledger: Ledger) -> None:
    """More events that cannot be applied (their payment's method no longer configured) than a
    run looks at (`limit`), stored before one that can: the run reads past them and applies it,
    and still reports each of them (every run stopped at them before, and never reached it)."""
    from paywire import ConfigurationError, Retry, Subject
    from paywire.gateway import Gateway

    stuck = []
    for n in range(3):
        gone = svc.authorize("fakepay_single", eur("10.00"), source="tok_ok")
        svc.gateway.execute(gone.method, "capture", Subject(reference=gone.reference, amount=eur("1.00"),
                                                            idempotency_key=f"dashboard-gone-{n}"))
        stuck.append(store_unmatched(svc, "fakepay_single", *app.outbox[-1]))
    kept = svc.authorize("fakepay", eur("20.00"), source="tok_ok")
    svc.gateway.execute(kept.method, "capture", Subject(reference=kept.reference, amount=eur("5.00"),
                                                        idempotency_key="dashboard-kept"))
    waiting = store_unmatched(svc, "fakepay", *app.outbox[-1])
    full = svc.gateway.methods.get("fakepay")
    with Gateway([full], plugins=svc.gateway.plugins, retry=Retry.never()) as gateway:  # fakepay_single removed
        service = PaymentService(gateway, ledger, margin=0)
        matched = service.match_unmatched(limit=2)
        assert matched.applied == 1
        assert sorted(event for event, _ in matched.failures) == sorted(f"fakepay/{event}" for event in stuck)
        assert all(isinstance(exc, ConfigurationError) for _, exc in matched.failures)
        assert ledger.get_event("fakepay", waiting).status == "applied"
        report = service.reconcile(limit=2)
    assert sorted(e[0] for e in report.errors) == sorted(f"fakepay/{event}" for event in stuck)
    assert [ledger.get_event("fakepay", event).status for event in stuck] == ["unmatched"] * 3
    assert svc.get_payment(kept.id).captured == eur("5.00")
