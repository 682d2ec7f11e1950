"""A Janitor pass that finds the ledger busy (another session holding a lock past the database's
`lock_timeout`) logs one warning line, with paywire's message and no stack trace: an expected,
retried condition, not a fault."""

from __future__ import annotations

import logging

import psycopg
import pytest

from paywire.ledger import open_ledger
from paywire.serve import Janitor
from paywire.service import PaymentService
from tests.ledger.fakepay import make_gateway
from tests.ledger.support import FAST
from tests.serve.support import CountingFakePay


class _StopAfterFirst(logging.Handler):
    """Keeps the Janitor's records and stops it at its first: `run()` returns after one pass."""

    def __init__(self, janitor: Janitor) -> None:
        super().__init__()
        self.janitor = janitor
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.records.append(record)
        self.janitor.stopping.set()


@pytest.mark.postgres
def test_a_pass_that_finds_the_ledger_busy_logs_one_line_without_a_trace(
        provider: tuple[CountingFakePay, str], pg_url: str, shop: PaymentService) -> None:
    dsn, schema = pg_url.split("?schema=")
    waiter = open_ledger(f"{pg_url}&options=-c%20lock_timeout%3D50")
    gateway = make_gateway(provider[1], **FAST)
    janitor = Janitor(PaymentService(gateway, waiter, margin=0), interval=0)
    handler = _StopAfterFirst(janitor)
    logger = logging.getLogger("paywire.janitor")
    logger.addHandler(handler)
    try:
        with psycopg.connect(dsn) as holder:  # a transaction open until the block ends
            holder.execute(f'LOCK TABLE "{schema}".paywire_transactions IN ACCESS EXCLUSIVE MODE')
            janitor.run()
    finally:
        logger.removeHandler(handler)
        gateway.close()
        waiter.close()
    assert len(handler.records) == 1, [r.getMessage() for r in handler.records]
    record = handler.records[0]
    assert record.levelno == logging.WARNING and record.exc_info is None, record.getMessage()
    assert "the ledger is busy" in record.getMessage() and "try again" in record.getMessage()


@pytest.mark.postgres
def test_a_pass_on_a_ledger_that_refuses_writes_logs_one_line_without_a_trace(
        provider: tuple[CountingFakePay, str], pg_url: str, answered: PaymentService,
        monkeypatch: pytest.MonkeyPatch) -> None:
    """A failover left the ledger's address on a standby: a pass with a payment due cannot claim
    it (paywire's `LedgerUnavailable`), one warning line, no stack trace."""
    from paywire import Money
    from tests.ledger.support import step_past_life

    payment = answered.sale("fakepay", Money.of("4.00", "EUR"), source="tok_pending")  # answered however loaded the machine
    standby = open_ledger(f"{pg_url}&options=-c%20default_transaction_read_only%3Don")
    gateway = make_gateway(provider[1], **FAST)
    on_standby = PaymentService(gateway, standby, margin=0)
    step_past_life(on_standby, [t.id for t in answered.list_transactions(payment.id)], monkeypatch)  # its clock
    janitor = Janitor(on_standby, interval=0)
    handler = _StopAfterFirst(janitor)
    logger = logging.getLogger("paywire.janitor")
    logger.addHandler(handler)
    try:
        janitor.run()
    finally:
        logger.removeHandler(handler)
        gateway.close()
        standby.close()
    record = handler.records[0]
    assert record.levelno == logging.WARNING and record.exc_info is None, record.getMessage()
