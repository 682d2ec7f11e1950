"""Braintree's webhook notification (the XML inside bt_payload) as a paywire `WebhookEvent`.

The XML is parsed with defusedxml, never the standard library's parser, since it comes from the
network. Braintree's notifications carry no id of their own: the event id is the kind, the
subject's id and the notification's timestamp, so a redelivered notification is the same event.

| kind | event |
|---|---|
| transaction_settled (a sale or capture) | captured |
| transaction_settled (a credit: a refund) | refunded |
| transaction_settlement_declined | reversed (the sale, capture or refund, reported done when it was submitted for settlement, did not move money); failed when its status-history shows it only waited for settlement (SETTLEMENT_PENDING, reported accepted: it never took effect) |
| refund_failed | failed (the refund) |
| transaction_settled or _declined of an authorization settled in parts | other (moves nothing) |
| transaction_disbursed, dispute_*, check, anything else | other (stored, moves nothing) |

A dispute's notification is `other` (a chargeback changes neither what the transaction captured
nor what it refunded) and references the dispute and the transaction it contests, so it is stored
with that transaction's payment. The amount of a notification that moves nothing is not read: one
paywire cannot hold never refuses an event that changes no payment. A notification whose subject
has no id of its own (a local payment's, a check) is told apart by a digest of its XML instead,
so two such notifications in one second are two events, and a redelivery is still the same one.

The subject is a refund when it says so (`<type>credit</type>`, a `<refund>`) or when the kind is
only ever about refunds: Braintree's own refund_failed sample carries no type. An authorization
settled in parts (it lists `partial-settlement-transaction-ids`) is notified with what it
authorized; the money moved is its children's, each notified on its own, so its notification
carries no amount. A partial capture's notification also names its authorization
(`authorized-transaction-id`), so one the ledger holds no row of (made in the Control Panel)
still reaches its payment.
"""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime
from typing import Any
from xml.etree.ElementTree import Element

import defusedxml.ElementTree as SafeXML

from paywire import EventKind, Money, WebhookEvent
from paywire_braintree.ids import global_id
from paywire_braintree.states import CAPTURED

__all__ = ["parse_notification"]

# Kinds whose subject is always a refund, whatever its <type> says.
_REFUND_KINDS = frozenset({"refund_failed"})


def _text(element: Element | None, path: str) -> str | None:
    found = element.find(path) if element is not None else None
    return found.text.strip() if found is not None and found.text and found.text.strip() else None


def _timestamp(root: Element) -> datetime:
    text = _text(root, "timestamp")
    if text is None:
        raise ValueError("the notification has no timestamp")
    at = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return at if at.tzinfo is not None else at.replace(tzinfo=UTC)


# A transaction in one of these was reported done (`states.CAPTURED`): declined after, it was
# undone. The very statuses `fetch` reads (`states.operation_status`), so a notification and
# reconcile settle one declined transaction alike.
_SUBMITTED = frozenset(status.lower() for status in CAPTURED)


def _only_waited(transaction: Element | None) -> bool:
    """Whether the transaction's status-history, when the notification carries it, shows it was
    never submitted for settlement, only waiting for it (settlement_pending): declined, it never
    took effect (`states.operation_status` lists it failed). Without a history it is taken as
    submitted, as Braintree's transactions mostly are."""
    history = transaction.find("status-history") if transaction is not None else None
    if history is None:
        return False
    statuses = {(event.findtext("status") or "").strip() for event in history.findall("status-event")}
    return bool(statuses) and not statuses & _SUBMITTED


def _kind(kind: str, credit: bool, parent: bool, transaction: Element | None) -> str:
    if parent:
        return EventKind.OTHER
    if kind == "transaction_settled":
        return EventKind.REFUNDED if credit else EventKind.CAPTURED
    if kind == "transaction_settlement_declined":  # submitted (reported done), then not settled
        return EventKind.FAILED if _only_waited(transaction) else EventKind.REVERSED
    if kind == "refund_failed":
        return EventKind.FAILED
    return EventKind.OTHER


def parse_notification(xml: bytes) -> tuple[WebhookEvent, datetime]:
    """The event and the notification's timestamp; ValueError when it is not a notification."""
    root = SafeXML.fromstring(xml)
    if root.tag != "notification":
        raise ValueError(f"the payload is a <{root.tag}>, not a <notification>")
    kind = _text(root, "kind")
    if not kind:
        raise ValueError("the notification has no kind")
    at = _timestamp(root)
    subject = root.find("subject")
    transaction = subject.find("transaction") if subject is not None else None
    if transaction is None and subject is not None:
        transaction = subject.find("refund")
    legacy = _text(transaction, "id") or (_text(subject[0], "id") if subject is not None and len(subject) else None)
    credit = (kind in _REFUND_KINDS or _text(transaction, "type") == "credit"
              or (transaction is not None and transaction.tag == "refund"))
    parent = not credit and _text(transaction, "partial-settlement-transaction-ids/item") is not None
    references: dict[str, str] = {}
    reference = None
    dispute = subject.find("dispute") if subject is not None else None
    if dispute is not None and legacy:
        reference = global_id("dispute", legacy)
        references = {"dispute": reference}
        contested = _text(dispute, "transaction/id")
        if contested:
            references["transaction"] = global_id("transaction", contested)
    if transaction is not None and legacy:
        reference = global_id("refund" if credit else "transaction", legacy)
        references = {"refund" if credit else "transaction": reference, "legacy_id": legacy}
        refunded = _text(transaction, "refunded-transaction-id")
        if refunded:
            references["capture"] = global_id("transaction", refunded)
        authorized = None if credit else _text(transaction, "authorized-transaction-id")
        if authorized:
            references["authorization"] = global_id("transaction", authorized)
    event_kind = _kind(kind, credit, parent, transaction)
    amount: Money | None = None
    value, currency = _text(transaction, "amount"), _text(transaction, "currency-iso-code")
    if value and currency and event_kind != EventKind.OTHER:
        amount = Money.of(value, currency)
    data: dict[str, Any] = {"kind": kind, "timestamp": at.isoformat(), "subject": legacy,
                            "status": _text(transaction, "status")}
    subject_id = legacy or f"sha256-{hashlib.sha256(xml).hexdigest()[:32]}"
    event = WebhookEvent(
        provider="braintree", id=f"{kind}:{subject_id}:{at.strftime('%Y%m%dT%H%M%SZ')}", type=kind,
        kind=event_kind, reference=reference, references=references, amount=amount,
        occurred_at=at, data=data,
    )
    return event, at
