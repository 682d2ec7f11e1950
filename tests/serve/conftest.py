"""Fixtures: a FakePay emulator counting fetches, a PostgreSQL schema per test, FakePay as an
installed plugin for `paywire serve` processes, and a service of the test's own on the ledger."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest

from paywire.ledger import Ledger, open_ledger
from paywire.service import PaymentService
from paywire.testing.emulator import EmulatorServer
from tests.ledger.conftest import postgres_dsn
from tests.ledger.fakepay import make_gateway
from tests.ledger.support import FAST, PATIENT
from tests.serve.support import CountingFakePay, install_fakepay

__all__ = ["postgres_dsn"]


@pytest.fixture
def provider() -> Iterator[tuple[CountingFakePay, str]]:
    app = CountingFakePay()
    with EmulatorServer(app) as server:
        yield app, server.url


@pytest.fixture
def pg_url(postgres_dsn: str) -> str:
    return f"{postgres_dsn}?schema=pwtest_{os.getpid()}_{secrets.token_hex(4)}"


@pytest.fixture
def pg_ledger(pg_url: str) -> Iterator[Ledger]:
    ledger = open_ledger(pg_url)
    yield ledger
    ledger.close()


@pytest.fixture
def shop(request: pytest.FixtureRequest, provider: tuple[CountingFakePay, str],
         pg_ledger: Ledger) -> Iterator[PaymentService]:
    """The shop's own service: requests live about a second and margin 0, so their
    `settle_after` passes quickly and a Janitor may look at them. In a test marked `patient`
    (one that needs every answer and no short life) they wait for answers as `answered`'s do:
    a loaded machine's slow answer is still an answer."""
    gateway = make_gateway(provider[1], **(PATIENT if request.node.get_closest_marker("patient") else FAST))
    yield PaymentService(gateway, pg_ledger, margin=0)
    gateway.close()


@pytest.fixture
def answered(provider: tuple[CountingFakePay, str], pg_ledger: Ledger) -> Iterator[PaymentService]:
    """`shop`'s partner on the same ledger for the requests a test needs answered (a Janitor's
    reads of the provider): with generous timeouts a loaded machine's slow answer is still an
    answer, while what `shop` sends keeps its short life."""
    gateway = make_gateway(provider[1], **PATIENT)
    yield PaymentService(gateway, pg_ledger, margin=0)
    gateway.close()


@pytest.fixture(scope="session")
def plugin_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return install_fakepay(tmp_path_factory.mktemp("fakepay_plugin"))
