"""Threaded throughput at 1, 4 and 16 threads, paywire next to raw urllib3, and memory over
100,000 operations through the payment service on SQLite (resident memory and live objects
between the 5,000th operation, when the bounded caches are full, and the last)."""

from __future__ import annotations

import gc
import os
import tempfile
import threading
import time
from collections.abc import Callable
from pathlib import Path

from bench.bench_ledger import AMOUNT, _gateway
from bench.bench_pipeline import BODY, pipeline_call, raw_call
from bench.canned_server import canned_server
from bench.timing import Row
from paywire import PaymentService
from paywire.ledger import SQLiteLedger

MEMORY_OPERATIONS = 100_000


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


def memory_growth(call: Callable[[], object], operations: int = MEMORY_OPERATIONS) -> tuple[float, float, int]:
    """Resident KiB after the first 5,000 operations (the bounded caches full by then), the
    resident growth over the remaining ones, and the growth in live Python objects (a leak of
    anything per operation shows there exactly; tracemalloc would triple the run's length)."""
    for _ in range(5_000):
        call()
    gc.collect()
    first, objects = _resident_kib(), len(gc.get_objects())
    for _ in range(operations - 5_000):
        call()
    gc.collect()
    return first, _resident_kib() - first, len(gc.get_objects()) - objects


def _resident_kib() -> float:
    with open("/proc/self/statm") as statm:
        return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 1024


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
        with tempfile.TemporaryDirectory(dir="/tmp") as directory:
            ledger = SQLiteLedger(Path(directory) / "memory.db")
            gateway = _gateway(url)
            service = PaymentService(gateway, ledger)
            held, growth, objects = memory_growth(lambda: service.authorize("benchpay", AMOUNT, source="tok_ok"))
            gateway.close()
            ledger.close()
    group = f"memory, {MEMORY_OPERATIONS:,} operations (PaymentService + SQLite)"
    rows.append(Row(group, "resident after 5,000", held, "KiB"))
    rows.append(Row(group, f"resident growth over the next {MEMORY_OPERATIONS - 5_000:,}", growth, "KiB",
                    target="~0 (no growth)"))
    rows.append(Row(group, f"live objects added over the next {MEMORY_OPERATIONS - 5_000:,}", float(objects),
                    "objects", target="~0 (no growth)"))
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
