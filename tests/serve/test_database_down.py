"""`paywire serve`'s application while its PostgreSQL ledger is really gone (a proxy in front of
the server, taken down and brought back): /healthz says so and recovers, the refusals that need
no ledger still answer as they do, and a delivery that cannot be stored is answered so that the
provider delivers it again, then applied once the database is back."""

from __future__ import annotations

import json
import signal
import socket
import threading
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from paywire import EventKind, Money, Payment
from paywire.ledger import Ledger, open_ledger
from paywire.serve.app import serve_app
from paywire.serve.janitor import Janitor
from paywire.serve.metrics import Metrics
from paywire.service import PaymentService
from paywire.web import RETRY_AFTER, handle_webhook, webhook_wsgi
from tests.ledger.fakepay import make_gateway
from tests.ledger.support import FAST, PATIENT, step_past_life, wait_until
from tests.serve.dbproxy import DatabaseProxy
from tests.serve.servers import uvicorn_server, waitress_server
from tests.serve.support import CountingFakePay, ServeProcess, metric, serving, write_config
from tests.serve.test_endpoints import send

pytestmark = pytest.mark.postgres
LIMIT = 4096


@pytest.fixture
def proxy(postgres_dsn: str) -> Iterator[DatabaseProxy]:
    proxy = DatabaseProxy(postgres_dsn)
    yield proxy
    proxy.close()


@pytest.fixture
def worker(provider: tuple[CountingFakePay, str], pg_url: str, proxy: DatabaseProxy,
           pg_ledger: Ledger) -> Iterator[PaymentService]:
    """A worker whose ledger (the shop's schema) is reached through the proxy."""
    ledger = open_ledger(f"{proxy.dsn}?schema={pg_url.split('?schema=')[1]}")
    gateway = make_gateway(provider[1], **PATIENT)  # its Janitor's reads: answered however loaded the machine
    yield PaymentService(gateway, ledger, margin=0)
    gateway.close()
    ledger.close()


def test_healthz_fails_while_the_database_is_down_and_recovers_when_it_is_back(
        worker: PaymentService, proxy: DatabaseProxy) -> None:
    with uvicorn_server(serve_app(worker, janitor=None, metrics=Metrics())) as port:
        assert send(port, "GET", "/healthz")[0] == 200
        proxy.down()
        for _ in range(3):  # each executor thread's connection is gone, and no new one is made
            status, _, body = send(port, "GET", "/healthz")
            ledger = json.loads(body)["ledger"]
            assert status == 503 and "server closed the connection" in ledger.pop("reason"), ledger
            assert ledger == {"reachable": False, "error": "OperationalError"}
        proxy.up()
        status, _, body = send(port, "GET", "/healthz")
        assert status == 200 and json.loads(body)["status"] == "ok"


def test_healthz_keeps_one_connection_to_the_ledger(worker: PaymentService, proxy: DatabaseProxy) -> None:
    """Checks come every few seconds for as long as the server runs: they reuse one connection
    rather than open one each (a PostgreSQL backend started and ended per check)."""
    with uvicorn_server(serve_app(worker, janitor=None, metrics=Metrics())) as port:
        before = proxy.connections
        for _ in range(5):
            assert send(port, "GET", "/healthz")[0] == 200
        assert proxy.connections - before <= 1


def test_refusals_that_need_no_ledger_answer_while_it_is_down(worker: PaymentService, proxy: DatabaseProxy) -> None:
    with uvicorn_server(serve_app(worker, janitor=None, metrics=Metrics(), max_body=LIMIT)) as port:
        proxy.down()
        big = b"{" + b" " * LIMIT + b"}"
        assert send(port, "POST", "/webhooks/fakepay", big, {"content-type": "application/json"})[0] == 413
        assert send(port, "POST", "/webhooks/fakepay", iter([b"{", b" " * LIMIT, b"}"]), chunked=True)[0] == 413
        assert send(port, "GET", "/webhooks/fakepay")[0] == 405
        assert send(port, "POST", "/webhooks/nopay", b"{}")[0] == 404
        assert send(port, "POST", "/webhooks/fakepay", b"{}", {"FakePay-Signature": "00"})[0] == 400
        assert send(port, "GET", "/metrics")[0] == 200


def test_a_delivery_the_ledger_cannot_store_is_redelivered_and_then_applied_once(
        worker: PaymentService, shop: PaymentService, answered: PaymentService, proxy: DatabaseProxy,
        provider: tuple[CountingFakePay, str]) -> None:
    app, _ = provider
    payment = answered.sale("fakepay", Money.of("30.00", "EUR"), source="tok_ok")
    headers, body = app.event("evt_down", EventKind.REFUNDED, payment.reference or "", total=1000)
    metrics = Metrics()
    with uvicorn_server(serve_app(worker, janitor=None, metrics=metrics)) as port:
        proxy.down()
        status, _, text = send(port, "POST", "/webhooks/fakepay", body, headers)
        assert (status, json.loads(text)) == (503, {"error": "ledger_unavailable"})  # the provider delivers it again
        proxy.up()
        assert shop.ledger.get_event("fakepay", "evt_down") is None
        status, _, text = send(port, "POST", "/webhooks/fakepay", body, headers)
        assert (status, json.loads(text)["status"]) == (200, "applied")
        exposition = metrics.exposition().decode()
    assert shop.get_payment(payment.id).refunded == Money.of("10.00", "EUR")
    assert metric(exposition, "paywire_webhooks_total", method="fakepay", status="unavailable") == 1
    assert metric(exposition, "paywire_webhooks_total", method="fakepay", status="error") == 0  # no fault of ours
    assert metric(exposition, "paywire_webhooks_total", method="fakepay", status="applied") == 1


PASSWORD = "pw-never-logged-4f1c"  # PostgreSQL's trust authentication takes it and ignores it


@pytest.mark.parametrize("form", ["refused", "dropped", "dropped_mid_unit", "terminated"])
def test_a_delivery_while_the_database_is_unavailable_is_answered_503_in_one_line(
        form: str, shop: PaymentService, answered: PaymentService,
        pg_url: str, proxy: DatabaseProxy, provider: tuple[CountingFakePay, str],
        caplog: pytest.LogCaptureFixture) -> None:
    """Each way the database goes out of reach, as psycopg reports it through the service: a
    connection refused (nothing listens), one dropped while idle between deliveries, one dropped
    while a unit waits for its answer, one the server ended (as at its shutdown: "terminating
    connection due to administrator command") while it takes no new ones. The endpoint answers
    503 with a typed code, and logs one line without a stack trace or the DSN's password; nothing
    is stored."""
    app, url = provider
    payment = answered.sale("fakepay", Money.of("30.00", "EUR"), source="tok_ok")
    ledger = open_ledger(f"{proxy.dsn.replace('postgres@', f'postgres:{PASSWORD}@')}?schema={pg_url.split('?schema=')[1]}")
    gateway = make_gateway(url, **FAST)
    worker = PaymentService(gateway, ledger, margin=0)
    seen: list[tuple[str, str]] = []
    endpoint = ThreadPoolExecutor(1)  # one thread, keeping its connection between deliveries as a server's does

    def deliver(event_id: str, total: int) -> Future[tuple[int, list[tuple[str, str]], bytes]]:
        headers, body = app.event(event_id, EventKind.REFUNDED, payment.reference or "", total=total)
        return endpoint.submit(handle_webhook, worker, "fakepay", headers, body,
                               lambda method, status: seen.append((method, status)))

    try:
        if form == "refused":
            proxy.close()  # nothing listens there now: the endpoint's thread connects for the first time
        else:
            assert deliver("evt_before", 500).result(30)[0] == 200  # the thread's connection, kept
            seen.clear()
        caplog.clear()
        if form == "dropped_mid_unit":
            proxy.stall()
            answer = deliver("evt_down", 1000)
            wait_until(lambda: proxy.held > 0, "the delivery's unit waits for the database's answer")
            proxy.down()
        else:
            if form == "dropped":
                proxy.down()
            elif form == "terminated":
                import psycopg

                backend = endpoint.submit(lambda: ledger.connection().info.backend_pid).result(30)  # type: ignore[attr-defined]
                with psycopg.connect(pg_url.split("?schema=")[0], autocommit=True) as admin:
                    assert admin.execute("SELECT pg_terminate_backend(%s)", (backend,)).fetchone() == (True,)
                # A server that ended its connections and takes no new ones (shutting down): the
                # thread's connection is replaced once, and that connect is refused, whether the
                # server's goodbye or the proxy's close reaches the thread first.
                proxy.close()
            answer = deliver("evt_down", 1000)
        status, _, text = answer.result(30)
    finally:
        endpoint.shutdown()
        gateway.close()
        ledger.close()
    assert (status, json.loads(text)) == (503, {"error": "ledger_unavailable"})
    assert seen == [("fakepay", "unavailable")]
    (record,) = [r for r in caplog.records if r.name.startswith("paywire")]
    assert record.levelname == "WARNING" and record.exc_info is None, record.getMessage()
    assert "webhook for fakepay not stored: the ledger's database is unavailable" in record.getMessage()
    assert "\n" not in record.getMessage() and PASSWORD not in caplog.text
    assert shop.ledger.get_event("fakepay", "evt_down") is None


def test_a_fault_that_is_not_the_database_being_away_is_still_a_500_with_its_trace(
        shop: PaymentService, answered: PaymentService, pg_url: str, provider: tuple[CountingFakePay, str],
        caplog: pytest.LogCaptureFixture) -> None:
    """The database answers, with an error that is ours to fix (a table missing): 500, logged
    with its stack trace, counted as an error."""
    import psycopg

    app, _ = provider
    payment = answered.sale("fakepay", Money.of("30.00", "EUR"), source="tok_ok")
    headers, body = app.event("evt_fault", EventKind.REFUNDED, payment.reference or "", total=1000)
    dsn, schema = pg_url.split("?schema=")
    seen: list[str] = []
    with psycopg.connect(dsn, autocommit=True) as admin:
        admin.execute(f'ALTER TABLE "{schema}".paywire_events RENAME TO paywire_events_gone')
        try:
            caplog.clear()
            status, _, text = handle_webhook(shop, "fakepay", headers, body, lambda _, status: seen.append(status))
        finally:
            admin.execute(f'ALTER TABLE "{schema}".paywire_events_gone RENAME TO paywire_events')
    assert (status, json.loads(text), seen) == (500, {"error": "internal_error"}, ["error"])
    (record,) = [r for r in caplog.records if r.name.startswith("paywire")]
    assert record.levelname == "ERROR" and record.exc_info is not None


def test_the_webhook_counter_counts_every_concurrent_delivery_once(
        shop: PaymentService, answered: PaymentService, provider: tuple[CountingFakePay, str]) -> None:
    app, _ = provider
    payment = answered.sale("fakepay", Money.of("30.00", "EUR"), source="tok_ok")
    deliveries = [app.event(f"evt_{n}", EventKind.REFUNDED, payment.reference or "", total=100 * (n + 1))
                  for n in range(4)] * 3
    metrics = Metrics()
    start = threading.Barrier(len(deliveries))
    answers: list[int] = []
    with uvicorn_server(serve_app(shop, janitor=None, metrics=metrics)) as port:
        def deliver(headers: dict[str, str], body: bytes) -> None:
            start.wait()
            answers.append(send(port, "POST", "/webhooks/fakepay", body, headers)[0])

        threads = [threading.Thread(target=deliver, args=d) for d in deliveries]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        status, _, text = send(port, "GET", "/metrics")
        assert status == 200
    assert answers == [200] * len(deliveries)
    exposition = text.decode()
    assert metric(exposition, "paywire_webhooks_total", method="fakepay", status="applied") == 4
    assert metric(exposition, "paywire_webhooks_total", method="fakepay", status="duplicate") == 8
    assert shop.get_payment(payment.id).refunded == Money.of("4.00", "EUR")


def test_an_event_for_a_payment_still_being_made_in_another_worker_is_stored_then_applied_once(
        shop: PaymentService, answered: PaymentService, provider: tuple[CountingFakePay, str]) -> None:
    """The sale's answer is held at the provider (made, not yet answered): its event reaches the
    endpoint before the ledger knows the payment's reference, and is stored (202); the sale's
    answer then names the payment, and the event is applied with it, once."""
    from paywire.testing.emulator import Fault

    app, _ = provider
    app.inject(Fault("hold", method="POST", path="/v1/payments$"))
    made: list[Payment] = []
    caller = threading.Thread(target=lambda: made.append(answered.sale("fakepay", Money.of("30.00", "EUR"),
                                                                       source="tok_ok")))
    caller.start()
    with uvicorn_server(serve_app(shop, janitor=None, metrics=Metrics())) as port:
        try:
            assert app.wait_until_held()
            (reference,) = app.payments
            headers, body = app.event("evt_early", EventKind.REFUNDED, reference, total=1000)
            status, _, text = send(port, "POST", "/webhooks/fakepay", body, headers)
            assert (status, json.loads(text)["status"]) == (202, "unmatched")
        finally:
            app.release_held()
            caller.join(60)
        (payment,) = made
        stored = shop.ledger.get_event("fakepay", "evt_early")
        assert stored is not None and stored.status == "applied"
        status, _, text = send(port, "POST", "/webhooks/fakepay", body, headers)
        assert (status, json.loads(text)["status"]) == (200, "duplicate")
    assert shop.get_payment(payment.id).refunded == Money.of("10.00", "EUR")


def test_healthz_answers_503_while_the_database_stops_answering_and_recovers(
        worker: PaymentService, proxy: DatabaseProxy) -> None:
    """A network that drops the database's packets: the ledger neither answers nor fails. /healthz
    says so within its wait (it never hangs with the ledger, nor piles threads up waiting for it),
    and answers 200 again once the database does."""
    with uvicorn_server(serve_app(worker, janitor=None, metrics=Metrics())) as port:
        assert send(port, "GET", "/healthz")[0] == 200
        proxy.stall()
        try:
            for _ in range(3):
                status, _, body = send(port, "GET", "/healthz")
                assert status == 503 and json.loads(body)["ledger"] == {"reachable": False,
                                                                        "error": "no_answer"}
        finally:
            proxy.up()
        # the question in flight is answered now; the checks after it say so
        wait_until(lambda: send(port, "GET", "/healthz")[0] == 200, "/healthz follows the database back")


def _serving_through(proxy: DatabaseProxy, pg_url: str, url: str, plugin_path: Path, tmp_path: Path,
                     serve: dict[str, object], args: Sequence[str] = ()) -> ServeProcess:
    """`paywire serve` (not started yet) with `serve` options, its ledger the test's PostgreSQL
    schema reached through `proxy`, so that the test can stall or drop its database."""
    ledger_url = f"{proxy.dsn}?schema={pg_url.split('?schema=')[1]}"
    config = write_config(tmp_path / "paywire.toml", url, ledger_url, serve=serve)
    return ServeProcess(config, plugin_path, args)


@pytest.mark.slow
def test_sigterm_while_the_database_stops_answering_exits_0(
        shop: PaymentService, provider: tuple[CountingFakePay, str], pg_url: str, proxy: DatabaseProxy,
        plugin_path: Path, tmp_path: Path) -> None:
    """`paywire serve` whose database stops answering after a /healthz asked it: the check's
    thread waits on it for good, and must not keep the process from exiting on SIGTERM (the
    Janitor, stuck the same way, is left behind after `graceful_timeout`)."""
    _, url = provider
    server = _serving_through(proxy, pg_url, url, plugin_path, tmp_path,
                              {"graceful_timeout": 1, "interval": 0.2, "stale_after": 300})
    try:
        server.wait_healthy()
        proxy.stall()
        status, _, body = server.request("GET", "/healthz")
        assert status == 503 and json.loads(body)["ledger"]["reachable"] is False
        assert server.terminate() == 0, "".join(server.stderr)
        assert "paywire serve stopped" in "".join(server.stderr)
    finally:
        server.kill()
        proxy.up()


@pytest.mark.slow
def test_sigterm_while_a_webhook_waits_on_a_database_that_stopped_answering_exits_0(
        shop: PaymentService, answered: PaymentService,
        provider: tuple[CountingFakePay, str], pg_url: str, proxy: DatabaseProxy,
        plugin_path: Path, tmp_path: Path) -> None:
    """The webhook's unit waits on a database that stopped answering: after `graceful_timeout`
    the process exits 0 without it (its thread is left behind), having answered the delivery no
    2xx, which it says in one warning line naming the method (an expected way to stop, no fault:
    no stack trace). Nothing of it was applied (its unit never committed: PostgreSQL rolls it back
    when the connection goes), and the provider's redelivery to the next process applies it, once."""
    app, url = provider
    payment = answered.sale("fakepay", Money.of("30.00", "EUR"), source="tok_ok")
    headers, body = app.event("evt_stalled", EventKind.REFUNDED, payment.reference or "", total=1000)
    server = _serving_through(proxy, pg_url, url, plugin_path, tmp_path, {"graceful_timeout": 1}, ["--no-janitor"])
    answers: list[object] = []

    def deliver() -> None:
        try:
            answers.append(server.request("POST", "/webhooks/fakepay", body, headers, timeout=120)[0])
        except OSError as exc:  # the server closed the connection at shutdown
            answers.append(exc)

    sender = threading.Thread(target=deliver)
    try:
        server.wait_healthy()
        # a first delivery: the endpoint's thread keeps its connection, which the next one uses
        first_headers, first_body = app.event("evt_first", EventKind.REFUNDED, payment.reference or "", total=500)
        assert server.request("POST", "/webhooks/fakepay", first_body, first_headers)[0] == 200
        proxy.stall()
        sender.start()
        wait_until(lambda: proxy.held > 0, "the webhook's unit waits on the database")
        server.proc.send_signal(signal.SIGTERM)
        assert server.exit_code(60) == 0, "".join(server.stderr)
        assert "paywire serve stopped" in "".join(server.stderr)
    finally:
        server.kill()
        proxy.up()
        if sender.ident is not None:
            sender.join(60)
    stderr = "".join(server.stderr)
    left = [line for line in server.stderr if "webhook for fakepay" in line]
    assert len(left) == 1, stderr
    assert "WARNING" in left[0] and "no 2xx" in left[0] and "delivered again" in left[0], stderr
    assert "Traceback" not in stderr and "CancelledError" not in stderr and "Exception in ASGI" not in stderr, stderr
    (answer,) = answers
    assert isinstance(answer, OSError) or not 200 <= int(answer) < 300, answer  # type: ignore[call-overload]
    assert shop.ledger.get_event("fakepay", "evt_stalled") is None
    assert shop.get_payment(payment.id).refunded == Money.of("5.00", "EUR")  # the first delivery only
    with serving(tmp_path / "paywire.toml", plugin_path, ["--no-janitor"]) as again:  # delivered again, same config
        status, _, text = again.request("POST", "/webhooks/fakepay", body, headers)
        assert (status, json.loads(text)["status"]) == (200, "applied")
        status, _, text = again.request("POST", "/webhooks/fakepay", body, headers)
        assert (status, json.loads(text)["status"]) == (200, "duplicate")
    assert shop.get_payment(payment.id).refunded == Money.of("10.00", "EUR")


def test_a_webhook_cancelled_while_its_unit_waits_says_so_in_one_line_and_ends_cancelled(
        worker: PaymentService, shop: PaymentService, answered: PaymentService,
        proxy: DatabaseProxy, provider: tuple[CountingFakePay, str],
        caplog: pytest.LogCaptureFixture) -> None:
    """The ASGI endpoint's request cancelled (as uvicorn cancels it when its graceful timeout runs
    out) while its unit waits on a database that stopped answering: one warning line naming the
    method, and the cancellation goes on to whoever cancelled (the request ends cancelled, not
    answered), so a server or framework that mounts the endpoint stops as it means to."""
    import asyncio

    from paywire.web import webhook_asgi

    app, _ = provider
    payment = answered.sale("fakepay", Money.of("30.00", "EUR"), source="tok_ok")
    headers, body = app.event("evt_cancelled", EventKind.REFUNDED, payment.reference or "", total=1000)
    endpoint = webhook_asgi(worker)
    sent: list[object] = []

    async def request() -> asyncio.Task[None]:
        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: object) -> None:
            sent.append(message)

        scope = {"type": "http", "method": "POST", "path": "/webhooks/fakepay",
                 "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
        task = asyncio.create_task(endpoint(scope, receive, send))  # type: ignore[arg-type]
        await asyncio.to_thread(wait_until, lambda: proxy.held > 0, "the webhook's unit waits on the database")
        caplog.clear()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return task

    proxy.stall()
    try:
        task = asyncio.run(request())
    finally:
        proxy.up()
    assert task.cancelled() and sent == []
    (record,) = [r for r in caplog.records if r.name.startswith("paywire")]
    assert record.levelname == "WARNING" and record.exc_info is None, record.getMessage()
    assert record.getMessage().startswith("webhook for fakepay left unfinished")
    assert "no 2xx" in record.getMessage() and "delivered again" in record.getMessage()
    # the thread left behind finishes once the database answers (here, as the process goes on):
    # its unit commits, so the provider's delivery again is a duplicate
    wait_until(lambda: shop.ledger.get_event("fakepay", "evt_cancelled") is not None, "the unit left behind ends")


@pytest.mark.slow
def test_sigterm_while_a_webhook_is_mid_unit_finishes_it_then_exits_0(
        shop: PaymentService, answered: PaymentService,
        provider: tuple[CountingFakePay, str], pg_url: str, proxy: DatabaseProxy,
        plugin_path: Path, tmp_path: Path) -> None:
    """SIGTERM arrives while a delivery's unit waits for the database's answer, which then comes
    within `graceful_timeout`: the server, no longer accepting connections, finishes the delivery
    (200, applied) and exits 0."""
    app, url = provider
    payment = answered.sale("fakepay", Money.of("30.00", "EUR"), source="tok_ok")
    headers, body = app.event("evt_graceful", EventKind.REFUNDED, payment.reference or "", total=1000)
    server = _serving_through(proxy, pg_url, url, plugin_path, tmp_path, {"graceful_timeout": 60}, ["--no-janitor"])
    answers: list[tuple[int, bytes]] = []

    def refused() -> bool:
        try:
            socket.create_connection(("127.0.0.1", server.port), timeout=5).close()
        except OSError:
            return True
        return False

    sender = threading.Thread(target=lambda: answers.append(
        server.request("POST", "/webhooks/fakepay", body, headers, timeout=120)[::2]))
    try:
        server.wait_healthy()
        proxy.stall()
        sender.start()
        wait_until(lambda: proxy.held > 0, "the webhook's unit waits on the database")
        server.proc.send_signal(signal.SIGTERM)
        wait_until(refused, "the server stops accepting connections: it is shutting down")
        proxy.up()
        sender.join(60)
        assert server.exit_code(60) == 0, "".join(server.stderr)
    finally:
        server.kill()
        proxy.up()
        if sender.ident is not None:
            sender.join(60)
    ((status, text),) = answers
    assert (status, json.loads(text)["status"]) == (200, "applied")
    assert shop.get_payment(payment.id).refunded == Money.of("10.00", "EUR")


def test_closing_the_ledger_never_frees_a_connection_a_unit_waits_in(
        worker: PaymentService, proxy: DatabaseProxy) -> None:
    """`paywire serve` closes the ledger at shutdown while a webhook's unit left behind (a daemon
    thread) may still wait on a database that stopped answering. That connection is not freed
    under the thread waiting in it (libpq read freed memory once the database answered: the unit
    failed with "out of memory"): the unit ends on it as it would have, and the next one connects
    again."""
    ledger = worker.ledger
    connected, go = threading.Event(), threading.Event()
    ended: list[BaseException] = []
    dropped: list[bool] = []

    def unit() -> None:
        try:
            ledger.schema_version()  # this thread's connection, made while the database answers
            kept = ledger.connection()  # type: ignore[attr-defined]
            connected.set()
            go.wait()
            with ledger.unit() as u:
                u.payment("pay_none", lock=True)
            ledger.schema_version()  # its next question: on a new connection, the old one closed
            dropped.append(kept.closed and ledger.connection() is not kept)  # type: ignore[attr-defined]
        except BaseException as exc:  # what the test looks at
            ended.append(exc)

    waiting = threading.Thread(target=unit, daemon=True)
    waiting.start()
    try:
        assert connected.wait(30)
        proxy.stall()
        go.set()
        wait_until(lambda: proxy.held > 0, "the unit waits on the database")
        ledger.close()
    finally:
        proxy.up()
        waiting.join(30)
    assert not waiting.is_alive() and ended == [] and dropped == [True], ended
    assert ledger.schema_version() >= 5  # the ledger connects again after close()


def test_the_janitor_says_in_one_line_that_the_database_is_unavailable(
        worker: PaymentService, proxy: DatabaseProxy, caplog: pytest.LogCaptureFixture) -> None:
    """Each pass while the database refuses connections fails: one warning line each, not a
    stack trace every `interval` for as long as the outage lasts."""
    janitor = Janitor(worker, interval=0.05)
    proxy.down()
    janitor.start()
    try:
        wait_until(lambda: sum(r.name == "paywire.janitor" for r in caplog.records) >= 2, "two passes failed")
    finally:
        janitor.stop(30)
    assert not janitor.running
    records = [r for r in caplog.records if r.name == "paywire.janitor"]
    assert all(r.levelname == "WARNING" and r.exc_info is None for r in records), [r.getMessage() for r in records]
    assert "a reconcile pass could not reach the ledger's database" in records[0].getMessage()


def test_a_pass_that_loses_the_database_ends_in_one_line_instead_of_trying_every_payment(
        answered: PaymentService, worker: PaymentService, provider: tuple[CountingFakePay, str], proxy: DatabaseProxy,
        caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch) -> None:
    """The database going away during a pass made the Janitor try each due payment in turn, each
    waiting for a connection and logging two lines, and then the stored events: a long pass and a
    flood of lines per pass for as long as the outage lasted. The pass ends at the first payment
    the ledger could not be reached for; the next one tries again."""
    app, _ = provider
    payments = [answered.sale("fakepay", Money.of(f"{i}.00", "EUR"), source="tok_pending") for i in (1, 2, 3)]
    txns = [t for p in payments for t in answered.list_transactions(p.id)]
    step_past_life(worker, [t.id for t in txns], monkeypatch)  # on the Janitor's clock
    for payment in payments:
        app.decide(payment.reference or "")

    class Janitor_(Janitor):
        def due(self, at: Any) -> Any:  # the database goes away once the due payments are read
            found = super().due(at)
            proxy.down()
            return found

    report = Janitor_(worker).run_pass()
    assert len(report.errors) == 1 and report.errors[0][0] in {p.id for p in payments}
    assert not report.settled
    lines = [r.getMessage() for r in caplog.records if r.name == "paywire.janitor"]
    assert len(lines) == 1 and "could not reach the ledger's database" in lines[0], lines
    proxy.up()
    report = Janitor(worker).run_pass()  # the claim never reached the database: no lease holds them back
    assert {s.payment_id for s in report.settled} == {p.id for p in payments}


@pytest.mark.parametrize("server", ["uvicorn", "waitress"])
def test_every_503_says_when_to_deliver_again(server: str, worker: PaymentService, proxy: DatabaseProxy,
                                               provider: tuple[CountingFakePay, str]) -> None:
    """A delivery the ledger could not store is answered 503 with `Retry-After`, as one refused for
    want of room is: a provider (or a proxy in front of the endpoint) that honours it waits that
    long rather than its own schedule's guess."""
    app, _ = provider
    headers, body = app.event("evt_retry_after", EventKind.REFUNDED, "pay_unknown", total=1000)
    served = (uvicorn_server(serve_app(worker, janitor=None, metrics=Metrics())) if server == "uvicorn"
              else waitress_server(webhook_wsgi(worker)))
    with served as port:
        proxy.down()
        status, answered, text = send(port, "POST", "/webhooks/fakepay", body, headers)
    assert (status, answered.get("retry-after"), json.loads(text)) == (503, str(RETRY_AFTER),
                                                                        {"error": "ledger_unavailable"})
