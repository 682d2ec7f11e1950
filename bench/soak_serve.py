"""Soak: `paywire serve` on PostgreSQL receiving signed webhooks from concurrent senders while its
Janitor settles accepted payments. Not a test and not in `python -m bench`'s table (it runs for
minutes); run it on its own:

    python -m bench.soak_serve [--webhooks 10000] [--senders 8] [--payments 500]
        [--dsn postgresql://postgres@127.0.0.1:5432/test]

It reports webhooks per second, latency percentiles (p50, p99) as the senders saw them, whether
every event was applied exactly once (each event id stored once, applied; every duplicate
delivery answered "duplicate"), what the Janitor settled meanwhile, and the server's resident
memory before and after.
"""

from __future__ import annotations

import argparse
import http.client
import json
import random
import secrets
import sys
import tempfile
import threading
import time
from pathlib import Path

from paywire import EventKind, Money
from paywire.ledger import open_ledger
from paywire.ledger.model import EventStatus
from paywire.service import PaymentService
from paywire.testing.emulator import EmulatorServer
from tests.ledger.fakepay import FakePayApp, make_gateway
from tests.ledger.support import wait_out_life
from tests.serve.support import ServeProcess, install_fakepay, write_config

DUPLICATE_SHARE = 0.1  # of deliveries: a provider delivering again


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.soak_serve")
    parser.add_argument("--webhooks", type=int, default=10_000, help="distinct events to deliver")
    parser.add_argument("--senders", type=int, default=8)
    parser.add_argument("--payments", type=int, default=500, help="payments the events are about")
    parser.add_argument("--accepted", type=int, default=50, help="accepted payments for the Janitor to settle")
    parser.add_argument("--dsn", default="postgresql://postgres@127.0.0.1:5432/test")
    args = parser.parse_args()

    schema = f"pwsoak_{secrets.token_hex(4)}"
    url = f"{args.dsn}?schema={schema}"
    app = FakePayApp()
    folder = Path(tempfile.mkdtemp(prefix="paywire_soak_"))
    with EmulatorServer(app) as emulator:
        ledger = open_ledger(url)
        gateway = make_gateway(emulator.url, connect_timeout=0.5, read_timeout=0.5)
        shop = PaymentService(gateway, ledger, margin=0)
        print(f"preparing {args.payments} paid and {args.accepted} accepted payments in schema {schema} ...",
              file=sys.stderr)
        paid = [shop.sale("fakepay", Money.of("100.00", "EUR"), source="tok_ok") for _ in range(args.payments)]
        accepted = [shop.sale("fakepay", Money.of("10.00", "EUR"), source="tok_pending") for _ in range(args.accepted)]
        wait_out_life(shop, [t.id for p in accepted for t in shop.list_transactions(p.id)])

        # Each payment gets refund events with rising totals (up to 50.00), delivered in any order.
        deliveries: list[tuple[str, dict[str, str], bytes]] = []
        for n in range(args.webhooks):
            payment = paid[n % len(paid)]
            total = 100 * (1 + n // len(paid) % 50)
            headers, body = app.event(f"evt_soak_{n}", EventKind.REFUNDED, payment.reference or "", total=total)
            deliveries.append((f"evt_soak_{n}", headers, body))
        random.Random(7).shuffle(deliveries)
        repeats = random.Random(8).sample(deliveries, int(len(deliveries) * DUPLICATE_SHARE))
        queue = deliveries + repeats  # every repeat comes after its first delivery has been queued

        config = write_config(folder / "paywire.toml", emulator.url, url)
        server = ServeProcess(config, install_fakepay(folder / "plugin"), ["--interval", "1", "--backoff-first", "1"])
        try:
            server.wait_healthy()
            before = rss_kib(server.proc.pid)
            for payment in accepted:
                app.decide(payment.reference or "")  # the Janitor finds these while webhooks arrive
            latencies: list[float] = []
            answers: dict[str, int] = {}
            failures: list[str] = []
            lock = threading.Lock()
            cursor = iter(queue)

            def send() -> None:
                conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
                mine: list[float] = []
                seen: dict[str, int] = {}
                while True:
                    with lock:
                        item = next(cursor, None)
                    if item is None:
                        break
                    event_id, headers, body = item
                    started = time.perf_counter()
                    try:
                        conn.request("POST", "/webhooks/fakepay", body=body, headers=headers)
                        response = conn.getresponse()
                        text = response.read()
                    except OSError as exc:
                        conn.close()
                        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
                        with lock:
                            failures.append(f"{event_id}: {exc!r}")
                        continue
                    mine.append(time.perf_counter() - started)
                    status = json.loads(text).get("status", str(response.status))
                    seen[status] = seen.get(status, 0) + 1
                conn.close()
                with lock:
                    latencies.extend(mine)
                    for key, value in seen.items():
                        answers[key] = answers.get(key, 0) + value

            print(f"sending {len(queue)} deliveries ({len(deliveries)} events, {len(repeats)} repeats) from "
                  f"{args.senders} senders ...", file=sys.stderr)
            started = time.perf_counter()
            threads = [threading.Thread(target=send) for _ in range(args.senders)]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            elapsed = time.perf_counter() - started
            deadline = time.monotonic() + 120
            open_left = args.accepted
            while time.monotonic() < deadline:
                open_left = sum(1 for p in accepted for t in shop.list_transactions(p.id) if t.open)
                if open_left == 0:
                    break
                time.sleep(0.5)
            after = rss_kib(server.proc.pid)
            code = server.terminate()
        finally:
            server.kill()

        stored = ledger.list_events(limit=args.webhooks * 2)
        ids = [e.event_id for e in stored]
        applied = sum(1 for e in stored if e.status == EventStatus.APPLIED)
        exactly_once = (len(ids) == len(set(ids)) == len(deliveries) == applied
                        and answers.get("applied", 0) == len(deliveries)
                        and answers.get("duplicate", 0) == len(repeats) and not failures)
        result = {
            "deliveries": len(queue), "events": len(deliveries), "senders": args.senders,
            "seconds": round(elapsed, 2), "webhooks_per_second": round(len(queue) / elapsed, 1),
            "latency_ms": {"p50": round(percentile(latencies, 0.50) * 1000, 1),
                           "p99": round(percentile(latencies, 0.99) * 1000, 1),
                           "max": round(max(latencies) * 1000, 1)},
            "answers": answers, "failures": len(failures), "stored_events": len(ids), "applied_events": applied,
            "every_event_applied_exactly_once": exactly_once,
            "janitor": {"accepted": args.accepted, "still_open": open_left},
            "server_rss_mib": {"before": round(before / 1024, 1), "after": round(after / 1024, 1)},
            "server_exit_code": code,
        }
        print(json.dumps(result, indent=2))
        ledger.close()
        gateway.close()
        import psycopg

        with psycopg.connect(args.dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    return 0 if exactly_once and open_left == 0 and code == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
