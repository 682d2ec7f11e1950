"""`paywire serve` as a real process on PostgreSQL: webhooks over loopback, the Janitor settling
what the provider decided, /healthz, /metrics, SIGTERM with a request in flight, --no-webhooks."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import psycopg
import pytest

from paywire import EventKind, Money
from paywire.ledger.model import SettledBy, Transaction
from paywire.service import PaymentService
from tests.ledger.support import wait_out_life, wait_until
from tests.serve.support import CountingFakePay, metric, serving, write_config

pytestmark = [pytest.mark.postgres, pytest.mark.slow]
FAST_JANITOR = ["--interval", "0.2", "--backoff-first", "0.2", "--backoff-cap", "1"]


def test_serve_applies_webhooks_settles_accepted_payments_and_reports_health_and_metrics(
        shop: PaymentService, answered: PaymentService, provider: tuple[CountingFakePay, str], pg_url: str,
        plugin_path: Path, tmp_path: Path) -> None:
    app, url = provider
    config = write_config(tmp_path / "paywire.toml", url, pg_url)
    paid = answered.sale("fakepay", Money.of("20.00", "EUR"), source="tok_ok")  # answered however loaded the machine
    pending = shop.sale("fakepay", Money.of("7.00", "EUR"), source="tok_pending")  # accepted, decided later
    with serving(config, plugin_path, FAST_JANITOR) as server:
        headers, body = app.event("evt_serve_1", EventKind.REFUNDED, paid.reference or "", total=500)
        assert server.request("POST", "/webhooks/fakepay", body, headers)[0] == 200
        assert json.loads(server.request("POST", "/webhooks/fakepay", body, headers)[2])["status"] == "duplicate"
        assert server.request("POST", "/webhooks/fakepay", body + b" ", headers)[0] == 400
        assert shop.get_payment(paid.id).refunded == Money.of("5.00", "EUR")

        app.decide(pending.reference or "")  # the provider decides; its webhook never arrives
        txn = shop.list_transactions(pending.id)[0]
        wait_until(lambda: shop.get_transaction(txn.id).status == "succeeded", "the Janitor settled it")
        assert shop.get_transaction(txn.id).settled_by == SettledBy.RECONCILE
        assert shop.get_payment(pending.id).captured == Money.of("7.00", "EUR")

        # The settlement is made inside a pass, which reports itself when it ends.
        wait_until(lambda: server.wait_healthy()["janitor"]["last_pass_age_seconds"] is not None,
                   "the Janitor finished a pass")
        health = server.wait_healthy()
        assert health["ledger"]["reachable"] and health["janitor"]["running"]
        status, headers_out, text = server.request("GET", "/metrics")
        assert status == 200 and headers_out["content-type"].startswith("text/plain")
        metrics = text.decode()
        assert metric(metrics, "paywire_webhooks_total", method="fakepay", status="applied") == 1
        assert metric(metrics, "paywire_webhooks_total", method="fakepay", status="duplicate") == 1
        assert metric(metrics, "paywire_webhooks_total", method="fakepay", status="refused") == 1
        assert metric(metrics, "paywire_reconcile_settlements_total", kind="sale", status="succeeded") == 1
        assert metric(metrics, "paywire_operations_total", method="fakepay", command="fetch",
                      outcome="succeeded") >= 1
        assert metric(metrics, "paywire_provider_latency_seconds_count", method="fakepay", command="fetch") >= 1
        assert paid.id not in metrics and (paid.reference or "?") not in metrics  # ids are never labels
        refused = server.request("POST", "/healthz")
        assert (refused[0], refused[1].get("allow")) == (405, "GET, HEAD")  # a 405 names what is allowed
        assert server.terminate() == 0


def test_sigterm_lets_the_webhook_in_flight_finish(answered: PaymentService, provider: tuple[CountingFakePay, str],
                                                    pg_url: str, plugin_path: Path, tmp_path: Path) -> None:
    app, url = provider
    config = write_config(tmp_path / "paywire.toml", url, pg_url)
    paid = answered.sale("fakepay", Money.of("20.00", "EUR"), source="tok_ok")  # answered however loaded the machine
    headers, body = app.event("evt_inflight", EventKind.REFUNDED, paid.reference or "", total=300)
    dsn, schema = pg_url.split("?schema=")
    answers: list[int] = []
    with serving(config, plugin_path, FAST_JANITOR) as server, psycopg.connect(dsn) as holder:
        # The test holds the payment's row, so the webhook's unit waits inside the server.
        holder.execute(f'SET search_path TO "{schema}"')
        holder.execute("SELECT id FROM paywire_payments WHERE id = %s FOR UPDATE", (paid.id,))
        sender = threading.Thread(target=lambda: answers.append(
            server.request("POST", "/webhooks/fakepay", body, headers, timeout=60)[0]))
        sender.start()
        holder_pid = holder.info.backend_pid
        wait_until(lambda: _blocked_by(dsn, holder_pid), "the webhook's unit waits for the row", timeout=30)
        server.proc.send_signal(15)  # SIGTERM while the request is in flight
        holder.commit()  # release the row: the request finishes, then the server stops
        sender.join(60)
        assert server.terminate() == 0
    assert answers == [200]
    assert answered.get_payment(paid.id).refunded == Money.of("3.00", "EUR")
    assert answered.ledger.get_event("fakepay", "evt_inflight").status == "applied"


def _blocked_by(dsn: str, holder_pid: int) -> bool:
    """Whether some session waits for a lock the holder's session has."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute("SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))",
                           (holder_pid,)).fetchone()
        return bool(row and row[0] > 0)


def test_no_webhooks_runs_the_janitor_health_and_metrics_only(
        shop: PaymentService, provider: tuple[CountingFakePay, str], pg_url: str, plugin_path: Path,
        tmp_path: Path) -> None:
    app, url = provider
    config = write_config(tmp_path / "paywire.toml", url, pg_url)
    pending = shop.sale("fakepay", Money.of("9.00", "EUR"), source="tok_pending")
    with serving(config, plugin_path, [*FAST_JANITOR, "--no-webhooks"]) as server:
        headers, body = app.decide(pending.reference or "")
        assert server.request("POST", "/webhooks/fakepay", body, headers)[0] == 404
        txn = shop.list_transactions(pending.id)[0]
        wait_until(lambda: shop.get_transaction(txn.id).status == "succeeded", "the Janitor settled it")
        assert server.request("GET", "/metrics")[0] == 200
        assert server.terminate() == 0
    wait_out_life(shop, [txn.id])


def test_sigterm_during_a_reconcile_pass_settles_the_payment_in_hand_and_stops(
        shop: PaymentService, provider: tuple[CountingFakePay, str], pg_url: str, plugin_path: Path,
        tmp_path: Path) -> None:
    from paywire.testing.emulator import Fault

    app, url = provider
    config = write_config(tmp_path / "paywire.toml", url, pg_url)
    payments = [shop.sale("fakepay", Money.of(f"{i}.00", "EUR"), source="tok_pending") for i in (1, 2, 3)]
    wait_out_life(shop, [t.id for p in payments for t in shop.list_transactions(p.id)])
    for payment in payments:
        app.decide(payment.reference or "")
    app.inject(Fault("latency", seconds=5.0, method="GET", path="/v1/payments/", times=3))  # a slow provider
    with serving(config, plugin_path, FAST_JANITOR) as server:
        wait_until(lambda: len(app.fetches) == 1, "the Janitor is asking about a payment")
        (in_hand,) = app.fetches
        assert server.terminate() == 0
    assert len(app.fetches) < 3  # it stopped between payments
    for payment in payments:
        (txn,) = shop.list_transactions(payment.id)
        settled = payment.reference == in_hand
        assert txn.status == ("succeeded" if settled else "accepted")  # settled whole, or untouched
        assert shop.get_payment(payment.id).captured == (payment.amount if settled else Money.of("0.00", "EUR"))


def test_serve_reads_its_options_from_paywire_toml(shop: PaymentService, provider: tuple[CountingFakePay, str],
                                                   pg_url: str, plugin_path: Path, tmp_path: Path) -> None:
    app, url = provider
    options = {"webhooks": False, "interval": 0.2, "backoff": {"first": 0.2, "cap": 1.0}}
    config = write_config(tmp_path / "paywire.toml", url, pg_url, options)
    pending = shop.sale("fakepay", Money.of("9.00", "EUR"), source="tok_pending")
    with serving(config, plugin_path) as server:
        headers, body = app.decide(pending.reference or "")
        assert server.request("POST", "/webhooks/fakepay", body, headers)[0] == 404  # webhooks = false
        wait_until(lambda: shop.list_transactions(pending.id)[0].status == "succeeded", "the Janitor settled it")
        assert server.terminate() == 0


def test_a_mistyped_serve_option_is_one_line_naming_it(provider: tuple[CountingFakePay, str], pg_url: str,
                                                       plugin_path: Path, tmp_path: Path) -> None:
    from tests.serve.support import ServeProcess

    config = write_config(tmp_path / "paywire.toml", provider[1], pg_url, {"intervall": 1})
    server = ServeProcess(config, plugin_path)
    assert server.exit_code() == 3
    assert server.stderr == ["paywire: ConfigurationError: unknown setting 'intervall' in [paywire.serve]; "
                             "did you mean 'interval'?\n"]


def test_sigterm_while_the_provider_holds_a_fetch_stops_within_graceful_timeout_and_the_lease_expires(
        shop: PaymentService, provider: tuple[CountingFakePay, str], pg_url: str, plugin_path: Path,
        tmp_path: Path) -> None:
    """A fetch the provider does not answer (read timeout ten minutes) kept the stopping server
    joined on its Janitor, SIGINT and SIGTERM ignored, until the read timed out. It stops within
    `graceful_timeout` of the server instead; the payment is left as it was, under a lease (its
    next look) that expires, so a worker looks at it again."""
    app, url = provider
    config = write_config(tmp_path / "paywire.toml", url, pg_url, {"graceful_timeout": 1}, read_timeout=600)
    txn = _unanswered_janitor_fetch(shop, app)
    try:
        with serving(config, plugin_path, FAST_JANITOR) as server:
            assert app.wait_until_held(timeout=60), "the Janitor is asking the provider"
            assert server.terminate(timeout=60) == 0
        assert app.wait_until_held(timeout=0), "the server stopped while its fetch was still unanswered"
        assert shop.get_transaction(txn.id).status == "accepted"  # untouched: settled whole or not at all
    finally:
        app.release_held()
    lease = shop.ledger.looks([txn.id])[txn.id]
    assert txn.settle_after is not None and lease.next_at > txn.settle_after  # the look in hand, until its fetch can no longer land


@pytest.mark.parametrize(("again", "joined"), [("SIGTERM", True), ("SIGINT", False), ("SIGTERM", False)])
def test_a_second_signal_while_the_janitor_is_joined_stops_at_once(
        shop: PaymentService, provider: tuple[CountingFakePay, str], pg_url: str, plugin_path: Path,
        tmp_path: Path, again: str, joined: bool) -> None:
    """A second SIGTERM or SIGINT (an operator pressing Ctrl-C again, an orchestrator insisting)
    was swallowed while the process waited `graceful_timeout` for a Janitor whose fetch the
    provider did not answer, whether it came while the server was stopping (`joined` False: the
    server re-raises it once stopped) or while the Janitor was joined. It stops at once; the
    payment is left as it was, under its lease."""
    import signal

    app, url = provider
    config = write_config(tmp_path / "paywire.toml", url, pg_url, {"graceful_timeout": 3600}, read_timeout=3600)
    txn = _unanswered_janitor_fetch(shop, app)
    try:
        with serving(config, plugin_path, FAST_JANITOR) as server:
            assert app.wait_until_held(timeout=60), "the Janitor is asking the provider"
            server.proc.send_signal(signal.SIGTERM)
            if joined:
                wait_until(lambda: any("signal again to stop now" in line for line in server.stderr),
                           "the server waits for its Janitor")
            else:  # the first one was heard (two SIGTERMs pending at once are one), the server still stopping
                wait_until(lambda: not _listening(server.port), "the server stopped listening")
            server.proc.send_signal(getattr(signal, again))
            assert server.exit_code(timeout=60) == 0
        assert app.wait_until_held(timeout=0), "it stopped while its fetch was still unanswered"
        assert shop.get_transaction(txn.id).status == "accepted"  # untouched
    finally:
        app.release_held()


def _unanswered_janitor_fetch(shop: PaymentService, provider: CountingFakePay) -> Transaction:
    """A sale decided at the provider whose outcome the Janitor must read, and the provider holding
    that read unanswered (until `release_held`): the Janitor has a payment in hand."""
    from paywire.testing.emulator import Fault

    payment = shop.sale("fakepay", Money.of("4.00", "EUR"), source="tok_pending")
    (txn,) = shop.list_transactions(payment.id)
    wait_out_life(shop, [txn.id])
    provider.decide(payment.reference or "")
    provider.inject(Fault("hold", method="GET", path="/v1/payments/"))
    return txn


def _listening(port: int) -> bool:
    import socket

    try:
        socket.create_connection(("127.0.0.1", port), timeout=5).close()
    except ConnectionRefusedError:
        return False
    return True


def test_a_port_already_taken_is_a_configuration_error_naming_it_and_json_under_json(
        provider: tuple[CountingFakePay, str], pg_url: str, plugin_path: Path, tmp_path: Path) -> None:
    """uvicorn logged why it could not listen and exited: under `--json` stdout was empty, and
    nothing said what to do."""
    import socket

    from tests.serve.support import ServeProcess

    config = write_config(tmp_path / "paywire.toml", provider[1], pg_url)
    with socket.create_server(("127.0.0.1", 0)) as taken:
        busy = taken.getsockname()[1]
        server = ServeProcess(config, plugin_path, ["--port", str(busy), "--json"])  # the last --port wins
        assert server.exit_code() == 3
    assert server.proc.stdout is not None
    error = json.loads(server.proc.stdout.read())["error"]
    assert error["type"] == "ConfigurationError" and error["exit_code"] == 3
    assert f"127.0.0.1:{busy}" in error["message"] and "--port" in error["message"]


def test_port_0_says_which_port_it_listens_on(provider: tuple[CountingFakePay, str], pg_url: str, plugin_path: Path,
                                              tmp_path: Path) -> None:
    """`--port 0` is any free port: nothing said which, so nothing could reach the server."""
    config = write_config(tmp_path / "paywire.toml", provider[1], pg_url)
    with serving(config, plugin_path) as server:  # on the port it named
        assert server.request("GET", "/healthz")[0] == 200
        assert server.terminate() == 0


def test_the_webhook_endpoint_holds_what_max_in_hand_says(provider: tuple[CountingFakePay, str], pg_url: str,
                                                          plugin_path: Path, tmp_path: Path) -> None:
    """`[paywire.serve] max_in_hand` reaches the endpoint served (its bound shown by /healthz)."""
    config = write_config(tmp_path / "paywire.toml", provider[1], pg_url, {"max_in_hand": 3})
    with serving(config, plugin_path) as server:
        status, _, body = server.request("GET", "/healthz")
        assert status == 200 and json.loads(body)["webhooks"] == {"in_hand": 0, "max_in_hand": 3}
        assert server.terminate() == 0


@pytest.mark.parametrize("secret", [False, True])
def test_a_method_whose_webhooks_cannot_be_verified_is_said_at_start(
        provider: tuple[CountingFakePay, str], pg_url: str, plugin_path: Path, tmp_path: Path, secret: bool) -> None:
    """Without its webhook secret every delivery would be a 500, redelivered for days: said when the
    server starts, naming the variable, not first at a delivery. The server still starts (a method
    whose provider sends it no webhooks needs no secret)."""
    config = write_config(tmp_path / "paywire.toml", provider[1], pg_url)
    with serving(config, plugin_path, without=() if secret else ["PAYWIRE_FAKEPAY_WEBHOOK_SECRET"]) as server:
        said = server.said
        warned = [line for line in said if "webhooks for method 'fakepay' will be refused" in line]
        if secret:
            assert warned == [], said
        else:
            assert len(warned) == 1 and "PAYWIRE_FAKEPAY_WEBHOOK_SECRET" in warned[0] and "WARNING" in warned[0], said
        assert server.request("GET", "/healthz")[0] == 200
        assert server.terminate() == 0
