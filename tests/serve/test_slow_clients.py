"""A connection whose request's head does not arrive is let go: uvicorn alone held one that sent
nothing, or sent a head a byte at a time, or trickled a body the application answered without
reading, for as long as its sender kept it open (a file descriptor each: enough of them and the
server can accept nothing, nor reach its ledger). A request once begun is never cut by it."""

from __future__ import annotations

import asyncio
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

from paywire.serve.protocol import with_header_timeout
from paywire.service import PaymentService
from tests.serve.servers import uvicorn_server
from tests.serve.support import CountingFakePay, serving, write_config

GUARD = 30  # seconds: a socket timeout that only turns a hang into a failure
release = threading.Event()
entered = threading.Event()
loops: list[asyncio.AbstractEventLoop] = []  # the server's event loop, once it started


async def app(scope: Any, receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        loops[:] = [asyncio.get_running_loop()]
        while True:
            message = await receive()
            await send({"type": message["type"] + ".complete"})
            if message["type"] == "lifespan.shutdown":
                return
    if scope["path"] == "/slow":  # a request that takes as long as the test says
        entered.set()
        await asyncio.to_thread(release.wait)
    await send({"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]})
    await send({"type": "http.response.body", "body": b"ok"})


@contextmanager
def guarded_server(timeout: float) -> Iterator[int]:
    # asyncio's loop, whose order `opened` relies on (uvloop's may differ)
    with uvicorn_server(app, http=with_header_timeout(timeout), loop="asyncio") as port:
        try:
            yield port
        finally:
            release.set()  # before the server stops: it waits for a request still held


def opened(port: int, head: bytes) -> socket.socket:
    """A connection that sent `head` before the server could start its clock: the server's loop
    runs nothing while it is opened and written, so it reads the head (already there) before any
    timer it arms on accepting it can run, however long this thread takes."""
    frozen, thaw = threading.Event(), threading.Event()

    def freeze() -> None:
        frozen.set()
        thaw.wait(GUARD)

    loops[0].call_soon_threadsafe(freeze)
    assert frozen.wait(GUARD), "the server's loop never ran"
    try:
        client = socket.create_connection(("127.0.0.1", port), timeout=GUARD)
        client.sendall(head)
    finally:
        thaw.set()
    return client


def _until_closed(client: socket.socket) -> bytes:
    """What the server sends until it closes the connection (a hang fails on the guard)."""
    received = b""
    while chunk := client.recv(4096):
        received += chunk
    return received


def _answer(client: socket.socket) -> bytes:
    """One whole answer of `app` (its body is "ok")."""
    received = b""
    while not received.endswith(b"\r\n\r\nok"):
        chunk = client.recv(4096)
        assert chunk, received
        received += chunk
    return received


@pytest.mark.parametrize("sent", [b"", b"POST /webhooks/fakepay HTTP/1.1\r\nHost: shop\r\n"],
                         ids=["nothing", "half a head"])
def test_a_connection_whose_head_never_arrives_is_closed(sent: bytes) -> None:
    with guarded_server(0.2) as port, socket.create_connection(("127.0.0.1", port), timeout=GUARD) as client:
        client.sendall(sent)
        assert _until_closed(client) == b""


def test_after_a_response_the_next_head_and_an_unread_body_are_bounded_too() -> None:
    with guarded_server(0.2) as port, \
            opened(port, b"POST /x HTTP/1.1\r\nHost: shop\r\nContent-Length: 1000\r\n\r\n{") as client:
        # Answered without its body read (as a 404, 413 or 503 is); the body then trickles.
        assert _answer(client).startswith(b"HTTP/1.1 200 ")
        client.sendall(b" ")
        assert _until_closed(client) == b""
    with guarded_server(0.2) as port, opened(port, b"GET /x HTTP/1.1\r\nHost: shop\r\n\r\n") as client:
        assert _answer(client).startswith(b"HTTP/1.1 200 ")
        client.sendall(b"GET /x HTTP/1.1\r\n")  # the next request's head, never finished
        assert _until_closed(client) == b""


def test_a_request_taking_longer_than_the_timeout_is_answered() -> None:
    """A request whose head arrived is never cut, however long the application takes: a
    connection opened after it, which sends nothing, is closed first (its timer started later),
    and the request is still answered."""
    release.clear()
    entered.clear()
    with guarded_server(0.2) as port, opened(port, b"GET /slow HTTP/1.1\r\nHost: shop\r\n\r\n") as busy:
        assert entered.wait(GUARD)
        with socket.create_connection(("127.0.0.1", port), timeout=GUARD) as idle:
            assert _until_closed(idle) == b""  # the busy connection's own timer, armed before, has run out too
        release.set()
        assert _answer(busy).startswith(b"HTTP/1.1 200 ")


@pytest.mark.postgres
@pytest.mark.slow
def test_paywire_serve_closes_a_connection_that_sends_nothing(
        shop: PaymentService, provider: tuple[CountingFakePay, str], pg_url: str, plugin_path: Path,
        tmp_path: Path) -> None:
    """`paywire serve` itself, with its default (`HEADER_TIMEOUT`, 10 s)."""
    config = write_config(tmp_path / "paywire.toml", provider[1], pg_url)
    with serving(config, plugin_path, ["--no-janitor"]) as server, \
            socket.create_connection(("127.0.0.1", server.port), timeout=GUARD * 2) as client:
        assert _until_closed(client) == b""
        assert server.request("GET", "/healthz")[0] == 200  # and it still serves
        assert server.terminate() == 0
