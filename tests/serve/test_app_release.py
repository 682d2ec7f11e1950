"""An application `paywire serve` runs leaves no thread nor ledger connection behind once its
server has stopped: a process that builds many (a test suite, a shop rebuilding its app) does
not collect one set per application built."""

from __future__ import annotations

import threading

import psycopg
import pytest

from paywire import EventKind, Money
from paywire.ledger import open_ledger
from paywire.serve.app import serve_app
from paywire.serve.metrics import Metrics
from paywire.service import PaymentService
from tests.ledger.fakepay import make_gateway
from tests.ledger.support import wait_until
from tests.serve.servers import uvicorn_server
from tests.serve.support import CountingFakePay
from tests.serve.test_endpoints import send

POOLS = ("paywire-health", "paywire-webhook")


@pytest.mark.postgres
def test_the_apps_threads_and_their_connections_end_with_its_lifespan(
        provider: tuple[CountingFakePay, str], pg_url: str) -> None:
    app, url = provider
    name = pg_url.rsplit("=", 1)[1]  # the test's schema, as the application name of its connections
    dsn = pg_url.split("?")[0]
    ledger = open_ledger(f"{pg_url}&application_name={name}")
    gateway = make_gateway(url)

    def backends() -> int:
        with psycopg.connect(dsn, autocommit=True) as conn:
            row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE application_name = %s", (name,)).fetchone()
        assert row is not None
        return int(row[0])

    try:
        service = PaymentService(gateway, ledger)
        payment = service.sale("fakepay", Money.of("20.00", "EUR"), source="tok_ok")
        before = set(threading.enumerate())
        alone = backends()  # this thread's connection
        with uvicorn_server(serve_app(service, janitor=None, metrics=Metrics())) as port:
            assert send(port, "GET", "/healthz")[0] == 200
            headers, body = app.event("evt_release", EventKind.REFUNDED, payment.reference or "", total=500)
            assert send(port, "POST", "/webhooks/fakepay", body, headers)[0] == 200
            started = [t for t in set(threading.enumerate()) - before if t.name.startswith(POOLS)]
            assert sorted(t.name for t in started) == ["paywire-health-0", "paywire-webhook-0"]
            assert backends() == alone + 2  # one connection per thread
        for thread in started:
            thread.join(30)
        assert [t.name for t in started if t.is_alive()] == []
        wait_until(lambda: backends() == alone, "the threads' connections are gone")
    finally:
        gateway.close()
        ledger.close()
