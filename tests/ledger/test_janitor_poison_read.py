"""A payment whose read kills the worker (a crash, an out-of-memory kill, a hang past its lease):
each Janitor that takes it after the lease counts the look when it claims the payment, before it
asks the provider, so the payment moves along its backoff to the cap instead of costing a dead
worker every lease. A read that completes, failing, still counts once per pass, not twice.

The death is a `BaseException` raised as the provider's answer arrives (nothing of the worker's
runs after it: the Janitor catches only `Exception`), and the lease's end is written into the
ledger's schedule, never waited for."""

from __future__ import annotations

from collections.abc import Generator, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from paywire import OutcomeUnknown, hookimpl
from paywire.ledger import Ledger, TransactionStatus
from paywire.ledger.model import Look, replace
from paywire.serve import Backoff, Janitor
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import FakePayApp, make_gateway
from tests.ledger.support import PATIENT, eur

S = TransactionStatus
BACKOFF = Backoff(first=60, factor=2, cap=300)  # each longer than a patient read's lease (35 s)
FETCH = "/v1/payments/[^/]+$"


class _Died(BaseException):
    """The worker's process ending mid-read: nothing of it runs after."""


class _DiesReading:
    """Kills the worker as each read's answer arrives, while `armed`."""

    armed = True

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Generator[None, Any, Any]:
        response = yield
        if command == "fetch" and self.armed:
            raise _Died
        return response


@pytest.fixture
def dying(fakepay: tuple[FakePayApp, str], ledger: Ledger) -> Iterator[tuple[PaymentService, _DiesReading]]:
    hook = _DiesReading()
    gateway = make_gateway(fakepay[1], extra=[hook], **PATIENT)  # every answer comes, however loaded the machine
    yield PaymentService(gateway, ledger, margin=0), hook
    gateway.close()


def _open_capture(service: PaymentService, app: FakePayApp) -> str:
    """An unknown capture whose request can no longer land (written so, not waited for)."""
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    app.inject(Fault("status", status=500, method="POST", path="/captures$"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.capture(payment.id, eur("10.00"))
    txn = service.get_transaction(lost.value.transaction_id or "")
    with service.ledger.unit() as u:
        u.payment(payment.id, lock=True)
        u.update_transaction(replace(txn, updated_at=service.ledger.now(), settle_after=service.ledger.now() - timedelta(seconds=1)))
    return txn.id


def _due_now(service: PaymentService, txn: str) -> None:
    """The look's wait over (the lease or the backoff), as the schedule would say once it is."""
    payment_id = service.get_transaction(txn).payment_id or ""
    with service.ledger.unit() as u:
        u.payment(payment_id, lock=True)
        u.set_looks({txn: Look(u.looks([txn])[txn].looks if u.looks([txn]) else 0, service.ledger.now())})


def _assert_backed_off(service: PaymentService, txn: str, looks: int, before: datetime, after: datetime) -> None:
    look = service.ledger.looks([txn])[txn]
    delay = timedelta(seconds=BACKOFF.delay(looks))
    assert look.looks == looks, look
    assert before + delay <= look.next_at <= after + delay, (look, BACKOFF.delay(looks))


def test_a_read_that_kills_each_worker_backs_off_to_the_cap(
        dying: tuple[PaymentService, _DiesReading], app: FakePayApp) -> None:
    service, hook = dying
    txn = _open_capture(service, app)
    reads = len(app.calls)
    for attempt in range(1, 7):  # 60, 120, 240, then the cap (300) three times
        _due_now(service, txn)  # the last worker's lease (or backoff) ran out
        before = service.ledger.now()
        with pytest.raises(_Died):
            Janitor(service, backoff=BACKOFF).run_pass()  # a new worker each time: the last one died
        _assert_backed_off(service, txn, attempt, before, service.ledger.now())
        assert Janitor(service, backoff=BACKOFF).run_pass().settled == ()  # not due: not read again
    assert len(app.calls) - reads == 6  # one read per death, none while it waits
    hook.armed = False
    _due_now(service, txn)
    settled = Janitor(service, backoff=BACKOFF).run_pass().settled
    assert [(s.transaction_id, s.status) for s in settled] == [(txn, S.FAILED)]  # never made
    assert service.ledger.looks([txn]) == {}


def test_a_read_that_fails_counts_once_per_pass(dying: tuple[PaymentService, _DiesReading], app: FakePayApp) -> None:
    service, hook = dying
    hook.armed = False
    txn = _open_capture(service, app)
    app.inject(Fault("status", status=500, method="GET", path=FETCH, times=100))
    for attempt in range(1, 6):
        _due_now(service, txn)
        before = service.ledger.now()
        report = Janitor(service, backoff=BACKOFF).run_pass()
        assert [e[0] for e in report.errors] == [service.get_transaction(txn).payment_id]
        _assert_backed_off(service, txn, attempt, before, service.ledger.now())
    assert service.get_transaction(txn).status == S.UNKNOWN


def test_an_owed_read_that_kills_each_worker_backs_off_to_the_cap(
        dying: tuple[PaymentService, _DiesReading], app: FakePayApp) -> None:
    service, hook = dying
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    for attempt in range(1, 6):
        with service.ledger.unit() as u:  # the last worker's lease (or backoff) ran out
            u.payment(payment.id, lock=True)
            read = u.owed_read(payment.id)
            u.set_owed_read(payment.id, Look(read.looks if read else 0, service.ledger.now()))
        before = service.ledger.now()
        with pytest.raises(_Died):
            Janitor(service, backoff=BACKOFF).run_pass()
        look = service.ledger.owed_reads()[payment.id]
        delay = timedelta(seconds=BACKOFF.delay(attempt))
        assert look.looks == attempt and before + delay <= look.next_at <= service.ledger.now() + delay, look
    hook.armed = False
    with service.ledger.unit() as u:
        u.payment(payment.id, lock=True)
        u.set_owed_read(payment.id, Look(5, service.ledger.now()))
    assert Janitor(service, backoff=BACKOFF).run_pass().caught_up == (payment.id,)
    assert service.ledger.owed_reads() == {}
