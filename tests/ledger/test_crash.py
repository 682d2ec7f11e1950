"""Crash tests: a worker process killed (SIGKILL) between recording and sending, and between
sending and recording. A pending transaction counts as abandoned only after its request's
longest life (its settle_after); after reconciliation the ledger agrees with the provider, and
retrying the operation charges nothing twice."""

from __future__ import annotations

import signal

import pytest

from paywire import Money, StateError
from paywire.ledger import TransactionStatus
from paywire.service import PaymentService
from tests.ledger.conftest import finish_workers, start_worker
from tests.ledger.fakepay import FakePayApp
from tests.ledger.support import FAST, agree, only, wait_out_life, wait_until, within_life

pytestmark = pytest.mark.slow
S = TransactionStatus


def crash(url: str, ledger_url: str, when: str, command: str, op: list[object]) -> None:
    codes, results = finish_workers([start_worker({
        "url": url, "ledger": ledger_url, "ops": [op], "crash": when, "crash_command": command, "margin": 0,
        **FAST,
    })])
    assert codes == [-signal.SIGKILL] and results == []  # killed before it could report anything


@pytest.mark.parametrize("when", ["after_send", "before_send"])
def test_killed_capture_is_reconciled_after_its_life_and_never_doubled(
    patient: PaymentService, app: FakePayApp, fakepay: tuple[FakePayApp, str], ledger_url: str, when: str,
) -> None:
    service = patient
    payment = service.authorize("fakepay", Money.of("100.00", "EUR"), source="tok_ok")
    crash(fakepay[1], ledger_url, when, "capture", ["capture", payment.id, "40.00", "job-7-capture"])
    pending = only(service.list_transactions(payment.id), "capture")
    assert pending.status == S.PENDING and pending.settle_after is not None
    if when == "after_send":  # sent: its answer may still be on its way on a loaded machine
        wait_until(lambda: app.count("capture") == 1, "the emulator applied the capture")
    assert app.count("capture") == (1 if when == "after_send" else 0)

    early = service.reconcile()  # its request may still be in flight: not abandoned yet
    if within_life(service, [pending.id]):
        assert early.marked_unknown == () and early.settled == ()
        assert service.get_transaction(pending.id).status == S.PENDING

    wait_out_life(service, [pending.id])
    report = service.reconcile()
    assert early.marked_unknown + report.marked_unknown == (pending.id,)
    assert [s.status for s in early.settled + report.settled] == [S.SUCCEEDED if when == "after_send" else S.FAILED]
    assert service.get_transaction(pending.id).settled_by == "reconcile"
    agree(service, app, payment.id)

    # The job system retries the job with its key: the provider sees it at most once in all.
    retried = service.capture(payment.id, Money.of("40.00", "EUR"), idempotency_key="job-7-capture")
    assert retried.captured == Money.of("40.00", "EUR")
    assert app.count("capture") == 1
    agree(service, app, payment.id)


def test_killed_authorize_without_answer_is_found_by_key(
    patient: PaymentService, app: FakePayApp, fakepay: tuple[FakePayApp, str], ledger_url: str,
) -> None:
    service = patient
    crash(fakepay[1], ledger_url, "after_send", "authorize", ["authorize", "fakepay", "25.00", "order-42"])
    (payment,) = service.list_payments()
    wait_until(lambda: app.count("authorize") == 1, "the emulator applied the authorization")
    assert payment.reference is None and app.count("authorize") == 1
    wait_out_life(service, [t.id for t in service.list_transactions(payment.id)])
    service.reconcile()
    agree(service, app, payment.id)
    again = service.authorize("fakepay", Money.of("25.00", "EUR"), source="tok_ok", idempotency_key="order-42")
    assert again.id == payment.id and app.count("authorize") == 1


def test_retry_after_the_life_of_the_crashed_attempt_reuses_its_key(
    patient: PaymentService, app: FakePayApp, fakepay: tuple[FakePayApp, str], ledger_url: str,
) -> None:
    """A retry that finds the crashed attempt (pending, past its settle_after) resends it with
    the same derived key; the provider replays instead of capturing again."""
    service = patient
    payment = service.authorize("fakepay", Money.of("50.00", "EUR"), source="tok_ok")
    crash(fakepay[1], ledger_url, "after_send", "capture", ["capture", payment.id, "50.00", None])
    wait_until(lambda: app.count("capture") == 1, "the emulator applied the crashed capture")
    with pytest.raises(StateError, match="being captured"):  # still reserved while it may be in flight
        service.capture(payment.id, Money.of("1.00", "EUR"))
    wait_out_life(service, [only(service.list_transactions(payment.id), "capture").id])
    payment = service.capture(payment.id, Money.of("50.00", "EUR"))
    assert payment.captured == Money.of("50.00", "EUR") and app.count("capture") == 1
    txn = only(service.list_transactions(payment.id), "capture")
    assert txn.status == S.SUCCEEDED and txn.idempotency_key.endswith("-capture-1")
    agree(service, app, payment.id)
