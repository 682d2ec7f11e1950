"""A void retried under its key goes where its first attempt went. The first attempt, sent to the
original authorization, never reached PayPal (reconciliation found it not applied: retryably
failed); PayPal reauthorized the payment since. The retry voids the original authorization (and
with it its open reauthorization), as the first attempt would have: never another authorization
than the one its key was sent to. Real emulator on loopback, the service on SQLite."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import Money, OutcomeUnknown, PaymentService
from paywire.ledger import PaymentState, TransactionKind, TransactionStatus
from paywire.testing.emulator import Fault

from .conftest import after_their_lives

EUR = "EUR"
HONOR = 3.0  # days


def eur(value: str) -> Money:
    return Money.of(value, EUR)


@pytest.mark.parametrize("first", ["failed", "unknown"])
def test_a_void_retried_after_a_reauthorization_goes_to_the_authorization_its_key_was_sent_to(
        paypal: Any, service: PaymentService, monkeypatch: pytest.MonkeyPatch, first: str) -> None:
    """The first attempt "failed" (reconciled not applied once its life was over): sent again as
    a new attempt; "unknown" (still open): resent as it was."""
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    original = payment.references["authorization"]
    key = paypal.key()
    paypal.app.inject(Fault(kind="status", status=500, method="POST", path="/void$", times=10))
    with pytest.raises(OutcomeUnknown):
        service.void(payment.id, idempotency_key=key)
    paypal.app.clear_faults()

    paypal.days_pass(HONOR)
    renewed = paypal.run("reauthorize", reference=original, amount=eur("100.00"), idempotency_key=paypal.key())
    if first == "failed":
        after_their_lives(service, monkeypatch)
    service.reconcile(payment_id=payment.id)
    (sent,) = [t for t in service.list_transactions(payment.id) if t.kind == TransactionKind.VOID]
    assert (sent.status, sent.request["reference"]) == (first, original)
    assert service.get_payment(payment.id).references["authorization"] == renewed.reference

    payment = service.void(payment.id, idempotency_key=key)
    voids = [t for t in service.list_transactions(payment.id) if t.kind == TransactionKind.VOID]
    assert {t.request["reference"] for t in voids} == {original}
    assert voids[-1].status == TransactionStatus.SUCCEEDED
    with paypal.app.lock:
        assert paypal.app.authorizations[original].status == "VOIDED"
        assert paypal.app.authorizations[renewed.reference].status == "VOIDED"
    assert payment.state == PaymentState.VOIDED
