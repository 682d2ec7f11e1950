"""A capture or sale whose answer was lost, and whose capture PayPal then took back (a chargeback:
DENIED with reason CHARGEBACK): it took effect, so its retry under the same key (PayPal answers
with the capture as it is now) must not record it failed; the ledger records it and then its
reversal, as PayPal holds it."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import Money, OutcomeUnknown, PaymentService, SQLiteLedger
from paywire.ledger import TransactionStatus
from paywire.testing.emulator import Fault
from tests.ledger.support import step_past_life


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


def test_a_lost_capture_paypal_took_back_is_recorded_taken_back_by_reconciliation(
    paypal: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Every answer read however loaded the machine (generous timeouts): the capture is lost by a
    # fault, and the ledger's clock is stepped past its life instead of waiting it out.
    with SQLiteLedger(str(tmp_path / "taken-back.db")) as ledger:
        service = PaymentService(paypal.gateway, ledger)
        payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(),
                                    idempotency_key=paypal.key())
        paypal.app.inject(Fault(kind="drop_after", path="/capture$"))
        with pytest.raises(OutcomeUnknown) as raised:
            service.capture(payment.id, eur("30.00"), final=False, idempotency_key=paypal.key())
        (capture,) = paypal.app.captures.values()  # made before its answer was dropped
        paypal.app.deny_capture(capture.id)
        step_past_life(service, [raised.value.transaction_id or ""], monkeypatch)
        report = service.reconcile(payment_id=payment.id)
        assert service.get_transaction(raised.value.transaction_id or "").status == TransactionStatus.SUCCEEDED, report
        (reversal,) = [t for t in service.list_transactions(payment.id) if t.kind == "reversal"]
        assert (reversal.parent_id, reversal.amount) == (raised.value.transaction_id, eur("30.00"))
        later = service.get_payment(payment.id)
        assert (later.authorized, later.captured) == (eur("100.00"), eur("0.00"))
        assert report.clean, report
        assert service.reconcile(payment_id=payment.id).clean  # and nothing is undone twice
        assert len([t for t in service.list_transactions(payment.id) if t.kind == "reversal"]) == 1
