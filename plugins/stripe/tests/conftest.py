"""Fixtures: the emulator on a free loopback port (HTTP and HTTPS), a raw API client, the official
SDK pointed at it, and a real local webhook receiver."""

from __future__ import annotations

import json
import ssl
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import attrs
import pytest
import stripe
import trustme
import urllib3

from paywire.testing.emulator import EmulatorServer
from paywire_stripe.emulator import StripeEmulator

WEBHOOK_SECRET = "whsec_test_0123456789abcdef"
_DEFAULT_KEY = object()
KEY = "sk_test_emulator_0123456789"
# The project root's sibling `shared/specs` (see the design notes); absent in a user's fresh clone.
SPECS = Path(__file__).resolve().parents[3].parent / "shared" / "specs" / "stripe"


def encode(params: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Stripe's form encoding, as the SDKs do it: nested hashes in brackets, lists indexed."""
    pairs: list[tuple[str, str]] = []
    for key, value in params.items():
        name = f"{prefix}[{key}]" if prefix else str(key)
        if value is None:
            continue
        if isinstance(value, Mapping):
            pairs += encode(value, name)
        elif isinstance(value, (list, tuple)):
            for index, item in enumerate(value):
                if isinstance(item, Mapping):
                    pairs += encode(item, f"{name}[{index}]")
                else:
                    pairs.append((f"{name}[{index}]", _scalar(item)))
        else:
            pairs.append((name, _scalar(value)))
    return pairs


def _scalar(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


@attrs.frozen
class Response:
    status: int
    headers: Mapping[str, str]
    body: Any
    raw: bytes

    @property
    def error(self) -> dict[str, Any]:
        return self.body["error"]  # type: ignore[no-any-return]


class Api:
    """A plain HTTP client for the emulator: what any integration sends, without the SDK."""

    def __init__(self, url: str, key: str | None = KEY, pool: urllib3.PoolManager | None = None) -> None:
        self.url = url
        self.key = key
        self.pool = pool or urllib3.PoolManager(retries=False, timeout=10)

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, Any] | Sequence[tuple[str, str]] | None = None,
        *,
        key: Any = _DEFAULT_KEY,
        headers: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> Response:
        pairs = encode(params) if isinstance(params, Mapping) else list(params or [])
        all_headers = dict(headers or {})
        api_key = self.key if key is _DEFAULT_KEY else key
        if api_key is not None:
            all_headers.setdefault("Authorization", f"Bearer {api_key}")
        if idempotency_key is not None:
            all_headers["Idempotency-Key"] = idempotency_key
        body = None
        url = self.url + path
        if method == "POST":
            body = _urlencode(pairs)
            all_headers.setdefault("Content-Type", "application/x-www-form-urlencoded")
        elif pairs:
            url += "?" + _urlencode(pairs)
        raw = self.pool.request(method, url, body=body, headers=all_headers, redirect=False)
        content_type = raw.headers.get("Content-Type", "")
        decoded = json.loads(raw.data) if content_type.startswith("application/json") else raw.data.decode()
        return Response(raw.status, dict(raw.headers), decoded, raw.data)

    def post(self, path: str, params: Any = None, **kwargs: Any) -> Response:
        return self.request("POST", path, params, **kwargs)

    def get(self, path: str, params: Any = None, **kwargs: Any) -> Response:
        return self.request("GET", path, params, **kwargs)

    def delete(self, path: str, params: Any = None, **kwargs: Any) -> Response:
        return self.request("DELETE", path, params, **kwargs)

    def ok(self, method: str, path: str, params: Any = None, **kwargs: Any) -> dict[str, Any]:
        response = self.request(method, path, params, **kwargs)
        assert response.status == 200, response.body
        return response.body  # type: ignore[no-any-return]

    def intent(self, **params: Any) -> dict[str, Any]:
        """Create a PaymentIntent (card only, so no return_url is needed unless asked)."""
        params.setdefault("amount", 1000)
        params.setdefault("currency", "usd")
        if "automatic_payment_methods" not in params:
            params.setdefault("payment_method_types", ["card"])
        return self.ok("POST", "/v1/payment_intents", params)

    def off_session_payment(self, card: str) -> Response:
        """Attach `card` to a new Customer and pay with it off-session, as a merchant charging a saved card does."""
        customer = self.ok("POST", "/v1/customers")
        pm = self.ok("POST", f"/v1/payment_methods/{card}/attach", {"customer": customer["id"]})
        return self.post(
            "/v1/payment_intents",
            {
                "amount": 1000,
                "currency": "usd",
                "customer": customer["id"],
                "payment_method": pm["id"],
                "payment_method_types": ["card"],
                "confirm": True,
                "off_session": True,
            },
        )


def _urlencode(pairs: Sequence[tuple[str, str]]) -> str:
    return urlencode(list(pairs))


@pytest.fixture
def webhook_secret() -> str:
    return WEBHOOK_SECRET


@pytest.fixture
def api_key() -> str:
    return KEY


@pytest.fixture
def specs() -> Path:
    if not (SPECS / "spec3.json").exists():
        pytest.skip(f"Stripe's OpenAPI spec is not available at {SPECS} (a fresh clone without shared/specs)")
    return SPECS


@pytest.fixture
def app() -> Iterator[StripeEmulator]:
    emulator = StripeEmulator(webhook_secret=WEBHOOK_SECRET)
    yield emulator
    assert emulator.internal_errors == [], emulator.internal_errors[0]


@pytest.fixture
def server(app: StripeEmulator) -> Iterator[EmulatorServer]:
    with app.serve() as running:
        yield running


@pytest.fixture
def api(server: EmulatorServer) -> Api:
    return Api(server.url)


@pytest.fixture
def client(server: EmulatorServer) -> stripe.StripeClient:
    return stripe.StripeClient(KEY, base_addresses={"api": server.url}, max_network_retries=0)


def _sdk_payment(client: stripe.StripeClient, payment_method: str, **params: Any) -> stripe.PaymentIntent:
    """A 10.00 USD PaymentIntent created and confirmed through the SDK, as most SDK tests begin."""
    return client.v1.payment_intents.create(
        params={"amount": 1000, "currency": "usd", "confirm": True, "payment_method": payment_method, **params}
    )


@pytest.fixture
def sdk_payment() -> Callable[..., stripe.PaymentIntent]:
    """`sdk_payment(client, payment_method, **params)`: see `_sdk_payment` (a fixture, as tests cannot import conftest)."""
    return _sdk_payment


@pytest.fixture(scope="session")
def ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def tls_server(app: StripeEmulator, ca: trustme.CA) -> Iterator[EmulatorServer]:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ca.issue_cert("127.0.0.1", "localhost").configure_cert(context)
    with app.serve(ssl_context=context) as running:
        yield running


@pytest.fixture
def ca_file(ca: trustme.CA, tmp_path: Path) -> str:
    path = tmp_path / "ca.pem"
    ca.cert_pem.write_to_path(str(path))
    return str(path)


class Receiver:
    """A real HTTP endpoint collecting webhook deliveries (headers, raw body)."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self.status = 200
        self.condition = threading.Condition()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver.condition:
                    receiver.deliveries.append(({k.lower(): v for k, v in self.headers.items()}, body))
                    receiver.condition.notify_all()
                self.send_response(receiver.status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/webhooks"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[tuple[dict[str, str], bytes]]:
        """The deliveries received once there are `count` (the deadline only guards against a hang)."""
        with self.condition:
            assert self.condition.wait_for(lambda: len(self.deliveries) >= count, timeout), self.deliveries
            return list(self.deliveries)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    yield running
    running.close()
