"""Threaded throughput at 1, 4 and 16 threads, paywire next to raw urllib3, and memory after
10,000 operations (growth measured with tracemalloc between the first and the last thousand)."""

from __future__ import annotations

import threading
import time
import tracemalloc
from collections.abc import Callable

from bench.bench_pipeline import BODY, pipeline_call, raw_call
from bench.canned_server import canned_server
from bench.timing import Row


def throughput(call: Callable[[], object], threads: int, per_thread: int) -> float:
    """Operations per second with `threads` threads each making `per_thread` calls."""
    barrier = threading.Barrier(threads + 1)

    def work() -> None:
        barrier.wait()
        for _ in range(per_thread):
            call()

    workers = [threading.Thread(target=work) for _ in range(threads)]
    for worker in workers:
        worker.start()
    barrier.wait()
    started = time.perf_counter()
    for worker in workers:
        worker.join()
    return threads * per_thread / (time.perf_counter() - started)


def memory_growth(call: Callable[[], object], operations: int = 10_000) -> tuple[float, float]:
    """KiB held after the first 1,000 operations, and the growth over the remaining ones."""
    for _ in range(200):
        call()
    tracemalloc.start()
    for _ in range(1_000):
        call()
    first = tracemalloc.get_traced_memory()[0]
    for _ in range(operations - 1_000):
        call()
    last = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    return first / 1024, (last - first) / 1024


def run(total: int = 3200) -> list[Row]:
    rows = []
    with canned_server(BODY) as url:
        pipeline, raw = pipeline_call(url), raw_call(url)
        for threads in (1, 4, 16):
            raw_ops = throughput(raw, threads, total // threads)
            ours = throughput(pipeline, threads, total // threads)
            group = f"throughput, {threads} thread{'s' if threads > 1 else ''}"
            rows.append(Row(group, "raw urllib3", raw_ops, "ops/s", 1.0, "raw urllib3"))
            rows.append(Row(group, "paywire pipeline", ours, "ops/s", ours / raw_ops, "raw urllib3"))
        held, growth = memory_growth(pipeline)
    rows.append(Row("memory, 10,000 operations", "traced after 1,000", held, "KiB"))
    rows.append(Row("memory, 10,000 operations", "growth over the next 9,000", growth, "KiB", target="~0 (no growth)"))
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
