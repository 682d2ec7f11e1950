"""A transaction_settlement_declined notification that carries no status-history is read as about
a transaction that was submitted for settlement (reported done), then undone: "reversed". About
one that only waited for settlement (an accepted answer, never done), that reading records it as
taken and undone rather than failed: the safe side of the outcome model, and the ledger's totals
still never exceed what Braintree holds, before and after reconcile()."""

from __future__ import annotations

import re

import pytest

from paywire import Money, PaymentService
from paywire.ledger import TransactionStatus as S
from paywire_braintree.emulator import BraintreeEmulator
from paywire_braintree.emulator.webhooks import notification_xml, signed_form

EUR = "EUR"
_FORM = {"content-type": "application/x-www-form-urlencoded"}


def _without_history(emulator: BraintreeEmulator, transaction_id: str) -> bytes:
    with emulator.lock:
        xml = notification_xml("transaction_settlement_declined", emulator.transactions[transaction_id])
    bare = re.sub(rb"<status-history[^>]*>.*?</status-history>", b"", xml)
    assert bare != xml
    return signed_form(emulator.public_key, emulator.private_key, bare)


@pytest.mark.parametrize("operation", ["capture", "refund", "sale"])
@pytest.mark.parametrize("first", ["notified", "reconciled"])
def test_a_declined_notification_without_history_never_makes_the_ledger_claim_more(
    service: PaymentService, emulator: BraintreeEmulator, operation: str, first: str
) -> None:
    emulator.settlement = "batch"
    if operation == "capture":
        payment_id = service.authorize("braintree", Money.of("30.00", EUR), source="paywire-emulator-bank-account-nonce",
                                       order_id="h", idempotency_key="h").id
        service.capture(payment_id, Money.of("10.00", EUR), idempotency_key="op")
    elif operation == "refund":
        payment_id = service.sale("braintree", Money.of("30.00", EUR), source="paywire-emulator-refund-pending-nonce",
                                  order_id="h", idempotency_key="h").id
        emulator.settle(service.get_payment(payment_id).reference or "")
        service.refund(payment_id, Money.of("10.00", EUR), idempotency_key="op")
    else:
        payment_id = service.sale("braintree", Money.of("10.00", EUR), source="paywire-emulator-bank-account-nonce",
                                  order_id="op", idempotency_key="op").id
    (txn,) = (t for t in service.list_transactions(payment_id) if t.idempotency_key == "op")
    assert txn.status == S.ACCEPTED
    emulator.settle(txn.provider_reference or "", "SETTLEMENT_DECLINED")
    body = _without_history(emulator, txn.provider_reference or "")
    expected = {"capture": (0, 0), "refund": (3000, 0), "sale": (0, 0)}[operation]
    for step in ("notify", "reconcile") if first == "notified" else ("reconcile", "notify"):
        if step == "notify":
            service.receive_webhook("braintree", _FORM, body)
        else:
            service.reconcile(payment_id=payment_id)
        payment = service.get_payment(payment_id)
        assert (payment.captured.minor, payment.refunded.minor) == expected, step
        assert payment.authorized.minor <= {"capture": 3000, "refund": 3000, "sale": 0}[operation], step
    assert service.reconcile(payment_id=payment_id).clean
    payment = service.get_payment(payment_id)
    assert (payment.captured.minor, payment.refunded.minor) == expected
