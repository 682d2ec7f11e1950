"""Testing helpers for paywire and its plugins: emulator building blocks and the contract kit.

Importing this package is cheap; the contract kit and strategies import hypothesis only when used.
"""
