"""Commands that read before they write, because Braintree's published GraphQL API deduplicates
no mutation: a keyed write first looks for what an earlier attempt with the same key created,
and answers with that instead of writing twice.

| command | reads | then writes (only if nothing carries the key) |
|---|---|---|
| authorize, sale | search.transactions by orderId, matched on the custom field paywire_key | authorizePaymentMethod / chargePaymentMethod; a DUPLICATE rejection naming a transaction with this key answers with that transaction; a sale answered (or found) AUTHORIZED: captureTransaction |
| capture | node(authorization): its partial captures' orderId | partialCaptureTransaction (captureTransaction when unkeyed and whole) |
| refund | node(capture or sale): its refunds' orderId, or its status and paywire_void_key (voided, or refunded whole by the reversal; declined: nothing to refund) | refundTransaction; before settlement, in full only: updateCustomFields (the key), reverseTransaction |
| void | node(authorization): its status and paywire_void_key | updateCustomFields (the key, in paywire's own space: `void_tag`), reverseTransaction (the key removed if refused) |
| fetch | node(reference), or search.transactions by orderId and key | — |
| unvault | node(payment method), when the call names a customer | deletePaymentMethodFromVault, unless another customer holds it |

The same key with another amount is an `IdempotencyConflict`. Every write is rehearsed (built and
checked) before the read leaves, so what the gateway refuses itself sends nothing at all; a keyed
authorize or sale resent (`CommandContext.resent`) never writes, and rehearses only its read. A read
whose answer is lost on a first attempt leaves the write unsent: a retryable failure
(`before_the_write`).

A mutation is never resent by the core's retry policy once it may have arrived (only a query is
repeatable: `transfer`): its outcome is unknown, and the caller's retry with the same key (or
`reconcile()`, through fetch) looks for it first. A capture, refund or void is looked for on its
parent, which Braintree reads from its own records; an authorization or sale only through search,
whose index may trail the write by up to the gateway's `outcome_window`.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping
from typing import Any, Final, TypeVar

import attrs

from paywire import CommandContext, CommandResult, Customer, GatewayCommand, Money, ProviderState, Response, Subject
from paywire.command.gateway_command import Rehearsed, before_the_write
from paywire.errors import Declined, IdempotencyConflict, InvalidRequest, OutcomeUnknown, PaywireError, StateError
from paywire_braintree.amounts import from_braintree
from paywire_braintree.builders import KEY_FIELD, SEARCH_AFTER, VOID_KEY_FIELD, void_tag
from paywire_braintree.error_mapping import ERRORS
from paywire_braintree.handlers import (
    authorized_amount,
    custom_field,
    fetched_fields,
    found_fields,
    never_submitted,
    released_whole,
    reversed_capture_fields,
    sale_unsubmitted,
    transaction_of,
    void_fields,
)
from paywire_braintree.objects import OBJECT
from paywire_braintree.states import (
    FAILED,
    moved_status,
    operation_status,
    refunded_by_reversal,
    reversal_key,
    reversal_refund,
)
from paywire_braintree.validation import payload, refusal

__all__ = ["Capture", "Fetch", "FirstOperation", "Refund", "Unvault", "Vault", "Void"]

_T = TypeVar("_T")


def _before_writing(read: Callable[[], _T], context: CommandContext, what: str) -> _T:
    """The answer of the read before a write: its error, on a first attempt, leaves `what` (the
    write) unsent, a retryable failure where the read's answer was lost (`before_the_write`)."""
    try:
        return read()
    except PaywireError as error:
        raise before_the_write(error, context, f"Braintree was read before the {what}, which was not sent: "
                                               "nothing was done") from error


def _rehearse(command: GatewayCommand, subject: Subject, context: CommandContext) -> None:
    try:
        command.execute(subject, attrs.evolve(context, rehearsal=True))
    except Rehearsed:
        return


def _node(read: GatewayCommand, subject: Subject, context: CommandContext) -> Mapping[str, Any]:
    """The transaction `subject.reference` names; a missing one is Braintree's NOT_FOUND."""
    node = payload(Response(200, data=read.execute(subject, context).raw))
    if not isinstance(node, OBJECT) or node.get("__typename") != "Transaction":
        raise InvalidRequest(f"Braintree holds no transaction {subject.reference!r}", provider="braintree",
                             code="NOT_FOUND")
    return node


def _in_its_currency(transaction: Mapping[str, Any], subject: Subject, what: str) -> None:
    """A capture or refund amount is written without a currency (Braintree takes the transaction's):
    one in another currency would be read in the transaction's (5.00 USD captured as 5.00 EUR)."""
    if subject.amount is None:
        return
    currency = from_braintree(transaction["amount"]).currency
    if subject.amount.currency != currency:
        raise InvalidRequest(f"Braintree transaction {subject.reference!r} is in {currency}; a {what} of "
                             f"{subject.amount} must be in {currency} too; nothing was sent",
                             param="currency", provider="braintree", code="currency_mismatch")


def _not_expired(authorization: Mapping[str, Any], subject: Subject, what: str) -> None:
    """Braintree expires an authorization left too long (7 to 30 days, by brand) and notifies
    nothing: what it did not capture is released, and can be neither captured (91507) nor voided.
    The ledger is behind Braintree (`state_conflict`): the payment service reads the payment."""
    if authorization.get("status") == "AUTHORIZATION_EXPIRED":
        raise StateError(f"Braintree authorization {subject.reference!r} has expired: what it did not capture is "
                         f"released and cannot be {what}; authorize again to take more (nothing was sent)",
                         provider="braintree", code="authorization_expired", state_conflict=True)


def _held(operation: Mapping[str, Any], what: str,
          amount: Callable[[Mapping[str, Any]], Money] = lambda operation: from_braintree(operation["amount"])) -> Money:
    """The amount of the operation Braintree holds under this request's key. It exists, so one
    paywire cannot read (a currency no longer in ISO 4217, an amount not in Braintree's format)
    leaves the outcome unknown: an `InvalidRequest` would record as failed what Braintree made."""
    try:
        return amount(operation)
    except ValueError as error:
        unread = InvalidRequest(str(error), provider="braintree", code="unexpected_amount")
        raise OutcomeUnknown.instead_of(unread, f"Braintree holds the {what} this idempotency key made, but its "
                                                "amount cannot be read, so the outcome is unknown") from error
    except InvalidRequest as error:
        raise OutcomeUnknown.instead_of(error, f"Braintree holds the {what} this idempotency key made, but its "
                                               "amount cannot be read, so the outcome is unknown") from error


def _conflict(what: str, held: Money, asked: Money | None) -> IdempotencyConflict:
    return IdempotencyConflict(
        f"this idempotency key already made a {what} of {held} at Braintree; the request asks for {asked}",
        provider="braintree", code="idempotency_key_reused")


def _result(fields: Mapping[str, Any], raw: Any) -> CommandResult:
    return CommandResult(**{**fields, "raw": raw})


@attrs.frozen
class FirstOperation:
    """authorize or sale (`flow`): find the transaction an earlier attempt with this key created,
    else write.

    A sale Braintree answers (or an earlier attempt left) AUTHORIZED holds the buyer's funds but
    charges nothing until submitted for settlement: `submit` (captureTransaction of all of it)
    submits it, as the sale asked, and its answer is the sale's. If that submission is refused or
    its answer lost, the sale is unknown (never failed: the authorization stands, and never
    captured: Braintree may not have it): a retry under the key finds it and submits it, and
    fetch reads it as not yet decided and `unfinished` (`handlers.fetched_fields`), which the
    Janitor's resend under the key finishes so, as it does a sale answered AUTHORIZING that
    Braintree authorized since. That resend (`CommandContext.resent`) may lack what the ledger
    does not keep (the order's items, the buyer's details): it only finds and submits, and
    search not showing the sale writes nothing (`_not_yet_there`), so no charge is made again,
    nor one without those details."""

    find: GatewayCommand
    write: GatewayCommand
    read: GatewayCommand
    flow: str
    submit: GatewayCommand | None = None
    transfers = 4

    def execute(self, subject: Subject, context: CommandContext) -> CommandResult:
        # A keyed resend never writes (`_not_yet_there`): only its read is rehearsed, so what
        # would refuse the write alone (the currency's merchant account unmapped since) does not
        # keep it from finishing what the earlier attempt made.
        only_finds = context.resent and bool(subject.idempotency_key)
        if context.rehearsal:
            return (self.find if only_finds else self.write).execute(subject, context)
        if not subject.idempotency_key:
            return self._submitted(self.write.execute(subject, context), subject, context)
        if not only_finds:
            _rehearse(self.write, subject, context)
        found = _before_writing(lambda: find_keyed(self.find, subject, context), context, self.flow)
        if found is None:
            _not_yet_there(subject, context, "payment")
            try:
                return self._submitted(self.write.execute(subject, context), subject, context)
            except Declined as error:
                found = self._original(error, subject, context)
                if found is None:
                    raise
        held = _held(found, "payment", authorized_amount)
        if held != subject.amount:
            raise _conflict("payment", held, subject.amount)
        refused = refusal(found)
        if not refused.ok and not released_whole(found, self.flow) and not _undone(found):
            # Declined (by the processor, or at settlement before it was submitted), or voided
            # while it only waited for settlement, it is still this payment's transaction. An
            # authorization captured whole and so declined was made, and released since.
            decline = ERRORS(subject, Response(200), refused)
            decline.reference = str(found["id"])
            raise decline
        if self._owed(found):
            return self._submit(found, subject, context)
        if sale_unsubmitted(found, self.flow):
            raise OutcomeUnknown(f"Braintree holds the sale this idempotency key made ({found['id']}) authorized and "
                                 "captured in parts since (the Control Panel), not captured whole as the sale asked: "
                                 "it is not counted captured; check it by hand (nothing was sent)",
                                 provider="braintree", code="sale_captured_in_parts", reference=str(found["id"]))
        if never_submitted(found, self.flow):
            status = str(found["status"]).lower()
            raise Declined(f"the sale this idempotency key made at Braintree ({found['id']}) was only authorized, "
                           f"then {status} before it was submitted for settlement: it charged nothing",
                           provider="braintree", code=status, decline_code=status, reference=str(found["id"]))
        return _result(found_fields(found, self.flow), found)

    def _owed(self, transaction: Mapping[str, Any]) -> bool:
        """A sale Braintree holds AUTHORIZED: not submitted for settlement, nothing captured."""
        return self.submit is not None and transaction.get("status") == "AUTHORIZED" and not _children(transaction)

    def _submitted(self, result: CommandResult, subject: Subject, context: CommandContext) -> CommandResult:
        """The sale's answer, once Braintree holds it submitted for settlement."""
        if self.submit is None:  # an authorization: never submitted here (`_owed`), so its answer as it is
            return result
        transaction = transaction_of(Response(200, data=result.raw))
        return self._submit(transaction, subject, context) if self._owed(transaction) else result

    def _submit(self, transaction: Mapping[str, Any], subject: Subject, context: CommandContext) -> CommandResult:
        assert self.submit is not None
        try:
            return self.submit.execute(attrs.evolve(subject, reference=str(transaction["id"])), context)
        except PaywireError as error:
            unknown = OutcomeUnknown.instead_of(error, (
                f"Braintree authorized sale {transaction['id']} but whether it was submitted for settlement is not "
                "known, so it is not counted captured: retry the sale under its idempotency key, which submits it, "
                "or run reconcile()"))
            unknown.reference = str(transaction["id"])
            raise unknown from error


    def _original(self, error: Declined, subject: Subject, context: CommandContext) -> Mapping[str, Any] | None:
        """The transaction a DUPLICATE rejection names, when an earlier attempt with this key made
        it (search had not shown it yet); None when it is another payment's."""
        original = error.details.get("duplicate_of") if error.decline_code == "duplicate" else None
        if not original:
            return None
        transaction = _node(self.read, attrs.evolve(subject, reference=original), context)
        return transaction if custom_field(transaction, KEY_FIELD) == subject.idempotency_key else None


def _not_yet_there(subject: Subject, context: CommandContext, what: str) -> None:
    """Refuse to write again what an earlier call may have sent (`CommandContext.resent`) when
    Braintree shows nothing made under its key: Braintree takes no key, so a request still on its
    way (or one its search does not show yet) is found only once it has landed, and writing now
    could move the money twice. Reconciliation settles it once it can no longer land; a retry
    after that writes."""
    if context.resent:
        raise OutcomeUnknown(
            f"Braintree shows no {what} made under idempotency key {subject.idempotency_key!r} yet, and the earlier "
            "request may still arrive: sent again now it could be applied twice; run reconcile() (nothing was sent)",
            provider="braintree", code="earlier_attempt_not_seen",
        )


def find_keyed(find: GatewayCommand, subject: Subject, context: CommandContext) -> Mapping[str, Any] | None:
    """The transaction carrying the subject's key in paywire_key, among those of its orderId, page
    after page: an order's earlier attempts (declines, other keys) share its orderId, and the one
    under this key may lie past the first page. Not finding it there would write it twice. A
    partial capture is listed too, and one made without an orderId (the Control Panel's) carries
    its authorization's orderId and custom fields, the key among them: it is never the payment."""
    seen: set[str] = set()
    page = subject
    while True:
        answer = payload(Response(200, data=find.execute(page, context).raw)) or {}
        connection = answer.get("transactions") or {}
        for edge in connection.get("edges") or ():
            node = edge.get("node") if isinstance(edge, OBJECT) else None
            if isinstance(node, OBJECT) and custom_field(node, KEY_FIELD) == subject.idempotency_key \
                    and not _child_capture(node):
                return node
        info = connection.get("pageInfo") or {}
        if not info.get("hasNextPage"):
            return None
        cursor = info.get("endCursor")
        if not isinstance(cursor, str) or not cursor or cursor in seen:
            raise OutcomeUnknown("Braintree's search says more transactions follow but gives no new cursor, so "
                                 f"whether one was made under idempotency key {subject.idempotency_key!r} is "
                                 "unknown (nothing was written)", provider="braintree", code="search_incomplete")
        seen.add(cursor)
        page = attrs.evolve(subject, options={**subject.options, SEARCH_AFTER: cursor})


def _child_capture(transaction: Mapping[str, Any]) -> bool:
    details = transaction.get("partialCaptureDetails")
    return isinstance(details, OBJECT) and details.get("__typename") == "ChildCapture"


def _keyed(items: Any, key: str | None) -> Mapping[str, Any] | None:
    if not key:
        return None
    return next((item for item in items or () if isinstance(item, OBJECT) and item.get("orderId") == key), None)


def _undone(transaction: Mapping[str, Any]) -> bool:
    """A sale, capture or refund the batch declined after it was submitted for settlement, or
    the Control Panel voided then (Braintree sends no notification of a void): it took effect
    (its first answer was a success) and was undone since (`states.operation_status` lists it
    "reversed"). A retry finding it answers that success, as Stripe replays its stored
    first answer; the payment service reads the payment after any resend's success, and records
    the reversal as reconciliation and the transaction_settlement_declined notification do."""
    return operation_status(str(transaction["status"]), transaction.get("statusHistory")) == "reversed"


def _replayed(done: Mapping[str, Any], subject: Subject, what: str, inherited: str | None = None) -> str:
    """The result status of the capture or refund an earlier attempt with this key made: a
    success when it took effect, even if the batch undid it since (`_undone`). One Braintree
    refused, or declined at settlement or voided before it was submitted, moved no money, so
    the replay is that decline (naming it, as reconciliation records it), not a success. A
    capture so declined at settlement, or voided, consumed what it asked for of its authorization
    (`handlers._spent`), which the ledger, that held the capture open, still counts: a state
    conflict, so the payment is read."""
    if _undone(done):
        return "succeeded"
    status = str(done["status"])
    spent = what == "capture" and status in ("SETTLEMENT_DECLINED", "VOIDED")
    refused = refusal(done)
    if not refused.ok:
        error = ERRORS(subject, Response(200), refused)
        error.state_conflict = error.state_conflict or spent
        error.reference = str(done["id"])
        raise error
    if status == "VOIDED" and not refunded_by_reversal(done, child=True, inherited=inherited):
        raise Declined(f"the {what} this idempotency key made at Braintree ({done['id']}) is {status.lower()}: "
                       "it moved no money", provider="braintree", code=status.lower(), decline_code=status.lower(),
                       state_conflict=spent, reference=str(done["id"]))
    return "succeeded" if status == "VOIDED" else moved_status(status)  # VOIDED here: refunded by its reversal


def _children(transaction: Mapping[str, Any]) -> list[Any]:
    details = transaction.get("partialCaptureDetails")
    return list(details.get("childCaptures") or ()) if isinstance(details, OBJECT) else []


def _left(authorization: Mapping[str, Any]) -> Money:
    """What an authorization has left to capture. Once partially captured, its `amount` is what
    its captures hold, not what it authorized: captures that did not fail are taken from that."""
    held = authorized_amount(authorization)
    taken = [from_braintree(child["amount"]) for child in _children(authorization)
             if operation_status(str(child["status"])) != "failed"]
    return held - sum(taken, Money.zero(held.currency))


_CLOSED: Final = "91507"  # Cannot submit for settlement unless status is authorized


@attrs.frozen
class Capture:
    """A capture: partial captures carry the key as their orderId, so a replay finds its capture."""

    read: GatewayCommand
    partial: GatewayCommand
    whole: GatewayCommand
    transfers = 2

    def _write(self, subject: Subject) -> GatewayCommand:
        return self.whole if subject.amount is None else self.partial

    def execute(self, subject: Subject, context: CommandContext) -> CommandResult:
        write = self._write(subject)
        if context.rehearsal:
            return write.execute(subject, context)
        _rehearse(write, subject, context)
        parent = _before_writing(lambda: _node(self.read, subject, context), context, "capture")
        done = self._done(parent, subject)
        if done is not None:
            return done
        _not_expired(parent, subject, "captured")
        _not_yet_there(subject, context, "capture")
        if subject.amount is None and subject.idempotency_key:
            # A whole capture leaves no trace of its key, so a retry could not find it (and would
            # be refused: the authorization is no longer AUTHORIZED). Keyed, it is a final partial
            # capture of what the authorization has left, whose orderId carries the key.
            left = _left(parent)
            if left.minor <= 0:
                raise StateError(f"Braintree authorization {subject.reference!r} has nothing left to capture: its "
                                 "captures hold all it authorized (nothing was sent)", provider="braintree",
                                 code="nothing_to_capture", state_conflict=True)
            subject, write = attrs.evolve(subject, amount=left, final=True), self.partial
        try:
            return write.execute(subject, context)
        except StateError as refused:
            if write is self.partial and refused.code == _CLOSED:
                # Braintree takes partial captures of an AUTHORIZED or SETTLEMENT_PENDING
                # authorization until a final one, and documents no reopening: refused so, the
                # authorization takes no further capture, though nothing it reports says final
                # (a final capture made in the Control Panel leaves it SETTLEMENT_PENDING).
                refused.capture_closed = True
            raise

    def _done(self, parent: Mapping[str, Any], subject: Subject) -> CommandResult | None:
        done = _keyed(_children(parent), subject.idempotency_key)
        if done is None:
            _in_its_currency(parent, subject, "capture")
            return None
        held = _held(done, "capture")
        if subject.amount is not None and held != subject.amount:
            raise _conflict("capture", held, subject.amount)
        return _result({"status": _replayed(done, subject, "capture", reversal_key(parent)),
                        "reference": done["id"], "amount": held,
                        "references": {"capture": done["id"], "authorization": parent["id"], "payment": parent["id"]}},
                       done)


# Not yet settling: Braintree refuses to refund these (91506). One submitted for settlement it
# reverses (voids) whole instead; an authorization is not a capture to refund.
_UNSETTLED = frozenset({"AUTHORIZING", "AUTHORIZED", "SUBMITTED_FOR_SETTLEMENT"})


def _reversible(captured: Mapping[str, Any], subject: Subject) -> bool:
    """Whether the refund is of all of a capture or sale still waiting for its settlement batch,
    which Braintree reverses; one of part of it is refused (91506) before anything is written."""
    status = str(captured.get("status"))
    if status not in _UNSETTLED:
        return False
    whole = from_braintree(captured["amount"])
    if status == "SUBMITTED_FOR_SETTLEMENT" and not _children(captured) \
            and (subject.amount is None or subject.amount == whole):
        return True
    remedy = (f"refund it in full ({whole}), which voids it, or wait for its settlement batch to refund part"
              if status == "SUBMITTED_FOR_SETTLEMENT" else "refund it once it is captured and settled")
    raise StateError(f"Braintree refunds part of a transaction only once it is settling or settled; "
                     f"{subject.reference!r} is {status.lower()}: {remedy} (nothing was sent)",
                     provider="braintree", code="91506")


def _holds_money(captured: Mapping[str, Any], subject: Subject) -> None:
    """A capture or sale Braintree declined (at settlement, or before) holds nothing to refund.
    Sent, the refund would be refused (91506, "not settled"), a refusal that says nothing of why;
    the ledger, which counts the money captured, is behind Braintree (`state_conflict`: the
    payment service reads the payment), as when the notification of the decline is still to come."""
    status = str(captured.get("status"))
    if status in FAILED:
        raise StateError(f"Braintree transaction {subject.reference!r} is {status.lower()}: it holds no money to "
                         "refund (nothing was sent)", provider="braintree", code="not_captured",
                         state_conflict=True)


def _reversal(tag: GatewayCommand, untag: GatewayCommand, reverse: GatewayCommand, subject: Subject,
              context: CommandContext) -> CommandResult:
    """reverseTransaction under the key written on the transaction first (paywire_void_key), where
    a retry and fetch find it. A reversal Braintree refused (nothing applied) has its key removed:
    left there, a later void of the transaction (the control panel's) would read as this reversal,
    a capture refunded in full instead of one that moved no money. Should that removal fail too,
    the refusal stands and the key stays (the ambiguity `reversal_refund` describes)."""
    if not subject.idempotency_key:
        return reverse.execute(subject, context)
    tag.execute(subject, context)
    try:
        return reverse.execute(subject, context)
    except PaywireError as error:
        if not error.may_have_been_sent:
            with contextlib.suppress(PaywireError):
                untag.execute(subject, context)
        raise


@attrs.frozen
class Refund:
    """A refund carries the key as its orderId, so a replay finds its refund on the capture.

    Before settlement Braintree refunds nothing (91506), but reverseTransaction voids the capture
    or sale, so the buyer is never charged: a refund of all of it is sent so, recorded as its
    refund (`reversed_capture_fields`). No refund object exists to carry the key, so the key is
    written on the transaction first (paywire_void_key, as a void does), where a retry and fetch
    find it; a reversal an earlier call may have sent is not sent again until Braintree shows it.
    If the batch settles it between the read and the reversal, Braintree refunds it whole instead,
    with a Refund under the transaction's orderId: a retry finds it by the key on the transaction.
    """

    read: GatewayCommand
    write: GatewayCommand
    tag: GatewayCommand
    untag: GatewayCommand
    reverse: GatewayCommand
    transfers = 4

    def execute(self, subject: Subject, context: CommandContext) -> CommandResult:
        if context.rehearsal:
            return self.write.execute(subject, context)
        _rehearse(self.write, subject, context)
        _rehearse(self.reverse, subject, context)
        captured = _before_writing(lambda: _node(self.read, subject, context), context, "refund")
        done = self._done(captured, subject)
        if done is not None:
            return done
        _holds_money(captured, subject)
        reversing = _reversible(captured, subject)
        _not_yet_there(subject, context, "refund")
        if not reversing:
            return self.write.execute(subject, context)
        return _reversal(self.tag, self.untag, self.reverse, subject, context)

    def _done(self, captured: Mapping[str, Any], subject: Subject) -> CommandResult | None:
        key = subject.idempotency_key
        if captured.get("status") == "VOIDED":
            if key and refunded_by_reversal(captured) and reversal_key(captured) == key:
                fields = reversed_capture_fields(captured)
                if subject.amount is not None and fields["amount"] != subject.amount:
                    raise _conflict("refund", fields["amount"], subject.amount)
                return _result(fields, captured)
            why = ("refunded in full already, reversed before settlement under another idempotency key"
                   if refunded_by_reversal(captured) else "voided: it took no money")
            raise StateError(f"Braintree transaction {subject.reference!r} is {why}, so there is nothing to refund "
                             "(nothing was sent)", provider="braintree", code="voided",
                             state_conflict=True)  # the ledger, which counts it refundable, is behind
        done = _keyed(captured.get("refunds"), key) or _overtaken(captured, key)
        if done is None:
            _in_its_currency(captured, subject, "refund")
            return None
        held = _held(done, "refund")
        if subject.amount is not None and held != subject.amount:
            raise _conflict("refund", held, subject.amount)
        return _result({"status": _replayed(done, subject, "refund"),
                        "reference": done["id"], "amount": held,
                        "references": {"refund": done["id"], "capture": captured["id"]}}, done)


def _overtaken(captured: Mapping[str, Any], key: str | None) -> Mapping[str, Any] | None:
    """The Refund an earlier attempt's reversal made under `key` when the batch settled the
    capture first (`reversal_refund`): it carries the capture's orderId, not the key."""
    return reversal_refund(captured) if key and reversal_key(captured) == key else None


@attrs.frozen
class Void:
    """reverseTransaction voids an authorization, but also voids a capture awaiting settlement and
    refunds a settled one: so the authorization is read first, and voided only while nothing of it
    is captured. The key is recorded on it (paywire_void_key) before the reversal, and a void an
    earlier call may have sent is not sent again until Braintree shows it (`_not_yet_there`). A
    reversal Braintree answers with a refund (captured and settled since the read) is no void
    (`_released`)."""

    read: GatewayCommand
    tag: GatewayCommand
    untag: GatewayCommand
    reverse: GatewayCommand
    transfers = 4

    def execute(self, subject: Subject, context: CommandContext) -> CommandResult:
        if context.rehearsal:
            return self.reverse.execute(subject, context)
        _rehearse(self.reverse, subject, context)
        transaction = _before_writing(lambda: _node(self.read, subject, context), context, "void")
        done = self._voided(transaction, subject)
        if done is not None:
            return done
        _not_expired(transaction, subject, "voided")
        status = transaction.get("status")
        if status != "AUTHORIZED" or _children(transaction):
            raise StateError(f"Braintree transaction {subject.reference!r} is {str(status).lower()}"
                             f"{' with captures' if _children(transaction) else ''}: only an authorization "
                             "with nothing captured can be voided", provider="braintree", code="not_voidable",
                             state_conflict=True)  # the ledger, which let the void through, is behind
        # A reversal resent while the first may still land would be refused (91504) once it has:
        # a refusal that says nothing of the first, which the ledger would record failed.
        _not_yet_there(subject, context, "void")
        return self._released(_reversal(self.tag, self.untag, self.reverse, subject, context), subject)

    @staticmethod
    def _released(result: CommandResult, subject: Subject) -> CommandResult:
        """The reversal's answer, a void only where Braintree voided the authorization. Captured
        whole and settled since it was read (the Control Panel's capture, then the batch),
        Braintree refunded all of it instead: money captured and given back, never a void, so the
        outcome is unknown (reconciliation reads what Braintree holds)."""
        reversal = transaction_of(Response(200, data=result.raw), "reversal")
        if reversal.get("__typename") == "Transaction" and reversal.get("status") == "VOIDED":
            return result
        raise OutcomeUnknown(
            f"Braintree answered the void of {subject.reference!r} with a {reversal.get('__typename')} "
            f"{reversal.get('id')!s:.40} ({str(reversal.get('status')).lower():.40}), not the authorization voided: "
            "it was captured and settled meanwhile, and refunded instead; it is not counted voided: run reconcile()",
            provider="braintree", code="reversed_as_refund")

    @staticmethod
    def _voided(transaction: Mapping[str, Any], subject: Subject) -> CommandResult | None:
        """The void this key already made, if any."""
        key = subject.idempotency_key
        # A void sent by a release that wrote its key itself (not `void_tag`) is found too.
        if transaction.get("status") == "VOIDED" and key and custom_field(transaction, VOID_KEY_FIELD) in (
                void_tag(key), key):
            return _result(void_fields(transaction), transaction)
        return None


@attrs.frozen
class Fetch:
    """fetch: the transaction by reference, or, when the first answer was lost, by orderId and key."""

    read: GatewayCommand
    find: GatewayCommand
    transfers = 1

    def execute(self, subject: Subject, context: CommandContext) -> CommandResult:
        if not subject.reference:
            if not subject.idempotency_key:
                raise InvalidRequest("fetch needs a reference, or the idempotency key (and order) of the first "
                                     "operation; nothing was sent", param="reference", provider="braintree")
            found = find_keyed(self.find, subject, context)
        else:
            try:
                found = _node(self.read, subject, context)
            except InvalidRequest as error:
                if error.code != "NOT_FOUND":
                    raise
                found = None
        if found is None:
            return CommandResult(state=ProviderState.NOT_FOUND)
        return _result(fetched_fields(found, subject.flow), found)


@attrs.frozen
class Vault:
    """vaultPaymentMethod into the buyer's Braintree customer, created first when there is none."""

    create_customer: GatewayCommand
    vault: GatewayCommand
    customer_id: Callable[[CommandResult], str]
    transfers = 2

    def execute(self, subject: Subject, context: CommandContext) -> CommandResult:
        buyer = subject.buyer
        if context.rehearsal:
            return self.vault.execute(subject, context)
        if buyer is not None and buyer.reference:
            return self.vault.execute(subject, context)
        _rehearse(self.vault, subject, context)
        customer = self.customer_id(self.create_customer.execute(subject, context))
        owner = attrs.evolve(buyer, reference=customer) if buyer is not None else Customer(reference=customer)
        return self.vault.execute(attrs.evolve(subject, customer=owner), context)


@attrs.frozen
class Unvault:
    """deletePaymentMethodFromVault names no customer, so one that `customer.reference` names
    (its id or legacy id) is checked first: the payment method is read (node), and one another
    Braintree customer holds is refused, left vaulted. Whatever else the read finds (no such
    payment method, one of no customer), the deletion answers as it does without a customer;
    without one, nothing is read.

    A payment method found held by another customer was never deleted by an earlier attempt (the
    deletion follows a read finding the named customer, and a deleted one does not come back), so
    the refusal stands for a resend too.
    """

    read: GatewayCommand
    delete: GatewayCommand
    transfers = 2

    def execute(self, subject: Subject, context: CommandContext) -> CommandResult:
        named = subject.buyer.reference if subject.buyer is not None else None
        if context.rehearsal or not named:
            return self.delete.execute(subject, context)
        _rehearse(self.delete, subject, context)
        try:
            node = payload(Response(200, data=self.read.execute(Subject(reference=subject.source), context).raw))
        except InvalidRequest:
            node = None
        except PaywireError as error:
            raise before_the_write(error, context, f"payment method {subject.source!r} was read before its deletion, "
                                                   "which was not sent: nothing was deleted") from error
        holder = node.get("customer") if isinstance(node, OBJECT) and node.get("__typename") == "PaymentMethod" else None
        if isinstance(holder, OBJECT) and holder.get("id") and named not in (holder.get("id"), holder.get("legacyId")):
            raise InvalidRequest(f"payment method {subject.source!r} is vaulted for another Braintree customer than "
                                 f"customer.reference {named!r}; unvault it naming the customer holding it; nothing "
                                 "was deleted", param="customer.reference", provider="braintree",
                                 code="customer_mismatch")
        return self.delete.execute(subject, context)
