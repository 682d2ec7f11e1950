"""Reconciliation from the provider's running totals alone, where the provider may apply a
capture in part (FakePay's `tok_partial_capture`: the issuer honours half of each capture). The
total counts what was applied, the open transactions what they asked: an amount match between
the two says nothing about which request took effect, so none that may have applied is concluded
not applied, and none is settled at an amount the provider may not hold."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from paywire import MethodConfig, OutcomeUnknown, Plugins, Retry
from paywire.gateway import Gateway
from paywire.ledger import Ledger, TransactionStatus
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import CREDENTIALS, FAKEPAY, FakePayApp, FakePayPlugin
from tests.ledger.support import FAST, eur, wait_out_life
from tests.ledger.test_reconcile_totals import _totals_only

S = TransactionStatus


@pytest.fixture
def totals_service(fakepay: tuple[FakePayApp, str], ledger: Ledger) -> Iterator[PaymentService]:
    """A service on FakePay whose fetch reports running totals only (no operations, no latest capture)."""
    plugins = Plugins()
    plugins.register(FakePayPlugin(FAKEPAY._replace(build=_totals_only)), "fakepay")
    gateway = Gateway([MethodConfig(code="fakepay", base_url=fakepay[1], credentials=dict(CREDENTIALS), **FAST)],
                      plugins=plugins, retry=Retry.never())
    yield PaymentService(gateway, ledger, margin=0)
    gateway.close()


def _lost_capture(service: PaymentService, app: FakePayApp, payment_id: str, amount: str, kind: str) -> str:
    """A capture of `amount` whose answer is lost: applied ("drop_after") or not ("status")."""
    app.inject(Fault(kind, status=500, path="/captures$", method="POST"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.capture(payment_id, eur(amount), final=False)
    return lost.value.transaction_id or ""


def test_a_capture_applied_in_part_is_not_failed_for_another_whose_amount_the_total_matches(
    totals_service: PaymentService, app: FakePayApp,
) -> None:
    service = totals_service
    payment = service.authorize("fakepay", eur("100.00"), source="tok_partial_capture")
    applied = _lost_capture(service, app, payment.id, "40.00", "drop_after")  # the issuer honours 20.00
    never = _lost_capture(service, app, payment.id, "20.00", "status")  # answered 500 before any effect
    assert app.totals(payment.reference or "")[1] == 2_000  # as much as the capture that never landed asked

    wait_out_life(service, [applied, never])
    service.reconcile(payment_id=payment.id)
    assert service.get_transaction(applied).status != S.FAILED  # it took effect, in part
    assert service.get_transaction(never).status != S.SUCCEEDED  # it never landed
    assert service.get_payment(payment.id).captured.minor <= 2_000
    report = service.reconcile(payment_id=payment.id)
    assert {s.transaction_id for s in report.unresolved} == {applied, never}
    assert all("check it by hand" in s.note for s in report.unresolved), report.unresolved
    service.retry(applied)  # under its key: the provider answers what it applied, counted once
    assert service.get_payment(payment.id).captured.minor == app.totals(payment.reference or "")[1] == 2_000


def test_one_capture_applied_in_part_stays_open_to_check_by_hand(totals_service: PaymentService,
                                                                  app: FakePayApp) -> None:
    """20.00 of the 40.00 asked: it applied in part, or not at all beside an operation made outside
    paywire; the total cannot tell. It is never failed, and the ledger claims nothing of it."""
    service = totals_service
    payment = service.authorize("fakepay", eur("100.00"), source="tok_partial_capture")
    applied = _lost_capture(service, app, payment.id, "40.00", "drop_after")
    wait_out_life(service, [applied])
    report = service.reconcile(payment_id=payment.id)
    assert [(s.transaction_id, s.status) for s in report.unresolved] == [(applied, None)]
    assert "check it by hand" in report.unresolved[0].note
    assert service.get_transaction(applied).status == S.UNKNOWN
    assert service.get_payment(payment.id).captured.minor == app.totals(payment.reference or "")[1] == 2_000
    # Sent again under its key, the provider answers what it applied: the ledger counts that once.
    service.retry(applied)
    assert service.get_transaction(applied).status == S.SUCCEEDED
    assert service.get_payment(payment.id).captured.minor == app.totals(payment.reference or "")[1] == 2_000
