"""Authorizations PayPal holds PENDING for review (`status_details.reason` PENDING_REVIEW): taken,
decided later. Nothing of one is counted or captured until PayPal creates it; a reauthorization
PayPal reviews is no authorization yet either. The emulator's `review` buyer stands in for them."""

from __future__ import annotations

import pytest

from paywire import Declined, Money, PaymentService, PaywireError

from .conftest import RETURN_URL

EUR100 = Money.of("100.00", "EUR")


def _reviewed_authorization(paypal) -> str:
    """An authorization of a vaulted wallet PayPal reviewed and created; returns its id."""
    result = paypal.run("authorize", amount=EUR100, source=paypal.app.vault_paypal("review"),
                        idempotency_key=paypal.key())
    assert result.status == "accepted" and result.state == "processing", result
    paypal.app.decide_authorization(result.reference, "CREATED")
    return result.reference


def test_a_reauthorization_paypal_reviews_is_accepted_not_an_authorization(paypal):
    original = _reviewed_authorization(paypal)
    paypal.days_pass(3)  # past the honor period: PayPal reauthorizes from day 4
    renewed = paypal.run("reauthorize", reference=original, amount=EUR100, idempotency_key=paypal.key())
    assert paypal.app.authorizations[renewed.reference].status == "PENDING"
    assert renewed.status == "accepted" and not renewed.succeeded
    assert renewed.state == "processing"
    assert renewed.raw["status_details"] == {"reason": "PENDING_REVIEW"}


def test_an_authorization_under_review_takes_no_capture(paypal):
    result = paypal.run("authorize", amount=EUR100, source=paypal.app.vault_paypal("review"),
                        idempotency_key=paypal.key())
    with pytest.raises(Declined) as raised:
        paypal.run("capture", reference=result.reference, amount=EUR100, idempotency_key=paypal.key())
    assert raised.value.code == "TRANSACTION_REFUSED"
    assert not paypal.app.captures


def _completed_under_review(paypal, service: PaymentService):
    payment = service.authorize("paypal", EUR100, source="paypal", return_url=RETURN_URL, idempotency_key=paypal.key())
    paypal.app.approve(payment.references["payment"], "review")
    payment = service.complete(payment.id)
    assert payment.authorized == Money.zero("EUR") and payment.state != "authorized"
    (authorization,) = paypal.app.authorizations
    return payment, authorization


def test_a_completion_paypal_reviews_is_authorized_once_paypal_creates_it(paypal, service):
    payment, authorization = _completed_under_review(paypal, service)
    assert [t.status for t in service.list_transactions(payment.id)] == ["action_required", "accepted"]
    paypal.app.decide_authorization(authorization, "CREATED")
    paypal.deliver(service, "PAYMENT.AUTHORIZATION.CREATED")
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.authorized) == ("authorized", EUR100)
    assert service.capture(payment.id, EUR100).captured == EUR100


def test_a_completion_paypal_denies_after_review_ends_the_payment_failed(paypal, service):
    payment, authorization = _completed_under_review(paypal, service)
    paypal.app.decide_authorization(authorization, "DENIED")
    service.reconcile(payment_id=payment.id)
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.authorized) == ("failed", Money.zero("EUR"))
    assert [t.status for t in service.list_transactions(payment.id)] == ["action_required", "failed"]


def _reviewed_reauthorization(paypal) -> tuple[str, str]:
    """An authorization PayPal created, and a reauthorization of it PayPal holds for review."""
    original = paypal.run("authorize", amount=EUR100, source=paypal.app.vault_paypal("approve"),
                          idempotency_key=paypal.key()).reference
    paypal.days_pass(4)
    paypal.app.review_reauthorizations = True
    renewed = paypal.run("reauthorize", reference=original, amount=Money.of("40.00", "EUR"),
                         idempotency_key=paypal.key()).reference
    paypal.app.review_reauthorizations = False
    assert paypal.app.authorizations[renewed].status == "PENDING"
    return original, renewed


@pytest.mark.parametrize("decided", [None, "DENIED"])
def test_the_authorization_a_reauthorization_renews_takes_no_capture_until_one_is_created(paypal, decided):
    """Reviewed or denied, the reauthorization takes no capture, nor does the original (PayPal
    documents neither: the reading that takes least); created, it takes them."""
    original, renewed = _reviewed_reauthorization(paypal)
    if decided:
        paypal.app.decide_authorization(renewed, decided)
    for reference in (original, renewed):
        with pytest.raises(PaywireError) as raised:
            paypal.run("capture", reference=reference, amount=Money.of("1.00", "EUR"), idempotency_key=paypal.key())
        assert raised.value.code in ("TRANSACTION_REFUSED", "AUTHORIZATION_DENIED"), raised.value
    assert not paypal.app.captures
    if not decided:
        paypal.app.decide_authorization(renewed, "CREATED")
        paypal.run("capture", reference=renewed, amount=Money.of("40.00", "EUR"), idempotency_key=paypal.key())


@pytest.mark.parametrize("then", ["void", "reauthorize"])
def test_a_reauthorization_under_review_is_voided_with_its_original_or_by_the_next(paypal, then):
    """Voiding the original voids the reauthorization PayPal reviews with it, and a new
    reauthorization voids it: PayPal never creates it later beside what replaced it."""
    original, renewed = _reviewed_reauthorization(paypal)
    if then == "void":
        paypal.run("void", reference=original, idempotency_key=paypal.key())
    else:
        paypal.run("reauthorize", reference=original, amount=EUR100, idempotency_key=paypal.key())
    assert paypal.app.authorizations[renewed].status == "VOIDED"
    with pytest.raises(ValueError):
        paypal.app.decide_authorization(renewed, "CREATED")
