"""A sale Braintree answers AUTHORIZING (the processor has not decided yet) is accepted; when
Braintree authorizes it later and holds it AUTHORIZED, not submitted for settlement (it charged
nothing: "you must use captureTransaction"), the sale is finished by the Janitor's resend under
its key, which submits it; reconciliation itself only reads. The ledger counts it captured only
from Braintree's answer; a lost submission leaves it open until a later pass reads it; one
Braintree declines, or that is voided or expires before it is submitted, charged nothing: failed."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from paywire import Address, Customer, LineItem, Money, Order, PaymentService
from paywire.errors import InvalidRequest, PaywireError
from paywire.ledger.model import PaymentState
from paywire.serve.janitor import Janitor, PassReport
from paywire.testing.emulator import Fault
from paywire_braintree.emulator import BraintreeEmulator

EUR = "EUR"
AUTHORIZING_CHARGE = "paywire-emulator-authorizing-charge-nonce"
_CAPTURED = ("SUBMITTED_FOR_SETTLEMENT", "SETTLING", "SETTLED")


def _held(emulator: BraintreeEmulator, reference: str) -> Money:
    """What Braintree holds captured of the sale `reference`."""
    transaction = emulator.transactions[reference]
    return Money.of(str(transaction.amount if transaction.status in _CAPTURED else 0), EUR)


def _sale(service: PaymentService, emulator: BraintreeEmulator, key: str) -> tuple[str, str]:
    """A sale Braintree answers AUTHORIZING: (its transaction in the ledger, Braintree's id)."""
    payment = service.sale("braintree", Money.of("12.00", EUR), source=AUTHORIZING_CHARGE, order_id=key,
                           idempotency_key=key)
    (txn,) = service.list_transactions(payment.id)
    assert txn.status == "accepted"
    reference = payment.reference or ""
    assert emulator.transactions[reference].status == "AUTHORIZING"
    assert payment.captured == Money.of("0", EUR)
    return txn.id, reference


def _pass(service: PaymentService, step_clock: Callable[..., None]) -> PassReport:
    """A Janitor pass an hour later by the ledger's clock (every open request's life over)."""
    step_clock(service)
    return Janitor(service).run_pass()


def test_a_sale_authorized_after_authorizing_is_submitted_by_the_janitor_and_counted_captured(
        service: PaymentService, emulator: BraintreeEmulator, step_clock: Callable[..., None]) -> None:
    emulator.settlement = "batch"
    txn_id, reference = _sale(service, emulator, "sz-1")
    emulator.settle(reference)  # the processor authorizes it; Braintree holds it AUTHORIZED
    assert emulator.transactions[reference].status == "AUTHORIZED"
    service.reconcile()  # reads only: it submits nothing, and counts nothing captured
    assert emulator.transactions[reference].status == "AUTHORIZED"
    payment_id = service.get_transaction(txn_id).payment_id or ""
    assert service.get_payment(payment_id).captured == Money.of("0", EUR)

    report = _pass(service, step_clock)
    assert emulator.transactions[reference].status == "SUBMITTED_FOR_SETTLEMENT"
    assert service.get_transaction(txn_id).status == "succeeded"
    payment = service.get_payment(payment_id)
    assert payment.captured == _held(emulator, reference) == Money.of("12.00", EUR)
    assert payment.state == PaymentState.CAPTURED
    assert report.resent == (txn_id,)
    assert not service.reconcile(payment_id=payment_id).mismatches
    assert emulator.transactions[reference].status == "SUBMITTED_FOR_SETTLEMENT", "submitted once"


@pytest.mark.parametrize("lost", ["landed, its answer lost", "never reached Braintree"])
def test_a_lost_submission_leaves_the_sale_open_and_a_later_pass_records_it(
        service: PaymentService, emulator: BraintreeEmulator, step_clock: Callable[..., None], lost: str) -> None:
    emulator.settlement = "batch"
    txn_id, reference = _sale(service, emulator, "sz-lost")
    emulator.settle(reference)
    landed = lost.startswith("landed")
    emulator.inject(Fault("drop_after", path="captureTransaction") if landed
                    else Fault("status", status=503, path="captureTransaction"))
    first = _pass(service, step_clock)
    txn = service.get_transaction(txn_id)
    assert txn.status == "unknown", "sent, no answer: never failed, never captured"
    assert emulator.transactions[reference].status == ("SUBMITTED_FOR_SETTLEMENT" if landed else "AUTHORIZED")
    assert service.get_payment(txn.payment_id or "").captured == Money.of("0", EUR)
    assert first.resent == (txn_id,)

    report = _pass(service, step_clock)
    assert emulator.transactions[reference].status == "SUBMITTED_FOR_SETTLEMENT"
    assert service.get_transaction(txn_id).status == "succeeded"
    assert service.get_payment(txn.payment_id or "").captured == _held(emulator, reference) == Money.of("12.00", EUR)
    assert report.resent == (() if landed else (txn_id,)), "read submitted: nothing sent again"


@pytest.mark.parametrize("outcome", ["PROCESSOR_DECLINED", "FAILED", "GATEWAY_REJECTED"])
def test_a_sale_declined_after_authorizing_is_failed_and_charged_nothing(
        service: PaymentService, emulator: BraintreeEmulator, step_clock: Callable[..., None], outcome: str) -> None:
    txn_id, reference = _sale(service, emulator, f"sz-{outcome.lower()}")
    emulator.settle(reference, outcome)
    assert emulator.transactions[reference].status == outcome
    _pass(service, step_clock)
    (txn,) = service.list_transactions(service.get_transaction(txn_id).payment_id)
    assert txn.status == "failed"
    payment = service.get_payment(txn.payment_id or "")
    assert payment.state == PaymentState.FAILED
    assert payment.captured == payment.authorized == Money.of("0", EUR)
    assert emulator.transactions[reference].status == outcome


@pytest.mark.parametrize("released", ["voided", "expired"])
@pytest.mark.parametrize("when", ["before the pass", "between the read and the resend"])
def test_a_sale_released_before_it_was_submitted_is_failed_never_captured(
        service: PaymentService, emulator: BraintreeEmulator, monkeypatch: pytest.MonkeyPatch,
        step_clock: Callable[..., None], released: str, when: str) -> None:
    txn_id, reference = _sale(service, emulator, f"sz-{released}")
    emulator.settle(reference)

    def release() -> None:
        with emulator.lock:
            if released == "expired":
                emulator.operations.expire(emulator.transactions[reference])
            else:  # the Control Panel's void of the authorization
                emulator.operations.reverse({"transactionId": reference})

    if when == "before the pass":
        release()
    else:  # Braintree releases it after the Janitor read it AUTHORIZED, before its resend lands
        resend = service.resend_unfinished

        def released_first(transaction_id: str) -> object:
            release()
            return resend(transaction_id)

        monkeypatch.setattr(service, "resend_unfinished", released_first)
    _pass(service, step_clock)
    assert emulator.transactions[reference].status == ("VOIDED" if released == "voided" else "AUTHORIZATION_EXPIRED")
    txn = service.get_transaction(txn_id)
    assert txn.status == "failed"
    payment = service.get_payment(txn.payment_id or "")
    assert payment.state == PaymentState.FAILED
    assert payment.captured == Money.of("0", EUR)


def _detailed_sale(service: PaymentService, emulator: BraintreeEmulator, key: str) -> tuple[str, str]:
    """A sale Braintree answers AUTHORIZING, made with details the ledger does not keep whole (the
    order's items and addresses, the buyer's contact): (its transaction, Braintree's id)."""
    amount = Money.of("12.00", EUR)
    buyer = Customer(email="buyer@example.com", name="A Buyer", phone="+3312345678")
    order = Order(id=key, amount=amount, customer=buyer, description="two mugs",
                  items=(LineItem(name="mug", quantity=2, unit_price=Money.of("6.00", EUR), sku="MUG-1"),),
                  billing=Address(line1="1 rue de la Paix", city="Paris", postal_code="75002", country="FR"))
    payment = service.sale("braintree", amount, source=AUTHORIZING_CHARGE, order=order, customer=buyer,
                           idempotency_key=key)
    (txn,) = service.list_transactions(payment.id)
    assert txn.status == "accepted" and txn.request.get("unstored")
    reference = payment.reference or ""
    assert emulator.transactions[reference].status == "AUTHORIZING"
    return txn.id, reference


def test_a_sale_made_with_details_the_ledger_does_not_keep_is_finished_by_the_janitor(
        service: PaymentService, emulator: BraintreeEmulator, step_clock: Callable[..., None]) -> None:
    emulator.settlement = "batch"
    txn_id, reference = _detailed_sale(service, emulator, "sz-detailed")
    emulator.settle(reference)
    made = len(emulator.transactions)

    report = _pass(service, step_clock)
    assert report.resent == (txn_id,) and not report.errors
    assert emulator.transactions[reference].status == "SUBMITTED_FOR_SETTLEMENT"
    assert len(emulator.transactions) == made, "finished, never charged again"
    txn = service.get_transaction(txn_id)
    assert txn.status == "succeeded"
    payment = service.get_payment(txn.payment_id or "")
    assert payment.captured == _held(emulator, reference) == Money.of("12.00", EUR)
    assert payment.state == PaymentState.CAPTURED


def test_the_janitors_resend_of_a_detailed_sale_search_hides_writes_nothing(
        service: PaymentService, emulator: BraintreeEmulator, step_clock: Callable[..., None]) -> None:
    emulator.settlement = "batch"
    txn_id, reference = _detailed_sale(service, emulator, "sz-hidden")
    emulator.settle(reference)
    made = len(emulator.transactions)
    service.reconcile()  # read by its reference: unfinished, flagged for the resend
    emulator.search_lag = 3600.0  # search no longer shows the sale: its resend cannot find it

    report = _pass(service, step_clock)
    assert report.resent == (txn_id,) and not report.errors
    assert len(emulator.transactions) == made, "no second charge, and no charge without the order's details"
    assert emulator.transactions[reference].status == "AUTHORIZED"
    txn = service.get_transaction(txn_id)
    assert txn.status == "unknown", "left open: never failed, never captured"
    assert service.get_payment(txn.payment_id or "").captured == Money.of("0", EUR)

    emulator.search_lag = 0.0  # search shows it again: the next pass finishes it
    _pass(service, step_clock)
    assert emulator.transactions[reference].status == "SUBMITTED_FOR_SETTLEMENT"
    assert len(emulator.transactions) == made
    assert service.get_transaction(txn_id).status == "succeeded"


def test_a_callers_retry_of_a_detailed_sale_is_still_refused(
        service: PaymentService, emulator: BraintreeEmulator) -> None:
    emulator.settlement = "batch"
    txn_id, reference = _detailed_sale(service, emulator, "sz-retry")
    emulator.settle(reference)
    service.reconcile()
    calls = len(emulator.calls)
    with pytest.raises(InvalidRequest) as refused:
        service.retry(txn_id)
    assert refused.value.code == "request_not_stored"
    assert len(emulator.calls) == calls, "nothing sent"
    assert emulator.transactions[reference].status == "AUTHORIZED"


def test_the_unfinished_resend_of_a_retryably_failed_detailed_sale_makes_no_new_attempt(
        service: PaymentService, emulator: BraintreeEmulator) -> None:
    emulator.inject(Fault("status", status=503, path="/graphql/search"))  # the read before the write: nothing sent
    order = Order(id="sz-failed", amount=Money.of("12.00", EUR), description="two mugs")
    with pytest.raises(PaywireError) as failed:
        service.sale("braintree", Money.of("12.00", EUR), source=AUTHORIZING_CHARGE, order=order,
                     idempotency_key="sz-failed")
    txn = service.get_transaction(failed.value.transaction_id or "")
    assert txn.status == "failed" and txn.retryable and not emulator.transactions
    with pytest.raises(PaywireError):
        service.resend_unfinished(txn.id)  # answered as recorded: never a new request
    assert not emulator.transactions, "no charge without the order's details"
    assert [t.id for t in service.list_transactions(txn.payment_id)] == [txn.id]
