"""`refusing_port`: a port where a connection is refused and no other socket can bind meanwhile."""

from __future__ import annotations

import socket

import pytest

from paywire.testing.ports import refusing_port


def _server_bind(port: int) -> None:
    """Bind `port` as a server does (SO_REUSEADDR, as `socket.create_server` sets it), then let it go."""
    socket.create_server(("127.0.0.1", port)).close()


def test_a_held_port_refuses_connections_and_no_server_can_take_it_until_released() -> None:
    """A port found free and let go could be taken by another test's server before a test expecting
    "connection refused" connected to it."""
    with refusing_port() as port:
        for _ in range(3):
            with pytest.raises(ConnectionRefusedError):
                socket.create_connection(("127.0.0.1", port), timeout=5).close()
        with pytest.raises(OSError, match="in use"):
            _server_bind(port)
    _server_bind(port)  # released with the block


def test_a_given_port_still_held_by_a_server_is_an_error() -> None:
    with socket.create_server(("127.0.0.1", 0)) as listening:
        port = listening.getsockname()[1]
        with pytest.raises(OSError, match="in use"), refusing_port(port=port):
            pass
