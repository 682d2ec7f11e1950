"""How the emulator's records read back as Braintree's GraphQL objects (dicts graphql-core
resolves; callables stand for fields computed only when a document selects them)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from paywire_braintree.emulator.model import Customer, PaymentMethod, Transaction, captured_amount, event_view

if TYPE_CHECKING:
    from paywire_braintree.emulator.app import BraintreeEmulator

__all__ = ["customer_view", "payment_method_view", "refund_view", "transaction_view"]


def _custom(transaction: Transaction) -> list[dict[str, str]]:
    return [{"name": name, "value": value} for name, value in sorted(transaction.custom.items())]


def _common(emulator: BraintreeEmulator, transaction: Transaction) -> dict[str, Any]:
    return {
        "id": transaction.id,
        "legacyId": transaction.legacy,
        "createdAt": transaction.created,
        "amount": transaction.money(),
        "orderId": transaction.order_id,
        "status": transaction.status,
        "merchantAccountId": transaction.merchant_account,
        "customFields": _custom(transaction),
        "statusHistory": lambda info: [event_view(transaction, e) for e in reversed(transaction.history)],
        "paymentMethod": lambda info: (payment_method_view(emulator, emulator.payment_methods[transaction.payment_method])
                                       if transaction.payment_method in emulator.payment_methods else None),
        "customer": lambda info: (customer_view(emulator, emulator.customers[transaction.customer])
                                  if transaction.customer in emulator.customers else None),
    }


def transaction_view(emulator: BraintreeEmulator, transaction: Transaction) -> dict[str, Any]:
    if transaction.kind == "credit":
        return refund_view(emulator, transaction)
    view = _common(emulator, transaction)
    view["__typename"] = "Transaction"
    view["refunds"] = lambda info: [refund_view(emulator, emulator.transactions[r]) for r in transaction.refunds]
    if transaction.parent is not None:
        view["partialCaptureDetails"] = {
            "__typename": "ChildCapture",
            "parentAuthorization": lambda info: transaction_view(emulator, emulator.transactions[transaction.parent or ""]),
        }
    elif transaction.children:
        # Braintree's schema: a partially captured transaction's amount is what its captures
        # hold; what it authorized stays in totalAmountAuthorized.
        view["amount"] = transaction.money(captured_amount(emulator.transactions, transaction))
        view["partialCaptureDetails"] = {
            "__typename": "ParentAuthorization",
            "totalAmountAuthorized": transaction.money(),
            "childCaptures": lambda info: [transaction_view(emulator, emulator.transactions[c])
                                           for c in transaction.children],
        }
    else:
        view["partialCaptureDetails"] = None
    return view


def refund_view(emulator: BraintreeEmulator, refund: Transaction) -> dict[str, Any]:
    view = _common(emulator, refund)
    view["__typename"] = "Refund"
    view["source"] = refund.origin
    view["refundedTransaction"] = lambda info: transaction_view(emulator, emulator.transactions[refund.refunded or ""])
    return view


def payment_method_view(emulator: BraintreeEmulator, method: PaymentMethod) -> dict[str, Any]:
    return {
        "__typename": "PaymentMethod", "id": method.id, "legacyId": method.legacy, "usage": "MULTI_USE",
        "createdAt": method.created,
        "customer": lambda info: (customer_view(emulator, emulator.customers[method.customer])
                                  if method.customer in emulator.customers else None),
    }


def customer_view(emulator: BraintreeEmulator, customer: Customer) -> dict[str, Any]:
    return {"__typename": "Customer", "id": customer.id, "legacyId": customer.legacy, "createdAt": customer.created,
            "email": customer.email, "firstName": customer.first_name, "lastName": customer.last_name}
