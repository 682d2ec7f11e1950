"""Fixtures for the gateway's tests: paywire gateways with the Stripe plugin, pointed at the emulator
(the `app`, `server` and `tls_server` fixtures of the parent directory) over loopback HTTP(S), with
every transfer recorded."""

from __future__ import annotations

import itertools
import json
from collections.abc import Callable, Generator, Iterator
from pathlib import Path
from typing import Any

import pytest

import paywire_stripe
from paywire import (
    CommandResult,
    Gateway,
    MethodConfig,
    Money,
    Order,
    PaymentService,
    Plugins,
    Response,
    Retry,
    SQLiteLedger,
    Subject,
    WebhookEvent,
    hookimpl,
)
from paywire.testing.emulator import EmulatorServer
from paywire.testing.recorder import TransferRecorder
from paywire_stripe.emulator import StripeEmulator

_keys = itertools.count(1)


@pytest.fixture
def recorder() -> TransferRecorder:
    return TransferRecorder()


@pytest.fixture
def gateway_at(recorder: TransferRecorder, api_key: str, webhook_secret: str) -> Iterator[Callable[..., Gateway]]:
    """Builds a gateway whose one method, "stripe", talks to `url`; keywords change the method."""
    built: list[Gateway] = []

    def build(url: str, *, retry: Retry | None = None, **settings: Any) -> Gateway:
        plugins = Plugins()
        plugins.register(paywire_stripe, name="stripe")
        plugins.register(recorder, name="recorder")
        settings.setdefault("credentials", {"secret_key": api_key, "webhook_secret": webhook_secret})
        settings.setdefault("environment", "sandbox")
        method = MethodConfig(code="stripe", base_url=url, **settings)
        gateway = Gateway([method], plugins=plugins, retry=retry or Retry.never())
        built.append(gateway)
        return gateway

    yield build
    for gateway in built:
        gateway.close()


@pytest.fixture
def gateway(gateway_at: Callable[..., Gateway], server: EmulatorServer) -> Gateway:
    return gateway_at(server.url)


class Stripe:
    """Runs the gateway's commands with fresh idempotency keys; the tests read as the contract does."""

    def __init__(self, gateway: Gateway, app: StripeEmulator, recorder: TransferRecorder) -> None:
        self.gateway = gateway
        self.app = app
        self.recorder = recorder

    def run(self, command: str, subject: Subject) -> CommandResult:
        return self.gateway.execute("stripe", command, subject)

    @staticmethod
    def key() -> str:
        return f"test-key-{next(_keys)}"

    def payment(self, amount: Money, source: str = "pm_card_visa", **fields: Any) -> Subject:
        fields.setdefault("order", Order(id=f"order-{next(_keys)}"))
        fields.setdefault("idempotency_key", self.key())
        fields.setdefault("return_url", "https://shop.example/return")
        return Subject(amount=amount, source=source, **fields)

    def on(self, reference: str | None, amount: Money | None = None, **fields: Any) -> Subject:
        fields.setdefault("idempotency_key", self.key())
        return Subject(reference=reference, amount=amount, **fields)

    def authorize(self, amount: Money, source: str = "pm_card_visa", **fields: Any) -> CommandResult:
        return self.run("authorize", self.payment(amount, source, **fields))

    def sale(self, amount: Money, source: str = "pm_card_visa", **fields: Any) -> CommandResult:
        return self.run("sale", self.payment(amount, source, **fields))

    def fetch(self, reference: str) -> CommandResult:
        return self.run("fetch", Subject(reference=reference))

    def sent(self) -> list[Any]:
        """The transfers sent so far."""
        return [record.transfer for record in self.recorder.sent]


@pytest.fixture
def stripe(gateway: Gateway, app: StripeEmulator, recorder: TransferRecorder) -> Stripe:
    return Stripe(gateway, app, recorder)


def decode_form(data: bytes | str | None) -> dict[str, str]:
    """A form body or query string as a dict (Stripe's bracketed keys kept as they are)."""
    from urllib.parse import parse_qsl

    text = data.decode() if isinstance(data, bytes) else (data or "")
    return dict(parse_qsl(text, keep_blank_values=True))


@pytest.fixture
def form() -> Callable[[Any], dict[str, str]]:
    """Reads a transfer's form parameters: its body, or its query string for a GET."""

    def read(transfer: Any) -> dict[str, str]:
        if transfer.method == "GET":
            return decode_form(transfer.url.partition("?")[2])
        return decode_form(transfer.body)

    return read


@pytest.fixture
def events(gateway: Gateway, app: StripeEmulator) -> Callable[[str], WebhookEvent]:
    """The emulator's latest event of a type, verified and parsed by the gateway as delivered now."""

    def latest(event_type: str) -> WebhookEvent:
        found = app.events_of_type(event_type)
        assert found, f"the emulator emitted no {event_type}"
        body, headers = app.signed_event(found[-1])
        event: WebhookEvent = gateway.parse_webhook("stripe", headers, body)
        assert (event.id, event.type, event.provider) == (found[-1]["id"], event_type, "stripe")
        return event

    return latest


@pytest.fixture
def service(gateway: Gateway, tmp_path: Path) -> Iterator[PaymentService]:
    """A payment service on the gateway, with a ledger of its own."""
    ledger = SQLiteLedger(tmp_path / "ledger.db")
    yield PaymentService(gateway, ledger, wait_timeout=5.0)
    ledger.close()


@pytest.fixture
def deliver_all(service: PaymentService, app: StripeEmulator) -> Callable[[set[str]], list[str]]:
    """Deliver to `service`, signed and in order, every event the emulator made that `seen` does
    not hold (adding each to it); the webhook statuses, in order."""

    def deliver(seen: set[str]) -> list[str]:
        statuses = []
        for event_id in [e for e in list(app.store.events) if e not in seen]:
            seen.add(event_id)
            body, headers = app.signed_event(event_id)
            statuses.append(service.receive_webhook("stripe", headers, body).status)
        return statuses

    return deliver


class PartialAuthorization:
    """The bank approves only `held` of the next authorization, as it may when the shop asks Stripe
    for partial authorizations: the emulator's intent and charge then hold that, and Stripe's
    answer says so (the intent's `amount_capturable`, the card's `amount_authorized`); the
    intent's and the charge's `amount` stay what was asked."""

    def __init__(self, app: Any, held: int) -> None:
        self.app, self.held = app, held

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str, transfer: Any) -> Generator[None, Response, Response]:
        response: Response = yield
        if command != "authorize":
            return response
        answer = json.loads(response.body)
        intent = self.app.store.payment_intents[answer["id"]]
        charge = self.app.store.charges[intent["latest_charge"]]
        for held_by in (intent, answer):
            held_by["amount_capturable"] = self.held
        for card in (charge, answer["latest_charge"]):
            card["payment_method_details"]["card"]["amount_authorized"] = self.held
        return Response(response.status, response.headers, json.dumps(answer).encode())


@pytest.fixture
def partial_authorization(gateway: Gateway, app: StripeEmulator) -> Callable[[int], None]:
    """Makes Stripe authorize only `held` (in Stripe's units) of every later authorization."""

    def hold(held: int) -> None:
        gateway.plugins.register(PartialAuthorization(app, held), name="partial_authorization")

    return hold
