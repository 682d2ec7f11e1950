"""No credential shows when the way to the provider fails: a TLS certificate not trusted, a
redirect, no answer before the read timeout, nothing listening, an HTML error page from a proxy
repeating the request's Authorization header. Each provider's plugin, configured with awkward
credentials (a key shape's prefix and more, quotes, a backslash), against a server on loopback;
every log record of every logger at DEBUG (urllib3's too), every error and its chain, and every
row of the ledger are searched."""

from __future__ import annotations

import http.server
import logging
import socket
import ssl
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from paywire import Gateway, Money, PaymentService, PaywireError, Plugins, Retry, SQLiteLedger
from paywire.testing.leaks import LeakWatch
from paywire.testing.sandbox import load_sandbox

trustme = pytest.importorskip("trustme", reason="real TLS certificates: a test tool every session installs")

PROVIDERS = {"stripe": "secret_key", "paypal": "client_secret", "braintree": "private_key"}
AWKWARD = "sk_test_51Hx9zQ!'\"\\ tail0a1b2c"
TAIL = AWKWARD[len("sk_test_51Hx9zQ"):]  # what the key shape leaves when it masks only its prefix
FAILURES = ("untrusted_tls", "redirect", "read_timeout", "nothing_listens", "html_error_echo")


class Proxy(http.server.BaseHTTPRequestHandler):
    """Answers as the failure under test asks; an answer held back waits for `release`."""

    failure = ""
    release = threading.Event()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        authorization = self.headers.get("Authorization", "")
        if self.failure == "read_timeout":
            self.release.wait(30)
            return
        if self.failure == "redirect":
            self.send_response(302)
            self.send_header("Location", f"https://elsewhere.example{self.path}?auth={authorization}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        page = (f"<html><body>502 Bad Gateway: {self.command} {self.path} with Authorization: {authorization}"
                f" and {body.decode(errors='replace')}</body></html>").encode()
        self.send_response(502)
        self.send_header("Content-Type", "text/html")
        self.send_header("Content-Length", str(len(page)))
        self.end_headers()
        self.wfile.write(page)

    do_GET = do_POST = do_DELETE = do_PATCH = _answer


@pytest.fixture
def proxy_url(request: pytest.FixtureRequest) -> Iterator[str]:
    failure = request.param
    if failure == "nothing_listens":
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        yield f"http://127.0.0.1:{port}"  # bound, then closed: refused
        return
    handler = type("Handler", (Proxy,), {"failure": failure, "release": threading.Event()})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    scheme = "http"
    if failure == "untrusted_tls":
        ca = trustme.CA()  # a CA the client was never told to trust
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("127.0.0.1").configure_cert(context)
        server.socket = context.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{scheme}://127.0.0.1:{server.server_address[1]}"
    finally:
        handler.release.set()
        server.shutdown()
        server.server_close()
        thread.join()


@pytest.mark.parametrize("proxy_url", FAILURES, indirect=True)
@pytest.mark.parametrize("provider", sorted(PROVIDERS))
def test_a_failed_way_to_the_provider_shows_no_credential(provider: str, proxy_url: str, tmp_path: Path) -> None:
    module = pytest.importorskip(f"paywire_{provider}", reason=f"needs the {provider} plugin (the all session has it)")
    plugins = Plugins()
    plugins.register(module, name=provider)
    sandbox = load_sandbox(plugins.gateway(provider))
    credentials = {**sandbox.credentials, PROVIDERS[provider]: AWKWARD}
    method = sandbox.method(provider, proxy_url, credentials=credentials, read_timeout=0.5)
    watch = LeakWatch()
    urllib3 = logging.getLogger("urllib3")
    level = urllib3.level
    urllib3.setLevel(logging.DEBUG)
    ledger = SQLiteLedger(tmp_path / "ledger.db")
    try:
        with Gateway([method], plugins=plugins, retry=Retry(total=1, backoff_factor=0)) as gateway, watch.watching():
            service = PaymentService(gateway, ledger)
            error = watch.call(service.sale, provider, Money.of("3.00", "EUR"), source=sandbox.sources["ok"])
            watch.call(service.reconcile)
            watch.note_reads(service)
    finally:
        urllib3.setLevel(level)
        ledger.close()
    assert isinstance(error, PaywireError)
    watch.note_sqlite(tmp_path / "ledger.db")
    findings = watch.leaks([*credentials.values(), TAIL])
    assert not findings, "a credential showed:\n" + "\n".join(findings)
