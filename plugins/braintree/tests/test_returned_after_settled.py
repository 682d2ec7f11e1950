"""An ACH sale or refund that settled can still be returned by the customer's bank: Braintree
then sends transaction_settlement_declined after transaction_settled ("may be triggered after the
transaction_settled webhook", its Transaction webhooks reference). Whichever of the two arrives
first, the ledger ends without the returned money, as reconcile() reads it. The emulator's
`bank_return` is that return; it refuses a transaction that has not settled."""

from __future__ import annotations

import pytest
from graphql import GraphQLError

from paywire import Money, PaymentService
from paywire.ledger import TransactionStatus as S
from paywire_braintree.emulator import BraintreeEmulator
from paywire_braintree.emulator.model import Transaction
from paywire_braintree.emulator.webhooks import notification_body

EUR = "EUR"
_FORM = {"content-type": "application/x-www-form-urlencoded"}


def _body(emulator: BraintreeEmulator, kind: str, transaction: Transaction) -> bytes:
    with emulator.lock:
        return notification_body(emulator.public_key, emulator.private_key, kind, transaction)


@pytest.mark.parametrize("order", ["settled_first", "declined_first"])
@pytest.mark.parametrize("operation", ["sale", "refund"])
def test_a_settled_transaction_the_bank_returned_is_not_counted(
    service: PaymentService, emulator: BraintreeEmulator, order: str, operation: str
) -> None:
    emulator.settlement = "batch"
    payment_id = service.sale("braintree", Money.of("30.00", EUR), source="paywire-emulator-bank-account-nonce",
                              order_id="r", idempotency_key="sale").id
    key = "sale"
    if operation == "refund":
        emulator.settle(service.get_payment(payment_id).reference or "")
        service.receive_webhook("braintree", _FORM, _body(
            emulator, "transaction_settled", emulator.transactions[service.get_payment(payment_id).reference or ""]))
        service.refund(payment_id, Money.of("10.00", EUR), idempotency_key="refund")
        key = "refund"
    (txn,) = (t for t in service.list_transactions(payment_id) if t.idempotency_key == key)
    reference = txn.provider_reference or ""
    transaction = emulator.transactions[reference]
    emulator.settle(reference)
    settled = _body(emulator, "transaction_settled", transaction)
    emulator.bank_return(reference)  # the customer's bank returns it after it settled
    declined = _body(emulator, "transaction_settlement_declined", transaction)
    expected = {"sale": (0, 0), "refund": (3000, 0)}[operation]
    for body in (settled, declined) if order == "settled_first" else (declined, settled):
        service.receive_webhook("braintree", _FORM, body)
    payment = service.get_payment(payment_id)
    assert (payment.captured.minor, payment.refunded.minor) == expected
    assert not any(t.status == S.SUCCEEDED and t.provider_reference == reference and t.kind in ("capture", "refund")
                   and t.id not in {r.parent_id for r in service.list_transactions(payment_id)}
                   for t in service.list_transactions(payment_id))
    service.reconcile(payment_id=payment_id)
    payment = service.get_payment(payment_id)
    assert (payment.captured.minor, payment.refunded.minor) == expected


def test_the_emulator_returns_only_what_settled(service: PaymentService, emulator: BraintreeEmulator) -> None:
    emulator.settlement = "batch"
    payment = service.sale("braintree", Money.of("30.00", EUR), source="paywire-emulator-bank-account-nonce",
                           order_id="b", idempotency_key="b")
    with pytest.raises(GraphQLError, match="Only a settled transaction"):
        emulator.bank_return(payment.reference or "")
    assert emulator.transactions[payment.reference or ""].status == "SETTLEMENT_PENDING"
