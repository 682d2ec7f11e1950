"""A refusal saying Stripe's PaymentIntent is not in the state the ledger holds (the authorization
lapsed, or was captured or canceled outside paywire, and no event came yet): the service records
the operation failed, as refused, and reads Stripe for the payment, so the ledger claims no more
than Stripe holds. Real emulator on loopback."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paywire import Money, PaymentService, PaywireError, StateError
from paywire.ledger import PaymentState, TransactionStatus
from paywire.testing.emulator import Fault

CODE = "payment_intent_unexpected_state"


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def _refused(service: PaymentService, operation: str, payment_id: str, amount: Money | None = None) -> PaywireError:
    with pytest.raises(PaywireError) as refused:
        if operation == "void":
            service.void(payment_id)
        else:
            service.capture(payment_id, amount)
    return refused.value


def _totals(payment: Any) -> tuple[Money, Money, Money]:
    return payment.authorized, payment.captured, payment.refunded


def _read(stripe: Any, app: Any, reference: str | None, since: int) -> Any:
    """Stripe's payment now, checking that the service sent only the refused request and the same
    read since `since`: nothing was sent again."""
    sent = app.calls[since:]
    start = len(app.calls)
    held = stripe.fetch(reference)
    assert sent[0][0] == "POST" and sent[1:] == app.calls[start:]
    return held


@pytest.mark.parametrize("operation", ["void", "capture"])
def test_a_refusal_after_the_authorization_lapsed_leaves_the_payment_as_stripe_holds_it(
        service: PaymentService, stripe: Any, app: Any, operation: str) -> None:
    payment = service.authorize("stripe", eur("50.00"), source="pm_card_visa", return_url="https://shop.example/r")
    app.expire(payment.reference)  # Stripe cancels the intent; no event reaches the shop
    calls = len(app.calls)
    error = _refused(service, operation, payment.id, eur("20.00"))
    [txn] = [t for t in service.list_transactions(payment.id) if t.kind == operation]
    assert (txn.status, txn.error_code, txn.id) == (TransactionStatus.FAILED, CODE, error.transaction_id)
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.capturable) == (PaymentState.VOIDED, eur("0.00"))
    held = _read(stripe, app, payment.reference, calls)
    assert _totals(payment) == (held.authorized, held.captured, held.refunded) == (eur("50.00"), eur("0.00"),
                                                                                   eur("0.00"))
    # Still raised: the operation was refused; the error says the payment now follows Stripe.
    assert isinstance(error, StateError) and error.code == CODE and error.state_conflict
    assert (error.payment_id, error.details["reconciled"]) == (payment.id, True)
    calls = len(app.calls)
    with pytest.raises(StateError) as final:
        service.void(payment.id)
    assert final.value.code == "payment_final" and len(app.calls) == calls  # refused before sending


@pytest.mark.parametrize("operation", ["void", "capture"])
def test_a_refusal_whose_read_fails_is_still_recorded_and_raised_and_reconcile_settles_it(
        service: PaymentService, app: Any, operation: str) -> None:
    payment = service.authorize("stripe", eur("50.00"), source="pm_card_visa", return_url="https://shop.example/r")
    app.expire(payment.reference)
    app.inject(Fault(kind="status", status=500, method="GET", path=r"^/v1/payment_intents/"))
    error = _refused(service, operation, payment.id, eur("20.00"))
    assert isinstance(error, StateError) and error.code == CODE  # the refusal, not the read's failure
    assert error.details["reconciled"] is False and "ProviderUnavailable" in error.details["reconcile_error"]
    [txn] = [t for t in service.list_transactions(payment.id) if t.kind == operation]
    assert (txn.status, txn.error_code) == (TransactionStatus.FAILED, CODE)
    assert service.get_payment(payment.id).state == PaymentState.AUTHORIZED  # as before: nothing read
    report = service.reconcile(payment_id=payment.id)
    assert report.clean, report
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.capturable) == (PaymentState.VOIDED, eur("0.00"))


_CHANGES = st.sampled_from(["expired", "canceled", "captured"])


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(change=_CHANGES, operation=st.sampled_from(["void", "capture"]),
       outside=st.integers(1, 5000), asked=st.integers(1, 5000))
def test_after_a_state_conflict_the_ledger_holds_what_stripe_holds(
        service: PaymentService, stripe: Any, app: Any, api: Any, change: str, operation: str, outside: int,
        asked: int) -> None:
    """Whatever Stripe did to the intent without a word to the shop (let it lapse, canceled or
    captured it in the dashboard), the refused void or capture leaves the payment's totals those
    Stripe reports, and never more to capture than Stripe would capture."""
    payment = service.authorize("stripe", eur("50.00"), source="pm_card_visa", return_url="https://shop.example/r")
    if change == "expired":
        app.expire(payment.reference)
    elif change == "canceled":
        api.ok("POST", f"/v1/payment_intents/{payment.reference}/cancel", {"cancellation_reason": "abandoned"})
    else:
        api.ok("POST", f"/v1/payment_intents/{payment.reference}/capture", {"amount_to_capture": outside})
    calls = len(app.calls)
    error = _refused(service, operation, payment.id, Money(asked, "EUR"))
    payment = service.get_payment(payment.id)
    held = _read(stripe, app, payment.reference, calls)
    assert _totals(payment) == (held.authorized, held.captured, held.refunded)
    assert payment.capturable == eur("0.00")  # Stripe captures nothing more of a canceled or captured intent
    assert payment.state == (PaymentState.CAPTURED if change == "captured" else PaymentState.VOIDED)
    assert error.code == CODE and error.details["reconciled"] is True
