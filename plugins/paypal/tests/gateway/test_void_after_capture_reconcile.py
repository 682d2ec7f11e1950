"""Reconciling a void after a partial capture without PayPal's event: the order reads alike
whether a void or a final capture released the rest (captured, nothing left to capture), and the
authorization's own status tells them apart (VOIDED, or CAPTURED). A void whose answer was lost is
settled succeeded from it; one that never landed, or that a final capture overtook, is concluded
not applied once its request can no longer land, never succeeded. Real emulator on loopback."""

from __future__ import annotations

import pytest

from paywire import Money, OutcomeUnknown, PaymentService, ProviderState, SQLiteLedger, StateError
from paywire.ledger import PaymentState, TransactionKind, TransactionStatus
from paywire.testing.emulator import Fault
from paywire.testing.ledger_checks import reconciled_again_changes_nothing
from tests.ledger.support import step_past_life

EUR = "EUR"


def eur(value: str) -> Money:
    return Money.of(value, EUR)


def _void_of(service, payment_id):
    (void,) = [t for t in service.list_transactions(payment_id) if t.kind == TransactionKind.VOID]
    return void


def test_fetch_lists_a_void_after_a_partial_capture_and_not_a_final_capture(paypal):
    voided = paypal.authorized("100.00")
    paypal.run("capture", reference=voided.reference, amount=eur("30.00"), final=False, idempotency_key=paypal.key())
    paypal.run("void", reference=voided.reference, idempotency_key=paypal.key())
    fetched = paypal.run("fetch", reference=voided.references["payment"])
    assert [(op.kind, op.reference, op.amount, op.status) for op in fetched.operations if op.kind == "void"] == [
        ("void", voided.reference, eur("70.00"), "succeeded")]

    closed = paypal.authorized("100.00")
    paypal.run("capture", reference=closed.reference, amount=eur("30.00"), final=True, idempotency_key=paypal.key())
    fetched = paypal.run("fetch", reference=closed.references["payment"])
    assert (fetched.state, fetched.capturable) == (ProviderState.CAPTURED, Money.zero(EUR))
    assert not [op for op in fetched.operations if op.kind == "void"]


def test_a_lost_void_after_a_partial_capture_is_settled_by_reconciliation(paypal, service):
    """The void reached PayPal, its answer was lost and no event came: the authorization reads
    VOIDED, so the void succeeded; the ledger closes capture, the captured money stands and can be
    refunded."""
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    authorization = payment.references["authorization"]
    service.capture(payment.id, eur("30.00"), final=False, idempotency_key=paypal.key())
    paypal.app.inject(Fault(kind="drop_after", method="POST", path="/void$"))
    with pytest.raises(OutcomeUnknown):
        service.void(payment.id, idempotency_key=paypal.key())
    with paypal.app.lock:
        assert paypal.app.authorizations[authorization].status == "VOIDED"

    report = service.reconcile(payment_id=payment.id)
    void = _void_of(service, payment.id)
    assert void.status == TransactionStatus.SUCCEEDED, report
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.authorized, payment.captured, payment.capturable) == (
        PaymentState.CAPTURED, eur("100.00"), eur("30.00"), Money.zero(EUR))
    assert payment.capture_closed and not payment.voided
    assert not report.mismatches and not report.errors, report
    reconciled_again_changes_nothing(service, payment.id)

    with pytest.raises(StateError) as refused:
        service.capture(payment.id, eur("10.00"), idempotency_key=paypal.key())
    assert refused.value.code == "capture_closed"
    payment = service.refund(payment.id, eur("30.00"), idempotency_key=paypal.key())
    assert (payment.state, payment.captured, payment.refunded) == (PaymentState.REFUNDED, eur("30.00"), eur("30.00"))


def test_a_void_after_a_partial_capture_that_never_landed_is_failed_once_it_cannot_land(paypal, tmp_path,
                                                                                       monkeypatch):
    """PayPal refused the void before applying it (a 500): the authorization is still
    PARTIALLY_CAPTURED with 70.00 left. The void is concluded not applied once its request can no
    longer land, and what is left can be captured or voided again."""
    # Every answer read however loaded the machine: the void is lost by the 500, its life stepped past.
    with SQLiteLedger(str(tmp_path / "never.db")) as ledger:
        service = PaymentService(paypal.gateway, ledger)
        payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key="auth-1")
        authorization = payment.references["authorization"]
        service.capture(payment.id, eur("30.00"), final=False, idempotency_key="cap-1")
        paypal.app.inject(Fault(kind="status", status=500, method="POST", path="/void$", times=5))
        with pytest.raises(OutcomeUnknown) as raised:
            service.void(payment.id, idempotency_key="void-1")
        paypal.app.clear_faults()
        with paypal.app.lock:
            assert paypal.app.authorizations[authorization].status == "PARTIALLY_CAPTURED"

        lost = raised.value.transaction_id or ""
        step_past_life(service, [lost], monkeypatch)
        report = service.reconcile(payment_id=payment.id)
        assert service.get_transaction(lost).status == TransactionStatus.FAILED, report
        payment = service.get_payment(payment.id)
        assert (payment.state, payment.captured, payment.capturable) == (PaymentState.PARTIALLY_CAPTURED,
                                                                         eur("30.00"), eur("70.00"))
        assert not payment.capture_closed and not payment.voided
        payment = service.void(payment.id, idempotency_key="void-2")
        assert (payment.state, payment.captured, payment.capture_closed) == (PaymentState.CAPTURED, eur("30.00"),
                                                                            True)


def test_a_void_overtaken_by_a_final_capture_is_never_recorded_succeeded(paypal, tmp_path, monkeypatch):
    """The void never landed (a 500 before PayPal applied it), and a final capture made outside
    paywire released the rest meanwhile: the order reads as after a void (captured, nothing left),
    but the authorization is CAPTURED, not VOIDED. The void is not recorded succeeded: it stays
    open while it may still land, then is concluded not applied."""
    # Every answer read however loaded the machine: the void is lost by the 500, its life stepped past.
    with SQLiteLedger(str(tmp_path / "overtaken.db")) as ledger:
        service = PaymentService(paypal.gateway, ledger)
        payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key="auth-1")
        authorization = payment.references["authorization"]
        service.capture(payment.id, eur("30.00"), final=False, idempotency_key="cap-1")
        paypal.app.inject(Fault(kind="status", status=500, method="POST", path="/void$", times=5))
        with pytest.raises(OutcomeUnknown) as raised:
            service.void(payment.id, idempotency_key="void-1")
        paypal.app.clear_faults()
        paypal.run("capture", reference=authorization, amount=eur("20.00"), final=True, idempotency_key="outside-1")
        with paypal.app.lock:
            assert paypal.app.authorizations[authorization].status == "CAPTURED"

        lost = raised.value.transaction_id or ""
        report = service.reconcile(payment_id=payment.id)
        assert service.get_transaction(lost).status == TransactionStatus.UNKNOWN, report
        step_past_life(service, [lost], monkeypatch)
        report = service.reconcile(payment_id=payment.id)
        assert service.get_transaction(lost).status == TransactionStatus.FAILED, report
        payment = service.get_payment(payment.id)
        assert (payment.captured, payment.capturable) == (eur("50.00"), Money.zero(EUR))
        assert payment.capture_closed and not payment.voided
