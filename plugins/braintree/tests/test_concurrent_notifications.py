"""Braintree's notifications delivered at once to several workers sharing one PostgreSQL ledger:
each copy of a notification, and a capture made in the Control Panel notified again under another
timestamp, is one transaction in the ledger; a refund of that capture notified at the same time
is counted once, with it; what the ledger ends with is what Braintree holds, as reconcile() reads."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest

from paywire import Money, PaymentService
from paywire_braintree.emulator import BraintreeEmulator
from paywire_braintree.emulator.model import Transaction
from paywire_braintree.emulator.webhooks import notification_xml, signed_form

pytest.importorskip("psycopg", reason="the workers share a PostgreSQL ledger (pip install 'paywire[postgresql]')")

EUR = "EUR"
_FORM = {"content-type": "application/x-www-form-urlencoded"}


def _body(emulator: BraintreeEmulator, kind: str, transaction: Transaction, at: datetime) -> bytes:
    with emulator.lock:
        return signed_form(emulator.public_key, emulator.private_key, notification_xml(kind, transaction, at))


def test_notifications_delivered_at_once_to_workers_sharing_a_ledger_apply_once(
    emulator: BraintreeEmulator, workers: Callable[[int], list[PaymentService]]
) -> None:
    emulator.settlement = "batch"
    shared = workers(3)
    service = shared[0]
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
    start = threading.Barrier(len(bodies) * len(shared))
    errors: list[BaseException] = []

    def deliver(worker: PaymentService, body: bytes) -> None:
        try:
            start.wait()
            worker.receive_webhook("braintree", _FORM, body)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=deliver, args=(worker, body)) for body in bodies for worker in shared]
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
