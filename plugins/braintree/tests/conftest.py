"""Fixtures shared by the Braintree tests: the sandbox's emulator over loopback HTTP and HTTPS
(trustme), gateways and payment services pointed at it (on SQLite, or workers sharing a
PostgreSQL ledger), the ledger's clock stepped on, and a hook landing a request first."""

from __future__ import annotations

import os
import secrets
import ssl
from collections.abc import Callable, Generator, Iterator, Mapping
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
import trustme

import paywire_braintree
from paywire import Gateway, PaymentService, Plugins, Retry, SQLiteLedger, hookimpl
from paywire.http.transfer import Transfer
from paywire.ledger import Ledger, open_ledger
from paywire.testing.emulator import EmulatorServer
from paywire.testing.sandbox import Sandbox, load_sandbox
from paywire_braintree.emulator import BraintreeEmulator

DSN = os.environ.get("PAYWIRE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture(scope="session")
def authority() -> trustme.CA:
    return trustme.CA()


@pytest.fixture(scope="session")
def server_context(authority: trustme.CA) -> ssl.SSLContext:
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    authority.issue_cert("127.0.0.1").configure_cert(context)
    return context


@pytest.fixture
def sandbox() -> Sandbox:
    return load_sandbox(paywire_braintree.BRAINTREE)


@pytest.fixture
def emulator(sandbox: Sandbox) -> BraintreeEmulator:
    assert isinstance(sandbox.app, BraintreeEmulator)
    return sandbox.app


def _plugins() -> Plugins:
    plugins = Plugins()
    plugins.register(paywire_braintree)
    return plugins


@pytest.fixture(params=["http", "https"])
def served(request: pytest.FixtureRequest, sandbox: Sandbox, server_context: ssl.SSLContext,
           authority: trustme.CA, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str | None]]:
    """(base URL, ca_certs) of the sandbox's emulator, over HTTP and over HTTPS."""
    if request.param == "http":
        with EmulatorServer(sandbox.app) as server:
            yield server.url, None
        return
    bundle = tmp_path_factory.mktemp("ca") / "ca.pem"
    authority.cert_pem.write_to_path(str(bundle))
    with EmulatorServer(sandbox.app, ssl_context=server_context) as server:
        yield server.url, str(bundle)


@pytest.fixture
def gateway(sandbox: Sandbox, served: tuple[str, str | None]) -> Iterator[Gateway]:
    url, ca_certs = served
    settings = {"ca_certs": ca_certs} if ca_certs else {}
    with Gateway([sandbox.method("braintree", url, **settings)], plugins=_plugins(), retry=Retry.never()) as gateway:
        yield gateway


def _served_service(stack: ExitStack, sandbox: Sandbox, url: str, ledger: Ledger, name: str = "braintree",
                    **settings: Any) -> PaymentService:
    """A payment service on `ledger`, through a gateway of its own to `url` sending each request
    once; `stack` closes the ledger, then the gateway."""
    gateway = stack.enter_context(Gateway([sandbox.method(name, url, **settings)], plugins=_plugins(),
                                          retry=Retry.never()))
    payments = PaymentService(gateway, ledger)
    stack.callback(payments.ledger.close)
    return payments


class ServiceFactory(Protocol):
    def __call__(self, name: str = "braintree", *, app: BraintreeEmulator | None = None,
                 **settings: Any) -> PaymentService: ...


@pytest.fixture
def services(sandbox: Sandbox, emulator: BraintreeEmulator, tmp_path: Path) -> Iterator[ServiceFactory]:
    """`services(name="braintree", app=None, **settings)`: a payment service on the test's SQLite
    ledger (tmp_path/ledger.db), through a gateway of its own with the sandbox's method under `name`
    and `settings`, to `app` (the test's emulator unless given) over loopback HTTP, sending each
    request once; closed after the test. Those a test makes share the one ledger file."""
    with ExitStack() as stack:
        def make(name: str = "braintree", *, app: BraintreeEmulator | None = None,
                 **settings: Any) -> PaymentService:
            server = stack.enter_context(EmulatorServer(app or emulator))
            return _served_service(stack, sandbox, server.url, SQLiteLedger(str(tmp_path / "ledger.db")), name,
                                   **settings)
        yield make


@pytest.fixture
def service(services: ServiceFactory) -> PaymentService:
    """A payment service with a ledger of its own, on the test's emulator over loopback HTTP,
    sending each request once (a test arms the faults it needs)."""
    return services()


class _Proxy(Protocol):
    url: str

    def close(self) -> None: ...


P = TypeVar("P", bound=_Proxy)


@pytest.fixture
def behind(sandbox: Sandbox, emulator: BraintreeEmulator, tmp_path: Path) -> Iterator[Callable[[Callable[[str], Any]], Any]]:
    """`behind(make_proxy)`: a payment service as `service` is, reaching the emulator through the
    proxy `make_proxy(emulator_url)` makes (one that answers in Braintree's place), and the proxy."""
    with ExitStack() as stack:
        def make(make_proxy: Callable[[str], P]) -> tuple[PaymentService, P]:
            server = stack.enter_context(EmulatorServer(emulator))
            proxy = make_proxy(server.url)
            stack.callback(proxy.close)
            return _served_service(stack, sandbox, proxy.url, SQLiteLedger(str(tmp_path / "ledger.db"))), proxy
        yield make


@pytest.fixture(scope="module")
def shared_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PaymentService, BraintreeEmulator]]:
    """A payment service and the emulator it talks to, shared by a module's tests (each makes
    payments of its own, under keys no other test uses)."""
    sandbox = load_sandbox(paywire_braintree.BRAINTREE)
    assert isinstance(sandbox.app, BraintreeEmulator)
    ledger = SQLiteLedger(str(Path(tmp_path_factory.mktemp("ledger")) / "ledger.db"))
    with EmulatorServer(sandbox.app) as server, Gateway([sandbox.method("braintree", server.url)],
                                                        plugins=_plugins()) as gateway:
        yield PaymentService(gateway, ledger), sandbox.app
    ledger.close()


@pytest.fixture
def ledger_url() -> Iterator[str]:
    """A PostgreSQL ledger's URL, in a schema of the test's own, dropped after it."""
    psycopg = pytest.importorskip("psycopg", reason="the ledger is PostgreSQL's (pip install 'paywire[postgresql]')")
    try:
        psycopg.connect(DSN, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL must be reachable in CI: {exc}")
        pytest.skip(f"no PostgreSQL server at {DSN}")
    schema = f"pwtest_{os.getpid()}_{secrets.token_hex(4)}"
    yield f"{DSN}?schema={schema}"
    with psycopg.connect(DSN, autocommit=True) as conn:
        conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def workers(sandbox: Sandbox, emulator: BraintreeEmulator,
            ledger_url: str) -> Iterator[Callable[[int], list[PaymentService]]]:
    """`workers(n)`: n payment services, each with a connection of its own to one PostgreSQL ledger,
    sharing a gateway on the test's emulator over loopback HTTP that sends each request once;
    closed after the test, before its schema is dropped."""
    with ExitStack() as stack:
        server = stack.enter_context(EmulatorServer(emulator))
        gateway = stack.enter_context(Gateway([sandbox.method("braintree", server.url)], plugins=_plugins(),
                                              retry=Retry.never()))

        def make(count: int) -> list[PaymentService]:
            made = [PaymentService(gateway, open_ledger(ledger_url)) for _ in range(count)]
            for worker in made:
                stack.callback(worker.ledger.close)
            return made
        yield make


@pytest.fixture
def step_clock(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """`step_clock(service, hours=1)`: the service's ledger clock `hours` on for the rest of the
    test: every open request's life over (and a Janitor's backoff), with nothing waited for."""
    def step(service: PaymentService, hours: int = 1) -> None:
        ledger = service.ledger
        now, deadline = ledger.now, ledger.deadline
        monkeypatch.setattr(ledger, "now", lambda: now() + timedelta(hours=hours))
        monkeypatch.setattr(ledger, "deadline", lambda seconds: deadline(seconds) + timedelta(hours=hours))
    return step


class _LandsBefore:
    """Runs `land` at Braintree just before the first request naming `operation` is sent (a
    transfer hook, so the race needs no timing)."""

    def __init__(self, operation: str, land: Callable[[], None]) -> None:
        self.operation = operation.encode()
        self.land = land
        self.armed = True

    @hookimpl(wrapper=True)
    def send_transfer(self, transfer: Transfer) -> Generator[None, Any, Any]:
        if self.armed and self.operation in (transfer.body or b""):
            self.armed = False
            self.land()
        return (yield)


@pytest.fixture
def lands_before() -> Callable[[PaymentService, str, Callable[[], None], str], None]:
    """`lands_before(service, operation, land, name)`: registers on the service's gateway, under
    `name`, a hook running `land` at Braintree just before the first `operation` request is sent."""
    def register(service: PaymentService, operation: str, land: Callable[[], None], name: str) -> None:
        service.gateway.plugins.register(_LandsBefore(operation, land), name=name)
    return register


class KeptNotifications(BraintreeEmulator):
    """The emulator keeping its notifications (in `sent`) for the test to deliver when it likes,
    its sales and captures settled only by a batch."""

    def __init__(self, public_key: str, private_key: str) -> None:
        super().__init__(public_key, private_key, settlement="batch")
        self.webhook_url = "http://127.0.0.1:9/kept"  # never posted: kept below
        self.sent: list[bytes] = []

    def deliver_webhook(self, body: bytes, headers: Mapping[str, str]) -> None:
        self.sent.append(body)


@pytest.fixture
def app(sandbox: Sandbox) -> KeptNotifications:
    assert isinstance(sandbox.app, BraintreeEmulator)
    return KeptNotifications(sandbox.app.public_key, sandbox.app.private_key)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def kept(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[PaymentService, KeptNotifications]]:
    """A payment service on a SQLite and on a PostgreSQL ledger, through a gateway sending each
    request once to a `KeptNotifications` of its own; and that emulator."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}" if request.param == "sqlite" else request.getfixturevalue("ledger_url")
    sandbox = load_sandbox(paywire_braintree.BRAINTREE)
    assert isinstance(sandbox.app, BraintreeEmulator)
    app = KeptNotifications(sandbox.app.public_key, sandbox.app.private_key)
    plugins = Plugins()
    plugins.register(paywire_braintree)
    ledger = open_ledger(url)
    try:
        with EmulatorServer(app) as server, Gateway([sandbox.method("braintree", server.url)], plugins=plugins,
                                                    retry=Retry.never()) as gateway:
            yield PaymentService(gateway, ledger), app
    finally:
        ledger.close()
