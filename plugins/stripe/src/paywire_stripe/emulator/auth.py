"""API keys as Stripe reads them: `Authorization: Bearer sk_test_...` or HTTP Basic with the key as
user name (what `curl -u sk_test_...:` sends).

Failures answer 401 with an `invalid_request_error` body, as Stripe does (its SDKs raise
`AuthenticationError` on the status). Only test-mode secret or restricted keys are accepted; live
keys are refused so the emulator can never be mistaken for production. Keys appear in messages
masked, never whole.
"""

from __future__ import annotations

import base64
import binascii
import hmac

from paywire_stripe.emulator.errors import StripeError

__all__ = ["authenticate", "mask"]

_MISSING = (
    "You did not provide an API key. You need to provide your API key in the Authorization header, using Bearer "
    "auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY'). See https://stripe.com/docs/api#authentication for "
    "details, or we can help at https://support.stripe.com/."
)


def mask(key: str) -> str:
    """`sk_test_********************1234`: the mode prefix and last four characters only."""
    prefix = "_".join(key.split("_")[:2]) + "_" if key.count("_") >= 2 else ""
    if len(key) < len(prefix) + 8:
        return prefix + "*" * 4
    return prefix + "*" * (len(key) - len(prefix) - 4) + key[-4:]


def _unauthorized(message: str) -> StripeError:
    return StripeError(
        401, "invalid_request_error", message, saved=False, headers={"WWW-Authenticate": 'Basic realm="Stripe"'}
    )


def key_from(authorization: str | None) -> str | None:
    if not authorization:
        return None
    scheme, _, credentials = authorization.strip().partition(" ")
    if scheme.lower() == "bearer":
        return credentials.strip() or None
    if scheme.lower() == "basic":
        try:
            decoded = base64.b64decode(credentials.strip(), validate=True).decode("utf-8")
        except (binascii.Error, UnicodeDecodeError):
            return None
        return decoded.partition(":")[0] or None
    return None


def authenticate(authorization: str | None, allowed_key: str | None) -> str:
    """The request's key, or the 401 Stripe would answer."""
    key = key_from(authorization)
    if key is None:
        raise _unauthorized(_MISSING)
    if key.startswith(("pk_test_", "pk_live_")):
        raise _unauthorized(
            "This API call cannot be made with a publishable API key. Please use a secret API key. "
            "You can find a list of your API keys at https://dashboard.stripe.com/account/apikeys."
        )
    if key.startswith(("sk_live_", "rk_live_")):
        raise _unauthorized(
            f"Invalid API Key provided: {mask(key)}. This emulator accepts test mode keys only "
            "(sk_test_... or rk_test_...)."
        )
    valid = key.startswith(("sk_test_", "rk_test_")) and len(key) > len("sk_test_")
    if allowed_key is not None:
        valid = valid and hmac.compare_digest(key.encode(), allowed_key.encode())
    if not valid:
        raise _unauthorized(f"Invalid API Key provided: {mask(key)}")
    return key
