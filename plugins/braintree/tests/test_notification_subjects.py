"""Notifications that move no money are stored, never refused, and reach their payment when
they name it: a dispute's names the transaction it contests (as Braintree's SDK reads it); one
whose subject carries no id of its own (a local payment's) is told apart from another of the same
second; one with an amount paywire cannot hold (a retired currency) is still an event. Each is
signed by Braintree's documented algorithm (its SDK's own HMAC) and received by the service."""

from __future__ import annotations

import base64
import time
from urllib.parse import urlencode

import braintree
from braintree.util.crypto import Crypto

from paywire import EventKind, Money, PaymentService
from paywire_braintree.emulator import BraintreeEmulator

EUR = "EUR"
_FORM = {"content-type": "application/x-www-form-urlencoded"}


def _signed(emulator: BraintreeEmulator, xml: str) -> bytes:
    payload = base64.encodebytes(xml.encode())
    signature = f"{emulator.public_key}|{Crypto.sha1_hmac_hash(emulator.private_key, payload)}"
    return urlencode({"bt_signature": signature, "bt_payload": payload.decode()}).encode()


def _notification(kind: str, subject: str) -> str:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return (f'<notification><timestamp type="datetime">{now}</timestamp><kind>{kind}</kind>'
            f"<subject>{subject}</subject></notification>")


def _dispute(kind: str, transaction: str) -> str:
    return _notification(kind, f"<dispute><id>dp{kind[8:12]}</id><amount>10.00</amount>"
                               f"<currency-iso-code>EUR</currency-iso-code><kind>chargeback</kind>"
                               f"<status>{kind[8:]}</status><transaction><id>{transaction}</id>"
                               "<amount>10.00</amount></transaction></dispute>")


def _sdk_reads(emulator: BraintreeEmulator, body: bytes) -> braintree.WebhookNotification:
    from urllib.parse import parse_qs
    fields = {name: values[0] for name, values in parse_qs(body.decode()).items()}
    sdk = braintree.BraintreeGateway(braintree.Configuration(
        braintree.Environment.Sandbox, merchant_id="m", public_key=emulator.public_key,
        private_key=emulator.private_key))
    return sdk.webhook_notification.parse(fields["bt_signature"], fields["bt_payload"])


def test_a_disputes_notifications_are_stored_with_the_payment_of_the_transaction_they_contest(
    service: PaymentService, emulator: BraintreeEmulator
) -> None:
    payment = service.sale("braintree", Money.of("10.00", EUR), source="fake-valid-nonce", order_id="d",
                           idempotency_key="d")
    legacy = emulator.transactions[payment.reference or ""].legacy
    before = service.get_payment(payment.id)
    for kind in ("dispute_opened", "dispute_lost", "dispute_won"):
        body = _signed(emulator, _dispute(kind, legacy))
        assert _sdk_reads(emulator, body).dispute.transaction.id == legacy
        receipt = service.receive_webhook("braintree", _FORM, body)
        assert (receipt.kind, receipt.status, receipt.payment_id) == (EventKind.OTHER, "applied", payment.id), kind
    after = service.get_payment(payment.id)
    assert (after.captured, after.refunded) == (before.captured, before.refunded)


def _local_payment(payment_id: str) -> str:
    return _notification("local_payment_completed",
                         f"<local-payment><payment-id>{payment_id}</payment-id><payer-id>p</payer-id>"
                         "</local-payment>")


def test_two_notifications_whose_subjects_carry_no_id_are_two_events_and_a_redelivery_one(
    service: PaymentService, emulator: BraintreeEmulator
) -> None:
    first, second = _signed(emulator, _local_payment("PAY-1")), _signed(emulator, _local_payment("PAY-2"))
    assert _sdk_reads(emulator, second).local_payment_completed.payment_id == "PAY-2"
    one = service.receive_webhook("braintree", _FORM, first)
    other = service.receive_webhook("braintree", _FORM, second)
    assert one.status != "duplicate" and other.status != "duplicate"
    assert one.event_id != other.event_id
    assert service.receive_webhook("braintree", _FORM, first).status == "duplicate"


def test_a_notification_that_moves_no_money_is_stored_though_its_amount_is_in_a_retired_currency(
    service: PaymentService, emulator: BraintreeEmulator
) -> None:
    """A disbursement of a Croatian kuna transaction (HRK, withdrawn from ISO 4217 in 2023)."""
    body = _signed(emulator, _notification(
        "transaction_disbursed", "<transaction><id>hrk12345</id><type>sale</type><amount>100.00</amount>"
                                 "<currency-iso-code>HRK</currency-iso-code></transaction>"))
    assert _sdk_reads(emulator, body).transaction.amount == 100
    receipt = service.receive_webhook("braintree", _FORM, body)
    assert (receipt.kind, receipt.status) == (EventKind.OTHER, "unmatched")
