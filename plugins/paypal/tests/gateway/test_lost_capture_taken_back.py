"""A capture or sale whose answer was lost, and whose capture PayPal then took back (a chargeback:
DENIED with reason CHARGEBACK): it took effect, so its retry under the same key (PayPal answers
with the capture as it is now) must not record it failed; the ledger records it and then its
reversal, as PayPal holds it."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import Money, OutcomeUnknown, PaymentService
from paywire.ledger import TransactionStatus
from paywire.testing.emulator import Fault


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


@pytest.mark.parametrize("flow", ["capture", "sale"])
def test_a_lost_request_whose_capture_paypal_took_back_is_not_recorded_failed_on_retry(
    paypal: Any, service: PaymentService, flow: str
) -> None:
    source = paypal.app.vault_card()
    if flow == "sale":
        paypal.app.inject(Fault(kind="drop_after", path="/v2/checkout/orders$"))
        with pytest.raises(OutcomeUnknown) as raised:
            service.sale("paypal", eur("30.00"), source=source, idempotency_key=paypal.key())
    else:
        payment = service.authorize("paypal", eur("100.00"), source=source, idempotency_key=paypal.key())
        paypal.app.inject(Fault(kind="drop_after", path="/capture$"))
        with pytest.raises(OutcomeUnknown) as raised:
            service.capture(payment.id, eur("30.00"), final=False, idempotency_key=paypal.key())
    (capture,) = paypal.app.captures.values()
    paypal.app.deny_capture(capture.id)
    lost = service.get_transaction(raised.value.transaction_id or "")
    service.retry(lost.id)
    service.reconcile(payment_id=lost.payment_id)
    assert service.get_transaction(lost.id).status == TransactionStatus.SUCCEEDED
    assert service.get_payment(lost.payment_id).captured == eur("0.00")
    assert any(t.kind == "reversal" for t in service.list_transactions(lost.payment_id))
    assert service.reconcile(payment_id=lost.payment_id).clean
