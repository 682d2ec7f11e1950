"""Reconciliation from running totals alone racing the provider's event about the capture it
settles: the read is answered (the capture counted in the total) and held at the provider while
the event is received, then delivered. The interleaving is forced with the emulator's held
request, never by timing: either way the capture is one transaction, succeeded, named by the
event, and the ledger's total is the provider's; reconciling again changes nothing."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from paywire import MethodConfig, OutcomeUnknown, Plugins, Retry
from paywire.gateway import Gateway
from paywire.ledger import EventStatus, Ledger, TransactionStatus
from paywire.service import PaymentService
from paywire.service.reconcile import ReconcileReport
from paywire.testing.emulator import Fault
from paywire.testing.ledger_checks import reconciled_again_changes_nothing
from tests.ledger.fakepay import CREDENTIALS, FAKEPAY, FakePayApp, FakePayPlugin
from tests.ledger.support import FAST, eur, wait_out_life
from tests.ledger.test_reconcile_totals import _totals_only

S = TransactionStatus
FETCH = "/v1/payments/[^/]+$"


@pytest.fixture
def totals(fakepay: tuple[FakePayApp, str], ledger: Ledger) -> Iterator[Callable[..., PaymentService]]:
    """Services on FakePay whose fetch reports running totals only, each on a gateway of its own."""
    gateways: list[Gateway] = []

    def make(**timeouts: float) -> PaymentService:
        plugins = Plugins()
        plugins.register(FakePayPlugin(FAKEPAY._replace(build=_totals_only)), "fakepay")
        gateway = Gateway([MethodConfig(code="fakepay", base_url=fakepay[1], credentials=dict(CREDENTIALS),
                                        **timeouts)], plugins=plugins, retry=Retry.never())
        gateways.append(gateway)
        return PaymentService(gateway, ledger, margin=0)

    yield make
    for gateway in gateways:
        gateway.close()


@pytest.mark.parametrize("received", ["while the read is held", "before the read"])
def test_a_capture_settled_by_totals_and_its_event_count_once(
    totals: Callable[..., PaymentService], app: FakePayApp, received: str,
) -> None:
    fast = totals(**FAST)
    patient = totals(connect_timeout=5.0, read_timeout=30.0)
    payment = fast.authorize("fakepay", eur("100.00"), source="tok_ok")
    app.inject(Fault("drop_after", path="/captures$", method="POST"))  # captured, its answer lost
    with pytest.raises(OutcomeUnknown) as lost:
        fast.capture(payment.id, eur("30.00"), final=False)
    txn = lost.value.transaction_id or ""
    (capture,) = [c for c in app.captures.values() if c["payment"] == payment.reference]
    (event,) = app.events_about(capture["id"])
    wait_out_life(fast, [txn])

    if received == "before the read":
        assert fast.receive_webhook("fakepay", *event).status == EventStatus.DEFERRED  # waits for the capture
    app.inject(Fault("hold", method="GET", path=FETCH))
    reports: list[ReconcileReport] = []
    worker = threading.Thread(target=lambda: reports.append(patient.reconcile(payment_id=payment.id)))
    worker.start()
    try:
        assert app.wait_until_held()  # the total (30.00) read, not yet delivered
        if received == "while the read is held":
            assert fast.receive_webhook("fakepay", *event).status == EventStatus.DEFERRED
    finally:
        app.release_held()
        worker.join(60)
    (report,) = reports
    assert report.clean, report
    assert fast.get_transaction(txn).status == S.SUCCEEDED
    assert fast.get_transaction(txn).provider_reference == capture["id"]  # the event named it
    assert [t.kind for t in fast.list_transactions(payment.id)] == ["authorize", "capture"]
    assert fast.get_payment(payment.id).captured == eur("30.00")
    reconciled_again_changes_nothing(patient, payment.id)
