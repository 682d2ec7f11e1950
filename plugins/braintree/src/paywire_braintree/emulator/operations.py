"""Braintree's operations as the emulator applies them, with Braintree's rules and codes.

- authorizePaymentMethod / chargePaymentMethod: a fake nonce or a vaulted payment method; test
  amounts 2000.00-2999.99 decline with that processor code, 3000.00-3000.99 fail. A vaulted
  payment method charged naming a customer must be that customer's (91516).
- captureTransaction: the whole authorization (or less, which becomes its amount).
- partialCaptureTransaction: several captures up to what is authorized; `finalCapture` closes it.
- refundTransaction: only a settling or settled sale or capture (91506 otherwise), up to what is
  left (91521); a refund of a hard-declining test amount (2004.00, ...) is PROCESSOR_DECLINED, a
  soft one (2046.00, ...) goes through, as Braintree's refund authorization does;
  reverseTransaction voids what is not settled and refunds what is, but refuses an authorization
  captured in parts (91504): Braintree refunds only its captures.
- duplicate checking (`duplicate_window` seconds, off by default): a charge of the same payment
  method, amount and merchant account within the window is GATEWAY_REJECTED DUPLICATE, naming
  the original (`duplicateOf`); `search_lag` seconds hide new transactions from search, as
  Braintree's index may.
- an authorization decided later (the emulator's authorizing nonces) stays AUTHORIZING until
  `settle()` authorizes it (and submits it, for a charge, except one of the authorizing-charge
  nonce: left AUTHORIZED, as Braintree may) or ends it as the outcome says: PROCESSOR_DECLINED
  (by default), FAILED or GATEWAY_REJECTED; a charge of the emulator's authorized-charge nonce is
  answered AUTHORIZED, not submitted for settlement, and a refund of a charge of its
  refund-authorized nonce stays AUTHORIZED until `settle()`.
- expiry: `expire()` marks an authorization AUTHORIZATION_EXPIRED, as Braintree does after its
  brand's time frame; what it has not captured can then be neither captured nor voided.
- settlement: with `settlement="instant"` a submitted capture settles at once (as if the batch
  ran), "batch" holds it in SUBMITTED_FOR_SETTLEMENT and "pending" in SETTLEMENT_PENDING until
  `settle()` (or the sandboxSettleTransaction mutation) decides it, with its webhook. Settling an
  authorization captured in parts settles its captures: it never settles itself, and reads SETTLED
  only once closed, with none of its captures waiting.
"""

from __future__ import annotations

import re
import time
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

from graphql import GraphQLError

from paywire.money import CURRENCY_EXPONENTS
from paywire_braintree.emulator.errors import not_found, validation
from paywire_braintree.emulator.model import (
    Customer,
    PaymentMethod,
    Transaction,
    captured_amount,
    new_legacy_id,
    processor_response,
)
from paywire_braintree.emulator.nonces import NONCES, Nonce, processor_outcome, refund_declined
from paywire_braintree.emulator.views import transaction_view
from paywire_braintree.ids import global_id

if TYPE_CHECKING:
    from paywire_braintree.emulator.app import BraintreeEmulator

__all__ = ["Operations"]

SETTLED = ("SETTLING", "SETTLED", "SETTLEMENT_CONFIRMED")
_VERIFICATIONS = {"declined": "PROCESSOR_DECLINED", "failed": "FAILED", "rejected": "GATEWAY_REJECTED"}
_WAITING = ("SUBMITTED_FOR_SETTLEMENT", "SETTLEMENT_PENDING", "SETTLING")  # for the batch
_NOT_REFUNDED = ("PROCESSOR_DECLINED", "SETTLEMENT_DECLINED", "FAILED")
_AMOUNT = re.compile(r"-?[0-9]+(?:\.[0-9]+)?")  # the sign is refused after: "must be greater than zero"


def _amount(text: Any, exponent: int) -> Decimal:
    """Braintree's Amount: a whole number, or exactly two or three decimals, in the account's exponent,
    written in ASCII digits (`Decimal` alone would take " 10", "1_0" or other scripts' digits)."""
    if isinstance(text, str) and not _AMOUNT.fullmatch(text):
        raise validation("Amount is an invalid format.", "81503")
    try:
        value = Decimal(str(text))
    except InvalidOperation:
        raise validation("Amount is an invalid format.", "81503") from None
    exponent_of_text = value.as_tuple().exponent
    places = -exponent_of_text if isinstance(exponent_of_text, int) else 99
    if value <= 0:
        raise validation("Amount must be greater than zero.", "81531")
    if places not in (0, exponent) or places > 3:
        raise validation("Amount is an invalid format.", "81503")
    return value


class Operations:
    """The emulator's state changes; every method runs under the emulator's lock."""

    def __init__(self, emulator: BraintreeEmulator) -> None:
        self.emulator = emulator

    # -- look-ups ----------------------------------------------------------------------------
    def transaction(self, identifier: Any) -> Transaction:
        found = self.emulator.transactions.get(str(identifier))
        if found is None:
            raise not_found()
        return found

    def _instrument(self, identifier: str) -> tuple[str | None, Nonce]:
        method = self.emulator.payment_methods.get(identifier)
        if method is not None:
            return method.id, NONCES[method.nonce]
        nonce = NONCES.get(identifier)
        if nonce is None:
            raise validation("Unknown or expired payment_method_nonce.", "91565")
        if nonce.outcome == "invalid":
            raise validation("Credit card number is invalid.", nonce.code or "81715")
        if nonce.outcome == "consumed":
            raise validation("Cannot use a payment_method_nonce more than once.", nonce.code or "93107")
        return None, nonce

    def _account(self, name: Any) -> tuple[str, str]:
        account = str(name) if name else self.emulator.default_merchant_account
        currency = self.emulator.merchant_accounts.get(account)
        if currency is None:
            raise validation("Merchant account ID is invalid.", "91513")
        return account, currency

    def _fields(self, fields: Any) -> dict[str, str]:
        custom: dict[str, str] = {}
        for field in fields or ():
            if field["name"] not in self.emulator.custom_fields:
                raise validation("Custom field is invalid: " + str(field["name"]) + ".", "91526")
            if field.get("value") is not None:
                custom[field["name"]] = str(field["value"])
        return custom

    # -- the operations ------------------------------------------------------------------------
    def create(self, input: dict[str, Any], submit: bool) -> Transaction:
        data = input["transaction"]
        account, currency = self._account(data.get("merchantAccountId"))
        exponent = CURRENCY_EXPONENTS[currency]
        amount = _amount(data["amount"], exponent)
        method, nonce = self._instrument(str(input["paymentMethodId"]))
        customer = data.get("customerId")
        if customer is not None and customer not in self.emulator.customers:
            raise validation("Customer ID is invalid.", "91510")
        if customer is not None and method is not None and self.emulator.payment_methods[method].customer != customer:
            raise validation("Cannot provide both payment_method_token and customer_id unless the payment_method "
                             "belongs to the customer.", "91516")
        transaction = Transaction(
            legacy=new_legacy_id(), kind="sale", amount=amount, currency=currency, exponent=exponent,
            status="AUTHORIZING", merchant_account=account, order_id=data.get("orderId"),
            custom=self._fields(data.get("customFields")), payment_method=method,
            source=str(input["paymentMethodId"]),
            customer=customer or (self.emulator.payment_methods[method].customer if method else None),
        )
        original = self._duplicate(transaction)
        self.emulator.transactions[transaction.id] = transaction
        forced = processor_outcome(amount)
        if original is not None:
            transaction.move("GATEWAY_REJECTED", gatewayRejectionReason="DUPLICATE",
                             duplicateOf=lambda info: transaction_view(self.emulator, original))
        elif nonce.outcome == "rejected":
            transaction.move("GATEWAY_REJECTED", gatewayRejectionReason=nonce.code)
        elif nonce.outcome in ("declined", "failed") or forced:
            outcome, code = (nonce.outcome, nonce.code or "2000") if nonce.outcome != "ok" else forced  # type: ignore[misc]
            status = "PROCESSOR_DECLINED" if outcome == "declined" else "FAILED"
            extra = {"declineType": "SOFT"} if status == "PROCESSOR_DECLINED" else {}
            transaction.move(status, processorResponse=processor_response(code), **extra)
        elif "authorization" in nonce.pending:
            # AUTHORIZING until decided (`settle`)
            transaction.charge = submit and "submission" not in nonce.pending
        else:
            self._authorized(transaction, submit and "submission" not in nonce.pending)
        return transaction

    def _authorized(self, transaction: Transaction, submit: bool) -> None:
        transaction.move("AUTHORIZED", processorResponse=processor_response("1000"))
        if submit:
            self._submit(transaction)

    def _duplicate(self, transaction: Transaction) -> Transaction | None:
        """With duplicate checking on: an earlier charge of the same payment method, amount and
        merchant account within the window (Braintree rejects the new one as DUPLICATE)."""
        window = self.emulator.duplicate_window
        if window is None:
            return None
        return next((t for t in reversed(self.emulator.transactions.values())
                     if t.kind == "sale" and t.parent is None and t.source == transaction.source
                     and t.amount == transaction.amount and t.merchant_account == transaction.merchant_account
                     and transaction.created_at - t.created_at <= window
                     and t.status not in ("GATEWAY_REJECTED", "PROCESSOR_DECLINED", "FAILED")), None)

    def _pending(self, transaction: Transaction, what: str | None = None) -> bool:
        """Whether this instrument's settlement of this kind of transaction (or `what`) stays pending."""
        method = self.emulator.payment_methods.get(transaction.source or "")
        nonce = NONCES.get(method.nonce if method is not None else transaction.source or "")
        return nonce is not None and (what or transaction.kind) in nonce.pending

    def _submit(self, transaction: Transaction) -> None:
        mode = "pending" if self._pending(transaction) else self.emulator.settlement
        transaction.move("SETTLEMENT_PENDING" if mode == "pending" else "SUBMITTED_FOR_SETTLEMENT")
        if mode == "instant":
            self.settle(transaction, "SETTLED")

    def settle(self, transaction: Transaction, outcome: str = "SETTLED") -> Transaction:
        if transaction.status == "AUTHORIZING":  # the authorization decided
            if outcome == "SETTLED":
                self._authorized(transaction, transaction.charge)
            elif outcome == "FAILED":
                transaction.move("FAILED", processorResponse=processor_response("3000"))
            elif outcome == "GATEWAY_REJECTED":
                transaction.move("GATEWAY_REJECTED", gatewayRejectionReason="FRAUD")
            else:
                transaction.move("PROCESSOR_DECLINED", processorResponse=processor_response("2000"), declineType="SOFT")
            return transaction
        if transaction.kind == "credit" and transaction.status == "AUTHORIZED":  # a refund authorized only
            transaction.move("SUBMITTED_FOR_SETTLEMENT")
        if transaction.children:
            return self._settle_captures(transaction, outcome)
        if transaction.status not in _WAITING:
            raise validation("Transaction can only be settled if it is submitted for settlement.", "91575")
        if outcome == "SETTLED":
            if transaction.status != "SETTLING":
                transaction.move("SETTLING")
            transaction.move("SETTLED")
        else:
            transaction.move("SETTLEMENT_DECLINED", processorResponse=processor_response("4001"))
        self.emulator.notify("transaction_settled" if outcome == "SETTLED" else "transaction_settlement_declined",
                             transaction)
        return transaction

    def bank_return(self, transaction: Transaction) -> Transaction:
        if transaction.status != "SETTLED" or transaction.children:
            raise validation("Only a settled transaction can be returned by the bank.", "91575")
        transaction.move("SETTLEMENT_DECLINED", processorResponse=processor_response("4001"))
        self.emulator.notify("transaction_settlement_declined", transaction)
        return transaction

    def _settle_captures(self, parent: Transaction, outcome: str) -> Transaction:
        """The batch for an authorization captured in parts: its captures settle, each a
        transaction of its own; the authorization itself is never submitted, and stays
        SETTLEMENT_PENDING while open to more. Closed, with none of its captures waiting, it
        reads SETTLED, moving no money (its amount is what its captures hold)."""
        waiting = [c for c in (self.emulator.transactions[i] for i in parent.children) if c.status in _WAITING]
        if not waiting and not (parent.closed and parent.status == "SETTLEMENT_PENDING"):
            raise validation("Transaction can only be settled if it is submitted for settlement.", "91575")
        for capture in waiting:
            self.settle(capture, outcome)
        if parent.closed and parent.status == "SETTLEMENT_PENDING" \
                and not any(self.emulator.transactions[c].status in _WAITING for c in parent.children):
            parent.move("SETTLED")
            self.emulator.notify("transaction_settled", parent)
        return parent

    def expire(self, transaction: Transaction) -> Transaction:
        """Braintree's expiry of an authorization left too long (7 to 30 days, by brand): what is
        not captured can no longer be (91507) nor voided (91504). Braintree notifies nothing."""
        if transaction.kind != "sale" or transaction.parent is not None or transaction.status != "AUTHORIZED":
            raise validation("Only an authorized transaction can expire.", "91507")
        transaction.closed = True
        transaction.move("AUTHORIZATION_EXPIRED")
        return transaction

    def capture(self, input: dict[str, Any]) -> Transaction:
        transaction = self.transaction(input["transactionId"])
        options = input.get("transaction") or {}
        if transaction.kind != "sale" or transaction.status != "AUTHORIZED" or transaction.children:
            raise validation("Cannot submit for settlement unless status is authorized.", "91507")
        value = input.get("amount") or options.get("amount")
        if value is not None:
            amount = _amount(value, transaction.exponent)
            if amount > transaction.amount:
                raise validation("Settlement amount is too large.", "91522")
            transaction.amount = amount
        if options.get("orderId"):
            transaction.order_id = options["orderId"]
        transaction.closed = True
        self._submit(transaction)
        return transaction

    def partial_capture(self, input: dict[str, Any]) -> Transaction:
        """A child capture; the parent turns SETTLEMENT_PENDING at the first one and stays so, open
        to more until a final one or its whole amount (Braintree's SDK tests show this status)."""
        parent = self.transaction(input["transactionId"])
        options = input["transaction"]
        open_status = parent.status == "AUTHORIZED" or (parent.status == "SETTLEMENT_PENDING" and parent.children)
        if parent.kind != "sale" or parent.parent is not None or not open_status or parent.closed:
            raise validation("Cannot submit for settlement unless status is authorized.", "91507")
        amount = _amount(options["amount"], parent.exponent)
        captured = captured_amount(self.emulator.transactions, parent)
        if amount > parent.amount - captured:
            raise validation("Settlement amount is too large.", "91522")
        child = Transaction(
            legacy=new_legacy_id(), kind="sale", amount=amount, currency=parent.currency, exponent=parent.exponent,
            status="AUTHORIZED", merchant_account=parent.merchant_account,
            order_id=options.get("orderId") or parent.order_id, custom=dict(parent.custom),
            payment_method=parent.payment_method, source=parent.source, customer=parent.customer, parent=parent.id,
        )
        child.history = [dict(e) for e in parent.history if e["status"] == "AUTHORIZED"]
        self.emulator.transactions[child.id] = child
        parent.children.append(child.id)
        if parent.status == "AUTHORIZED":
            parent.move("SETTLEMENT_PENDING")
        if options.get("finalCapture") or amount == parent.amount - captured:
            parent.closed = True
        self._submit(child)
        return child

    def refund(self, input: dict[str, Any], origin: str = "API") -> Transaction:
        """refundTransaction; `origin` "CONTROL_PANEL" for a merchant's refund there (its `source`)."""
        transaction = self.transaction(input["transactionId"])
        options = input.get("refund") or {}
        if transaction.kind == "credit":
            raise validation("Cannot refund credit", "91505")
        if transaction.status not in SETTLED or transaction.children:
            raise validation("Cannot refund transaction unless it is settled.", "91506")
        refunded = sum((self.emulator.transactions[r].amount for r in transaction.refunds
                        if self.emulator.transactions[r].status not in _NOT_REFUNDED), Decimal(0))
        left = transaction.amount - refunded
        amount = _amount(options["amount"], transaction.exponent) if options.get("amount") is not None else left
        if left <= 0:
            raise validation("Transaction has already been fully refunded.", "91512")
        if amount > left:
            raise validation("Refund amount is too large.", "91521")
        return self._credit(transaction, amount, options.get("orderId") or transaction.order_id,
                            declined=refund_declined(amount), origin=origin)

    def _credit(self, transaction: Transaction, amount: Decimal, order_id: str | None,
                declined: str | None = None, origin: str = "API") -> Transaction:
        credit = Transaction(
            legacy=new_legacy_id(), kind="credit", amount=amount, currency=transaction.currency,
            exponent=transaction.exponent, status="AUTHORIZED", merchant_account=transaction.merchant_account,
            order_id=order_id, custom=dict(transaction.custom), payment_method=transaction.payment_method,
            source=transaction.source, customer=transaction.customer, refunded=transaction.id, origin=origin,
        )
        self.emulator.transactions[credit.id] = credit
        transaction.refunds.append(credit.id)
        if declined:
            credit.move("PROCESSOR_DECLINED", processorResponse=processor_response(declined), declineType="HARD")
        elif self._pending(transaction, "refund authorization"):
            credit.move("AUTHORIZED", processorResponse=processor_response("1000"))  # submitted by `settle`
        else:
            self._submit(credit)
        return credit

    def reverse(self, input: dict[str, Any]) -> Transaction:
        """Voids what has not settled, refunds in full what has. Never an authorization captured
        in parts (91504), open or settled: Braintree refunds only its captures, and voids a
        SETTLEMENT_PENDING transaction only for PayPal, documenting no void of what such an
        authorization has left (the conservative reading: refused; a final capture releases the
        rest)."""
        transaction = self.transaction(input["transactionId"])
        if transaction.kind == "sale" and not transaction.children:
            if transaction.status in ("AUTHORIZED", "SUBMITTED_FOR_SETTLEMENT"):
                transaction.move("VOIDED")
                return transaction
            if transaction.status in SETTLED and not transaction.refunds:
                return self._credit(transaction, transaction.amount, transaction.order_id)
        raise validation("Transaction can only be voided if status is authorized, submitted_for_settlement, or - "
                         "for PayPal - settlement_pending.", "91504")

    def update_fields(self, input: dict[str, Any]) -> Transaction:
        transaction = self.transaction(input["id"])
        for field in input["customFields"]:
            if field["name"] not in self.emulator.custom_fields:
                raise validation("Custom field is invalid: " + str(field["name"]) + ".", "91526")
            if field.get("value") is None:
                transaction.custom.pop(field["name"], None)
            else:
                transaction.custom[field["name"]] = str(field["value"])
        return transaction

    def create_customer(self, input: dict[str, Any] | None) -> Customer:
        data = (input or {}).get("customer") or {}
        customer = Customer(legacy=new_legacy_id(), email=data.get("email"), first_name=data.get("firstName"),
                            last_name=data.get("lastName"))
        self.emulator.customers[customer.id] = customer
        return customer

    def vault(self, input: dict[str, Any]) -> PaymentMethod | dict[str, Any]:
        """The payment method vaulted, or the verification that refused it: Braintree verifies a
        card before vaulting it, and one the processor declines (or that fails, or the gateway
        rejects) is not vaulted; the answer carries no error, only that verification."""
        nonce = str(input["paymentMethodId"])
        if nonce in self.emulator.payment_methods:
            raise validation("Cannot use a payment_method_nonce more than once.", "93107")
        _, instrument = self._instrument(nonce)
        customer = input.get("customerId")
        if customer is not None and customer not in self.emulator.customers:
            raise validation("Customer ID is invalid.", "91510")
        refused = _VERIFICATIONS.get(instrument.outcome) if instrument.instrument == "CreditCard" else None
        if refused is not None:
            legacy = new_legacy_id()
            return {"__typename": "Verification", "id": global_id("verification", legacy), "legacyId": legacy,
                    "status": refused, "processorResponse": processor_response(instrument.code or "2000")
                    if refused != "GATEWAY_REJECTED" else None,
                    "gatewayRejectionReason": instrument.code if refused == "GATEWAY_REJECTED" else None}
        method = PaymentMethod(legacy=f"cc_{new_legacy_id()}", nonce=nonce, instrument=instrument.instrument,
                               customer=customer)
        self.emulator.payment_methods[method.id] = method
        return method

    def delete_payment_method(self, input: dict[str, Any]) -> None:
        if self.emulator.payment_methods.pop(str(input["paymentMethodId"]), None) is None:
            raise not_found()

    def search(self, criteria: dict[str, Any], first: int | None,
               after: str | None = None) -> tuple[list[Transaction], bool]:
        """One page of the transactions matching `criteria` (`first` of them, 50 by default), after
        the one whose cursor is `after`; and whether more follow."""
        def text(value: str | None, rule: dict[str, Any] | None) -> bool:
            if not rule:
                return True
            value = value or ""
            return all((
                rule.get("is") is None or value == rule["is"],
                rule.get("isNot") is None or value != rule["isNot"],
                rule.get("startsWith") is None or value.startswith(rule["startsWith"]),
                rule.get("endsWith") is None or value.endswith(rule["endsWith"]),
                rule.get("contains") is None or rule["contains"] in value,
            ))

        ids = criteria.get("id") or {}
        unsupported = set(criteria) - {"id", "orderId"}
        if unsupported:
            raise GraphQLError(f"the emulator searches by id and orderId only, not {sorted(unsupported)}",
                               extensions={"errorClass": "VALIDATION"})
        visible = time.monotonic() - self.emulator.search_lag
        # Transactions, partial captures included (each a Transaction of its own); refunds are not.
        found = [t for t in self.emulator.transactions.values() if t.kind == "sale"
                 and t.created_at <= visible
                 and text(t.order_id, criteria.get("orderId"))
                 and (ids.get("is") is None or t.id == ids["is"]) and (ids.get("in") is None or t.id in ids["in"])]
        if after is not None:
            cursors = [t.id for t in found]
            if after not in cursors:
                raise GraphQLError("The cursor is invalid.", extensions={"errorClass": "VALIDATION"})
            found = found[cursors.index(after) + 1:]
        size = first or 50
        return found[:size], len(found) > size
