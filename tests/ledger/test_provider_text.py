"""What a provider answers is recorded on both backends, whatever text of the request it echoes."""

from __future__ import annotations

import pytest

from paywire import Gateway, InvalidRequest, Money, PaymentService, Plugins, Retry
from paywire.ledger import Ledger, TransactionStatus
from paywire.testing.emulator import EmulatorServer
from paywire.testing.sandbox import load_sandbox

# PayPal's refusals repeat what they were sent; the core package's own session installs no plugin.
paywire_paypal = pytest.importorskip("paywire_paypal", reason="needs the PayPal plugin (the all session has it)")


@pytest.mark.parametrize(("sent", "kept"), [("x\x00", "x\\x00"), ("x\udc80", "x\\udc80")], ids=["nul", "lone_surrogate"])
def test_a_refusal_echoing_text_no_ledger_column_takes_is_recorded_failed(ledger: Ledger, sent: str, kept: str) -> None:
    """PayPal's refusal of an unknown payment source names it as sent. A NUL: PostgreSQL refused
    the error message's row. A lone surrogate (JSON carries it escaped): neither ledger could
    encode it. Either way the answer went unrecorded, the transaction stayed pending and the
    caller got a bare ValueError or UnicodeEncodeError; the text is now kept written out."""
    sandbox = load_sandbox(paywire_paypal.PAYPAL)
    plugins = Plugins()
    plugins.register(paywire_paypal)
    with EmulatorServer(sandbox.app) as server, Gateway([sandbox.method("paypal", server.url)], plugins=plugins,
                                                        retry=Retry.never()) as gateway:
        service = PaymentService(gateway, ledger)
        with pytest.raises(InvalidRequest) as refused:
            service.authorize("paypal", Money(1000, "USD"), source=sandbox.sources["ok"],
                              options={"vault_source": sent})
    txn = service.get_transaction(refused.value.transaction_id or "")
    assert txn.status == TransactionStatus.FAILED and txn.error_message is not None
    assert sent not in txn.error_message and f"{kept} is not supported" in txn.error_message
    assert service.get_payment(txn.payment_id or "").state == "failed"
