"""Cost that does not grow with the ledger: an operation (authorize, capture), a webhook and a
reconcile pass over 100 unknown transactions, on an empty ledger and on one holding 1,000,000
payments (each authorized, with its transaction and reference), interleaved in one run, on
SQLite and PostgreSQL.

The big ledgers are built in bulk (executemany in one transaction on SQLite, COPY on
PostgreSQL) from one real payment's rows, under /tmp and in a schema of their own, and deleted
afterwards. Unknown transactions come from a server that closes every connection unanswered;
reconcile settles them through `fetch` against the canned server.

Target: every ratio (1,000,000 payments / empty) at most 1.10.
"""

from __future__ import annotations

import json
import os
import socket
import statistics
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

from bench.bench_ledger import AMOUNT, BODY, _gateway, _postgres
from bench.canned_server import canned_server
from bench.timing import Row, median_latency
from paywire import PaymentService, PaywireError
from paywire.ledger import Ledger, SQLiteLedger
from paywire.ledger._sql import PAYMENT_COLUMNS, TRANSACTION_COLUMNS, SQLLedger
from paywire.ledger.postgres import PostgresLedger

SIZE = int(os.environ.get("PAYWIRE_BENCH_SIZE", "1000000"))
GROUP = f"cost with {SIZE:,} payments in the ledger"
UNKNOWN, RECONCILE_ROUNDS = 100, 5


def _template(ledger: SQLLedger, payment_id: str) -> tuple[list[Any], list[Any], list[Any]]:
    """One real payment's rows (payment, its transaction, one reference), to copy in bulk."""
    conn = ledger.connection()
    mark = "%s" if isinstance(ledger, PostgresLedger) else "?"
    payment = conn.execute(f"SELECT {PAYMENT_COLUMNS} FROM paywire_payments WHERE id = {mark}", (payment_id,)).fetchone()
    txn = conn.execute(f"SELECT {TRANSACTION_COLUMNS} FROM paywire_transactions WHERE payment_id = {mark}",
                       (payment_id,)).fetchone()
    ref = conn.execute(f"SELECT method, reference, payment_id FROM paywire_references WHERE payment_id = {mark}",
                       (payment_id,)).fetchone()
    return list(payment), list(txn), list(ref)


def _bulk_rows(template: tuple[list[Any], list[Any], list[Any]]) -> Iterator[tuple[tuple[Any, ...], ...]]:
    payment, txn, ref = template
    for i in range(SIZE):
        pid, reference = f"pay_bulk{i:08d}", f"ref_bulk{i:08d}"
        payment[0], payment[15], payment[16] = pid, reference, json.dumps({"payment": reference})
        payment[23] = payment[24] = payment[23] - 1  # older than anything the bench makes
        txn[0], txn[1], txn[7], txn[10] = f"txn_bulk{i:08d}", pid, f"bulk-{i}", reference
        txn[20] = txn[21] = payment[23]
        ref[1], ref[2] = reference, pid
        yield tuple(payment), tuple(txn), tuple(ref)


def _fill_sqlite(ledger: SQLiteLedger, template: tuple[list[Any], list[Any], list[Any]]) -> None:
    conn = ledger.connection()
    conn.execute("BEGIN IMMEDIATE")
    rows = list(_bulk_rows(template))
    conn.executemany(f"INSERT INTO paywire_payments ({PAYMENT_COLUMNS}) VALUES ({', '.join('?' * 25)})",
                     (r[0] for r in rows))
    conn.executemany(f"INSERT INTO paywire_transactions ({TRANSACTION_COLUMNS}) VALUES ({', '.join('?' * 25)})",
                     (r[1] for r in rows))
    conn.executemany("INSERT INTO paywire_references (method, reference, payment_id) VALUES (?, ?, ?)",
                     (r[2] for r in rows))
    conn.execute("COMMIT")
    conn.execute("ANALYZE")
    conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def _fill_postgres(ledger: PostgresLedger, template: tuple[list[Any], list[Any], list[Any]]) -> None:
    conn = ledger.connection()
    rows = list(_bulk_rows(template))
    with conn.transaction(), conn.cursor() as cursor:
        for index, (table, columns) in enumerate((("paywire_payments", PAYMENT_COLUMNS),
                                                  ("paywire_transactions", TRANSACTION_COLUMNS),
                                                  ("paywire_references", "method, reference, payment_id"))):
            with cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row[index])
    for table in ("paywire_payments", "paywire_transactions", "paywire_references"):
        conn.execute(f"VACUUM ANALYZE {table}")


def _dead_server(stack: ExitStack) -> str:
    """A server that takes every request and closes the connection unanswered: outcome unknown."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)

    def serve() -> None:
        while True:
            try:
                conn, _ = sock.accept()
            except OSError:
                return
            conn.recv(65536)
            conn.close()

    threading.Thread(target=serve, daemon=True).start()
    stack.callback(sock.close)
    return f"http://127.0.0.1:{sock.getsockname()[1]}"


def _measure(backend: str, ledgers: dict[str, Ledger], url: str, dead_url: str) -> list[Row]:
    gateway, dead = _gateway(url), _gateway(dead_url)
    services = {name: PaymentService(gateway, ledger) for name, ledger in ledgers.items()}
    unanswered = {name: PaymentService(dead, ledger) for name, ledger in ledgers.items()}
    events = iter(range(10**9))
    rows: list[Row] = []

    def authorize(service: PaymentService) -> Callable[[], object]:
        return lambda: service.authorize("benchpay", AMOUNT, source="tok_ok")

    def capture(service: PaymentService) -> Callable[[], object]:
        feed = iter([service.authorize("benchpay", AMOUNT, source="tok_ok").id for _ in range(7 * 100 + 50)])
        return lambda: service.capture(next(feed), AMOUNT)

    def webhook(service: PaymentService) -> Callable[[], object]:
        # Each event confirms the authorization of a payment of its own, as the provider sends them.
        feed = iter([service.authorize("benchpay", AMOUNT, source="tok_ok").reference for _ in range(7 * 100 + 50)])

        def call() -> object:
            body = json.dumps({"id": f"evt_{next(events)}", "kind": "authorized", "reference": next(feed)}).encode()
            return service.receive_webhook("benchpay", {}, body)
        return call

    for operation, make in (("authorize", authorize), ("capture", capture), ("webhook", webhook)):
        medians = median_latency({name: make(service) for name, service in services.items()},
                                 rounds=7, per_round=100, warmup=50)
        rows += _rows(f"{GROUP}, {backend}: {operation}", medians, "us/op")

    samples: dict[str, list[float]] = {name: [] for name in ledgers}
    for _ in range(RECONCILE_ROUNDS):
        for name in ledgers:
            for _ in range(UNKNOWN):
                try:
                    unanswered[name].authorize("benchpay", AMOUNT, source="tok_ok")
                except PaywireError:
                    pass
            started = time.perf_counter()
            report = services[name].reconcile(limit=UNKNOWN * 10)
            samples[name].append(time.perf_counter() - started)
            assert len(report.settled) >= UNKNOWN, report
    rows += _rows(f"{GROUP}, {backend}: reconcile {UNKNOWN} unknown",
                  {name: statistics.median(values) for name, values in samples.items()}, "us/pass")
    gateway.close()
    dead.close()
    return rows


def _rows(group: str, medians: dict[str, float], unit: str) -> list[Row]:
    empty = medians["empty"]
    return [Row(group, name, value * 1e6, unit, value / empty, "empty", "<= 1.10" if name != "empty" else None)
            for name, value in medians.items()]


def run() -> list[Row]:
    rows: list[Row] = []
    with ExitStack() as stack:
        url = stack.enter_context(canned_server(BODY))
        dead_url = _dead_server(stack)
        directory = Path(stack.enter_context(tempfile.TemporaryDirectory(dir="/tmp")))
        backends: dict[str, tuple[SQLLedger, SQLLedger, Callable[[Any, Any], None]]] = {
            "SQLite": (SQLiteLedger(directory / "empty.db"), SQLiteLedger(directory / "big.db"), _fill_sqlite),
        }
        empty_pg, why = _postgres(stack)
        big_pg, _ = _postgres(stack)
        if empty_pg is not None and big_pg is not None:
            backends["PostgreSQL"] = (empty_pg, big_pg, _fill_postgres)
        for backend, (empty, big, fill) in backends.items():
            started = time.perf_counter()
            service = PaymentService(_gateway(url), big)
            fill(big, _template(big, service.authorize("benchpay", AMOUNT, source="tok_ok").id))
            built = time.perf_counter() - started
            rows.append(Row(f"{GROUP}, {backend}: build", "bulk insert", built, "s"))
            rows += _measure(backend, {"empty": empty, f"{SIZE:,} payments": big}, url, dead_url)
            for ledger in (empty, big):
                ledger.close()
        if why:
            rows.append(Row(f"{GROUP}: note", f"PostgreSQL skipped: {why}", 0.0, "-"))
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
