"""The idempotency keys of the steps of a command that sends several keyed requests.

A provider scopes a key to its account and refuses it on another request (Stripe: another
endpoint), so each step needs a key of its own, made from the command's: the same on every resend,
or the provider would apply the step again. Made by appending the step to the command's key, it
lay in the caller's key space: an operation keyed like a step (`vault-1:attach`) was refused by the
provider, and left unknown, and a command whose step's key an operation took could never be sent
again. Step keys live in paywire's own space instead (`OWN_KEYS`), which the payment service
refuses to callers.
"""

from __future__ import annotations

import hashlib

__all__ = ["OWN_KEYS", "step_key"]

OWN_KEYS = "paywire:"
"""How every step's key begins, and no caller key may (the payment service refuses one, unless
its ledger holds an operation under it already, recorded before this space was kept apart)."""


def step_key(key: str, step: str, limit: int) -> str:
    """The idempotency key of `step` (a name without `:` or `#`) of a command sent under `key`:
    `paywire:{step}:{key}`, or, when that would pass the provider's `limit` on a key's length,
    `paywire:{step}#` and the SHA-256 of `key`. Two steps or two commands never share one."""
    if not step or ":" in step or "#" in step:
        raise ValueError(f"step {step!r} must be a name without ':' or '#'")
    made = f"{OWN_KEYS}{step}:{key}"
    if len(made) <= limit:
        return made
    return f"{OWN_KEYS}{step}#{hashlib.sha256(key.encode()).hexdigest()}"
