"""Blocking calls run for an event loop in daemon threads that the process may leave behind.

asyncio's default executor is joined when the loop ends (`asyncio.run`) and again when the
interpreter exits: a thread waiting on a database that stopped answering would keep the process
from exiting after SIGTERM for as long as the database keeps silent. A ledger unit abandoned that
way is rolled back whole when its connection goes with the process, and a webhook left unanswered
is delivered again, so leaving the thread behind loses nothing. The server still waits for the
requests in flight (its graceful timeout) before it stops.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

__all__ = ["DEFAULT_SIZE", "DaemonPool"]

T = TypeVar("T")

DEFAULT_SIZE = min(32, (os.cpu_count() or 1) + 4)  # as many threads as asyncio's default executor

_Job = tuple[asyncio.AbstractEventLoop, "asyncio.Future[Any]", Callable[..., Any], tuple[Any, ...]]


class DaemonPool:
    """Up to `size` daemon threads, each started when a call finds no idle one and then kept
    (with what it holds per thread, such as its ledger connection) for the next calls; calls
    beyond `size` wait their turn, so a burst of requests never starts more threads."""

    def __init__(self, size: int = DEFAULT_SIZE, *, name: str = "paywire-worker") -> None:
        if size < 1:
            raise ValueError(f"a pool needs at least one thread, not {size}")
        self.size = size
        self.name = name
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._idle = threading.Semaphore(0)  # released by each thread that waits for a job
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()

    def run(self, call: Callable[..., T], *args: Any) -> asyncio.Future[T]:
        """`call(*args)` in one of the pool's threads; the future of the running loop it settles.
        A call whose future is cancelled before a thread takes it is never run."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        self._jobs.put((loop, future, call, args))
        if not self._idle.acquire(blocking=False):
            with self._lock:
                if len(self._threads) < self.size:
                    thread = threading.Thread(target=self._work, name=f"{self.name}-{len(self._threads)}",
                                              daemon=True)
                    self._threads.append(thread)
                    thread.start()
        return future

    def _work(self) -> None:
        while True:
            loop, future, call, args = self._jobs.get()
            if not future.cancelled():  # nobody waits for it any more (a read of a flag: no need to lock)
                try:
                    outcome: tuple[Any, BaseException | None] = (call(*args), None)
                except BaseException as exc:  # noqa: BLE001 - handed to the caller awaiting the future
                    outcome = (None, exc)
                try:
                    loop.call_soon_threadsafe(_settle, future, *outcome)
                except RuntimeError:  # the loop closed meanwhile: nobody waits for it
                    pass
            self._idle.release()


def _settle(future: asyncio.Future[Any], result: Any, error: BaseException | None) -> None:
    if future.done():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(result)
