"""The clock of a ledger shared by several hosts: the database server's, as read from one of them.

Hosts sharing a ledger compare times one of them wrote with "now" on another: a pending
transaction's `settle_after` (after it, the request is taken for abandoned and may be concluded
not applied), reconciliation's leases and looks, key lives, buyer waits. On each host's own
wall clock, a host minutes ahead would conclude a request still in flight on another host "not
applied" (and the caller would pay again). The database's clock is the one they all share.

It is read once (when the ledger connects, then again whenever the reading is older than
`refresh` seconds, by a unit about to begin: never a statement per operation) and carried
forward on this host's monotonic clock (`TICKS`), which no NTP step or manual change moves. The server read
its clock at some moment of the round trip; not knowing when, `now()` takes the latest (so it
never runs ahead of the server's clock) and `deadline()` the earliest (so a deadline never
falls before the server's clock reaches it), each also allowing for the two clocks' rates
differing since the reading (`DRIFT`). The error only ever makes paywire wait longer.
"""

from __future__ import annotations

import functools
import math
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import NamedTuple

__all__ = ["DRIFT", "TICKS", "DatabaseClock"]

DRIFT = 1e-4  # how much faster one quartz clock may run than another (100 ppm, an undisciplined one's worst)
# Seconds that also count while the host is suspended (Linux's CLOCK_BOOTTIME): a clock paused
# meanwhile would carry the server's time forward short, and a deadline written then fall early.
TICKS: Callable[[], float] = (functools.partial(time.clock_gettime, time.CLOCK_BOOTTIME)
                              if hasattr(time, "CLOCK_BOOTTIME") else time.monotonic)


class _Reading(NamedTuple):
    at: datetime  # the server's clock, read between `sent` and `answered`
    sent: float  # this host's monotonic seconds before the statement went
    answered: float  # ... and after its answer came


class DatabaseClock:
    """The database server's clock, carried forward on this host's monotonic clock (see the module).

    :param refresh: seconds after which a reading is taken again (`stale`).
    :param ticks: this host's monotonic clock, in seconds (injectable for tests).
    """

    def __init__(self, *, refresh: float = 60.0, ticks: Callable[[], float] = TICKS) -> None:
        self.refresh = refresh
        self.ticks = ticks
        self._reading: _Reading | None = None  # replaced whole: threads read it without a lock
        self._measuring = threading.Lock()

    def stale(self) -> bool:
        """Whether a reading is due: none yet, or the last one is older than `refresh`."""
        reading = self._reading
        return reading is None or self.ticks() - reading.answered >= self.refresh

    def measure(self, read: Callable[[], datetime]) -> None:
        """Take a reading: `read()` asks the server for its clock now. A thread finding another
        measuring leaves it to that one."""
        if not self._measuring.acquire(blocking=False):
            return
        try:
            sent = self.ticks()
            at = read()
            self._reading = _Reading(at, sent, self.ticks())
        finally:
            self._measuring.release()

    def bounds(self) -> tuple[datetime, datetime]:
        """The earliest and the latest the server's clock can show now (microseconds rounded
        outwards): `now()` and `deadline(0)`. Their distance is the error bound: the reading's
        round trip, plus `DRIFT` of the time since."""
        reading = self._current()
        tick = self.ticks()
        earliest = (tick - reading.answered) * (1 - DRIFT)
        latest = (tick - reading.sent) * (1 + DRIFT)
        return (reading.at + timedelta(microseconds=math.floor(earliest * 1e6)),
                reading.at + timedelta(microseconds=math.ceil(latest * 1e6)))

    def now(self) -> datetime:
        """The server's clock now, or up to the error bound before it: never after. What "has
        this time passed?" is asked against, and the time an event is recorded at."""
        reading = self._current()
        elapsed = (self.ticks() - reading.answered) * (1 - DRIFT)
        return reading.at + timedelta(microseconds=math.floor(elapsed * 1e6))

    def deadline(self, seconds: float) -> datetime:
        """A time the server's clock reaches `seconds` from now or later, never sooner: what
        other hosts are told to wait until (a request's `settle_after`, a read's lease)."""
        reading = self._current()
        elapsed = (self.ticks() - reading.sent) * (1 + DRIFT)
        return reading.at + timedelta(microseconds=math.ceil((elapsed + seconds) * 1e6))

    def _current(self) -> _Reading:
        reading = self._reading
        if reading is None:
            raise RuntimeError("the database's clock was never read: the ledger reads it when it connects")
        return reading
