"""The ASGI endpoint holds a bounded number of deliveries: with the ledger not answering (here its
payments' rows held by another session), the ones beyond the bound are answered 503 with
`Retry-After` at once, their bodies unread and nothing stored, and the ones held are applied once
when the ledger answers again."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager, contextmanager
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

import psycopg
import pytest

from paywire import ConfigurationError, EventKind, Money
from paywire.daemon_pool import DEFAULT_SIZE
from paywire.serve.app import serve_app
from paywire.serve.metrics import Metrics
from paywire.service import PaymentService
from paywire.web import IN_HAND_PER_THREAD, RETRY_AFTER, webhook_asgi, webhook_wsgi
from tests.ledger.support import wait_until
from tests.serve.servers import uvicorn_server, waitress_server
from tests.serve.support import CountingFakePay, metric
from tests.serve.test_endpoints import send

pytestmark = [pytest.mark.postgres, pytest.mark.patient]  # its requests need answers, not a short life
GUARD = 30  # seconds: a socket timeout that only turns a hang into a failure


def _waiting_on(dsn: str, holder_pid: int) -> int:
    """How many sessions wait for a lock the holder's session has."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                           (holder_pid,)).fetchone()
        return int(row[0]) if row else 0


def test_deliveries_beyond_the_bound_are_refused_at_once_and_the_held_ones_applied_once(
        shop: PaymentService, provider: tuple[CountingFakePay, str], pg_url: str) -> None:
    app, _ = provider
    bound = 3
    payments = [shop.sale("fakepay", Money.of("30.00", "EUR"), source="tok_ok") for _ in range(bound + 1)]
    deliveries = [app.event(f"evt_held_{n}", EventKind.REFUNDED, p.reference or "", total=1000)
                  for n, p in enumerate(payments)]
    seen: list[tuple[str, str]] = []
    endpoint = webhook_asgi(shop, max_in_hand=bound, body_timeout=300,
                            observe=lambda method, status: seen.append((method, status)))
    dsn, schema = pg_url.split("?schema=")
    answers: dict[int, tuple[int, bytes]] = {}

    def deliver(n: int) -> None:
        status, _, text = send(port, "POST", "/webhooks/fakepay", deliveries[n][1], deliveries[n][0])
        answers[n] = (status, text)

    with uvicorn_server(endpoint) as port, psycopg.connect(dsn) as holder:
        # Every payment's row held: a delivery admitted waits in the ledger until the holder lets go.
        holder.execute(f'SET search_path TO "{schema}"')
        holder.execute("SELECT id FROM paywire_payments WHERE id = ANY(%s) FOR UPDATE", ([p.id for p in payments],))
        senders = [threading.Thread(target=deliver, args=(n,)) for n in range(bound)]
        for sender in senders:
            sender.start()
        wait_until(lambda: _waiting_on(dsn, holder.info.backend_pid) == bound, "the held deliveries wait")
        assert endpoint.in_hand == bound

        # One more, declaring a body it never sends: answered without the body being read (a read
        # would wait for it until the guard fails the test), and without reaching the ledger (an
        # admitted delivery would wait for its row, held until after this answer).
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=GUARD)
        try:
            conn.putrequest("POST", "/webhooks/fakepay")
            conn.putheader("Content-Length", "100")
            conn.putheader("Content-Type", "application/json")
            conn.endheaders()
            response = conn.getresponse()
            status, retry, text = response.status, response.getheader("retry-after"), response.read()
        finally:
            conn.close()
        assert (status, retry, json.loads(text)) == (503, str(RETRY_AFTER), {"error": "busy"})

        # A whole, valid delivery: refused the same way, nothing of it stored.
        status, headers, text = send(port, "POST", "/webhooks/fakepay", deliveries[bound][1], deliveries[bound][0])
        assert (status, headers.get("retry-after"), json.loads(text)) == (503, str(RETRY_AFTER), {"error": "busy"})
        assert shop.ledger.get_event("fakepay", f"evt_held_{bound}") is None

        holder.commit()  # the ledger answers again
        for sender in senders:
            sender.join(GUARD * 2)
        assert sorted(answers) == list(range(bound))
        assert all((s, json.loads(t)["status"]) == (200, "applied") for s, t in answers.values()), answers
        assert endpoint.in_hand == 0
        assert shop.get_payment(payments[bound].id).refunded == Money.of("0.00", "EUR")

        status, _, text = send(port, "POST", "/webhooks/fakepay", deliveries[bound][1], deliveries[bound][0])
        assert (status, json.loads(text)["status"]) == (200, "applied")  # delivered again: room now
    for n, payment in enumerate(payments):
        assert shop.get_payment(payment.id).refunded == Money.of("10.00", "EUR")
        stored = shop.ledger.get_event("fakepay", f"evt_held_{n}")
        assert stored is not None and stored.status == "applied"
    assert sorted(seen) == sorted([("fakepay", "applied")] * (bound + 1) + [("fakepay", "unavailable")] * 2)


def test_the_default_bound_is_derived_from_the_endpoints_threads(shop: PaymentService) -> None:
    """Unset: `IN_HAND_PER_THREAD` deliveries for each of the endpoint's threads."""
    assert webhook_asgi(shop).max_in_hand == DEFAULT_SIZE * IN_HAND_PER_THREAD


@pytest.mark.parametrize("bound", [0, -1, 2.5, "10", True])
def test_a_bound_that_holds_no_delivery_is_a_configuration_error_saying_what_to_give(
        shop: PaymentService, bound: object) -> None:
    for endpoint in (webhook_asgi, webhook_wsgi):
        with pytest.raises(ConfigurationError, match=r"max_in_hand .* give a whole number of at least 1"):
            endpoint(shop, max_in_hand=bound)  # type: ignore[arg-type]


@contextmanager
def threading_wsgiref_server(app: Any) -> Iterator[int]:
    """wsgiref with a thread for each connection, as a development server runs: nothing of its own
    bounds its threads."""
    class Threaded(ThreadingMixIn, WSGIServer):
        daemon_threads = True

    class Quiet(WSGIRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, app, server_class=Threaded, handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_port
    finally:
        server.shutdown()
        server.server_close()
        thread.join(GUARD)


WSGI_SERVERS: dict[str, Callable[[Any], AbstractContextManager[int]]] = {
    # More threads than the bound: the ones left over refuse the rest at once.
    "waitress": lambda app: waitress_server(app, threads=4),
    "wsgiref-threaded": threading_wsgiref_server,
}


@pytest.mark.parametrize("server", list(WSGI_SERVERS))
def test_the_wsgi_endpoint_refuses_deliveries_beyond_its_bound_at_once(
        server: str, shop: PaymentService, provider: tuple[CountingFakePay, str], pg_url: str) -> None:
    """As the ASGI endpoint: with the ledger not answering, a delivery beyond `max_in_hand` is
    answered 503 with `Retry-After` at once (before, it waited for a thread, or took one more, for
    as long as the ledger did not answer), and the ones held are applied once it answers."""
    app, _ = provider
    bound = 2
    payments = [shop.sale("fakepay", Money.of("30.00", "EUR"), source="tok_ok") for _ in range(bound + 1)]
    deliveries = [app.event(f"evt_wsgi_{n}", EventKind.REFUNDED, p.reference or "", total=1000)
                  for n, p in enumerate(payments)]
    seen: list[tuple[str, str]] = []
    endpoint = webhook_wsgi(shop, max_in_hand=bound, observe=lambda method, status: seen.append((method, status)))
    dsn, schema = pg_url.split("?schema=")
    answers: dict[int, tuple[int, bytes]] = {}

    def deliver(n: int) -> None:
        status, _, text = send(port, "POST", "/webhooks/fakepay", deliveries[n][1], deliveries[n][0])
        answers[n] = (status, text)

    with WSGI_SERVERS[server](endpoint) as port, psycopg.connect(dsn) as holder:
        holder.execute(f'SET search_path TO "{schema}"')
        holder.execute("SELECT id FROM paywire_payments WHERE id = ANY(%s) FOR UPDATE", ([p.id for p in payments],))
        senders = [threading.Thread(target=deliver, args=(n,)) for n in range(bound)]
        for sender in senders:
            sender.start()
        wait_until(lambda: _waiting_on(dsn, holder.info.backend_pid) == bound, "the held deliveries wait")

        # Answered while the held ones still wait (send's timeout turns a wait for them into a failure).
        status, headers, text = send(port, "POST", "/webhooks/fakepay", deliveries[bound][1], deliveries[bound][0])
        assert (status, headers.get("retry-after"), json.loads(text)) == (503, str(RETRY_AFTER), {"error": "busy"})
        assert shop.ledger.get_event("fakepay", f"evt_wsgi_{bound}") is None

        holder.commit()
        for sender in senders:
            sender.join(GUARD * 2)
        assert sorted(answers) == list(range(bound))
        assert all((s, json.loads(t)["status"]) == (200, "applied") for s, t in answers.values()), answers
        status, _, text = send(port, "POST", "/webhooks/fakepay", deliveries[bound][1], deliveries[bound][0])
        assert (status, json.loads(text)["status"]) == (200, "applied")  # delivered again: room now
    for payment in payments:
        assert shop.get_payment(payment.id).refunded == Money.of("10.00", "EUR")
    assert sorted(seen) == sorted([("fakepay", "applied")] * (bound + 1) + [("fakepay", "unavailable")])


def test_healthz_and_metrics_say_when_the_endpoint_holds_as_many_deliveries_as_it_takes(
        shop: PaymentService, provider: tuple[CountingFakePay, str], pg_url: str) -> None:
    """At the bound every delivery is refused while the ledger still answers `/healthz`'s check
    (here a payment's row held, nothing else): the check says so (503, with the count), and
    `/metrics` shows it, until the held delivery is answered."""
    app, _ = provider
    payment = shop.sale("fakepay", Money.of("30.00", "EUR"), source="tok_ok")
    headers, body = app.event("evt_full", EventKind.REFUNDED, payment.reference or "", total=1000)
    metrics = Metrics()
    dsn, schema = pg_url.split("?schema=")
    answers: list[tuple[int, bytes]] = []

    def deliver() -> None:
        status, _, text = send(port, "POST", "/webhooks/fakepay", body, headers)
        answers.append((status, text))

    with uvicorn_server(serve_app(shop, janitor=None, metrics=metrics, max_in_hand=1)) as port, \
            psycopg.connect(dsn) as holder:
        status, _, text = send(port, "GET", "/healthz")
        assert (status, json.loads(text)["webhooks"]) == (200, {"in_hand": 0, "max_in_hand": 1})
        holder.execute(f'SET search_path TO "{schema}"')
        holder.execute("SELECT id FROM paywire_payments WHERE id = %s FOR UPDATE", (payment.id,))
        sender = threading.Thread(target=deliver)
        sender.start()
        wait_until(lambda: _waiting_on(dsn, holder.info.backend_pid) == 1, "the delivery waits")

        status, _, text = send(port, "GET", "/healthz")
        health = json.loads(text)
        assert (status, health["status"], health["webhooks"]) == (503, "unhealthy", {"in_hand": 1, "max_in_hand": 1})
        assert health["ledger"]["writable"]  # the ledger's check alone would have said ready
        exposition = send(port, "GET", "/metrics")[2].decode()
        assert (metric(exposition, "paywire_webhooks_in_hand"), metric(exposition, "paywire_webhooks_max_in_hand")) \
            == (1, 1)

        holder.commit()
        sender.join(GUARD * 2)
        assert [(s, json.loads(t)["status"]) for s, t in answers] == [(200, "applied")]
        status, _, text = send(port, "GET", "/healthz")
        assert (status, json.loads(text)["webhooks"]) == (200, {"in_hand": 0, "max_in_hand": 1})
        assert metric(send(port, "GET", "/metrics")[2].decode(), "paywire_webhooks_in_hand") == 0


def test_bodies_still_arriving_count_against_the_asgi_bound(shop: PaymentService) -> None:
    """A body being read is held in memory until it is whole (`body_timeout` at most): without
    counting those, a flood of senders each trickling a body up to `max_body` held that much
    memory each, as many as the process had file descriptors for, while `in_hand` said 0. With
    the bound reached by bodies arriving, one more is answered 503 at once."""
    bound = 2
    endpoint = webhook_asgi(shop, max_in_hand=bound, body_timeout=300)
    limit = 1024 * 1024
    trickling: list[http.client.HTTPConnection] = []
    with uvicorn_server(endpoint) as port:
        try:
            for _ in range(bound):
                conn = http.client.HTTPConnection("127.0.0.1", port, timeout=GUARD)
                conn.putrequest("POST", "/webhooks/fakepay")
                conn.putheader("Content-Length", str(limit))
                conn.putheader("Content-Type", "application/json")
                conn.endheaders()
                conn.send(b"{" * (limit - 1))  # all but its last byte: the endpoint holds what came
                trickling.append(conn)
            wait_until(lambda: endpoint.in_hand == bound, "the bodies arriving are counted")
            status, headers, text = send(port, "POST", "/webhooks/fakepay", b"{}", {"content-type": "application/json"})
            assert (status, headers.get("retry-after"), json.loads(text)) == (503, str(RETRY_AFTER), {"error": "busy"})
        finally:
            for conn in trickling:
                conn.close()
        wait_until(lambda: endpoint.in_hand == 0, "a sender gone frees its room")
