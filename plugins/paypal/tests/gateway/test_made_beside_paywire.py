"""A capture or refund made beside paywire (PayPal's dashboard, another integration), which
reconciliation reads as PayPal's totals before the shop's own next capture or refund: the ledger
holds those totals as floors, with no transaction of its own for them, so its own operation's
success cannot be added to them. The service reads PayPal after it, and the ledger claims what
PayPal holds: no more left to capture or refund than PayPal has."""

from __future__ import annotations

from paywire import Money
from paywire.testing.emulator import Fault


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def _same_as_paypal(paypal, service, payment_id):
    payment = service.get_payment(payment_id)
    held = paypal.run("fetch", reference=payment.reference)
    assert (payment.authorized, payment.captured, payment.refunded, payment.state) == (
        held.authorized, held.captured, held.refunded, held.state)
    return payment


def test_a_capture_after_one_made_beside_paywire_leaves_what_paypal_has_left_to_capture(paypal, service):
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    paypal.run("capture", reference=payment.references["authorization"], amount=eur("40.00"), final=False,
               idempotency_key=paypal.key())
    service.reconcile(payment_id=payment.id)
    assert service.get_payment(payment.id).captured == eur("40.00")
    service.capture(payment.id, eur("60.00"), final=False, idempotency_key=paypal.key())
    payment = _same_as_paypal(paypal, service, payment.id)
    assert (payment.captured, payment.capturable) == (eur("100.00"), eur("0.00"))


def test_a_refund_after_one_made_beside_paywire_leaves_what_paypal_has_left_to_refund(paypal, service):
    payment = service.sale("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    paypal.run("refund", reference=payment.references["capture"], amount=eur("10.00"))  # no key, no custom_id
    service.reconcile(payment_id=payment.id)
    assert service.get_payment(payment.id).refunded == eur("10.00")
    service.refund(payment.id, eur("20.00"), idempotency_key=paypal.key())
    payment = _same_as_paypal(paypal, service, payment.id)
    assert (payment.refunded, payment.refundable) == (eur("30.00"), eur("70.00"))


def test_when_that_read_fails_the_payment_owes_it_and_reconcile_makes_it(paypal, service):
    payment = service.sale("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    paypal.run("refund", reference=payment.references["capture"], amount=eur("10.00"))
    service.reconcile(payment_id=payment.id)
    paypal.app.inject(Fault(kind="status", status=503, method="GET", path=r"^/v2/checkout/orders/", times=10))
    service.refund(payment.id, eur("20.00"), idempotency_key=paypal.key())
    assert payment.id in service.ledger.owed_reads(payment_id=payment.id)
    paypal.app.clear_faults()
    assert service.reconcile().caught_up == (payment.id,)
    payment = _same_as_paypal(paypal, service, payment.id)
    assert payment.refundable == eur("70.00")


def test_a_capture_made_beside_paywire_that_paypal_denied_moved_nothing_and_its_event_waits_for_nothing(
        paypal, service):
    """PAYMENT.CAPTURE.DENIED names a capture no answer or event will ever record (it moved no
    money): applied, it changes nothing. It used to wait for that capture forever."""
    payment = service.authorize("paypal", eur("30.00"), source="paypal", return_url="https://shop.example/return")
    paypal.app.approve(payment.reference, "pending")
    payment = service.complete(payment.id)
    beside = paypal.run("capture", reference=payment.references["authorization"], amount=eur("20.00"),
                        final=False, idempotency_key=paypal.key())
    paypal.app.settle_capture(beside.reference, "DECLINED")
    paypal.deliver(service, "PAYMENT.CAPTURE.DENIED")
    (event,) = [e for e in service.ledger.list_events() if e.type == "PAYMENT.CAPTURE.DENIED"]
    assert (event.status, event.payment_id) == ("applied", payment.id)
    after = service.get_payment(payment.id)
    assert (after.authorized, after.captured, after.state) == (eur("30.00"), eur("0.00"), payment.state)
