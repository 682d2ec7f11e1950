"""The retry policy, shaped like urllib3's `Retry`: immutable, `increment()` returns a new one.

What may be retried depends on whether the provider may have seen the request:

- a failure to connect (nothing was sent) is always retried, counted under `connect`;
- a read timeout or dropped connection (the request may have taken effect), and a 5xx or 429
  answer, are retried only when the transfer is idempotent (`Transfer.idempotent`: a safe method,
  a key in the provider's idempotency header, or an endpoint its factory declares repeatable),
  counted under `read` and `status`.

When the budget is spent, the final error keeps its cause and says `may_have_been_sent`.
"""

from __future__ import annotations

import email.utils
import random
import time
from typing import ClassVar

import attrs

from paywire.errors import PaywireError, TransportError
from paywire.http.response import Response
from paywire.http.transfer import Transfer

__all__ = ["Retry"]


@attrs.frozen
class Retry:
    """How often and how patiently to retry one transfer.

    :param total: the most retries of any kind (0 disables retrying).
    :param connect: the most retries after connection failures; None means only `total` applies.
    :param read: the most retries after a read timeout or dropped connection (idempotent only).
    :param status: the most retries after a retryable status (idempotent only).
    :param backoff_factor: sleep `backoff_factor * 2 ** (n - 1)` seconds before retry n (n > 1);
        0 retries at once.
    :param backoff_max: the longest sleep, and the longest Retry-After honoured.
    :param backoff_jitter: a random extra of up to this many seconds, to spread retry storms.
    :param respect_retry_after: sleep for the Retry-After a 429/503 asks for (capped).
    :param attempts: retries made so far (kept by `increment`).
    """

    RETRY_STATUSES: ClassVar[frozenset[int]] = frozenset({429, 500, 502, 503, 504})

    total: int = 2
    connect: int | None = None
    read: int | None = None
    status: int | None = None
    backoff_factor: float = 0.25
    backoff_max: float = 10.0
    backoff_jitter: float = 0.0
    respect_retry_after: bool = True
    attempts: int = 0
    connect_attempts: int = 0
    read_attempts: int = 0
    status_attempts: int = 0

    @classmethod
    def never(cls) -> Retry:
        return cls(total=0)

    # -- predicates (override to change the policy) ----------------------------------------------
    def is_retryable_status(self, transfer: Transfer, response: Response, hint: bool | None = None) -> bool:
        """Whether to send again after `response`: never after a success, only an idempotent
        transfer, and then as the provider's own `hint` says (Stripe-Should-Retry), or by status
        when it gives none."""
        if not transfer.idempotent or 200 <= response.status < 300:
            return False
        return hint if hint is not None else response.status in self.RETRY_STATUSES

    def is_retryable_error(self, transfer: Transfer, error: PaywireError) -> bool:
        if not isinstance(error, TransportError) or not error.retryable:
            return False
        return not error.may_have_been_sent or transfer.idempotent

    def is_exhausted(self) -> bool:
        limits = (
            (self.total, self.attempts),
            (self.connect, self.connect_attempts),
            (self.read, self.read_attempts),
            (self.status, self.status_attempts),
        )
        return any(limit is not None and used > limit for limit, used in limits)

    # -- bookkeeping ------------------------------------------------------------------------------
    def increment(self, *, error: PaywireError | None = None, response: Response | None = None) -> Retry:
        """The policy after one more retry; check `is_exhausted()` on the result."""
        if error is not None and not error.may_have_been_sent:
            kind = "connect_attempts"
        elif error is not None:
            kind = "read_attempts"
        else:
            kind = "status_attempts"
        return attrs.evolve(self, attempts=self.attempts + 1, **{kind: getattr(self, kind) + 1})

    def backoff(self, response: Response | None = None) -> float:
        """Seconds to sleep before the next attempt."""
        if response is not None and self.respect_retry_after:
            after = parse_retry_after(response.header("retry-after"))
            if after is not None:
                return min(after, self.backoff_max)
        if self.attempts <= 1 or self.backoff_factor <= 0:
            delay = 0.0
        else:
            delay = min(self.backoff_factor * 2 ** (self.attempts - 1), self.backoff_max)
        if self.backoff_jitter:
            delay += random.uniform(0, self.backoff_jitter)
        return delay

    def sleep(self, response: Response | None = None) -> None:
        delay = self.backoff(response)
        if delay > 0:
            time.sleep(delay)


def parse_retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (delta-seconds or an HTTP date); None if absent or bad."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())
