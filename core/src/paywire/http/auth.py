"""Request authentication, applied at send time so a refreshed credential is picked up on retry."""

from __future__ import annotations

import base64
from collections.abc import Mapping
from typing import Protocol, runtime_checkable

import attrs

from paywire.security import Secret

__all__ = ["Auth", "BasicAuth", "BearerAuth"]


@runtime_checkable
class Auth(Protocol):
    """Adds credentials to a transfer's headers.

    `refresh()` is called once after a 401: return True when new credentials were obtained (an
    OAuth token refreshed) and the request should be sent again, False when retrying cannot help.
    """

    def headers(self) -> Mapping[str, str]: ...

    def refresh(self) -> bool: ...


@attrs.frozen
class BearerAuth:
    token: Secret = attrs.field(repr=False)
    # The header value is a pure function of the frozen token: written once, and kept as a
    # `Secret` like the token, so no repr, `attrs.asdict` or log of the auth shows it.
    _header: Secret = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_header", Secret(f"Bearer {self.token.reveal()}"))

    def headers(self) -> Mapping[str, str]:
        return {"Authorization": self._header.reveal()}

    def refresh(self) -> bool:
        return False


@attrs.frozen
class BasicAuth:
    username: str = attrs.field(repr=False)  # a configured credential too (PayPal's client id)
    password: Secret = attrs.field(repr=False)
    _header: Secret = attrs.field(init=False, repr=False, eq=False)  # as BearerAuth's

    def __attrs_post_init__(self) -> None:
        pair = f"{self.username}:{self.password.reveal()}".encode()
        object.__setattr__(self, "_header", Secret("Basic " + base64.b64encode(pair).decode("ascii")))

    def headers(self) -> Mapping[str, str]:
        return {"Authorization": self._header.reveal()}

    def refresh(self) -> bool:
        return False
