"""The PayPal emulator as a paywire sandbox: an emulator with test credentials and test sources.

Sources are vault ids (for `payment_source.card.vault_id` / `payment_source.paypal.vault_id`),
seeded in the emulator, plus "paypal" for a checkout the buyer approves on the emulator's page:

- "ok": a vaulted Visa that captures; "decline": a vaulted Visa with PayPal's CCREJECT-REFUSED
  trigger (captures DECLINED, processor code 0500); "vault": a vaulted PayPal wallet;
- "buyer_action": "paypal", an order the buyer must approve at its `payer-action` link;
- "accepted": a vaulted PayPal wallet paying by eCheck (captures PENDING), "refund_accepted": one
  whose refunds are PENDING; `settle(id, succeed)` decides such a capture or refund (COMPLETED,
  or DECLINED / FAILED), sending PayPal's webhook.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Callable

from paywire.testing.sandbox import Sandbox
from paywire_paypal.emulator.app import PayPalEmulator

__all__ = ["CLIENT_ID", "CLIENT_SECRET", "approve_as_buyer", "sandbox", "settler"]

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


def settler(app: PayPalEmulator) -> Callable[[str, bool], None]:
    """The sandbox's `settle`: decide a PENDING capture or refund by its id."""

    def settle(resource_id: str, succeed: bool) -> None:
        if resource_id in app.refunds:
            app.settle_refund(resource_id, "COMPLETED" if succeed else "FAILED")
        else:
            app.settle_capture(resource_id, "COMPLETED" if succeed else "DECLINED")

    return settle


def sandbox() -> Sandbox:
    """A fresh emulator with its credentials and seeded test sources."""
    app = PayPalEmulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET)
    sources = {
        "ok": app.vault_card(),
        "decline": app.vault_card(name="CCREJECT-REFUSED"),
        "vault": app.vault_paypal(),
        "buyer_action": "paypal",
        "accepted": app.vault_paypal(payer="echeck"),
        "refund_accepted": app.vault_paypal(payer="refund_pending"),
    }
    app.events.clear()  # seeding is not something a merchant would be notified of
    credentials = {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "webhook_id": app.webhook_id}
    return Sandbox(app=app, credentials=credentials, sources=sources, act_as_buyer=approve_as_buyer,
                   settle=settler(app))
