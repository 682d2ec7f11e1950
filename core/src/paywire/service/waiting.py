"""Payments waiting for their buyer (3-D Secure, an approval) are read from the provider once they
have waited `buyer_wait` seconds, so a lost webhook leaves none of them waiting for ever.

The schedule is the ledger's owed reads (`paywire_owed_reads`, read through its index of next
looks, as `reconcile()` and the Janitor read every payment that owes a read): a payment that starts
waiting is marked as owing a read `buyer_wait` later, and each read that finds it still waiting
marks it again, twice as long after the last (a day apart at most), so a buyer who walked away
costs few reads. A read settles the payment as the provider holds it (`reconcile.settle`): paid ->
authorized or captured, failed, cancelled or lapsed -> failed (voided, where an authorization was
released), still waiting -> left waiting.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from datetime import datetime, timedelta

from paywire.errors import ConfigurationError
from paywire.ledger.interface import Ledger, LedgerUnit
from paywire.ledger.model import Look, Payment, PaymentState

__all__ = ["DEFAULT_BUYER_WAIT", "checked", "due", "watch"]

DEFAULT_BUYER_WAIT = 3600.0  # seconds: a 3-D Secure challenge takes minutes; a PayPal approval lapses after 3 hours
_LONGEST = 86400.0  # a still-waiting payment is read again a day later at most


def checked(buyer_wait: object, name: str = "buyer_wait") -> float:
    """`buyer_wait` as seconds: a finite number, zero or more (zero reads a waiting payment at once)."""
    if isinstance(buyer_wait, bool) or not isinstance(buyer_wait, (int, float)) or not 0 <= buyer_wait < math.inf:
        raise ConfigurationError(f"{name} must be a number of seconds, zero or more (default {DEFAULT_BUYER_WAIT:g}); "
                                 f"got {buyer_wait!r}")
    return float(buyer_wait)


def watch(u: LedgerUnit, payment: Payment, buyer_wait: float, at: datetime, *, read: Look | None = None) -> None:
    """Schedule the read of the locked `payment` if it waits for its buyer. `read`: the mark a read
    of it just cleared (its looks count the reads that found it waiting); without it, a mark
    already there stands (it is due sooner, or a read already found the payment waiting)."""
    if payment.state != PaymentState.ACTION_REQUIRED:
        return
    if read is None:
        if u.owed_read(payment.id) is None:
            u.set_owed_read(payment.id, Look(0, at + timedelta(seconds=buyer_wait)))
        return
    looks = read.looks + 1
    delay = min(buyer_wait * 2.0 ** min(looks, 16), max(buyer_wait, _LONGEST))
    u.set_owed_read(payment.id, Look(looks, at + timedelta(seconds=delay)))


def due(ledger: Ledger, owed: Mapping[str, Look], at: datetime) -> dict[str, Look]:
    """The owed reads `reconcile()` makes now: all of them, but a waiting payment's only once it
    has waited `buyer_wait` (its mark is due)."""
    return {payment_id: look for payment_id, look in owed.items()
            if look.next_at <= at or not _waits(ledger.get_payment(payment_id))}


def _waits(payment: Payment | None) -> bool:
    return payment is not None and payment.state == PaymentState.ACTION_REQUIRED
