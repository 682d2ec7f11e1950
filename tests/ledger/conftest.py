"""Fixtures: real ledgers (an SQLite file, a fresh PostgreSQL schema) and a FakePay emulator.

PostgreSQL tests use a schema of their own per test, dropped at the end of the run. Where no
server is reachable they skip with the reason, except under CI (`CI` set), where they fail.
"""

from __future__ import annotations

import itertools
import json
import os
import secrets
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from paywire import Gateway, Plugins, Retry
from paywire.ledger import Ledger, SQLiteLedger, open_ledger
from paywire.service import PaymentService
from paywire.testing.emulator import EmulatorServer
from paywire.testing.sandbox import Sandbox, load_sandbox
from tests.ledger.fakepay import FakePayApp, make_gateway
from tests.ledger.support import FAST, PATIENT

PG_DSN = os.environ.get("PAYWIRE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def _postgres_reason() -> str | None:
    try:
        import psycopg
    except ImportError:
        return "psycopg is not installed (pip install 'paywire[postgresql]')"
    try:
        psycopg.connect(PG_DSN, connect_timeout=3).close()
    except psycopg.OperationalError as exc:
        return f"no PostgreSQL server at {PG_DSN}: {str(exc).strip().splitlines()[0]}"
    return None


@pytest.fixture(scope="session")
def postgres_dsn() -> Iterator[str]:
    reason = _postgres_reason()
    if reason:
        if os.environ.get("CI"):
            pytest.fail(f"PostgreSQL must be reachable in CI: {reason}")
        pytest.skip(reason)
    schemas: list[str] = []
    yield PG_DSN
    import psycopg

    with psycopg.connect(PG_DSN, autocommit=True) as conn:
        for row in conn.execute("SELECT nspname FROM pg_namespace WHERE nspname LIKE %s",
                                (f"pwtest_{os.getpid()}_%",)).fetchall():
            schemas.append(row[0])
        for schema in schemas:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')


@pytest.fixture
def ledger_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> str:
    """A URL for a fresh, empty ledger of the parametrised backend."""
    if backend == "sqlite":
        return f"sqlite:///{tmp_path / 'ledger.db'}"
    dsn = request.getfixturevalue("postgres_dsn")
    return f"{dsn}?schema=pwtest_{os.getpid()}_{secrets.token_hex(4)}"


@pytest.fixture
def fresh_ledger_url(request: pytest.FixtureRequest, backend: str, tmp_path: Path) -> Callable[[], str]:
    """Each call: a URL for another fresh, empty ledger of the parametrised backend, so that each
    hypothesis example of one test has a database of its own."""
    names = itertools.count()
    dsn = None if backend == "sqlite" else request.getfixturevalue("postgres_dsn")

    def fresh() -> str:
        if dsn is None:
            return f"sqlite:///{tmp_path / f'ledger-{next(names)}.db'}"
        return f"{dsn}?schema=pwtest_{os.getpid()}_{secrets.token_hex(4)}"

    return fresh


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def make_ledger(ledger_url: str) -> Iterator[Callable[[], Ledger]]:
    """Opens (and migrates) the test's ledger; several calls share one database."""
    opened: list[Ledger] = []

    def make() -> Ledger:
        ledger = open_ledger(ledger_url)
        opened.append(ledger)
        return ledger

    yield make
    for ledger in opened:
        ledger.close()


@pytest.fixture
def ledger(make_ledger: Callable[[], Ledger]) -> Ledger:
    return make_ledger()


@pytest.fixture
def sqlite_ledger(tmp_path: Path) -> Iterator[SQLiteLedger]:
    ledger = SQLiteLedger(tmp_path / "ledger.db")
    yield ledger
    ledger.close()


@pytest.fixture
def fakepay() -> Iterator[tuple[FakePayApp, str]]:
    app = FakePayApp()
    with EmulatorServer(app) as server:
        yield app, server.url


@pytest.fixture
def paypal() -> Iterator[tuple[Sandbox, Gateway]]:
    """PayPal's emulator on loopback and a gateway to it, never retrying (for a module that
    imported the PayPal plugin or was skipped: the core package alone has none)."""
    import paywire_paypal

    sandbox = load_sandbox(paywire_paypal.PAYPAL)
    plugins = Plugins()
    plugins.register(paywire_paypal)
    with EmulatorServer(sandbox.app) as server, Gateway([sandbox.method("paypal", server.url)], plugins=plugins,
                                                        retry=Retry.never()) as gateway:
        yield sandbox, gateway


@pytest.fixture(scope="module")
def shared_fakepay() -> Iterator[tuple[FakePayApp, Gateway]]:
    """One emulator and a gateway on it for a whole module: hypothesis runs many examples in one test."""
    app = FakePayApp()
    with EmulatorServer(app) as server, make_gateway(server.url) as gateway:
        yield app, gateway


@pytest.fixture
def service(fakepay: tuple[FakePayApp, str], ledger: Ledger) -> Iterator[PaymentService]:
    gateway = make_gateway(fakepay[1])
    yield PaymentService(gateway, ledger)
    gateway.close()


@pytest.fixture
def fast_service(fakepay: tuple[FakePayApp, str], ledger: Ledger) -> Iterator[PaymentService]:
    """A service whose requests live at most a second (tiny timeouts, no retries, margin 0)."""
    gateway = make_gateway(fakepay[1], **FAST)
    yield PaymentService(gateway, ledger, margin=0)
    gateway.close()


@pytest.fixture
def patient(fakepay: tuple[FakePayApp, str], ledger: Ledger) -> Iterator[PaymentService]:
    """`fast_service`'s partner on the same ledger, for the requests a test needs answered: with
    generous timeouts a loaded machine's slow answer is still an answer, while the requests a
    test leaves in flight go through `fast_service`, whose short life it waits out."""
    gateway = make_gateway(fakepay[1], **PATIENT)
    yield PaymentService(gateway, ledger, margin=0)
    gateway.close()


@pytest.fixture
def app(fakepay: tuple[FakePayApp, str]) -> FakePayApp:
    return fakepay[0]


WORKER = Path(__file__).with_name("worker.py")


def start_worker(job: dict[str, object]) -> subprocess.Popen[str]:
    """A worker process (see worker.py) running `job`."""
    return subprocess.Popen([sys.executable, str(WORKER), json.dumps(job)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def finish_workers(procs: list[subprocess.Popen[str]], timeout: float = 90) -> tuple[list[int], list[dict[str, Any]]]:
    """Wait for workers; their exit codes and every result line they printed."""
    codes, results = [], []
    for proc in procs:
        out, err = proc.communicate(timeout=timeout)
        codes.append(proc.returncode)
        if proc.returncode not in (0, -signal.SIGKILL):
            raise AssertionError(f"worker failed ({proc.returncode}):\n{err}")
        results.extend(json.loads(line) for line in out.splitlines() if line.strip())
    return codes, results
