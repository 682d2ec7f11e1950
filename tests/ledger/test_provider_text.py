"""What a provider answers is recorded on both backends, whatever text of the request it echoes."""

from __future__ import annotations

import pytest

import paywire_paypal
from paywire import Gateway, InvalidRequest, Money, PaymentService, Plugins, Retry
from paywire.ledger import Ledger, TransactionStatus
from paywire.testing.emulator import EmulatorServer
from paywire.testing.sandbox import load_sandbox


def test_a_refusal_echoing_a_nul_is_recorded_failed(ledger: Ledger) -> None:
    """PayPal's refusal of an unknown payment source names it, NUL and all: PostgreSQL refused
    the error message's row, so the answer went unrecorded, the transaction stayed pending and
    the caller got a bare ValueError."""
    sandbox = load_sandbox(paywire_paypal.PAYPAL)
    plugins = Plugins()
    plugins.register(paywire_paypal)
    with EmulatorServer(sandbox.app) as server, Gateway([sandbox.method("paypal", server.url)], plugins=plugins,
                                                        retry=Retry.never()) as gateway:
        service = PaymentService(gateway, ledger)
        with pytest.raises(InvalidRequest) as refused:
            service.authorize("paypal", Money(1000, "USD"), source=sandbox.sources["ok"],
                              options={"vault_source": "x\x00"})
    txn = service.get_transaction(refused.value.transaction_id or "")
    assert txn.status == TransactionStatus.FAILED and txn.error_message is not None
    assert "\x00" not in txn.error_message and "x\\x00 is not supported" in txn.error_message
    assert service.get_payment(txn.payment_id or "").state == "failed"


def test_a_refusal_echoing_a_lone_surrogate_is_recorded_failed(ledger: Ledger) -> None:
    """Options are sent as JSON, which escapes a lone surrogate; PayPal's refusal echoes it back,
    and neither ledger could encode its error message: the transaction stayed pending and the
    caller got a bare UnicodeEncodeError."""
    sandbox = load_sandbox(paywire_paypal.PAYPAL)
    plugins = Plugins()
    plugins.register(paywire_paypal)
    with EmulatorServer(sandbox.app) as server, Gateway([sandbox.method("paypal", server.url)], plugins=plugins,
                                                        retry=Retry.never()) as gateway:
        service = PaymentService(gateway, ledger)
        with pytest.raises(InvalidRequest) as refused:
            service.authorize("paypal", Money(1000, "USD"), source=sandbox.sources["ok"],
                              options={"vault_source": "x\udc80"})
    txn = service.get_transaction(refused.value.transaction_id or "")
    assert txn.status == TransactionStatus.FAILED and txn.error_message is not None
    assert "x\\udc80 is not supported" in txn.error_message
    assert service.get_payment(txn.payment_id or "").state == "failed"
