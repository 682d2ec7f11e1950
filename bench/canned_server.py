"""A loopback HTTP/1.1 server that answers every request with one canned response, fast.

It runs in its own process (asyncio, keep-alive) so it is never the bottleneck of a client
benchmark: whatever it costs, it costs every client being compared the same.

Each `{seq}` in the body is written as the response's sequence number (eight digits, so every
response has the same length): a provider answers each request with an object of its own, and a
ledger that saw one id again and again would measure its caches, not its work.
"""

from __future__ import annotations

import asyncio
import itertools
import multiprocessing
import socket
from collections.abc import Iterator
from contextlib import contextmanager

SEQ = b"{seq}"  # written as the response's sequence number
_WIDTH = 8


async def _serve(sock: socket.socket, body: bytes, content_type: str) -> None:
    parts = body.split(SEQ)
    head = (
        f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\n"
        f"Content-Length: {len(body) + (len(parts) - 1) * (_WIDTH - len(SEQ))}\r\nRequest-Id: req_bench\r\n\r\n"
    ).encode()
    sequence = itertools.count(1)

    def response() -> bytes:
        if len(parts) == 1:
            return head + body
        return head + str(next(sequence)).zfill(_WIDTH).encode().join(parts)

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                header = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in header.split(b"\r\n"):
                    if line[:15].lower() == b"content-length:":
                        length = int(line[15:])
                if length:
                    await reader.readexactly(length)
                writer.write(response())
        except (asyncio.IncompleteReadError, ConnectionError, asyncio.LimitOverrunError):
            writer.close()

    server = await asyncio.start_server(handle, sock=sock)
    async with server:
        await server.serve_forever()


def _run(sock: socket.socket, body: bytes, content_type: str) -> None:
    asyncio.run(_serve(sock, body, content_type))


@contextmanager
def canned_server(body: bytes, content_type: str = "application/json") -> Iterator[str]:
    """Serve `body` to every request from a child process; yields the base URL."""
    sock = socket.socket()
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(512)
    process = multiprocessing.get_context("fork").Process(target=_run, args=(sock, body, content_type), daemon=True)
    process.start()
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        process.terminate()
        process.join(5)
        sock.close()
