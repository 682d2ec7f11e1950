"""The ledger failing at any one point of an operation never breaks the outcome model.

The ledger is a real SQLite or PostgreSQL one with one fault: the Nth call into its public or
unit methods (a unit's commit counting as one) during the operation raises the driver's own error
(a disk I/O error; a lost connection, closed); every call the operation makes in a clean run is
tried in turn, for each operation kind, against the FakePay emulator over loopback. The fault is
one call ("once"), or the database gone from that call until the operation ends ("onward", tried
from the first call after the request left: before, the first fault ends the operation), or a
commit that landed with its answer lost ("landed"). For every other "onward" run the provider's
events are delivered too. Once the ledger works again and `reconcile()` ran (requests living a
second at most, margin 0):

1. a request the provider applied is never recorded failed, and never answered with a refusal;
2. an answer saying the ledger was unavailable or busy means nothing was sent;
3. the ledger's totals are the provider's, and nothing is left open;
4. no raw driver error reaches the caller (before the request was sent, it is `LedgerUnavailable`);
5. the same call again, under its key, makes the operation once (or answers its refusal again).

The same faults during a call that sends nothing (the same call again under its key, which
replays what was recorded; the reads of a payment; `reconcile()` of it) leave its answer as a
clean ledger's, or make it `LedgerUnavailable`, never the driver's own error.
"""

from __future__ import annotations

import itertools
import sqlite3
from collections.abc import Callable, Generator, Iterator
from contextlib import AbstractContextManager
from datetime import timedelta
from functools import partial
from typing import Any, NamedTuple

import pytest

from paywire import (
    Declined,
    IdempotencyConflict,
    InvalidRequest,
    LedgerBusy,
    LedgerUnavailable,
    OutcomeUnknown,
    StateError,
    hookimpl,
)
from paywire.ledger import Ledger, LedgerUnit, Payment, PostgresLedger, TransactionStatus
from paywire.ledger.model import now, replace
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import FakePayApp, make_gateway
from tests.ledger.support import FAST, Sent, agree, eur, wait_out_life, wait_until, wait_until_landed

S = TransactionStatus
# No database call: tells what an error means, lets go, or tells the time (the ledger's clock, read
# from the database as a unit is about to begin: a fault there is the unit's).
_UNCOUNTED = frozenset({"unavailable", "close", "now", "deadline"})


def driver_error(ledger: Ledger) -> Exception:
    """The error the ledger's own driver raises when its database goes away mid-call; a
    PostgreSQL connection is lost with it (closed), as the server's going leaves it."""
    if isinstance(ledger, PostgresLedger):
        import psycopg

        held = getattr(ledger._local, "connection", None)
        if held is not None:
            held[1].close()
        return psycopg.OperationalError("server closed the connection unexpectedly")
    error = sqlite3.OperationalError("disk I/O error")
    error.sqlite_errorcode = sqlite3.SQLITE_IOERR  # type: ignore[attr-defined]
    error.sqlite_errorname = "SQLITE_IOERR"  # type: ignore[attr-defined]
    return error


class Faulty:
    """A real ledger whose `fail_at`-th call (public method, unit method, or unit commit) since
    `arm()` raises the driver's error; mode "onward": every call after it too (the database gone
    until the operation ends); "landed": raised after the call did its work (a commit that
    landed, its answer lost). `calls` counts them (0 for `fail_at` counts only)."""

    def __init__(self, ledger: Ledger) -> None:
        self._ledger = ledger
        self.fail_at = 0
        self.onward = False
        self.landed = False
        self.calls = 0
        self.fired: str | None = None
        self.probe: Callable[[], int] = lambda: 0  # what the provider received so far
        self.trace: list[tuple[str, int]] = []  # each call since `arm()`, with `probe()` at it

    def arm(self, fail_at: int, mode: str = "once") -> None:
        self.fail_at, self.calls, self.fired, self.trace = fail_at, 0, None, []
        self.onward, self.landed = mode == "onward", mode == "landed"

    def disarm(self) -> None:
        self.fail_at = 0

    def tick(self, name: str) -> None:
        self.calls += 1
        self.trace.append((name, self.probe()))
        if self.calls == self.fail_at or (self.onward and 0 < self.fail_at <= self.calls):
            self.fired = self.fired or name
            raise driver_error(self._ledger)

    def around(self, name: str, work: Callable[[], Any]) -> Any:
        """Run one call: the fault before it, or (`landed`) after it did its work, as a connection
        lost before the database's answer came back leaves it."""
        if not self.landed:
            self.tick(name)
            return work()
        result = work()
        self.tick(name)
        return result

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._ledger, name)
        if name.startswith("_") or name in _UNCOUNTED or not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            return self.around(name, lambda: value(*args, **kwargs))
        return call

    def unit(self, *, durable: bool = True) -> AbstractContextManager[LedgerUnit]:
        self.tick("unit")
        return _FaultyScope(self, self._ledger.unit(durable=durable))


class _FaultyScope:
    def __init__(self, faulty: Faulty, scope: AbstractContextManager[LedgerUnit]) -> None:
        self._faulty = faulty
        self._scope = scope

    def __enter__(self) -> LedgerUnit:
        return _FaultyUnit(self._faulty, self._scope.__enter__())  # type: ignore[return-value]

    def __exit__(self, kind: Any, exc: BaseException | None, tb: Any) -> bool | None:
        if exc is None and self._faulty.landed:  # committed, and the answer lost
            self._scope.__exit__(None, None, None)
            self._faulty.tick("commit")
            return None
        if exc is None:
            try:
                self._faulty.tick("commit")
            except Exception as failed:  # the commit failed: the database kept nothing of the unit
                self._scope.__exit__(type(failed), failed, None)
                raise
        return self._scope.__exit__(kind, exc, tb)


class _FaultyUnit:
    def __init__(self, faulty: Faulty, unit: LedgerUnit) -> None:
        self._faulty = faulty
        self._unit = unit

    def __getattr__(self, name: str) -> Any:
        value = getattr(self._unit, name)
        if name.startswith("_") or name in _UNCOUNTED or not callable(value):
            return value

        def call(*args: Any, **kwargs: Any) -> Any:
            return self._faulty.around(name, lambda: value(*args, **kwargs))
        return call


# -- the operations: each sets up its own payment, then returns the call and whether the provider
# already applied it (a resend of a request whose answer was lost) -------------------------------

Call = Callable[[PaymentService], Any]  # the operation, made through the service given
Setup = Callable[[PaymentService, FakePayApp, str, PaymentService], tuple[Call, bool]]  # the last: `hurried`


def _authorize(service: PaymentService, app: FakePayApp, key: str, hurried: PaymentService) -> tuple[Call, bool]:
    return lambda s: s.authorize("fakepay", eur("50.00"), source="tok_ok", idempotency_key=key), False


def _sale(service: PaymentService, app: FakePayApp, key: str, hurried: PaymentService) -> tuple[Call, bool]:
    return lambda s: s.sale("fakepay", eur("50.00"), source="tok_ok", idempotency_key=key), False


def _authorized(service: PaymentService) -> Payment:
    return service.authorize("fakepay", eur("50.00"), source="tok_ok")


def _capture_partial(service: PaymentService, app: FakePayApp, key: str, hurried: PaymentService) -> tuple[Call, bool]:
    payment = _authorized(service)
    return lambda s: s.capture(payment.id, eur("20.00"), final=False, idempotency_key=key), False


def _capture_full(service: PaymentService, app: FakePayApp, key: str, hurried: PaymentService) -> tuple[Call, bool]:
    payment = _authorized(service)
    return lambda s: s.capture(payment.id, idempotency_key=key), False


def _refund(service: PaymentService, app: FakePayApp, key: str, hurried: PaymentService) -> tuple[Call, bool]:
    payment = service.sale("fakepay", eur("50.00"), source="tok_ok")
    return lambda s: s.refund(payment.id, eur("20.00"), idempotency_key=key), False


def _void(service: PaymentService, app: FakePayApp, key: str, hurried: PaymentService) -> tuple[Call, bool]:
    payment = _authorized(service)
    return lambda s: s.void(payment.id, idempotency_key=key), False


def _complete(service: PaymentService, app: FakePayApp, key: str, hurried: PaymentService) -> tuple[Call, bool]:
    payment = service.authorize("fakepay", eur("50.00"), source="tok_3ds", return_url="https://shop.example/back")
    assert payment.state == "action_required"
    return lambda s: s.complete(payment.id, idempotency_key=key), False


def _capture_partly_authorized(service: PaymentService, app: FakePayApp, key: str,
                               hurried: PaymentService) -> tuple[Call, bool]:
    """A capture of all that a prepaid card's partial authorization holds (half of what was asked)."""
    payment = service.authorize("fakepay", eur("50.00"), source="tok_partial", idempotency_key=f"{key}-auth")
    return lambda s: s.capture(payment.id, idempotency_key=key), False


def _decline(service: PaymentService, app: FakePayApp, key: str, hurried: PaymentService) -> tuple[Call, bool]:
    return lambda s: s.sale("fakepay", eur("50.00"), source="tok_decline", idempotency_key=key), False


def _void_lapsed(service: PaymentService, app: FakePayApp, key: str, hurried: PaymentService) -> tuple[Call, bool]:
    """A void the provider refuses because the hold lapsed (`state_conflict`): recorded failed,
    then the payment is read from the provider."""
    payment = _authorized(service)
    app.lapse(payment.reference or "")
    return lambda s: s.void(payment.id, idempotency_key=key), False


def _resend(service: PaymentService, app: FakePayApp, key: str, hurried: PaymentService) -> tuple[Call, bool]:
    """A capture whose answer was lost, called again: the provider's stored answer, and a read owed."""
    payment = _authorized(service)
    app.inject(Fault("drop_after", method="POST", path="/captures$"))
    with pytest.raises(OutcomeUnknown):  # short-lived, as a fault may leave it open to be waited out
        hurried.capture(payment.id, eur("20.00"), final=False, idempotency_key=key)
    wait_until(lambda: app.count("capture", payment.reference) == 1, "the emulator applied the capture")
    app.clear_faults()
    return lambda s: s.capture(payment.id, eur("20.00"), final=False, idempotency_key=key), True


# What the provider applied on the payment once the operation took effect, setup included.
APPLIED = {"authorize": 1, "sale": 2, "capture_partial": 2, "capture_full": 2, "refund": 3, "void": 2, "complete": 1,
           "resend": 2, "decline": 0, "void_lapsed": 1, "capture_partly_authorized": 2}
REFUSED: dict[str, type[Exception]] = {"decline": Declined, "void_lapsed": StateError}  # what the clean call raises
OPERATIONS: dict[str, Setup] = {
    "authorize": _authorize, "sale": _sale, "capture_partial": _capture_partial, "capture_full": _capture_full,
    "refund": _refund, "void": _void, "complete": _complete, "resend": _resend, "decline": _decline,
    "void_lapsed": _void_lapsed, "capture_partly_authorized": _capture_partly_authorized,
}
_REFUSALS = (Declined, InvalidRequest, StateError)


class Faulted(NamedTuple):
    service: PaymentService  # for what must be answered: generous timeouts, however loaded the machine
    hurried: PaymentService  # for the faulted calls, whose short life (FAST) a test waits out
    ledger: Faulty  # what both record in
    sent: Sent  # what both sent


@pytest.fixture
def faulty(fakepay: tuple[FakePayApp, str], ledger: Ledger) -> Iterator[Faulted]:
    wrapped, sent = Faulty(ledger), Sent()
    with make_gateway(fakepay[1], extra=[sent], read_timeout=30) as patient, \
            make_gateway(fakepay[1], extra=[sent], **FAST) as fast:
        yield Faulted(PaymentService(patient, wrapped, margin=0), PaymentService(fast, wrapped, margin=0),  # type: ignore[arg-type]
                      wrapped, sent)


def _raw(error: BaseException, ledger: Ledger) -> bool:
    """Whether `error` is the ledger's driver's own, unwrapped."""
    if isinstance(ledger, PostgresLedger):
        import psycopg

        return isinstance(error, psycopg.Error)
    return isinstance(error, sqlite3.Error)


@pytest.mark.parametrize("mode", ["once", "onward", "landed"])
@pytest.mark.parametrize("kind", list(OPERATIONS))
def test_a_ledger_fault_at_any_call_of_an_operation_keeps_the_outcome_model(
        faulty: Faulted, app: FakePayApp, ledger: Ledger, kind: str, mode: str) -> None:
    service, hurried, wrapped = faulty.service, faulty.hurried, faulty.ledger
    keys = (f"{kind}-{n}" for n in itertools.count())
    setup = OPERATIONS[kind]

    call, _ = setup(service, app, next(keys), hurried)
    wrapped.probe = lambda: len(app.calls)
    wrapped.arm(0)  # a clean run: the calls the operation makes, and which come after its request
    start = len(app.calls)
    answer(service, partial(call, service), kind)
    trace = [(name, received > start) for name, received in wrapped.trace]
    assert trace and any(sent for _, sent in trace), trace
    # Before the request is sent the first fault ends the operation, whatever follows it; a commit
    # that lands differs from one that fails only there.
    points = [n for n, (name, sent) in enumerate(trace, 1)
              if mode == "once" or (mode == "landed" and name == "commit") or (mode == "onward" and sent)]

    runs: list[tuple[int, str | None, BaseException | Payment, bool, set[str], Call]] = []
    events: list[tuple[dict[str, str], bytes]] = []  # those the provider's webhooks deliver
    for n in points:
        before = {p.id for p in service.list_payments(limit=10_000)}
        emitted = len(app.outbox)
        call, applied_before = setup(service, app, next(keys), hurried)
        applied, sent = len(app.applied), len(app.calls)
        wrapped.arm(n, mode)
        try:
            outcome: BaseException | Payment = call(hurried)
        except Exception as exc:  # judged below
            outcome = exc
        finally:
            wrapped.disarm()
        # An answer later than FAST's read timeout (a loaded machine) is lost, not what is tested:
        # what was sent lands before the provider is looked at, as it would within its life.
        wait_until_landed(app, faulty.sent)
        was_sent = len(app.calls) > sent
        took_effect = applied_before or len(app.applied) > applied
        where = f"{mode} fault at call {n} ({wrapped.fired}) of {kind}: {outcome!r}"
        if isinstance(outcome, BaseException):
            assert not _raw(outcome, ledger), f"the driver's own error (2, 4): {where}"
            if isinstance(outcome, (LedgerUnavailable, LedgerBusy)):
                assert not was_sent, f"sent, then answered with the ledger's error (2): {where}"
            elif isinstance(outcome, _REFUSALS):
                assert not took_effect, f"applied, and answered with a refusal (1): {where}"
            else:
                assert isinstance(outcome, OutcomeUnknown), f"unexpected error: {where}"
        mine = {p.id for p in service.list_payments(limit=10_000)} - before
        runs.append((n, wrapped.fired, outcome, took_effect, mine, call))
        if mode == "onward" and n % 2:  # every other one, the provider's events come before reconcile()
            events += app.outbox[emitted:]

    for headers, body in events:
        service.receive_webhook("fakepay", headers, body)
    txns = [t.id for t in service.list_transactions(statuses=[S.PENDING, S.UNKNOWN, S.ACCEPTED])]
    wait_out_life(service, txns)
    report = service.reconcile()
    assert report.errors == (), report
    for n, fired, outcome, took_effect, mine, call in runs:
        where = f"{mode} fault at call {n} ({fired}) of {kind}: {outcome!r}"
        payment_id = (outcome.id if isinstance(outcome, Payment) else getattr(outcome, "payment_id", None))
        ids = mine | ({payment_id} if payment_id else set())
        if not ids:
            assert not took_effect, f"applied, and no payment names it: {where}"
        for pid in ids:
            payment = service.get_payment(pid)
            if payment.reference is None:  # never reached the provider
                assert not took_effect and [t for t in service.list_transactions(pid) if t.open] == [], where
                continue
            agree(service, app, pid)  # (3)
            if took_effect:
                failed = [t for t in service.list_transactions(pid) if t.status == S.FAILED]
                assert failed == [], f"applied, and recorded failed (1): {where}: {failed}"

        # 5. The caller does what the answer said (the same call again, under its key): the
        # operation is made, once.
        again = answer(service, partial(call, service), kind)
        made = [a for a in app.applied if again.reference and a[1] == again.reference]
        assert len(made) == APPLIED[kind], f"{where}: {made}"
        if again.reference is None:  # declined: nothing at the provider, nothing open
            assert [t for t in service.list_transactions(again.id) if t.open] == [], where
        else:
            agree(service, app, again.id)


def answer(service: PaymentService, call: Callable[[], Any], kind: str) -> Payment:
    """The payment the call answers (or, for a refused one, names in its error), as a clean
    ledger answers it."""
    try:
        paid = call()
    except REFUSED.get(kind, ()) as refused:
        assert refused.payment_id is not None, refused
        return service.get_payment(refused.payment_id)
    # A void whose answer was lost is settled from the provider, which holds the payment voided
    # (the hold lapsed): it is recorded as done, what the refusal left too.
    assert isinstance(paid, Payment) and (kind not in REFUSED or paid.state == "voided"), paid
    return paid


class _InterruptedAnswer:
    """The process is interrupted (Ctrl-C, a signal turned into KeyboardInterrupt) as a capture's
    answer arrives, and the ledger is gone from then on (`faulty`, armed here)."""

    def __init__(self, faulty: Faulty) -> None:
        self.faulty = faulty

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Generator[None, Any, Any]:
        try:
            return (yield)
        finally:  # answered or not (a loaded machine may answer after FAST's read timeout): sent
            if command == "capture":
                self.faulty.arm(1, "onward")
                raise KeyboardInterrupt  # what ends the call, whatever the send raised


def test_an_interrupt_after_sending_with_the_ledger_gone_still_reaches_the_caller_and_leaves_it_pending(
        fakepay: tuple[FakePayApp, str], ledger: Ledger) -> None:
    """The interrupt must stop the caller, not a driver error raised while recording it (which
    would also be the ledger's raw error after the request was sent); the capture stays pending
    and is settled from the provider."""
    app, url = fakepay
    wrapped = Faulty(ledger)
    with make_gateway(url, read_timeout=30) as patient, \
            make_gateway(url, extra=[_InterruptedAnswer(wrapped)], **FAST) as gateway:
        service = PaymentService(patient, wrapped, margin=0)  # type: ignore[arg-type]
        payment = service.authorize("fakepay", eur("50.00"), source="tok_ok")
        with pytest.raises(KeyboardInterrupt) as raised:  # only the capture has FAST's short life, waited out
            PaymentService(gateway, wrapped, margin=0).capture(  # type: ignore[arg-type]
                payment.id, eur("20.00"), idempotency_key="capture-1")
        wrapped.disarm()
        assert wrapped.fired is not None  # the ledger did fail while the interrupt was recorded
        (txn,) = [t for t in service.list_transactions(payment.id) if t.kind == "capture"]
        assert raised.value.__dict__.get("transaction_id") == txn.id and txn.status == S.PENDING
        wait_until(lambda: app.count("capture") == 1, "the emulator applied the capture")
        wait_out_life(service, [txn.id])
        assert service.reconcile().errors == ()
        assert service.get_transaction(txn.id).status == S.SUCCEEDED
        agree(service, app, payment.id)


# -- a replay (the same call again under its key) and the reads of a payment: nothing is sent ------

def _outcome(call: Callable[[], Any]) -> Any:
    try:
        return call()
    except Exception as exc:  # judged by the test
        return exc


def _alike(outcome: Any, clean: Any) -> bool:
    """Whether `outcome` is the clean ledger's answer: of its type, and the same payment."""
    if type(outcome) is not type(clean):
        return False
    return not isinstance(clean, Payment) or outcome.id == clean.id


@pytest.mark.parametrize("mode", ["once", "onward", "landed"])
@pytest.mark.parametrize("kind", list(OPERATIONS))
def test_a_ledger_fault_at_any_call_of_a_replay_or_a_read_is_ledger_unavailable_and_sends_nothing(
        faulty: Faulted, app: FakePayApp, ledger: Ledger, kind: str, mode: str) -> None:
    """The operation made, the same call again under its key (a replay: it answers what was
    recorded and sends nothing; so does `retry()` of its transaction), and the reads a caller or
    the command line makes of its payment (`reconcile(payment_id)` among them), each with the
    ledger failing at each of its calls in turn: it answers as on a clean ledger (a failure the
    call rides out: a read of the provider that could not be recorded), or raises
    `LedgerUnavailable` (retryable; a replay's names the payment and transaction recorded),
    never the driver's own error, and nothing the provider applies is sent. Once the ledger works
    again, the call answers as on a clean ledger."""
    service, wrapped = faulty.service, faulty.ledger
    key = f"{kind}-replayed"
    made, _ = OPERATIONS[kind](service, app, key, faulty.hurried)
    call = partial(made, service)
    payment = answer(service, call, kind)
    txn = [t for t in service.list_transactions(payment.id) if t.idempotency_key == key][-1]  # its latest attempt
    calls: dict[str, Callable[[], Any]] = {
        "replay": call, "retry": lambda: service.retry(txn.id),
        "get_payment": lambda: service.get_payment(payment.id),
        "get_transaction": lambda: service.get_transaction(txn.id),
        "list_transactions": lambda: service.list_transactions(payment.id),
        "list_payments": lambda: service.list_payments(limit=10),
        "reconcile": lambda: service.reconcile(payment_id=payment.id),
    }
    for name, read in calls.items():
        wrapped.arm(0)
        clean = _outcome(read)
        assert not isinstance(clean, (LedgerUnavailable, LedgerBusy)) and not _raw(clean, ledger), (name, clean)
        points = [n for n, (called, _) in enumerate(wrapped.trace, 1) if mode != "landed" or called == "commit"]
        found = next((n for n, (called, _) in enumerate(wrapped.trace, 1) if called == "commit"), 0)  # the key's unit
        for n in points:
            applied = len(app.applied)
            wrapped.arm(n, mode)
            try:
                outcome = _outcome(read)
            finally:
                wrapped.disarm()
            where = f"{mode} fault at call {n} ({wrapped.fired}) of {name} after {kind}: {outcome!r}"
            assert not _raw(outcome, ledger), f"the driver's own error: {where}"
            assert len(app.applied) == applied, f"sent something the provider applied: {where}"
            if isinstance(outcome, LedgerUnavailable):
                assert outcome.retryable and outcome.code == "ledger_unavailable", where
                assert not outcome.may_have_been_sent and "the ledger's database is unavailable" in str(outcome), where
                if name in ("replay", "retry") and n > found:  # past the unit that found the key recorded
                    assert (outcome.payment_id, outcome.transaction_id) == (payment.id, txn.id), where
            else:
                assert _alike(outcome, clean), f"answered otherwise than a clean ledger ({clean!r}): {where}"
            assert _alike(_outcome(read), clean), f"once the ledger works again: {where}"


class _ClaimedMeanwhile:
    """Another worker claims a capture's transaction while its answer is on the way back, as it
    may once the request's life has passed (this worker paused): it will send it again under its
    key. The answer then finds the transaction no longer as its call left it, and the call waits
    for the other send's outcome."""

    def __init__(self, ledger: Ledger) -> None:
        self.ledger = ledger

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Generator[None, Any, Any]:
        response = yield
        if command == "capture":
            (txn,) = [t for t in self.ledger.list_transactions(statuses=[S.PENDING])
                      if t.kind == "capture" and t.updated_at == t.created_at]  # this call's, not claimed yet
            with self.ledger.unit() as u:
                u.payment(txn.payment_id or "", lock=True)
                u.update_transaction(replace(txn, updated_at=now(), settle_after=now() + timedelta(minutes=5)))
        return response


def test_a_ledger_fault_while_a_call_that_sent_its_request_waits_for_another_send_leaves_it_unknown(
        fakepay: tuple[FakePayApp, str], ledger: Ledger) -> None:
    """The call sent its capture, and waits for the outcome of the send another worker claimed
    meanwhile; the ledger fails while it reads that outcome. The call's request was sent: its
    outcome is unknown (`OutcomeUnknown`, naming its transaction), never "the ledger is
    unavailable, nothing was sent" (which invites sending it anew), nor the driver's own error."""
    app, url = fakepay
    wrapped = Faulty(ledger)
    with make_gateway(url, extra=[_ClaimedMeanwhile(ledger)], read_timeout=30) as gateway:  # answered, however late
        service = PaymentService(gateway, wrapped, margin=0, wait_timeout=0.2)  # type: ignore[arg-type]
        first, second = (service.authorize("fakepay", eur("50.00"), source="tok_ok") for _ in range(2))
        wrapped.probe = lambda: app.count("capture")
        wrapped.arm(0)  # clean: it waits for the other send, which is still running
        with pytest.raises(IdempotencyConflict, match="in progress"):
            service.capture(first.id, eur("20.00"), idempotency_key="capture-1")
        waits = next(n for n, (name, sent) in enumerate(wrapped.trace, 1) if sent and name == "get_transaction")
        wrapped.arm(waits, "onward")
        try:
            with pytest.raises(OutcomeUnknown) as raised:
                service.capture(second.id, eur("20.00"), idempotency_key="capture-2")
        finally:
            wrapped.disarm()
        assert wrapped.fired == "get_transaction" and app.count("capture") == 2
        (txn,) = [t for t in service.list_transactions(second.id) if t.kind == "capture"]
        assert raised.value.transaction_id == txn.id and txn.status == S.PENDING, raised.value
        assert "the capture was sent" in str(raised.value) and "could not be read" in str(raised.value), raised.value
