"""A capture made in PayPal's dashboard, final, whose own event never came: reconciliation records
it from the order's captures (origin "reconcile"; the list says nothing of finality), and PayPal
reverses it later (a chargeback decided for the buyer), announced only by
PAYMENT.CAPTURE.REVERSED, whose resource is the refund that undid it. The final capture took the
authorization (PayPal holds it CAPTURED, and a reversal does not reopen it): the ledger offers
nothing more to capture, before and after the reversal, and nothing is sent. A capture that was
not final leaves the rest to capture, the reversal too. On both ledgers, against PayPal's emulator."""

from __future__ import annotations

import pytest

from paywire import Gateway, Money, PaymentService, StateError, Subject
from paywire.ledger import Ledger
from paywire.testing.sandbox import Sandbox

# The core package's own session installs no plugin.
paywire_paypal = pytest.importorskip("paywire_paypal", reason="needs the PayPal plugin (the all session has it)")


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def _deliver_twice(sandbox: Sandbox, service: PaymentService, event_type: str) -> list[str]:
    event = next(e for e in reversed(sandbox.app.events) if e["event_type"] == event_type)
    body, headers = sandbox.app.signed_event(event)
    return [service.receive_webhook("paypal", headers, body).status for _ in range(2)]


def _captures_sent(sandbox: Sandbox) -> int:
    return sum(1 for verb, path in sandbox.app.calls if verb == "POST" and path.endswith("/capture"))


def _refused(sandbox: Sandbox, service: PaymentService, payment_id: str, code: str) -> None:
    sent = _captures_sent(sandbox)
    with pytest.raises(StateError) as refused:
        service.capture(payment_id, eur("0.01"), final=False)
    assert refused.value.code == code, refused.value
    assert _captures_sent(sandbox) == sent  # refused before sending


@pytest.mark.parametrize("final", [True, False])
def test_a_listed_dashboard_capture_reversed_later_leaves_capture_as_paypal_holds_it(
        paypal: tuple[Sandbox, Gateway], ledger: Ledger, final: bool) -> None:
    sandbox, gateway = paypal
    service = PaymentService(gateway, ledger)
    payment = service.authorize("paypal", eur("100.00"), source=sandbox.sources["ok"])
    authorization = payment.references["authorization"]
    made = gateway.execute("paypal", "capture", Subject(reference=authorization, amount=eur("30.00"), final=final))
    assert service.reconcile(payment_id=payment.id).clean  # its event never came
    (listed,) = [t for t in service.list_transactions(payment.id) if t.kind == "capture"]
    assert (listed.provider_reference, listed.origin, listed.status) == (made.reference, "reconcile", "succeeded")
    assert service.get_payment(payment.id).capture_closed is final  # PayPal's reading: CAPTURED, or not
    if final:
        _refused(sandbox, service, payment.id, "capture_closed")

    sandbox.app.reverse_capture(made.reference or "")
    assert _deliver_twice(sandbox, service, "PAYMENT.CAPTURE.REVERSED") == ["applied", "duplicate"]
    reversed_ = service.get_payment(payment.id)
    assert (reversed_.captured, reversed_.refunded, reversed_.capture_closed) == (eur("30.00"), eur("30.00"), final)
    if final:  # all it captured refunded, and nothing left to capture: the payment is done
        assert reversed_.state == "refunded"
        _refused(sandbox, service, payment.id, "payment_final")
    else:
        assert service.capture(payment.id, eur("70.00"), final=True).captured == eur("100.00")
    report = service.reconcile(payment_id=payment.id)  # PayPal's reading agrees
    assert report.clean and not report.mismatches, report
    assert service.get_payment(payment.id).capture_closed
