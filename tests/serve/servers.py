"""Real servers in a thread on a loopback port: uvicorn for ASGI apps, waitress for WSGI apps."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn
import waitress
from waitress.server import BaseWSGIServer

from tests.serve.support import free_port


@contextmanager
def uvicorn_server(app: Any) -> Iterator[int]:
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning", lifespan="on"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    try:
        yield port
    finally:
        server.should_exit = True
        thread.join(60)


@contextmanager
def waitress_server(app: Any) -> Iterator[int]:
    server = waitress.create_server(app, host="127.0.0.1", port=0, threads=8)
    assert isinstance(server, BaseWSGIServer)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    try:
        yield int(server.effective_port)
    finally:
        # Closed on the server's own thread: closing its sockets from here while its loop waits
        # on them in select() fails that select (EBADF) in the server thread.
        server.trigger.pull_trigger(server.close)
        thread.join(60)
        server.task_dispatcher.shutdown()
