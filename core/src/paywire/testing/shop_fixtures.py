"""pytest fixtures for a shop's own tests, the way pytest-django gives `client` and moto gives
`mock_aws`: each test gets the providers' offline sandboxes (their emulators, on loopback), a
configured `Gateway` and a `PaymentService` on a fresh SQLite ledger of its own.

    def test_checkout(paywire_service):
        payment = paywire_service.sale("stripe", Money.of("9.99", "EUR"), source="pm_card_visa")
        assert payment.state == "captured"

Which providers: `@pytest.mark.paywire_providers("stripe", ...)` on a test or module, or an
override of the `paywire_providers` fixture; by default every installed provider that ships a
sandbox. Loaded by paywire's pytest plugin; heavy modules are imported by the fixtures only.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import TYPE_CHECKING

import attrs
import pytest

if TYPE_CHECKING:
    from paywire.gateway import Gateway
    from paywire.ledger.interface import Ledger
    from paywire.service.payments import PaymentService
    from paywire.testing.sandbox import Sandbox

__all__ = ["RunningSandbox", "paywire_gateway", "paywire_ledger", "paywire_providers", "paywire_sandboxes",
           "paywire_service"]


@attrs.frozen
class RunningSandbox:
    """One provider's emulator, serving at `url` for the test, and what works with it."""

    code: str
    sandbox: Sandbox
    url: str

    @property
    def app(self) -> object:
        """The emulator itself: its controls (faults, settling, webhooks) are the provider's own."""
        return self.sandbox.app

    def source(self, role: str) -> str:
        """A test payment source: "ok", "decline", "buyer_action", "vault", "accepted", ..."""
        return self.sandbox.sources[role]

    def act_as_buyer(self, redirect_url: str) -> None:
        """Pass 3-D Secure or approve, as the buyer would on the provider's page."""
        self.sandbox.act_as_buyer(redirect_url)

    def settle(self, reference: str, succeed: bool = True) -> None:
        """The provider decides an operation it accepted (a bank debit, an eCheck)."""
        if self.sandbox.settle is None:
            raise NotImplementedError(f"{self.code}'s sandbox decides nothing later")
        self.sandbox.settle(reference, succeed)


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "paywire_providers(*codes): the providers whose sandboxes the paywire "
                                       "fixtures start for this test")


@pytest.fixture
def paywire_providers(request: pytest.FixtureRequest) -> tuple[str, ...]:
    """The providers to start: the `paywire_providers` marker's, else every installed provider
    that ships a sandbox."""
    marker = request.node.get_closest_marker("paywire_providers")
    if marker is not None:
        return tuple(marker.args)
    from paywire.plugins import default_plugins

    return tuple(sorted(code for code, d in default_plugins().gateways().items() if d.sandbox))


@pytest.fixture
def paywire_sandboxes(paywire_providers: tuple[str, ...]) -> Iterator[Mapping[str, RunningSandbox]]:
    """Each provider's emulator, started for this test and stopped after it."""
    from paywire.plugins import default_plugins
    from paywire.testing.emulator import EmulatorServer
    from paywire.testing.sandbox import load_sandbox

    plugins = default_plugins()
    with ExitStack() as stack:
        running = {}
        for code in paywire_providers:
            sandbox = load_sandbox(plugins.gateway(code))
            server = stack.enter_context(EmulatorServer(sandbox.app))
            running[code] = RunningSandbox(code, sandbox, server.url)
        yield running


@pytest.fixture
def paywire_gateway(paywire_sandboxes: Mapping[str, RunningSandbox]) -> Iterator[Gateway]:
    """A gateway with one sandbox method per provider, named after it, pointing at its emulator."""
    from paywire.gateway import Gateway

    gateway = Gateway([s.sandbox.method(code, s.url) for code, s in paywire_sandboxes.items()])
    yield gateway
    gateway.close()


@pytest.fixture
def paywire_ledger(tmp_path: Path) -> Iterator[Ledger]:
    """A fresh SQLite ledger for this test."""
    from paywire.ledger.sqlite import SQLiteLedger

    ledger = SQLiteLedger(tmp_path / "paywire.db")
    yield ledger
    ledger.close()


@pytest.fixture
def paywire_service(paywire_gateway: Gateway, paywire_ledger: Ledger) -> PaymentService:
    """The payment service on the sandbox gateway and the test's ledger."""
    from paywire.service.payments import PaymentService

    return PaymentService(paywire_gateway, paywire_ledger)
