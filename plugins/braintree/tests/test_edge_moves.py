"""Braintree's moves the ledger hears of late or not at all, through the payment service on a
SQLite ledger and the emulator on loopback: answers lost after Braintree acted, settlements the
batch declines later, notifications delivered late, twice or before the answer, in every
currency exponent Braintree takes.

A capture or refund that Braintree submitted for settlement was reported done (paywire's
`succeeded`); when the batch then declines it, it took effect and was undone, not failed:
reconciliation lists it `reversed`, so a lost request that made it is recorded succeeded and
then reversed, as the transaction_settlement_declined notification records it, never failed. One
that only ever waited for its settlement (SETTLEMENT_PENDING, an `accepted` answer) and was
declined never took effect: failed.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pytest

from paywire import (
    Money,
    OutcomeUnknown,
    PaymentService,
    PaywireError,
    StateError,
    Subject,
)
from paywire.ledger import PaymentState, Transaction, TransactionStatus
from paywire.testing.emulator import Fault
from paywire_braintree.emulator import BraintreeEmulator

from .conftest import KeptNotifications

S = TransactionStatus
_FORM = {"content-type": "application/x-www-form-urlencoded"}
_CURRENCIES = {"EUR": "40.00", "JPY": "4000", "KWD": "4.125"}


@pytest.fixture
def payments(services: Callable[..., PaymentService], app: KeptNotifications) -> PaymentService:
    """A payment service as `service` is, on the emulator keeping its notifications."""
    return services(app=app)


def _deliver(service: PaymentService, body: bytes) -> None:
    service.receive_webhook("braintree", _FORM, body)


def _lost(app: BraintreeEmulator, path: str) -> None:
    app.inject(Fault("drop_after", path=path))


def _unknown(call: Callable[[], object]) -> str:
    """The id of the transaction `call` leaves unknown."""
    with pytest.raises(OutcomeUnknown) as raised:
        call()
    assert raised.value.transaction_id
    return raised.value.transaction_id


def _txn(service: PaymentService, transaction_id: str) -> Transaction:
    return service.get_transaction(transaction_id)


def _reversal_of(service: PaymentService, txn: Transaction) -> list[Transaction]:
    return [t for t in service.list_transactions(txn.payment_id or "") if t.kind == "reversal"
            and t.parent_id == txn.id]


def _authorized(service: PaymentService, currency: str, amount: str, key: str) -> str:
    return service.authorize("braintree", Money.of(amount, currency), source="fake-valid-nonce", order_id=key,
                             idempotency_key=key).id


@pytest.mark.parametrize("currency", list(_CURRENCIES))
@pytest.mark.parametrize("told", ["never", "before reconcile", "after reconcile", "twice"])
def test_a_lost_capture_declined_at_settlement_is_reconciled_reversed_not_failed(
    payments: PaymentService, app: KeptNotifications, currency: str, told: str
) -> None:
    """The capture's answer is lost; Braintree made it (SUBMITTED_FOR_SETTLEMENT), and the batch
    then declines it. Recorded failed, the ledger would say the request never took effect, while
    the notification of the same decline records it succeeded and reversed."""
    amount = _CURRENCIES[currency]
    payment_id = _authorized(payments, currency, amount, f"auth-{currency}")
    half = Money.of(amount, currency)
    half = Money(half.minor // 2, currency)
    _lost(app, "partialCaptureTransaction")
    lost = _unknown(lambda: payments.capture(payment_id, half, idempotency_key=f"cap-{currency}"))
    app.clear_faults()
    (capture,) = (t for t in app.transactions.values() if t.parent is not None)
    assert capture.status == "SUBMITTED_FOR_SETTLEMENT"
    app.settle(capture.id, "SETTLEMENT_DECLINED")
    (body,) = app.sent
    if told in ("before reconcile", "twice"):
        _deliver(payments, body)
    report = payments.reconcile(payment_id=payment_id)
    if told in ("after reconcile", "twice"):
        _deliver(payments, body)
    txn = _txn(payments, lost)
    assert txn.status == S.SUCCEEDED, (txn, report)
    assert len(_reversal_of(payments, txn)) == 1
    payment = payments.get_payment(payment_id)
    assert payment.captured == Money.zero(currency)
    assert payment.authorized == Money.of(amount, currency)
    assert payments.reconcile(payment_id=payment_id).clean


@pytest.mark.parametrize("told", ["never", "before reconcile", "after reconcile"])
def test_a_lost_refund_declined_at_settlement_is_reconciled_reversed_not_failed(
    payments: PaymentService, app: KeptNotifications, told: str
) -> None:
    """A refund whose answer is lost, submitted for settlement and then declined by the batch: it
    took effect and was undone; the ledger ends holding all of the sale captured, none refunded."""
    payment_id = payments.sale("braintree", Money.of("50.00", "EUR"), source="fake-valid-nonce", order_id="sale-r",
                               idempotency_key="sale-r").id
    sale = payments.get_payment(payment_id).reference or ""
    app.settle(sale)
    _lost(app, "refundTransaction")
    lost = _unknown(lambda: payments.refund(payment_id, Money.of("20.00", "EUR"), idempotency_key="refund-r"))
    app.clear_faults()
    (credit,) = (t for t in app.transactions.values() if t.kind == "credit")
    assert credit.status == "SUBMITTED_FOR_SETTLEMENT"
    app.sent.clear()
    app.settle(credit.id, "SETTLEMENT_DECLINED")
    (body,) = app.sent
    if told == "before reconcile":
        _deliver(payments, body)
    payments.reconcile(payment_id=payment_id)
    if told == "after reconcile":
        _deliver(payments, body)
    txn = _txn(payments, lost)
    assert txn.status == S.SUCCEEDED
    assert len(_reversal_of(payments, txn)) == 1
    payment = payments.get_payment(payment_id)
    assert (payment.captured, payment.refunded) == (Money.of("50.00", "EUR"), Money.zero("EUR"))
    assert payments.reconcile(payment_id=payment_id).clean


def test_a_lost_capture_that_only_waited_for_its_settlement_and_was_declined_is_failed(
    payments: PaymentService, app: KeptNotifications
) -> None:
    """A bank account's capture waits SETTLEMENT_PENDING (an accepted answer, never reported done):
    declined, it never took effect, and the lost request is failed, with nothing to reverse."""
    payment_id = payments.authorize("braintree", Money.of("30.00", "EUR"), source="paywire-emulator-bank-account-nonce",
                                    order_id="bank", idempotency_key="bank").id
    _lost(app, "partialCaptureTransaction")
    lost = _unknown(lambda: payments.capture(payment_id, Money.of("10.00", "EUR"), idempotency_key="bank-cap"))
    app.clear_faults()
    (capture,) = (t for t in app.transactions.values() if t.parent is not None)
    assert capture.status == "SETTLEMENT_PENDING"
    app.settle(capture.id, "SETTLEMENT_DECLINED")
    payments.reconcile(payment_id=payment_id)
    txn = _txn(payments, lost)
    assert txn.status == S.FAILED
    assert not _reversal_of(payments, txn)
    assert payments.get_payment(payment_id).captured == Money.zero("EUR")


def test_a_lost_whole_capture_declined_at_settlement_leaves_the_payment_voided_and_claims_nothing(
    payments: PaymentService, app: KeptNotifications
) -> None:
    """A keyed capture of all of it (a final partial capture) whose answer is lost, then declined:
    the authorization takes no more, so the payment is voided, nothing captured, and the capture
    is recorded as made and undone."""
    payment_id = _authorized(payments, "EUR", "25.00", "whole")
    _lost(app, "partialCaptureTransaction")
    lost = _unknown(lambda: payments.capture(payment_id, idempotency_key="whole-cap"))
    app.clear_faults()
    (capture,) = (t for t in app.transactions.values() if t.parent is not None)
    app.settle(capture.id, "SETTLEMENT_DECLINED")
    payments.reconcile(payment_id=payment_id)
    txn = _txn(payments, lost)
    assert txn.status == S.SUCCEEDED and len(_reversal_of(payments, txn)) == 1
    payment = payments.get_payment(payment_id)
    assert (payment.state, payment.captured) == (PaymentState.VOIDED, Money.zero("EUR"))


@pytest.mark.parametrize("operation", ["capture", "refund", "sale"])
def test_a_lost_request_declined_at_settlement_and_retried_is_recorded_reversed_not_failed(
    payments: PaymentService, app: KeptNotifications, operation: str
) -> None:
    """The retry under the lost request's key finds what it made, declined by the batch since:
    it took effect and was undone, as reconcile() and the notification record it. The retry
    answers the success the first request was, and the payment is read: its reversal recorded."""
    euros = Money.of("20.00", "EUR")
    call: Callable[[], object]
    if operation == "capture":
        payment_id = _authorized(payments, "EUR", "60.00", "retry-auth")
        path, call = "partialCaptureTransaction", lambda: payments.capture(payment_id, euros, idempotency_key="retry-op")
    elif operation == "refund":
        payment_id = payments.sale("braintree", Money.of("60.00", "EUR"), source="fake-valid-nonce",
                                   order_id="retry-sale", idempotency_key="retry-sale").id
        app.settle(payments.get_payment(payment_id).reference or "")
        path, call = "refundTransaction", lambda: payments.refund(payment_id, euros, idempotency_key="retry-op")
    else:
        path, call = "chargePaymentMethod", lambda: payments.sale("braintree", euros, source="fake-valid-nonce",
                                                                  order_id="retry-op", idempotency_key="retry-op")
    _lost(app, path)
    lost = _unknown(call)
    app.clear_faults()
    (made,) = (t for t in app.transactions.values() if t.order_id == "retry-op")
    app.settle(made.id, "SETTLEMENT_DECLINED")
    payments.retry(lost)
    txn = _txn(payments, lost)
    assert txn.status == S.SUCCEEDED and len(_reversal_of(payments, txn)) == 1, txn


# (operation, what Braintree did with it): submitted for settlement then declined by the batch (it
# took effect and was undone), declined while it only waited for settlement (SETTLEMENT_PENDING),
# or declined by the processor when it was made (neither took effect).
_FATES = [("capture", "submitted"), ("capture", "pending"), ("refund", "submitted"), ("refund", "pending"),
          ("refund", "refused"), ("sale", "submitted"), ("sale", "pending"), ("sale", "refused")]
_SOURCES = {"submitted": "fake-valid-nonce", "refused": "fake-valid-nonce"}


def _lost_request(payments: PaymentService, app: KeptNotifications, operation: str, fate: str) -> Callable[[], object]:
    """The call under key "op" whose answer is lost, made in Braintree as `fate` says; returns it,
    to be made again with the same key."""
    euros = Money.of("2004.00" if fate == "refused" else "20.00", "EUR")  # 2004.00: a refund's hard decline
    call: Callable[[], object]
    if operation == "capture":
        payment_id = payments.authorize("braintree", Money.of("60.00", "EUR"),
                                        source=_SOURCES.get(fate, "paywire-emulator-bank-account-nonce"),
                                        order_id="auth", idempotency_key="auth").id
        path, call = "partialCaptureTransaction", lambda: payments.capture(payment_id, euros, idempotency_key="op")
    elif operation == "refund":
        payment_id = payments.sale("braintree", Money.of("4000.00", "EUR"),
                                   source=_SOURCES.get(fate, "paywire-emulator-refund-pending-nonce"),
                                   order_id="sale", idempotency_key="sale").id
        app.settle(payments.get_payment(payment_id).reference or "")
        path, call = "refundTransaction", lambda: payments.refund(payment_id, euros, idempotency_key="op")
    else:
        source = {"submitted": "fake-valid-nonce", "pending": "paywire-emulator-bank-account-nonce",
                  "refused": "fake-processor-declined-visa-nonce"}[fate]
        path, call = "chargePaymentMethod", lambda: payments.sale("braintree", euros, source=source, order_id="op",
                                                                  idempotency_key="op")
    app.sent.clear()
    _lost(app, path)
    _unknown(call)
    app.clear_faults()
    return call


def _at_most_braintree(payments: PaymentService, app: KeptNotifications, payment_id: str) -> None:
    """The ledger claims no more captured or refunded than Braintree holds."""
    payment = payments.get_payment(payment_id)
    if payment.reference is None:  # a lost sale not yet found: the ledger claims nothing of it
        assert (payment.captured.minor, payment.refunded.minor) == (0, 0), payment
        return
    fetched = payments.gateway.execute("braintree", "fetch", Subject(reference=payment.reference, flow=payment.flow))
    assert payment.captured <= fetched.captured and payment.refunded <= fetched.refunded, (payment, fetched)


@pytest.mark.parametrize("order", list(itertools.permutations(("resend", "reconcile", "notify"))), ids="-".join)
@pytest.mark.parametrize("resend", ["retry", "same call"])
@pytest.mark.parametrize(("operation", "fate"), _FATES)
def test_a_lost_request_declined_ends_the_same_in_the_ledger_whichever_path_settles_it_first(
    payments: PaymentService, app: KeptNotifications, operation: str, fate: str, resend: str, order: tuple[str, ...]
) -> None:
    """A capture, refund or sale whose answer was lost, then declined: its resend under the key
    (`retry()`, or the same call again), reconcile() and the batch's notification settle it in
    any order, each seeing what the others recorded. Whichever comes first, the ledger ends the
    same: one submitted for settlement took effect (succeeded, then reversed once, the resend
    answering that success), one that never was failed (the resend answering the decline); the
    payment's totals are Braintree's, and at no step claim more, nor record failed what took
    effect."""
    call = _lost_request(payments, app, operation, fate)
    (made,) = (t for t in app.transactions.values() if t.order_id == "op")
    if fate != "refused":
        assert made.status == ("SUBMITTED_FOR_SETTLEMENT" if fate == "submitted" else "SETTLEMENT_PENDING")
        app.settle(made.id, "SETTLEMENT_DECLINED")
    bodies = list(app.sent)
    assert len(bodies) == (0 if fate == "refused" else 1)
    (lost,) = (t for t in payments.list_transactions() if t.idempotency_key == "op")
    took_effect = fate == "submitted"
    for step in order:
        if step == "resend":
            try:
                payments.retry(lost.id) if resend == "retry" else call()
            except PaywireError as error:
                assert not took_effect and not isinstance(error, OutcomeUnknown), error
            else:
                assert took_effect, "a resend finding what never took effect answered a success"
        elif step == "reconcile":
            payments.reconcile(payment_id=lost.payment_id)
        else:
            for body in bodies:
                _deliver(payments, body)
        _at_most_braintree(payments, app, lost.payment_id or "")
        assert _txn(payments, lost.id).status != S.FAILED or not took_effect
    txn = _txn(payments, lost.id)
    assert (txn.status, len(_reversal_of(payments, txn)), txn.provider_reference) == (
        (S.SUCCEEDED, 1, made.id) if took_effect else (S.FAILED, 0, made.id))
    payment = payments.get_payment(txn.payment_id or "")
    zero = Money.zero("EUR")
    expected = {
        "capture": (PaymentState.AUTHORIZED, Money.of("60.00", "EUR"), zero, zero),
        "refund": (PaymentState.CAPTURED, Money.of("4000.00", "EUR"), Money.of("4000.00", "EUR"), zero),
        "sale": (PaymentState.FAILED, zero, zero, zero),
    }[operation]
    assert (payment.state, payment.authorized, payment.captured, payment.refunded) == expected, payment
    report = payments.reconcile(payment_id=payment.id)
    assert report.clean, report
    assert len(_reversal_of(payments, _txn(payments, lost.id))) == (1 if took_effect else 0)


@pytest.mark.parametrize("told", ["before reconcile", "after reconcile"])
@pytest.mark.parametrize("operation", ["capture", "refund", "sale"])
def test_an_accepted_request_declined_while_it_waited_for_settlement_is_failed_whoever_tells(
    payments: PaymentService, app: KeptNotifications, operation: str, told: str
) -> None:
    """Answered accepted (SETTLEMENT_PENDING: a bank account's sale or capture, a refund that
    settles later), then declined: it never took effect. Its notification and reconcile(), in
    either order, record it failed, with no reversal of something never done."""
    if operation == "capture":
        payment_id = payments.authorize("braintree", Money.of("30.00", "EUR"),
                                        source="paywire-emulator-bank-account-nonce", order_id="w",
                                        idempotency_key="w").id
        payments.capture(payment_id, Money.of("10.00", "EUR"), idempotency_key="op")
    elif operation == "refund":
        payment_id = payments.sale("braintree", Money.of("30.00", "EUR"), source="paywire-emulator-refund-pending-nonce",
                                   order_id="w", idempotency_key="w").id
        app.settle(payments.get_payment(payment_id).reference or "")
        payments.refund(payment_id, Money.of("10.00", "EUR"), idempotency_key="op")
    else:
        payment_id = payments.sale("braintree", Money.of("10.00", "EUR"), source="paywire-emulator-bank-account-nonce",
                                   order_id="op", idempotency_key="op").id
    (txn,) = (t for t in payments.list_transactions(payment_id) if t.idempotency_key == "op")
    assert txn.status == S.ACCEPTED
    app.sent.clear()
    app.settle(txn.provider_reference or "", "SETTLEMENT_DECLINED")
    (body,) = app.sent
    for step in ("notify", "reconcile") if told == "before reconcile" else ("reconcile", "notify"):
        if step == "notify":
            _deliver(payments, body)
        else:
            payments.reconcile(payment_id=payment_id)
        txn = _txn(payments, txn.id)
        assert (txn.status, _reversal_of(payments, txn)) == (S.FAILED, []), step
    payment = payments.get_payment(payment_id)
    zero = Money.zero("EUR")
    assert (payment.captured, payment.refunded) == {
        "capture": (zero, zero), "refund": (Money.of("30.00", "EUR"), zero), "sale": (zero, zero)}[operation]
    assert payments.reconcile(payment_id=payment_id).clean


@pytest.mark.parametrize("told", ["never", "before reconcile", "after reconcile"])
def test_a_lost_sale_declined_at_settlement_is_reconciled_reversed_not_failed(
    payments: PaymentService, app: KeptNotifications, told: str
) -> None:
    """A sale whose answer is lost, submitted for settlement and declined by the batch: it took
    effect and was undone, as a sale the ledger recorded and whose decline is notified."""
    _lost(app, "chargePaymentMethod")
    lost = _unknown(lambda: payments.sale("braintree", Money.of("15.00", "EUR"), source="fake-valid-nonce",
                                          order_id="lost-sale", idempotency_key="lost-sale"))
    app.clear_faults()
    (made,) = app.transactions.values()
    app.settle(made.id, "SETTLEMENT_DECLINED")
    (body,) = app.sent
    if told == "before reconcile":
        _deliver(payments, body)
    txn = _txn(payments, lost)
    payments.reconcile(payment_id=txn.payment_id)
    if told == "after reconcile":
        _deliver(payments, body)
    txn = _txn(payments, lost)
    payment = payments.get_payment(txn.payment_id or "")
    assert (payment.state, payment.authorized, payment.captured) == (PaymentState.FAILED, Money.zero("EUR"),
                                                                     Money.zero("EUR"))
    assert txn.status == S.SUCCEEDED and len(_reversal_of(payments, txn)) == 1, txn


@pytest.mark.parametrize("kind", ["capture", "refund"])
@pytest.mark.parametrize("told", ["before reconcile", "after reconcile", "twice before"])
def test_a_lost_request_settled_since_is_one_transaction_whenever_its_notification_comes(
    payments: PaymentService, app: KeptNotifications, kind: str, told: str
) -> None:
    """The answer is lost, the batch settles what the request made, and its transaction_settled
    notification arrives before the ledger knows the reference (it waits for reconcile(), which
    finds the request by its key), after, or twice: the ledger ends with the one transaction,
    succeeded, counted once, never a second one of the webhook's."""
    if kind == "capture":
        payment_id = _authorized(payments, "KWD", "9.999", "settled-auth")
        amount = Money.of("3.333", "KWD")
        _lost(app, "partialCaptureTransaction")
        lost = _unknown(lambda: payments.capture(payment_id, amount, idempotency_key="settled-op"))
    else:
        payment_id = payments.sale("braintree", Money.of("9999", "JPY"), source="fake-valid-nonce",
                                   order_id="settled-sale", idempotency_key="settled-sale").id
        app.settle(payments.get_payment(payment_id).reference or "")
        app.sent.clear()
        amount = Money.of("3333", "JPY")
        _lost(app, "refundTransaction")
        lost = _unknown(lambda: payments.refund(payment_id, amount, idempotency_key="settled-op"))
    app.clear_faults()
    (made,) = (t for t in app.transactions.values() if t.order_id == "settled-op")
    app.settle(made.id)
    (body,) = app.sent
    if told.startswith("twice"):
        _deliver(payments, body)
    if told != "after reconcile":
        _deliver(payments, body)
        assert [t.id for t in payments.list_transactions(payment_id) if t.kind == kind] == [lost]
    payments.reconcile(payment_id=payment_id)
    if told == "after reconcile":
        _deliver(payments, body)
    txn = _txn(payments, lost)
    assert (txn.status, txn.provider_reference) == (S.SUCCEEDED, made.id)
    assert [t.id for t in payments.list_transactions(payment_id) if t.kind == kind] == [lost]
    payment = payments.get_payment(payment_id)
    assert (payment.captured if kind == "capture" else payment.refunded) == amount
    assert payments.reconcile(payment_id=payment_id).clean


def test_notifications_for_transactions_the_ledger_does_not_hold_change_nothing_and_count_once(
    payments: PaymentService, app: KeptNotifications
) -> None:
    """Braintree notifies every transaction of the merchant's, those made without paywire too:
    a sale settled and one declined at settlement, which no payment of the ledger's names, are
    kept unmatched, once each, and move nothing of the payments the ledger holds."""
    payment_id = payments.sale("braintree", Money.of("10.00", "EUR"), source="fake-valid-nonce", order_id="mine",
                               idempotency_key="mine").id
    app.settle(payments.get_payment(payment_id).reference or "")
    app.sent.clear()
    with app.lock:  # another integration's sales on the same merchant
        settled = app.operations.create({"paymentMethodId": "fake-valid-nonce",
                                         "transaction": {"amount": "10.00", "orderId": "elsewhere-1"}}, submit=True)
        declined = app.operations.create({"paymentMethodId": "fake-valid-nonce",
                                          "transaction": {"amount": "10.00", "orderId": "elsewhere-2"}}, submit=True)
    app.settle(settled.id)
    app.settle(declined.id, "SETTLEMENT_DECLINED")
    bodies = list(app.sent)
    assert len(bodies) == 2
    before = payments.get_payment(payment_id)
    statuses = [payments.receive_webhook("braintree", _FORM, body).status for body in [*bodies, *bodies]]
    assert statuses == ["unmatched", "unmatched", "duplicate", "duplicate"]
    after = payments.get_payment(payment_id)
    assert (after.state, after.captured, after.refunded) == (before.state, before.captured, before.refunded)
    assert len(payments.list_transactions(payment_id)) == 1


def test_a_lost_sale_that_only_waited_for_its_settlement_and_was_declined_is_failed(
    payments: PaymentService, app: KeptNotifications
) -> None:
    """A bank account's sale waits SETTLEMENT_PENDING (accepted, never reported done): declined,
    it never took effect, and the lost sale is failed, with nothing to reverse."""
    _lost(app, "chargePaymentMethod")
    lost = _unknown(lambda: payments.sale("braintree", Money.of("15.00", "EUR"),
                                          source="paywire-emulator-bank-account-nonce", order_id="bank-sale",
                                          idempotency_key="bank-sale"))
    app.clear_faults()
    (made,) = app.transactions.values()
    assert made.status == "SETTLEMENT_PENDING"
    app.settle(made.id, "SETTLEMENT_DECLINED")
    txn = _txn(payments, lost)
    payments.reconcile(payment_id=txn.payment_id)
    txn = _txn(payments, lost)
    assert txn.status == S.FAILED and not _reversal_of(payments, txn)
    payment = payments.get_payment(txn.payment_id or "")
    assert (payment.state, payment.authorized, payment.captured) == (PaymentState.FAILED, Money.zero("EUR"),
                                                                     Money.zero("EUR"))


def test_a_lost_final_capture_declined_at_settlement_closes_the_payment_to_more_captures(
    payments: PaymentService, app: KeptNotifications
) -> None:
    """A final partial capture closes its authorization at Braintree, which then takes no more
    captures, declined or not. Its answer lost and the batch declining it, reconcile() records it
    made (and reversed), so the ledger offers nothing more to capture and refuses a capture
    before sending one Braintree would refuse."""
    payment_id = _authorized(payments, "EUR", "100.00", "final-auth")
    _lost(app, "partialCaptureTransaction")
    lost = _unknown(lambda: payments.capture(payment_id, Money.of("40.00", "EUR"), final=True,
                                             idempotency_key="final-cap"))
    app.clear_faults()
    (capture,) = (t for t in app.transactions.values() if t.parent is not None)
    app.settle(capture.id, "SETTLEMENT_DECLINED")
    payments.reconcile(payment_id=payment_id)
    assert _txn(payments, lost).status == S.SUCCEEDED
    payment = payments.get_payment(payment_id)
    assert (payment.captured, payment.capturable) == (Money.zero("EUR"), Money.zero("EUR"))
    calls = len(app.calls)
    with pytest.raises(StateError):
        payments.capture(payment_id, Money.of("10.00", "EUR"), idempotency_key="after-final")
    assert len(app.calls) == calls


def test_a_lost_refund_braintree_lists_in_a_status_paywire_does_not_read_as_failed_stays_open(
    payments: PaymentService, app: KeptNotifications
) -> None:
    """A refund whose answer is lost, listed in a status that says neither that it was made nor
    that it failed (AUTHORIZED, which Braintree's schema allows a refund; or one it adds later):
    it may have taken effect, so reconciliation leaves it open, never failed, and settles it once
    Braintree says."""
    payment_id = payments.sale("braintree", Money.of("50.00", "EUR"), source="fake-valid-nonce", order_id="sale-a",
                               idempotency_key="sale-a").id
    app.settle(payments.get_payment(payment_id).reference or "")
    _lost(app, "refundTransaction")
    lost = _unknown(lambda: payments.refund(payment_id, Money.of("20.00", "EUR"), idempotency_key="refund-a"))
    app.clear_faults()
    (credit,) = (t for t in app.transactions.values() if t.kind == "credit")
    for status in ("AUTHORIZED", "A_STATUS_BRAINTREE_ADDS_LATER"):
        with app.lock:
            credit.status = status
        payments.reconcile(payment_id=payment_id)
        assert _txn(payments, lost).status in (S.UNKNOWN, S.ACCEPTED), status
        assert payments.get_payment(payment_id).refunded == Money.zero("EUR")
    with app.lock:
        credit.status = "SUBMITTED_FOR_SETTLEMENT"
    app.settle(credit.id)
    payments.reconcile(payment_id=payment_id)
    assert _txn(payments, lost).status == S.SUCCEEDED
    assert payments.get_payment(payment_id).refunded == Money.of("20.00", "EUR")
