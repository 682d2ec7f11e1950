"""Braintree's webhook notifications as the emulator sends them: the notification XML, base64
encoded with line breaks (as Braintree's `encodebytes`), signed, and posted as a form."""

from __future__ import annotations

import base64
from datetime import UTC, datetime
from urllib.parse import urlencode
from xml.sax.saxutils import escape

from paywire_braintree.emulator.model import Transaction
from paywire_braintree.ids import legacy_id
from paywire_braintree.signature import sign

__all__ = ["notification_body", "notification_xml", "signed_form"]


def _legacy(identifier: str) -> str:
    legacy = legacy_id(identifier)
    return escape(legacy[1] if legacy else "")


def notification_xml(kind: str, transaction: Transaction, at: datetime | None = None) -> bytes:
    """Braintree's notification XML: the transaction names the transaction it refunds, the
    authorization it partially settles, or the partial settlements it has, and lists the
    statuses it went through (its status-history), as Braintree's does."""
    when = (at or datetime.now(UTC)).strftime("%Y-%m-%dT%H:%M:%SZ")
    related = ""
    if transaction.refunded:
        related = f"<refunded-transaction-id>{_legacy(transaction.refunded)}</refunded-transaction-id>"
    if transaction.parent:
        related = f"<authorized-transaction-id>{_legacy(transaction.parent)}</authorized-transaction-id>"
    if transaction.children:
        items = "".join(f"<item>{_legacy(child)}</item>" for child in transaction.children)
        related = f'<partial-settlement-transaction-ids type="array">{items}</partial-settlement-transaction-ids>'
    amount = f"{transaction.amount:.{transaction.exponent}f}"
    events = "".join(f"<status-event><status>{escape(str(event['status']).lower())}</status><amount>{amount}</amount>"
                     f'<timestamp type="datetime">{escape(str(event["timestamp"]))}</timestamp></status-event>'
                     for event in transaction.history)
    return (
        f'<notification><timestamp type="datetime">{when}</timestamp><kind>{escape(kind)}</kind>'
        f"<subject><transaction><id>{escape(transaction.legacy)}</id>"
        f"<status>{transaction.status.lower()}</status><type>{transaction.kind}</type>"
        f'<status-history type="array">{events}</status-history>'
        f"<currency-iso-code>{transaction.currency}</currency-iso-code>"
        f"<amount>{amount}</amount>"
        f"<merchant-account-id>{escape(transaction.merchant_account)}</merchant-account-id>"
        f"<order-id>{escape(transaction.order_id or '')}</order-id>{related}"
        "</transaction></subject></notification>"
    ).encode()


def signed_form(public_key: str, private_key: str, xml: bytes) -> bytes:
    payload = base64.encodebytes(xml)
    return urlencode({"bt_signature": sign(public_key, private_key, payload), "bt_payload": payload.decode()}).encode()


def notification_body(public_key: str, private_key: str, kind: str, transaction: Transaction) -> bytes:
    return signed_form(public_key, private_key, notification_xml(kind, transaction))
