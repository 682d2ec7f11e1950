"""A loopback port that refuses connections for as long as it is held.

A port found free and then let go can be taken by another process before it is used: a test
expecting "connection refused" then reaches someone else's server. Held here by a socket bound
to it that never listens: on Linux a connection to it is refused, and no other socket can bind
it meanwhile (this one sets no SO_REUSEADDR).
"""

from __future__ import annotations

import socket
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["refusing_port"]


@contextmanager
def refusing_port(host: str = "127.0.0.1", port: int = 0) -> Iterator[int]:
    """A port on `host` where nothing listens, kept so until the block ends: any free one, or
    `port` (OSError when anything still holds it, such as a server said to have closed)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_STREAM) as held:
        held.bind((host, port))
        yield int(held.getsockname()[1])
