"""A Janitor paused past its lease (a long GC pause, SIGSTOP, a migrated VM) while the provider's
answer is in its hands: another worker, on a ledger connection of its own, takes the payment over
once the lease has run out, and the payment moves on (settled, sent again and made). The first
worker's answer, older than all of that, is never written when it resumes: it asks again. The
interleaving is forced with the emulator's held request, and the lease's end written into the
ledger's schedule, never waited for."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from paywire import OutcomeUnknown
from paywire.ledger import Ledger
from paywire.ledger.model import Look, Payment, TransactionStatus, now
from paywire.serve import Janitor, PassReport
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import FakePayApp, make_gateway
from tests.ledger.support import eur, wait_out_life

S = TransactionStatus
FETCH = "/v1/payments/[^/]+$"


@pytest.fixture
def paused(fakepay: tuple[FakePayApp, str], make_ledger: Callable[[], Ledger]) -> Iterator[PaymentService]:
    """The worker that pauses: a ledger connection of its own, a fetch that waits as long as the
    emulator holds it."""
    gateway = make_gateway(fakepay[1], read_timeout=30)
    yield PaymentService(gateway, make_ledger(), margin=0)
    gateway.close()


def test_a_janitor_resuming_past_its_lease_never_writes_its_stale_answer(
        fast_service: PaymentService, patient: PaymentService, paused: PaymentService, app: FakePayApp) -> None:
    payment = patient.authorize("fakepay", eur("100.00"), source="tok_ok")  # only the lost capture is FAST's
    app.inject(Fault("status", status=500, method="POST", path="/captures$"))  # refused before it was made
    with pytest.raises(OutcomeUnknown) as lost:
        fast_service.capture(payment.id, eur("10.00"), idempotency_key="capture-0")
    txn = str(lost.value.transaction_id)
    wait_out_life(fast_service, [txn])
    app.inject(Fault("hold", method="GET", path=FETCH))
    passes: list[PassReport] = []
    worker = threading.Thread(target=lambda: passes.append(Janitor(paused).run_pass()))
    worker.start()
    try:
        assert app.wait_until_held()  # claimed and leased; its answer made (no capture), not yet delivered
        with fast_service.ledger.unit() as u:  # the lease runs out while that worker is paused
            u.payment(payment.id, lock=True)
            lease = u.looks([txn])[txn]
            assert lease.next_at > now()
            u.set_looks({txn: Look(lease.looks, u.now())})
        taken = Janitor(patient).run_pass()  # another worker takes the payment over
        assert [(s.transaction_id, s.status) for s in taken.settled] == [(txn, S.FAILED)]  # never made
        patient.retry(txn)  # sent again under its key: made now
        assert fast_service.get_payment(payment.id).captured == eur("10.00")
    finally:
        app.release_held()
        worker.join(60)
    (resumed,) = passes
    assert resumed.errors == () and resumed.mismatches == (), resumed
    assert not [s for s in resumed.settled if s.status == S.FAILED]
    settled: Payment = fast_service.get_payment(payment.id)
    assert settled.captured == eur("10.00") and settled.observed_captured == eur("10.00")
    # the attempt the provider never got stays failed; the one sent again stands
    assert [t.status for t in fast_service.list_transactions(payment.id) if t.kind == "capture"] == [
        S.FAILED, S.SUCCEEDED]
    assert app.count("capture") == 1
