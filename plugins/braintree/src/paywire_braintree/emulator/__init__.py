"""A local stand-in for Braintree's GraphQL API: `python -m paywire_braintree.emulator`."""

from __future__ import annotations

from paywire_braintree.emulator.app import BraintreeEmulator, merchant_account

__all__ = ["BraintreeEmulator", "merchant_account"]
