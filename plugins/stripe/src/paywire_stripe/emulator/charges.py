"""Charges: the payment attempts behind a PaymentIntent, and their balance transactions.

A successful card attempt makes a `succeeded` charge (`captured` false until captured for manual
capture); a decline makes a `failed` one with `failure_code`/`outcome`. A bank debit makes a
`pending` one, captured but not paid, until it settles as `succeeded` or `failed`. A partial capture releases
the remainder, which Stripe reports in `amount_refunded` before 2025-03-31.basil (not from it);
"unrefunded" is always what was captured minus refunds, and `refunded` turns true once nothing is.

A card charge of an intent that asked for partial authorization says how it went: its card's
`amount_requested` (what was asked), `amount_authorized` and `partial_authorization.status`; a
partially authorized charge's `amount` is what the issuer approved
(https://docs.stripe.com/payments/partial-authorization).
"""

from __future__ import annotations

from typing import Any

from paywire_stripe.emulator.cards import Decline
from paywire_stripe.emulator.store import Context, Store, StripeObject

__all__ = ["balance_transaction", "new_charge", "unrefunded"]


def new_charge(
    ctx: Context,
    intent: StripeObject,
    pm: StripeObject,
    *,
    captured: bool,
    decline: Decline | None = None,
    authenticated: bool = False,
    pending: bool = False,
    requested: int | None = None,
) -> StripeObject:
    """The charge of one attempt at the intent's `amount`; `requested` is what was asked when the
    intent asked for partial authorization (None: it did not)."""
    store = ctx.store
    charge_id = store.new_id("ch")
    succeeded = decline is None
    if decline is None:
        outcome = {
            "network_status": "approved_by_network",
            "reason": None,
            "risk_level": "normal",
            "risk_score": 32,
            "seller_message": "Payment complete.",
            "type": "authorized",
        }
    else:
        outcome = {
            "network_status": "declined_by_network",
            "reason": decline.decline_code,
            "risk_level": "normal",
            "risk_score": 32,
            "seller_message": "The bank did not return any further details with this decline.",
            "type": "issuer_declined",
        }
    charge: StripeObject = {
        "id": charge_id,
        "object": "charge",
        "amount": intent["amount"],
        "amount_captured": intent["amount"] if succeeded and captured else 0,
        "amount_refunded": 0,
        "application": None,
        "application_fee": None,
        "application_fee_amount": intent.get("application_fee_amount"),
        "balance_transaction": None,
        "billing_details": pm["billing_details"],
        "calculated_statement_descriptor": _descriptor(intent),
        "captured": succeeded and captured,
        "created": store.now(),
        "currency": intent["currency"],
        "customer": intent["customer"],
        "description": intent["description"],
        "disputed": False,
        "failure_balance_transaction": None,
        "failure_code": decline.code if decline else None,
        "failure_message": decline.message if decline else None,
        "fraud_details": {},
        "invoice": None,
        "livemode": False,
        "metadata": dict(intent["metadata"]),
        "on_behalf_of": None,
        "outcome": outcome,
        "paid": succeeded and not pending,
        "payment_intent": intent["id"],
        "payment_method": pm["id"],
        "payment_method_details": _details(intent, pm, succeeded, authenticated, requested),
        "receipt_email": intent["receipt_email"],
        "receipt_number": None,
        "receipt_url": None,
        "refunded": False,
        "review": None,
        "shipping": intent["shipping"],
        "source_transfer": None,
        "statement_descriptor": intent["statement_descriptor"],
        "statement_descriptor_suffix": intent["statement_descriptor_suffix"],
        "status": "pending" if pending else "succeeded" if succeeded else "failed",
        "transfer_data": None,
        "transfer_group": intent.get("transfer_group"),
    }
    store.charges[charge_id] = charge
    if charge["captured"] and not pending:
        charge["balance_transaction"] = balance_transaction(ctx, charge, charge["amount"], "charge")
    return charge


def _partial_authorization(intent: StripeObject, succeeded: bool, requested: int | None) -> dict[str, Any]:
    if requested is None:
        return {}
    if not succeeded:
        status = "declined"
    else:
        status = "partially_authorized" if intent["amount"] < requested else "fully_authorized"
    return {"amount_requested": requested, "partial_authorization": {"status": status}}


def _details(
    intent: StripeObject, pm: StripeObject, succeeded: bool, authenticated: bool, requested: int | None
) -> dict[str, Any]:
    if pm["type"] == "us_bank_account":
        account = pm["us_bank_account"]
        fields = ("account_holder_type", "account_type", "bank_name", "fingerprint", "last4", "routing_number")
        return {"type": "us_bank_account", "us_bank_account": {name: account[name] for name in fields}}
    card = pm["card"]
    return {
        "card": {
            **_partial_authorization(intent, succeeded, requested),
            "amount_authorized": intent["amount"] if succeeded else None,
            "brand": card["brand"],
            "checks": card["checks"],
            "country": card["country"],
            "exp_month": card["exp_month"],
            "exp_year": card["exp_year"],
            "fingerprint": card["fingerprint"],
            "funding": card["funding"],
            "installments": None,
            "last4": card["last4"],
            "mandate": None,
            "network": card["brand"],
            "network_token": {"used": False},
            "three_d_secure": (
                {
                    "authentication_flow": "challenge",
                    "result": "authenticated",
                    "result_reason": None,
                    "version": "2.2.0",
                }
                if authenticated
                else None
            ),
            "wallet": None,
        },
        "type": "card",
    }


def _descriptor(intent: StripeObject) -> str:
    suffix = intent.get("statement_descriptor_suffix")
    return f"EMULATOR* {suffix}"[:22] if suffix else "EMULATOR"


def balance_transaction(ctx: Context, source: StripeObject, amount: int, kind: str) -> str:
    """Record the money movement of a capture or refund and return its `txn_...` id."""
    store = ctx.store
    txn_id = store.new_id("txn")
    store.balance_transactions[txn_id] = {
        "id": txn_id,
        "object": "balance_transaction",
        "amount": amount,
        "available_on": store.now() + 2 * 86400,
        "created": store.now(),
        "currency": source["currency"],
        "description": None,
        "exchange_rate": None,
        "fee": 0,
        "fee_details": [],
        "net": amount,
        "reporting_category": kind,
        "source": source["id"],
        "status": "pending",
        "type": kind,
    }
    return txn_id


def unrefunded(store: Store, charge: StripeObject) -> int:
    """What can still be refunded: what was captured less the refunds `amount_refunded` counts
    (which, where a partial capture booked its release as a refund, counts that too)."""
    released = charge["amount"] - charge["amount_captured"] if charge["id"] in store.booked_releases else 0
    value: Any = charge["amount_captured"] - (charge["amount_refunded"] - released)
    return int(value)
