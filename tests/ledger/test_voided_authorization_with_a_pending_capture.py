"""PayPal voids an authorization (beside paywire: its dashboard) while a capture of it is PENDING
(an eCheck), none completed. The order then reads as a payment with only pending captures, but its
authorization takes no further capture whatever PayPal decides of that one: reconciliation closes
the payment's capture, so the ledger offers nothing to capture and refuses a capture before
sending, while the pending capture stays in flight until PayPal decides it. On both ledgers."""

from __future__ import annotations

import pytest

from paywire import Gateway, Money, PaymentService, StateError, Subject
from paywire.ledger import Ledger, TransactionKind, TransactionStatus
from paywire.testing.ledger_checks import reconciled_again_changes_nothing
from paywire.testing.sandbox import Sandbox

# Tested alone, the core package has no plugin installed.
paywire_paypal = pytest.importorskip(
    "paywire_paypal", reason="needs the PayPal plugin (installed when all packages are tested together)")


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def _refuses_a_capture(sandbox: Sandbox, service: PaymentService, payment_id: str) -> None:
    assert service.get_payment(payment_id).capturable == Money.zero("EUR")
    sent = sandbox.app.calls[:]
    with pytest.raises(StateError):
        service.capture(payment_id, eur("0.01"), final=False)
    assert sandbox.app.calls == sent  # refused before sending


@pytest.mark.parametrize(("decided", "captured"), [("COMPLETED", "9.99"), ("DECLINED", "0.00")])
def test_a_voided_authorization_whose_capture_is_pending_offers_nothing_to_capture(
    paypal: tuple[Sandbox, Gateway], ledger: Ledger, decided: str, captured: str,
) -> None:
    sandbox, gateway = paypal
    service = PaymentService(gateway, ledger)
    payment = service.authorize("paypal", eur("100.00"), source=sandbox.sources["accepted"])
    authorization = payment.references["authorization"]
    service.capture(payment.id, eur("9.99"), final=False)
    (capture,) = [t for t in service.list_transactions(payment.id) if t.kind == TransactionKind.CAPTURE]
    assert capture.status == TransactionStatus.ACCEPTED
    gateway.execute("paypal", "void", Subject(reference=authorization))
    with sandbox.app.lock:
        assert sandbox.app.authorizations[authorization].status == "VOIDED"

    service.reconcile(payment_id=payment.id)
    _refuses_a_capture(sandbox, service, payment.id)
    (capture,) = [t for t in service.list_transactions(payment.id) if t.kind == TransactionKind.CAPTURE]
    assert capture.status == TransactionStatus.ACCEPTED  # PayPal has not decided it

    sandbox.app.settle_capture(str(capture.provider_reference), decided)
    report = service.reconcile(payment_id=payment.id)
    assert report.clean and not report.mismatches, report
    payment = service.get_payment(payment.id)
    assert (payment.authorized, payment.captured) == (eur("100.00"), eur(captured))
    _refuses_a_capture(sandbox, service, payment.id)
    reconciled_again_changes_nothing(service, payment.id)
