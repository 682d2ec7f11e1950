"""Braintree's offline sandbox: the emulator with a fresh key pair, a merchant account per
currency, Braintree's fake nonces, and the emulator's own nonces for settlements decided later
(with `settle`, Braintree's batch deciding them)."""

from __future__ import annotations

import secrets

from paywire.testing.sandbox import Sandbox
from paywire_braintree.currencies import CURRENCIES
from paywire_braintree.emulator import BraintreeEmulator, merchant_account

__all__ = ["sandbox"]


def sandbox() -> Sandbox:
    app = BraintreeEmulator("public_" + secrets.token_hex(8), "private_" + secrets.token_hex(16))
    return Sandbox(
        app=app,
        credentials={"public_key": app.public_key, "private_key": app.private_key},
        options={"merchant_accounts": {code: merchant_account(code) for code in sorted(CURRENCIES)},
                 "custom_fields": ["order_note"]},
        sources={"ok": "fake-valid-nonce", "decline": "fake-processor-declined-visa-nonce",
                 "vault": "fake-valid-visa-nonce", "accepted": "paywire-emulator-bank-account-nonce",
                 "refund_accepted": "paywire-emulator-refund-pending-nonce",
                 "authorization_accepted": "paywire-emulator-authorizing-nonce"},
        settle=lambda reference, paid: app.settle(reference, "SETTLED" if paid else "SETTLEMENT_DECLINED"),
    )
