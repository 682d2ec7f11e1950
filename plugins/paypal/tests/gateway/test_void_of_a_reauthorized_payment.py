"""A void of a payment PayPal reauthorized goes to its original authorization: PayPal refuses
to void a reauthorization (CANNOT_BE_VOIDED: "Please void the original parent authorization"),
and voiding the original voids its open reauthorization with it. However the ledger learnt of the
reauthorization (reconciliation, PAYMENT.AUTHORIZATION.CREATED), captures go to the
reauthorization and the void to the original, whose id its request names: reconciliation and
PAYMENT.AUTHORIZATION.VOIDED settle a void whose answer was lost by that authorization. Real
emulator on loopback, the service on SQLite."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import VOID_TARGET, Money, OutcomeUnknown, PaymentService
from paywire.ledger import PaymentState, TransactionKind, TransactionStatus
from paywire.testing.emulator import Fault
from paywire.testing.ledger_checks import reconciled_again_changes_nothing

from .conftest import deliver_about

EUR = "EUR"
HONOR = 3.0  # days
VOIDED = "PAYMENT.AUTHORIZATION.VOIDED"


def eur(value: str) -> Money:
    return Money.of(value, EUR)


def _reauthorized(paypal: Any, service: PaymentService, learnt: str, captured: str | None) -> tuple[str, str, str]:
    """A payment authorized through the service, reauthorized beside it once the honor period is
    over, the ledger told of that by `learnt` ("reconcile" or "event"), then `captured` through
    the service (not final). Returns the payment's id, its original authorization, its
    reauthorization."""
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    original = payment.references["authorization"]
    paypal.days_pass(HONOR)
    renewed = paypal.run("reauthorize", reference=original, amount=eur("100.00"), idempotency_key=paypal.key())
    if learnt == "event":
        deliver_about(paypal, service, "PAYMENT.AUTHORIZATION.CREATED", renewed.reference)
    else:
        service.reconcile(payment_id=payment.id)
    assert service.get_payment(payment.id).references["authorization"] == renewed.reference
    if captured is not None:
        service.capture(payment.id, eur(captured), final=False, idempotency_key=paypal.key())
        with paypal.app.lock:
            assert paypal.app.authorizations[renewed.reference].status == "PARTIALLY_CAPTURED"
    return payment.id, original, renewed.reference


def _void_of(service: PaymentService, payment_id: str) -> Any:
    (void,) = [t for t in service.list_transactions(payment_id) if t.kind == TransactionKind.VOID]
    return void


def _both_voided(paypal: Any, original: str, renewed: str) -> None:
    with paypal.app.lock:
        assert paypal.app.authorizations[original].status == "VOIDED"
        assert paypal.app.authorizations[renewed].status == "VOIDED"


def _released(service: PaymentService, payment_id: str, captured: str | None, original: str, renewed: str) -> None:
    """The ledger after the void: voided with nothing captured; else the captures stand and
    nothing more can be captured. Captures act on the reauthorization, voids on the original."""
    payment = service.get_payment(payment_id)
    assert payment.capturable == Money.zero(EUR)
    assert (payment.references["authorization"], payment.references[VOID_TARGET]) == (renewed, original)
    if captured is None:
        assert (payment.state, payment.captured) == (PaymentState.VOIDED, Money.zero(EUR))
        assert payment.voided
    else:
        assert (payment.state, payment.captured) == (PaymentState.CAPTURED, eur(captured))
        assert payment.capture_closed and not payment.voided
    assert not service.reconcile(payment_id=payment_id).mismatches
    reconciled_again_changes_nothing(service, payment_id)


@pytest.mark.parametrize("captured", [None, "30.00"])
@pytest.mark.parametrize("learnt", ["reconcile", "event"])
def test_a_void_of_a_reauthorized_payment_voids_its_original_authorization(
        paypal: Any, service: PaymentService, learnt: str, captured: str | None) -> None:
    payment_id, original, renewed = _reauthorized(paypal, service, learnt, captured)
    service.void(payment_id, idempotency_key=paypal.key())
    void = _void_of(service, payment_id)
    assert (void.status, void.request["reference"]) == (TransactionStatus.SUCCEEDED, original), void.error_message
    _both_voided(paypal, original, renewed)
    _released(service, payment_id, captured, original, renewed)


@pytest.mark.parametrize("captured", [None, "30.00"])
def test_a_lost_answer_to_the_void_of_a_reauthorized_payment_is_reconciled(
        paypal: Any, service: PaymentService, captured: str | None) -> None:
    payment_id, original, renewed = _reauthorized(paypal, service, "event", captured)
    paypal.app.inject(Fault(kind="drop_after", method="POST", path="/void$"))
    with pytest.raises(OutcomeUnknown):
        service.void(payment_id, idempotency_key=paypal.key())
    _both_voided(paypal, original, renewed)
    assert _void_of(service, payment_id).request["reference"] == original

    service.reconcile(payment_id=payment_id)
    void = _void_of(service, payment_id)
    assert (void.status, void.settled_by) == (TransactionStatus.SUCCEEDED, "reconcile"), void.error_message
    _released(service, payment_id, captured, original, renewed)


@pytest.mark.parametrize("captured", [None, "30.00"])
def test_the_void_event_of_the_original_authorization_settles_a_lost_void(
        paypal: Any, service: PaymentService, captured: str | None) -> None:
    """PayPal voided the original and its reauthorization, one event each: the reauthorization's
    says nothing of where the void went; the original's settles it."""
    payment_id, original, renewed = _reauthorized(paypal, service, "event", captured)
    paypal.app.inject(Fault(kind="drop_after", method="POST", path="/void$"))
    with pytest.raises(OutcomeUnknown):
        service.void(payment_id, idempotency_key=paypal.key())
    _both_voided(paypal, original, renewed)

    deliver_about(paypal, service, VOIDED, renewed)
    if captured is not None:  # the event of another authorization than the void's, after a capture
        assert _void_of(service, payment_id).status == TransactionStatus.UNKNOWN
    deliver_about(paypal, service, VOIDED, original)
    void = _void_of(service, payment_id)
    assert (void.status, void.settled_by, void.request["reference"]) == (
        TransactionStatus.SUCCEEDED, "webhook", original)
    _released(service, payment_id, captured, original, renewed)
