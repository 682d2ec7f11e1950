"""The emulator's records: transactions (sales, partial captures, credits), payment methods and
customers, and how each reads back as Braintree's GraphQL types."""

from __future__ import annotations

import secrets
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import attrs

from paywire_braintree.emulator.nonces import PROCESSOR_RESPONSES
from paywire_braintree.ids import global_id

__all__ = ["CAPTURED", "Customer", "PaymentMethod", "Transaction", "captured_amount", "new_legacy_id", "now",
           "wire_amount"]

CAPTURED = ("SUBMITTED_FOR_SETTLEMENT", "SETTLEMENT_PENDING", "SETTLING", "SETTLED", "SETTLEMENT_CONFIRMED")


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def new_legacy_id() -> str:
    return "".join(secrets.choice("abcdefghjkmnpqrstvwxyz") for _ in range(8))


def wire_amount(value: Decimal, currency: str, exponent: int) -> dict[str, str]:
    return {"value": f"{value:.{exponent}f}", "currencyCode": currency}


@attrs.define
class Transaction:
    legacy: str
    kind: str  # "sale" or "credit"
    amount: Decimal
    currency: str
    exponent: int
    status: str
    merchant_account: str
    order_id: str | None = None
    custom: dict[str, str] = attrs.Factory(dict)
    payment_method: str | None = None
    customer: str | None = None
    history: list[dict[str, Any]] = attrs.Factory(list)
    parent: str | None = None  # a partial capture's authorization
    children: list[str] = attrs.Factory(list)  # an authorization's partial captures
    refunds: list[str] = attrs.Factory(list)
    refunded: str | None = None  # a credit's transaction
    closed: bool = False  # no more partial captures
    charge: bool = False  # an AUTHORIZING charge: submitted for settlement once authorized
    source: str | None = None  # the nonce or payment method id it was charged from
    origin: str = "API"  # how a refund was made: Braintree's PaymentSource (API, CONTROL_PANEL)
    created: str = attrs.Factory(now)
    created_at: float = attrs.Factory(time.monotonic)

    @property
    def id(self) -> str:
        return global_id("refund" if self.kind == "credit" else "transaction", self.legacy)

    def move(self, status: str, **event: Any) -> None:
        self.status = status
        self.history.append({"status": status, "timestamp": now(), **event})

    def money(self, value: Decimal | None = None) -> dict[str, str]:
        return wire_amount(self.amount if value is None else value, self.currency, self.exponent)


def captured_amount(transactions: Mapping[str, Transaction], parent: Transaction) -> Decimal:
    """What an authorization's partial captures hold (none declined or voided)."""
    return sum((transactions[c].amount for c in parent.children if transactions[c].status in CAPTURED), Decimal(0))


def processor_response(code: str) -> dict[str, Any]:
    return {"legacyCode": code, "message": PROCESSOR_RESPONSES.get(code, "Declined")}


_EVENT_TYPES = {
    "AUTHORIZED": "AuthorizedEvent", "AUTHORIZATION_EXPIRED": "AuthorizationExpiredEvent",
    "FAILED": "FailedEvent", "GATEWAY_REJECTED": "GatewayRejectedEvent",
    "PROCESSOR_DECLINED": "ProcessorDeclinedEvent", "SETTLED": "SettledEvent",
    "SETTLEMENT_CONFIRMED": "SettlementConfirmedEvent", "SETTLEMENT_DECLINED": "SettlementDeclinedEvent",
    "SETTLEMENT_PENDING": "SettlementPendingEvent", "SETTLING": "SettlingEvent",
    "SUBMITTED_FOR_SETTLEMENT": "SubmittedForSettlementEvent", "VOIDED": "VoidedEvent",
}


def event_view(transaction: Transaction, event: dict[str, Any]) -> dict[str, Any]:
    view = {"__typename": _EVENT_TYPES[event["status"]], "terminal": False, "source": "API",
            "amount": transaction.money(event.get("amount")), **event}
    view.pop("amount_value", None)
    return view


@attrs.define
class PaymentMethod:
    legacy: str
    nonce: str  # the fake nonce it was vaulted from: its behaviour when charged
    instrument: str
    customer: str | None = None
    created: str = attrs.Factory(now)

    @property
    def id(self) -> str:
        return global_id("paymentmethod", self.legacy)


@attrs.define
class Customer:
    legacy: str
    email: str | None = None
    first_name: str | None = None
    last_name: str | None = None
    created: str = attrs.Factory(now)

    @property
    def id(self) -> str:
        return global_id("customer", self.legacy)
