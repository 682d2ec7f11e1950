"""PayPal's limit on the number of captures of one authorization (MAX_CAPTURE_COUNT_EXCEEDED, set
per account) through the payment service: a definite refusal, recorded failed, nothing claimed,
and the payment as PayPal holds it. Real emulator on loopback."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import Money, PaymentService, SQLiteLedger, StateError
from paywire.ledger import TransactionStatus


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def test_a_capture_past_the_accounts_count_is_refused_and_the_ledger_stays_at_paypals(
    serve_paypal: Any, emulator: Any, tmp_path: Any
) -> None:
    paypal = serve_paypal(emulator(max_captures=2))
    with SQLiteLedger(str(tmp_path / "ledger.db")) as ledger:
        service = PaymentService(paypal.gateway, ledger)
        payment = service.authorize(
            "paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key()
        )
        service.capture(payment.id, eur("10.00"), final=False, idempotency_key=paypal.key())
        service.capture(payment.id, eur("20.00"), final=False, idempotency_key=paypal.key())
        with pytest.raises(StateError) as refused:
            service.capture(payment.id, eur("30.00"), final=False, idempotency_key=paypal.key())
        assert refused.value.code == "MAX_CAPTURE_COUNT_EXCEEDED" and not refused.value.retryable
        refused_txn = service.get_transaction(refused.value.transaction_id or "")
        assert refused_txn.status == TransactionStatus.FAILED
        later = service.get_payment(payment.id)
        held = paypal.run("fetch", reference=later.reference)
        assert (later.captured, later.state) == (eur("30.00"), "partially_captured")
        assert (later.captured, later.state) == (held.captured, held.state)
        assert not service.reconcile(payment_id=payment.id).mismatches
