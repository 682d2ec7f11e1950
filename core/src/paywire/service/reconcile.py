"""Settling open outcomes from the provider's own state (the plugin's `fetch` command).

A transaction is open while its effect is not known: unknown (a timeout, a dropped connection, a
5xx, or a worker that stopped between sending and recording, found as a pending transaction past
its `settle_after`) or accepted (the provider decides later). Reconciliation never resends
anything. It reads the payment at the provider and decides, per transaction:

- first operations (authorize, sale, complete): by the provider's state (authorized or further
  -> succeeded; processing -> accepted; made but unfinished, waiting for a step of its own that
  only a resend under its key takes (`CommandResult.unfinished`) -> unknown, left open and flagged
  `resend` for the Janitor, which finishes it so; waiting for the buyer -> action_required; failed ->
  failed, unless the provider lists the sale itself as a capture reversed since, which took
  effect: succeeded, then its reversal; held in another currency -> left open); "not found" (looked up by key: read by the
  reference of an object the provider made, it says nothing, and leaves it open), or a completion
  of a payment still waiting for the buyer or to be completed, means failed only once the request
  can no longer land (`settle_after`);
- captures and refunds: matched one to one to the provider's operations (`fetch` lists them), by
  idempotency key, then reference, then amount (a refund never to one the provider reports on
  another capture); each match records the provider's reference, so later webhooks about it find
  it. Where a plugin lists none, the provider's running totals settle the open transactions only
  where the total holds all they asked, or nothing more (a provider may apply one in part, so an
  amount match says nothing of which took effect); otherwise they are left open. What the provider
  does not hold is failed only once its request can no longer land;
- voids: by whether the provider says voided, or, for a void after a capture, lists the void of
  the authorization it was sent to (`void_after_capture`; left open where it no longer finds the
  payment);
- a capture or refund that succeeded and that the provider now lists as failed or reversed gets
  its reversal recorded;
- a refund the provider lists undecided (accepted) or succeeded that provably is none of the
  ledger's (made in its dashboard; `_refunds_outside`) is recorded as listed, of origin
  "reconcile", on the capture it names: undecided, it counts in flight until decided (a later
  reading, or its event, settles it); succeeded, it counts against that capture, which a later
  refund is kept to. One made outside paywire that the provider still holds undecided is
  reported neither settled nor open: nothing paywire sent waits for it (so is a capture made so,
  recorded accepted by its capture_pending event). A capture of an authorization listed
  undecided or succeeded is recorded so too (succeeded: with its own amount, which a refund of it
  is kept to), only where it provably is none of the ledger's (`_captures_outside`). A provider's
  capture, sale or refund may be the service's own, whose answer was lost, which its own records
  count already; the provider's totals (the floors) count one not proven so. A capture listed
  final (`ProviderOperation.final`) is recorded final: a final capture in flight while undecided,
  which no further capture passes, and it closes capture once succeeded.

The provider's totals also become the payment's reported floors, capture closes once the provider
takes no more of an authorization (captured, or nothing `capturable`, whatever its refunds), and
every payment whose totals still differ from the provider's afterwards is reported as a `Mismatch`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import attrs

from paywire.command.result import REAUTHORIZATION_UNDECIDED, CommandResult, ProviderOperation, ProviderState
from paywire.gateway_definition import Capabilities
from paywire.ledger.interface import LedgerUnit
from paywire.ledger.model import Payment, SettledBy, Transaction, TransactionKind, TransactionStatus, replace
from paywire.money import Money
from paywire.service import rules
from paywire.service.held import held_minor, note_held
from paywire.service.keys import fingerprint, new_id
from paywire.service.outcome import concluded
from paywire.service.reversal import FLOOR_READ, reverse, reversible

__all__ = ["MatchReport", "Mismatch", "ReconcileReport", "Settlement", "settle"]

K = TransactionKind
S = TransactionStatus
_ESTABLISHED = frozenset({
    ProviderState.AUTHORIZED, ProviderState.PARTIALLY_CAPTURED, ProviderState.CAPTURED,
    ProviderState.PARTIALLY_REFUNDED, ProviderState.REFUNDED, ProviderState.VOIDED,
})
_TOTAL = {K.CAPTURE: "captured", K.REFUND: "refunded"}  # the fetch result's running total of each kind
# A listed operation's status as the outcome of the open transaction it is matched to: a reversed
# one took effect (its reversal is recorded after, as an undone one's is).
_OPERATION_STATUS = {"succeeded": S.SUCCEEDED, "accepted": S.ACCEPTED, "failed": S.FAILED, "reversed": S.SUCCEEDED}
_UNDONE = frozenset({"failed", "reversed"})
# The listed captures made beside paywire that reconciliation records (`_captures_outside`).
_RECORDABLE = frozenset({"succeeded", "accepted"})


@attrs.frozen
class Settlement:
    """What reconciliation decided for one transaction (`status` None: left open, `note` says why)."""

    transaction_id: str
    payment_id: str | None
    kind: str
    status: str | None
    note: str
    resend: bool = False  # open, and finished only by a resend under its key (`CommandResult.unfinished`)


@attrs.frozen
class Mismatch:
    """A payment whose total differs from the provider's after reconciliation: look at it."""

    payment_id: str
    field: str  # "authorized", "captured" or "refunded"
    ledger: Money
    provider: Money


@attrs.frozen
class ReconcileReport:
    """The outcome of one `PaymentService.reconcile()` run."""

    marked_unknown: tuple[str, ...] = ()  # pending transactions past their life, now unknown
    settled: tuple[Settlement, ...] = ()
    unresolved: tuple[Settlement, ...] = ()
    # (payment or transaction id, or "provider/event id" of a waiting event, why it could not be settled)
    errors: tuple[tuple[str, str], ...] = ()
    events_applied: int = 0
    mismatches: tuple[Mismatch, ...] = ()
    # payments read because they owed a read (an answer or an event said the ledger was behind
    # the provider, and the read then failed or was never made), now as the provider holds them
    caught_up: tuple[str, ...] = ()

    @property
    def clean(self) -> bool:
        return not self.unresolved and not self.errors and not self.mismatches


@attrs.frozen
class MatchReport:
    """The outcome of one `PaymentService.match_unmatched()` run: each event that could not be
    applied is kept with its exception, so each caller words it its own way (`reconcile()` with
    its message, the Janitor by its type) or raises it."""

    applied: int = 0  # stored unmatched events applied to the payments they name
    failures: tuple[tuple[str, Exception], ...] = ()  # ("provider/event id", why it stays unmatched)


def _money(value: Money | None, currency: str) -> Money | None:
    return value if value is not None and value.currency == currency else None


def _given(value: Money | None, otherwise: Money) -> Money:
    return otherwise if value is None else value


def _finish(u: LedgerUnit, txn: Transaction, status: str, note: str, result: CommandResult,
            reference: str | None = None, *, retryable: bool = False, held: Money | None = None) -> Settlement:
    """Record what the provider holds of `txn`. `retryable`: a failure because the provider never
    got the request, which may be sent again with its key; one the provider decided would only be
    answered again (or its acceptance replayed) under that key. `held`: what a first operation
    that succeeded holds (the provider's authorized total), or a capture or refund applied (the
    operation the provider lists)."""
    at = u.now()
    response = note_held(txn, dict(txn.response), held)
    response["reconciled"] = {"state": result.state, "note": note}
    u.update_transaction(replace(
        txn, status=status, response=response, updated_at=at,
        finished_at=None if status == S.ACCEPTED else at,
        # An accepted operation holds what the provider answered before deciding it (a sale's
        # payment, not yet the capture it became): settled, it takes the reference of what it became.
        provider_reference=(reference or txn.provider_reference) if txn.status == S.ACCEPTED
        else (txn.provider_reference or reference),
        settled_by=None if status == S.ACCEPTED else SettledBy.RECONCILE,
        retryable=retryable, **concluded(txn, status, note, applied_nowhere=retryable),
    ))
    return Settlement(txn.id, txn.payment_id, txn.kind, status, note)


def _capture_closed(payment: Payment, result: CommandResult) -> bool:
    """Whether the provider takes no further capture of the payment's authorization: it reports
    it captured, or nothing left to capture (`CommandResult.capturable`), whatever its state says
    of refunds (an authorization its captures took all of, one of them undone since, while another
    is partly refunded). Read only of an authorization that stands: nothing is capturable either
    while the buyer or the provider has not decided it yet, and it may still be authorized then.
    What is left above zero closes nothing: less than the ledger's rest can be captures in flight
    the provider holds (they count against it there, and are in flight in the ledger)."""
    if payment.flow != K.AUTHORIZE or result.state not in _ESTABLISHED:
        return False
    capturable = _money(result.capturable, payment.currency)
    return result.state == ProviderState.CAPTURED or (capturable is not None and capturable.minor == 0)


def _released_after_capture(result: CommandResult, currency: str) -> bool:
    """Whether the provider holds part of the authorization captured, the rest not: what a void
    after a partial capture leaves (or a final partial capture)."""
    captured, authorized = _money(result.captured, currency), _money(result.authorized, currency)
    return captured is not None and authorized is not None and 0 < captured.minor < authorized.minor


def _sale_undone(payment: Payment, result: CommandResult) -> ProviderOperation | None:
    """The sale itself, when the provider holds it failed but lists it (its own reference) as a
    capture that took effect and was reversed since: a lost sale that made it is not failed."""
    if payment.flow != K.SALE or not result.reference:
        return None
    return next((op for op in result.operations if op.kind == K.CAPTURE and op.status == "reversed"
                 and op.reference == result.reference and op.amount.currency == payment.currency), None)


def _open(txn: Transaction, note: str) -> Settlement:
    return Settlement(txn.id, txn.payment_id, txn.kind, None, note)


def unfinished(txn: Transaction) -> bool:
    """Whether reconciliation found this open first operation made but unfinished at the provider."""
    reconciled = txn.response.get("reconciled")
    return txn.open and isinstance(reconciled, dict) and reconciled.get("unfinished") is True


def _unfinished(u: LedgerUnit, txn: Transaction, result: CommandResult) -> Settlement:
    """The provider made the first operation but holds it waiting for a step of its own that only
    a resend under its key takes (a sale authorized, not submitted for settlement): nothing is
    concluded, and the transaction stays open. An accepted one becomes unknown, the status a resend
    is made from (an accepted one is never resent: the provider decides it), keeping its answer.
    Either way the row says so (`response["reconciled"]["unfinished"]`): only such a row is
    finished by `resend_unfinished`, whose resend holds what the ledger keeps, not the whole request."""
    note = (f"the provider reports {result.state}: it made the {txn.kind} but holds it unfinished; a resend under "
            "its idempotency key finishes it (the Janitor's, or 'paywire reconcile': resend_unfinished())")
    if txn.status == S.PENDING:
        return _open(txn, note)  # its own request is still in flight: its answer, or its life, first
    response = {**txn.response, "reconciled": {"state": result.state, "note": note, "unfinished": True}}
    if txn.status == S.ACCEPTED:
        u.update_transaction(replace(
            txn, status=S.UNKNOWN, response=response, updated_at=u.now(),
            provider_reference=txn.provider_reference or result.reference,
            error_type=None, error_code=None, error_message=note,
        ))
    elif not unfinished(txn):  # unknown: what it was sent with and why it is unknown stay as they are
        u.update_transaction(replace(txn, response=response, updated_at=u.now()))
    return Settlement(txn.id, txn.payment_id, txn.kind, None, note, resend=True)


def _listed_void(txn: Transaction, voids: Sequence[ProviderOperation]) -> ProviderOperation | None:
    """The listed void of the authorization `txn` was sent to (a payment may hold several: one
    reauthorized, and its reauthorization); any listed where its request does not name one."""
    target = txn.request.get("reference")
    return next((op for op in voids if not target or op.reference == target), None)


def _absent(u: LedgerUnit, txn: Transaction, at: datetime, what: str, result: CommandResult) -> Settlement:
    """The provider does not hold the operation: failed once its request can no longer land."""
    if txn.status == S.ACCEPTED:
        return _open(txn, f"the provider accepted it but {what}; check it with the provider")
    if not txn.expired(at):
        return _open(txn, f"{what}, but the request may still land until {txn.settle_after:%Y-%m-%d %H:%M:%S} "
                          "UTC; reconcile again after that")
    return _finish(u, txn, S.FAILED, f"{what} after the request's longest life: it was not applied", result,
                   retryable=True)  # the provider never got it: sending it again with its key is safe


def settle(u: LedgerUnit, payment: Payment, result: CommandResult, at: datetime | None = None,
           capabilities: Capabilities | None = None) -> tuple[Payment, list[Settlement], list[Mismatch]]:
    """Settle the payment's open transactions from a fetch `result` (inside a locked unit);
    `capabilities`: the payment's method's, which say what its provider's reading lists."""
    at = at or u.now()
    out: list[Settlement] = []
    currency = payment.currency
    state = result.state
    txns = u.transactions(payment.id)
    busy = {t.kind for t in txns if t.status == S.PENDING}  # live workers will record these themselves
    # The provider took the payment in another currency (Braintree's default merchant account):
    # what it holds is not what the ledger's operations ask for.
    foreign = next((m.currency for m in (result.amount, result.authorized, result.captured, result.refunded,
                                         result.capturable)
                    if m is not None and m.currency != currency), None)

    known = payment.reference is not None  # the provider made the payment object, and answered so
    refs = dict(payment.references)
    refs.update({k: v for k, v in result.references.items() if v})
    if result.references.get("authorization") and not result.references.get(REAUTHORIZATION_UNDECIDED):
        # A reading of the authorization naming no undecided reauthorization: the provider created,
        # voided or forgot it since, and what it reads of the authorization is what it takes.
        refs.pop(REAUTHORIZATION_UNDECIDED, None)
    payment = replace(payment, reference=payment.reference or result.references.get("payment")
                           or result.reference, references=refs)

    waiting: bool | None = None  # the reading found the first operation waiting for the buyer
    for txn in (t for t in txns if t.kind in K.INITIAL and t.status in (S.UNKNOWN, S.ACCEPTED)):
        if busy & K.INITIAL:
            out.append(_open(txn, "a first operation is in flight"))
        elif state == ProviderState.NOT_FOUND and known:
            # Read by the reference of an object the provider made (a payment waiting for its
            # buyer, an accepted sale): not finding it now (a sandbox reset, a method pointed at
            # another account) says nothing of what it did with the request.
            out.append(_open(txn, "the provider no longer finds the payment it made; check it by hand"))
        elif state == ProviderState.NOT_FOUND:
            out.append(_absent(u, txn, at, "the provider has no such payment", result))
            if out[-1].status == S.FAILED and payment.authorized.minor == 0:
                payment = replace(payment, failed=True)
        elif state == ProviderState.FAILED and (sold := _sale_undone(payment, result)) is not None:
            # The sale took effect and the provider undid it since (declined at settlement): it
            # succeeded, and its reversal is recorded below, as for a sale the ledger held.
            out.append(_finish(u, txn, S.SUCCEEDED, f"the provider reports the sale {sold.status}: it took effect, "
                                                    "then was undone", result, result.reference, held=sold.amount))
        elif state == ProviderState.FAILED:
            out.append(_finish(u, txn, S.FAILED, "the provider reports failed: it did not take effect", result,
                               result.reference))
            if payment.authorized.minor == 0:
                payment = replace(payment, failed=True)
        elif foreign is not None:
            out.append(_open(txn, f"the provider holds the payment in {foreign}, not {currency}; check it by hand"))
        elif result.unfinished:
            out.append(_unfinished(u, txn, result))
        elif state == ProviderState.PROCESSING:
            if txn.status == S.ACCEPTED:
                out.append(_open(txn, "the provider is still processing it"))
            else:
                out.append(_finish(u, txn, S.ACCEPTED, "the provider accepted it and decides later", result,
                                   result.reference))
        elif txn.kind == K.COMPLETE and state in (ProviderState.ACTION_REQUIRED, ProviderState.PENDING):
            # Still waiting for the buyer, or to be completed (PayPal's approved order): this
            # completion has not landed, and may yet.
            out.append(_absent(u, txn, at, "the provider has not completed the payment", result))
        elif state == ProviderState.ACTION_REQUIRED:
            out.append(_finish(u, txn, S.ACTION_REQUIRED, "the provider waits for the buyer", result,
                               result.reference))
            # The reading may name no action (PayPal's order read has no approval link): the
            # payment waits all the same, with the action its answer gave, if any.
            payment = replace(payment, action=result.action or payment.action)
            waiting = True
        elif state in _ESTABLISHED:
            out.append(_finish(u, txn, S.SUCCEEDED, f"the provider reports {state}", result, result.reference,
                               held=result.authorized))
            if payment.flow == K.AUTHORIZE and "authorization" not in payment.references and result.reference:
                payment = replace(payment, references={**payment.references, "authorization": result.reference})
        else:
            out.append(_open(txn, f"the provider reports {state}; later"))

    txns = u.transactions(payment.id)
    if (state == ProviderState.FAILED and rules.waits(payment) and payment.authorized.minor == 0
            and not rules.in_flight(payment, txns).initial):
        # Waiting for a buyer, but the provider holds the payment failed (authentication failed,
        # or canceled before anything was authorized) and no answer or event said so: nobody can
        # finish it now.
        payment = replace(payment, failed=True)
    learnt: list[str] = []
    for kind in (K.CAPTURE, K.REFUND):
        pending = [t for t in txns if t.kind == kind and t.status in (S.UNKNOWN, S.ACCEPTED)]
        if not pending:
            continue
        if kind in busy:
            out.extend(_open(t, "an operation of this kind is in flight") for t in pending)
            continue
        decisions: Sequence[tuple[Settlement | None, str | None]]
        if result.operations:
            listed = [op for op in result.operations if op.kind == kind]
            decisions = _by_operations(u, pending, listed, txns, at, result)
        elif _money(getattr(result, _TOTAL[kind]), currency) is not None:
            decisions = _by_totals(u, payment, pending, txns, kind, at, result)
        else:
            out.extend(_open(t, "the provider gave neither its operations nor a total") for t in pending)
            continue
        for decision, reference in decisions:
            if reference:
                learnt.append(reference)
            if decision is None:
                continue  # a capture or refund made outside paywire, still undecided as recorded: nothing to report
            out.append(decision)
            if decision.status == S.SUCCEEDED and kind == K.CAPTURE:
                txn = next(t for t in pending if t.id == decision.transaction_id)
                if txn.request.get("final"):
                    payment = replace(payment, capture_closed=True)
            elif decision.status == S.FAILED and kind == K.CAPTURE and reference and capabilities is not None:
                # Listed failed, the capture was made: a final one declined since may have closed the
                # authorization for good (`rules.closed_by_declined`).
                failed = u.transaction(decision.transaction_id)
                if failed is not None and rules.closed_by_declined(failed, capabilities):
                    payment = replace(payment, capture_closed=True)

    txns = u.transactions(payment.id)
    # The time of this reading: of the refunds it records undecided and of the payment it writes,
    # so a refund's failure can tell that no write since raised the floors it sets (`reversal.fail_open_refund`).
    stamp = u.now()
    # Captures first: a refund made beside paywire of a capture made so is then recorded on it.
    if not busy & {K.CAPTURE, *K.INITIAL}:
        for recorded, reference in _captures_outside(u, payment, result, txns, learnt):
            out.append(recorded)
            learnt.append(reference)
            made = u.transaction(recorded.transaction_id) if recorded.status == S.SUCCEEDED else None
            if made is not None and made.request.get("final"):
                payment = replace(payment, capture_closed=True)  # as the service's own final capture closes it
        txns = u.transactions(payment.id)
    if K.REFUND not in busy:
        for recorded, reference in _refunds_outside(u, payment, result, txns, learnt, stamp):
            out.append(recorded)
            learnt.append(reference)
        txns = u.transactions(payment.id)
    # A refund or capture the provider lists as failed or reversed after the ledger recorded it
    # succeeded was undone (a refund returned, a capture declined at settlement or taken back by a
    # chargeback); so was a sale the provider holds as failed.
    if state == ProviderState.FAILED and payment.flow == K.SALE:
        for txn in [t for t in txns if t.kind in K.INITIAL and reversible(payment, t)]:
            payment = reverse(u, payment, txn, origin="reconcile", note="the provider reports the sale failed")
    for op in (o for o in result.operations if o.kind in (K.REFUND, K.CAPTURE) and o.status in _UNDONE):
        undone = next((t for t in txns if t.kind == op.kind and reversible(payment, t)
                       and t.provider_reference == op.reference), None)
        if undone is not None:
            payment = reverse(u, payment, undone, origin="reconcile",
                              note=f"the provider reports {op.kind} {op.reference} {op.status}")

    # Voids after a capture, as the provider lists them; a provider that lists such voids
    # (`void_after_capture`) listing none of a void's authorization says it did not release the
    # rest (a final capture did).
    voids = [op for op in result.operations if op.kind == K.VOID and op.status == "succeeded"]
    lists_voids = capabilities is not None and capabilities.void_after_capture
    for txn in (t for t in txns if t.kind == K.VOID and t.status in (S.UNKNOWN, S.ACCEPTED)):
        listed_void = _listed_void(txn, voids)
        if state == ProviderState.VOIDED:
            out.append(_finish(u, txn, S.SUCCEEDED, "the provider reports voided", result))
        elif state == ProviderState.FAILED and payment.authorized.minor == 0:
            # A cancel of a payment waiting for its buyer (nothing else with nothing authorized is
            # voided): the provider holds such a payment, once cancelled, as failed, holding
            # nothing. Before the cancel can no longer land, the payment may still be one the
            # buyer can pay (after a failed 3-D Secure): wait for that.
            out.append(_finish(u, txn, S.SUCCEEDED, "the provider holds the payment failed, nothing authorized: "
                                                    "nothing is left to cancel", result)
                       if txn.expired(at) else _open(txn, "the provider reports failed; the cancel may still land"))
        elif state == ProviderState.NOT_FOUND:
            # A void acts on a payment the provider answered about (authorized, or waiting for its
            # buyer): no longer finding it (a sandbox reset, a method pointed at another account)
            # says nothing of what it did with the void.
            out.append(_open(txn, "the provider no longer finds the payment it held; check it by hand"))
        elif state in _ESTABLISHED and listed_void is not None:
            # A void after a capture (`void_after_capture`): the provider reads captured, as after
            # a final capture, and lists the void that released the rest.
            out.append(_finish(u, txn, S.SUCCEEDED, f"the provider lists the void of {listed_void.reference}, "
                                                    f"which released {listed_void.amount} after its captures",
                                                    result, listed_void.reference))
        elif (state in _ESTABLISHED and not lists_voids and _capture_closed(payment, result)
              and _released_after_capture(result, currency)):
            # A capture made beside paywire before the void arrived, and nothing left to capture:
            # a provider that voids what an authorization has left may have done so, and its
            # reading does not say which.
            out.append(_open(txn, f"the provider reports {state}, a capture made and nothing left to capture: the "
                                  "void may be what released the rest; check it by hand"))
        elif state in _ESTABLISHED:
            out.append(_absent(u, txn, at, f"the provider reports {state}, not voided", result))
        else:
            out.append(_open(txn, f"the provider reports {state}; later"))

    # What the provider reports now replaces what events reported before (a floor may have counted
    # a refund that was still pending and then failed): the ledger never claims more than it holds.
    provider = {name: _money(getattr(result, name), currency) for name in ("authorized", "captured", "refunded")}
    if state == ProviderState.ACTION_REQUIRED:
        # Waiting for its buyer, the payment holds nothing yet, whatever amount a plugin's reading
        # names (the amount asked, as a total): the ledger never claims a hold before the buyer acted.
        provider = {name: Money.zero(currency) for name in provider}
    payment = replace(
        payment,
        observed_authorized=_given(provider["authorized"], payment.observed_authorized),
        observed_captured=_given(provider["captured"], payment.observed_captured),
        observed_refunded=_given(provider["refunded"], payment.observed_refunded),
    )
    # Voided when nothing is captured once the reversals above are counted (a capture declined at
    # settlement that took all of the authorization), and the provider's totals replace the floors
    # an earlier reading left (a capture made without paywire, then declined: no transaction of
    # the ledger's to reverse).
    released = state == ProviderState.VOIDED and rules.derive(payment, u.transactions(payment.id)).captured.minor == 0
    payment = replace(
        payment,
        capture_closed=payment.capture_closed or _capture_closed(payment, result),
        voided=payment.voided or released,
        updated_at=stamp,
    )
    payment = rules.derive(payment, u.transactions(payment.id), waiting=waiting)
    u.update_payment(payment)
    u.add_references(payment.method, payment.id, [payment.reference or "", *payment.references.values(), *learnt])
    if state == ProviderState.NOT_FOUND:
        # The provider no longer finds a payment it held (a sandbox reset, a method pointed at
        # another account): it shows none of the ledger's money. Nothing is taken back on that
        # word alone, but the payment is reported.
        provider = {name: Money.zero(currency) for name in provider}
    mismatches = [Mismatch(payment.id, name, getattr(payment, name), value)
                  for name, value in provider.items() if value is not None and getattr(payment, name) != value]
    return payment, out, mismatches


def _by_operations(u: LedgerUnit, pending: list[Transaction], listed: list[ProviderOperation],
                   txns: Sequence[Transaction], at: datetime,
                   result: CommandResult) -> list[tuple[Settlement | None, str | None]]:
    """Each open transaction matched to one operation the provider lists: by the idempotency key
    it was sent with, then by its known reference, then by amount among the operations no
    transaction has claimed, that did not fail (and whose key is not known: one the provider
    reports is another's, and "" says none of paywire's requests made it) and, for a refund, that
    the provider does not report on another capture than the refund's own; open transactions
    outnumbering the operations they could each be stay open, and so does one with no match while
    an operation of less is left, which may be it applied in part (as do the open ones of that
    operation's amount: it may be theirs or the larger one's)."""
    kind = pending[0].kind
    claimed = {t.provider_reference for t in txns if t.kind == kind and t.provider_reference and t not in pending}
    free = [op for op in listed if op.reference not in claimed]
    decisions: list[tuple[Settlement | None, str | None]] = []
    unmatched: list[Transaction] = []
    for txn in pending:  # the exact matches first, so an amount match never takes another's operation
        op = next((o for o in free if o.idempotency_key and o.idempotency_key == txn.idempotency_key), None)
        op = op or next((o for o in free if txn.provider_reference and o.reference == txn.provider_reference), None)
        if op is None:
            unmatched.append(txn)
            continue
        free.remove(op)
        decisions.append(_matched(u, txn, op, result))
    same: dict[Money | None, list[Transaction]] = {}
    for txn in unmatched:
        same.setdefault(txn.amount, []).append(txn)
    captures = {t.id: _capture_of(t, txns) for t in unmatched}
    absent: list[Transaction] = []
    taken: set[str] = set()  # matched by amount
    # The largest amounts first: an operation of less than an open one asked that no operation of
    # its own amount took may be it, applied in part (a provider honouring part of a capture).
    for amount, group in sorted(same.items(), key=lambda item: -(item[0].minor if item[0] else 0)):
        # By amount alone, a failed operation is no evidence about this request (it may be an
        # earlier declined attempt of the same amount): without a match it is absent instead.
        ops = [o for o in free if o.idempotency_key is None and o.amount == amount and o.status != "failed"]
        larger = [t for t in unmatched if t.id not in taken and t.amount is not None and amount is not None
                  and t.amount.currency == amount.currency and t.amount.minor > amount.minor
                  and any(_may_be(o, captures[t.id]) for o in ops)]
        if larger:
            # These operations may be the open ones of their amount, or a larger one applied in part:
            # which took effect is unknown (the larger ones find them below, and stay open too).
            for txn in group:
                if any(_may_be(o, captures[txn.id]) for o in ops):
                    decisions.append((_open(txn, f"the provider lists {txn.kind}(s) of {amount}, which may be this "
                                                 f"one or a larger open one applied in part; check it by hand"), None))
                else:
                    absent.append(txn)
            continue
        left = list(group)
        while left:
            txn = left[0]
            fits = [o for o in ops if _may_be(o, captures[txn.id])]
            rivals = [t for t in left if any(_may_be(o, captures[t.id]) for o in fits)]
            if not fits:
                absent.append(txn)  # unless an operation of less may be it, applied in part (below)
                left.remove(txn)
            elif len(fits) < len(rivals):
                # Fewer operations than open requests that each could be: which of them took
                # effect is unknown, and settling the wrong one lets the other's retry count the
                # money twice.
                decisions.extend((_open(t, f"the provider lists {len(fits)} {t.kind}(s) of {amount} for {len(rivals)} "
                                           "open ones: which took effect is unknown; check it by hand"), None)
                                 for t in rivals)
                ops = [o for o in ops if o not in fits]
                left = [t for t in left if t not in rivals]
            else:
                ops.remove(fits[0])
                free.remove(fits[0])
                decisions.append(_matched(u, txn, fits[0], result))
                taken.add(txn.id)
                left.remove(txn)
    # A provider may apply a capture or refund in part (an issuer honouring part of a capture):
    # an operation listed without its key (None: not known) for less than one asked may be it,
    # and concluded "not applied", its retry would move the money again.
    for txn in absent:
        # One in another currency may be it too: what it applied cannot be told in the payment's terms.
        alien = next((o for o in free if o.idempotency_key is None and o.status != "failed" and txn.amount is not None
                      and o.amount.currency != txn.amount.currency and _may_be(o, captures[txn.id])), None)
        if alien is not None:
            decisions.append((_open(txn, f"the provider lists {txn.kind} {alien.reference} of {alien.amount}, not "
                                         f"in {txn.amount.currency if txn.amount else 'its currency'}: it may be this "
                                         "one; check it by hand"), None))
            continue
        part = next((o for o in free if o.idempotency_key is None and o.status != "failed" and txn.amount is not None
                     and o.amount.currency == txn.amount.currency and o.amount.minor < txn.amount.minor
                     and _may_be(o, captures[txn.id])), None)
        if part is not None:
            decisions.append((_open(txn, f"the provider lists {txn.kind} {part.reference} of {part.amount}, less than "
                                         f"the {txn.amount} asked: it may be this one applied in part; check it by "
                                         "hand"), None))
            continue
        on = f" on {captures[txn.id]}" if captures[txn.id] else ""
        decisions.append((_absent(u, txn, at, f"the provider lists no such {txn.kind}{on}", result), None))
    return decisions


def _refunds_outside(u: LedgerUnit, payment: Payment, result: CommandResult, txns: Sequence[Transaction],
                     learnt: Sequence[str], at: datetime) -> list[tuple[Settlement, str]]:
    """Refunds the provider lists succeeded or undecided (accepted) that are provably none of the
    ledger's: made beside paywire (in its dashboard), their events not delivered. Each is recorded
    as the provider lists it, of origin "reconcile", on the capture (or sale) it names: an
    undecided one counts in flight until a later reading or its event decides it, as a pending
    refund's event records it; a succeeded one counts against that capture (a provider that
    refunds one capture at a time refuses more than it has left), where the refunded floor alone
    counts it against no capture, so a later refund could be sent to one too short of it. A
    succeeded one is recorded only on a capture the ledger holds apart from the payment's own
    objects (a sale, a PaymentIntent's charge): on those the refunded floor already bounds a
    refund, and still counts it.

    Provably none of the ledger's: its reference is no transaction's, nor one this reading matched;
    it carries no key of a refund of the ledger's (one made beside paywire may carry another
    transaction's: Braintree's refund inherits its sale's orderId, which may be the sale's key); no
    refund of the ledger's is open without its reference that it may be (the service sends the
    amount it resolved, which the provider refunds or refuses: an undecided one of the same amount;
    a succeeded one of its amount or more, or of another currency, on its capture or an unknown
    one, as `_by_operations` leaves such ones open); and, for a succeeded one, no succeeded refund
    of the ledger's that never learnt its reference applied its amount. One not proven so is left
    to the refunded floor (the provider's total), as a refund of the service's own whose answer
    was lost may be.

    Each undecided one notes the refunded total read beside it (`FLOOR_READ`), which cannot count
    it (no money moved), recorded `at` the time the reading writes the payment, so its failure can
    tell whether the floor still stands on that total alone (`reversal.fail_open_refund`)."""
    read = _money(result.refunded, payment.currency)
    held = {*(t.provider_reference for t in txns if t.provider_reference), *learnt}
    own = {payment.reference, result.reference, *payment.references.values()} - {payment.references.get("capture")}
    keys = {t.idempotency_key for t in txns if t.kind == K.REFUND}
    applied = {Money(held_minor(t), t.amount.currency) for t in txns if t.kind == K.REFUND
               and t.status == S.SUCCEEDED and not t.provider_reference and t.amount is not None}
    recorded: list[tuple[Settlement, str]] = []
    for op in result.operations:
        if (op.kind != K.REFUND or op.status not in _RECORDABLE or op.reference in held
                or op.amount.currency != payment.currency or (op.idempotency_key and op.idempotency_key in keys)
                or (op.status == "succeeded" and op.amount in applied)
                or any(_may_be_own(op, t, txns) for t in txns)):
            continue
        # The capture (or the sale) it refunds, where the ledger holds what the provider names.
        parent = next((t for t in txns if op.parent and t.provider_reference == op.parent and t.status == S.SUCCEEDED
                       and (t.kind == K.CAPTURE or (payment.flow == K.SALE and t.kind in K.INITIAL))), None)
        if op.status == "succeeded" and (parent is None or parent.kind != K.CAPTURE or op.parent in own):
            continue  # counted against no capture of its own: the refunded floor counts it as before
        held.add(op.reference)
        floor = {FLOOR_READ: read.minor} if read is not None and op.status == "accepted" else {}
        recorded.append(_record_listed(u, payment, result, op, at, parent=parent,
                                       request={"capture": op.parent} if op.parent else {}, response=floor))
    return recorded


def _may_be_own(op: ProviderOperation, txn: Transaction, txns: Sequence[Transaction]) -> bool:
    """Whether `op`, a listed refund, may be `txn`, a refund of the ledger's open without its
    reference: undecided, one of its amount; succeeded, one of its amount or more (applied in
    part), or of another currency, that may be on the capture `op` names."""
    if txn.kind != K.REFUND or not txn.open or txn.provider_reference:
        return False
    if op.status == "accepted":
        return txn.amount == op.amount
    return _may_be(op, _capture_of(txn, txns)) and (
        txn.amount is None or txn.amount.currency != op.amount.currency or txn.amount.minor >= op.amount.minor)


def _captures_outside(u: LedgerUnit, payment: Payment, result: CommandResult, txns: Sequence[Transaction],
                      learnt: Sequence[str]) -> list[tuple[Settlement, str]]:
    """Captures of the payment's authorization the provider lists succeeded or undecided
    (accepted) that are provably none of the ledger's: made beside paywire (in PayPal's dashboard,
    or a bank account's partial capture in Braintree's Control Panel, which notifies nothing until
    it settles), their events not delivered. Each is recorded as the provider lists it, of origin
    "reconcile", with its own reference and amount: an undecided one counts in flight until a later
    reading or its event decides it; a succeeded one is a capture a refund can act on, and is kept
    to (a provider that refunds one capture at a time refuses more than it holds), where the
    captured floor alone would let a refund take the whole total from the latest one.

    Provably none of the ledger's: its reference is no transaction's, nor the payment's own object
    (a sale's or a PaymentIntent's own capture lists under it), nor one this reading matched; it
    carries no key of a capture of the ledger's; no capture or first operation is open without its
    reference that it may be: one of its amount or more (a provider may apply a capture in part)
    or of another currency, as `_by_operations` leaves such ones open (taken for one made beside
    paywire, that one would find no operation left, and be concluded not applied though it took
    effect); and, for a succeeded one, no succeeded capture of the ledger's that never learnt its
    reference applied its amount (it may be that one). One not proven so is left to the captured
    floor (the provider's total), as a capture of the service's own whose answer was lost may be.

    One the provider lists final (`ProviderOperation.final`) is recorded final, as the service's
    own final capture is: undecided, it is a final capture in flight, which no further capture
    passes (the provider takes none while it decides); succeeded, or once decided so, it closes
    capture; failed, capture is as the provider then holds it."""
    if payment.flow != K.AUTHORIZE:
        return []  # a sale's capture is its first operation's
    # The payment's own objects; not the latest capture or refund a reading names (PayPal's), which
    # is one of its operations.
    own = (ref for refs in (payment.references, result.references) for name, ref in refs.items() if name not in _TOTAL)
    held: set[str | None] = {*(t.provider_reference for t in txns), *learnt, payment.reference, result.reference, *own}
    keys = {t.idempotency_key for t in txns if t.kind == K.CAPTURE}
    nameless = [t for t in txns if t.open and not t.provider_reference and (t.kind == K.CAPTURE or t.kind in K.INITIAL)]
    applied = {Money(held_minor(t), t.amount.currency) for t in txns if t.kind == K.CAPTURE
               and t.status == S.SUCCEEDED and not t.provider_reference and t.amount is not None}
    recorded: list[tuple[Settlement, str]] = []
    for op in result.operations:
        if (op.kind != K.CAPTURE or op.status not in _RECORDABLE or op.reference in held
                or op.amount.currency != payment.currency or (op.idempotency_key and op.idempotency_key in keys)
                or (op.status == "succeeded" and op.amount in applied)
                or any(t.amount is None or t.amount.currency != op.amount.currency or t.amount.minor >= op.amount.minor
                       for t in nameless)):
            continue
        held.add(op.reference)
        recorded.append(_record_listed(u, payment, result, op, u.now(), request={"final": True} if op.final else {}))
    return recorded


def _record_listed(u: LedgerUnit, payment: Payment, result: CommandResult, op: ProviderOperation, at: datetime, *,
                   parent: Transaction | None = None, request: Mapping[str, Any] | None = None,
                   response: Mapping[str, Any] | None = None) -> tuple[Settlement, str]:
    """Record `op`, a refund or capture the provider lists (undecided or succeeded) and made
    outside paywire, as a transaction of origin "reconcile" in the status listed (its key
    names the listed object, so a later reading finds it), and its settlement; `request` and
    `response` add to the summaries."""
    key = f"reconcile-{op.reference}"
    status = _OPERATION_STATUS[op.status]
    note = f"the provider lists {op.kind} {op.reference} of {op.amount}, made outside paywire, {op.status}"
    txn = Transaction(
        id=new_id("txn"), payment_id=payment.id, method=payment.method, kind=op.kind, amount=op.amount,
        status=status, idempotency_key=key,
        fingerprint=fingerprint(op.kind, payment.method, payment.id, {"listed": key}),
        provider_reference=op.reference, parent_id=parent.id if parent else None, origin="reconcile",
        request={"listed": op.reference, **(request or {})},
        response={"amount": f"{op.amount.format()} {op.amount.currency}",
                  "reconciled": {"state": result.state, "note": note}, **(response or {})},
        created_at=at, updated_at=at, finished_at=None if status == S.ACCEPTED else at,
        settled_by=None if status == S.ACCEPTED else SettledBy.RECONCILE,
    )
    u.insert_transaction(txn)
    return Settlement(txn.id, payment.id, op.kind, status, note), op.reference


def _capture_of(txn: Transaction, txns: Sequence[Transaction]) -> str | None:
    """The provider's reference of the capture (or sale) a refund gives money back from, as
    `rules._undone` names it: its parent's, the one its event named, or the object it was sent to."""
    if txn.kind != K.REFUND:
        return None
    parent = next((t for t in txns if t.id == txn.parent_id), None) if txn.parent_id else None
    return (parent.provider_reference if parent else None) or txn.request.get("capture") or txn.request.get("reference")


def _may_be(op: ProviderOperation, capture: str | None) -> bool:
    """Whether `op` may be the refund of `capture` (either unknown: it may)."""
    return op.parent is None or capture is None or op.parent == capture


def _matched(u: LedgerUnit, txn: Transaction, op: ProviderOperation,
             result: CommandResult) -> tuple[Settlement | None, str | None]:
    """The outcome of `txn` as the provider lists `op`; no settlement for one made outside
    paywire that the provider still holds undecided: recorded as it is (accepted), nothing is
    open that paywire sent, and the money rules already count it in flight."""
    status = _OPERATION_STATUS.get(op.status)
    if txn.amount is not None and op.amount.currency != txn.amount.currency and status != S.FAILED:
        # What it applied cannot be told in the payment's terms (and recorded as all it asked,
        # the ledger could claim more than the provider holds).
        return _open(txn, f"the provider's {txn.kind} {op.reference} is {op.status} for {op.amount}, not in "
                          f"{txn.amount.currency}; check it by hand"), op.reference
    if status == S.ACCEPTED and txn.status == S.ACCEPTED and txn.origin != "service":
        return None, op.reference
    if status is None or (status == S.ACCEPTED and txn.status == S.ACCEPTED):
        return _open(txn, f"the provider's {txn.kind} {op.reference} is {op.status}"), op.reference
    # What the provider lists it applied counts, when less than asked (a capture honoured in part).
    return _finish(u, txn, status, f"the provider's {txn.kind} {op.reference} is {op.status}", result,
                   op.reference, held=op.amount if status == S.SUCCEEDED else None), op.reference


def _by_totals(u: LedgerUnit, payment: Payment, pending: list[Transaction], txns: Sequence[Transaction],
               kind: str, at: datetime, result: CommandResult) -> list[tuple[Settlement, str | None]]:
    """For a plugin whose fetch lists no operations: the provider's running total, less what the
    ledger's succeeded transactions applied, is what the open ones applied together. A provider
    may apply a capture or refund in part (`held`), so each open one applied nothing or anything
    up to what it asked: they are settled only where the total holds all they asked (each in
    full), and concluded not applied only where it holds exactly what the ledger's own applied (a
    total below that says the provider undid one since, which a total cannot name). Any other total may be made
    of them in many ways (what one asked matching what another applied in part, or an operation
    made outside paywire whose event has not come yet): they are left open, saying so."""
    currency = payment.currency
    provider_total = _money(getattr(result, _TOTAL[kind]), currency)
    assert provider_total is not None
    own = rules.derive(replace(payment, observed_authorized=Money.zero(currency),
                                    observed_captured=Money.zero(currency),
                                    observed_refunded=Money.zero(currency)), txns)
    recorded = own.captured if kind == K.CAPTURE else own.refunded
    delta = provider_total.minor - recorded.minor
    if delta < 0:
        # The provider undid one the ledger holds succeeded since (a refund failed at the bank, a
        # capture declined at settlement), which a total cannot name: the open ones may have applied.
        return [(_open(t, f"the provider's {kind} total {provider_total} is below the {recorded} the ledger's "
                          "succeeded ones applied (one was undone since): whether this one applied cannot be told; "
                          "check it by hand"), None) for t in pending]
    if delta == 0:
        return [(_absent(u, txn, at, f"the provider's {kind} total {provider_total} does not include it", result),
                 None) for txn in pending]
    if delta != sum(t.amount.minor if t.amount else 0 for t in pending):
        return [(_open(t, f"the provider's {kind} total {provider_total} may include it or another operation, in "
                          "full or in part: it cannot be split among the open ones; check it by hand"), None)
                for t in pending]
    # The provider's latest object of this kind names the operation, when it is the only open one.
    latest = result.references.get(kind) if len(pending) == 1 else None
    latest = latest if latest not in {t.provider_reference for t in txns} else None
    return [(_finish(u, txn, S.SUCCEEDED, f"the provider's {kind} total is {provider_total}", result, latest), latest)
            for txn in pending]
