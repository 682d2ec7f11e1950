"""A TCP proxy in front of the test PostgreSQL server, which a test takes down and brings back:
a database that goes away and returns (also just as a given statement is sent), without touching
the server other tests share."""

from __future__ import annotations

import socket
import threading
from urllib.parse import urlsplit, urlunsplit


class DatabaseProxy:
    """Forwards loopback connections to `dsn`'s server until `down()`, which closes every
    connection and refuses new ones (as a stopped server does) until `up()`."""

    def __init__(self, dsn: str) -> None:
        parts = urlsplit(dsn)
        self._target = (parts.hostname or "127.0.0.1", parts.port or 5432)
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port = int(self._listener.getsockname()[1])
        netloc = parts.netloc.rsplit("@", 1)
        host = f"127.0.0.1:{self.port}"
        self.dsn = urlunsplit(parts._replace(netloc=f"{netloc[0]}@{host}" if len(netloc) == 2 else host))
        self._lock = threading.Lock()
        self._open: set[socket.socket] = set()
        self._up = True
        self._flowing = threading.Event()  # cleared by `stall()`: nothing is forwarded
        self._flowing.set()
        self.held = 0  # messages that arrived while stalled (forwarded once it flows again)
        self.connections = 0  # connections forwarded
        self._cut: bytes | None = None  # see `down_at`
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            with self._lock:
                if not self._up:
                    client.close()
                    continue
                try:
                    server = socket.create_connection(self._target)
                except OSError:
                    client.close()
                    continue
                self._open |= {client, server}
                self.connections += 1
            for source, sink in ((client, server), (server, client)):
                threading.Thread(target=self._pump, args=(source, sink, source is client), daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, asking: bool) -> None:
        try:
            while data := source.recv(65536):
                if asking and self._cut is not None and self._cut in data:
                    self.down()  # the statement never reaches the server
                    return
                if not self._flowing.is_set():
                    with self._lock:
                        self.held += 1
                    self._flowing.wait()
                sink.sendall(data)
        except OSError:
            pass
        finally:
            self._drop(source, sink)

    def _drop(self, *socks: socket.socket) -> None:
        with self._lock:
            for sock in socks:
                self._open.discard(sock)
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                sock.close()

    def down(self) -> None:
        with self._lock:
            self._up = False
            socks = list(self._open)
        self._drop(*socks)

    def down_at(self, statement: bytes) -> None:
        """Go `down()` once a client sends bytes holding `statement` (a part of a statement's
        text, as sent when it is prepared or run), before they reach the server: the database
        going away just as a command gets to that statement. `up()` forgets it."""
        self._cut = statement

    def up(self) -> None:
        with self._lock:
            self._up = True
            self._cut = None
        self._flowing.set()

    def stall(self) -> None:
        """Keep every connection open and forward nothing: a network that drops the packets."""
        self._flowing.clear()

    def close(self) -> None:
        self.down()
        self._flowing.set()
        try:
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the accept() waiting on it (close alone does not)
        except OSError:
            pass
        self._listener.close()
        self._thread.join(10)
