"""Request builders: the variables of each document, pure functions of the `Subject`.

Braintree's published GraphQL API takes no idempotency key, so the plugin writes its own where
it can read it back: an authorization or sale carries the key in the custom field `paywire_key`
(and the order id, or the key when there is no order, as its `orderId`); a capture or refund
carries the key as its own `orderId`; a refund sent as a reversal first records its key in
`paywire_void_key` (`reverseTransaction` takes no key and leaves no refund), and so does a void,
in paywire's own key space (`void_tag`), so that the two reversals are told apart.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from typing import Any

from paywire import InvalidRequest, Subject, step_key
from paywire.step_keys import OWN_KEYS
from paywire_braintree.amounts import to_braintree

__all__ = [
    "KEY_FIELD",
    "SEARCH_AFTER",
    "VOID_KEY_FIELD",
    "capture_variables",
    "customer_variables",
    "delete_variables",
    "is_void_tag",
    "node_variables",
    "order_id",
    "refund_variables",
    "reverse_variables",
    "search_variables",
    "tag_void_variables",
    "transaction_variables",
    "untag_void_variables",
    "vault_variables",
    "void_tag",
    "voiding_tag_variables",
    "whole_capture_variables",
]

KEY_FIELD = "paywire_key"
VOID_KEY_FIELD = "paywire_void_key"
# The descriptor fields Braintree takes, each with the subject option that gives it.
_DESCRIPTOR = tuple((name, f"descriptor_{name}") for name in ("name", "phone", "url"))
_MAX_ORDER_ID = 255  # characters of an orderId (Braintree's schema)


def _sent_as_order_id(value: str, param: str) -> str:
    """`value`, refused before anything is recorded if Braintree would refuse it as an orderId."""
    if len(value) > _MAX_ORDER_ID:
        raise InvalidRequest(f"{param} has {len(value)} characters; it is sent as Braintree's orderId, which takes at "
                             f"most {_MAX_ORDER_ID}; nothing was sent", param=param, provider="braintree",
                             code="too_long")
    return value


def _reference(subject: Subject) -> str:
    if not subject.reference:
        raise InvalidRequest("this command needs subject.reference (the Braintree transaction id); nothing was sent",
                             param="reference")
    return subject.reference


def order_id(subject: Subject) -> str | None:
    """The transaction's orderId: the order's id, or the idempotency key when there is no order."""
    return subject.order.id if subject.order is not None else subject.idempotency_key


def transaction_variables(subject: Subject, merchant_accounts: Mapping[str, str],
                          custom_fields: Collection[str] = ()) -> dict[str, Any]:
    """authorizePaymentMethod / chargePaymentMethod: the payment method, amount and order.

    Metadata goes to Braintree as custom fields, which exist only once created in the Control
    Panel: only the keys named in `custom_fields` are sent.
    """
    if subject.amount is None or not subject.source:
        raise InvalidRequest("authorize and sale need an amount and a source (a nonce or a vaulted "
                             "payment method id); nothing was sent", param="source" if subject.amount else "amount")
    transaction: dict[str, Any] = {"amount": to_braintree(subject.amount)}
    account = merchant_accounts.get(subject.amount.currency)
    if account:
        transaction["merchantAccountId"] = account
    elif merchant_accounts:
        # Braintree takes the currency from the merchant account: without one the amount would be
        # charged in the default account's currency (1000 JPY as 1000.00 USD).
        raise InvalidRequest(
            f"no Braintree merchant account is configured for {subject.amount.currency} (merchant_accounts has "
            f"{', '.join(sorted(merchant_accounts))}); add one to the method's merchant_accounts option, as "
            "Braintree charges in the merchant account's currency; nothing was sent",
            param="currency", provider="braintree", code="currency_not_supported")
    reference = order_id(subject)
    if reference:
        transaction["orderId"] = _sent_as_order_id(reference, "order.id" if subject.order else "idempotency_key")
    fields = [{"name": KEY_FIELD, "value": subject.idempotency_key}] if subject.idempotency_key else []
    if subject.metadata:
        fields += [{"name": name, "value": value} for name, value in sorted(subject.metadata.items())
                   if name in custom_fields]
    if fields:
        transaction["customFields"] = fields
    if subject.options:
        descriptor = {name: subject.options[option] for name, option in _DESCRIPTOR if subject.options.get(option)}
        if descriptor:
            transaction["descriptor"] = descriptor
    if subject.vaulted:
        transaction["paymentInitiator"] = "UNSCHEDULED"  # merchant-initiated: the buyer is absent
        if subject.buyer is not None and subject.buyer.reference:
            transaction["customerId"] = subject.buyer.reference
    return {"input": {"paymentMethodId": subject.source, "transaction": transaction}}


def whole_capture_variables(subject: Subject) -> dict[str, Any]:
    """captureTransaction: the whole authorization submitted for settlement."""
    return {"input": {"transactionId": _reference(subject)}}


def capture_variables(subject: Subject) -> dict[str, Any]:
    """partialCaptureTransaction: the amount, whether it is the last, and the key as its orderId."""
    reference = _reference(subject)
    if subject.amount is None:
        raise InvalidRequest("a partial capture needs an amount; nothing was sent", param="amount")
    options: dict[str, Any] = {"amount": to_braintree(subject.amount), "finalCapture": subject.final}
    if subject.idempotency_key:
        options["orderId"] = _sent_as_order_id(subject.idempotency_key, "idempotency_key")
    return {"input": {"transactionId": reference, "transaction": options}}


def refund_variables(subject: Subject) -> dict[str, Any]:
    refund: dict[str, Any] = {}
    if subject.amount is not None:
        refund["amount"] = to_braintree(subject.amount)
    if subject.idempotency_key:
        refund["orderId"] = _sent_as_order_id(subject.idempotency_key, "idempotency_key")
    if subject.reason:
        refund["reason"] = subject.reason
    variables: dict[str, Any] = {"transactionId": _reference(subject)}
    if refund:
        variables["refund"] = refund
    return {"input": variables}


def reverse_variables(subject: Subject) -> dict[str, Any]:
    return {"input": {"transactionId": _reference(subject)}}


def tag_void_variables(subject: Subject) -> dict[str, Any]:
    return {"input": {"id": _reference(subject),
                      "customFields": [{"name": VOID_KEY_FIELD, "value": subject.idempotency_key}]}}


def void_tag(key: str) -> str:
    """What a void writes in paywire_void_key before reversing the authorization: its key in
    paywire's own key space (`step_key`), which no caller's key, and so no refund's, is. A void of
    an authorization captured whole meanwhile (the Control Panel) voids that capture: read with a
    refund's key there, it would be a capture made and refunded, not the void it is."""
    return step_key(key, "void", _MAX_ORDER_ID)


def is_void_tag(value: str) -> bool:
    """Whether a paywire_void_key value is a void's (`void_tag`), not a refund's key."""
    return value.startswith((f"{OWN_KEYS}void:", f"{OWN_KEYS}void#"))


def voiding_tag_variables(subject: Subject) -> dict[str, Any]:
    """The void's key (`void_tag`) written on the authorization before it is reversed."""
    return {"input": {"id": _reference(subject),
                      "customFields": [{"name": VOID_KEY_FIELD, "value": void_tag(str(subject.idempotency_key))}]}}


def untag_void_variables(subject: Subject) -> dict[str, Any]:
    """The key of a reversal Braintree refused, removed (a null value removes a custom field)."""
    return {"input": {"id": _reference(subject), "customFields": [{"name": VOID_KEY_FIELD, "value": None}]}}


def node_variables(subject: Subject) -> dict[str, Any]:
    return {"id": _reference(subject)}


SEARCH_AFTER = "search_after"  # the subject option naming the page's cursor (`composites.find_keyed`)


def search_variables(subject: Subject) -> dict[str, Any]:
    """search.transactions by the orderId the first operation was sent with: one page, after the
    cursor `subject.options[SEARCH_AFTER]` when given."""
    reference = order_id(subject)
    if not reference:
        raise InvalidRequest("finding a transaction needs its order or idempotency key; nothing was sent",
                             param="idempotency_key")
    variables: dict[str, Any] = {"input": {"orderId": {"is": reference}}, "first": 50}
    after = subject.options.get(SEARCH_AFTER)
    if after:
        variables["after"] = str(after)
    return variables


def customer_variables(subject: Subject) -> dict[str, Any]:
    buyer = subject.buyer
    customer: dict[str, Any] = {}
    if buyer is not None:
        if buyer.email:
            customer["email"] = buyer.email
        if buyer.name:
            first, _, last = buyer.name.partition(" ")
            customer["firstName"] = first
            if last:
                customer["lastName"] = last
        if buyer.phone:
            customer["phoneNumber"] = buyer.phone
    return {"input": {"customer": customer}}


def vault_variables(subject: Subject) -> dict[str, Any]:
    if not subject.source:
        raise InvalidRequest("vault needs a source (a nonce from Braintree's client SDK); nothing was sent",
                             param="source")
    variables: dict[str, Any] = {"paymentMethodId": subject.source}
    buyer = subject.buyer
    if buyer is not None and buyer.reference:
        variables["customerId"] = buyer.reference
    return {"input": variables}


def delete_variables(subject: Subject) -> dict[str, Any]:
    if not subject.source:
        raise InvalidRequest("unvault needs the vaulted payment method id as source; nothing was sent",
                             param="source")
    return {"input": {"paymentMethodId": subject.source}}
