"""Captures made in PayPal's dashboard whose events were not delivered, read by reconcile from the
order's captures: each that is provably none of the ledger's is recorded as a succeeded capture of
origin "reconcile" with its own id and amount, so each refund goes to a capture that holds it (PayPal
refunds one capture at a time), and the capture's late events apply to it once. A listed capture
that may be one of the service's own whose answer was lost is not recorded so: PayPal's captured
total counts it. Real emulator on loopback, the service on SQLite."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import Money, OutcomeUnknown, PaymentService
from paywire.ledger import EventStatus, TransactionKind
from paywire.testing.emulator import Fault
from paywire.testing.ledger_checks import reconciled_again_changes_nothing

from .test_ledger_follows_paypal import Dashboard


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def _captures(service: PaymentService, payment_id: str) -> list[Any]:
    return [t for t in service.list_transactions(payment_id) if t.kind == TransactionKind.CAPTURE]


def _as_paypal_holds(paypal: Any, service: PaymentService, payment_id: str) -> None:
    payment = service.get_payment(payment_id)
    held = paypal.run("fetch", reference=payment.reference)
    assert (payment.authorized, payment.captured, payment.refunded) == (held.authorized, held.captured, held.refunded)


def test_each_refund_goes_to_a_dashboard_capture_that_holds_it_and_late_events_apply_once(
        paypal: Any, service: PaymentService) -> None:
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    authorization = payment.references["authorization"]
    dashboard = Dashboard(paypal.url)
    made = {dashboard.capture(paypal.app, authorization, amount, final=False): eur(amount)
            for amount in ("30.00", "20.00")}
    assert service.reconcile(payment_id=payment.id).clean  # no event delivered
    recorded = {t.provider_reference: t for t in _captures(service, payment.id)}
    assert {ref: (t.origin, t.status, t.amount) for ref, t in recorded.items()} == {
        ref: ("reconcile", "succeeded", amount) for ref, amount in made.items()}
    for amount in ("30.00", "20.00"):  # each to the capture that holds it, which PayPal refunds
        service.refund(payment.id, eur(amount), idempotency_key=paypal.key())
    refunds = [t for t in service.list_transactions(payment.id) if t.kind == TransactionKind.REFUND]
    assert sorted((recorded[ref].id, amount) for ref, amount in made.items()) == sorted(
        (t.parent_id, t.amount) for t in refunds)
    assert service.get_payment(payment.id).refunded == eur("50.00")

    before = [(t.id, t.status) for t in service.list_transactions(payment.id)]
    for event in list(paypal.app.events):  # the captures' events, and the refunds', each twice
        body, headers = paypal.app.signed_event(event)
        for _ in range(2):
            service.receive_webhook("paypal", headers, body)
    assert [(t.id, t.status) for t in service.list_transactions(payment.id)] == before  # nothing counted twice
    assert not service.ledger.list_events(statuses=[EventStatus.DEFERRED], payment_id=payment.id)
    _as_paypal_holds(paypal, service, payment.id)
    assert service.reconcile(payment_id=payment.id).clean
    assert [(t.id, t.status) for t in service.list_transactions(payment.id)] == before
    reconciled_again_changes_nothing(service, payment.id)


def test_a_listed_capture_that_may_be_a_lost_one_of_the_services_is_not_recorded_as_made_beside_it(
        paypal: Any, service: PaymentService) -> None:
    """Two captures of the service's own of 20.00 whose answers were lost: PayPal made one (its
    answer dropped), the other never reached it (a 503). PayPal lists one capture of 20.00 and
    captures carry no key: which of the two it is cannot be told, so both stay open and the listed
    capture is not recorded as one made beside paywire (it is one of them): PayPal's captured total
    counts it, once."""
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    lost = []
    for fault in (Fault(kind="drop_after", path="/capture$"), Fault(kind="status", status=503, path="/capture$")):
        paypal.app.inject(fault)
        with pytest.raises(OutcomeUnknown) as unknown:
            service.capture(payment.id, eur("20.00"), final=False, idempotency_key=paypal.key())
        paypal.app.clear_faults()
        lost.append(unknown.value.transaction_id)
    assert len(paypal.app.captures) == 1
    service.reconcile(payment_id=payment.id)
    captures = _captures(service, payment.id)
    assert [t.id for t in captures] == lost and all(t.origin == "service" and t.open for t in captures)
    held = service.get_payment(payment.id)
    assert (held.captured, held.observed_captured) == (eur("20.00"), eur("20.00"))  # the floor, once
    _as_paypal_holds(paypal, service, payment.id)
