"""A stopped emulator server answers nothing more, not even on a client's kept-alive connection."""

from __future__ import annotations

import ssl
from pathlib import Path

import trustme
import urllib3

from paywire.testing.emulator import EmulatorApp, EmulatorRequest, EmulatorServer, Reply, route


class _Named(EmulatorApp):
    """Answers every GET with its own name."""

    def __init__(self, name: str) -> None:
        super().__init__()
        self.name = name

    @route("GET", "/whoami")
    def whoami(self, request: EmulatorRequest) -> Reply:
        return Reply(200, self.name.encode(), {"Content-Type": "text/plain"})


def _tls(ca: trustme.CA) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


def test_a_client_pooling_by_address_reaches_the_server_now_on_that_port() -> None:
    """A client (the provider SDKs' pools, paywire's own) that kept its connection to a server of
    an earlier test must reach the server a later test started on the same port: the stopped one
    used to go on answering on that connection with its own app."""
    pool = urllib3.PoolManager(maxsize=1)
    first = EmulatorServer(_Named("first")).start()
    port = int(first.url.rsplit(":", 1)[1])
    try:
        assert pool.request("GET", f"{first.url}/whoami").data == b"first"  # kept alive in the pool
    finally:
        first.stop()
    with EmulatorServer(_Named("second"), port=port) as second:
        answer = pool.request("GET", f"{second.url}/whoami", retries=urllib3.Retry(0))
        assert answer.data == b"second"
    pool.clear()


def test_a_client_pooling_by_address_reaches_the_https_server_now_on_that_port(tmp_path: Path) -> None:
    """The same over HTTPS: a kept-alive TLS connection is ended too. The handshake swaps the
    accepted socket for a TLS one, which the stopped server used to leave open and answering."""
    ca = trustme.CA()
    ca.cert_pem.write_to_path(str(tmp_path / "ca.pem"))
    pool = urllib3.PoolManager(maxsize=1, ca_certs=str(tmp_path / "ca.pem"))
    first = EmulatorServer(_Named("first"), ssl_context=_tls(ca)).start()
    port = int(first.url.rsplit(":", 1)[1])
    try:
        assert pool.request("GET", f"{first.url}/whoami").data == b"first"  # kept alive in the pool
    finally:
        first.stop()
    with EmulatorServer(_Named("second"), port=port, ssl_context=_tls(ca)) as second:
        answer = pool.request("GET", f"{second.url}/whoami", retries=urllib3.Retry(0))
        assert answer.data == b"second"
    pool.clear()
