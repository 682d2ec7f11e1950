"""Fixtures: the PayPal emulator served on a free loopback port, over HTTP and over HTTPS.

Tests talk to it with real HTTP (urllib3) through `Api`, a thin client that knows how to get a
token and approve an order, so each test reads as the calls a PayPal integration makes.
"""

from __future__ import annotations

import base64
import json
import ssl
from collections.abc import Iterator
from typing import Any

import pytest
import trustme
import urllib3

from paywire_paypal.emulator import PayPalEmulator

CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-client-secret"
WEBHOOK_ID = "1JE4291016473214C"


class Response:
    def __init__(self, raw: urllib3.BaseHTTPResponse) -> None:
        self.status = raw.status
        self.headers = raw.headers
        self.body = raw.data

    def json(self) -> Any:
        return json.loads(self.body)

    @property
    def issue(self) -> str | None:
        details = self.json().get("details") or [{}]
        return details[0].get("issue")

    def __repr__(self) -> str:
        return f"<Response {self.status} {self.body[:300]!r}>"


class Api:
    """A PayPal REST client for the tests: real HTTP to the emulator."""

    def __init__(self, app: PayPalEmulator, url: str, pool: urllib3.PoolManager) -> None:
        self.app = app
        self.url = url
        self.pool = pool
        self._token: str | None = None

    def request(
        self,
        method: str,
        path: str,
        body: Any = None,
        *,
        headers: dict[str, str] | None = None,
        auth: bool = True,
        raw: bytes | None = None,
        redirect: bool = False,
    ) -> Response:
        sent = dict(headers or {})
        if auth and "Authorization" not in sent:
            sent["Authorization"] = f"Bearer {self.token()}"
        data = raw
        if body is not None:
            data = json.dumps(body).encode()
            sent.setdefault("Content-Type", "application/json")
        target = path if path.startswith("http") else self.url + path
        return Response(self.pool.request(method, target, body=data, headers=sent, redirect=redirect, retries=False))

    def get(self, path: str, **kwargs: Any) -> Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, body: Any = None, **kwargs: Any) -> Response:
        return self.request("POST", path, body, **kwargs)

    def oauth(
        self, client_id: str = CLIENT_ID, secret: str = CLIENT_SECRET, form: str = "grant_type=client_credentials"
    ) -> Response:
        basic = base64.b64encode(f"{client_id}:{secret}".encode()).decode()
        headers = {"Authorization": f"Basic {basic}", "Content-Type": "application/x-www-form-urlencoded"}
        return Response(self.pool.request("POST", f"{self.url}/v1/oauth2/token", body=form.encode(), headers=headers))

    def days_pass(self, days: float) -> None:
        """The emulator's clock moves `days` on (an authorization's honor period, its 29 days); the
        token it gave expires with it, so the next request fetches a new one."""
        clock = self.app.clock
        self.app.clock = lambda: clock() + days * 86400
        self._token = None

    def token(self) -> str:
        if self._token is None:
            self._token = self.oauth().json()["access_token"]
        return self._token

    def create_order(self, value: str = "100.00", currency: str = "USD", intent: str = "CAPTURE", **extra: Any) -> Any:
        unit = {"amount": {"currency_code": currency, "value": value}, **extra.pop("unit", {})}
        response = self.post("/v2/checkout/orders", {"intent": intent, "purchase_units": [unit], **extra})
        assert response.status == 201, response
        return response.json()

    def approved_order(
        self, value: str = "100.00", currency: str = "USD", intent: str = "CAPTURE", payer: str = "approve"
    ) -> str:
        order_id = self.create_order(value, currency, intent)["id"]
        self.app.approve(order_id, payer)
        return str(order_id)

    def authorization(self, value: str = "100.00", currency: str = "USD", payer: str = "approve") -> dict[str, Any]:
        order_id = self.approved_order(value, currency, "AUTHORIZE", payer)
        response = self.post(f"/v2/checkout/orders/{order_id}/authorize")
        assert response.status == 201, response
        return response.json()["purchase_units"][0]["payments"]["authorizations"][0]  # type: ignore[no-any-return]

    def capture(self, value: str = "100.00", currency: str = "USD", payer: str = "approve") -> dict[str, Any]:
        order_id = self.approved_order(value, currency, "CAPTURE", payer)
        response = self.post(f"/v2/checkout/orders/{order_id}/capture")
        assert response.status == 201, response
        return response.json()["purchase_units"][0]["payments"]["captures"][0]  # type: ignore[no-any-return]


def make_app(**kwargs: Any) -> PayPalEmulator:
    return PayPalEmulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, webhook_id=WEBHOOK_ID, **kwargs)


@pytest.fixture
def app() -> PayPalEmulator:
    return make_app()


@pytest.fixture
def new_app() -> Any:
    """A factory of emulators with the test credentials and extra settings (clock, token_ttl, ...)."""
    return make_app


@pytest.fixture
def serve() -> Iterator[Any]:
    """Serve another emulator for the length of the test: `serve(app) -> Api`."""
    servers = []

    def start(app: PayPalEmulator) -> Api:
        server = app.serve().start()
        servers.append(server)
        return Api(app, server.url, urllib3.PoolManager())

    yield start
    for server in servers:
        server.stop()


@pytest.fixture
def api(app: PayPalEmulator) -> Iterator[Api]:
    """The emulator over plain HTTP on 127.0.0.1 (allowed for loopback sandboxes)."""
    with app.serve() as server:
        pool = urllib3.PoolManager()
        yield Api(app, server.url, pool)
        pool.clear()


@pytest.fixture(scope="module")
def shared_api() -> Iterator[Api]:
    """One emulator for a whole module: hypothesis runs many examples within one test."""
    app = make_app()
    with app.serve() as server:
        yield Api(app, server.url, urllib3.PoolManager())


@pytest.fixture(scope="session")
def tls_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_api(app: PayPalEmulator, tls_ca: trustme.CA) -> Iterator[Api]:
    """The emulator over HTTPS with a certificate for 127.0.0.1 from a test CA the client trusts."""
    server_context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls_ca.issue_cert("127.0.0.1").configure_cert(server_context)
    client_context = ssl.create_default_context()
    tls_ca.configure_trust(client_context)
    with app.serve(ssl_context=server_context) as server:
        pool = urllib3.PoolManager(ssl_context=client_context)
        yield Api(app, server.url, pool)
        pool.clear()
