"""The PayPal emulator as a paywire sandbox: an emulator with test credentials and test sources.

Sources are vault ids (for `payment_source.card.vault_id` / `payment_source.paypal.vault_id`),
seeded in the emulator, plus "paypal" for a checkout the buyer approves on the emulator's page:

- "ok": a vaulted Visa that captures; "decline": a vaulted Visa with PayPal's CCREJECT-REFUSED
  trigger (captures DECLINED, processor code 0500); "vault": a vaulted PayPal wallet;
- "buyer_action": "paypal", an order the buyer must approve at its `payer-action` link.
"""

from __future__ import annotations

import urllib.error
import urllib.request

from paywire.testing.sandbox import Sandbox
from paywire_paypal.emulator.app import PayPalEmulator

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "approve_as_buyer", "sandbox"]

# Public test values of the emulator, not secrets of any PayPal account.
CLIENT_ID = "emulator-client-id"
CLIENT_SECRET = "emulator-client-secret"


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: object, **kwargs: object) -> None:
        return None


def approve_as_buyer(url: str) -> None:
    """Act as the buyer on an approval link: approve, and stop at the redirect to the shop."""
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(url, timeout=10) as response:
            response.read()
    except urllib.error.HTTPError as error:
        if error.code != 302:
            raise


def sandbox() -> Sandbox:
    """A fresh emulator with its credentials and seeded test sources."""
    app = PayPalEmulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    sources = {
        "ok": app.vault_card(),
        "decline": app.vault_card(name="CCREJECT-REFUSED"),
        "vault": app.vault_paypal(),
        "buyer_action": "paypal",
    }
    app.events.clear()  # seeding is not something a merchant would be notified of
    credentials = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "webhook_id": app.webhook_id}
    return Sandbox(app=app, credentials=credentials, sources=sources, act_as_buyer=approve_as_buyer)
