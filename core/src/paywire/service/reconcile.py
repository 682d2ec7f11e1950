"""Settling unknown outcomes from the provider's own state (the plugin's `fetch` command).

A transaction is unknown when the request may have taken effect but no answer was recorded: a
timeout or dropped connection, or a worker that stopped between sending and recording (found as
a pending transaction older than the service's `stale_after`). Reconciliation never resends
anything. It reads the payment at the provider and decides:

- first operations (authorize, sale, complete): by the provider's state (not found or failed ->
  failed; waiting for the buyer -> action_required; authorized or further -> succeeded);
- captures and refunds: by the provider's running total against what the ledger's succeeded
  transactions add up to; the unknown ones whose amounts make up the difference succeeded, the
  others failed; an ambiguous split is left unknown and reported;
- voids: by whether the provider says voided.

The provider's totals also become the payment's reported floors, so the ledger agrees with the
provider afterwards even where a transaction stays unresolved.
"""

from __future__ import annotations

import itertools
from collections.abc import Sequence

import attrs

from paywire.command.result import CommandResult, ProviderState
from paywire.ledger.interface import LedgerUnit
from paywire.ledger.model import Payment, Transaction, TransactionKind, TransactionStatus, now
from paywire.money import Money
from paywire.service import rules
from paywire.subject import BuyerAction

__all__ = ["ReconcileReport", "Settlement", "settle"]

K = TransactionKind
S = TransactionStatus
_ESTABLISHED = frozenset({
    ProviderState.AUTHORIZED, ProviderState.PARTIALLY_CAPTURED, ProviderState.CAPTURED,
    ProviderState.PARTIALLY_REFUNDED, ProviderState.REFUNDED, ProviderState.VOIDED,
})
_MAX_SUBSET = 12  # unknown operations of one kind on one payment searched exhaustively


@attrs.frozen
class Settlement:
    """What reconciliation decided for one transaction (`status` None: left unknown)."""

    transaction_id: str
    payment_id: str | None
    kind: str
    status: str | None
    note: str


@attrs.frozen
class ReconcileReport:
    """The outcome of one `PaymentService.reconcile()` run."""

    marked_unknown: tuple[str, ...] = ()  # stale pending transactions now unknown
    settled: tuple[Settlement, ...] = ()
    unresolved: tuple[Settlement, ...] = ()
    errors: tuple[tuple[str, str], ...] = ()  # (payment or transaction id, why fetch failed)
    events_applied: int = 0

    @property
    def clean(self) -> bool:
        return not self.unresolved and not self.errors


def _money(value: Money | None, currency: str) -> Money | None:
    return value if value is not None and value.currency == currency else None


def _finish(u: LedgerUnit, txn: Transaction, status: str, note: str, result: CommandResult,
            reference: str | None = None) -> Settlement:
    at = now()
    response = dict(txn.response)
    response["reconciled"] = {"state": result.state, "note": note}
    u.update_transaction(attrs.evolve(
        txn, status=status, response=response, updated_at=at, finished_at=at,
        provider_reference=txn.provider_reference or reference,
        # It did not take effect, so sending it again (with its key) is safe.
        retryable=status == S.FAILED,
    ))
    return Settlement(txn.id, txn.payment_id, txn.kind, status, note)


def _subset(amounts: Sequence[int], target: int) -> tuple[int, ...] | None:
    """Indexes of the fewest, earliest amounts adding up to `target`, if any."""
    for size in range(1, len(amounts) + 1):
        for combo in itertools.combinations(range(len(amounts)), size):
            if sum(amounts[i] for i in combo) == target:
                return combo
    return None


def settle(u: LedgerUnit, payment: Payment, result: CommandResult) -> tuple[Payment, list[Settlement]]:
    """Settle the payment's unknown transactions from a fetch `result` (inside a locked unit)."""
    out: list[Settlement] = []
    currency = payment.currency
    state = result.state
    txns = u.transactions(payment.id)
    busy = {t.kind for t in txns if t.status == S.PENDING}  # live workers will record these themselves
    unknown = [t for t in txns if t.status == S.UNKNOWN]

    refs = dict(payment.references)
    if result.reference and not payment.reference:
        refs.setdefault("payment", result.reference)
    refs.update({k: v for k, v in result.references.items() if v})
    payment = attrs.evolve(payment, reference=payment.reference or result.references.get("payment")
                           or result.reference, references=refs)

    for txn in (t for t in unknown if t.kind in K.INITIAL):
        if busy & K.INITIAL:
            out.append(Settlement(txn.id, txn.payment_id, txn.kind, None, "a first operation is in flight"))
        elif state in (ProviderState.NOT_FOUND, ProviderState.FAILED):
            out.append(_finish(u, txn, S.FAILED, f"the provider reports {state}: it did not take effect", result))
            if payment.authorized.minor == 0:
                payment = attrs.evolve(payment, failed=True)
        elif state == ProviderState.ACTION_REQUIRED:
            out.append(_finish(u, txn, S.ACTION_REQUIRED, "the provider waits for the buyer", result,
                               result.reference))
            payment = attrs.evolve(payment, action=result.action or BuyerAction("", None))
        elif state in _ESTABLISHED:
            out.append(_finish(u, txn, S.SUCCEEDED, f"the provider reports {state}", result, result.reference))
            if payment.flow == K.AUTHORIZE and "authorization" not in payment.references and result.reference:
                payment = attrs.evolve(payment, references={**payment.references, "authorization": result.reference})
        else:
            out.append(Settlement(txn.id, txn.payment_id, txn.kind, None, f"the provider reports {state}; later"))

    txns = u.transactions(payment.id)
    totals = {K.CAPTURE: _money(result.captured, currency), K.REFUND: _money(result.refunded, currency)}
    for kind, provider_total in totals.items():
        pending = [t for t in txns if t.kind == kind and t.status == S.UNKNOWN]
        if not pending:
            continue
        if kind in busy or provider_total is None:
            why = "an operation of this kind is in flight" if kind in busy else "the provider gave no total"
            out.extend(Settlement(t.id, t.payment_id, t.kind, None, why) for t in pending)
            continue
        own = rules.derive(attrs.evolve(payment, observed_authorized=Money.zero(currency),
                                        observed_captured=Money.zero(currency),
                                        observed_refunded=Money.zero(currency)), txns)
        recorded = own.captured if kind == K.CAPTURE else own.refunded
        delta = provider_total.minor - recorded.minor
        amounts = [t.amount.minor if t.amount else 0 for t in pending]
        chosen = _subset(amounts, delta) if 0 < delta and len(pending) <= _MAX_SUBSET else None
        if delta <= 0:
            chosen = ()
        elif chosen is None and delta >= sum(amounts):
            chosen = tuple(range(len(pending)))
        if chosen is None:
            out.extend(Settlement(t.id, t.payment_id, t.kind, None,
                                  f"the provider's {kind} total {provider_total} cannot be split among the "
                                  "unknown operations; check it by hand") for t in pending)
            continue
        # The provider's latest object of this kind names the one settled operation, if only one is.
        latest = result.references.get(kind)
        latest = latest if len(chosen) == 1 and latest not in {t.provider_reference for t in txns} else None
        for index, txn in enumerate(pending):
            if index in chosen:
                out.append(_finish(u, txn, S.SUCCEEDED, f"the provider's {kind} total is {provider_total}", result,
                                   latest))
                if kind == K.CAPTURE and txn.request.get("final"):
                    payment = attrs.evolve(payment, capture_closed=True)
            else:
                out.append(_finish(u, txn, S.FAILED, f"the provider's {kind} total {provider_total} does "
                                                     "not include it", result))

    for txn in (t for t in txns if t.kind == K.VOID and t.status == S.UNKNOWN):
        if state == ProviderState.VOIDED:
            out.append(_finish(u, txn, S.SUCCEEDED, "the provider reports voided", result))
        elif state in _ESTABLISHED or state == ProviderState.NOT_FOUND:
            out.append(_finish(u, txn, S.FAILED, f"the provider reports {state}, not voided", result))
        else:
            out.append(Settlement(txn.id, txn.payment_id, txn.kind, None, f"the provider reports {state}; later"))

    payment = attrs.evolve(
        payment,
        observed_authorized=max(payment.observed_authorized, _money(result.authorized, currency)
                                or payment.observed_authorized),
        observed_captured=max(payment.observed_captured, _money(result.captured, currency)
                              or payment.observed_captured),
        observed_refunded=max(payment.observed_refunded, _money(result.refunded, currency)
                              or payment.observed_refunded),
        capture_closed=payment.capture_closed or (payment.flow == K.AUTHORIZE and state == ProviderState.CAPTURED),
        voided=payment.voided or (state == ProviderState.VOIDED and payment.captured.minor == 0),
        updated_at=now(),
    )
    payment = rules.derive(payment, u.transactions(payment.id))
    u.update_payment(payment)
    u.add_references(payment.method, payment.id, [payment.reference or "", *payment.references.values()])
    return payment, out
