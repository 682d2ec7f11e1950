"""Applying verified webhook events to payments: idempotently and in any arrival order.

Rules (each runs inside a locked ledger unit, after the event was stored once per
(provider, event id)):

- A running total the provider reports (`total`, or the `amount` of an event about the payment
  object itself) raises the payment's provider-reported floor (`observed_*`); totals are the
  larger of that floor and the ledger's own succeeded transactions, so a total never moves
  backwards and nothing the service recorded is counted twice.
- An event about a capture or refund the ledger knows (by provider reference) settles that
  transaction if it was accepted (outcome later) or unknown, and otherwise changes nothing (but a
  capture reconciliation recorded from a list that said nothing of finality learns it was
  final: the payment's capture closes); a failed event naming one fails it. A captured event
  naming the payment of a sale still open (accepted before the provider captured anything)
  settles that sale, which then names the capture it became.
- An event about a capture or refund the ledger does not know is recorded as a transaction of
  origin "webhook" (an operation made outside paywire, e.g. in the provider's dashboard) - unless
  an operation of that kind whose reference is not known yet is in flight (pending or unknown):
  then the event is deferred and applied again once that operation is recorded or reconciled;
  or unless a succeeded one that applied the same amount never learnt its reference: the event names it.
  A capture the provider says was final (`closes_capture`) is none sent not final (the provider
  reports finality as asked): it waits only for a capture sent final or a first operation, and
  while it waits it closes the payment's capture (a final capture took the authorization,
  whichever it is). The flag is stored with the event: one applied after it waited, deferred or
  unmatched (its payment not known yet), is applied by these same rules.
  Either way one operation at the provider is one transaction in the ledger.
- A refund_pending or capture_pending event (a refund or capture the provider holds undecided)
  about one the ledger does not know is recorded as an accepted refund or capture of origin
  "webhook" (one made in the provider's dashboard), with the same exceptions, so it counts in
  flight until decided; about one it knows (the service's own, or one decided since) it changes
  nothing, never reopening a decided one (but one reconciliation recorded from a list that said
  nothing of finality learns it was final). A pending capture of a sale is its first operation's.
- A captured event on a method that allows one capture per payment closes the payment's capture:
  the provider released what that capture left (as a final capture of the service's own does);
  so does the captured event of a capture made outside paywire that says it was final
  (`closes_capture`), recorded as such (a pending one, as a final capture in flight).
- Whether an event is trusted as it comes is the plugin's decision: an event that moves money is
  reported only when its signature binds the exact body, or after the plugin confirmed it by
  fetching the object from the provider.
- a failed event naming a refund that had succeeded, and a reversed event naming a refund, a
  capture or a sale that had, record its reversal: the provider undid it (a refund returned, a
  capture or sale declined at settlement); so do a reversed event naming one still open (only
  what succeeded can be undone) and a success event naming one a failed event failed while it
  was open (a refund returned after it was done, its failure delivered first); otherwise a
  reversed event is a failed one. One naming an object the ledger does not hold yet (the
  refund's own event or answer is still to come) is deferred until it does, so the refund is
  never counted without its failure; a failed one naming a capture or sale the ledger never held
  moved no money and waits for nothing, unless one in flight may become it; a reversed one
  naming, with its amount, a capture of an authorized payment the ledger never held (made
  beside paywire, undone before its own event came, which then comes as reversed too) records
  that capture and its reversal, unless one in flight may become it. While a reversed
  or failed event waits so, a running total applied before may count the object it undoes (a
  failed one: only a refund): the floors of those totals are dropped when it first waits, and no
  event's total raises them until it is applied (reconciliation still sets them).
- authorized, voided and failed events settle an unknown or accepted first operation or void, and set the
  voided/failed flags only while no money was captured (resp. authorized): a late event cannot
  undo money that moved. A voided event after part of an authorization was captured closes its
  capture: the provider released the rest, and settles only a void sent to the authorization it
  names (a reauthorized payment holds several). An authorized event naming its authorization records it as the one
  captures act on, and voids too unless a result named another (`VOID_TARGET`). One of a reauthorization (it
  names the authorization it renews, `REAUTHORIZED`) the payment does not act on yet replaces what the payment
  holds with what the reauthorization holds (`_reauthorization`), less or more: the one exception to floors that
  only rise. So does a voided event of one (the provider voids a reauthorization with the authorization it
  renews, also one it never created: PayPal's reading cannot tell them apart). A voided event while
  captures are only in flight waits for them (no further capture is sent meanwhile: `reported_waiting`).
- Events for no known payment are stored as unmatched and applied when a payment gains one of
  their references.

What an authorization still holds after the provider undid one of its captures, and what a
reversed event naming no capture, refund or sale of the ledger's undid, are not the event's to
say: the service reads the payment from the provider then (`PaymentService._catch_up`).
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs

from paywire.command.result import REAUTHORIZATION_UNDECIDED, REAUTHORIZED, VOID_TARGET
from paywire.gateway_definition import Capabilities
from paywire.ledger.interface import LedgerUnit
from paywire.ledger.model import (
    EventStatus,
    Payment,
    SettledBy,
    StoredEvent,
    Transaction,
    TransactionKind,
    TransactionStatus,
    replace,
)
from paywire.money import Money
from paywire.service import rules
from paywire.service.held import held_amount, held_minor, note_held
from paywire.service.keys import fingerprint, new_id
from paywire.service.outcome import concluded
from paywire.service.reversal import fail_open_refund, reverse, reversible, succeeded_first, totals_trusted, undo_waits
from paywire.webhook import SHARED_REFERENCES, EventKind

__all__ = ["apply_event", "apply_waiting", "reported_waiting"]

K = TransactionKind
S = TransactionStatus


def _settle(u: LedgerUnit, txn: Transaction, status: str, event: StoredEvent,
            reference: str | None = None) -> Transaction:
    """Record the event's outcome of an open `txn` and return it; `reference`: the object it
    became, when the event names one the transaction did not know (an accepted sale's capture)."""
    at = u.now()
    response = note_held(txn, dict(txn.response), event.amount if status == S.SUCCEEDED else None)
    response["settled_by"] = f"webhook {event.provider}/{event.event_id}"
    # A failure the provider decided is its answer under the key: sent again with that key, the
    # request would get the same answer (or the acceptance it replays), never a new operation.
    settled = replace(txn, status=status, response=response, updated_at=at, finished_at=at,
                      settled_by=SettledBy.WEBHOOK, retryable=False,
                      provider_reference=reference or txn.provider_reference,
                      **concluded(txn, status, f"the provider's event {event.event_id} reports it {event.kind}"))
    u.update_transaction(settled)
    u.set_looks({txn.id: None})  # settled: reconciliation's schedule forgets it
    return settled


# An event settles a transaction the provider holds but has not decided (accepted), or one whose
# answer was lost (unknown); a pending one is being sent, and its worker records it.
_SETTLEABLE = frozenset({TransactionStatus.UNKNOWN, TransactionStatus.ACCEPTED})


def _floor(current: Money, value: Money | None) -> Money:
    if value is None or value.currency != current.currency:
        return current
    return max(current, value)


def apply_event(u: LedgerUnit, payment: Payment, event: StoredEvent, caps: Capabilities) -> tuple[Payment, StoredEvent]:
    """Apply one event to its (locked) payment, of a method with `caps`; returns both as stored."""
    txns = u.transactions(payment.id)
    held = payment
    status, note = EventStatus.APPLIED, None
    money = event.total if event.total is not None else event.amount  # a zero is an amount too
    if money is not None and money.currency != payment.currency:
        note = f"ignored: the event is in {money.currency}, the payment in {payment.currency}"
    elif event.kind in (EventKind.CAPTURED, EventKind.REFUNDED):
        payment, status, note = _money_event(u, payment, txns, event)
        if event.kind == EventKind.CAPTURED and status == EventStatus.APPLIED and not caps.capture_multiple:
            # One capture is all the method allows: the provider released what it left.
            payment = replace(payment, capture_closed=True)
    elif event.kind == EventKind.AUTHORIZED and event.amount is not None and event.amount.minor == 0:
        note = "no effect: the provider reports nothing authorized"
    elif event.kind == EventKind.AUTHORIZED and _renews(payment, event):
        payment, note = _reauthorization(u, payment, event)
    elif event.kind == EventKind.AUTHORIZED:
        payment = replace(payment, observed_authorized=_floor(payment.observed_authorized,
                                                                    event.amount or held_amount(payment, txns)))
        # The authorization the event names is what a capture acts on (PayPal's, not its
        # order's), as the operation's own answer would have recorded it; a void too, unless a
        # result named another (`VOID_TARGET`: PayPal's original, which a reauthorization keeps).
        authorization = event.references.get("authorization") if payment.flow == K.AUTHORIZE else None
        for txn in txns:
            if txn.kind in (K.AUTHORIZE, K.COMPLETE) and txn.status in _SETTLEABLE and payment.flow == K.AUTHORIZE:
                _settle(u, txn, S.SUCCEEDED, event, authorization)
        if authorization and payment.references.get("authorization") != authorization:
            u.add_references(payment.method, payment.id, [authorization])
            payment = replace(payment, references={**payment.references, "authorization": authorization})
    elif event.kind == EventKind.VOIDED:
        if _renews(payment, event):
            # A reauthorization voided (with the authorization it renews), of which the payment
            # heard nothing else: what it held replaced what the payment held, as a reading says.
            payment, _ = _reauthorization(u, payment, event)
        flight = rules.in_flight(payment, txns)
        if payment.captured.minor == 0 and flight.captures.minor == 0:
            payment = replace(payment, voided=True)
            for txn in txns:
                if txn.kind == K.VOID and txn.status in _SETTLEABLE:
                    _settle(u, txn, S.SUCCEEDED, event)
        elif payment.captured.minor == 0:
            # Only captures in flight, which the provider refuses if the void stands: it waits for them.
            status, note = EventStatus.DEFERRED, "waits for the captures in flight to be recorded"
        elif payment.flow == K.AUTHORIZE:
            # A void after part was captured (PayPal allows it) releases the rest: nothing more
            # can be captured, and what was captured stands.
            payment = replace(payment, capture_closed=True)
            for txn in txns:
                if txn.kind == K.VOID and txn.status in _SETTLEABLE and _sent_to_named(txn, event):
                    _settle(u, txn, S.SUCCEEDED, event)
            note = "closes the capture: the provider released what was not captured"
        else:
            note = "ignored: the payment has captures, it cannot be voided"
    elif event.kind in (EventKind.FAILED, EventKind.REVERSED):
        payment, status, note = _failed_event(u, payment, txns, event, caps)
    elif event.kind == EventKind.REFUND_PENDING:
        status, note = _pending(u, payment, txns, event, K.REFUND)
    elif event.kind == EventKind.CAPTURE_PENDING:
        status, note = _pending(u, payment, txns, event, K.CAPTURE)
    elif event.kind == EventKind.APPROVED:
        note = "the buyer approved; complete() finishes the payment"
    else:
        note = f"no effect: {event.kind} events do not change payments"
    if status == EventStatus.APPLIED or payment is not held:  # a waiting event may change the payment too
        after = u.transactions(payment.id)
        derived = rules.derive(payment, after)
        if derived != held or after != txns:
            payment = replace(derived, updated_at=u.now())
            u.update_payment(payment)
        else:
            # Nothing changed (an event of no effect: Stripe sends several per payment): the row
            # stays as it was, so a reconciliation reading the provider meanwhile need not read again.
            payment = held
    event = attrs.evolve(event, status=status, payment_id=payment.id, note=note,
                         applied_at=u.now() if status == EventStatus.APPLIED else None)
    u.update_event(event)
    return payment, event


def _renews(payment: Payment, event: StoredEvent) -> bool:
    """Whether the event is of a reauthorization (it names the authorization it renews,
    `REAUTHORIZED`) the payment does not act on yet, of an authorization of the payment's, with its
    amount: it replaces what the payment holds. One it acts on already (the event delivered
    again, or reconciliation read it first) raises the floor as any authorized event does."""
    authorization = event.references.get("authorization")
    renewed = event.references.get(REAUTHORIZED)
    return (payment.flow == K.AUTHORIZE and event.amount is not None and authorization is not None
            and renewed is not None and renewed != authorization
            and ((payment.references.get("authorization"), payment.references.get(REAUTHORIZED))
                 != (authorization, renewed)
                 # read by reconciliation while the provider reviewed it: it held nothing then
                 or payment.references.get(REAUTHORIZATION_UNDECIDED) == authorization))


def _reauthorization(u: LedgerUnit, payment: Payment, event: StoredEvent) -> tuple[Payment, str]:
    """The payment once the reauthorization the event names replaced its authorization: captures
    act on it (voids still go to the one it renews, which the provider voids it through), and it
    holds what the reauthorization holds (`rules.reauthorized`), more or less than before. Not
    more than what was captured before plus the reauthorization's amount (what is left to capture
    is at most what it holds), nor more than the larger of what was authorized and its amount;
    never less than what was captured (`rules.derive`)."""
    assert event.amount is not None
    renewed, authorization = event.references[REAUTHORIZED], event.references["authorization"]
    before = max(payment.captured.minor - _captured_of(u.transactions(payment.id), authorization), 0)
    held = min(max(payment.authorized, event.amount), Money(before, payment.currency) + event.amount)
    references = {**payment.references, "authorization": authorization, REAUTHORIZED: renewed}
    references.setdefault(VOID_TARGET, renewed)
    references.pop(REAUTHORIZATION_UNDECIDED, None)  # created: captures act on it
    u.add_references(payment.method, payment.id, [authorization, renewed])
    return replace(payment, observed_authorized=held, references=references), \
        f"authorization {authorization} renews {renewed}: the payment holds {held}"


def _captured_of(txns: Sequence[Transaction], authorization: str) -> int:
    """What the ledger's succeeded captures made on `authorization` took (minor units): those sent
    to it, and those made outside paywire whose event named it (`_acted_on`), before the ledger
    learnt of it (their events may come before the authorization's own)."""
    undone = {t.parent_id for t in txns if t.kind == K.REVERSAL}
    return sum(held_minor(t) for t in txns if t.kind == K.CAPTURE and t.status == S.SUCCEEDED
               and t.id not in undone and authorization in (t.request.get("reference"), t.request.get("authorization")))


def _sent_to_named(void: Transaction, event: StoredEvent) -> bool:
    """Whether `void` was sent to the object the voided event names. A payment may hold several
    authorizations (PayPal's original and its reauthorizations), each voided on its own: an event
    voiding another says nothing of this void, nor does one of a reauthorization naming the
    authorization it renews (`REAUTHORIZED`). One whose request names no object: any."""
    target = void.request.get("reference")
    named = [ref for key, ref in event.references.items() if key != REAUTHORIZED]
    return not target or target == event.reference or target in named


def _money_event(u: LedgerUnit, payment: Payment, txns: list[Transaction],
                 event: StoredEvent) -> tuple[Payment, str, str | None]:
    captured = event.kind == EventKind.CAPTURED
    own_kind = K.CAPTURE if captured else K.REFUND
    obj = event.references.get(own_kind) or event.reference
    undone = {t.parent_id for t in txns if t.kind == K.REVERSAL}
    if obj and any(t.provider_reference == obj and t.id in undone for t in txns):
        # An event from before the provider undid it (a late delivery): its totals counted it.
        return payment, EventStatus.APPLIED, f"ignored: the provider undid {obj}"
    # Whether the running total the event reports (if it reports one) may raise a floor.
    about_payment = obj is not None and obj in (payment.reference, payment.references.get("authorization"))
    trusted = (event.total is None and not about_payment) or totals_trusted(u, payment, txns, own_kind)
    if event.total is not None and trusted:
        payment = _raise_floor(payment, captured, event.total)
    match = next(
        (t for t in txns if obj and t.provider_reference == obj and (
            t.kind == own_kind or (captured and payment.flow == K.SALE and t.kind in K.INITIAL))),
        None,
    )
    if match is not None and match.kind in K.INITIAL and match.status == S.FAILED and about_payment:
        # The failed first operation left the payment object (Stripe's PaymentIntent), which the
        # buyer may pay since (another card): the event reports that payment's running total, not
        # a success of the failed request that the provider undid.
        match = None
    if match is not None:
        done = succeeded_first(payment, match)
        if done is not None:
            # It succeeded, so its failure undid it (a refund returned after it was done), and a
            # running total sent in between may count it: undone, as when its success came first.
            note = f"event {event.event_id}: the provider reports {match.kind} {obj} succeeded, and failed it since"
            return reverse(u, payment, done, origin="webhook", note=note), EventStatus.APPLIED, \
                f"{match.kind} {match.id} was undone by the provider"
        settles = match.status in _SETTLEABLE
        if settles:
            _settle(u, match, S.SUCCEEDED, event)
        if (settles or match.status == S.SUCCEEDED) and match.kind == K.CAPTURE and (
                (settles and match.request.get("final")) or _learns_final(payment, match, event)):
            # A final capture accepted earlier, or one reconciliation recorded from a list that said
            # nothing of finality, undecided or done.
            payment = replace(payment, capture_closed=True)
        return payment, EventStatus.APPLIED, None
    sale = _accepted_sale(payment, txns, event) if captured else None
    if sale is not None:
        # The sale's capture: the sale took effect, and what it captured is that object (the
        # one a refund of it names), as a sale answered at once records it.
        _settle(u, sale, S.SUCCEEDED, event, obj)
        if obj:
            u.add_references(payment.method, payment.id, [obj])
            payment = replace(payment, references={**payment.references, own_kind: obj})
        return payment, EventStatus.APPLIED, f"settles {sale.kind} {sale.id}"
    if (event.total is not None and trusted) or event.amount is None:
        return payment, EventStatus.APPLIED, None  # the total counts it
    if about_payment:
        # An event about the payment object itself: its amount is the running total.
        if not trusted:
            return payment, EventStatus.APPLIED, ("ignored: a running total, and the provider undid an operation "
                                                  "since (or an event that says so waits)")
        return _raise_floor(payment, captured, event.amount), EventStatus.APPLIED, None
    # An operation of this kind whose reference is not known yet may be the one the event is
    # about: wait until its answer or reconciliation names it.
    if _nameless_open(txns, own_kind, initial=captured, final=captured and event.closes_capture):
        if captured and _closes(payment, event):
            # Whichever capture it is (that one, asked final; or one made beside it), a final one
            # took the authorization, which the provider does not reopen: closed now, not only
            # once the event is applied.
            payment = replace(payment, capture_closed=True)
        return payment, EventStatus.DEFERRED, f"waits for the {own_kind} in flight to be recorded"
    # A settled operation that never learnt its reference (a provider whose fetch lists no
    # operations, an answer naming no object): the event names it, unless it is a second one of
    # the same amount. The event reports what the provider applied, which is what the operation
    # counts (`held_minor`: the amount asked, unless less was noted).
    nameless = _nameless_done(txns, own_kind, event.amount)
    if nameless is not None and obj:
        u.learn_reference(nameless.id, obj)
        u.add_references(payment.method, payment.id, [obj])
        return payment, EventStatus.APPLIED, f"names {own_kind} {nameless.id}"
    final = _record_outside(u, payment, txns, event, own_kind, obj, S.SUCCEEDED)
    if final:
        # The provider took no further capture of the authorization after it (PayPal's final
        # capture): closed, as the service's own final capture closes it.
        return replace(payment, capture_closed=True), EventStatus.APPLIED, \
            "recorded a final capture made outside paywire: it closes the capture"
    return payment, EventStatus.APPLIED, f"recorded a {own_kind} made outside paywire"


def _record_outside(u: LedgerUnit, payment: Payment, txns: Sequence[Transaction], event: StoredEvent,
                    kind: str, obj: str | None, status: str) -> bool:
    """Record the operation made outside paywire that `event` reports (of `event.amount`): done
    (succeeded), or held by the provider undecided (accepted: a pending refund or capture).
    Returns whether it is a final capture (`_closes`), recorded with `final` as the service's own
    final capture is, so the money rules close the capture while it is in flight and once done."""
    assert event.amount is not None
    parent = parent_ref = None
    final = kind == K.CAPTURE and _closes(payment, event)
    if kind == K.REFUND:
        parent_ref = event.references.get("capture") or event.references.get("charge")
        parent = next((t.id for t in txns if parent_ref and t.provider_reference == parent_ref), None)
    at = u.now()
    key = f"webhook-{event.provider}-{event.event_id}"
    u.insert_transaction(Transaction(
        id=new_id("txn"), payment_id=payment.id, method=payment.method, kind=kind, amount=event.amount,
        status=status, idempotency_key=key, fingerprint=fingerprint(kind, payment.method, payment.id,
                                                                    {"event": key}),
        provider_reference=obj, parent_id=parent, origin="webhook",
        # The capture a refund names, also when the ledger does not hold it yet (see rules._undone).
        request={"event": event.event_id, "type": event.type, **({"capture": parent_ref} if parent_ref else {}),
                 **({"final": True} if final else {}), **_acted_on(kind, event)},
        response={"amount": f"{event.amount.format()} {event.amount.currency}"},
        created_at=at, updated_at=at, finished_at=None if status == S.ACCEPTED else at,
    ))
    if obj:
        u.add_references(payment.method, payment.id, [obj])
    return final


def _acted_on(kind: str, event: StoredEvent) -> dict[str, str]:
    """The authorization a capture made outside paywire was made on, as its event names it (kept
    in its request summary, as a capture of the service's own keeps the object it was sent to):
    a reauthorization learnt of later tells what was captured of it from what was before it."""
    authorization = event.references.get("authorization") if kind == K.CAPTURE else None
    return {"authorization": authorization} if authorization else {}


def _learns_final(payment: Payment, txn: Transaction, event: StoredEvent) -> bool:
    """Whether the event says a capture the ledger holds not final was final (`_closes`): only one
    reconciliation recorded from a provider's list that said nothing of finality (one sent by
    the service is as it asked, and one an event recorded knows it)."""
    return txn.kind == K.CAPTURE and txn.origin == "reconcile" and not txn.request.get("final") \
        and _closes(payment, event)


def _closes(payment: Payment, event: StoredEvent) -> bool:
    """Whether a capture made outside paywire that `event` reports closes the payment's capture:
    the provider says it was final (`closes_capture`), of an authorization (a sale has nothing
    more to capture) that is the payment's, where the event names one (a final capture of
    another authorization says nothing of the one captures act on)."""
    if not event.closes_capture or payment.flow != K.AUTHORIZE:
        return False
    named = event.references.get("authorization")
    own = {payment.references.get("authorization"), payment.references.get(VOID_TARGET)} - {None}
    return named is None or not own or named in own


def _pending(u: LedgerUnit, payment: Payment, txns: list[Transaction], event: StoredEvent,
             kind: str) -> tuple[str, str | None]:
    """A refund or capture (`kind`) the provider holds undecided. One the ledger holds (the
    service's own, accepted; or one decided since, its success or failure delivered first)
    changes nothing: a late pending event never reopens it. One it does not hold is recorded
    accepted, of origin "webhook", so the money rules count it in flight until its decision's
    event, or reconciliation, decides it - unless one of that kind whose reference is not known
    yet is in flight (it may be that one: the event waits for it), or a succeeded one of the same
    amount never learnt its reference (the event names it), as for a refunded or captured event:
    one operation at the provider is one transaction. A pending capture of a sale is the sale's
    own (nothing is captured beside it): it changes nothing."""
    obj = event.references.get(kind) or event.reference
    if not obj or event.amount is None:
        return EventStatus.APPLIED, f"no effect: the pending {kind}'s event names no {kind} or amount"
    if obj in (payment.reference, payment.references.get("authorization")):
        return EventStatus.APPLIED, f"no effect: the pending {kind}'s event names the payment, not a {kind}"
    if kind == K.CAPTURE and payment.flow != K.AUTHORIZE:
        return EventStatus.APPLIED, "no effect: a sale's capture is its first operation"
    held = next((t for t in txns if t.provider_reference == obj), None)
    if held is not None and held.open and _learns_final(payment, held, event):
        u.update_transaction(replace(held, request={**held.request, "final": True}, updated_at=u.now()))
        return EventStatus.APPLIED, f"{obj} ({held.kind} {held.id}) was final: a final capture in flight"
    if held is not None:
        return EventStatus.APPLIED, f"no effect: the ledger holds {obj} ({held.kind} {held.id}, {held.status})"
    if _nameless_open(txns, kind, initial=kind == K.CAPTURE, final=kind == K.CAPTURE and event.closes_capture):
        return EventStatus.DEFERRED, f"waits for the {kind} in flight to be recorded"
    nameless = _nameless_done(txns, kind, event.amount)
    if nameless is not None:
        u.learn_reference(nameless.id, obj)
        u.add_references(payment.method, payment.id, [obj])
        return EventStatus.APPLIED, f"names {kind} {nameless.id}"
    _record_outside(u, payment, txns, event, kind, obj, S.ACCEPTED)
    return EventStatus.APPLIED, f"recorded a {kind} made outside paywire, which the provider has not decided"


def _nameless_done(txns: Sequence[Transaction], kind: str, amount: Money | None) -> Transaction | None:
    """A succeeded operation of `kind` that never learnt its reference and applied `amount` (what
    the provider applied: the amount asked, unless less was noted, `held_minor`): an event about
    an object the ledger does not hold, of that amount, names it rather than recording another."""
    return next((t for t in txns if t.kind == kind and t.status == S.SUCCEEDED and not t.provider_reference
                 and t.amount is not None and Money(held_minor(t), t.amount.currency) == amount), None)


def _nameless_open(txns: Sequence[Transaction], kind: str, *, initial: bool = False, final: bool = False) -> bool:
    """Whether an operation of `kind` (or a first operation, with `initial`) is in flight without
    its reference: an event about an object of that kind may be about it, so the event waits.
    With `final` (the event's capture was final at the provider, `closes_capture`), a capture
    sent not final is not one: the provider reports finality as asked, so the event is about a
    capture made beside it. Only that word excludes one: an event that says nothing of finality
    (the default) may be about any capture."""
    return any(t.status in (S.PENDING, S.UNKNOWN) and not t.provider_reference
               and ((t.kind == kind and (not final or t.request.get("final", True)))
                    or (initial and t.kind in K.INITIAL)) for t in txns)


def reported_waiting(u: LedgerUnit, payment: Payment, kind: str) -> rules.Reported:
    """What events that wait for an operation of `kind` in flight report (see `_money_event`,
    `_pending`, `apply_event`), asked only while one is: the money captured or capturing (`kind`
    capture) or refunded or refunding (refund), a pending one held too, each object once; and
    for a capture whether the authorization captures act on (or the one voids go through,
    `VOID_TARGET`, which voids it with it) was reported voided, so it takes no further capture.
    Each may be about the operation in flight or another made beside paywire: until
    reconciliation names the operation, the provider may hold both, so a new one counts them too."""
    told = (EventKind.CAPTURED, EventKind.CAPTURE_PENDING) if kind == K.CAPTURE \
        else (EventKind.REFUNDED, EventKind.REFUND_PENDING)
    named = {payment.references.get("authorization"), payment.references.get(VOID_TARGET)} - {None}
    held: dict[str, int] = {}  # by the object each names: its pending and its refunded event count once
    voided = False
    for e in u.waiting_events(methods=(payment.method,), payment_id=payment.id):
        if e.status != EventStatus.DEFERRED:
            continue
        if kind == K.CAPTURE and e.kind == EventKind.VOIDED:
            voided = voided or not named or e.reference in named or bool(named & set(e.references.values()))
        elif e.kind in told and e.amount is not None and e.amount.currency == payment.currency:
            obj = e.references.get(kind) or e.reference or e.event_id
            held[obj] = max(held.get(obj, 0), e.amount.minor)
    return rules.Reported(Money(sum(held.values()), payment.currency) if held else None, voided)


def _accepted_sale(payment: Payment, txns: Sequence[Transaction], event: StoredEvent) -> Transaction | None:
    """The open first operation of a sale that a captured event naming the payment (not a
    capture the ledger knows) settles. The provider answered it before it captured anything, so
    it holds the payment's reference; counted once more as a capture made outside paywire, the
    money would count twice."""
    if payment.flow != K.SALE:
        return None
    named = {ref for ref in (event.reference, event.references.get("payment")) if ref}
    return next((t for t in txns if t.kind in K.INITIAL and t.status in _SETTLEABLE and t.provider_reference
                 and t.provider_reference in named), None)


def _raise_floor(payment: Payment, captured: bool, value: Money) -> Payment:
    if captured:
        return replace(payment, observed_captured=_floor(payment.observed_captured, value))
    return replace(payment, observed_refunded=_floor(payment.observed_refunded, value))


def _failed_event(u: LedgerUnit, payment: Payment, txns: list[Transaction],
                  event: StoredEvent, caps: Capabilities) -> tuple[Payment, str, str | None]:
    # Only the object the event is about fails: a failed refund also names its capture, a denied
    # capture its order and authorization, and those stand.
    undoes = event.kind == EventKind.REVERSED
    for txn in txns:
        done = txn if reversible(payment, txn) and (undoes or txn.kind == K.REFUND) else \
            succeeded_first(payment, txn) if undoes else None
        if done is not None and event.reference and txn.provider_reference == event.reference:
            note = f"event {event.event_id}: the provider reports {txn.kind} {event.reference} failed"
            return reverse(u, payment, done, origin="webhook", note=note), \
                EventStatus.APPLIED, f"{txn.kind} {txn.id} was undone by the provider"
        if txn.status in _SETTLEABLE and event.reference and txn.provider_reference == event.reference:
            if undoes and reversible(payment, replace(txn, status=S.SUCCEEDED)):
                # Only what succeeded can be undone: it did (a running total may count it), and is
                # recorded so, then undone, as when its own event comes first.
                done = _settle(u, txn, S.SUCCEEDED, event)
                if done.kind == K.CAPTURE and done.request.get("final"):
                    payment = replace(payment, capture_closed=True)
                note = f"event {event.event_id}: the provider reports {txn.kind} {event.reference} undone"
                return reverse(u, payment, done, origin="webhook", note=note), \
                    EventStatus.APPLIED, f"{txn.kind} {txn.id} succeeded and was undone by the provider"
            if rules.closed_by_declined(_settle(u, txn, S.FAILED, event), caps):
                # A final capture the provider made and then declined: it took the rest with it.
                payment = replace(payment, capture_closed=True)
            # An open refund failed may have succeeded first, and a total applied before counted it.
            payment = fail_open_refund(payment, txn, txns, event.kind) if txn.kind == K.REFUND else payment
            if txn.kind in K.INITIAL and payment.authorized.minor == 0:
                return replace(payment, failed=True), EventStatus.APPLIED, None
            return payment, EventStatus.APPLIED, None
    # A failed refund never fails the payment: the refund it names is still to be recorded (its
    # own event or answer comes later, the buyer may pay a declined payment object meanwhile).
    about_refund = bool(event.reference) and event.references.get(K.REFUND) == event.reference
    if payment.authorized.minor == 0 and not rules.in_flight(payment, txns).initial and not about_refund:
        for txn in txns:
            if txn.kind in K.INITIAL and txn.status in _SETTLEABLE:
                _settle(u, txn, S.FAILED, event)
        return replace(payment, failed=True), EventStatus.APPLIED, None
    own_objects = {payment.reference, payment.references.get("authorization")} if undoes \
        else {payment.reference, *payment.references.values()}
    if event.reference and event.reference not in own_objects \
            and not any(t.provider_reference == event.reference for t in txns):
        if not undoes and _names_no_refund(event) and not _nameless_open(txns, K.CAPTURE, initial=True):
            # A capture or sale the ledger never held that failed (declined in the provider's
            # dashboard) moved no money, and no event or answer to come will record it: waiting
            # for it, the event would wait forever.
            return payment, EventStatus.APPLIED, f"no effect: {event.reference} failed and moved no money"
        if undoes and _taken_back_capture(payment, txns, event):
            return _record_taken_back(u, payment, txns, event)
        # About an object the ledger does not hold yet (a refund whose own event or answer has not
        # come): dropped, the refund would count once it came. It waits for it instead.
        if event.status != EventStatus.DEFERRED:  # the first time it waits
            payment = undo_waits(payment, event.kind)
        return payment, EventStatus.DEFERRED, f"waits for {event.reference} to be recorded"
    return payment, EventStatus.APPLIED, "ignored: money already moved on this payment"


def _taken_back_capture(payment: Payment, txns: Sequence[Transaction], event: StoredEvent) -> bool:
    """Whether a reversed event names, with its amount, a capture of the payment's authorization
    that the ledger does not hold (made beside paywire and taken back before its own event came):
    its success was never delivered as such, so no event or answer to come records it. Not while
    a capture or first operation without its reference is in flight: it may be that one."""
    return (payment.flow == K.AUTHORIZE and event.reference is not None
            and event.references.get(K.CAPTURE) == event.reference
            and event.amount is not None and event.amount.minor > 0 and not _nameless_open(txns, K.CAPTURE, initial=True))


def _record_taken_back(u: LedgerUnit, payment: Payment, txns: Sequence[Transaction],
                       event: StoredEvent) -> tuple[Payment, str, str | None]:
    """Record the capture a reversed event names (see `_taken_back_capture`) and its reversal: it
    took its part of the authorization (`rules.consumed`), and moved no money the totals count;
    a final one closed the capture. A succeeded capture of the same amount that never learnt its
    reference is named instead, as a captured event names it (`_money_event`)."""
    assert event.reference is not None and event.amount is not None
    obj = event.reference
    capture = _nameless_done(txns, K.CAPTURE, event.amount)
    if capture is not None:
        u.learn_reference(capture.id, obj)
        u.add_references(payment.method, payment.id, [obj])
        capture, done = replace(capture, provider_reference=obj), "named"
    else:
        _record_outside(u, payment, txns, event, K.CAPTURE, obj, S.SUCCEEDED)
        capture = next(t for t in u.transactions(payment.id) if t.kind == K.CAPTURE and t.provider_reference == obj)
        done = "recorded"
    if capture.request.get("final"):
        # A final capture closed the authorization, and the provider does not reopen it when it
        # takes the capture back, as for a final capture of the service's own undone.
        payment = replace(payment, capture_closed=True)
    note = f"event {event.event_id}: the provider reports capture {obj} undone before its own event came"
    return reverse(u, payment, capture, origin="webhook", note=note), EventStatus.APPLIED, \
        f"{done} capture {capture.id} and its reversal: the provider undid it"


def _names_no_refund(event: StoredEvent) -> bool:
    """Whether the event names its object as something other than a refund (a capture, a
    transaction): a failure of it undid nothing a total counted."""
    return any(name != K.REFUND and ref == event.reference for name, ref in event.references.items())


def apply_waiting(u: LedgerUnit, payment: Payment, caps: Capabilities, txns: Sequence[Transaction] | None = None, *,
                  methods: Sequence[str] = ()) -> Payment:
    """Apply deferred events of the payment and unmatched events naming one of its references
    (received through its method or one of `methods`: the other methods of its provider, whose
    endpoints receive the same account's events); again after any applied, since that may be what
    another waits for (the refund a failed event names) or give the payment a reference another
    names. Each event applies once: this ends."""
    while True:
        refs = [payment.reference or ""]  # plain loops, not comprehensions' calls: asked after every operation
        for name, ref in payment.references.items():
            if name not in SHARED_REFERENCES:
                refs.append(ref)
        for t in u.transactions(payment.id) if txns is None else txns:
            refs.append(t.provider_reference or "")
        applied = False
        for event in u.waiting_events(methods=(payment.method, *methods), payment_id=payment.id, references=refs):
            payment, stored = apply_event(u, payment, attrs.evolve(event, payment_id=payment.id), caps)
            applied = applied or stored.status == EventStatus.APPLIED
        if not applied:
            return payment
        txns = None
