"""Ledger rows written directly, for tests of `paywire.service.reconcile.settle` against a reading
the test states (an SQLite ledger, no provider): an authorized payment and its transactions, each
request long past its life."""

from __future__ import annotations

import itertools
from datetime import timedelta
from typing import Any

from paywire import Money
from paywire.command.result import CommandResult
from paywire.gateway_definition import Capabilities
from paywire.ledger import Ledger, Transaction, TransactionStatus
from paywire.ledger.model import Payment, PaymentState, now
from paywire.service.reconcile import Mismatch, Settlement, settle

_ids = itertools.count()


def authorized(minor: int, currency: str = "EUR", reference: str = "fp_1") -> Payment:
    """A payment of `minor` authorized in full at the provider's `reference` (totals as a unit sets them)."""
    at = now() - timedelta(hours=1)
    zero = Money(0, currency)
    return Payment(id=f"pay_{next(_ids)}", method="fakepay", flow="authorize", amount=Money(minor, currency),
                   state=PaymentState.AUTHORIZED, authorized=Money(minor, currency), captured=zero, refunded=zero,
                   observed_authorized=zero, observed_captured=zero, observed_refunded=zero, reference=reference,
                   references={"payment": reference}, created_at=at, updated_at=at)


def row(payment: Payment, kind: str, minor: int, status: str, **more: Any) -> Transaction:
    """A transaction of the payment, sent an hour ago and past its life."""
    at = now() - timedelta(hours=1)
    n = next(_ids)
    return Transaction(id=f"txn_{n}", payment_id=payment.id, method=payment.method, kind=kind,
                       amount=Money(minor, payment.currency), status=status, idempotency_key=f"key-{n}",
                       fingerprint=f"fp-{n}", created_at=at, updated_at=at,
                       finished_at=None if status in TransactionStatus.OPEN else at, settle_after=at, **more)


def history(payment: Payment, kind: str) -> list[Transaction]:
    """What a `kind` operation stands on: the payment's authorization, and for a refund a capture of
    all of it."""
    rows = [row(payment, "authorize", payment.amount.minor, TransactionStatus.SUCCEEDED,
                provider_reference=payment.reference)]
    if kind == "refund":
        rows.append(row(payment, "capture", payment.amount.minor, TransactionStatus.SUCCEEDED,
                        provider_reference="cap_0"))
    return rows


def write(ledger: Ledger, payment: Payment, *txns: Transaction) -> None:
    """The payment and its transactions, in one unit."""
    with ledger.unit() as u:
        u.insert_payment(payment)
        for txn in txns:
            u.insert_transaction(txn)


def settle_reading(ledger: Ledger, payment: Payment, reading: CommandResult,
                   capabilities: Capabilities | None = None) -> tuple[Payment, list[Settlement], list[Mismatch]]:
    """`settle` the payment, locked, against `reading`, in one unit."""
    with ledger.unit() as u:
        current = u.payment(payment.id, lock=True)
        assert current is not None
        return settle(u, current, reading, capabilities=capabilities)
