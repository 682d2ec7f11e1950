"""Braintree's offline sandbox: the emulator with a fresh key pair, a merchant account per
currency, and Braintree's fake nonces."""

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
                 "vault": "fake-valid-visa-nonce"},
    )
