"""A refusal saying the provider's payment is not as the ledger holds it (`state_conflict`: here
FakePay's authorization that lapsed with no event): the service records the operation failed as
refused, raises the refusal, and reads the provider for the payment through reconciliation's own
path, so the ledger never claims a hold the provider no longer has. On both ledger backends."""

from __future__ import annotations

import pytest

from paywire import OutcomeUnknown, PaymentService, PaywireError
from paywire.ledger import PaymentState, TransactionStatus
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import FakePayApp
from tests.ledger.support import agree, eur


def _refused(service: PaymentService, operation: str, payment_id: str) -> PaywireError:
    with pytest.raises(PaywireError) as refused:
        if operation == "void":
            service.void(payment_id)
        else:
            service.capture(payment_id, eur("4.00"))
    return refused.value


@pytest.mark.parametrize("operation", ["void", "capture"])
def test_a_refusal_for_a_lapsed_authorization_leaves_the_payment_as_the_provider_holds_it(
        service: PaymentService, app: FakePayApp, operation: str) -> None:
    payment = service.authorize("fakepay", eur("10.00"), source="tok_ok")
    app.lapse(payment.reference or "")
    sent = len(app.calls)
    error = _refused(service, operation, payment.id)
    assert [method for method, _ in app.calls[sent:]] == ["POST", "GET"]  # the refused request, then the read
    [txn] = [t for t in service.list_transactions(payment.id) if t.kind == operation]
    assert (txn.status, txn.error_code) == (TransactionStatus.FAILED, "authorization_expired")
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.capturable) == (PaymentState.VOIDED, eur("0.00"))
    agree(service, app, payment.id)
    assert (error.code, error.state_conflict, error.details["reconciled"]) == ("authorization_expired", True, True)
    assert error.transaction_id == txn.id


def test_a_refusal_whose_read_fails_is_recorded_and_raised_and_reconcile_settles_it(
        service: PaymentService, app: FakePayApp) -> None:
    payment = service.authorize("fakepay", eur("10.00"), source="tok_ok")
    app.lapse(payment.reference or "")
    app.inject(Fault(kind="status", status=500, method="GET", path=r"^/v1/payments/"))
    error = _refused(service, "void", payment.id)
    assert error.code == "authorization_expired" and error.details["reconciled"] is False
    assert "ProviderUnavailable" in error.details["reconcile_error"]
    assert service.get_payment(payment.id).state == PaymentState.AUTHORIZED  # nothing read: as before
    assert service.reconcile(payment_id=payment.id).clean
    assert service.get_payment(payment.id).state == PaymentState.VOIDED
    agree(service, app, payment.id)


def test_a_refusal_without_a_state_conflict_reads_nothing(service: PaymentService, app: FakePayApp) -> None:
    payment = service.authorize("fakepay", eur("10.00"), source="tok_ok")
    app.payments[payment.reference or ""]["closed"] = True  # refused as invalid_state: no conflict declared
    sent = len(app.calls)
    error = _refused(service, "capture", payment.id)
    assert error.code == "invalid_state" and not error.state_conflict and "reconciled" not in error.details
    assert [method for method, _ in app.calls[sent:]] == ["POST"]


@pytest.mark.parametrize("move", ["lapse", "capture elsewhere"])
def test_a_resent_operation_answered_with_a_stale_replay_leaves_the_payment_as_the_provider_holds_it(
        service: PaymentService, app: FakePayApp, move: str) -> None:
    """FakePay answers a resend under its key with what it stored for the first attempt, as Stripe
    does: the payment as it was then. Moved on since (the hold lapsed, a capture made outside
    paywire), the resend's success is recorded and the payment then read, whatever the replay
    said, so the ledger never claims the hold or the amount the provider no longer has."""
    app.inject(Fault("drop_after", method="POST", path="/v1/payments$"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.authorize("fakepay", eur("10.00"), source="tok_ok", idempotency_key="auth-stale")
    [reference] = app.payments
    if move == "lapse":
        app.lapse(reference)
    else:
        with app.lock:  # captured in the provider's dashboard, with no word to the ledger
            app._capture(app.payments[reference], 1_000, final=True, emit=False)
    payment = service.authorize("fakepay", eur("10.00"), source="tok_ok", idempotency_key="auth-stale")
    assert payment.id == lost.value.payment_id
    assert payment.state == (PaymentState.VOIDED if move == "lapse" else PaymentState.CAPTURED)
    agree(service, app, payment.id)
