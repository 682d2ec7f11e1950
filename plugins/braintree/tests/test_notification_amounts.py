"""A signed notification Braintree cannot have sent is refused, changing nothing: a signed amount
(a negative refund would lower what the ledger says was refunded, so claim more than Braintree
holds) and XML declaring an encoding the parser does not know (refused as malformed, never an
internal error the endpoint answers 500 to and Braintree delivers again and again). Signed by
Braintree's documented algorithm (its SDK's own HMAC), received by the payment service."""

from __future__ import annotations

import base64
import time
from urllib.parse import urlencode

import pytest
from braintree.util.crypto import Crypto

from paywire import Money, PaymentService
from paywire.errors import InvalidRequest, WebhookVerificationError
from paywire_braintree.emulator import BraintreeEmulator

EUR = "EUR"
_FORM = {"content-type": "application/x-www-form-urlencoded"}


def _signed(emulator: BraintreeEmulator, xml: bytes) -> bytes:
    payload = base64.encodebytes(xml)
    signature = f"{emulator.public_key}|{Crypto.sha1_hmac_hash(emulator.private_key, payload)}"
    return urlencode({"bt_signature": signature, "bt_payload": payload.decode()}).encode()


def _refund_settled(declaration: str, refunded: str, amount: str) -> bytes:
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    return (f'{declaration}<notification><timestamp type="datetime">{now}</timestamp><kind>transaction_settled</kind>'
            f"<subject><transaction><id>rf123456</id><type>credit</type><status>settled</status>"
            f"<amount>{amount}</amount><currency-iso-code>EUR</currency-iso-code>"
            f"<refunded-transaction-id>{refunded}</refunded-transaction-id></transaction></subject>"
            "</notification>").encode()


@pytest.mark.parametrize(("declaration", "amount", "refusal"), [
    ("", "-5.00", InvalidRequest), ("", "+5.00", WebhookVerificationError),
    ('<?xml version="1.0" encoding="paywire-unknown"?>', "5.00", WebhookVerificationError),
])
def test_a_notification_braintree_cannot_have_sent_is_refused_and_changes_nothing(
    service: PaymentService, emulator: BraintreeEmulator, declaration: str, amount: str,
    refusal: type[Exception],
) -> None:
    payment = service.sale("braintree", Money.of("30.00", EUR), source="fake-valid-nonce", order_id="n",
                           idempotency_key="n")
    legacy = emulator.transactions[payment.reference or ""].legacy
    before = (service.get_payment(payment.id), service.list_transactions(payment.id))
    with pytest.raises(refusal, match=r"malformed|negative"):
        service.receive_webhook("braintree", _FORM, _signed(emulator, _refund_settled(declaration, legacy, amount)))
    assert (service.get_payment(payment.id), service.list_transactions(payment.id)) == before
