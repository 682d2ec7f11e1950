"""The ASGI endpoint under uvicorn and the WSGI endpoint under waitress, over loopback: concurrent
duplicate deliveries apply once, oversized bodies are refused before they are read (declared or
chunked), other HTTP methods get 405, unknown methods and paths 404."""

from __future__ import annotations

import http.client
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import pytest

from paywire import EventKind, Money
from paywire.service import PaymentService
from paywire.web import webhook_asgi, webhook_wsgi
from tests.serve.servers import uvicorn_server, waitress_server
from tests.serve.support import CountingFakePay

pytestmark = [pytest.mark.postgres, pytest.mark.patient]  # its requests need answers, not a short life
LIMIT = 4096
Server = Callable[[PaymentService], AbstractContextManager[int]]
SERVERS: dict[str, Server] = {
    "uvicorn": lambda service: uvicorn_server(webhook_asgi(service, max_body=LIMIT)),
    "waitress": lambda service: waitress_server(webhook_wsgi(service, max_body=LIMIT)),
}


@pytest.fixture(params=list(SERVERS))
def port(request: pytest.FixtureRequest, shop: PaymentService) -> Iterator[int]:
    with SERVERS[request.param](shop) as port:
        yield port


def send(port: int, verb: str, path: str, body: Any = b"", headers: dict[str, str] | None = None,
         chunked: bool = False) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    try:
        conn.request(verb, path, body=body, headers=headers or {}, encode_chunked=chunked)
        response = conn.getresponse()
        return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()
    finally:
        conn.close()


def test_concurrent_duplicate_deliveries_apply_once(port: int, shop: PaymentService,
                                                    provider: tuple[CountingFakePay, str]) -> None:
    app, _ = provider
    payment = shop.sale("fakepay", Money.of("30.00", "EUR"), source="tok_ok")
    headers, body = app.event("evt_dup", EventKind.REFUNDED, payment.reference or "", total=1000)
    start = threading.Barrier(8)
    answers: list[tuple[int, str]] = []

    def deliver() -> None:
        start.wait()
        status, _, text = send(port, "POST", "/webhooks/fakepay", body, headers)
        answers.append((status, json.loads(text)["status"]))

    threads = [threading.Thread(target=deliver) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert sorted(answers) == [(200, "applied")] + [(200, "duplicate")] * 7
    assert shop.get_payment(payment.id).refunded == Money.of("10.00", "EUR")


def test_oversized_bodies_are_refused(port: int, provider: tuple[CountingFakePay, str]) -> None:
    big = b"{" + b" " * LIMIT + b"}"
    status, _, text = send(port, "POST", "/webhooks/fakepay", big, {"content-type": "application/json"})
    assert status == 413 and json.loads(text) == {"error": "too_large", "limit": LIMIT}
    chunks = iter([b"{", b" " * LIMIT, b"}"])
    assert send(port, "POST", "/webhooks/fakepay", chunks, chunked=True)[0] == 413


@pytest.mark.parametrize("verb", ["GET", "PUT", "DELETE", "PATCH"])
def test_other_http_methods_are_refused(port: int, verb: str) -> None:
    status, headers, _ = send(port, verb, "/webhooks/fakepay")
    assert (status, headers.get("allow")) == (405, "POST")


@pytest.mark.parametrize("path", ["/webhooks/nopay", "/webhooks/", "/webhooks/fakepay/extra", "/elsewhere"])
def test_unknown_methods_and_paths_are_not_found(port: int, path: str) -> None:
    assert send(port, "POST", path, b"{}")[0] == 404


def test_a_body_that_does_not_verify_changes_nothing(port: int, shop: PaymentService,
                                                     provider: tuple[CountingFakePay, str]) -> None:
    app, _ = provider
    payment = shop.sale("fakepay", Money.of("30.00", "EUR"), source="tok_ok")
    headers, body = app.event("evt_forged", EventKind.REFUNDED, payment.reference or "", total=3000)
    assert send(port, "POST", "/webhooks/fakepay", body.replace(b"3000", b"2999"), headers)[0] == 400
    assert shop.ledger.get_event("fakepay", "evt_forged") is None
    assert shop.get_payment(payment.id).refunded == Money.of("0.00", "EUR")


@pytest.mark.parametrize("case", ["no_signature", "malformed", "empty", "bad_length"])
def test_a_delivery_missing_its_signature_or_malformed_is_a_clear_400_and_changes_nothing(
        port: int, shop: PaymentService, provider: tuple[CountingFakePay, str], case: str,
        caplog: pytest.LogCaptureFixture) -> None:
    import hashlib
    import hmac

    from tests.ledger.fakepay import WEBHOOK_SECRET

    app, _ = provider
    payment = shop.sale("fakepay", Money.of("30.00", "EUR"), source="tok_ok")
    headers, body = app.event("evt_bad", EventKind.REFUNDED, payment.reference or "", total=3000)
    if case == "no_signature":
        headers = {k: v for k, v in headers.items() if k.lower() != "fakepay-signature"}
    elif case in ("malformed", "empty"):
        body = b'{"id": "evt_bad", "kind": ' if case == "malformed" else b""
        headers = {**headers, "FakePay-Signature": hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()}
    if case == "bad_length":
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        conn.putrequest("POST", "/webhooks/fakepay")
        conn.putheader("Content-Length", "12x")
        for key, value in headers.items():
            conn.putheader(key, value)
        conn.endheaders()  # no body: one the server never reads would make its close a reset, not a FIN
        response = conn.getresponse()
        status, text = response.status, response.read()
        conn.close()
    else:
        status, _, text = send(port, "POST", "/webhooks/fakepay", body, headers)
    assert 400 <= status < 500, (status, text)
    if case != "bad_length":  # a Content-Length that is no number: the HTTP server's own 400
        assert set(json.loads(text)) == {"error"}
    assert shop.ledger.get_event("fakepay", "evt_bad") is None
    assert shop.get_payment(payment.id).refunded == Money.of("0.00", "EUR")
    assert WEBHOOK_SECRET not in caplog.text and "Traceback" not in caplog.text


@pytest.mark.parametrize("missing", [{"id": None}, {"id": ""}, {"type": None}, {"kind": None}],
                         ids=["no id", "empty id", "no type", "no kind"])
def test_a_verified_event_missing_its_id_type_or_kind_is_a_400_not_a_500_forever(
        port: int, shop: PaymentService, provider: tuple[CountingFakePay, str], missing: dict[str, Any],
        caplog: pytest.LogCaptureFixture) -> None:
    """The ledger keeps no event without an id, a type or a kind: each delivery failed storing it
    (500, a stack trace), and the provider delivers it again for days. An empty id is no id: stored,
    every later event without one was a duplicate, dropped with a 200."""
    import hashlib
    import hmac

    from tests.ledger.fakepay import WEBHOOK_SECRET

    app, _ = provider
    payment = shop.sale("fakepay", Money.of("30.00", "EUR"), source="tok_ok")
    _, signed = app.event("evt_missing", EventKind.REFUNDED, payment.reference or "", total=1000)
    body = json.dumps({**json.loads(signed), **missing}).encode()
    headers = {"FakePay-Signature": hmac.new(WEBHOOK_SECRET.encode(), body, hashlib.sha256).hexdigest()}
    for _ in range(2):
        status, _, text = send(port, "POST", "/webhooks/fakepay", body, headers)
        assert (status, json.loads(text)) == (400, {"error": "unstorable_event"})
    assert shop.ledger.list_events() == [] and shop.get_payment(payment.id).refunded == Money.of("0.00", "EUR")
    assert "Traceback" not in caplog.text


def test_a_ledger_that_fails_is_a_500_with_no_detail_and_its_trace_only_in_the_log(
        port: int, shop: PaymentService, provider: tuple[CountingFakePay, str], pg_url: str,
        caplog: pytest.LogCaptureFixture) -> None:
    """The provider delivers again after a 500; the answer carries nothing of the ledger's error,
    the log keeps its stack trace for the operator (redacted, as every paywire record is)."""
    import logging

    import psycopg

    app, _ = provider
    payment = shop.sale("fakepay", Money.of("30.00", "EUR"), source="tok_ok")
    headers, body = app.event("evt_lost", EventKind.REFUNDED, payment.reference or "", total=1000)
    dsn, schema = pg_url.split("?schema=")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
    with caplog.at_level(logging.INFO, logger="paywire"):
        status, _, text = send(port, "POST", "/webhooks/fakepay", body, headers)
    assert (status, json.loads(text)) == (500, {"error": "internal_error"})
    records = [r for r in caplog.records if r.name == "paywire.web"]
    assert records and all(r.exc_text and "Traceback" in r.exc_text for r in records)


def test_what_the_endpoint_and_the_worker_log_is_redacted(caplog: pytest.LogCaptureFixture, tmp_path: Path) -> None:
    """An error reaching the webhook endpoint may carry a credential or a card number in its
    text: the record, its message and its traceback, keep them masked, as every paywire record."""
    import logging

    from paywire.ledger import Ledger, SQLiteLedger
    from paywire.security import RedactingFilter, Secret
    from paywire.serve import janitor, server
    from paywire.web import handle_webhook

    token = Secret("ppl_access_token_9f8e7d6c5b4a")

    class Failing:
        def __init__(self, ledger: Ledger) -> None:
            self.ledger = ledger  # asked whether the error is its database being out of reach

        def receive_notification(self, method: str, headers: Any, body: bytes) -> Any:
            raise RuntimeError(f"verify failed: Authorization: Bearer {token.reveal()}, card 4242 4242 4242 4242")

    with caplog.at_level(logging.INFO, logger="paywire"), SQLiteLedger(tmp_path / "ledger.db") as ledger:
        status, _, _ = handle_webhook(Failing(ledger), "paypal", {}, b"{}")  # type: ignore[arg-type]
    logged = "\n".join(r.getMessage() + (r.exc_text or "") for r in caplog.records if r.name == "paywire.web")
    assert status == 500 and "Traceback" in logged and "RuntimeError" in logged
    assert token.reveal() not in logged and "4242 4242 4242 4242" not in logged
    for module in (janitor, server):  # the worker's own records go through the same filter
        assert any(isinstance(f, RedactingFilter) for f in module.log.filters), module.__name__


@pytest.mark.parametrize("sent", [b"", b'{"id": "evt_slow"'])
def test_a_body_that_stops_arriving_is_answered_408_and_the_connection_let_go(
        shop: PaymentService, sent: bytes) -> None:
    """A client that declares a body and stops sending it (a stalled or hostile sender) held its
    connection, and up to `max_body` bytes of buffer, for as long as it stayed connected: the
    whole body must arrive within `body_timeout`, or the answer is 408 and the connection is closed."""
    import socket

    with uvicorn_server(webhook_asgi(shop, max_body=LIMIT, body_timeout=0.5)) as port, \
            socket.create_connection(("127.0.0.1", port), timeout=60) as client:
        client.sendall(b"POST /webhooks/fakepay HTTP/1.1\r\nHost: shop\r\nContent-Type: application/json\r\n"
                       b"Content-Length: 100\r\n\r\n" + sent)
        answer = b""
        while chunk := client.recv(4096):  # until the server closes the connection
            answer += chunk
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408 "), answer
    assert json.loads(body) == {"error": "body_timeout"}


@pytest.mark.parametrize("kind", ["asgi", "wsgi"])
def test_a_delivery_to_a_method_no_configuration_names_is_logged_and_counted(
        shop: PaymentService, kind: str, caplog: pytest.LogCaptureFixture) -> None:
    """A provider's dashboard pointing at a mistyped URL: each delivery answered 404 said nothing
    (`paywire serve` keeps no access log), and the provider's events went nowhere unnoticed."""
    import logging

    from paywire.serve.metrics import Metrics
    from tests.serve.support import metric

    metrics = Metrics()
    metrics.label_methods(shop.gateway)
    observe = metrics.webhook
    server = (uvicorn_server(webhook_asgi(shop, observe=observe)) if kind == "asgi"
              else waitress_server(webhook_wsgi(shop, observe=observe)))
    with caplog.at_level(logging.WARNING, logger="paywire"), server as port:
        assert send(port, "POST", "/webhooks/fakepay_eu", b"{}")[0] == 404
        assert send(port, "GET", "/webhooks/fakepay_eu")[0] == 404  # not a delivery: no line
        assert send(port, "POST", "/elsewhere", b"{}")[0] == 404  # not under the prefix: not for us
    lines = [r.getMessage() for r in caplog.records if r.name == "paywire.web"]
    assert len(lines) == 1 and "unknown method 'fakepay_eu'" in lines[0], lines
    exposition = metrics.exposition().decode()
    assert metric(exposition, "paywire_webhooks_total", method="unknown", status="not_found") == 1
    assert "fakepay_eu" not in exposition  # a name from the request is never a label


def test_a_chunked_body_on_a_wsgi_server_that_cannot_end_it_is_refused_not_waited_for(shop: PaymentService) -> None:
    """wsgiref passes the socket itself as `wsgi.input`, with no length for a chunked body: reading
    "up to the limit" waited for the client to close its connection, one of the server's threads
    held for as long as it kept it open. PEP 3333 allows reading to the end only where the server
    says the input ends (`wsgi.input_terminated`, as waitress and gunicorn do)."""
    import socket
    from wsgiref.simple_server import WSGIRequestHandler, make_server

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = make_server("127.0.0.1", 0, webhook_wsgi(shop, max_body=LIMIT), handler_class=Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", server.server_port), timeout=30) as client:
            client.sendall(b"POST /webhooks/fakepay HTTP/1.1\r\nHost: shop\r\nTransfer-Encoding: chunked\r\n\r\n"
                           b"2\r\n{}\r\n")  # the closing chunk never sent, the connection kept open
            answer = b""
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                chunk = client.recv(4096)
                assert chunk, answer
                answer += chunk
    finally:
        server.shutdown()
        server.server_close()
        thread.join(30)
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.split(b" ")[1] == b"411", answer
    assert json.loads(body) == {"error": "length_required"}
