"""Stripe's offline sandbox: the emulator with fresh test credentials, and Stripe's test cards."""

from __future__ import annotations

import hmac
import secrets
import urllib.error
import urllib.request
from typing import Any

from paywire.testing.sandbox import Sandbox
from paywire_stripe.emulator import StripeEmulator

__all__ = ["handle_next_action", "pass_challenge", "sandbox"]


class _StayHere(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def pass_challenge(url: str) -> None:
    """Act as the buyer on a 3-D Secure page: visit it, without following Stripe's redirect to
    the shop's return URL (which is no server here)."""
    opener = urllib.request.build_opener(_StayHere)
    try:
        with opener.open(url, timeout=10) as response:
            response.read()
    except urllib.error.HTTPError as answer:
        if answer.code != 302:
            raise


def handle_next_action(app: StripeEmulator, client_secret: str, *, succeed: bool = True) -> None:
    """Act as Stripe.js's `handleNextAction(clientSecret)` in the buyer's browser: read the
    PaymentIntent the client secret opens and pass (or fail) its 3-D Secure page, whether Stripe
    offered it as a redirect or left it to its SDK (`use_stripe_sdk.stripe_js`)."""
    intent = app.get(client_secret.partition("_secret_")[0])
    if not hmac.compare_digest(client_secret, intent["client_secret"] or ""):
        raise ValueError("the client secret does not match its PaymentIntent")
    action = intent.get("next_action") or {}
    url = (action.get("use_stripe_sdk") or {}).get("stripe_js") or (action.get("redirect_to_url") or {}).get("url")
    if not url:
        raise ValueError(f"{intent['id']} is {intent['status']}: there is no next action to handle")
    pass_challenge(url if succeed else f"{url}&outcome=fail")


def sandbox() -> Sandbox:
    """A fresh emulator accepting one random test key, signing events with a random secret."""
    key = "sk_test_" + secrets.token_hex(16)
    app = StripeEmulator(webhook_secret="whsec_" + secrets.token_hex(24), api_key=key)
    return Sandbox(
        app=app,
        credentials={"secret_key": key, "webhook_secret": app.webhook_secret},
        options={"payment_method_types": ["card", "us_bank_account"]},  # cards, and ACH debits decided later
        sources={
            "ok": "pm_card_visa",
            "decline": "pm_card_chargeDeclined",
            "buyer_action": "pm_card_threeDSecure2Required",
            "vault": "pm_card_visa",
            "accepted": "pm_usBankAccount_success",  # an ACH debit: processing until settled
            "refund_accepted": "pm_card_pendingRefund",  # refunds start pending
            # 70% authorized, rounded down, when the payment asks for partial authorization
            # (payment_method_options[card][request_partial_authorization]=if_available, which a
            # shop adds with a `build_request` hook); declined for insufficient funds otherwise
            "partial_authorization": "pm_card_debit_partialAuthorization",
        },
        act_as_buyer=pass_challenge,
        settle=lambda reference, succeed: app.settle(reference, succeed),
    )
