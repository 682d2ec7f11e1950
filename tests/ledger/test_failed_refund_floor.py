"""A refund made beside paywire that the provider held undecided, and failed: what its failure
does to the refunded floor (`observed_refunded`) a total read beside it set. A floor read while
the refund was undecided never counted it, and stands; one a total may have counted it in since
(the refund succeeded, then failed) drops, and the payment is read from the provider again.
Against the FakePay emulator over loopback HTTP, on both ledger backends."""

from __future__ import annotations

import pytest

from paywire import EventKind
from paywire.errors import StateError
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import FakePayApp
from tests.ledger.support import eur, ledger_totals

READS = r"^/v1/payments/[^/]+$"  # the fetch: GET /v1/payments/<id>


def _reconciled_beside(service: PaymentService, app: FakePayApp) -> tuple[str, str, str]:
    """A sale of 100.00, 30.00 of it refunded in the dashboard (known by the provider's total
    only) and 25.00 more held pending there, reconciled: the floor is 30.00, the pending refund
    recorded accepted beside it. Returns the payment, its provider reference and the refund."""
    payment = service.sale("fakepay", eur("100.00"), source="tok_ok")
    pid = payment.reference or ""
    cap_id = app.payments[pid]["_captures"][0]
    app.refund_beside(cap_id, 3_000)
    refund = app.refund_beside(cap_id, 2_500, status="pending")
    service.reconcile(payment_id=payment.id)
    paid = service.get_payment(payment.id)
    assert (paid.observed_refunded, paid.refunded) == (eur("30.00"), eur("30.00"))
    [held] = [t for t in service.list_transactions(payment.id) if t.kind == "refund"]
    assert (held.status, held.origin, held.provider_reference) == ("accepted", "reconcile", refund)
    return payment.id, pid, refund


def test_a_failed_refund_read_undecided_keeps_the_floor_read_beside_it(
        service: PaymentService, app: FakePayApp) -> None:
    """The floor is the total the reading that listed the refund undecided read: it never counted
    the refund, so its failure leaves the floor, and no read of the provider is needed for it (the
    provider is unreachable here): what is offered is what the provider holds, 70.00."""
    payment_id, pid, refund = _reconciled_beside(service, app)
    failed = app.decide(refund, succeed=False)
    app.inject(Fault(kind="status", status=500, method="GET", path=READS, times=1_000))
    assert service.receive_webhook("fakepay", *failed).status == "applied"
    assert ledger_totals(service.get_payment(payment_id)) == app.totals(pid) == (10_000, 10_000, 3_000)
    assert service.ledger.owed_reads() == {}
    sent = app.count("refund")
    with pytest.raises(StateError) as refused:
        service.refund(payment_id, eur("70.01"))
    assert (refused.value.code, app.count("refund")) == ("refund_exceeds_captured", sent)


def _counted_then_failed(service: PaymentService, app: FakePayApp, *, unreachable: bool) -> tuple[str, str]:
    """The pending refund succeeds, a running total counting it (55.00) raises the floor, then the
    provider fails the refund: its failed event comes before its success's, while the provider
    is `unreachable` (every read of the payment fails) or not. Returns the payment and its
    provider reference."""
    payment_id, pid, refund = _reconciled_beside(service, app)
    app.decide(refund)  # succeeded: its own event comes late
    total = app.event("evt_total", EventKind.REFUNDED, pid, total=5_500)
    assert service.receive_webhook("fakepay", *total).status == "applied"
    assert service.get_payment(payment_id).refunded == eur("55.00")
    failed = app.fail_refund(refund)
    if unreachable:
        app.inject(Fault(kind="status", status=500, method="GET", path=READS, times=1_000))
    assert service.receive_webhook("fakepay", *failed).status == "applied"
    return payment_id, pid


def test_a_failed_refund_a_total_counted_drops_the_floor_until_the_provider_is_read(
        service: PaymentService, app: FakePayApp) -> None:
    """The case the drop is for: the floor a total raised after the refund succeeded counts it,
    by how much of it cannot be told, so it drops (never claiming what the provider took back);
    with the provider unreachable the payment owes a read, which reconcile() makes."""
    payment_id, pid = _counted_then_failed(service, app, unreachable=True)
    payment = service.get_payment(payment_id)
    assert app.totals(pid) == (10_000, 10_000, 3_000)
    assert (payment.observed_refunded, payment.refunded) == (eur("0.00"), eur("0.00"))
    assert payment_id in service.ledger.owed_reads()
    app.clear_faults()
    assert service.reconcile().caught_up == (payment_id,)
    assert ledger_totals(service.get_payment(payment_id)) == app.totals(pid) == (10_000, 10_000, 3_000)


def test_a_failed_refund_a_total_counted_is_read_from_the_provider_at_once(
        service: PaymentService, app: FakePayApp) -> None:
    """The floor dropped, the service reads the provider as it applies the failure: the ledger
    then holds what the provider holds refunded, and offers no more than it has left."""
    payment_id, pid = _counted_then_failed(service, app, unreachable=False)
    assert ledger_totals(service.get_payment(payment_id)) == app.totals(pid) == (10_000, 10_000, 3_000)
    assert service.ledger.owed_reads() == {}
    with pytest.raises(StateError) as refused:
        service.refund(payment_id, eur("70.01"))
    assert refused.value.code == "refund_exceeds_captured"
