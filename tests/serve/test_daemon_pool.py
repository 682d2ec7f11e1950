"""The daemon threads the webhook endpoint and /healthz run their ledger work in: never more than
the pool's size however many calls wait, each thread kept for the next calls, none keeping the
process from exiting; each ends once closed or idle, and a later call starts one again."""

from __future__ import annotations

import asyncio
import threading

import pytest

from paywire.daemon_pool import DEFAULT_SIZE, DaemonPool


def test_calls_beyond_the_size_wait_for_a_thread_and_threads_are_kept() -> None:
    size = 3
    pool = DaemonPool(size, name="pwtest-pool")
    started = threading.Semaphore(0)
    release = threading.Event()
    running: list[str] = []

    def work(n: int) -> int:
        running.append(threading.current_thread().name)
        started.release()
        release.wait()
        return n

    async def main() -> list[int]:
        calls = [pool.run(work, n) for n in range(size + 4)]
        for _ in range(size):  # every thread busy: the other calls can only wait in the queue
            await asyncio.to_thread(started.acquire)
        assert len(running) == size
        assert [t.name for t in threading.enumerate() if t.name.startswith("pwtest-pool")] == \
            [f"pwtest-pool-{n}" for n in range(size)]
        release.set()
        return list(await asyncio.gather(*calls))

    assert asyncio.run(main()) == list(range(size + 4))
    threads = {t.name: t for t in threading.enumerate() if t.name.startswith("pwtest-pool")}
    assert len(threads) == size and all(t.daemon for t in threads.values())
    assert set(running) == set(threads)  # the waiting calls ran in the same threads


def test_an_error_reaches_the_caller_and_a_cancelled_call_never_runs() -> None:
    pool = DaemonPool(1, name="pwtest-one")
    busy, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def hold() -> None:
        busy.set()
        release.wait()

    def fail() -> None:
        raise KeyError("told")

    async def main() -> None:
        first = pool.run(hold)
        await asyncio.to_thread(busy.wait)
        pool.run(ran.append, "cancelled").cancel()  # waiting behind `hold`: never run
        release.set()
        await first
        with pytest.raises(KeyError, match="told"):
            await pool.run(fail)
        await pool.run(ran.append, "ran")

    asyncio.run(main())
    assert ran == ["ran"]


def test_the_default_size_is_asyncios_executors() -> None:
    from concurrent.futures import ThreadPoolExecutor

    assert DEFAULT_SIZE == ThreadPoolExecutor()._max_workers


def _threads(prefix: str) -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith(prefix)]


def test_close_ends_the_idle_threads_now_and_a_busy_one_once_its_call_returns() -> None:
    pool = DaemonPool(2, name="pwtest-close")
    busy, release = threading.Event(), threading.Event()

    def hold() -> str:
        busy.set()
        release.wait()
        return threading.current_thread().name

    async def main() -> None:
        held = pool.run(hold)
        await asyncio.to_thread(busy.wait)
        idle = await pool.run(threading.current_thread)  # the first thread busy: a second one started
        assert sorted(t.name for t in _threads("pwtest-close")) == ["pwtest-close-0", "pwtest-close-1"]
        pool.close()
        idle.join(30)
        assert not idle.is_alive()
        (holding,) = _threads("pwtest-close")
        assert holding.name == "pwtest-close-0"  # still in its call: closing never waits for it
        release.set()
        assert await held == "pwtest-close-0"
        holding.join(30)
        assert not holding.is_alive()
        again = await pool.run(threading.current_thread)  # a closed pool starts threads again
        assert again.name == "pwtest-close-2" and again.is_alive()
        pool.close()
        again.join(30)
        assert not again.is_alive()

    asyncio.run(main())


def test_a_thread_idle_for_longer_than_the_pools_idle_ends() -> None:
    pool = DaemonPool(1, name="pwtest-idle", idle=0.01)

    async def main() -> None:
        first = await pool.run(threading.current_thread)
        first.join(30)  # ends by itself, waiting for a call no longer than `idle`
        assert not first.is_alive()
        second = await pool.run(threading.current_thread)
        assert second.name == "pwtest-idle-1"
        second.join(30)
        assert not second.is_alive()

    asyncio.run(main())


def test_calls_queued_behind_a_busy_thread_still_run_after_close() -> None:
    """Closing ends threads, never the calls already queued: the busy thread takes them once its
    call returns, then ends."""
    pool = DaemonPool(1, name="pwtest-queued")
    busy, release = threading.Event(), threading.Event()

    def hold() -> str:
        busy.set()
        release.wait()
        return "held"

    async def main() -> list[str]:
        held = pool.run(hold)
        await asyncio.to_thread(busy.wait)
        queued = [pool.run(str, n) for n in range(3)]  # no thread free, and none may start
        pool.close()
        release.set()
        return list(await asyncio.wait_for(asyncio.gather(held, *queued), 30))

    assert asyncio.run(main()) == ["held", "0", "1", "2"]
    for thread in _threads("pwtest-queued"):
        thread.join(30)
    assert _threads("pwtest-queued") == []


def test_a_call_arriving_as_a_thread_ends_is_never_lost() -> None:
    """With no idle time at all, every thread ends as soon as it finds the queue empty: each call,
    one at a time, in bursts, or with a close() right behind it, arrives while a thread is
    ending or about to. Every call still runs once (a lost one would hang: `wait_for` guards)."""
    pool = DaemonPool(2, name="pwtest-ending", idle=0)
    ran: list[int] = []

    async def main() -> None:
        for n in range(200):
            assert await asyncio.wait_for(pool.run(lambda n=n: ran.append(n) or n), 30) == n
        for burst in range(20):
            calls = [pool.run(lambda n=n: ran.append(n) or n) for n in range(1_000 + 10 * burst, 1_010 + 10 * burst)]
            assert await asyncio.wait_for(asyncio.gather(*calls), 30) == list(range(1_000 + 10 * burst,
                                                                                   1_010 + 10 * burst))
        for n in range(2_000, 2_200):
            call = pool.run(lambda n=n: ran.append(n) or n)
            pool.close()
            assert await asyncio.wait_for(call, 30) == n

    asyncio.run(main())
    assert sorted(ran) == [*range(200), *range(1_000, 1_200), *range(2_000, 2_200)]


def test_a_call_no_thread_could_start_for_is_refused_at_once_or_left_to_a_busy_thread(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The process may have no thread left to give (its limit reached). With none of the pool's
    threads running, the call is refused at once and never run later, behind the caller's back;
    with one busy, the call waits for it, as a call beyond the pool's size does."""
    pool = DaemonPool(2, name="pwtest-nostart")
    ran: list[str] = []
    start = threading.Thread.start

    def refuse(thread: threading.Thread) -> None:
        if thread.name.startswith("pwtest-nostart"):
            raise RuntimeError("can't start new thread")
        start(thread)

    async def alone() -> None:
        with monkeypatch.context() as patch:
            patch.setattr(threading.Thread, "start", refuse)
            with pytest.raises(RuntimeError):
                pool.run(ran.append, "refused")
        assert await pool.run(ran.append, "next") is None  # a thread starts again: only this call runs

    asyncio.run(alone())
    assert ran == ["next"]

    busy = DaemonPool(2, name="pwtest-nostart")
    release = threading.Event()

    async def beside_a_busy_one() -> list[str]:
        first = busy.run(lambda: release.wait() and "first")
        with monkeypatch.context() as patch:
            patch.setattr(threading.Thread, "start", refuse)
            second = busy.run(lambda: "second")  # no second thread: it waits for the first
        release.set()
        return list(await asyncio.gather(first, second))

    assert asyncio.run(beside_a_busy_one()) == ["first", "second"]
    pool.close()
    busy.close()


def test_in_hand_counts_calls_running_and_queued_and_a_cancelled_queued_call_frees_its_place() -> None:
    """`in_hand` (what the webhook endpoint's bound counts) is the calls running and those queued
    behind them; one cancelled while queued leaves the queue (it will never run) and no longer
    counts, one running counts until it returns."""
    pool = DaemonPool(1, name="pwtest-in-hand")
    busy, release = threading.Event(), threading.Event()
    ran: list[str] = []

    def hold() -> str:
        busy.set()
        release.wait()
        return "held"

    async def main() -> list[str]:
        held = pool.run(hold)
        await asyncio.to_thread(busy.wait)
        queued = [pool.run(ran.append, n) for n in ("a", "b", "c")]
        assert pool.in_hand == 4
        queued[0].cancel()
        await asyncio.sleep(0)  # the loop runs the cancelled future's callbacks
        assert pool.in_hand == 3
        held.cancel()  # running: its thread is busy until it returns, whoever waits
        await asyncio.sleep(0)
        assert pool.in_hand == 3
        release.set()
        await asyncio.wait_for(asyncio.gather(*queued[1:]), 30)
        assert pool.in_hand == 0  # each counted until its thread was done with it
        return ran

    assert asyncio.run(main()) == ["b", "c"]
    pool.close()
