"""Stripe's test payment methods (`pm_card_visa`, `tok_chargeDeclined`, `pm_usBankAccount_success`,
...) and how each behaves.

A test PaymentMethod id or token names a test card; using it creates a fresh `pm_...` object, as
Stripe does. Behaviours follow https://docs.stripe.com/testing: declines answer 402 `card_error`
with the listed code and decline code; `threeDSecure2Required` and `authenticationRequired`
require 3-D Secure on every payment (off-session: `authentication_required`);
`authenticationRequiredOnSetup` requires it once, after which off-session payments succeed;
`chargeCustomerFail` attaches fine and declines every charge. Refunds of `pendingRefund` start
`pending` and later succeed; refunds of `refundFail` start `succeeded` and later fail.
`debit_partialAuthorization` (4000058400000071) authorizes 70% of the amount, rounded down, when
the PaymentIntent asks for partial authorization
(`payment_method_options[card][request_partial_authorization]=if_available`), and otherwise
declines for insufficient funds (https://docs.stripe.com/payments/partial-authorization).

ACH Direct Debit test accounts (`pm_usBankAccount_<name>`, routing number 110000000) pay in
`processing`, as a bank debit does: `success` later succeeds, `accountClosed`, `noAccount`,
`insufficientFunds`, `debitNotAuthorized` and `invalidCurrency` later fail with that reason, and
`processing` stays processing until told otherwise. Their refunds start `pending`. Stripe settles
these after a delay; the emulator settles them when the test says so (`StripeEmulator.settle`).
"""

from __future__ import annotations

from typing import Final

import attrs

__all__ = ["BANK_ACCOUNTS", "CARDS", "Decline", "TestCard", "card_for"]


@attrs.frozen
class Decline:
    code: str
    decline_code: str
    message: str
    param: str | None = None


_GENERIC = Decline("card_declined", "generic_decline", "Your card was declined.")
_INSUFFICIENT_FUNDS = Decline("card_declined", "insufficient_funds", "Your card has insufficient funds.")
AUTHENTICATION_REQUIRED: Final = Decline(
    "authentication_required",
    "authentication_required",
    "Your card was declined. This transaction requires authentication.",
)


@attrs.frozen
class TestCard:
    """A test card: its details, and what happens when it is validated or charged.

    :param decline: the decline of every charge (None: charges succeed).
    :param declines_setup: whether validating the card (attach, SetupIntent) fails too.
    :param authentication: None, "always" (every payment needs 3-D Secure), or "setup" (once, then
        off-session payments succeed).
    :param type: the PaymentMethod type: "card", or "us_bank_account" for a test bank account,
        whose payments go through `processing` and whose `decline` comes when it settles.
    :param settles: whether a processing payment has a scripted outcome (False: it stays processing).
    :param refund: "pending" (refunds start pending, then succeed) or "fails" (they start succeeded,
        then fail); None: refunds succeed at once (a bank account's start pending).
    :param partial: the percentage of the amount the issuer approves (rounded down) when the payment
        asks for partial authorization; unasked, the card's `decline` stands.
    """

    brand: str
    last4: str
    funding: str = "credit"
    country: str = "US"
    decline: Decline | None = None
    declines_setup: bool = True
    authentication: str | None = None
    type: str = "card"
    settles: bool = True
    refund: str | None = None
    partial: int | None = None

    @property
    def delayed(self) -> bool:
        """A delayed-notification method: payments answer `processing`, refunds `pending`."""
        return self.type != "card"

    @property
    def fingerprint(self) -> str:
        return f"fp{self.brand[:2]}{self.last4}{self.funding[:2]}".ljust(16, "0")[:16]


CARDS: Final[dict[str, TestCard]] = {
    "visa": TestCard("visa", "4242"),
    "visa_debit": TestCard("visa", "5556", funding="debit"),
    "mastercard": TestCard("mastercard", "4444"),
    "mastercard_debit": TestCard("mastercard", "8210", funding="debit"),
    "amex": TestCard("amex", "0005"),  # 378282246310005
    "discover": TestCard("discover", "1117"),
    "chargeDeclined": TestCard("visa", "0002", decline=_GENERIC),
    "chargeDeclinedInsufficientFunds": TestCard("visa", "9995", decline=_INSUFFICIENT_FUNDS),
    "chargeDeclinedLostCard": TestCard(
        "visa", "9987", decline=Decline("card_declined", "lost_card", "Your card was declined.")
    ),
    "chargeDeclinedStolenCard": TestCard(
        "visa", "9979", decline=Decline("card_declined", "stolen_card", "Your card was declined.")
    ),
    "chargeDeclinedExpiredCard": TestCard(
        "visa", "0069", decline=Decline("expired_card", "expired_card", "Your card has expired.", "exp_month")
    ),
    "chargeDeclinedIncorrectCvc": TestCard(
        "visa",
        "0127",
        decline=Decline("incorrect_cvc", "incorrect_cvc", "Your card's security code is incorrect.", "cvc"),
    ),
    "chargeDeclinedProcessingError": TestCard(
        "visa",
        "0119",
        decline=Decline(
            "processing_error",
            "processing_error",
            "An error occurred while processing your card. Try again in a little bit.",
        ),
    ),
    "chargeCustomerFail": TestCard("visa", "0341", decline=_GENERIC, declines_setup=False),
    "threeDSecure2Required": TestCard("visa", "3220", authentication="always"),
    "authenticationRequired": TestCard("visa", "3184", authentication="always"),
    "authenticationRequiredOnSetup": TestCard("visa", "3155", authentication="setup"),
    "pendingRefund": TestCard("visa", "7726", refund="pending"),
    "refundFail": TestCard("visa", "5126", refund="fails"),
    "debit_partialAuthorization": TestCard(
        "visa", "0071", funding="debit", decline=_INSUFFICIENT_FUNDS, declines_setup=False, partial=70
    ),
}


def _bank(last4: str, decline: Decline | None = None, *, settles: bool = True) -> TestCard:
    return TestCard("STRIPE TEST BANK", last4, funding="checking", decline=decline, declines_setup=False,
                    type="us_bank_account", settles=settles)


def _returned(code: str, message: str) -> Decline:
    return Decline(code, code, message)


BANK_ACCOUNTS: Final[dict[str, TestCard]] = {
    "success": _bank("6789"),
    "processing": _bank("0009", settles=False),
    "accountClosed": _bank("1113", _returned("account_closed", "The customer's bank account has been closed.")),
    "noAccount": _bank("1116", _returned("no_account", "The customer's bank account could not be located.")),
    "insufficientFunds": _bank("2227", _returned("insufficient_funds", "The customer's account has insufficient "
                                                 "funds to cover this payment.")),
    "debitNotAuthorized": _bank("3335", _returned("debit_not_authorized", "The customer has notified their bank "
                                                  "that this payment was unauthorized.")),
    "invalidCurrency": _bank("0440", _returned("invalid_currency", "The bank was unable to process this payment "
                                               "because of its currency.")),
}


def card_for(reference: str) -> TestCard | None:
    """The test method named by `pm_card_<name>`, `tok_<name>` or `pm_usBankAccount_<name>`, if
    `reference` is one."""
    if reference.startswith("pm_usBankAccount_"):
        return BANK_ACCOUNTS.get(reference[len("pm_usBankAccount_") :])
    for prefix in ("pm_card_", "tok_"):
        if reference.startswith(prefix):
            return CARDS.get(reference[len(prefix) :])
    return None
