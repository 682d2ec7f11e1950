"""A separate worker process for the crash and concurrency tests.

`python tests/ledger/worker.py '<json>'` runs payment operations against a FakePay emulator and
a shared ledger, printing one JSON line per operation. The job:

- url, ledger: the emulator's base URL and the ledger URL;
- ops: a list of [operation, payment id or method, amount or null, idempotency key or null]
  ("vault" takes the method and vaults "tok_ok");
- threads: run the list in this many threads at once (each thread the whole list);
- start_at: a wall-clock time to start at, so that workers race instead of queueing;
- crash: "before_send" or "after_send" kills the process (SIGKILL) around the first send of
  `crash_command`: between recording and sending, or between sending and recording;
- connect_timeout, read_timeout, margin: the gateway's timeouts and the service's margin (they
  decide each request's settle_after; tests use tiny ones to wait a crashed request's life out).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from paywire import Money, PaywireError, hookimpl
from paywire.ledger import open_ledger
from paywire.service import PaymentService
from tests.ledger.fakepay import make_gateway


class Crash:
    def __init__(self, when: str, command: str) -> None:
        self.when, self.command = when, command

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Iterator[None]:
        if command == self.command and self.when == "before_send":
            os.kill(os.getpid(), signal.SIGKILL)
        try:
            return (yield)
        finally:  # answered or not (a loaded machine may answer after the tiny read timeout): sent
            if command == self.command and self.when == "after_send":
                os.kill(os.getpid(), signal.SIGKILL)


def run(service: PaymentService, op: list[Any], out: list[dict[str, Any]]) -> None:
    name, target, amount, key = op
    money = Money.of(amount, "EUR") if amount is not None else None
    try:
        if name == "vault":
            txn = service.vault(target, "tok_ok", idempotency_key=key)
            out.append({"op": name, "ok": True, "transaction": txn.id, "token": txn.token})
            return
        if name == "authorize":
            payment = service.authorize(target, money, source="tok_ok", idempotency_key=key)  # type: ignore[arg-type]
        elif name == "capture":
            payment = service.capture(target, money, idempotency_key=key)
        elif name == "refund":
            payment = service.refund(target, money, idempotency_key=key)
        else:
            raise ValueError(name)
        out.append({"op": name, "ok": True, "payment": payment.id, "captured": payment.captured.minor,
                    "refunded": payment.refunded.minor})
    except PaywireError as exc:
        out.append({"op": name, "ok": False, "error": type(exc).__name__, "code": exc.code})


def main() -> None:
    job = json.loads(sys.argv[1])
    extra = [Crash(job["crash"], job.get("crash_command", "capture"))] if job.get("crash") else []
    gateway = make_gateway(job["url"], extra=extra, connect_timeout=job.get("connect_timeout", 5.0),
                           read_timeout=job.get("read_timeout", 10.0))
    service = PaymentService(gateway, open_ledger(job["ledger"]), margin=job.get("margin", 30.0))
    results: list[dict[str, Any]] = []
    if job.get("start_at"):
        time.sleep(max(0.0, job["start_at"] - time.time()))

    def work() -> None:
        for op in job["ops"]:
            run(service, op, results)

    threads = [threading.Thread(target=work) for _ in range(job.get("threads", 1))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        print(json.dumps(result), flush=True)


if __name__ == "__main__":
    main()
