"""Reconciling a payment the provider held, and answered about, that it no longer finds: a
sandbox reset, or a method pointed at another account of the provider since. "No such payment"
then says nothing of what the provider did with a request that reached it: an open void is not
concluded not applied, and the report is not clean while the ledger holds money the provider
does not show."""

from __future__ import annotations

import pytest

from paywire import OutcomeUnknown
from paywire.ledger import Ledger, TransactionStatus
from paywire.service import PaymentService
from paywire.testing.emulator import EmulatorServer, Fault
from tests.ledger.fakepay import FakePayApp, make_gateway
from tests.ledger.support import PATIENT, eur, wait_out_life

S = TransactionStatus


def test_a_void_the_provider_answered_nothing_about_is_not_failed_once_it_no_longer_finds_the_payment(
    fast_service: PaymentService, patient: PaymentService, app: FakePayApp, ledger: Ledger,
) -> None:
    payment = patient.authorize("fakepay", eur("50.00"), source="tok_ok")  # only the lost void is FAST's
    app.inject(Fault("drop_after", path="/void$", method="POST"))  # voided, its answer lost
    with pytest.raises(OutcomeUnknown) as lost:
        fast_service.void(payment.id)
    void = lost.value.transaction_id or ""
    assert app.payments[payment.reference or ""]["status"] == "voided"
    wait_out_life(fast_service, [void])

    reset = FakePayApp()  # the same provider, its sandbox reset: it holds no payment at all
    with EmulatorServer(reset) as server, make_gateway(server.url, **PATIENT) as gateway:  # its reads answered
        service = PaymentService(gateway, ledger, margin=0)
        report = service.reconcile(payment_id=payment.id)
        assert service.get_transaction(void).status != S.FAILED  # it may have voided: it did
        assert void in {s.transaction_id for s in report.unresolved}
        assert not report.clean


def test_a_payment_the_provider_no_longer_finds_is_reported(patient: PaymentService, ledger: Ledger) -> None:
    payment = patient.authorize("fakepay", eur("50.00"), source="tok_ok")
    reset = FakePayApp()
    with EmulatorServer(reset) as server, make_gateway(server.url, **PATIENT) as gateway:  # its reads answered
        service = PaymentService(gateway, ledger, margin=0)
        report = service.reconcile(payment_id=payment.id)
        assert not report.clean, report  # the ledger holds 50.00 authorized; the provider nothing
        assert [(m.field, m.ledger, m.provider) for m in report.mismatches] == [("authorized", eur("50.00"),
                                                                                 eur("0.00"))]
        assert service.get_payment(payment.id).authorized == eur("50.00")  # nothing the provider may hold is dropped


def test_a_completion_the_provider_answered_nothing_about_is_not_failed_once_it_no_longer_finds_the_payment(
    fast_service: PaymentService, patient: PaymentService, app: FakePayApp, ledger: Ledger,
) -> None:
    """The payment object was made (the buyer was sent to act on it): found by its reference no
    more, the completion that may have landed is not concluded not applied, nor the payment failed."""
    payment = patient.authorize("fakepay", eur("50.00"), source="tok_3ds")  # only the lost completion is FAST's
    assert payment.reference is not None and payment.action is not None
    app.inject(Fault("drop_after", path="/complete$", method="POST"))  # authorized, its answer lost
    with pytest.raises(OutcomeUnknown) as lost:
        fast_service.complete(payment.id)
    completion = lost.value.transaction_id or ""
    assert app.payments[payment.reference]["status"] == "authorized"
    wait_out_life(fast_service, [completion])

    reset = FakePayApp()
    with EmulatorServer(reset) as server, make_gateway(server.url, **PATIENT) as gateway:  # its reads answered
        service = PaymentService(gateway, ledger, margin=0)
        report = service.reconcile(payment_id=payment.id)
        assert service.get_transaction(completion).status != S.FAILED
        assert not service.get_payment(payment.id).failed
        assert completion in {s.transaction_id for s in report.unresolved}
