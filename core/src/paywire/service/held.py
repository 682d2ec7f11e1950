"""What a first operation (authorize, sale, complete) holds at the provider.

A provider may authorize less than was asked (a partial authorization: a prepaid or debit card
with less balance, where the shop opted in). The transaction keeps the amount asked (what was
sent, and what a retry under its key sends again); what the provider holds, when less, is noted
in the transaction's response summary, and the payment's totals count that: the ledger never
claims more than the provider holds. The payment's `amount` stays what was asked, so the shop can
tell a partial authorization by `payment.authorized < payment.amount`.

A provider may also apply a capture or a refund in part (an issuer honouring part of a capture,
a provider keeping its fee from a refund): what it applied, when less than asked, is noted the
same way, and the payment's captured and refunded totals count that.

Whatever settles a first operation, a capture or a refund notes it here: its own answer (the
result's `amount`), a reconciliation (the provider's authorized total, or the operation it lists)
or a webhook (the event's amount).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from paywire.command.result import CommandResult
from paywire.errors import OutcomeUnknown
from paywire.ledger.model import Payment, Transaction, TransactionKind, TransactionStatus
from paywire.money import Money

__all__ = ["HELD", "held_amount", "held_minor", "holds_unreadably", "note_held", "unreadable"]

HELD = "held"  # the response summary's key: minor units, present only when less than asked
_NOTED = TransactionKind.INITIAL | {TransactionKind.CAPTURE, TransactionKind.REFUND}  # kinds whose amount is noted


def note_held(txn: Transaction, response: dict[str, Any], held: Money | None) -> dict[str, Any]:
    """`response`, noting `held` when it is what a first operation holds, or a capture or refund
    applied, and less than it asked. Anything else (none, another currency, nothing, more than
    asked) notes nothing: the asked amount stands, as before any answer."""
    asked = txn.amount
    if (txn.kind in _NOTED and asked is not None and held is not None
            and held.currency == asked.currency and 0 < held.minor < asked.minor):
        response[HELD] = held.minor
    return response


def held_minor(txn: Transaction) -> int:
    """What a succeeded first operation holds, or a succeeded capture or refund applied, in minor
    units of its amount: the noted amount, never more than asked."""
    asked = txn.amount.minor if txn.amount is not None else 0
    noted = txn.response.get(HELD)
    return noted if type(noted) is int and 0 < noted < asked else asked


def held_amount(payment: Payment, txns: Sequence[Transaction]) -> Money:
    """What the payment's first operation holds once it succeeded (the amount asked until then):
    the most an event naming no amount can say is authorized."""
    first = [held_minor(t) for t in txns if t.kind in TransactionKind.INITIAL and t.status == TransactionStatus.SUCCEEDED]
    return Money(max(first), payment.currency) if first else payment.amount


def holds_unreadably(kind: str, asked: Money | None, result: CommandResult) -> bool:
    """Whether a `kind` of `asked` answered `result` is one `unreadable` makes unknown (the
    operations counter labels it as the ledger records it)."""
    told = result.amount
    return not (kind not in TransactionKind.INITIAL or not result.succeeded or asked is None or told is None
                or (told.currency == asked.currency and 0 < told.minor <= asked.minor))


def unreadable(txn: Transaction, result: CommandResult) -> OutcomeUnknown | None:
    """A first operation answered succeeded with an amount that cannot be what it holds (more
    than asked, another currency, nothing): the provider took the request, but how much it holds
    cannot be told from the answer, so its outcome is unknown (reconciliation asks again)."""
    asked, told = txn.amount, result.amount
    if not holds_unreadably(txn.kind, asked, result):
        return None
    return OutcomeUnknown(
        f"the provider answered the {txn.kind} of {asked} as succeeded for {told}, more than was asked or not "
        "in its terms: what it holds is unknown; run reconcile()", code="unreadable_amount")
