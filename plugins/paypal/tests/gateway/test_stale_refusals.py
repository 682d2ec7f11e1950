"""A capture or void PayPal refuses because the authorization is no longer as the ledger holds it
(expired, voided or captured without a word to the shop yet): the service records the refusal and
reads PayPal for the payment, so the ledger claims no more than PayPal holds."""

from __future__ import annotations

import pytest

from paywire import Money, StateError
from paywire.testing.emulator import Fault

_REFUSALS = {  # (what PayPal did, the operation) -> PayPal's issue
    ("expired", "void"): "AUTHORIZATION_EXPIRED", ("expired", "capture"): "AUTHORIZATION_EXPIRED",
    ("voided", "void"): "PREVIOUSLY_VOIDED", ("voided", "capture"): "AUTHORIZATION_VOIDED",
    ("captured", "void"): "PREVIOUSLY_CAPTURED", ("captured", "capture"): "AUTHORIZATION_ALREADY_CAPTURED",
}


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def _authorized(paypal, service, change):
    payment = service.authorize("paypal", eur("40.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    authorization = payment.references["authorization"]
    if change == "expired":
        paypal.app.expire_authorization(authorization)
    elif change == "voided":
        paypal.run("void", reference=authorization, idempotency_key=paypal.key())
    else:
        paypal.run("capture", reference=authorization, amount=eur("40.00"), final=True, idempotency_key=paypal.key())
    return payment


def _refused(service, operation, payment):
    with pytest.raises(StateError) as refused:
        if operation == "void":
            service.void(payment.id)
        else:
            service.capture(payment.id, eur("10.00"))
    return refused.value


@pytest.mark.parametrize(("change", "operation"), sorted(_REFUSALS))
def test_a_refusal_on_an_authorization_paypal_changed_leaves_the_payment_as_paypal_holds_it(
        paypal, service, change, operation):
    payment = _authorized(paypal, service, change)
    posts = paypal.calls(method="POST")
    error = _refused(service, operation, payment)
    assert paypal.calls(method="POST") == posts + 1  # the refused request alone: nothing sent again
    [txn] = [t for t in service.list_transactions(payment.id) if t.kind == operation and t.origin == "service"]
    assert (txn.status, txn.error_code) == ("failed", _REFUSALS[change, operation])
    # The capture made beside the shop, read from PayPal's list: recorded once, with its amount.
    beside = [(t.kind, t.status, t.amount) for t in service.list_transactions(payment.id) if t.origin != "service"]
    assert beside == ([("capture", "succeeded", eur("40.00"))] if change == "captured" else [])
    payment = service.get_payment(payment.id)
    held = paypal.run("fetch", reference=payment.reference)
    assert (payment.authorized, payment.captured, payment.refunded) == (held.authorized, held.captured, held.refunded)
    assert payment.capturable == eur("0.00")
    assert payment.state == ("captured" if change == "captured" else "voided")
    assert error.state_conflict and error.details["reconciled"] is True


def test_a_refusal_whose_read_fails_is_recorded_and_raised_and_reconcile_settles_it(paypal, service):
    payment = _authorized(paypal, service, "expired")
    paypal.app.inject(Fault(kind="status", status=500, method="GET", path=r"^/v2/checkout/orders/"))
    error = _refused(service, "void", payment)
    assert error.code == "AUTHORIZATION_EXPIRED" and error.details["reconciled"] is False
    assert service.get_payment(payment.id).state == "authorized"  # nothing read: as before
    assert service.reconcile(payment_id=payment.id).clean
    assert service.get_payment(payment.id).state == "voided"
