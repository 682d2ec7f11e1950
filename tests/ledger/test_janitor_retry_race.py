"""A Janitor's look at a transaction racing a caller's `retry()` of it, in another worker. The
interleavings are forced with the emulator's held requests, never by timing: whichever answer
is older, the ledger ends as the provider holds it, one capture made, nothing recorded failed
that took effect, and no look kept for what was settled."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest

from paywire import OutcomeUnknown
from paywire.ledger import Ledger
from paywire.ledger.model import TransactionStatus
from paywire.serve import Janitor, PassReport
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import FakePayApp, make_gateway
from tests.ledger.support import eur, wait_out_life

S = TransactionStatus
FETCH = "/v1/payments/[^/]+$"


@pytest.fixture
def patient(fakepay: tuple[FakePayApp, str], ledger: Ledger) -> Iterator[PaymentService]:
    gateway = make_gateway(fakepay[1], read_timeout=30)
    yield PaymentService(gateway, ledger, margin=0)
    gateway.close()


def _capture_never_made(service: PaymentService, fast: PaymentService, app: FakePayApp) -> tuple[str, str]:
    """A capture answered 500 before the provider made it (unknown), past its life (`fast`'s, so
    the wait is short; the authorization before it is answered through `service`)."""
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    app.inject(Fault("status", status=500, method="POST", path="/captures$"))
    with pytest.raises(OutcomeUnknown) as lost:
        fast.capture(payment.id, eur("10.00"), idempotency_key="capture-0")
    txn = str(lost.value.transaction_id)
    wait_out_life(service, [txn])
    return payment.id, txn


def test_a_retry_made_while_the_janitor_asks_the_provider_is_not_undone_by_its_older_answer(
        fast_service: PaymentService, patient: PaymentService, app: FakePayApp) -> None:
    """The Janitor's fetch answers "no capture" and is held; the caller's retry() then makes the
    capture and records it. The Janitor's answer, older than the retry's, settles nothing."""
    payment_id, txn = _capture_never_made(patient, fast_service, app)
    app.inject(Fault("hold", method="GET", path=FETCH))
    passes: list[PassReport] = []
    worker = threading.Thread(target=lambda: passes.append(Janitor(patient).run_pass()))
    worker.start()
    try:
        assert app.wait_until_held()  # the answer made (no capture), not yet delivered
        patient.retry(txn)  # answered, however loaded the machine
        assert fast_service.get_payment(payment_id).captured == eur("10.00")
    finally:
        app.release_held()
        worker.join(60)
    (done,) = passes
    assert not done.errors and not [s for s in done.settled if s.status == S.FAILED]
    assert fast_service.get_transaction(txn).status == S.SUCCEEDED
    assert fast_service.get_payment(payment_id).captured == eur("10.00")
    assert app.count("capture") == 1
    assert fast_service.ledger.looks([txn]) == {}


def test_a_janitor_pass_while_a_retry_is_being_sent_keeps_off_it(
        fast_service: PaymentService, patient: PaymentService, app: FakePayApp) -> None:
    """The retry's capture is made and its answer held; a Janitor pass meanwhile neither marks
    it unknown nor asks about it (the retry gave it a new life), and the retry's answer settles it."""
    payment_id, txn = _capture_never_made(patient, fast_service, app)
    app.inject(Fault("hold", method="POST", path="/captures$"))
    results: list[object] = []
    # Answered once released, however long the pass below takes (through FAST's 0.75 s read
    # timeout a loaded machine lost it)
    caller = threading.Thread(target=lambda: results.append(patient.retry(txn)))
    caller.start()
    try:
        assert app.wait_until_held()
        assert fast_service.get_transaction(txn).status == S.PENDING
        app.inject(Fault("status", status=500, method="GET", path=FETCH))  # a fetch would fail the pass
        report = Janitor(patient).run_pass()
        assert not report.settled and not report.marked_unknown and not report.errors  # not asked about
        assert fast_service.get_transaction(txn).status == S.PENDING
        app.clear_faults()  # which also lets the held answer go: only once the pass is checked
    finally:
        app.release_held()
        caller.join(60)
    assert len(results) == 1
    assert fast_service.get_transaction(txn).status == S.SUCCEEDED
    assert fast_service.get_payment(payment_id).captured == eur("10.00")
    assert app.count("capture") == 1
    assert fast_service.ledger.looks([txn]) == {}
