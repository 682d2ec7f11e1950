"""Captures, refunds and reauthorizations made beside paywire (PayPal's dashboard) or by PayPal
(a chargeback), whose events the service received, that the ledger does not count or place: what
the service lets be captured or refunded, and where it sends it, should follow what PayPal holds,
refusing before anything is sent. Real emulator on loopback, the service on SQLite."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import Money, OutcomeUnknown, PaymentService, PaywireError, StateError
from paywire.ledger import TransactionKind
from paywire.testing.emulator import Fault

from .conftest import RETURN_URL, deliver_about
from .test_ledger_follows_paypal import Dashboard


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def _amount(value: str) -> dict[str, str]:
    return {"currency_code": "EUR", "value": value}


def _approved(paypal: Any, service: PaymentService, start: str, payer: str) -> str:
    """A payment of 100.00 by PayPal wallet (`start`: authorize or sale), the buyer's approval
    giving PayPal's test behaviour `payer`, completed. Returns its id."""
    payment = getattr(service, start)("paypal", eur("100.00"), source="paypal", return_url=RETURN_URL)
    paypal.app.approve(payment.reference, payer)
    return service.complete(payment.id).id


def _deliver_all(paypal: Any, service: PaymentService) -> None:
    for event in list(paypal.app.events):
        body, headers = paypal.app.signed_event(event)
        service.receive_webhook("paypal", headers, body)


def _refused_before_sending(paypal: Any, service: PaymentService, payment_id: str, kind: str, call: Any,
                            code: str) -> None:
    sent = paypal.calls(f"/{kind}", "POST")
    with pytest.raises(PaywireError) as refused:
        call()
    assert refused.value.code == code, refused.value  # PayPal's refusal otherwise: the request was sent
    assert paypal.calls(f"/{kind}", "POST") == sent
    assert not [t for t in service.list_transactions(payment_id) if t.kind == kind and t.origin == "service"]


def test_a_pending_dashboard_refund_is_not_offered_to_refund_again(paypal: Any, service: PaymentService) -> None:
    payment_id = _approved(paypal, service, "sale", "refund_pending")
    capture = service.get_payment(payment_id).references["capture"]
    assert Dashboard(paypal.url).post(f"/v2/payments/captures/{capture}/refund", {"amount": _amount("40.00")}) == 201
    _deliver_all(paypal, service)
    service.reconcile(payment_id=payment_id)
    _refused_before_sending(paypal, service, payment_id, TransactionKind.REFUND,
                            lambda: service.refund(payment_id, eur("60.01")), "refund_exceeds_captured")


def test_a_pending_dashboard_capture_is_not_offered_to_capture_again(paypal: Any, service: PaymentService) -> None:
    payment_id = _approved(paypal, service, "authorize", "pending")
    authorization = service.get_payment(payment_id).references["authorization"]
    assert Dashboard(paypal.url).post(f"/v2/payments/authorizations/{authorization}/capture",
                                      {"amount": _amount("40.00"), "final_capture": False}) == 201
    _deliver_all(paypal, service)
    service.reconcile(payment_id=payment_id)
    _refused_before_sending(paypal, service, payment_id, TransactionKind.CAPTURE,
                            lambda: service.capture(payment_id, eur("75.01"), final=False),
                            "capture_exceeds_authorized")


def test_a_final_dashboard_capture_closes_the_capture(paypal: Any, service: PaymentService) -> None:
    payment_id = _approved(paypal, service, "authorize", "approve")
    authorization = service.get_payment(payment_id).references["authorization"]
    assert Dashboard(paypal.url).post(f"/v2/payments/authorizations/{authorization}/capture",
                                      {"amount": _amount("30.00"), "final_capture": True}) == 201
    _deliver_all(paypal, service)
    assert service.get_payment(payment_id).captured == eur("30.00")
    _refused_before_sending(paypal, service, payment_id, TransactionKind.CAPTURE,
                            lambda: service.capture(payment_id, eur("0.01"), final=False), "capture_closed")



def test_a_refund_of_dashboard_captures_read_by_reconcile_is_kept_to_one_capture(
        paypal: Any, service: PaymentService) -> None:
    payment_id = _approved(paypal, service, "authorize", "approve")
    authorization = service.get_payment(payment_id).references["authorization"]
    for amount in ("30.00", "20.00"):
        assert Dashboard(paypal.url).post(f"/v2/payments/authorizations/{authorization}/capture",
                                          {"amount": _amount(amount), "final_capture": False}) == 201
    service.reconcile(payment_id=payment_id)  # no event delivered: PayPal's totals are all it has read
    assert service.get_payment(payment_id).captured == eur("50.00")
    # 50.00 is captured and not refunded, but no one capture holds more than 30.00.
    _refused_before_sending(paypal, service, payment_id, TransactionKind.REFUND,
                            lambda: service.refund(payment_id, eur("30.01")), "refund_exceeds_capture")


def test_a_refund_is_kept_to_what_a_dashboard_refund_read_by_reconcile_left_on_its_capture(
        paypal: Any, service: PaymentService) -> None:
    """A refund made in PayPal's dashboard whose events were not delivered is recorded by reconcile
    on the capture it names, so a later refund is kept to what PayPal has left on each capture."""
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    first = service.capture(payment.id, eur("30.00"), final=False, idempotency_key=paypal.key()).references["capture"]
    service.capture(payment.id, eur("20.00"), final=False, idempotency_key=paypal.key())
    assert Dashboard(paypal.url).post(f"/v2/payments/captures/{first}/refund", {"amount": _amount("25.00")}) == 201
    service.reconcile(payment_id=payment.id)  # no event delivered: PayPal's refunded total is all it has read
    assert service.get_payment(payment.id).refunded == eur("25.00")
    # 25.00 is captured and not refunded: 20.00 on the second capture, 5.00 on the first.
    _refused_before_sending(paypal, service, payment.id, TransactionKind.REFUND,
                            lambda: service.refund(payment.id, eur("25.00")), "refund_exceeds_capture")


def test_a_smaller_dashboard_reauthorization_lowers_what_is_offered_to_capture(
        paypal: Any, service: PaymentService) -> None:
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    paypal.days_pass(4)  # past the honor period: PayPal reauthorizes
    renewed = paypal.run("reauthorize", reference=payment.references["authorization"], amount=eur("40.00"),
                         idempotency_key=paypal.key())
    deliver_about(paypal, service, "PAYMENT.AUTHORIZATION.CREATED", renewed.reference)
    service.reconcile(payment_id=payment.id)
    assert service.get_payment(payment.id).references["authorization"] == renewed.reference
    _refused_before_sending(paypal, service, payment.id, TransactionKind.CAPTURE,
                            lambda: service.capture(payment.id, eur("46.01"), final=False),
                            "capture_exceeds_authorized")


@pytest.mark.parametrize(("final", "taken", "over", "code"), [
    (False, "25.00", "90.01", "capture_exceeds_authorized"),  # 115 - 25 + 0.01
    (True, "0.01", "0.01", "capture_closed"),
])
def test_a_dashboard_capture_taken_back_before_its_event_still_took_its_part(
        paypal: Any, service: PaymentService, final: bool, taken: str, over: str, code: str) -> None:
    """A capture made beside paywire that PayPal took back (DENIED for a chargeback) before its
    PAYMENT.CAPTURE.COMPLETED was delivered still took its part of the authorization (PayPal does
    not reopen it), and a final one closed it (CAPTURED): its late events record it with its
    reversal, so it is not offered again."""
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    authorization = payment.references["authorization"]
    assert Dashboard(paypal.url).post(f"/v2/payments/authorizations/{authorization}/capture",
                                      {"amount": _amount(taken), "final_capture": final}) == 201
    (capture,) = paypal.app.captures
    paypal.app.deny_capture(capture)  # a chargeback, before the capture's own event came
    _deliver_all(paypal, service)
    assert service.get_payment(payment.id).capture_closed is final  # from the events alone
    service.reconcile(payment_id=payment.id)
    _refused_before_sending(paypal, service, payment.id, TransactionKind.CAPTURE,
                            lambda: service.capture(payment.id, eur(over), final=False), code)


def test_a_final_dashboard_capture_waiting_on_a_lost_capture_closes_the_capture(
        paypal: Any, service: PaymentService) -> None:
    app = paypal.app
    payment = service.authorize("paypal", eur("100.00"), source=app.vault_card(), idempotency_key=paypal.key())
    authorization = payment.references["authorization"]
    app.inject(Fault(kind="drop_after", path="/capture$"))
    with pytest.raises(OutcomeUnknown):
        service.capture(payment.id, eur("0.01"), final=False, idempotency_key=paypal.key())
    app.clear_faults()
    assert Dashboard(paypal.url).post(f"/v2/payments/authorizations/{authorization}/capture",
                                      {"amount": _amount("0.01"), "final_capture": True}) == 201
    _deliver_all(paypal, service)  # both captures' events wait for the lost one
    sent = paypal.calls("/capture", "POST")
    try:
        service.capture(payment.id, eur("0.01"), final=False, idempotency_key=paypal.key())
    except StateError as refused:
        assert (refused.code, paypal.calls("/capture", "POST")) == ("capture_closed", sent), refused
        return
    raise AssertionError("a capture was sent to an authorization PayPal closed (AUTHORIZATION_ALREADY_CAPTURED)")


def _deliver_about(paypal: Any, service: PaymentService, capture: str, event_types: tuple[str, ...]) -> None:
    """Each of PayPal's events of `event_types` about `capture`, in that order, delivered twice."""
    for event_type in event_types:
        for event in [e for e in paypal.app.events if e["event_type"] == event_type and e["resource"]["id"] == capture]:
            body, headers = paypal.app.signed_event(event)
            for _ in range(2):
                service.receive_webhook("paypal", headers, body)


def _taken_back_once(service: PaymentService, payment_id: str, capture: str, origin: str = "webhook") -> None:
    """The ledger holds the capture once (made beside paywire, as its events, or a reading of
    PayPal's list before them, record such one), and its reversal once."""
    held = [t for t in service.list_transactions(payment_id) if t.provider_reference == capture]
    assert [(t.kind, t.origin, t.status, t.amount, t.parent_id) for t in held] == [
        (TransactionKind.CAPTURE, origin, "succeeded", eur("25.00"), None)]
    reversals = [t for t in service.list_transactions(payment_id) if t.kind == TransactionKind.REVERSAL]
    assert [(t.parent_id, t.amount) for t in reversals] == [(held[0].id, eur("25.00"))]


@pytest.mark.parametrize("event_types", [
    ("PAYMENT.CAPTURE.COMPLETED", "PAYMENT.CAPTURE.DENIED"),
    ("PAYMENT.CAPTURE.DENIED", "PAYMENT.CAPTURE.COMPLETED"),
], ids=["completed-first", "denied-first"])
def test_a_dashboard_capture_taken_back_before_its_event_is_recorded_once(
        paypal: Any, service: PaymentService, event_types: tuple[str, ...]) -> None:
    """Whichever of its events comes first, each delivered twice, the capture PayPal took back is
    recorded once with its reversal; the payment counts it neither captured nor refunded, before
    and after reconcile, and offers what PayPal still lets be captured (the authorization less
    what the capture took of it), no more."""
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    authorization = payment.references["authorization"]
    assert Dashboard(paypal.url).post(f"/v2/payments/authorizations/{authorization}/capture",
                                      {"amount": _amount("25.00"), "final_capture": False}) == 201
    (capture,) = paypal.app.captures
    paypal.app.deny_capture(capture)
    _deliver_about(paypal, service, capture, event_types)
    _taken_back_once(service, payment.id, capture)
    totals = (eur("100.00"), eur("0.00"), eur("0.00"))
    later = service.get_payment(payment.id)
    assert (later.authorized, later.captured, later.refunded) == totals
    service.reconcile(payment_id=payment.id)
    _deliver_about(paypal, service, capture, event_types)  # redelivered after reconcile
    _taken_back_once(service, payment.id, capture)
    later = service.get_payment(payment.id)
    assert (later.authorized, later.captured, later.refunded) == totals
    _refused_before_sending(paypal, service, payment.id, TransactionKind.CAPTURE,
                            lambda: service.capture(payment.id, eur("75.01"), final=False),
                            "capture_exceeds_authorized")
    assert service.capture(payment.id, eur("75.00"), idempotency_key=paypal.key()).captured == eur("75.00")


def test_a_taken_back_dashboard_capture_counted_by_a_reading_is_not_counted_twice(
        paypal: Any, service: PaymentService) -> None:
    """A reading counted the dashboard's capture in PayPal's totals (and recorded it from PayPal's
    list) before PayPal took it back: its reversal recorded from its late events, it comes off
    those totals once, and the service's own capture and refund stand, before and after reconcile
    reads PayPal again."""
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    authorization = payment.references["authorization"]
    own = service.capture(payment.id, eur("10.00"), final=False, idempotency_key=paypal.key())
    service.refund(payment.id, eur("4.00"), idempotency_key=paypal.key())
    assert Dashboard(paypal.url).post(f"/v2/payments/authorizations/{authorization}/capture",
                                      {"amount": _amount("25.00"), "final_capture": False}) == 201
    service.reconcile(payment_id=payment.id)  # PayPal's totals: 35.00 captured, 4.00 refunded
    assert (service.get_payment(payment.id).captured, service.get_payment(payment.id).refunded) == (
        eur("35.00"), eur("4.00"))
    (capture,) = [c for c in paypal.app.captures if c != own.references["capture"]]
    paypal.app.deny_capture(capture)
    _deliver_all(paypal, service)
    _taken_back_once(service, payment.id, capture, origin="reconcile")
    for _ in range(2):
        later = service.get_payment(payment.id)
        assert (later.authorized, later.captured, later.refunded) == (eur("100.00"), eur("10.00"), eur("4.00"))
        service.reconcile(payment_id=payment.id)
    sent = paypal.calls("/capture", "POST")
    with pytest.raises(StateError) as refused:
        service.capture(payment.id, eur("65.01"), final=False)  # 100 - 10 - 25 + 0.01
    assert (refused.value.code, paypal.calls("/capture", "POST")) == ("capture_exceeds_authorized", sent)


@pytest.mark.parametrize("read_first", [False, True], ids=["events only", "read by reconcile first"])
def test_a_capture_reversed_before_its_event_is_not_offered_to_refund(
        paypal: Any, service: PaymentService, read_first: bool) -> None:
    """A dashboard capture is charged back, and its reversal's event comes before its own: the
    refund recorded names the capture only by what the event said (no parent). Once the capture
    is recorded, that refund is counted against it, so the next refund goes to the service's own
    capture, which has the money. Read by reconcile first (its events not delivered), the capture
    is recorded from PayPal's list, and the refund is its own from the start."""
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    authorization = payment.references["authorization"]
    own = service.capture(payment.id, eur("10.00"), final=False, idempotency_key=paypal.key())
    assert Dashboard(paypal.url).post(f"/v2/payments/authorizations/{authorization}/capture",
                                      {"amount": _amount("10.00"), "final_capture": False}) == 201
    if read_first:
        service.reconcile(payment_id=payment.id)
    (beside,) = [c for c in paypal.app.captures.values() if c.id != own.references["capture"]]
    paypal.app.reverse_capture(beside.id)  # a chargeback: PayPal refunds all of it
    for event_type in ("PAYMENT.CAPTURE.REVERSED", "PAYMENT.CAPTURE.COMPLETED"):  # the reversal's first
        for event in [e for e in paypal.app.events if e["event_type"] == event_type]:
            body, headers = paypal.app.signed_event(event)
            service.receive_webhook("paypal", headers, body)
    later = service.get_payment(payment.id)
    assert (later.captured, later.refunded) == (eur("20.00"), eur("10.00"))
    try:
        refunded = service.refund(payment.id, eur("10.00"), idempotency_key=paypal.key())
    except PaywireError as error:  # sent to the reversed capture: PayPal refuses it
        raise AssertionError(f"PayPal refused the refund the service sent: {error!r}") from error
    assert refunded.refunded == eur("20.00")  # sent to the service's own capture, which PayPal refunds


def test_a_refund_is_not_sent_to_a_capture_paypal_took_back(paypal: Any, service: PaymentService) -> None:
    """Money known only from PayPal's totals (a dashboard capture whose event waits for a lost
    capture of the service's own) is refunded by acting on the payment, which goes to the
    payment's latest capture: here one PayPal took back (DENIED for a chargeback, its reversal
    recorded). No capture the ledger holds has the money, so the refund is refused before
    anything is sent, until reconcile names one."""
    app = paypal.app
    payment = service.authorize("paypal", eur("100.00"), source=app.vault_card(), idempotency_key=paypal.key())
    authorization = payment.references["authorization"]
    assert Dashboard(paypal.url).post(f"/v2/payments/authorizations/{authorization}/capture",
                                      {"amount": _amount("10.00"), "final_capture": False}) == 201
    service.reconcile(payment_id=payment.id)  # the dashboard's capture known by PayPal's totals only
    own = service.capture(payment.id, eur("10.00"), final=False, idempotency_key=paypal.key())
    app.deny_capture(own.references["capture"])  # a chargeback of the service's capture
    app.inject(Fault(kind="drop_after", path="/capture$"))
    with pytest.raises(OutcomeUnknown):
        service.capture(payment.id, eur("10.00"), final=False, idempotency_key=paypal.key())
    app.clear_faults()
    _deliver_all(paypal, service)  # the captures' events wait for the lost one; the denial applies
    sent = paypal.calls("/refund", "POST")
    try:
        service.refund(payment.id, eur("10.00"), idempotency_key=paypal.key())
    except StateError as error:
        assert paypal.calls("/refund", "POST") == sent, error  # refused before sending
        assert error.code == "capture_taken_back", error
        return
    except PaywireError as error:  # sent to the capture PayPal took back
        raise AssertionError(f"PayPal refused the refund the service sent: {error!r}") from error


def test_a_failed_dashboard_refund_keeps_the_refunded_floor(paypal: Any, service: PaymentService) -> None:
    """A dashboard refund PayPal held pending, recorded accepted by reconcile beside the refunded
    total it read (PayPal's reversal of the rest), fails while a refund of the service's own is in
    flight (its answer lost, PayPal refused it). That total was read while the refund was pending,
    so it never counted it: the floor stands, and only the 25.00 the failure gave back is offered,
    though the reversal's own event has not come."""
    app = paypal.app
    payment_id = _approved(paypal, service, "sale", "refund_pending")
    capture = service.get_payment(payment_id).references["capture"]
    assert Dashboard(paypal.url).post(f"/v2/payments/captures/{capture}/refund", {"amount": _amount("25.00")}) == 201
    (pending,) = app.refunds
    app.reverse_capture(capture)  # a chargeback: PayPal refunds the 75.00 left
    app.inject(Fault(kind="drop_after", path="/refund$"))
    with pytest.raises(OutcomeUnknown):
        service.refund(payment_id, eur("0.01"), idempotency_key=paypal.key())  # PayPal refuses it: 0.00 left
    app.clear_faults()
    service.reconcile(payment_id=payment_id)
    assert service.get_payment(payment_id).refunded == eur("75.00")
    app.settle_refund(pending, "FAILED")  # PayPal gives the 25.00 back: 25.00 is left to refund
    (failed,) = [e for e in app.events if e["event_type"] == "PAYMENT.REFUND.FAILED"]
    body, headers = app.signed_event(failed)  # delivered before the reversal's event
    service.receive_webhook("paypal", headers, body)
    sent = paypal.calls("/refund", "POST")
    with pytest.raises(StateError) as refused:
        service.refund(payment_id, eur("25.01"), idempotency_key=paypal.key())
    assert refused.value.code == "refund_exceeds_captured", refused.value
    assert paypal.calls("/refund", "POST") == sent


def test_a_pending_dashboard_refund_is_held_when_reconciled_beside_a_lost_refund(
        paypal: Any, service: PaymentService) -> None:
    """Reconciled while a refund of the service's own is in flight without its id (its answer lost,
    PayPal refused it), a dashboard refund PayPal holds pending, of another amount, cannot be that
    one: it is recorded accepted, so what it holds is not offered."""
    app = paypal.app
    payment_id = _approved(paypal, service, "sale", "refund_pending")
    capture = service.get_payment(payment_id).references["capture"]
    assert Dashboard(paypal.url).post(f"/v2/payments/captures/{capture}/refund", {"amount": _amount("25.00")}) == 201
    app.reverse_capture(capture)  # a chargeback: PayPal refunds the 75.00 left, the pending 25.00 holds the rest
    app.inject(Fault(kind="drop_after", path="/refund$"))
    with pytest.raises(OutcomeUnknown):
        service.refund(payment_id, eur("0.01"), idempotency_key=paypal.key())  # PayPal refuses it: 0.00 left
    app.clear_faults()
    service.reconcile(payment_id=payment_id)
    sent = paypal.calls("/refund", "POST")
    with pytest.raises(StateError) as refused:
        service.refund(payment_id, eur("0.01"), idempotency_key=paypal.key())
    assert refused.value.code == "refund_exceeds_captured", refused.value
    assert paypal.calls("/refund", "POST") == sent
