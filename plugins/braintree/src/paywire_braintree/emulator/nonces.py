"""Braintree's sandbox test values: fake nonces and the amounts that decline.

The `paywire-emulator-*` nonces are the emulator's own, for settlements decided later.
Amounts from 2000.00 to 2999.99 are declined by the processor with that response code, 3000.00
to 3000.99 fail with 3000 (the processor network unavailable), as in Braintree's sandbox.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

__all__ = ["NONCES", "PROCESSOR_RESPONSES", "Nonce", "processor_outcome"]


class Nonce:
    """What a fake nonce stands for: an instrument, and the outcome it forces."""

    def __init__(self, instrument: str, outcome: str = "ok", code: str | None = None,
                 pending: tuple[str, ...] = ()) -> None:
        self.instrument = instrument
        self.outcome = outcome  # ok, declined, failed, rejected, invalid, consumed
        self.code = code
        self.pending = pending  # "authorization": stays AUTHORIZING; "sale", "credit": SETTLEMENT_PENDING


NONCES: Final = {
    "fake-valid-nonce": Nonce("CreditCard"),
    "fake-valid-visa-nonce": Nonce("CreditCard"),
    "fake-valid-mastercard-nonce": Nonce("CreditCard"),
    "fake-valid-amex-nonce": Nonce("CreditCard"),
    "fake-valid-discover-nonce": Nonce("CreditCard"),
    "fake-valid-debit-nonce": Nonce("CreditCard"),
    "fake-valid-prepaid-nonce": Nonce("CreditCard"),
    "fake-three-d-secure-visa-full-authentication-nonce": Nonce("CreditCard"),
    "fake-paypal-one-time-nonce": Nonce("PayPalAccount"),
    "fake-paypal-billing-agreement-nonce": Nonce("PayPalAccount"),
    "fake-venmo-account-nonce": Nonce("VenmoAccount"),
    "fake-processor-declined-visa-nonce": Nonce("CreditCard", "declined", "2000"),
    "fake-processor-declined-mastercard-nonce": Nonce("CreditCard", "declined", "2000"),
    "fake-processor-declined-amex-nonce": Nonce("CreditCard", "declined", "2000"),
    "fake-processor-failure-visa-nonce": Nonce("CreditCard", "failed", "3000"),
    "fake-gateway-rejected-fraud-valid-nonce": Nonce("CreditCard", "rejected", "FRAUD"),
    "fake-luhn-invalid-nonce": Nonce("CreditCard", "invalid", "81715"),
    "fake-consumed-nonce": Nonce("CreditCard", "consumed", "93107"),
    # The emulator's own (Braintree has no static nonce for these): a bank account whose payments
    # and refunds settle later, as US bank account (ACH) transactions do; one whose payments
    # settle at once but whose refunds settle later; one whose authorization stays AUTHORIZING.
    "paywire-emulator-bank-account-nonce": Nonce("UsBankAccount", pending=("sale", "credit")),
    "paywire-emulator-refund-pending-nonce": Nonce("CreditCard", pending=("credit",)),
    "paywire-emulator-authorizing-nonce": Nonce("CreditCard", pending=("authorization",)),
}

PROCESSOR_RESPONSES: Final = {
    "1000": "Approved",
    "2000": "Do Not Honor",
    "2001": "Insufficient Funds",
    "2002": "Limit Exceeded",
    "2003": "Cardholder's Activity Limit Exceeded",
    "2004": "Expired Card",
    "2005": "Invalid Credit Card Number",
    "2010": "Card Issuer Declined CVV",
    "2015": "Transaction Not Allowed",
    "2046": "Declined",
    "2057": "Issuer or Cardholder has put a restriction on the card",
    "3000": "Processor Network Unavailable - Try Again",
}


def processor_outcome(amount: Decimal) -> tuple[str, str] | None:
    """("declined" | "failed", processor code) for Braintree's test amounts, None to approve."""
    if Decimal(2000) <= amount < Decimal(3000):
        return "declined", str(int(amount))
    if Decimal(3000) <= amount < Decimal("3001"):
        return "failed", "3000"
    return None
