"""The transaction ledger: payments, their append-only transaction history, webhook events.

`SQLiteLedger` (standard library) is the embedded default; `PostgresLedger` (psycopg 3, the
`paywire[postgresql]` extra) serves several workers or hosts. Both implement `Ledger` and pass
the same storage conformance suite. psycopg is imported only when a PostgreSQL ledger is made.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from paywire.ledger.interface import Ledger, LedgerIntegrityError, LedgerUnit
from paywire.ledger.model import (
    EventStatus,
    Payment,
    PaymentState,
    StoredEvent,
    Transaction,
    TransactionKind,
    TransactionStatus,
)
from paywire.ledger.sqlite import SQLiteLedger
from paywire.ledger.url import open_ledger

if TYPE_CHECKING:
    from paywire.ledger.postgres import PostgresLedger

__all__ = [
    "EventStatus",
    "Ledger",
    "LedgerIntegrityError",
    "LedgerUnit",
    "Payment",
    "PaymentState",
    "PostgresLedger",
    "SQLiteLedger",
    "StoredEvent",
    "Transaction",
    "TransactionKind",
    "TransactionStatus",
    "open_ledger",
]


def __getattr__(name: str) -> Any:
    if name == "PostgresLedger":
        from paywire.ledger.postgres import PostgresLedger

        return PostgresLedger
    raise AttributeError(f"module 'paywire.ledger' has no attribute {name!r}")
