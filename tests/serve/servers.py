"""Real servers in a thread on a loopback port: uvicorn for ASGI apps, waitress for WSGI apps."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
import waitress
from waitress import wasyncore
from waitress.server import BaseWSGIServer


@contextmanager
def uvicorn_server(app: Any, **config: Any) -> Iterator[int]:
    """`app` served by uvicorn on a free loopback port (its port); `config`: more of uvicorn's settings."""
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning", lifespan="on", **config))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield int(server.servers[0].sockets[0].getsockname()[1])  # the port it bound: any free one
    finally:
        server.should_exit = True
        thread.join(60)


@contextmanager
def waitress_server(app: Any, threads: int = 8) -> Iterator[int]:
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=threads)
    assert isinstance(server, BaseWSGIServer)
    stop = threading.Event()

    def serve() -> None:
        # Waitress's own loop, one pass at a time, and the server closed on this thread once asked.
        # Closed from another thread, its sockets fail the select() this loop waits in (EBADF), and
        # waking the loop through its trigger fails once waitress has closed itself after an error
        # in accept: either way teardown would fail although every answer was right.
        try:
            while not stop.is_set():
                wasyncore.loop(timeout=0.05, map=server._map, count=1)
        finally:
            server.close()

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield int(server.effective_port)
    finally:
        stop.set()
        thread.join(60)
        server.task_dispatcher.shutdown()
