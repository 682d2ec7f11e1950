"""Four `paywire serve` processes on one PostgreSQL ledger: every payment the provider decided
is settled, each fetched once, and no two workers ever ask about one payment at the same time."""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from paywire import Money
from paywire.service import PaymentService
from tests.ledger.support import wait_until
from tests.serve.support import CountingFakePay, ServeProcess, write_config

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
PAYMENTS = 40


def test_four_workers_never_settle_one_payment_at_once(
        answered: PaymentService, provider: tuple[CountingFakePay, str], pg_url: str, plugin_path: Path,
        tmp_path: Path) -> None:
    app, url = provider  # every sale is answered however loaded the machine (so each lives about 35 s)
    payments = [answered.sale("fakepay", Money.of(f"{i + 1}.00", "EUR"), source="tok_pending") for i in range(PAYMENTS)]
    txns = [t for p in payments for t in answered.list_transactions(p.id)]
    for payment in payments:
        app.decide(payment.reference or "")  # decided at the provider; no webhook reaches the shop
    # The workers' reads are answered however loaded the machine too (write_config's patient
    # timeouts): a read given up on is fetched again.
    config = write_config(tmp_path / "paywire.toml", url, pg_url)
    workers = [ServeProcess(config, plugin_path, ["--no-webhooks", "--interval", "0.05"]) for _ in range(4)]
    try:
        for worker in workers:
            worker.wait_healthy()
        # The workers keep the database's clock, which no test steps: the sales' lives pass while
        # they run, none of them looking at a payment before its settle_after.
        wait_until(lambda: all(answered.get_transaction(t.id).status == "succeeded" for t in txns),
                   "every payment is settled", timeout=120)
        time.sleep(0.5)  # a few more passes: they must find nothing left to ask about
    finally:
        codes = [worker.terminate() for worker in workers]
    assert codes == [0, 0, 0, 0]
    assert app.overlaps == 0
    assert {app.fetches.get(p.reference or "", 0) for p in payments} == {1}
    settled = [m for w in workers for line in w.stderr for m in re.findall(r"settled transaction (\S+)", line)]
    assert sorted(settled) == sorted(t.id for t in txns)  # each by exactly one worker
