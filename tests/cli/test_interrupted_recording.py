"""Stopped (SIGTERM, Ctrl-C) after the provider answered, while the ledger records the answer:
the unit recording it rolls back, and the operation stays open in the ledger, settled later from
the provider. The command said exit 130, "interrupted", which the exit codes keep for a stop
before the provider was asked: a script took it for nothing done, and running the sale again
without its key charges twice. It is an unknown outcome, exit 5, naming the key that settles it
(the stop carries it: the ledger's connection it cut short cannot be read).
The ledger is PostgreSQL, so the test sees the command waiting to record (a lock it holds), not a
guess at when that is. Real subprocess, real emulator on loopback."""

from __future__ import annotations

import json
import os
import secrets
import signal
import subprocess
import time
from pathlib import Path

import pytest

from paywire.testing.emulator import Fault
from paywire_acme.emulator import AcmeEmulator
from tests.cli.test_cli import SCRIPT, SECRETS
from tests.ledger.conftest import PG_DSN

psycopg = pytest.importorskip("psycopg", reason="the ledger of this test is PostgreSQL")


def _waiting_on(conn: psycopg.Connection, schema: str) -> bool:
    """Whether another session waits for a lock on the schema's ledger tables."""
    row = conn.execute("SELECT count(*) FROM pg_locks l JOIN pg_class c ON c.oid = l.relation "
                       "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND NOT l.granted",
                       (schema,)).fetchone()
    return bool(row and row[0])


def test_a_stop_while_the_answer_is_recorded_is_an_unknown_outcome_naming_its_key(
        tmp_path: Path, acme: AcmeEmulator) -> None:
    try:
        watcher = psycopg.connect(PG_DSN, autocommit=True, connect_timeout=3)
    except psycopg.OperationalError as exc:
        pytest.skip(f"no PostgreSQL server at {PG_DSN}: {exc}")
    schema = f"pwcli_{os.getpid()}_{secrets.token_hex(4)}"
    (tmp_path / "paywire.toml").write_text(f"""
[paywire]
ledger = "{PG_DSN}?schema={schema}"

[methods.cards]
provider = "acme"
base_url = "{acme.base_url}"
""")
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PAYWIRE_")} | SECRETS
    assert SCRIPT
    acme.inject(Fault("hold", path="payments", method="POST"))
    try:
        with watcher, psycopg.connect(PG_DSN, connect_timeout=3) as holder, subprocess.Popen(
                [SCRIPT, "--json", "sale", "cards", "5.00", "EUR", "--source", "tok_ok"], cwd=tmp_path, env=environment,
                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) as proc:
            try:
                assert acme.wait_until_held(timeout=60)  # recorded pending, applied at the provider
                holder.execute(f'LOCK TABLE "{schema}".paywire_payments, "{schema}".paywire_transactions '
                               "IN ACCESS EXCLUSIVE MODE")
                acme.release_held()  # answered: the command now waits to record the answer
                deadline = time.monotonic() + 60
                while not _waiting_on(watcher, schema):
                    assert time.monotonic() < deadline and proc.poll() is None, "the command never came to record"
                    time.sleep(0.02)
                proc.send_signal(signal.SIGTERM)
                holder.rollback()
                out, err = proc.communicate(timeout=60)
            finally:
                proc.kill()
                acme.release_held()
        assert out, (proc.returncode, err)
        error = json.loads(out)["error"]
        assert proc.returncode == error["exit_code"] == 5 and error["type"] == "OutcomeUnknown", (out, err)
        assert f"run the same command again with --idempotency-key {error['idempotency_key']}" in error["message"]
        with psycopg.connect(PG_DSN) as conn:
            row = conn.execute(f'SELECT idempotency_key, status FROM "{schema}".paywire_transactions WHERE id = %s',
                               (error["transaction_id"],)).fetchone()
        assert row == (error["idempotency_key"], "pending"), "left open, settled from the provider later"
        assert len(acme.payments) == 1
    finally:
        with psycopg.connect(PG_DSN, autocommit=True) as conn:
            conn.execute(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
