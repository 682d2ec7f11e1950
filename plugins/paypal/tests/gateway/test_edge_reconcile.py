"""Reconciliation against PayPal's own view of an order, found in an audit: what fetch lists must
let the ledger match each open operation to the PayPal object it made."""

from __future__ import annotations

import pytest

from paywire import Declined, Money, OutcomeUnknown, PaymentService, SQLiteLedger
from paywire.testing.emulator import Fault
from paywire_paypal.emulator.sandbox import approve_as_buyer
from tests.ledger.support import step_past_life


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def test_a_lost_capture_is_not_matched_to_an_earlier_declined_capture_of_the_same_amount(paypal, service):
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key="auth-1")
    authorization = paypal.app.authorizations[payment.references["authorization"]]
    authorization.outcome = "deny"  # the processor declines this capture (2xx, capture DECLINED)
    with pytest.raises(Declined):
        service.capture(payment.id, eur("30.00"), final=False, idempotency_key="cap-1")
    authorization.outcome = "approve"  # the next attempt goes through; its answer is lost
    paypal.app.inject(Fault(kind="drop_after", path="/capture$"))
    with pytest.raises(OutcomeUnknown) as raised:
        service.capture(payment.id, eur("30.00"), final=False, idempotency_key="cap-2")
    statuses = {cap.status for cap in paypal.app.captures.values()}
    assert statuses == {"DECLINED", "COMPLETED"}  # PayPal captured 30.00 on the second attempt
    service.reconcile(payment_id=payment.id)
    lost = next(t for t in service.list_transactions(payment.id) if t.id == raised.value.transaction_id)
    completed = next(cap.id for cap in paypal.app.captures.values() if cap.status == "COMPLETED")
    assert (lost.status, lost.provider_reference) == ("succeeded", completed)
    assert service.get_payment(payment.id).captured == eur("30.00")


def test_a_lost_capture_is_not_concluded_failed_from_an_earlier_declined_capture_of_the_same_amount(paypal, service):
    """The retry of a declined capture gets a 500 that PayPal sends before applying it: until its
    request can no longer land, nothing PayPal lists is evidence that it failed (captures carry no
    key, and the one declined capture is the first attempt's)."""
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key="auth-1")
    authorization = paypal.app.authorizations[payment.references["authorization"]]
    authorization.outcome = "deny"
    with pytest.raises(Declined):
        service.capture(payment.id, eur("30.00"), final=False, idempotency_key="cap-1")
    authorization.outcome = "approve"
    paypal.app.inject(Fault(kind="status", status=500, path="/capture$", times=5))
    with pytest.raises(OutcomeUnknown) as raised:
        service.capture(payment.id, eur("30.00"), final=False, idempotency_key="cap-2")
    assert {cap.status for cap in paypal.app.captures.values()} == {"DECLINED"}
    report = service.reconcile(payment_id=payment.id)
    lost = service.get_transaction(raised.value.transaction_id or "")
    assert lost.status == "unknown", report  # it may still land: PayPal holds no attempt of it yet
    assert [u.transaction_id for u in report.unresolved] == [lost.id]


def test_two_lost_captures_of_one_amount_and_one_paypal_capture_never_count_twice(paypal, service):
    """Two captures of 30.00 whose answers were lost, PayPal holding only the second: captures carry
    no key, so reconciliation cannot tell which of the two PayPal made. Guessing the first lets
    the second's retry (PayPal answers its key with the capture it made) count that 30.00 again."""
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key="auth-1")
    paypal.app.inject(Fault(kind="status", status=500, path="/capture$", times=5))  # before PayPal applied it
    with pytest.raises(OutcomeUnknown) as never:
        service.capture(payment.id, eur("30.00"), final=False, idempotency_key="cap-1")
    paypal.app.clear_faults()
    paypal.app.inject(Fault(kind="drop_after", path="/capture$"))
    with pytest.raises(OutcomeUnknown) as landed:
        service.capture(payment.id, eur("30.00"), final=False, idempotency_key="cap-2")
    (held,) = [cap for cap in paypal.app.captures.values() if cap.status == "COMPLETED"]
    report = service.reconcile(payment_id=payment.id)
    assert service.get_payment(payment.id).captured == eur("30.00"), report
    for transaction_id in (never.value.transaction_id, landed.value.transaction_id):
        try:
            service.retry(transaction_id or "")  # the caller's retry of an open operation, with its key
        except OutcomeUnknown:
            pass
    assert sum(cap.amount_minor for cap in paypal.app.captures.values() if cap.status == "COMPLETED") \
        == service.get_payment(payment.id).captured.minor
    assert service.get_transaction(landed.value.transaction_id or "").provider_reference == held.id


def test_a_lost_completion_of_an_approved_order_is_concluded_not_applied_once_it_cannot_land(paypal, tmp_path,
                                                                                              monkeypatch):
    """The buyer approved; the authorize call PayPal refused before applying it (a 500): the order
    stays APPROVED. Once the request can no longer land, reconciliation concludes the completion
    was not applied, so the payment can be completed again; it must not stay in flight for good."""
    # Every answer read however loaded the machine: the completion is lost by the 500, its life stepped past.
    with SQLiteLedger(str(tmp_path / "approved.db")) as ledger:
        service = PaymentService(paypal.gateway, ledger)
        payment = service.authorize("paypal", eur("50.00"), source="paypal", return_url="https://shop.example/r",
                                    idempotency_key="A-1-auth")
        approve_as_buyer(payment.action.redirect_url)
        paypal.app.inject(Fault(kind="status", status=500, method="POST", path="/authorize$", times=5))
        with pytest.raises(OutcomeUnknown) as raised:
            service.complete(payment.id, idempotency_key="A-1-complete")
        paypal.app.clear_faults()
        assert paypal.app.orders[payment.reference].status == "APPROVED"
        step_past_life(service, [raised.value.transaction_id or ""], monkeypatch)
        report = service.reconcile()
        assert service.get_transaction(raised.value.transaction_id or "").status == "failed", report
        assert service.complete(payment.id).state == "authorized"  # and it can be completed again


def test_an_authorization_paypal_holds_pending_is_not_counted_as_authorized(paypal, service):
    """A completion whose answer was lost made an authorization PayPal holds PENDING (under
    review): reconciliation records the completion accepted, and counts nothing as authorized
    until PayPal decides (nothing can be captured from it meanwhile)."""
    payment = service.authorize("paypal", eur("50.00"), source="paypal", return_url="https://shop.example/r",
                                idempotency_key="A-2-auth")
    approve_as_buyer(payment.action.redirect_url)
    paypal.app.inject(Fault(kind="drop_after", method="POST", path="/authorize$"))
    with pytest.raises(OutcomeUnknown) as raised:
        service.complete(payment.id, idempotency_key="A-2-complete")
    (authorization,) = paypal.app.authorizations.values()
    authorization.status = "PENDING"  # PayPal holds it for review and decides later
    report = service.reconcile(payment_id=payment.id)
    assert service.get_transaction(raised.value.transaction_id or "").status == "accepted", report
    payment = service.get_payment(payment.id)
    assert payment.authorized == eur("0.00") and payment.state != "authorized", report


def test_a_lost_refund_is_not_taken_for_a_dashboard_refund_of_another_capture(paypal, service):
    """Captured twice; the shop's refund of 10.00 on the second got a 500 PayPal sent before applying
    it, and 10.00 of the first was refunded in PayPal's dashboard (no custom_id: no key). PayPal
    names each refund's capture, so the dashboard's is not taken for the shop's by its amount:
    recorded as the shop's, it would sit on the wrong capture (and go unnoticed if PayPal took the
    first capture back)."""
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key="auth-1")
    service.capture(payment.id, eur("60.00"), final=False, idempotency_key="cap-1")
    service.capture(payment.id, eur("40.00"), idempotency_key="cap-2")
    first, second = [t.provider_reference for t in service.list_transactions(payment.id) if t.kind == "capture"]
    paypal.app.inject(Fault(kind="status", status=500, path="/refund$"))
    with pytest.raises(OutcomeUnknown) as raised:
        service.refund(payment.id, eur("10.00"), idempotency_key="refund-1")
    assert service.get_transaction(raised.value.transaction_id or "").request["reference"] == second
    dashboard = paypal.run("refund", reference=first, amount=eur("10.00"))
    report = service.reconcile(payment_id=payment.id)
    lost = service.get_transaction(raised.value.transaction_id or "")
    assert (lost.status, lost.provider_reference) == ("unknown", None), (report, dashboard.reference)
    assert service.get_payment(payment.id).refunded == eur("10.00")  # PayPal's total: the dashboard's refund


@pytest.mark.parametrize("sale", [True, False])
def test_a_lost_completion_of_an_order_paypal_cancelled_is_failed_not_counted(paypal, service, sale):
    """The completion got a 500 before PayPal applied it; the capture window after approval then
    passed and PayPal cancelled the order (VOIDED, no authorization or capture in it). Nothing was
    ever authorized to void: the completion did not take effect, and the ledger claims nothing."""
    start = service.sale if sale else service.authorize
    payment = start("paypal", eur("25.00"), source="paypal", return_url="https://shop.example/paypal/return",
                    idempotency_key="cancelled-1")
    approve_as_buyer(payment.action.redirect_url)
    paypal.app.inject(Fault(kind="status", status=500, method="POST",
                            path=r"/v2/checkout/orders/[^/]+/(capture|authorize)$"))
    with pytest.raises(OutcomeUnknown) as raised:
        service.complete(payment.id)
    paypal.app.reverse_approval(payment.reference)
    assert not paypal.app.captures and not paypal.app.authorizations
    service.reconcile(payment_id=payment.id)
    assert service.get_transaction(raised.value.transaction_id or "").status == "failed"
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.authorized, payment.captured) == ("failed", eur("0.00"), eur("0.00"))


def test_a_lost_refund_is_not_taken_for_paypals_reversal_of_the_same_amount(paypal, tmp_path, monkeypatch):
    """The shop's refund of the whole sale got a 500 PayPal sent before applying it; PayPal then
    reversed the capture (a chargeback): a refund of the same amount that PayPal made, without the
    custom_id the shop's refund carries. It is not the shop's: taken for it, the ledger would say
    the shop's refund went through while a chargeback took the money. The shop's refund stays open
    until its request can no longer land, then is concluded not applied, and the reversal is
    recorded as a refund made outside paywire."""
    # Every answer read however loaded the machine: the refund is lost by the 500, its life stepped past.
    with SQLiteLedger(str(tmp_path / "reversed.db")) as ledger:
        service = PaymentService(paypal.gateway, ledger)
        payment = service.sale("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key="sale-1")
        paypal.app.inject(Fault(kind="status", status=500, method="POST", path="/refund$", times=5))
        with pytest.raises(OutcomeUnknown) as raised:
            service.refund(payment.id, eur("100.00"), idempotency_key="refund-1")
        paypal.app.clear_faults()
        assert not paypal.app.refunds  # the shop's refund never reached PayPal
        capture = paypal.run("fetch", reference=payment.reference).references["capture"]
        reversal = paypal.app.reverse_capture(capture)
        report = service.reconcile(payment_id=payment.id)
        lost = service.get_transaction(raised.value.transaction_id or "")
        assert (lost.status, lost.provider_reference) == ("unknown", None), report
        paypal.deliver(service, "PAYMENT.CAPTURE.REVERSED")  # waits for the open refund to be settled
        step_past_life(service, [lost.id], monkeypatch)
        report = service.reconcile(payment_id=payment.id)
        lost = service.get_transaction(lost.id)
        assert (lost.status, lost.provider_reference) == ("failed", None), report
        (outside,) = [t for t in service.list_transactions(payment.id) if t.kind == "refund" and t.id != lost.id]
        assert (outside.status, outside.origin, outside.provider_reference) == ("succeeded", "webhook", reversal)
        later = service.get_payment(payment.id)
        assert (later.captured, later.refunded, later.state) == (eur("100.00"), eur("100.00"), "refunded")
        assert not report.mismatches and not report.errors, report


def test_a_lost_refund_under_a_key_paypal_cannot_echo_is_still_found_by_its_amount(paypal, service):
    """A refund whose key PayPal cannot carry as custom_id landed and its answer was lost: it
    carries paywire's mark instead, so it is not taken for one made outside paywire."""
    payment = service.sale("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key="sale-1")
    paypal.app.inject(Fault(kind="drop_after", method="POST", path="/refund$"))
    with pytest.raises(OutcomeUnknown) as raised:
        service.refund(payment.id, eur("30.00"), idempotency_key="refund:1/with spaces")
    (made,) = paypal.app.refunds
    report = service.reconcile(payment_id=payment.id)
    lost = service.get_transaction(raised.value.transaction_id or "")
    assert (lost.status, lost.provider_reference) == ("succeeded", made), report
    assert service.get_payment(payment.id).refunded == eur("30.00")


def test_a_lost_capture_paypal_lists_in_a_status_paywire_does_not_know_is_never_concluded_failed(paypal, tmp_path,
                                                                                                 monkeypatch):
    """A capture whose answer was lost, listed by PayPal in a status paywire does not know (one
    PayPal adds later): it may have taken effect, so it is matched and left open, not passed over
    and, once its request could no longer land, concluded not applied; it is settled once PayPal
    lists it in a status paywire reads."""
    # Every answer read however loaded the machine: the capture is lost by a fault, its life stepped past.
    with SQLiteLedger(str(tmp_path / "status.db")) as ledger:
        service = PaymentService(paypal.gateway, ledger)
        payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key="auth-1")
        paypal.app.inject(Fault(kind="drop_after", method="POST", path="/capture$"))
        with pytest.raises(OutcomeUnknown) as raised:
            service.capture(payment.id, eur("30.00"), final=False, idempotency_key="cap-1")
        (capture,) = paypal.app.captures.values()  # made before its answer was dropped
        capture.status = "A_STATUS_PAYPAL_ADDS_LATER"
        lost = service.get_transaction(raised.value.transaction_id or "")
        step_past_life(service, [lost.id], monkeypatch)
        report = service.reconcile(payment_id=payment.id)
        lost = service.get_transaction(lost.id)
        assert lost.status in ("unknown", "accepted"), report
        assert service.get_payment(payment.id).captured == eur("0.00")
        capture.status = "COMPLETED"
        report = service.reconcile(payment_id=payment.id)
        lost = service.get_transaction(lost.id)
        assert (lost.status, lost.provider_reference) == ("succeeded", capture.id), report
        assert service.get_payment(payment.id).captured == eur("30.00")
