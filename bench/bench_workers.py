"""Worker processes on one PostgreSQL ledger: 1, 2, 4 and 8 processes, each running authorize
then capture on payments of its own, paywire next to the plain-driver floor (bench/floor.py) on
the same server, against the same canned local server, in one run. Reports ops/s and errors.

Target: paywire at least 0.8x the floor's ops/s at 8 workers, with no errors. Each level runs
floor and paywire alternately for three rounds; the medians are reported.
"""

from __future__ import annotations

import multiprocessing
import statistics
import time
import traceback
from collections.abc import Callable
from contextlib import ExitStack
from typing import Any

from bench.bench_ledger import AMOUNT, BODY, PG_DSN, _gateway, _postgres
from bench.canned_server import canned_server
from bench.floor import postgres_floor
from bench.timing import Row
from paywire import PaymentService, Subject
from paywire.ledger.postgres import PostgresLedger

GROUP = "workers on one PostgreSQL ledger (authorize + capture)"
PAIRS = 50  # authorize + capture pairs per worker and round
ROUNDS = 3  # floor and paywire alternate, so machine noise hits both alike; medians reported
WORKERS = (1, 2, 4, 8)


def _worker(kind: str, url: str, schema: str, barrier: Any, results: Any) -> None:
    errors, ops = 0, 0
    gateway = _gateway(url)
    keys = iter(range(10**9))

    def send(command: str) -> Callable[[], object]:
        def call() -> object:
            subject = Subject(amount=AMOUNT, source="tok_ok", reference="pay_123", idempotency_key=f"w-{next(keys)}")
            return gateway.execute("benchpay", command, subject)
        return call

    if kind == "paywire":
        ledger = PostgresLedger(PG_DSN, schema=schema)
        service = PaymentService(gateway, ledger)

        def pair() -> None:
            service.capture(service.authorize("benchpay", AMOUNT, source="tok_ok").id, AMOUNT)
    else:
        floor = postgres_floor(PG_DSN, schema)

        def pair() -> None:
            floor.capture(floor.authorize(send("authorize")), send("capture"))
    pair()  # connect, warm
    barrier.wait()
    started = time.perf_counter()
    for _ in range(PAIRS):
        try:
            pair()
            ops += 2
        except Exception:
            errors += 1
            traceback.print_exc()
    results.put((ops, errors, time.perf_counter() - started))


def _run_at(kind: str, workers: int, url: str, schema: str) -> tuple[float, int]:
    context = multiprocessing.get_context("fork")
    barrier, results = context.Barrier(workers), context.Queue()
    processes = [context.Process(target=_worker, args=(kind, url, schema, barrier, results)) for _ in range(workers)]
    for process in processes:
        process.start()
    outcomes = [results.get(timeout=300) for _ in processes]
    for process in processes:
        process.join(30)
    ops = sum(o[0] for o in outcomes)
    errors = sum(o[1] for o in outcomes) + sum(1 for p in processes if p.exitcode)
    return ops / max(o[2] for o in outcomes), errors


def run() -> list[Row]:
    rows: list[Row] = []
    with ExitStack() as stack:
        url = stack.enter_context(canned_server(BODY))
        ledger, why = _postgres(stack)
        floor_ledger, _ = _postgres(stack)
        if ledger is None or floor_ledger is None:
            return [Row(f"{GROUP}: note", f"skipped: {why}", 0.0, "-")]
        ledger.close()
        floor_ledger.close()
        for workers in WORKERS:
            samples: dict[str, list[float]] = {"floor": [], "paywire": []}
            failures = 0
            for _ in range(ROUNDS):
                for kind, schema in (("floor", floor_ledger.schema), ("paywire", ledger.schema)):
                    ops, errors = _run_at(kind, workers, url, schema or "public")
                    samples[kind].append(ops)
                    failures += errors
            floor_ops, ours = statistics.median(samples["floor"]), statistics.median(samples["paywire"])
            group = f"{GROUP}: {workers} worker{'s' if workers > 1 else ''}"
            rows.append(Row(group, "plain-driver floor", floor_ops, "ops/s", 1.0, "floor"))
            rows.append(Row(group, "paywire", ours, "ops/s", ours / floor_ops, "floor",
                            ">= 0.8" if workers == 8 else None))
            rows.append(Row(group, "errors (paywire and floor, all rounds)", float(failures), "count",
                            target="0" if workers == 8 else None))
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
