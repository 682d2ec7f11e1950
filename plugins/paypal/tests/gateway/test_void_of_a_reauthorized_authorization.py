"""A void sent to an authorization PayPal has reauthorized since (the ledger not told yet: no
event came) releases that authorization, and a reauthorization PayPal already closed (captured
in full, beside paywire) is left as it is. The order reads captured, its live authorization (the
reauthorization) CAPTURED: nothing there says the void did not land, so reconciliation never
records it failed, whose request took effect. Nor is a void settled succeeded by another
authorization of the order that PayPal voided (a reauthorization a later one replaced): only the
void of the authorization it was sent to says it landed. Real emulator on loopback."""

from __future__ import annotations

import pytest

from paywire import Money, OutcomeUnknown, PaymentService
from paywire.ledger import TransactionKind, TransactionStatus
from paywire.testing.emulator import Fault

from .conftest import after_their_lives

EUR = "EUR"
HONOR = 3.0  # days


def eur(value: str) -> Money:
    return Money.of(value, EUR)


def _void_of(service: PaymentService, payment_id: str):
    (void,) = [t for t in service.list_transactions(payment_id) if t.kind == TransactionKind.VOID]
    return void


def test_a_lost_void_of_the_original_authorization_is_never_failed_once_its_reauthorization_is_captured(
        paypal, service: PaymentService, monkeypatch: pytest.MonkeyPatch) -> None:
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    original = payment.references["authorization"]
    paypal.days_pass(HONOR)
    renewed = paypal.run("reauthorize", reference=original, amount=eur("100.00"), idempotency_key=paypal.key())
    paypal.run("capture", reference=renewed.reference, amount=eur("30.00"), final=True, idempotency_key=paypal.key())

    paypal.app.inject(Fault(kind="drop_after", method="POST", path="/void$"))
    with pytest.raises(OutcomeUnknown):
        service.void(payment.id, idempotency_key=paypal.key())
    with paypal.app.lock:
        assert paypal.app.authorizations[original].status == "VOIDED", "the void took effect"
        assert paypal.app.authorizations[renewed.reference].status == "CAPTURED"

    after_their_lives(service, monkeypatch)
    service.reconcile(payment_id=payment.id)
    void = _void_of(service, payment.id)
    assert void.status != TransactionStatus.FAILED, void.error_message
    captured = service.get_payment(payment.id)
    assert captured.captured == eur("30.00") and captured.capturable == Money.zero(EUR)


def test_a_void_that_never_landed_is_not_settled_by_another_authorization_voided(
        paypal, service: PaymentService, monkeypatch: pytest.MonkeyPatch) -> None:
    """The order's first reauthorization, replaced by a second one, reads VOIDED; the void the
    ledger sent to the original authorization was answered 500 before PayPal applied it."""
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    original = payment.references["authorization"]
    paypal.days_pass(HONOR)
    replaced = paypal.run("reauthorize", reference=original, amount=eur("100.00"), idempotency_key=paypal.key())
    renewed = paypal.run("reauthorize", reference=original, amount=eur("100.00"), idempotency_key=paypal.key())
    paypal.run("capture", reference=renewed.reference, amount=eur("30.00"), final=True, idempotency_key=paypal.key())

    paypal.app.inject(Fault(kind="status", status=500, method="POST", path="/void$", times=10))
    with pytest.raises(OutcomeUnknown):
        service.void(payment.id, idempotency_key=paypal.key())
    paypal.app.clear_faults()
    with paypal.app.lock:
        assert paypal.app.authorizations[original].status == "CREATED", "the void never landed"
        assert paypal.app.authorizations[replaced.reference].status == "VOIDED"

    after_their_lives(service, monkeypatch)
    service.reconcile(payment_id=payment.id)
    assert _void_of(service, payment.id).status == TransactionStatus.FAILED
