"""A stateful local emulator of Stripe's API, for tests, demos and offline development.

`StripeEmulator` serves PaymentIntents, Refunds, Charges, Customers, PaymentMethods, SetupIntents
and Events over HTTP or HTTPS with Stripe's rules: statuses, capture and refund limits, currency
rules, test cards (declines, 3-D Secure), idempotency, authentication, error shapes, signed
webhooks. The official `stripe` SDK works against it::

    app = StripeEmulator(webhook_secret="whsec_test")
    with app.serve() as server:
        client = stripe.StripeClient("sk_test_123", base_addresses={"api": server.url})
        intent = client.v1.payment_intents.create(
            params={"amount": 1000, "currency": "eur", "payment_method": "pm_card_visa",
                    "payment_method_types": ["card"], "confirm": True})

Run it alone with `python -m paywire_stripe.emulator --host 127.0.0.1 --port 12111`.
"""

from paywire_stripe.emulator.app import DEFAULT_API_VERSION, StripeEmulator

__all__ = ["DEFAULT_API_VERSION", "StripeEmulator"]
