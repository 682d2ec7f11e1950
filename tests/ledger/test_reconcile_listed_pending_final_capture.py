"""A final capture made in PayPal's dashboard that PayPal holds PENDING (the payer's funding is
reviewed), read by reconciliation before its event came: recorded from the order's captures
(origin "reconcile") as the final capture PayPal says it is (`final_capture`), in flight. PayPal
takes no further capture of the authorization meanwhile, so the ledger offers none and sends
nothing. Completed (its event delivered twice, or read by reconciliation), capture stays closed;
declined, PayPal takes nothing of the authorization and it takes captures again (a DECLINED
capture moved nothing), and so does the ledger. On both ledgers, against PayPal's emulator."""

from __future__ import annotations

import pytest

from paywire import Gateway, Money, PaymentService, StateError, Subject
from paywire.ledger import Ledger
from paywire.testing.sandbox import Sandbox

# The core package's own session installs no plugin.
paywire_paypal = pytest.importorskip("paywire_paypal", reason="needs the PayPal plugin (the all session has it)")


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def _captures_sent(sandbox: Sandbox) -> int:
    return sum(1 for verb, path in sandbox.app.calls if verb == "POST" and path.endswith("/capture"))


@pytest.mark.parametrize("decided_by", ["event", "reconcile"])
@pytest.mark.parametrize("status", ["COMPLETED", "DECLINED"])
def test_a_listed_pending_final_capture_closes_capture_until_paypal_declines_it(
        paypal: tuple[Sandbox, Gateway], ledger: Ledger, status: str, decided_by: str) -> None:
    sandbox, gateway = paypal
    service = PaymentService(gateway, ledger)
    payment = service.authorize("paypal", eur("100.00"), source=sandbox.app.vault_paypal(payer="pending"))
    authorization = payment.references["authorization"]
    made = gateway.execute("paypal", "capture", Subject(reference=authorization, amount=eur("0.01"), final=True))
    assert made.reference and sandbox.app.captures[made.reference].status == "PENDING"
    service.reconcile(payment_id=payment.id)  # its event never came
    (listed,) = [t for t in service.list_transactions(payment.id) if t.kind == "capture"]
    assert (listed.provider_reference, listed.origin, listed.status) == (made.reference, "reconcile", "accepted")

    sent = _captures_sent(sandbox)
    with pytest.raises(StateError) as refused:  # PayPal takes nothing more after a final capture
        service.capture(payment.id, eur("99.99"), final=True)
    assert refused.value.code == "capture_closed", refused.value
    assert _captures_sent(sandbox) == sent  # refused before sending

    sandbox.app.settle_capture(made.reference, status)
    if decided_by == "event":
        event = next(e for e in reversed(sandbox.app.events) if e["event_type"].startswith("PAYMENT.CAPTURE.")
                     and e["resource"]["id"] == made.reference)
        body, headers = sandbox.app.signed_event(event)
        assert [service.receive_webhook("paypal", headers, body).status for _ in range(2)] == ["applied", "duplicate"]
    else:
        service.reconcile(payment_id=payment.id)
    (decided,) = [t for t in service.list_transactions(payment.id) if t.kind == "capture"]
    assert decided.status == ("succeeded" if status == "COMPLETED" else "failed")

    if status == "COMPLETED":
        assert service.get_payment(payment.id).capture_closed
        with pytest.raises(StateError) as closed:
            service.capture(payment.id, eur("99.99"), final=True)
        assert closed.value.code == "capture_closed", closed.value
        assert _captures_sent(sandbox) == sent
        assert service.get_payment(payment.id).captured == eur("0.01")
    else:  # the authorization takes captures again, all of it: PayPal moved nothing
        assert sandbox.app.authorizations[authorization].status == "CREATED"
        assert not service.get_payment(payment.id).capture_closed
        service.capture(payment.id, eur("100.00"), final=True)  # sent: PayPal holds it PENDING too
        assert _captures_sent(sandbox) == sent + 1
        (again,) = [t for t in service.list_transactions(payment.id) if t.kind == "capture" and t.id != decided.id]
        assert again.status == "accepted" and again.provider_reference
        sandbox.app.settle_capture(again.provider_reference, "COMPLETED")
    report = service.reconcile(payment_id=payment.id)  # PayPal's reading agrees
    assert report.clean and not report.mismatches, report
    final = service.get_payment(payment.id)
    assert final.capture_closed and final.captured == eur("0.01" if status == "COMPLETED" else "100.00")
