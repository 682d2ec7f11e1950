"""Fixtures for the gateway's tests: the plugin driven through a paywire `Gateway`, against the
PayPal emulator over real HTTP on loopback (and HTTPS with a test CA).

`paypal` is one emulator and one gateway per test; `paypal.run(command, **subject)` runs a
command, `paypal.sent` holds every transfer the plugin put on the wire, `paypal.calls(path)`
counts the requests that reached the emulator.
"""

from __future__ import annotations

import random
import ssl
import string
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from typing import Any

import pytest
import trustme

import paywire_paypal
from paywire import (
    CommandResult,
    Gateway,
    MethodConfig,
    Money,
    Order,
    PaymentService,
    PaywireError,
    Plugins,
    Retry,
    SQLiteLedger,
    Subject,
    Transfer,
)
from paywire.testing.emulator import EmulatorServer
from paywire.testing.recorder import TransferRecorder
from paywire_paypal.emulator import PayPalEmulator

CLIENT_ID = "gateway-test-client-id"
CLIENT_SECRET = "gateway-test-client-secret-5c1e9a"
WEBHOOK_ID = "8PT597110X687430L"
RETURN_URL = "https://shop.example/paypal/return"
DAY = 86400.0


class PayPal:
    """One emulator and a gateway on it, with the helpers the tests share."""

    def __init__(self, app: PayPalEmulator, url: str, **method: Any) -> None:
        self.app = app
        self.url = url
        self.recorder = TransferRecorder()
        self._method = method
        self._keys = 0
        self._run = "".join(random.choices(string.ascii_lowercase, k=10))
        self.gateway = self.gateway_with()

    def gateway_with(self, *, retry: Retry | None = None, **method: Any) -> Gateway:
        """Another gateway on the same emulator (other credentials, options, timeouts, retries)."""
        plugins = Plugins()
        plugins.register(paywire_paypal, name="paypal")
        plugins.register(self.recorder, name="recorder")
        settings: dict[str, Any] = {
            "base_url": self.url,
            "environment": "sandbox",
            "credentials": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET, "webhook_id": WEBHOOK_ID},
            **self._method,
            **method,
        }
        return Gateway([MethodConfig.from_mapping("paypal", settings)], plugins=plugins, retry=retry or Retry.never())

    # -- running commands --------------------------------------------------------------------------
    def key(self) -> str:
        """A fresh idempotency key (no long digit run: that would look like a card number)."""
        self._keys += 1
        return f"key-{self._run}-{self._keys}"

    def run(self, command: str, *, gateway: Gateway | None = None, **fields: Any) -> CommandResult:
        return (gateway or self.gateway).execute("paypal", command, Subject(**fields))

    def attempt(self, command: str, **fields: Any) -> CommandResult | PaywireError:
        try:
            return self.run(command, **fields)
        except PaywireError as error:
            return error

    @property
    def sent(self) -> list[Transfer]:
        return [record.transfer for record in self.recorder.sent]

    @property
    def api_sent(self) -> list[Transfer]:
        """What was sent to PayPal's APIs (the token requests left out)."""
        return [transfer for transfer in self.sent if not transfer.url.endswith("/v1/oauth2/token")]

    def calls(self, path: str = "", method: str | None = None) -> int:
        """Requests that reached the emulator's logic, whose path contains `path`."""
        return sum(1 for verb, seen in self.app.calls if path in seen and (method is None or verb == method))

    def days_pass(self, days: float) -> None:
        """PayPal's clock moves `days` on (an authorization's honor period, its 29 days): the
        emulator's, not the machine's. Its tokens expire with it: the gateway fetches a new one
        after PayPal's 401."""
        clock = self.app.clock
        self.app.clock = lambda: clock() + days * DAY

    # -- webhooks ----------------------------------------------------------------------------------
    def deliver(self, service: PaymentService, event_type: str) -> None:
        """PayPal's latest event of `event_type`, signed, received by `service` twice: a redelivery
        changes nothing."""
        event = next(e for e in reversed(self.app.events) if e["event_type"] == event_type)
        body, headers = self.app.signed_event(event)
        for _ in range(2):
            service.receive_webhook("paypal", headers, body)

    # -- payments ----------------------------------------------------------------------------------
    def checkout(self, amount: Money, *, sale: bool = False, payer: str = "approve", **fields: Any) -> CommandResult:
        """A wallet checkout: create the order, let the buyer approve it, complete it."""
        started = self.run("sale" if sale else "authorize", amount=amount, source="paypal", return_url=RETURN_URL,
                           idempotency_key=self.key(), order=Order(id=f"order-{self.key()}"), **fields)
        assert started.action_required, started
        self.app.approve(started.reference, payer)
        return self.run("complete", reference=started.reference, amount=amount, idempotency_key=self.key())

    def authorized(self, value: str = "100.00", currency: str = "EUR") -> CommandResult:
        """An authorization, paid from a vaulted card (no buyer step)."""
        result = self.run("authorize", amount=Money.of(value, currency), source=self.app.vault_card(),
                          idempotency_key=self.key())
        assert result.succeeded and result.state == "authorized", result
        return result

    def captured(self, value: str = "100.00", currency: str = "EUR") -> CommandResult:
        """A sale's capture, paid from a vaulted card."""
        result = self.run("sale", amount=Money.of(value, currency), source=self.app.vault_card(),
                          idempotency_key=self.key())
        assert result.succeeded and result.state == "captured", result
        return result


def holding_its_token(paypal: PayPal, gateway: Gateway, reference: str) -> None:
    """A fresh gateway fetches its OAuth token before the request it is to lose: through its short
    timeouts a loaded machine may not answer in time, so a read of the payment (which changes
    nothing, asked again) fetches it until answered, and the lost request is the only one the
    short life is for."""
    for _ in range(100):
        try:
            paypal.run("fetch", gateway=gateway, reference=reference)
            return
        except PaywireError:
            continue
    raise AssertionError("the short-lived gateway never got a read of the payment answered")


def until(predicate: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Poll until `predicate` holds: the emulator's state, not a guess of the machine's speed."""
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out after {timeout} s waiting until {what}"
        time.sleep(0.01)


def new_emulator(**options: Any) -> PayPalEmulator:
    return PayPalEmulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, webhook_id=WEBHOOK_ID, **options)


@pytest.fixture
def emulator() -> Callable[..., PayPalEmulator]:
    """`emulator(**options)`: a PayPal emulator accepting this module's credentials."""
    return new_emulator


@pytest.fixture
def serve_paypal() -> Iterator[Callable[..., PayPal]]:
    """`serve_paypal(app=None, ssl_context=None, **method) -> PayPal`, stopped after the test."""
    servers: list[EmulatorServer] = []
    gateways: list[PayPal] = []

    def serve(app: PayPalEmulator | None = None, ssl_context: ssl.SSLContext | None = None, **method: Any) -> PayPal:
        app = app or new_emulator()
        server = app.serve(ssl_context=ssl_context).start()
        servers.append(server)
        paypal = PayPal(app, server.url, **method)
        gateways.append(paypal)
        return paypal

    yield serve
    for paypal in gateways:
        paypal.gateway.close()
    for server in servers:
        server.stop()


@pytest.fixture
def paypal(serve_paypal: Callable[..., PayPal]) -> PayPal:
    """The emulator over plain HTTP on 127.0.0.1 and a sandbox gateway on it."""
    return serve_paypal()


@pytest.fixture(scope="session")
def test_ca() -> trustme.CA:
    return trustme.CA()


@pytest.fixture
def ca_bundle(test_ca: trustme.CA, tmp_path: Any) -> str:
    path = tmp_path / "ca.pem"
    test_ca.cert_pem.write_to_path(str(path))
    return str(path)


@pytest.fixture
def tls_context(test_ca: trustme.CA) -> ssl.SSLContext:
    """A server context with a certificate for 127.0.0.1 issued by the test CA."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    test_ca.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def service(paypal: PayPal, tmp_path: Any) -> Iterator[PaymentService]:
    """A payment service on `paypal`'s gateway, with a ledger of its own."""
    with SQLiteLedger(str(tmp_path / "ledger.db")) as ledger:
        yield PaymentService(paypal.gateway, ledger)


def deliver_about(paypal: PayPal, service: PaymentService, event_type: str, resource: str) -> None:
    """PayPal's latest event of `event_type` about `resource`, signed now (PayPal's clock may have
    moved days on, `days_pass`; the verifier checks the transmission time against this
    machine's), received twice."""
    app = paypal.app
    event = next(e for e in reversed(app.events) if e["event_type"] == event_type and e["resource"].get("id") == resource)
    body, headers = app.signer.sign(event, app.webhook_id, app.cert_url(), time.time())
    for _ in range(2):
        service.receive_webhook("paypal", headers, body)


def after_their_lives(service: PaymentService, monkeypatch: pytest.MonkeyPatch) -> None:
    """The ledger's clock a day on: every open request's life over."""
    ledger = service.ledger
    later, deadline = ledger.now, ledger.deadline
    monkeypatch.setattr(ledger, "now", lambda: later() + timedelta(days=1))
    monkeypatch.setattr(ledger, "deadline", lambda seconds: deadline(seconds) + timedelta(days=1))
