"""The webhook endpoint: a WSGI app served over real HTTP, and the ASGI app driven by its protocol."""

from __future__ import annotations

import asyncio
import http.client
import json
import threading
from collections.abc import Iterator, Mapping
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import pytest

from paywire import (
    EventKind,
    Money,
    WebhookBatch,
    WebhookEvent,
    WebhookVerificationError,
    WebhookVerifier,
    hookimpl,
)
from paywire.ledger import Ledger
from paywire.service import PaymentService
from paywire.web import webhook_asgi, webhook_wsgi
from tests.ledger.fakepay import FakePayApp, make_gateway

LIMIT = 4096


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def wsgi_port(service: PaymentService) -> Iterator[int]:
    server = make_server("127.0.0.1", 0, webhook_wsgi(service, max_body=LIMIT), handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


def post(port: int, path: str, body: bytes, headers: dict[str, str], verb: str = "POST") -> tuple[int, bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request(verb, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_wsgi_endpoint_statuses(service: PaymentService, app: FakePayApp, wsgi_port: int) -> None:
    payment = service.sale("fakepay", Money.of("20.00", "EUR"), source="tok_ok")
    headers, body = app.event("evt_1", EventKind.REFUNDED, payment.reference or "", total=500)
    assert post(wsgi_port, "/webhooks/fakepay", body, headers) == (200, b'{"status":"applied","event":"evt_1"}')
    assert post(wsgi_port, "/webhooks/fakepay", body, headers)[0] == 200  # duplicate
    assert service.get_payment(payment.id).refunded == Money.of("5.00", "EUR")
    unknown, unknown_body = app.event("evt_2", EventKind.CAPTURED, "fp_elsewhere", amount=100)
    assert post(wsgi_port, "/webhooks/fakepay", unknown_body, unknown)[0] == 202  # stored for later
    assert post(wsgi_port, "/webhooks/fakepay", body + b" ", headers)[0] == 400  # signature
    assert post(wsgi_port, "/webhooks/stripe", body, headers)[0] == 404  # not configured
    assert post(wsgi_port, "/elsewhere", body, headers)[0] == 404
    assert post(wsgi_port, "/webhooks/fakepay", b"", {}, verb="GET")[0] == 405
    big = b"{" + b" " * LIMIT + b"}"
    assert post(wsgi_port, "/webhooks/fakepay", big, headers)[0] == 413
    assert len(service.ledger.list_events()) == 2


def asgi_call(application: Any, method: str, path: str, chunks: list[bytes],
              headers: dict[str, str]) -> tuple[int, bytes, dict[str, str]]:
    sent: list[dict[str, Any]] = []
    queue = [{"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1} for i, chunk in enumerate(chunks)]

    async def receive() -> dict[str, Any]:
        return queue.pop(0) if queue else {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path,
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}
    asyncio.run(application(scope, receive, send))
    start, body = sent[0], b"".join(m.get("body", b"") for m in sent[1:])
    return start["status"], body, {k.decode(): v.decode() for k, v in start["headers"]}


def test_asgi_endpoint_statuses(service: PaymentService, app: FakePayApp) -> None:
    application = webhook_asgi(service, prefix="/hooks", max_body=LIMIT)
    payment = service.sale("fakepay", Money.of("20.00", "EUR"), source="tok_ok")
    headers, body = app.event("evt_1", EventKind.REFUNDED, payment.reference or "", total=700)
    status, answer, _ = asgi_call(application, "POST", "/hooks/fakepay", [body[:10], body[10:]], headers)
    assert (status, answer) == (200, b'{"status":"applied","event":"evt_1"}')
    assert service.get_payment(payment.id).refunded == Money.of("7.00", "EUR")
    assert asgi_call(application, "POST", "/hooks/fakepay", [body], headers)[0] == 200
    assert asgi_call(application, "POST", "/hooks/fakepay", [b"x" + body], headers)[0] == 400
    assert asgi_call(application, "POST", "/hooks/other", [body], headers)[0] == 404
    status, _, response_headers = asgi_call(application, "PUT", "/hooks/fakepay", [body], headers)
    assert (status, response_headers["allow"]) == (405, "POST")
    declared = dict(headers, **{"content-length": str(LIMIT + 1)})
    assert asgi_call(application, "POST", "/hooks/fakepay", [body], declared)[0] == 413
    streamed = [b"{" + b" " * 1000] * 5  # no length declared: refused once the limit is passed
    assert asgi_call(application, "POST", "/hooks/fakepay", streamed, headers)[0] == 413


def test_asgi_lifespan(service: PaymentService, app: FakePayApp) -> None:
    """The lifespan's shutdown ends the threads the deliveries ran in (and with them their ledger
    connections): an application built and done with leaves none behind."""
    application = webhook_asgi(service)
    messages = [{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}]
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return messages.pop(0)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    before = set(threading.enumerate())
    payment = service.sale("fakepay", Money.of("20.00", "EUR"), source="tok_ok")
    headers, body = app.event("evt_1", EventKind.REFUNDED, payment.reference or "", total=700)
    assert asgi_call(application, "POST", "/webhooks/fakepay", [body], headers)[0] == 200
    (worker,) = [t for t in set(threading.enumerate()) - before if t.name.startswith("paywire-webhook")]
    asyncio.run(application({"type": "lifespan"}, receive, send))
    assert [m["type"] for m in sent] == ["lifespan.startup.complete", "lifespan.shutdown.complete"]
    worker.join(30)
    assert not worker.is_alive()


class _Batches:
    """A provider that sends several events in one delivery and wants `[accepted]` back (as Adyen
    does): here, FakePay's own signed events, several to a body, each verified on its own."""

    @hookimpl
    def parse_webhook(self, headers: Mapping[str, str], body: bytes,
                      verifier: WebhookVerifier | None) -> WebhookBatch | None:
        if headers.get("content-type") != "application/x-fakepay-batch" or verifier is None:
            return None
        parts = json.loads(body)
        events = []
        for part in parts:
            verified = verifier({k.lower(): v for k, v in part["headers"].items()}, part["body"].encode())
            assert isinstance(verified, WebhookEvent)
            events.append(verified)
        return WebhookBatch(events=events, acknowledgement=b"[accepted]")


def _batch(*deliveries: tuple[dict[str, str], bytes]) -> bytes:
    return json.dumps([{"headers": headers, "body": body.decode()} for headers, body in deliveries]).encode()


def test_a_batch_of_events_is_stored_once_each_and_acknowledged_as_the_provider_wants(
        fakepay: tuple[FakePayApp, str], ledger: Ledger) -> None:
    app, url = fakepay
    service = PaymentService(make_gateway(url, extra=[_Batches()]), ledger)
    server = make_server("127.0.0.1", 0, webhook_wsgi(service), handler_class=_Quiet)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    port = server.server_address[1]
    try:
        payment = service.authorize("fakepay", Money.of("30.00", "EUR"), source="tok_ok")
        captured = app.event("evt_b1", EventKind.CAPTURED, "cap_outside", amount=1000,
                             references={"payment": payment.reference or ""})
        elsewhere = app.event("evt_b2", EventKind.CAPTURED, "fp_elsewhere", amount=100)
        kind = {"Content-Type": "application/x-fakepay-batch"}
        assert post(port, "/webhooks/fakepay", _batch(captured, elsewhere), kind) == (200, b"[accepted]")
        assert post(port, "/webhooks/fakepay", _batch(captured, elsewhere), kind) == (200, b"[accepted]")  # again
        assert sorted(e.status for e in service.ledger.list_events()) == ["applied", "unmatched"]
        assert service.get_payment(payment.id).captured == Money.of("10.00", "EUR")  # counted once
        forged = (captured[0], captured[1].replace(b"1000", b"2000"))
        assert post(port, "/webhooks/fakepay", _batch(elsewhere, forged), kind)[0] == 400  # the whole delivery
        assert len(service.ledger.list_events()) == 2
        notification = service.receive_notification("fakepay", kind, _batch(captured))
        assert [r.status for r in notification.receipts] == ["duplicate"]
        with pytest.raises(WebhookVerificationError, match="holds 2 events"):
            service.receive_webhook("fakepay", kind, _batch(captured, elsewhere))
    finally:
        server.shutdown()
        server.server_close()
        service.gateway.close()
