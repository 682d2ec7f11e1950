"""When reconciliation looks at an open transaction again: the outcome model's schedule.

A transaction is looked at only once its request can no longer land (`settle_after`); a look
that leaves it open (the provider has not decided) pushes its next look further out. A payment
that owes a read (an answer or an event said the ledger is behind the provider) follows the same
schedule, kept by payment: a read that fails pushes the next one further out. The looks
are kept in the ledger (`Look`), so every worker sharing it follows one schedule.
"""

from __future__ import annotations

from datetime import datetime, timedelta

import attrs

from paywire.ledger.model import Look, Transaction

__all__ = ["Backoff", "Look", "is_due"]


@attrs.frozen
class Backoff:
    """How long a transaction left open waits before its next look: `first` seconds after the
    first look, then `factor` times longer each time, never more than `cap`."""

    first: float = 15.0
    factor: float = 2.0
    cap: float = 900.0

    def delay(self, looks: int) -> float:
        try:
            grown = self.first * self.factor ** max(0, looks - 1)
        except OverflowError:  # a transaction open for a thousand looks: long since at the cap
            return float(self.cap)
        return float(min(self.cap, grown))

    def after(self, txn: Transaction | None, previous: Look | None, at: datetime) -> Look:
        """The look just taken at `at`, and when the next may be (for a transaction, never before
        its `settle_after`; None: a payment's owed read, which no request's life holds back)."""
        looks = (previous.looks if previous else 0) + 1
        next_at = at + timedelta(seconds=self.delay(looks))
        return Look(looks, max(next_at, txn.settle_after) if txn and txn.settle_after else next_at)


def is_due(txn: Transaction, look: Look | None, at: datetime) -> bool:
    """Whether to look at `txn` at `at`: its request can no longer land and its wait is over."""
    return txn.expired(at) and (look is None or look.next_at <= at)
