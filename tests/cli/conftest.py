"""The command line's tests share the ledger tests' PostgreSQL server (and its cleanup), and run
against the Acme emulator."""

from collections.abc import Iterator

import pytest

from paywire.testing.emulator import EmulatorServer
from paywire_acme.emulator import AcmeEmulator
from tests.ledger.conftest import postgres_dsn

__all__ = ["postgres_dsn"]


@pytest.fixture
def acme() -> Iterator[AcmeEmulator]:
    """An Acme emulator served on loopback for the test."""
    app = AcmeEmulator()
    with EmulatorServer(app):
        yield app
