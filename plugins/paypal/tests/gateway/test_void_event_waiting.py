"""An authorization voided beside paywire (PayPal's dashboard) while a capture of the service's
own, whose answer was lost, is in flight: PAYMENT.AUTHORIZATION.VOIDED waits for that capture
(it may have taken part of the authorization before the void, which then released only the
rest). Either way PayPal takes no further capture of a voided authorization
(AUTHORIZATION_VOIDED), so the service refuses one before sending it while the event waits; once
reconciled, the ledger holds what PayPal does. Real emulator on loopback."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import Money, OutcomeUnknown, PaymentService, StateError
from paywire.testing.emulator import Fault

from .conftest import deliver_about
from .test_ledger_follows_paypal import Dashboard


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


@pytest.mark.parametrize("first", ["capture", "void"])
def test_no_capture_is_sent_while_a_void_event_waits_for_a_lost_capture(
        paypal: Any, service: PaymentService, first: str) -> None:
    app = paypal.app
    payment = service.authorize("paypal", eur("100.00"), source=app.vault_card(), idempotency_key=paypal.key())
    authorization = payment.references["authorization"]

    def void() -> None:
        assert Dashboard(paypal.url).post(f"/v2/payments/authorizations/{authorization}/void", {}) in (200, 204)

    if first == "void":
        void()
    app.inject(Fault(kind="drop_after", path="/capture$"))  # taken (or refused as voided), the answer lost
    with pytest.raises(OutcomeUnknown):
        service.capture(payment.id, eur("10.00"), final=False, idempotency_key=paypal.key())
    app.clear_faults()
    if first == "capture":
        void()
    deliver_about(paypal, service, "PAYMENT.AUTHORIZATION.VOIDED", authorization)

    sent = paypal.calls("/capture", "POST")
    with pytest.raises(StateError) as refused:
        service.capture(payment.id, eur("20.00"), final=False, idempotency_key=paypal.key())
    assert refused.value.code == "void_in_flight" and "reconcile" in str(refused.value)
    assert paypal.calls("/capture", "POST") == sent  # nothing was sent

    service.reconcile(payment_id=payment.id)
    later = service.get_payment(payment.id)
    assert later.captured == (eur("10.00") if first == "capture" else eur("0.00"))
    assert later.capturable == eur("0.00")
