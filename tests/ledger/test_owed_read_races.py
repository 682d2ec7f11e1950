"""Reads of a payment that owes one, racing what marks it again and each other, with real threads
on connections of their own: a read's answer parked at the emulator's hold point (the provider
answered it, as the payment then stood) while another worker records an outcome that marks the
payment again, or while a second Janitor runs its pass. A read answered before a mark never
clears it unless the payment is read again after (the unit settling a read checks the payment did
not change since it was asked); a Janitor's claimed read keeps every other Janitor off the
payment until it can no longer be under way. On both ledgers, against the FakePay emulator."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from paywire import PaywireError
from paywire.ledger import Ledger, PaymentState
from paywire.ledger.model import now
from paywire.serve import Backoff, Janitor
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import FakePayApp
from tests.ledger.support import eur, in_thread, step_past
from tests.ledger.test_owed_reads import READS, _as_the_provider_holds, _reads, _refusal_read_fails


def test_a_read_answered_before_a_new_mark_never_clears_it_unread(service: PaymentService, app: FakePayApp) -> None:
    """reconcile(payment_id=...) reads the authorization while it still holds; before its answer
    is settled, the authorization lapses, a void is refused for it (`state_conflict`), and the
    refusal's own read fails: the payment owes a read. The older answer (authorized) must not
    settle the payment and clear that mark: its settling unit finds the payment changed, and
    reads it again."""
    payment = service.authorize("fakepay", eur("10.00"), source="tok_ok")
    app.inject(Fault("hold", method="GET", path=READS))
    older, out = in_thread(lambda: service.reconcile(payment_id=payment.id))
    try:
        assert app.wait_until_held(1, timeout=30)  # answered: the authorization as it stood
        app.lapse(payment.reference or "")
        app.inject(Fault(kind="status", status=500, method="GET", path=READS))  # the refusal's own read fails
        with pytest.raises(PaywireError) as refused:
            service.void(payment.id)
        assert refused.value.state_conflict and refused.value.details["reconciled"] is False
        assert payment.id in service.ledger.owed_reads()
    finally:
        app.release_held()
        older.join(30)
    [report] = out
    assert not isinstance(report, Exception), report
    assert service.get_payment(payment.id).state == PaymentState.VOIDED  # read again after the mark
    assert service.ledger.owed_reads() == {}
    _as_the_provider_holds(service, app, payment.id)


def test_a_second_janitor_keeps_off_a_marked_payment_another_is_reading(
        patient: PaymentService, app: FakePayApp, make_ledger: Callable[[], Ledger],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two Janitors on one ledger (each its own connection): the first claims the marked payment
    and asks the provider (its answer parked); the second's pass meanwhile neither reads it nor
    counts a failure; the first's read then settles it and clears the mark."""
    # Every answer is read however loaded the machine (the Janitors' however long the test parks
    # the first one's).
    service = patient
    other = PaymentService(service.gateway, make_ledger(), margin=0)
    payment_id = _refusal_read_fails(service, app)
    app.clear_faults()
    lease = service.ledger.owed_reads()[payment_id]
    for each in (service, other):  # both workers' clocks past the refusing call's read's lease
        step_past(each, lease.next_at, monkeypatch)
    first, second = (Janitor(s, backoff=Backoff(first=3600, cap=3600)) for s in (service, other))
    app.inject(Fault("hold", method="GET", path=READS))
    reading, out = in_thread(first.run_pass)
    try:
        assert app.wait_until_held(1, timeout=30)
        since = len(app.calls)
        report = second.run_pass()
        assert (report.caught_up, report.errors, report.settled) == ((), (), ()), report
        assert _reads(app, since) == 0
        held = service.ledger.owed_reads()[payment_id]
        assert held.next_at - now() > timedelta(seconds=0)  # the first one's lease
    finally:
        app.release_held()
        reading.join(30)
    [passed] = out
    assert not isinstance(passed, Exception), passed
    assert passed.caught_up == (payment_id,) and not passed.errors, passed
    assert service.ledger.owed_reads() == {}
    _as_the_provider_holds(service, app, payment_id)
