"""Blocking calls run for an event loop in daemon threads that the process may leave behind.

asyncio's default executor is joined when the loop ends (`asyncio.run`) and again when the
interpreter exits: a thread waiting on a database that stopped answering would keep the process
from exiting after SIGTERM for as long as the database keeps silent. A ledger unit abandoned that
way is rolled back whole when its connection goes with the process, and a webhook left unanswered
is delivered again, so leaving the thread behind loses nothing. The server still waits for the
requests in flight (its graceful timeout) before it stops.

A thread ends once it has waited `idle` seconds for a call, or when the pool is closed (the ASGI
lifespan's shutdown), taking what it holds per thread with it (the ledger closes a thread's
connection when the thread ends): a process that builds many endpoints (a test suite, a shop
rebuilding its app) keeps no threads nor connections for those it no longer serves.
"""

from __future__ import annotations

import asyncio
import collections
import itertools
import os
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["DEFAULT_SIZE", "IDLE", "DaemonPool"]

T = TypeVar("T")

DEFAULT_SIZE = min(32, (os.cpu_count() or 1) + 4)  # as many threads as asyncio's default executor
IDLE = 60.0  # seconds a thread waits for a call before it ends

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


class DaemonPool:
    """Up to `size` daemon threads, each started when a call finds no idle one and then kept
    (with what it holds per thread, such as its ledger connection) for the next calls until it
    has waited `idle` seconds for one; calls beyond `size` wait their turn, so a burst of
    requests never starts more threads."""

    def __init__(self, size: int = DEFAULT_SIZE, *, name: str = "paywire-worker", idle: float = IDLE) -> None:
        if size < 1:
            raise ValueError(f"a pool needs at least one thread, not {size}")
        self.size = size
        self.name = name
        self.idle = idle
        self._jobs: collections.deque[_Job] = collections.deque()
        self._changed = threading.Condition()  # a job queued, or the pool closed
        self._waiting = 0  # threads waiting for a job
        self._live = 0  # threads started and not ended
        self._in_hand = 0  # calls queued or running
        self._closes = 0  # how many times `close()` ran: a thread started before the last one ends
        self._numbers = itertools.count()

    @property
    def in_hand(self) -> int:
        """How many calls are queued or running: a call cancelled while queued no longer counts, a
        running one counts until it returns (its thread is busy until then, whoever waits)."""
        return self._in_hand

    def run(self, call: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """`call(*args)` in one of the pool's threads; the future of the running loop it settles.
        A call whose future is cancelled before a thread takes it is never run."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        job = (loop, future, call, args)
        with self._changed:
            self._in_hand += 1
            self._jobs.append(job)
            if len(self._jobs) <= self._waiting:
                self._changed.notify()
            elif self._live < self.size:
                thread = threading.Thread(target=self._work, args=(self._closes,),
                                          name=f"{self.name}-{next(self._numbers)}", daemon=True)
                try:
                    thread.start()
                except RuntimeError:  # no thread to be had (the process's limit): a busy one takes it later
                    if self._live == 0:  # none will: the caller hears it now, and it never runs later
                        self._jobs.remove(job)
                        self._in_hand -= 1
                        raise
                else:
                    self._live += 1
        future.add_done_callback(lambda done: self._forget(job) if done.cancelled() else None)
        return future

    def _forget(self, job: _Job) -> None:
        """A cancelled call still queued leaves the queue (it would never run): it is no longer
        in hand. One a thread took already counts until the thread is done with it."""
        with self._changed:
            for index, queued in enumerate(self._jobs):
                if queued is job:
                    del self._jobs[index]
                    self._in_hand -= 1
                    return

    def close(self) -> None:
        """End the pool's threads: the idle ones now, a busy one once its call returns (never
        waited for: one may wait on a database that stopped answering). Calls already queued
        still run; a later `run` starts threads again."""
        with self._changed:
            self._closes += 1
            self._changed.notify_all()

    def _next(self, closes: int) -> _Job | None:
        """The next job, or None once this thread should end."""
        with self._changed:
            self._waiting += 1
            try:
                while not self._jobs:
                    closed = closes != self._closes
                    if closed or (not self._changed.wait(self.idle) and not self._jobs):  # closed, or idle too long
                        self._live -= 1
                        return None
                return self._jobs.popleft()
            finally:
                self._waiting -= 1

    def _work(self, closes: int) -> None:
        while (job := self._next(closes)) is not None:
            loop, future, call, args = job
            try:
                if future.cancelled():  # nobody waits for it any more (a read of a flag: no need to lock)
                    continue
                try:
                    outcome: tuple[Any, BaseException | None] = (call(*args), None)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller awaiting the future
                    outcome = (None, exc)
            finally:
                with self._changed:
                    self._in_hand -= 1
            try:
                loop.call_soon_threadsafe(_settle, future, *outcome)
            except RuntimeError:  # the loop closed meanwhile: nobody waits for it
                pass


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
