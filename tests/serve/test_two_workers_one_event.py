"""One webhook delivered to two `paywire serve` processes at once (a provider retrying while the
first delivery is still in flight, through a load balancer): applied exactly once, and every
delivery answered 2xx, so the provider stops sending it."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import pytest

from paywire import EventKind, Money
from paywire.service import PaymentService
from tests.serve.support import CountingFakePay, ServeProcess, write_config

pytestmark = [pytest.mark.postgres, pytest.mark.slow]


def test_one_event_delivered_to_two_workers_at_once_is_applied_once(
        answered: PaymentService, provider: tuple[CountingFakePay, str], pg_url: str, plugin_path: Path,
        tmp_path: Path) -> None:
    app, url = provider
    payment = answered.sale("fakepay", Money.of("30.00", "EUR"), source="tok_ok")  # answered however loaded the machine
    headers, body = app.event("evt_twice", EventKind.REFUNDED, payment.reference or "", total=1000)
    config = write_config(tmp_path / "paywire.toml", url, pg_url)
    workers = [ServeProcess(config, plugin_path, ["--no-janitor"]) for _ in range(2)]
    answers: list[tuple[int, str]] = []
    try:
        for worker in workers:
            worker.wait_healthy()
        start = threading.Barrier(8)

        def deliver(worker: ServeProcess) -> None:
            start.wait()
            status, _, text = worker.request("POST", "/webhooks/fakepay", body, headers)
            answers.append((status, json.loads(text)["status"]))

        threads = [threading.Thread(target=deliver, args=(workers[n % 2],)) for n in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        codes = [worker.terminate() for worker in workers]
    assert codes == [0, 0]
    assert sorted(answers) == [(200, "applied")] + [(200, "duplicate")] * 7
    assert answered.get_payment(payment.id).refunded == Money.of("10.00", "EUR")
    stored = answered.ledger.get_event("fakepay", "evt_twice")
    assert stored is not None and stored.status == "applied"
