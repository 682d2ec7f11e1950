"""What an authorization has left to capture, in the ledger against PayPal's own records: once
PayPal takes no more of an authorization (voided after part of it was captured, or captured with
`final_capture` without paywire), the ledger offers nothing more to capture once it has read the
payment, though PayPal reports it refunded (a refund made meanwhile), not captured. Real emulator
on loopback."""

from __future__ import annotations

import pytest

from paywire import Money, StateError
from paywire.ledger import PaymentState

EUR = "EUR"


def left_at_paypal(paypal, authorization):
    """What PayPal would still capture of the authorization (up to its amount), from its own records."""
    with paypal.app.lock:
        auth = paypal.app.authorizations[authorization]
        if auth.status not in ("CREATED", "PARTIALLY_CAPTURED"):
            return Money.zero(EUR)
        taken = sum(paypal.app.captures[c].amount_minor for c in auth.capture_ids
                    if paypal.app.captures[c].status in ("COMPLETED", "PENDING", "PARTIALLY_REFUNDED", "REFUNDED"))
        return Money(auth.amount_minor - taken, EUR)


@pytest.mark.parametrize("how", ["voided after a capture", "captured with final_capture"])
@pytest.mark.parametrize("refund", ["part", "all"])
def test_an_authorization_paypal_closed_leaves_nothing_to_capture_with_a_refund(paypal, service, how, refund):
    """30.00 of an authorization of 100.00 is captured and refunded (part or all); PayPal takes
    no more of it (AUTHORIZATION_VOIDED, AUTHORIZATION_ALREADY_CAPTURED) and reports it refunded:
    after reconcile the ledger offers nothing to capture either."""
    payment = service.authorize("paypal", Money.of("100.00", EUR), source=paypal.app.vault_card(),
                                idempotency_key=paypal.key())
    authorization = payment.references["authorization"]
    given = Money.of("30.00" if refund == "all" else "10.00", EUR)
    if how == "voided after a capture":  # the shop's capture and refund, then a void in PayPal's dashboard
        service.capture(payment.id, Money.of("30.00", EUR), final=False, idempotency_key=paypal.key())
        service.refund(payment.id, given, idempotency_key=paypal.key())
        paypal.run("void", reference=authorization, idempotency_key=paypal.key())
    else:  # made without paywire, no event delivered
        capture = paypal.run("capture", reference=authorization, amount=Money.of("30.00", EUR), final=True,
                             idempotency_key=paypal.key())
        paypal.run("refund", reference=capture.reference, amount=given, idempotency_key=paypal.key())
    with paypal.app.lock:
        assert paypal.app.authorizations[authorization].status == (
            "VOIDED" if how.startswith("voided") else "CAPTURED")
    assert not service.reconcile(payment_id=payment.id).mismatches
    payment = service.get_payment(payment.id)
    assert (payment.captured, payment.refunded) == (Money.of("30.00", EUR), given)
    assert left_at_paypal(paypal, authorization) == Money.zero(EUR)
    state = PaymentState.REFUNDED if refund == "all" else PaymentState.PARTIALLY_REFUNDED
    assert (payment.state, payment.capturable) == (state, Money.zero(EUR))
    with pytest.raises(StateError) as refused:  # refused by the ledger: nothing is sent
        service.capture(payment.id, Money.of("1.00", EUR), idempotency_key=paypal.key())
    assert refused.value.code == ("payment_final" if refund == "all" else "capture_closed")


def test_an_authorization_paypal_keeps_open_still_offers_the_rest(paypal, service):
    """Part captured and refunded, the authorization still open at PayPal: the rest stays
    capturable, in the ledger and at PayPal, and a capture of it goes through."""
    payment = service.authorize("paypal", Money.of("100.00", EUR), source=paypal.app.vault_card(),
                                idempotency_key=paypal.key())
    authorization = payment.references["authorization"]
    service.capture(payment.id, Money.of("30.00", EUR), final=False, idempotency_key=paypal.key())
    service.refund(payment.id, Money.of("10.00", EUR), idempotency_key=paypal.key())
    assert not service.reconcile(payment_id=payment.id).mismatches
    payment = service.get_payment(payment.id)
    assert payment.capturable == left_at_paypal(paypal, authorization) == Money.of("70.00", EUR)
    payment = service.capture(payment.id, idempotency_key=paypal.key())
    assert payment.captured == Money.of("100.00", EUR) and payment.capturable == Money.zero(EUR)
    assert left_at_paypal(paypal, authorization) == Money.zero(EUR)


@pytest.mark.parametrize("final", [True, False])
@pytest.mark.parametrize("decided", ["COMPLETED", "DECLINED"])
def test_a_closing_capture_paypal_has_not_decided_closes_nothing_until_it_does(paypal, service, decided, final):
    """30.00 of an authorization of 100.00 is captured, then the 70.00 left (with `final_capture`
    or without), which PayPal holds PENDING (a review): the authorization reads CAPTURED meanwhile.
    A reading then closes nothing; PayPal's decision does. Declined, the 70.00 is PayPal's to
    capture again and the ledger still offers it; completed, nothing is left."""
    payment = service.authorize("paypal", Money.of("100.00", EUR), source="paypal",
                                return_url="https://shop.example/paypal/return")
    paypal.app.approve(payment.reference, "pending")  # the buyer's captures wait for PayPal's review
    payment = service.complete(payment.id)
    authorization = payment.references["authorization"]
    service.capture(payment.id, Money.of("30.00", EUR), final=False, idempotency_key=paypal.key())
    paypal.app.settle_capture(service.list_transactions(payment.id)[-1].provider_reference, "COMPLETED")
    service.capture(payment.id, Money.of("70.00", EUR), final=final, idempotency_key=paypal.key())
    last = service.list_transactions(payment.id)[-1]
    with paypal.app.lock:
        assert paypal.app.authorizations[authorization].status == "CAPTURED"
    service.reconcile(payment_id=payment.id)  # the final capture still in flight
    assert service.get_payment(payment.id).captured == Money.of("30.00", EUR)
    paypal.app.settle_capture(last.provider_reference, decided)
    assert not service.reconcile(payment_id=payment.id).mismatches
    payment = service.get_payment(payment.id)
    assert payment.capturable == left_at_paypal(paypal, authorization)
    if decided == "COMPLETED":
        assert (payment.captured, payment.capturable) == (Money.of("100.00", EUR), Money.zero(EUR))
        return
    assert (payment.state, payment.captured) == (PaymentState.PARTIALLY_CAPTURED, Money.of("30.00", EUR))
    assert payment.capturable == Money.of("70.00", EUR)
    service.capture(payment.id, idempotency_key=paypal.key())  # PayPal takes it: the ledger lets it
    paypal.app.settle_capture(service.list_transactions(payment.id)[-1].provider_reference, "COMPLETED")
    assert not service.reconcile(payment_id=payment.id).mismatches
    payment = service.get_payment(payment.id)
    assert (payment.captured, payment.capturable) == (Money.of("100.00", EUR), Money.zero(EUR))
    assert left_at_paypal(paypal, authorization) == Money.zero(EUR)


def test_a_reauthorization_holds_its_own_amount_whatever_earlier_ones_captured(paypal, service):
    """100.00 authorized and reauthorized; 60.00 of the reauthorization is captured, then the
    original is reauthorized again for 50.00 (PayPal allows several reauthorizations in its 29
    days), none of which is captured yet. PayPal captures on the newest: the ledger still offers
    the 40.00 it has left, and PayPal takes it."""
    payment = service.authorize("paypal", Money.of("100.00", EUR), source=paypal.app.vault_card(),
                                idempotency_key=paypal.key())
    original = payment.references["authorization"]
    paypal.days_pass(3)  # past the honor period: PayPal reauthorizes from day 4
    paypal.run("reauthorize", reference=original, amount=Money.of("100.00", EUR), idempotency_key=paypal.key())
    service.reconcile(payment_id=payment.id)  # captures act on the reauthorization from now on
    service.capture(payment.id, Money.of("60.00", EUR), final=False, idempotency_key=paypal.key())
    renewed = paypal.run("reauthorize", reference=original, amount=Money.of("50.00", EUR),
                         idempotency_key=paypal.key())
    service.reconcile(payment_id=payment.id)
    payment = service.get_payment(payment.id)
    assert payment.references["authorization"] == renewed.reference
    assert (payment.captured, payment.capturable) == (Money.of("60.00", EUR), Money.of("40.00", EUR))
    payment = service.capture(payment.id, idempotency_key=paypal.key())
    assert payment.captured == Money.of("100.00", EUR)
    assert not service.reconcile(payment_id=payment.id).mismatches
    with paypal.app.lock:
        assert paypal.app.captures[service.list_transactions(payment.id)[-1].provider_reference].authorization_id \
            == renewed.reference


def test_an_authorization_in_a_status_paywire_does_not_know_closes_nothing(paypal, service):
    """An authorization PayPal lists in a status paywire does not know (PARTIALLY_CREATED, which
    PayPal's Orders reference names, or one it adds) says nothing of what it still takes: fetch
    reports nothing capturable as unknown (None), never as zero, which would close capture for
    good; the ledger keeps offering the rest, and PayPal's answer to a capture decides."""
    payment = service.authorize("paypal", Money.of("100.00", EUR), source=paypal.app.vault_card(),
                                idempotency_key=paypal.key())
    authorization = payment.references["authorization"]
    service.capture(payment.id, Money.of("30.00", EUR), final=False, idempotency_key=paypal.key())
    for status in ("PARTIALLY_CREATED", "A_STATUS_PAYPAL_ADDS_LATER"):
        with paypal.app.lock:
            paypal.app.authorizations[authorization].status = status
        assert paypal.run("fetch", reference=payment.reference).capturable is None
        service.reconcile(payment_id=payment.id)
        assert not service.get_payment(payment.id).capture_closed, status
