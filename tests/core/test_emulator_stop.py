"""A stopped emulator server answers nothing more, not even on a client's kept-alive connection."""

from __future__ import annotations

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
