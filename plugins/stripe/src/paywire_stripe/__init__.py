"""Stripe for paywire: the gateway plugin, and `paywire_stripe.emulator`, a local stand-in for Stripe."""
