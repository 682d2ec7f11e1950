"""No credential and no card number in any exported span, for every provider installed: each
provider's emulator over loopback, traced with the SDK into an in-memory exporter, driven through
successes, declines, buyer actions, raw card numbers refused, 5xx and lost answers, refused
credentials, credentials read with their newline, and a provider that repeats what it was sent in its refusals (the Authorization
header, the URL and its query, the body) with card numbers. Every span is searched whole (name,
attributes, status, events, links), the caller's own span too, which records the errors it saw."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from paywire import Gateway, Money, PaymentService, PaywireError, Plugins, Retry, SQLiteLedger, Subject
from paywire.testing.emulator import EmulatorApp, EmulatorRequest, EmulatorServer, Fault, Reply
from paywire.testing.leaks import LeakWatch
from paywire.testing.sandbox import Sandbox, load_sandbox
from paywire_opentelemetry import Tracing
from tests.ledger.support import PATIENT

PROVIDERS = ("stripe", "paypal", "braintree")
CARDS = ("4242424242424242", "4111111111111111", "4242 4242 4242 4242", "4111-1111-1111-1111")
WRONG = "wrong-credential-5e2f8a1d9c"
RETURN_URL = "https://shop.example/return"
MESSAGE_KEYS = frozenset({"message", "description", "error_description"})


class EchoingProvider:
    """A provider's emulator whose refusals repeat what they were sent, as some providers and the
    proxies in front of them do: the Authorization header, the method, the URL with its query
    and the body, and the card numbers a buyer typed, appended to every message of an error
    answer (a 4xx or 5xx, or a GraphQL answer carrying errors)."""

    def __init__(self, app: EmulatorApp) -> None:
        self.app = app
        self.echoing = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    @property
    def base_url(self) -> str:
        return str(self.app.base_url)

    @base_url.setter
    def base_url(self, url: str) -> None:
        self.app.base_url = url

    def answer(self, request: EmulatorRequest) -> tuple[Reply | None, bool]:
        reply, drop = self.app.answer(request)
        if not self.echoing or reply is None or "json" not in reply.headers.get("Content-Type", ""):
            return reply, drop
        payload = json.loads(reply.body or b"null")
        if reply.status < 400 and not (isinstance(payload, dict) and payload.get("errors")):
            return reply, drop
        query = "&".join(f"{name}={value}" for name, value in request.query)
        echo = (f" (you sent {request.method} {request.path}?{query} with Authorization: "
                f"{request.header('authorization')} and {request.body.decode(errors='replace')}; "
                f"cards {', '.join(CARDS)})")
        return attrs.evolve(reply, body=json.dumps(_echoed(payload, echo)).encode()), drop


def _echoed(value: Any, echo: str, key: str = "") -> Any:
    if isinstance(value, dict):
        return {name: _echoed(item, echo, name) for name, item in value.items()}
    if isinstance(value, list):
        return [_echoed(item, echo, key) for item in value]
    return value + echo if isinstance(value, str) and key in MESSAGE_KEYS else value


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> tuple[str, ModuleType]:
    name = str(request.param)
    return name, pytest.importorskip(f"paywire_{name}", reason=f"the {name} plugin is not installed")


class Run:
    """One provider's sandbox served (behind `EchoingProvider`) and traced into `exporter`."""

    def __init__(self, name: str, sandbox: Sandbox, server: EmulatorServer, echo: EchoingProvider,
                 plugins: Plugins, exporter: InMemorySpanExporter, tracer_provider: TracerProvider,
                 tmp_path: Path) -> None:
        self.name, self.sandbox, self.server, self.echo = name, sandbox, server, echo
        self.plugins, self.exporter, self.tracer_provider = plugins, exporter, tracer_provider
        self.watch = LeakWatch()
        self.seen: list[str] = []  # secrets met on the way (PayPal's access tokens, Stripe's client secrets)
        self.gateways: list[Gateway] = []
        self.ledger = SQLiteLedger(tmp_path / "ledger.db")
        self.service = self.service_with(retry=Retry(total=1, backoff_factor=0))

    def service_with(self, *, url: str | None = None, retry: Retry | None = None, **settings: Any) -> PaymentService:
        # Patient: a loaded machine's slow answer is still an answer (a lost one would change the path).
        method = self.sandbox.method(self.name, url or self.server.url, **{**PATIENT, **settings})
        gateway = Gateway([method], plugins=self.plugins, retry=retry or Retry.never())
        self.gateways.append(gateway)
        return PaymentService(gateway, self.ledger, margin=0)

    def source(self, role: str) -> str:
        return self.sandbox.sources[role]

    def call(self, call: Any, *args: Any, **kwargs: Any) -> Any:
        """`call` inside a span of the caller's own that records what it raised, as an
        application's instrumentation does; its result or error noted, and returned."""
        tracer = self.tracer_provider.get_tracer("shop")
        try:
            with tracer.start_as_current_span(f"shop {call.__name__}"):
                result = call(*args, **kwargs)
        except PaywireError as error:
            self.watch.note_error(error)
            return error
        self.watch.note_repr(f"what {call.__name__} returned", result)
        return result

    def secrets(self) -> list[str]:
        tokens = list(getattr(self.sandbox.app, "tokens", {}))  # PayPal's access tokens
        return [*self.sandbox.credentials.values(), WRONG, *tokens, *self.seen, *CARDS]


@pytest.fixture
def run(provider: tuple[str, ModuleType], tmp_path: Path) -> Iterator[Run]:
    name, module = provider
    plugins = Plugins()
    plugins.register(module, name=name)
    exporter = InMemorySpanExporter()
    tracer_provider = TracerProvider()
    tracer_provider.add_span_processor(SimpleSpanProcessor(exporter))
    plugins.register(Tracing(tracer_provider), name="tracing")
    sandbox = load_sandbox(plugins.gateway(name))
    echo = EchoingProvider(sandbox.app)
    with EmulatorServer(echo) as server:  # type: ignore[arg-type]
        traced = Run(name, sandbox, server, echo, plugins, exporter, tracer_provider, tmp_path)
        try:
            yield traced
        finally:
            for gateway in traced.gateways:
                gateway.close()
            traced.ledger.close()


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def drive(run: Run) -> None:
    """Every path a command can take that leaves a span, and a few that must leave none."""
    service, call = run.service, run.call
    paid = call(service.authorize, run.name, eur("10.00"), source=run.source("ok"), order_id="order-1")
    call(service.capture, paid.id, eur("4.00"))
    call(service.refund, paid.id, eur("1.00"))
    call(service.void, call(service.authorize, run.name, eur("9.00"), source=run.source("ok")).id)
    call(service.sale, run.name, eur("8.00"), source=run.source("decline"))
    if "buyer_action" in run.sandbox.sources:
        waiting = call(service.authorize, run.name, eur("7.00"), source=run.source("buyer_action"),
                       return_url=RETURN_URL)
        action = getattr(waiting, "action", None)
        if action is not None:
            run.seen += [secret for secret in (getattr(action, "client_secret", None),) if secret]
    for refused in ({"source": CARDS[0]}, {"source": run.source("ok"), "order_id": CARDS[2]},
                    {"source": run.source("ok"), "metadata": {"note": CARDS[3]}}):
        error = call(service.authorize, run.name, eur("6.00"), **refused)
        assert isinstance(error, PaywireError) and error.code == "raw_card_number", refused
    gateway = run.gateways[0]
    error = call(gateway.execute, run.name, "fetch", Subject(reference=CARDS[3]))
    assert isinstance(error, PaywireError) and error.code == "raw_card_number"
    run.sandbox.app.inject(Fault("status", status=500, times=2))
    call(service.sale, run.name, eur("5.00"), source=run.source("ok"))
    run.sandbox.app.inject(Fault("drop_after"))
    call(service.sale, run.name, eur("4.00"), source=run.source("ok"))
    call(service.reconcile)
    wrong = {name: WRONG if ("secret" in name or "private" in name) else value
             for name, value in run.sandbox.credentials.items()}
    call(run.service_with(credentials=wrong).sale, run.name, eur("3.00"), source=run.source("ok"))
    read_from_files = {name: f"{value}\n" for name, value in run.sandbox.credentials.items()}  # each with its newline
    assert isinstance(call(run.service_with(credentials=read_from_files).sale, run.name, eur("2.75"),
                           source=run.source("ok")), PaywireError)
    closed = run.service_with(url="http://127.0.0.1:9")  # discard: nothing listens, nothing is sent
    call(closed.sale, run.name, eur("2.00"), source=run.source("ok"))
    run.echo.echoing = True  # from here on, every refusal repeats the request and card numbers
    call(service.sale, run.name, eur("8.50"), source=run.source("decline"))
    call(run.service_with(credentials=wrong).sale, run.name, eur("3.50"), source=run.source("ok"))
    run.sandbox.app.inject(Fault("status", status=400))
    call(service.sale, run.name, eur("2.50"), source=run.source("ok"))
    run.sandbox.app.inject(Fault("status", status=500, times=2))
    call(service.sale, run.name, eur("1.50"), source=run.source("ok"))
    run.echo.echoing = False


def _exported(spans: Any) -> Mapping[str, str]:
    """Each span as the exporter sends it, by a name that tells which it is."""
    return {f"span {index} {span.name!r}": span.to_json() for index, span in enumerate(spans)}


def test_no_span_holds_a_credential_or_a_card_number(run: Run) -> None:
    drive(run)
    spans = run.exporter.get_finished_spans()
    names = {span.name for span in spans}
    assert {"paywire authorize", "paywire capture", "paywire refund", "paywire sale"} <= names
    assert any(span.events for span in spans)  # the caller's spans recorded the errors they saw
    watch = LeakWatch()
    for where, text in _exported(spans).items():
        watch.note(where, text)
    findings = watch.leaks(run.secrets())
    assert not findings, "secrets showed in spans:\n" + "\n".join(findings)


def test_nothing_logged_at_debug_holds_a_credential_or_a_card_number(run: Run) -> None:
    """The same run with every logger at DEBUG (paywire's, urllib3's, the root's): each record's
    message, arguments and traceback, and every error raised and result returned."""
    urllib3 = logging.getLogger("urllib3")
    level = urllib3.level
    urllib3.setLevel(logging.DEBUG)
    try:
        with run.watch.watching():
            drive(run)
    finally:
        urllib3.setLevel(level)
    findings = run.watch.leaks(run.secrets())
    assert not findings, "secrets showed in logs, errors or results:\n" + "\n".join(findings)
