"""Handlers: Braintree's transactions, captures and refunds as `CommandResult` fields.

`fetch` reports the authorization's totals from the transaction itself (a sale or a full capture
settles the transaction it names) and from its partial captures and refunds, each listed as a
`ProviderOperation` carrying the idempotency key it was sent with (its `orderId`), a refund also
the transaction it was issued against (the sale, the whole capture or a partial capture). A sale or
whole capture voided before it settled is a failed capture and the payment `failed`, as one
declined at settlement: reported `voided`, reconciliation would take a lost sale for done.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from paywire import InvalidRequest, Money, ProviderOperation, ProviderState, Response, Subject
from paywire_braintree.amounts import from_braintree
from paywire_braintree.builders import KEY_FIELD
from paywire_braintree.objects import OBJECT
from paywire_braintree.states import SUBMITTED, operation_status, payment_state, result_status, voided_unsettled
from paywire_braintree.validation import payload

__all__ = [
    "capture_fields", "charged_fields", "custom_field", "fetched_fields", "found_fields", "payment_fields", "refund_fields",
    "transaction_of", "vault_fields", "void_fields",
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


def payment_fields(transaction: Mapping[str, Any]) -> dict[str, Any]:
    """An authorization or sale: what capture, void and refund act on, and what fetch reads."""
    status = str(transaction["status"])
    return {
        "status": result_status(status),
        "reference": transaction["id"],
        "references": {"payment": transaction["id"]},
        "state": payment_state(status),
        "amount": from_braintree(transaction["amount"]),
    }


def found_fields(transaction: Mapping[str, Any]) -> dict[str, Any]:
    """An authorization or sale an earlier attempt under the key made, found by a retry: its state
    and totals as fetch reads them, since it may have been captured or refunded since (its status
    alone says SETTLED or AUTHORIZED), so the payment service sees that it moved on."""
    now = fetched_fields(transaction)
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


def capture_fields(subject: Subject, response: Response) -> dict[str, Any]:
    """A partial capture (its own transaction) or a full capture (the authorization itself)."""
    node = payload(response)
    capture = node.get("capture") or node.get("transaction") if isinstance(node, OBJECT) else None
    if not isinstance(capture, OBJECT):
        capture = {}
    parent = subject.reference or capture["id"]
    return {
        "status": result_status(str(capture["status"])),
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
        "status": result_status(str(refund["status"])),
        "reference": refund["id"],
        "amount": from_braintree(refund["amount"]),
        "references": references,
    }


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


def _operations(kind: str, items: Iterable[Any], parent: str | None = None) -> list[ProviderOperation]:
    return [
        ProviderOperation(kind=kind, reference=item["id"], amount=from_braintree(item["amount"]),
                          status=operation_status(str(item["status"])), idempotency_key=item.get("orderId"),
                          parent=parent)
        for item in items if isinstance(item, OBJECT)
    ]


def _refunds(transaction: Mapping[str, Any]) -> list[ProviderOperation]:
    """The refunds Braintree lists as "issued against" `transaction`: each one's parent."""
    return _operations("refund", transaction.get("refunds") or (), str(transaction["id"]))


def _children(transaction: Mapping[str, Any]) -> list[Mapping[str, Any]]:
    details = transaction.get("partialCaptureDetails")
    if isinstance(details, OBJECT) and details.get("__typename") == "ParentAuthorization":
        return [child for child in details.get("childCaptures") or () if isinstance(child, OBJECT)]
    return []


def fetched_fields(transaction: Mapping[str, Any]) -> dict[str, Any]:
    """The authorization or sale as it stands, with every capture and refund it has."""
    status = str(transaction["status"])
    authorized = from_braintree(transaction["amount"])
    children = _children(transaction)
    captures = _operations("capture", children)
    voided = voided_unsettled(transaction)
    if (status in SUBMITTED or voided) and not children:  # a sale or a whole capture: the transaction itself
        captures.append(ProviderOperation(kind="capture", reference=transaction["id"], amount=authorized,
                                          status=operation_status(status),
                                          idempotency_key=custom_field(transaction, KEY_FIELD)))
    refunds = _refunds(transaction)
    for child in children:
        refunds += _refunds(child)
    zero = Money.zero(authorized.currency)
    captured = sum((op.amount for op in captures if op.status == "succeeded"), zero)
    refunded = sum((op.amount for op in refunds if op.status == "succeeded"), zero)
    state = ProviderState.FAILED if voided else payment_state(status)
    if captured:
        if refunded == captured:
            state = ProviderState.REFUNDED
        elif refunded:
            state = ProviderState.PARTIALLY_REFUNDED
        elif status == "AUTHORIZED" and captured < authorized:
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
        "operations": [*captures, *refunds],
    }
    if state == ProviderState.PROCESSING:
        fields["authorized"] = zero  # taken, not yet decided: counted nowhere until it is
    return fields
