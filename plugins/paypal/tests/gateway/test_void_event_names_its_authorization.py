"""PAYMENT.AUTHORIZATION.VOIDED names the authorization PayPal voided. After a reauthorization a
payment holds several, and a void after a capture is sent to one of them (the original, which
PayPal voids with its reauthorization): only an event voiding that one settles it, never one
voiding another. Real emulator on loopback, the service on SQLite."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import Money, OutcomeUnknown, PaymentService
from paywire.ledger import TransactionKind, TransactionStatus
from paywire.testing.emulator import Fault

from .conftest import deliver_about

EUR = "EUR"
HONOR = 3.0  # days
VOIDED = "PAYMENT.AUTHORIZATION.VOIDED"


def eur(value: str) -> Money:
    return Money.of(value, EUR)


def _void_of(service: PaymentService, payment_id: str) -> Any:
    (void,) = [t for t in service.list_transactions(payment_id) if t.kind == TransactionKind.VOID]
    return void


def test_a_void_of_the_original_authorization_is_settled_by_its_own_event(
        paypal: Any, service: PaymentService) -> None:
    """The ledger's void went to the original authorization (no event told it of the
    reauthorization), its answer lost: PayPal voided that one and its reauthorization, one event
    each. The reauthorization's says nothing of where the void went; the original's settles it."""
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    original = payment.references["authorization"]
    paypal.days_pass(HONOR)
    renewed = paypal.run("reauthorize", reference=original, amount=eur("100.00"), idempotency_key=paypal.key())
    capture = paypal.run("capture", reference=renewed.reference, amount=eur("30.00"), final=False,
                         idempotency_key=paypal.key())
    deliver_about(paypal, service, "PAYMENT.CAPTURE.COMPLETED", capture.reference)
    assert service.get_payment(payment.id).captured == eur("30.00")

    paypal.app.inject(Fault(kind="drop_after", method="POST", path="/void$"))
    with pytest.raises(OutcomeUnknown):
        service.void(payment.id, idempotency_key=paypal.key())
    assert _void_of(service, payment.id).request["reference"] == original
    with paypal.app.lock:
        assert paypal.app.authorizations[original].status == "VOIDED"
        assert paypal.app.authorizations[renewed.reference].status == "VOIDED"

    deliver_about(paypal, service, VOIDED, renewed.reference)
    assert _void_of(service, payment.id).status == TransactionStatus.UNKNOWN
    deliver_about(paypal, service, VOIDED, original)
    assert _void_of(service, payment.id).status == TransactionStatus.SUCCEEDED
    payment = service.get_payment(payment.id)
    assert (payment.captured, payment.capturable) == (eur("30.00"), Money.zero(EUR))
