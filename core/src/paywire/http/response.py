"""What came back from the provider, decoded once."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

__all__ = ["Response"]


@attrs.frozen(slots=False)
class Response:
    """An HTTP answer: status, lower-cased headers, raw body and the decoded body (`data`).

    `data` is None when the body was empty or could not be decoded; validators decide whether
    that is an error. `unsure`: an attempt before this answer may have taken effect (it timed
    out, its connection dropped, it got a 5xx), so an answer proving only that *this* attempt was
    not applied (a rate limit) leaves the operation's outcome unknown.
    """

    status: int
    headers: Mapping[str, str] = attrs.field(factory=dict, repr=False)
    body: bytes = attrs.field(default=b"", repr=False)
    data: Any = attrs.field(default=None, repr=False)
    attempts: int = 1
    unsure: bool = False

    def header(self, name: str, default: str | None = None) -> str | None:
        # `in` first: urllib3's header dict answers a missing name in `get` by raising KeyError,
        # and most headers asked for (Stripe-Should-Retry, Retry-After) are missing.
        key = name.lower()
        return self.headers[key] if key in self.headers else default

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300
