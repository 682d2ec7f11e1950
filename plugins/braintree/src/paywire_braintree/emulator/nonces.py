"""Braintree's sandbox test values: fake nonces and the amounts that decline.

The `paywire-emulator-*` nonces are the emulator's own, for settlements decided later.
Amounts from 2000.00 to 2999.99 are declined by the processor with that response code, 3000.00
to 3000.99 fail with 3000 (the processor network unavailable), as in Braintree's sandbox; a refund
of such an amount is declined only when the code is a hard decline.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Final

__all__ = ["HARD_DECLINES", "NONCES", "PROCESSOR_RESPONSES", "Nonce", "processor_outcome", "refund_declined"]


class Nonce:
    """What a fake nonce stands for: an instrument, and the outcome it forces."""

    def __init__(self, instrument: str, outcome: str = "ok", code: str | None = None,
                 pending: tuple[str, ...] = ()) -> None:
        self.instrument = instrument
        self.outcome = outcome  # ok, declined, failed, rejected, invalid, consumed
        self.code = code
        # "authorization": stays AUTHORIZING; "sale", "credit": SETTLEMENT_PENDING; "submission": a
        # charge is authorized but not submitted for settlement (AUTHORIZED), until captured;
        # "refund authorization": a refund stays AUTHORIZED until `settle` submits and decides it
        self.pending = pending


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
    # settle at once but whose refunds settle later; one whose authorization stays AUTHORIZING;
    # one whose charge Braintree answers AUTHORIZED, not submitted for settlement (the schema lets
    # chargePaymentMethod answer any PaymentStatus): captureTransaction submits it; and one whose
    # charge is answered AUTHORIZING, and once `settle` authorizes it, is left AUTHORIZED, not submitted.
    "paywire-emulator-bank-account-nonce": Nonce("UsBankAccount", pending=("sale", "credit")),
    "paywire-emulator-refund-pending-nonce": Nonce("CreditCard", pending=("credit",)),
    "paywire-emulator-authorizing-nonce": Nonce("CreditCard", pending=("authorization",)),
    "paywire-emulator-authorized-charge-nonce": Nonce("CreditCard", pending=("submission",)),
    "paywire-emulator-authorizing-charge-nonce": Nonce("CreditCard", pending=("authorization", "submission")),
    # one whose refunds Braintree answers AUTHORIZED (a refund's PaymentStatus may be), until settled
    "paywire-emulator-refund-authorized-nonce": Nonce("CreditCard", pending=("refund authorization",)),
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
    "2007": "No Account",
    "2008": "Card Account Length Error",
    "2009": "No Such Issuer",
    "2012": "Processor Declined - Possible Lost Card",
    "2013": "Processor Declined - Possible Stolen Card",
    "2014": "Processor Declined - Fraud Suspected",
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


# Processor responses that are hard declines (the card cannot be charged, nor refunded to).
HARD_DECLINES: Final = frozenset({"2004", "2005", "2007", "2008", "2009", "2012", "2013", "2014"})


def refund_declined(amount: Decimal) -> str | None:
    """The processor code that declines a refund of this test amount, None to approve. Braintree
    authorizes refunds: a hard decline is PROCESSOR_DECLINED (its SDK's tests: 2004.00), a soft
    one goes through (2046.00)."""
    outcome = processor_outcome(amount)
    return outcome[1] if outcome and outcome[0] == "declined" and outcome[1] in HARD_DECLINES else None
