"""Fixtures shared by the Braintree tests: the sandbox's emulator over loopback HTTP and HTTPS
(trustme), and gateways pointed at it."""

from __future__ import annotations

import ssl
from collections.abc import Callable, Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any, Protocol, TypeVar

import pytest
import trustme

import paywire_braintree
from paywire import Gateway, PaymentService, Plugins, Retry, SQLiteLedger
from paywire.testing.emulator import EmulatorServer
from paywire.testing.sandbox import Sandbox, load_sandbox
from paywire_braintree.emulator import BraintreeEmulator


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
    plugins = Plugins()
    plugins.register(paywire_braintree)
    settings = {"ca_certs": ca_certs} if ca_certs else {}
    with Gateway([sandbox.method("braintree", url, **settings)], plugins=plugins, retry=Retry.never()) as gateway:
        yield gateway


@pytest.fixture
def service(sandbox: Sandbox, emulator: BraintreeEmulator, tmp_path: Path) -> Iterator[PaymentService]:
    """A payment service with a ledger of its own, on the test's emulator over loopback HTTP,
    sending each request once (a test arms the faults it needs)."""
    plugins = Plugins()
    plugins.register(paywire_braintree)
    with EmulatorServer(emulator) as server, \
            Gateway([sandbox.method("braintree", server.url)], plugins=plugins, retry=Retry.never()) as gateway:
        payments = PaymentService(gateway, SQLiteLedger(str(tmp_path / "ledger.db")))
        yield payments
        payments.ledger.close()


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
            plugins = Plugins()
            plugins.register(paywire_braintree)
            gateway = stack.enter_context(Gateway([sandbox.method("braintree", proxy.url)], plugins=plugins,
                                                  retry=Retry.never()))
            payments = PaymentService(gateway, SQLiteLedger(str(tmp_path / "ledger.db")))
            stack.callback(payments.ledger.close)
            return payments, proxy
        yield make


@pytest.fixture(scope="module")
def shared_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[PaymentService, BraintreeEmulator]]:
    """A payment service and the emulator it talks to, shared by a module's tests (each makes
    payments of its own, under keys no other test uses)."""
    sandbox = load_sandbox(paywire_braintree.BRAINTREE)
    assert isinstance(sandbox.app, BraintreeEmulator)
    plugins = Plugins()
    plugins.register(paywire_braintree)
    ledger = SQLiteLedger(str(Path(tmp_path_factory.mktemp("ledger")) / "ledger.db"))
    with EmulatorServer(sandbox.app) as server, Gateway([sandbox.method("braintree", server.url)],
                                                        plugins=plugins) as gateway:
        yield PaymentService(gateway, ledger), sandbox.app
    ledger.close()

