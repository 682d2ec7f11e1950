"""Handlers: Braintree's transactions, captures and refunds as `CommandResult` fields.

`fetch` reports the authorization's totals from the transaction itself (a sale or a full capture
settles the transaction it names) and from its partial captures and refunds, each listed as a
`ProviderOperation` carrying the idempotency key it was sent with (its `orderId`), a refund also
the transaction it was issued against (the sale, the whole capture or a partial capture). A sale
or whole capture voided before it settled, as one declined at settlement after it was submitted,
is a capture `reversed` (`states.operation_status`: it took effect and was undone) and the payment
`failed`, as a sale so declined. One that paywire's refund in full reversed
(`refunded_by_reversal`: its key written on it) is a capture that succeeded and a refund of all of
it, listed under that refund's key and the transaction's own id, as the refund command answered
it; if the batch settled it before the reversal, Braintree refunded it instead, and that Refund
(no key of its own: `reversal_refund`) is listed under the key too. An authorization whose partial
captures all declined at settlement, and which takes no more (they asked for all it held), holds
nothing: `voided`, as an expired one; so does an authorization captured whole (submitted itself)
then declined or voided before it settled, which reads as a sale so would: the payment's flow,
given to fetch, tells them apart. One whose captures asked for all it held, some of them
standing, is `captured`: nothing is left to capture, whichever of them was undone since.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import attrs

from paywire import InvalidRequest, Money, ProviderOperation, ProviderState, Response, Subject
from paywire_braintree.amounts import from_braintree
from paywire_braintree.builders import KEY_FIELD
from paywire_braintree.objects import OBJECT
from paywire_braintree.states import (
    SUBMITTED,
    known,
    moved_status,
    operation_status,
    payment_state,
    refunded_by_reversal,
    result_status,
    reversal_key,
    reversal_refund,
    voided_unsettled,
)
from paywire_braintree.validation import payload

__all__ = [
    "authorized_amount", "capture_fields", "charged_fields", "custom_field", "fetched_fields", "found_fields",
    "never_submitted", "own_status", "payment_fields", "pending_whole", "refund_fields", "released_whole", "reversal_refund_fields",
    "reversed_capture_fields", "sale_unsubmitted", "submitted_fields", "transaction_of", "vault_fields", "void_fields",
]


def transaction_of(response: Response, field: str = "transaction") -> Mapping[str, Any]:
    node = payload(response)
    transaction = node.get(field) if isinstance(node, OBJECT) else None
    return transaction if isinstance(transaction, OBJECT) else {}


def custom_field(transaction: Mapping[str, Any], name: str) -> str | None:
    for field in transaction.get("customFields") or ():
        if isinstance(field, OBJECT) and field.get("name") == name:
            return str(field.get("value")) if field.get("value") is not None else None
    return None


def own_status(transaction: Mapping[str, Any]) -> str:
    """The status of the authorization itself. Braintree turns an authorization SETTLEMENT_PENDING
    at its first partial capture: that speaks of its captures (each a transaction of its own,
    read apart), while the authorization stays held for more."""
    status = str(transaction["status"])
    return "AUTHORIZED" if status == "SETTLEMENT_PENDING" and _children(transaction) else status


def authorized_amount(transaction: Mapping[str, Any]) -> Money:
    """What the transaction authorized. Once partially captured its `amount` is what its captures
    hold (Braintree's schema); the authorization is the parent's `totalAmountAuthorized`."""
    details = transaction.get("partialCaptureDetails")
    if isinstance(details, OBJECT) and details.get("__typename") == "ParentAuthorization" \
            and details.get("totalAmountAuthorized"):
        return from_braintree(details["totalAmountAuthorized"])
    return from_braintree(transaction["amount"])


def payment_fields(transaction: Mapping[str, Any]) -> dict[str, Any]:
    """An authorization or sale: what capture, void and refund act on, and what fetch reads."""
    status = own_status(transaction)
    return {
        "status": result_status(status),
        "reference": transaction["id"],
        "references": {"payment": transaction["id"]},
        "state": payment_state(status),
        "amount": authorized_amount(transaction),
    }


def found_fields(transaction: Mapping[str, Any], flow: str | None = None) -> dict[str, Any]:
    """An authorization or sale an earlier attempt under the key made, found by a retry: its state
    and totals as fetch reads them, since it may have been captured or refunded since (its status
    alone says SETTLED or AUTHORIZED), so the payment service sees that it moved on."""
    now = fetched_fields(transaction, flow)
    return {**payment_fields(transaction), **{name: now[name] for name in ("state", "authorized", "captured", "refunded")}}


def charged_fields(subject: Subject, response: Response) -> dict[str, Any]:
    fields = payment_fields(transaction_of(response))
    charged: Money = fields["amount"]
    if subject.amount is not None and charged.currency != subject.amount.currency:
        # Sent without a merchant account, the amount went to the default one, in its currency.
        raise InvalidRequest(
            f"Braintree charged {charged} for {subject.amount}: its default merchant account is in {charged.currency}; "
            f"void transaction {fields['reference']} and map {subject.amount.currency} in the method's merchant_accounts",
            param="currency", provider="braintree", code="currency_mismatch")
    return fields


def submitted_fields(subject: Subject, response: Response) -> dict[str, Any]:
    """A sale Braintree answered AUTHORIZED, submitted for settlement (captureTransaction): a sale
    succeeded only once Braintree holds it submitted (`moved_status`)."""
    fields = charged_fields(subject, response)
    return {**fields, "status": moved_status(str(transaction_of(response)["status"]))}


def capture_fields(subject: Subject, response: Response) -> dict[str, Any]:
    """A partial capture (its own transaction) or a full capture (the authorization itself)."""
    node = payload(response)
    capture = node.get("capture") or node.get("transaction") if isinstance(node, OBJECT) else None
    if not isinstance(capture, OBJECT):
        capture = {}
    parent = subject.reference or capture["id"]
    return {
        "status": moved_status(str(capture["status"])),
        "reference": capture["id"],
        "amount": from_braintree(capture["amount"]),
        "references": {"capture": capture["id"], "authorization": parent, "payment": parent},
    }


def refund_fields(subject: Subject, response: Response) -> dict[str, Any]:
    refund = transaction_of(response, "refund")
    references = {"refund": refund["id"]}
    refunded = refund.get("refundedTransaction")
    if isinstance(refunded, OBJECT) and refunded.get("id"):
        references["capture"] = refunded["id"]
    return {
        "status": moved_status(str(refund["status"])),
        "reference": refund["id"],
        "amount": from_braintree(refund["amount"]),
        "references": references,
    }


def reversed_capture_fields(transaction: Mapping[str, Any]) -> dict[str, Any]:
    """A refund in full made by voiding the capture or sale before it settled: no refund object
    exists, so the refund is the transaction itself, given back whole."""
    return {"status": "succeeded", "reference": transaction["id"], "amount": from_braintree(transaction["amount"]),
            "references": {"capture": transaction["id"]}}


def reversal_refund_fields(subject: Subject, response: Response) -> dict[str, Any]:
    """reverseTransaction sent as a refund: the voided transaction (it had not settled), or the
    Refund Braintree made instead if it settled meanwhile (a refund of the whole amount)."""
    reversal = transaction_of(response, "reversal")
    if reversal.get("__typename") == "Transaction":
        return reversed_capture_fields(reversal)
    return {"status": moved_status(str(reversal["status"])), "reference": reversal["id"],
            "amount": from_braintree(reversal["amount"]),
            "references": {"refund": reversal["id"], "capture": str(subject.reference)}}


def void_fields(transaction: Mapping[str, Any]) -> dict[str, Any]:
    return {"reference": transaction["id"], "references": {"payment": transaction["id"]},
            "state": ProviderState.VOIDED}


def vault_fields(subject: Subject, response: Response) -> dict[str, Any]:
    method = payload(response)["paymentMethod"]
    references = {"payment_method": method["id"]}
    customer = method.get("customer")
    if isinstance(customer, OBJECT) and customer.get("id"):
        references["customer"] = customer["id"]
    return {"reference": method["id"], "token": method["id"], "references": references}


def _operations(kind: str, items: Iterable[Any], parent: str | None = None,
                inherited: str | None = None) -> list[ProviderOperation]:
    return [
        ProviderOperation(kind=kind, reference=item["id"], amount=from_braintree(item["amount"]),
                          status="succeeded" if kind == "capture"
                          and refunded_by_reversal(item, child=True, inherited=inherited)
                          else operation_status(str(item["status"]), item.get("statusHistory")),
                          idempotency_key=item.get("orderId"),
                          parent=parent)
        for item in items if isinstance(item, OBJECT)
    ]


def _refunds(transaction: Mapping[str, Any], *, child: bool = False,
             inherited: str | None = None) -> list[ProviderOperation]:
    """The refunds Braintree lists as "issued against" `transaction`: each one's parent; and the
    refund in full paywire made by reversing it, under that refund's key (the transaction itself
    when voided, Braintree's Refund when the batch had settled it)."""
    refunds = _operations("refund", transaction.get("refunds") or (), str(transaction["id"]))
    made = reversal_refund(transaction)
    if made is not None:  # the reversal the batch overtook: a refund with no key of its own
        refunds = [attrs.evolve(op, idempotency_key=reversal_key(transaction)) if op.reference == made["id"] else op
                   for op in refunds]
    if refunded_by_reversal(transaction, child=child, inherited=inherited):
        refunds.append(ProviderOperation(kind="refund", reference=transaction["id"],
                                         amount=from_braintree(transaction["amount"]), status="succeeded",
                                         idempotency_key=reversal_key(transaction), parent=str(transaction["id"])))
    return refunds


def _children(transaction: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    details = transaction.get("partialCaptureDetails")
    if isinstance(details, OBJECT) and details.get("__typename") == "ParentAuthorization":
        return [child for child in details.get("childCaptures") or () if isinstance(child, OBJECT)]
    return []


def _spent(status: str, captures: Iterable[ProviderOperation], authorized: Money) -> bool:
    """Whether an authorization with partial captures takes no more: it left AUTHORIZED and
    SETTLEMENT_PENDING (the statuses partialCaptureTransaction accepts) for another status paywire
    knows (one Braintree adds says neither), or its captures asked for all of it. A capture declined at settlement or voided counts as asked: Braintree
    documents no way to capture that amount again (a capture of all that was left closes the
    authorization), so it is not read as held: with captures standing, the payment is captured,
    never partially captured with that amount offered again."""
    asked = sum((op.amount for op in captures), Money.zero(authorized.currency))
    return (known(status) and status not in ("AUTHORIZED", "SETTLEMENT_PENDING")) or asked >= authorized


def _capturable(status: str, authorized: Money, spent: bool, partial: bool) -> Money | None:
    """What Braintree still lets be captured of the transaction: all of an authorization not yet
    submitted (AUTHORIZED), nothing of one captured in parts (`partial`) that takes no more
    (`_spent`), nor of anything else (a sale, a whole capture, a voided, expired or declined
    authorization). None for an authorization captured in parts that may take more: whether a
    final capture closed it Braintree does not say (its status stays SETTLEMENT_PENDING, and
    `finalCapture` is never read back); None too for a status paywire does not know, which says
    nothing of what it takes (a zero would close the capture for good)."""
    if partial:
        return Money.zero(authorized.currency) if spent else None
    if not known(status):
        return None
    return authorized if status == "AUTHORIZED" else Money.zero(authorized.currency)


def released_whole(transaction: Mapping[str, Any], flow: str | None) -> bool:
    """An authorization submitted for settlement itself (captured whole: `captureTransaction`,
    the Control Panel's capture), then declined at settlement or voided before it settled. Its
    status and history are those of a sale declined so (a sale is authorized, then submitted):
    only the payment's `flow` tells that it was authorized first, and the hold is released,
    nothing captured, as when partial captures that took all of it are declined (`_spent`)."""
    return flow == "authorize" and not _children(transaction) \
        and (transaction.get("status") == "SETTLEMENT_DECLINED" or voided_unsettled(transaction))


def pending_whole(transaction: Mapping[str, Any], flow: str | None) -> bool:
    """An authorization captured whole (submitted itself: `captureTransaction`, the Control
    Panel's capture) that Braintree has not decided (SETTLEMENT_PENDING: a bank account's). It
    reads as a sale taken and not yet decided, but the authorization was decided before: it stands,
    its capture listed accepted, and it is no longer AUTHORIZED, so Braintree takes no further
    capture of it (nothing `capturable`), which closes capture (reconcile's `_capture_closed`)."""
    return flow == "authorize" and not _children(transaction) and transaction.get("status") == "SETTLEMENT_PENDING"


def sale_unsubmitted(transaction: Mapping[str, Any], flow: str | None) -> bool:
    """A sale Braintree holds only authorized: AUTHORIZED (chargePaymentMethod may answer so), or
    captured in parts since (the Control Panel's partial captures of that authorization). Neither
    is the capture of all of it that the sale asked: nothing of it counts as the sale's."""
    return flow == "sale" and (bool(_children(transaction)) or transaction.get("status") == "AUTHORIZED")


def never_submitted(transaction: Mapping[str, Any], flow: str | None) -> bool:
    """A sale Braintree released (voided, expired) without ever submitting it for settlement: it
    was only authorized (chargePaymentMethod answered AUTHORIZED), and charged nothing."""
    return flow == "sale" and not _children(transaction) \
        and transaction.get("status") in ("VOIDED", "AUTHORIZATION_EXPIRED") \
        and not any(isinstance(event, OBJECT) and event.get("status") in SUBMITTED
                    for event in transaction.get("statusHistory") or ())


def fetched_fields(transaction: Mapping[str, Any], flow: str | None = None) -> dict[str, Any]:
    """The authorization or sale as it stands, with every capture and refund it has; `flow`, the
    payment's when known, tells an authorization captured whole from a sale (`released_whole`).

    A sale Braintree holds only authorized (`sale_unsubmitted`) is not what the sale asked:
    `pending`, counted nowhere, so reconciliation leaves the sale open, and a retry under its key
    submits it (`composites.FirstOperation`) unless it was captured in parts. Held AUTHORIZED with
    no capture, it is `unfinished`: the submission is the sale's own step, which the Janitor's
    resend takes (a sale answered AUTHORIZING and authorized since, or whose submission was lost).
    One released so (voided, expired) charged nothing: `failed`."""
    if sale_unsubmitted(transaction, flow):
        zero = Money.zero(authorized_amount(transaction).currency)
        return {"reference": transaction["id"], "references": {"payment": transaction["id"]},
                "state": ProviderState.PENDING, "authorized": zero, "captured": zero, "refunded": zero,
                "capturable": None, "operations": [],
                "unfinished": transaction.get("status") == "AUTHORIZED" and not _children(transaction)}
    status = own_status(transaction)
    authorized = authorized_amount(transaction)
    children = _children(transaction)
    inherited = reversal_key(transaction) if children else None  # copied to each child (`refunded_by_reversal`)
    captures = _operations("capture", children, inherited=inherited)
    voided = voided_unsettled(transaction)
    refunded_whole = refunded_by_reversal(transaction)
    if (status in SUBMITTED or voided or refunded_whole) and not children:  # a sale or a whole capture
        captures.append(ProviderOperation(kind="capture", reference=transaction["id"], amount=authorized,
                                          status="succeeded" if refunded_whole
                                          else operation_status(status, transaction.get("statusHistory")),
                                          idempotency_key=custom_field(transaction, KEY_FIELD)))
    refunds = _refunds(transaction)
    for child in children:
        refunds += _refunds(child, child=True, inherited=inherited)
    zero = Money.zero(authorized.currency)
    captured = sum((op.amount for op in captures if op.status == "succeeded"), zero)
    # A refund of a capture the batch or the bank undid gave back no money the payment held (the
    # outcome model's reading, `rules._undone`): a returned bank debit's refund settling later
    # leaves nothing captured, so it counts nothing refunded either.
    undone = {op.reference for op in captures if op.status == "reversed"}
    refunded = sum((op.amount for op in refunds if op.status == "succeeded" and op.parent not in undone), zero)
    state = ProviderState.FAILED if voided or never_submitted(transaction, flow) else payment_state(status)
    spent = bool(children) and _spent(status, captures, authorized)
    if spent and all(op.status in ("failed", "reversed") for op in captures):
        state = ProviderState.VOIDED  # released: its captures declined, and it takes no more
    if released_whole(transaction, flow):
        state = ProviderState.VOIDED
    if pending_whole(transaction, flow):
        state = ProviderState.AUTHORIZED  # the hold stands; its capture, listed accepted, is what waits
    if captured:
        if refunded == captured:
            state = ProviderState.REFUNDED
        elif refunded:
            state = ProviderState.PARTIALLY_REFUNDED
        elif (status == "AUTHORIZED" or not known(status)) and captured < authorized and not spent:
            state = ProviderState.PARTIALLY_CAPTURED
        else:
            state = ProviderState.CAPTURED
    failed = state == ProviderState.FAILED
    fields: dict[str, Any] = {
        "reference": transaction["id"],
        "references": {"payment": transaction["id"]},
        "state": state,
        "authorized": zero if failed else authorized,
        "captured": captured,
        "refunded": refunded,
        "capturable": _capturable(status, authorized, spent, bool(children)),
        "operations": [*captures, *refunds],
    }
    if state == ProviderState.PROCESSING:
        fields["authorized"] = zero  # taken, not yet decided: counted nowhere until it is
    return fields
