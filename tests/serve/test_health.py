"""GET /healthz says what is wrong: an unreachable ledger, one that takes no writes, a Janitor that
stopped; and the Janitor on SQLite (fetching before its unit) settles what the provider decided."""

from __future__ import annotations

import json
import re
import socket
from pathlib import Path

import psycopg
import pytest

from paywire import LedgerUnavailable, Money
from paywire.daemon_pool import DEFAULT_SIZE
from paywire.errors import ConfigurationError
from paywire.ledger import Ledger, SQLiteLedger, open_ledger
from paywire.ledger.model import Look
from paywire.serve import Backoff, Janitor
from paywire.serve.app import serve_app
from paywire.serve.metrics import Metrics
from paywire.serve.server import ServeOptions
from paywire.service import PaymentService
from paywire.web import IN_HAND_PER_THREAD
from tests.ledger.fakepay import make_gateway
from tests.ledger.support import FAST, PATIENT, read_only, step_past_life, wait_until
from tests.serve.servers import uvicorn_server
from tests.serve.support import CountingFakePay
from tests.serve.test_endpoints import send


@pytest.mark.postgres
def test_healthz_fails_when_the_ledger_does_not_answer(shop: PaymentService, pg_url: str) -> None:
    with uvicorn_server(serve_app(shop, janitor=None, metrics=Metrics())) as port:
        status, _, body = send(port, "GET", "/healthz")
        assert status == 200 and json.loads(body)["ledger"]["reachable"]
        dsn, schema = pg_url.split("?schema=")
        with psycopg.connect(dsn, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA "{schema}" CASCADE')
        status, _, body = send(port, "GET", "/healthz")
        assert status == 503
        assert json.loads(body)["ledger"]["reachable"] is False and json.loads(body)["status"] == "unhealthy"


PASSWORD = "pw-never-in-healthz-71ac"  # PostgreSQL's trust authentication takes it and ignores it


@pytest.mark.postgres
def test_healthz_is_not_ready_while_the_database_takes_no_writes(
        provider: tuple[CountingFakePay, str], pg_url: str, shop: PaymentService) -> None:
    """A failover left the ledger's address on a standby (every transaction read-only): the ledger
    answers reads, its schema version among them, and refuses every payment. /healthz answers 503
    saying so, with the database's reason and without the URL's password; on the database that
    takes writes, 200."""
    dsn, schema = pg_url.split("?schema=")
    standby = open_ledger(f"{dsn.replace('postgres@', f'postgres:{PASSWORD}@')}?schema={schema}"
                          "&options=-c%20default_transaction_read_only%3Don")
    gateway = make_gateway(provider[1], **FAST)
    try:
        worker = PaymentService(gateway, standby, margin=0)
        with pytest.raises(LedgerUnavailable):
            worker.authorize("fakepay", Money.of("5.00", "EUR"), source="tok_ok")
        with uvicorn_server(serve_app(worker, janitor=None, metrics=Metrics())) as port:
            status, _, body = send(port, "GET", "/healthz")
            assert send(port, "GET", "/healthz")[::2] == (status, body)  # the check's connection is kept, unbroken
    finally:
        gateway.close()
        standby.close()
    assert status == 503 and PASSWORD.encode() not in body, body
    answer = json.loads(body)
    assert answer["status"] == "unhealthy" and answer["ledger"] == {
        "reachable": True, "schema_version": shop.ledger.schema_version(), "writable": False,
        "error": "ReadOnlySqlTransaction", "reason": "cannot execute UPDATE in a read-only transaction"}
    with uvicorn_server(serve_app(shop, janitor=None, metrics=Metrics())) as port:
        status, _, body = send(port, "GET", "/healthz")
    assert status == 200 and json.loads(body)["ledger"]["writable"] is True, body


def test_healthz_is_not_ready_while_the_sqlite_file_is_read_only(
        provider: tuple[CountingFakePay, str], tmp_path: Path) -> None:
    """A read-only SQLite file answers reads and refuses every payment: /healthz answers 503,
    saying that the ledger takes no writes and why."""
    path = tmp_path / "ledger.db"
    with SQLiteLedger(path) as made:
        version = made.schema_version()
    gateway = make_gateway(provider[1], **FAST)
    try:
        with read_only(path):
            ledger = SQLiteLedger(path)
            try:
                worker = PaymentService(gateway, ledger, margin=0)
                with pytest.raises(LedgerUnavailable):
                    worker.authorize("fakepay", Money.of("5.00", "EUR"), source="tok_ok")
                with uvicorn_server(serve_app(worker, janitor=None, metrics=Metrics())) as port:
                    status, _, body = send(port, "GET", "/healthz")
                    assert send(port, "GET", "/healthz")[::2] == (status, body)
            finally:
                ledger.close()
    finally:
        gateway.close()
    assert status == 503, body
    assert json.loads(body)["ledger"] == {
        "reachable": True, "schema_version": version, "writable": False,
        "error": "OperationalError", "reason": "attempt to write a readonly database (SQLITE_READONLY)"}


@pytest.mark.postgres
def test_healthz_fails_when_the_janitor_stopped(shop: PaymentService) -> None:
    janitor = Janitor(shop, interval=0.05)
    with uvicorn_server(serve_app(shop, janitor=janitor, metrics=Metrics())) as port:
        wait_until(lambda: janitor.last_pass is not None, "a first pass")
        assert send(port, "GET", "/healthz")[0] == 200
        janitor.stop(30)
        status, _, body = send(port, "GET", "/healthz")
        assert status == 503 and json.loads(body)["janitor"]["running"] is False


def test_the_janitor_settles_on_sqlite(provider: tuple[CountingFakePay, str], tmp_path: Path,
                                      monkeypatch: pytest.MonkeyPatch) -> None:
    app, url = provider
    ledger: Ledger = SQLiteLedger(tmp_path / "ledger.db")
    patient = make_gateway(url, **PATIENT)  # every request answered however loaded the machine
    try:
        shop = PaymentService(patient, ledger, margin=0)
        payment = shop.sale("fakepay", Money.of("6.00", "EUR"), source="tok_pending")
        step_past_life(shop, [t.id for t in shop.list_transactions(payment.id)], monkeypatch)
        janitor = Janitor(shop, backoff=Backoff(first=3600, cap=3600))
        assert janitor.run_pass().unresolved  # still processing at the provider
        app.decide(payment.reference or "")
        assert not janitor.run_pass().settled  # backing off
        (txn,) = shop.list_transactions(payment.id)
        with ledger.unit() as u:  # an hour later, as far as the schedule knows
            u.set_looks({txn.id: Look(1, u.now())})
        report = Janitor(shop).run_pass()
        assert [s.status for s in report.settled] == ["succeeded"]
        assert shop.get_payment(payment.id).captured == Money.of("6.00", "EUR")
    finally:
        patient.close()
        ledger.close()


def test_serve_options_come_from_the_config_table_then_the_command_line() -> None:
    options = ServeOptions.from_settings({"port": 9000, "interval": 2.5, "backoff": {"first": 5, "cap": 60}},
                                         port=9100, host=None)
    assert (options.port, options.interval, options.backoff) == (9100, 2.5, Backoff(first=5, cap=60))
    with pytest.raises(ConfigurationError, match=re.escape("unknown setting 'intervall' in [paywire.serve]; did you "
                                                           "mean 'interval'")):
        ServeOptions.from_settings({"intervall": 1})
    with pytest.raises(ConfigurationError, match="backoff"):
        ServeOptions.from_settings({"backoff": {"frist": 1}})
    assert ServeOptions.from_settings({"janitor": False, "interval": 600}).interval == 600  # no health to fail


def test_serve_backoff_on_the_command_line_changes_only_what_it_gives(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """--backoff-cap over [paywire.serve] backoff = { first = 60, factor = 3, cap = 120 }: the
    configured first wait and factor stay."""
    from paywire.cli import main

    served: list[ServeOptions] = []

    def serve(service: PaymentService, options: ServeOptions, *, sock: socket.socket) -> None:
        sock.close()  # bound before the ledger was opened; served by nothing here
        served.append(options)

    monkeypatch.setattr("paywire.serve.server.serve", serve)
    config = tmp_path / "paywire.toml"
    config.write_text(f'[paywire]\nledger = "sqlite:///{tmp_path}/ledger.db"\n'
                      '[paywire.serve]\nbackoff = { first = 60, factor = 3, cap = 120 }\n')
    assert main(["--config", str(config), "serve", "--port", "0", "--backoff-cap", "600"]) == 0  # any free port
    assert served[-1].backoff == Backoff(first=60, factor=3, cap=600)
    assert main(["--config", str(config), "serve", "--port", "0"]) == 0
    assert served[-1].backoff == Backoff(first=60, factor=3, cap=120)


def test_serve_max_in_hand_comes_from_the_config_table_then_the_command_line(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from paywire.cli import main

    served: list[ServeOptions] = []

    def serve(service: PaymentService, options: ServeOptions, *, sock: socket.socket) -> None:
        sock.close()  # bound before the ledger was opened; served by nothing here
        served.append(options)

    monkeypatch.setattr("paywire.serve.server.serve", serve)
    config = tmp_path / "paywire.toml"
    config.write_text(f'[paywire]\nledger = "sqlite:///{tmp_path}/ledger.db"\n[paywire.serve]\nmax_in_hand = 8\n')
    assert main(["--config", str(config), "serve", "--port", "0"]) == 0  # any free port
    assert served[-1].max_in_hand == 8
    assert main(["--config", str(config), "serve", "--port", "0", "--max-in-hand", "3"]) == 0
    assert served[-1].max_in_hand == 3
    assert ServeOptions().max_in_hand == DEFAULT_SIZE * IN_HAND_PER_THREAD  # the endpoint's own default


@pytest.mark.parametrize(("table", "name"), [
    ({"port": 70000}, "port"), ({"port": -1}, "port"), ({"port": "8080"}, "port"),
    ({"interval": 0}, "interval"), ({"interval": float("nan")}, "interval"), ({"interval": -5}, "interval"),
    ({"max_body": 0}, "max_body"), ({"stale_after": float("inf")}, "stale_after"),
    ({"backoff": {"first": 0}}, "first"), ({"backoff": {"cap": float("nan")}}, "cap"),
    ({"backoff": {"factor": 0.5}}, "factor"),
    ({"webhooks": "false"}, "webhooks"), ({"janitor": "no"}, "janitor"), ({"janitor": 0}, "janitor"),
    ({"prefix": "hooks"}, "prefix"), ({"prefix": 5}, "prefix"), ({"host": 8080}, "host"), ({"host": ""}, "host"),
    ({"interval": 600}, "stale_after"), ({"interval": 1e10, "stale_after": 2e10}, "interval"),
    ({"graceful_timeout": 0.5}, "graceful_timeout"), ({"backoff": {"cap": 1e12}}, "cap"),
    ({"backoff": {"first": 120, "cap": 60}}, "first"), ({"max_body": 2 * 1024 * 1024}, "max_body"),
    ({"backoff": 60}, "backoff"), ({"max_in_hand": 0}, "max_in_hand"), ({"max_in_hand": "64"}, "max_in_hand"),
    ({"max_in_hand": True}, "max_in_hand"),
])
def test_serve_options_that_cannot_work_are_refused_naming_them(table: dict[str, object], name: str) -> None:
    """A port out of range, a wait that is not a positive number of seconds a clock can count (a
    Janitor spinning with no pause, or dying on its first wait), a flag given as a string (which
    is true), a prefix no path starts with, a health check that fails between two healthy passes:
    a configuration error naming the setting, before anything is served."""
    with pytest.raises(ConfigurationError, match=re.escape(name)):
        ServeOptions.from_settings(table)


@pytest.mark.postgres
def test_healthz_fails_when_the_janitor_makes_no_progress(shop: PaymentService) -> None:
    janitor = Janitor(shop, interval=3600)  # one pass, then a long sleep
    with uvicorn_server(serve_app(shop, janitor=janitor, metrics=Metrics(), stale_after=0.5)) as port:
        wait_until(lambda: janitor.last_pass is not None, "a first pass")
        wait_until(lambda: send(port, "GET", "/healthz")[0] == 503, "the Janitor is stale")
        body = json.loads(send(port, "GET", "/healthz")[2])
        assert body["janitor"]["running"] and body["janitor"]["idle_seconds"] > 0.5
        janitor.stop(0)


@pytest.mark.postgres
def test_healthz_says_the_ledger_is_busy_while_another_session_holds_its_lock(
        provider: tuple[CountingFakePay, str], pg_url: str, shop: PaymentService) -> None:
    """A migration (another session) holds the schema table against writes longer than the
    database lets the check wait: /healthz answers 503 with paywire's typed error, `ledger_busy`,
    which says to try again, not the driver's class name."""
    dsn, schema = pg_url.split("?schema=")
    waiter = open_ledger(f"{pg_url}&options=-c%20lock_timeout%3D50")
    gateway = make_gateway(provider[1], **FAST)
    try:
        worker = PaymentService(gateway, waiter, margin=0)
        with psycopg.connect(dsn) as holder:  # a transaction open until the block ends
            holder.execute(f'LOCK TABLE "{schema}".paywire_schema IN SHARE MODE')  # reads pass, writes wait
            with uvicorn_server(serve_app(worker, janitor=None, metrics=Metrics())) as port:
                status, _, body = send(port, "GET", "/healthz")
    finally:
        gateway.close()
        waiter.close()
    assert status == 503, body
    ledger = json.loads(body)["ledger"]
    assert ledger["reachable"] is True and ledger["writable"] is False, ledger
    assert ledger["error"] == "ledger_busy" and "try again" in ledger["reason"], ledger
