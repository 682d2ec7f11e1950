"""One event delivered to two workers at once on PostgreSQL, the interleaving fixed by locks
another session holds (no timing): the second delivery's insert of the event waits behind the
first's unit. Whether that unit commits or is cut off, the event is applied exactly once, and a
delivery whose event was not stored is answered no 2xx."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import psycopg
import pytest

from paywire import EventKind, Money
from paywire.ledger import open_ledger
from paywire.service import PaymentService
from paywire.web import webhook_asgi
from tests.ledger.fakepay import make_gateway
from tests.ledger.support import FAST, wait_until
from tests.serve.servers import uvicorn_server
from tests.serve.support import CountingFakePay
from tests.serve.test_endpoints import send

pytestmark = pytest.mark.postgres


@pytest.fixture
def workers(provider: tuple[CountingFakePay, str], pg_url: str) -> Iterator[list[PaymentService]]:
    """Two workers on the shop's ledger, each with its own connections."""
    services = []
    for _ in range(2):
        gateway = make_gateway(provider[1], **FAST)
        services.append(PaymentService(gateway, open_ledger(pg_url), margin=0))
    yield services
    for service in services:
        service.gateway.close()
        service.ledger.close()


def _blocked_by(dsn: str, pid: int) -> list[int]:
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))", (pid,))
        return [int(row[0]) for row in rows]


@pytest.mark.parametrize("first_unit", ["commits", "is_cut_off"])
def test_one_event_at_two_workers_is_applied_once(first_unit: str, workers: list[PaymentService],
                                                   answered: PaymentService, provider: tuple[CountingFakePay, str],
                                                   pg_url: str) -> None:
    app, _ = provider
    payment = answered.sale("fakepay", Money.of("30.00", "EUR"), source="tok_ok")
    headers, body = app.event("evt_both", EventKind.REFUNDED, payment.reference or "", total=1000)
    dsn, schema = pg_url.split("?schema=")
    answers: dict[str, tuple[int, dict[str, str], bytes]] = {}

    def deliver(name: str, port: int) -> None:
        answers[name] = send(port, "POST", "/webhooks/fakepay", body, headers)

    with uvicorn_server(webhook_asgi(workers[0])) as first_port, \
            uvicorn_server(webhook_asgi(workers[1])) as second_port, psycopg.connect(dsn) as holder:
        holder.execute(f'SET search_path TO "{schema}"')
        holder.execute("SELECT id FROM paywire_payments WHERE id = %s FOR UPDATE", (payment.id,))
        first = threading.Thread(target=deliver, args=("first", first_port))
        first.start()
        # The first worker stored the event (uncommitted) and waits for the payment's row.
        wait_until(lambda: len(_blocked_by(dsn, holder.info.backend_pid)) == 1, "the first delivery waits")
        (first_pid,) = _blocked_by(dsn, holder.info.backend_pid)
        second = threading.Thread(target=deliver, args=("second", second_port))
        second.start()
        wait_until(lambda: len(_blocked_by(dsn, first_pid)) == 1, "the second delivery waits behind the first")
        if first_unit == "is_cut_off":
            with psycopg.connect(dsn, autocommit=True) as admin:
                assert admin.execute("SELECT pg_terminate_backend(%s)", (first_pid,)).fetchone() == (True,)
            first.join(60)
            # The second worker's insert went on, and it waits for the payment's row in turn.
            wait_until(lambda: len(_blocked_by(dsn, holder.info.backend_pid)) == 1, "the second delivery waits")
        holder.commit()
        first.join(60)
        second.join(60)

    outcomes = {name: (status, json.loads(text).get("status") or json.loads(text).get("error"))
                for name, (status, _, text) in answers.items()}
    if first_unit == "commits":
        assert outcomes == {"first": (200, "applied"), "second": (200, "duplicate")}
    else:
        assert outcomes == {"first": (503, "ledger_unavailable"), "second": (200, "applied")}
        assert answers["first"][1].get("retry-after")
    assert answered.get_payment(payment.id).refunded == Money.of("10.00", "EUR")
    stored = answered.ledger.get_event("fakepay", "evt_both")
    assert stored is not None and stored.status == "applied"
