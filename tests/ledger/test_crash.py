"""Crash tests: a worker process killed (SIGKILL) between recording and sending, and between
sending and recording. After reconciliation the ledger agrees with the provider, and retrying
the operation charges nothing twice."""

from __future__ import annotations

import signal

import pytest

from paywire import Money
from paywire.ledger import Ledger, TransactionStatus
from paywire.service import PaymentService
from tests.ledger.conftest import finish_workers, start_worker
from tests.ledger.fakepay import FakePayApp

pytestmark = pytest.mark.slow
S = TransactionStatus


def agree(service: PaymentService, app: FakePayApp, payment_id: str) -> None:
    payment = service.get_payment(payment_id)
    assert (payment.authorized.minor, payment.captured.minor, payment.refunded.minor) == \
        app.totals(payment.reference or "")
    assert not [t for t in service.list_transactions(payment_id) if t.open]


def crash(url: str, ledger_url: str, when: str, command: str, op: list[object]) -> None:
    codes, results = finish_workers([start_worker({
        "url": url, "ledger": ledger_url, "ops": [op], "crash": when, "crash_command": command,
    })])
    assert codes == [-signal.SIGKILL] and results == []  # killed before it could report anything


@pytest.mark.parametrize("when", ["after_send", "before_send"])
def test_killed_capture_is_reconciled_and_never_doubled(
    service: PaymentService, app: FakePayApp, fakepay: tuple[FakePayApp, str], ledger_url: str, when: str,
) -> None:
    payment = service.authorize("fakepay", Money.of("100.00", "EUR"), source="tok_ok")
    crash(fakepay[1], ledger_url, when, "capture", ["capture", payment.id, "40.00", "job-7-capture"])
    (pending,) = [t for t in service.list_transactions(payment.id) if t.kind == "capture"]
    assert pending.status == S.PENDING
    assert app.count("capture") == (1 if when == "after_send" else 0)

    assert service.reconcile().settled == ()  # a fresh pending transaction may still be in flight
    report = service.reconcile(stale_after=0)
    assert report.marked_unknown == (pending.id,)
    assert [s.status for s in report.settled] == [S.SUCCEEDED if when == "after_send" else S.FAILED]
    agree(service, app, payment.id)

    # The job system retries the job with its key: the provider sees it at most once in all.
    retried = service.capture(payment.id, Money.of("40.00", "EUR"), idempotency_key="job-7-capture")
    assert retried.captured == Money.of("40.00", "EUR")
    assert app.count("capture") == 1
    agree(service, app, payment.id)


def test_killed_authorize_without_answer_is_found_by_key(
    service: PaymentService, app: FakePayApp, fakepay: tuple[FakePayApp, str], ledger_url: str,
) -> None:
    crash(fakepay[1], ledger_url, "after_send", "authorize", ["authorize", "fakepay", "25.00", "order-42"])
    (payment,) = service.list_payments()
    assert payment.reference is None and app.count("authorize") == 1
    service.reconcile(stale_after=0)
    agree(service, app, payment.id)
    again = service.authorize("fakepay", Money.of("25.00", "EUR"), source="tok_ok", idempotency_key="order-42")
    assert again.id == payment.id and app.count("authorize") == 1


def test_retry_before_reconciliation_reuses_the_abandoned_key(
    fakepay: tuple[FakePayApp, str], ledger_url: str, ledger: Ledger,
) -> None:
    """A retry that finds the crashed attempt (pending, older than stale_after) resends it with
    the same derived key; the provider replays instead of capturing again."""
    from tests.ledger.fakepay import make_gateway

    app, url = fakepay
    gateway = make_gateway(url)
    service = PaymentService(gateway, ledger, stale_after=0.2)
    try:
        payment = service.authorize("fakepay", Money.of("50.00", "EUR"), source="tok_ok")
        crash(url, ledger_url, "after_send", "capture", ["capture", payment.id, "50.00", None])
        with pytest.raises(Exception, match="being captured"):  # still reserved while it may be in flight
            service.capture(payment.id, Money.of("1.00", "EUR"))
        import time

        time.sleep(0.25)
        payment = service.capture(payment.id, Money.of("50.00", "EUR"))
        assert payment.captured == Money.of("50.00", "EUR") and app.count("capture") == 1
        (txn,) = [t for t in service.list_transactions(payment.id) if t.kind == "capture"]
        assert txn.status == S.SUCCEEDED and txn.idempotency_key.endswith("-capture-1")
        agree(service, app, payment.id)
    finally:
        gateway.close()
