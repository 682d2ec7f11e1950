"""Braintree's notifications delivered at once to several workers sharing one PostgreSQL ledger:
each copy of a notification, and a capture made in the Control Panel notified again under another
timestamp, is one transaction in the ledger; a refund of that capture notified at the same time
is counted once, with it; what the ledger ends with is what Braintree holds, as reconcile() reads."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

import paywire_braintree
from paywire import Gateway, Money, PaymentService, Plugins, Retry
from paywire.ledger import open_ledger
from paywire.testing.emulator import EmulatorServer
from paywire.testing.sandbox import Sandbox
from paywire_braintree.emulator import BraintreeEmulator
from paywire_braintree.emulator.model import Transaction
from paywire_braintree.emulator.webhooks import notification_xml, signed_form

psycopg = pytest.importorskip("psycopg", reason="the workers share a PostgreSQL ledger (pip install 'paywire[postgresql]')")

DSN = os.environ.get("PAYWIRE_TEST_POSTGRES", "postgresql://postgres@127.0.0.1:5432/test")
EUR = "EUR"
_FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.fixture
def ledger_url() -> Iterator[str]:
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


def _body(emulator: BraintreeEmulator, kind: str, transaction: Transaction, at: datetime) -> bytes:
    with emulator.lock:
        return signed_form(emulator.public_key, emulator.private_key, notification_xml(kind, transaction, at))


def test_notifications_delivered_at_once_to_workers_sharing_a_ledger_apply_once(
    sandbox: Sandbox, emulator: BraintreeEmulator, ledger_url: str
) -> None:
    plugins = Plugins()
    plugins.register(paywire_braintree)
    emulator.settlement = "batch"
    with EmulatorServer(emulator) as server, \
            Gateway([sandbox.method("braintree", server.url)], plugins=plugins, retry=Retry.never()) as gateway:
        workers = [PaymentService(gateway, open_ledger(ledger_url)) for _ in range(3)]
        try:
            service = workers[0]
            payment = service.authorize("braintree", Money.of("30.00", EUR), source="fake-valid-nonce", order_id="w",
                                        idempotency_key="w")
            now = datetime.now(UTC)
            with emulator.lock:  # the merchant captures and refunds in the Control Panel
                capture = emulator.operations.partial_capture({"transactionId": payment.reference,
                                                               "transaction": {"amount": "10.00"}})
            emulator.settle(capture.id)
            with emulator.lock:
                refund = emulator.operations.refund({"transactionId": capture.id, "refund": {"amount": "4.00"}},
                                                    origin="CONTROL_PANEL")
            emulator.settle(refund.id)
            bodies = [_body(emulator, "transaction_settled", capture, now - timedelta(minutes=2)),
                      _body(emulator, "transaction_settled", capture, now - timedelta(minutes=1)),
                      _body(emulator, "transaction_settled", refund, now)]
            start = threading.Barrier(len(bodies) * len(workers))
            errors: list[BaseException] = []

            def deliver(worker: PaymentService, body: bytes) -> None:
                try:
                    start.wait()
                    worker.receive_webhook("braintree", _FORM, body)
                except BaseException as exc:
                    errors.append(exc)

            threads = [threading.Thread(target=deliver, args=(worker, body)) for body in bodies for worker in workers]
            for thread in threads:
                thread.start()
            for thread in threads:
                thread.join()
            assert not errors, errors
            held = service.get_payment(payment.id)
            assert (held.captured.minor, held.refunded.minor) == (1000, 400)
            moved = [(t.kind, t.provider_reference) for t in service.list_transactions(payment.id)
                     if t.kind in ("capture", "refund")]
            assert sorted(moved) == sorted([("capture", capture.id), ("refund", refund.id)])
            service.reconcile(payment_id=payment.id)
            held = service.get_payment(payment.id)
            assert (held.captured.minor, held.refunded.minor) == (1000, 400)
        finally:
            for worker in workers:
                worker.ledger.close()
