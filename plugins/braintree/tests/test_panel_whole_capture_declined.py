"""A bank account's authorization captured whole in the Control Panel (SETTLEMENT_PENDING, of which
paywire hears nothing), then declined by the batch: its transaction_settlement_declined
notification names the authorization itself, which Braintree will capture no more of (91507:
capture takes an AUTHORIZED transaction only). Once notified, the ledger must offer no capture."""

from __future__ import annotations

from typing import Any

from paywire import Money
from paywire.testing.ledger_checks import offers_at_most

_FORM = {"content-type": "application/x-www-form-urlencoded"}


def test_a_control_panel_whole_capture_declined_leaves_nothing_to_capture_once_notified(kept: Any) -> None:
    service, app = kept
    payment = service.authorize("braintree", Money.of("100.00", "EUR"), source="paywire-emulator-bank-account-nonce",
                                idempotency_key="auth")
    reference = payment.reference or ""
    with app.lock:
        app.operations.capture({"transactionId": reference})
    app.settle(reference, "SETTLEMENT_DECLINED")
    (body,) = app.sent
    service.receive_webhook("braintree", _FORM, body)
    offers_at_most(service, payment.id, refund=None, capture=0)
