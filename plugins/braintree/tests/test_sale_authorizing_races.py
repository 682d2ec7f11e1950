"""The Janitor's finish-only resend of a sale answered AUTHORIZING and authorized since, racing
what else may act on it: a caller's retry under its key, another worker sharing a PostgreSQL
ledger, a stop between sending and recording, a method no longer configured. Braintree submits
the sale once, and the ledger counts it captured only from Braintree's answer."""

from __future__ import annotations

import threading
from collections.abc import Callable, Generator
from typing import Any

import pytest

from paywire import ConfigurationError, Money, Payment, PaymentService, hookimpl
from paywire.http.transfer import Transfer
from paywire.ledger import PaymentState, Transaction
from paywire.serve.janitor import Janitor
from paywire.testing.emulator import Fault
from paywire.testing.sandbox import Sandbox
from paywire_braintree.emulator import BraintreeEmulator

EUR = "EUR"
AMOUNT = Money.of("12.00", EUR)
AUTHORIZING_CHARGE = "paywire-emulator-authorizing-charge-nonce"


def _submissions(emulator: BraintreeEmulator, reference: str) -> int:
    """How many times Braintree submitted the sale for settlement."""
    return sum(event["status"] == "SUBMITTED_FOR_SETTLEMENT" for event in emulator.transactions[reference].history)


def _unfinished_sale(service: PaymentService, emulator: BraintreeEmulator, key: str,
                     step_clock: Callable[..., None]) -> tuple[str, str, str]:
    """A sale answered AUTHORIZING, authorized since, that reconciliation marked for the resend:
    (payment, transaction, Braintree's id)."""
    emulator.settlement = "batch"
    payment = service.sale("braintree", AMOUNT, source=AUTHORIZING_CHARGE, order_id=key, idempotency_key=key)
    (txn,) = service.list_transactions(payment.id)
    reference = payment.reference or ""
    emulator.settle(reference)
    assert emulator.transactions[reference].status == "AUTHORIZED"
    step_clock(service)
    report = service.reconcile(payment_id=payment.id)
    assert [s.resend for s in report.unresolved] == [True]
    return payment.id, txn.id, reference


def _captured_once(service: PaymentService, emulator: BraintreeEmulator, payment_id: str, txn_id: str,
                   reference: str) -> None:
    assert emulator.transactions[reference].status == "SUBMITTED_FOR_SETTLEMENT"
    assert _submissions(emulator, reference) == 1
    assert [(t.id, t.status) for t in service.list_transactions(payment_id)] == [(txn_id, "succeeded")]
    payment = service.get_payment(payment_id)
    assert payment.state == PaymentState.CAPTURED and payment.captured == AMOUNT
    assert not service.reconcile(payment_id=payment_id).mismatches


def _in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(call())
        except BaseException as error:  # handed to the test thread
            out.append(error)

    worker = threading.Thread(target=run)
    worker.start()
    return worker, out


@pytest.mark.parametrize("caller", ["sale", "retry"])
def test_a_callers_retry_while_the_janitor_resends_submits_once(
        service: PaymentService, emulator: BraintreeEmulator, step_clock: Callable[..., None], caller: str) -> None:
    key = f"race-{caller}"
    payment_id, txn_id, reference = _unfinished_sale(service, emulator, key, step_clock)
    emulator.inject(Fault("hold", path="/graphql", contains="captureTransaction"))
    janitor, resent = _in_thread(lambda: service.resend_unfinished(txn_id))
    try:
        assert emulator.wait_until_held()  # the Janitor's submission landed; its answer is held
        again, answered = _in_thread(
            (lambda: service.sale("braintree", AMOUNT, source=AUTHORIZING_CHARGE, order_id=key, idempotency_key=key))
            if caller == "sale" else (lambda: service.retry(txn_id)))
        assert service.get_transaction(txn_id).status == "pending"
    finally:
        assert emulator.release_held()
        janitor.join(30)
    again.join(30)
    assert not janitor.is_alive() and not again.is_alive()
    assert [type(r).__name__ for r in resent + answered] == ["Payment", "Payment"], resent + answered
    _captured_once(service, emulator, payment_id, txn_id, reference)


class StopAfter:
    """A stop (KeyboardInterrupt) once the submission was sent: before its answer is read
    (`landed`), or before it leaves."""

    def __init__(self, landed: bool) -> None:
        self.landed = landed
        self.armed = True

    @hookimpl(wrapper=True)
    def send_transfer(self, transfer: Transfer) -> Generator[None, Any, Any]:
        if self.armed and b"captureTransaction" in (transfer.body or b""):
            self.armed = False
            if not self.landed:
                raise KeyboardInterrupt
            yield
            raise KeyboardInterrupt
        return (yield)


@pytest.mark.parametrize("landed", [True, False])
def test_a_stop_mid_resend_leaves_the_sale_open_and_a_later_pass_finishes_it_once(
        service: PaymentService, emulator: BraintreeEmulator, step_clock: Callable[..., None], landed: bool) -> None:
    payment_id, txn_id, reference = _unfinished_sale(service, emulator, f"stop-{landed}", step_clock)
    service.gateway.plugins.register(StopAfter(landed), name="stop")
    with pytest.raises(KeyboardInterrupt):
        service.resend_unfinished(txn_id)
    txn = service.get_transaction(txn_id)
    assert txn.status in ("unknown", "pending"), "never failed, never captured"
    assert service.get_payment(payment_id).captured == Money.of("0", EUR)
    assert emulator.transactions[reference].status == ("SUBMITTED_FOR_SETTLEMENT" if landed else "AUTHORIZED")
    step_clock(service)
    Janitor(service).run_pass()
    _captured_once(service, emulator, payment_id, txn_id, reference)


def test_the_resend_of_a_sale_whose_method_was_removed_sends_nothing(
        services: Callable[..., PaymentService], service: PaymentService, emulator: BraintreeEmulator,
        step_clock: Callable[..., None]) -> None:
    payment_id, txn_id, reference = _unfinished_sale(service, emulator, "removed", step_clock)
    calls = len(emulator.calls)
    later = services("braintree_other", provider="braintree")  # the same ledger; no method named braintree
    with pytest.raises(ConfigurationError):
        later.resend_unfinished(txn_id)
    step_clock(later)
    Janitor(later).run_pass()
    assert len(emulator.calls) == calls, "nothing sent"
    assert emulator.transactions[reference].status == "AUTHORIZED"
    assert service.get_transaction(txn_id).status == "unknown"
    step_clock(service, hours=24)  # past the failed look's backoff
    Janitor(service).run_pass()  # configured again: finished
    _captured_once(service, emulator, payment_id, txn_id, reference)


def test_the_resend_of_a_sale_whose_currency_lost_its_merchant_account_still_finishes_it(
        sandbox: Sandbox, services: Callable[..., PaymentService], service: PaymentService, emulator: BraintreeEmulator,
        step_clock: Callable[..., None]) -> None:
    """The method's configuration no longer maps EUR to a merchant account: a new EUR charge is
    refused before sending, but the resend only finds the sale and submits it, charging nothing
    anew, so what refuses the charge alone does not leave the sale to lapse."""
    payment_id, txn_id, reference = _unfinished_sale(service, emulator, "unmapped", step_clock)
    options = dict(sandbox.options)
    options["merchant_accounts"] = {k: v for k, v in options["merchant_accounts"].items() if k != "EUR"}
    made = len(emulator.transactions)
    later = services(options=options)  # the same ledger
    step_clock(later)
    report = Janitor(later).run_pass()
    assert report.resent == (txn_id,) and not report.errors, report
    _captured_once(later, emulator, payment_id, txn_id, reference)
    assert len(emulator.transactions) == made, "nothing charged anew"


pytest.importorskip("psycopg", reason="two workers share a PostgreSQL ledger (pip install 'paywire[postgresql]')")


@pytest.mark.parametrize("how", ["resend", "pass"])
def test_two_workers_on_one_postgresql_ledger_resend_the_sale_once(
        emulator: BraintreeEmulator, workers: Callable[[int], list[PaymentService]], step_clock: Callable[..., None],
        how: str) -> None:
    one, two = workers(2)
    payment_id, txn_id, reference = _unfinished_sale(one, emulator, f"pg-{how}", step_clock)
    step_clock(two)
    emulator.inject(Fault("hold", path="/graphql", contains="captureTransaction"))
    first, done = _in_thread(lambda: one.resend_unfinished(txn_id) if how == "resend"
                             else Janitor(one).run_pass())
    try:
        assert emulator.wait_until_held()
        second, also = _in_thread(lambda: two.resend_unfinished(txn_id) if how == "resend"
                                  else Janitor(two).run_pass())
        if how == "pass":
            second.join(30)  # the transaction is being sent: the other Janitor leaves it
            assert not second.is_alive()
    finally:
        assert emulator.release_held()
        first.join(30)
    second.join(30)
    assert not first.is_alive() and not second.is_alive()
    assert not [r for r in done + also if isinstance(r, BaseException)], done + also
    _captured_once(one, emulator, payment_id, txn_id, reference)


@pytest.mark.parametrize("lost", [True, False])
def test_the_settlement_notified_after_the_resend_counts_the_sale_captured_once(
        service: PaymentService, emulator: BraintreeEmulator, monkeypatch: pytest.MonkeyPatch,
        step_clock: Callable[..., None], lost: bool) -> None:
    delivered: list[tuple[bytes, dict[str, str]]] = []
    emulator.webhook_url = "http://127.0.0.1:9/never"  # delivered to the list below instead
    monkeypatch.setattr(emulator, "deliver_webhook", lambda body, headers: delivered.append((body, dict(headers))))
    payment_id, txn_id, reference = _unfinished_sale(service, emulator, f"notified-{lost}", step_clock)
    if lost:
        emulator.inject(Fault("drop_after", path="/graphql", contains="captureTransaction"))
    Janitor(service).run_pass()
    assert service.get_transaction(txn_id).status == ("unknown" if lost else "succeeded")
    emulator.settle(reference)  # the batch: transaction_settled
    ((body, headers),) = delivered
    for _ in range(2):  # and Braintree's redelivery
        service.receive_webhook("braintree", {k.lower(): v for k, v in headers.items()}, body)
    step_clock(service, hours=24)
    Janitor(service).run_pass()
    assert emulator.transactions[reference].status == "SETTLED"
    assert _submissions(emulator, reference) == 1
    assert [(t.id, t.status) for t in service.list_transactions(payment_id)] == [(txn_id, "succeeded")]
    payment = service.get_payment(payment_id)
    assert payment.captured == AMOUNT and payment.state == PaymentState.CAPTURED
    assert not service.reconcile(payment_id=payment_id).mismatches


@pytest.mark.parametrize("meanwhile", ["voided", "expired", "submitted"])
def test_a_sale_released_or_submitted_by_another_hand_between_the_read_and_the_submission(
        service: PaymentService, emulator: BraintreeEmulator, step_clock: Callable[..., None],
        lands_before: Callable[[PaymentService, str, Callable[[], None], str], None], meanwhile: str) -> None:
    payment_id, txn_id, reference = _unfinished_sale(service, emulator, f"between-{meanwhile}", step_clock)

    def land() -> None:
        with emulator.lock:
            transaction = emulator.transactions[reference]
            if meanwhile == "voided":  # the Control Panel's void
                emulator.operations.reverse({"transactionId": reference})
            elif meanwhile == "expired":
                emulator.operations.expire(transaction)
            else:  # the Control Panel's submission
                emulator.operations.capture({"transactionId": reference})

    # after the resend's search found the sale AUTHORIZED, just before its submission is sent
    lands_before(service, "captureTransaction", land, "between")
    Janitor(service).run_pass()
    assert service.get_transaction(txn_id).status == "unknown", "refused for what another hand did: never failed"
    assert service.get_payment(payment_id).captured == Money.of("0", EUR)
    step_clock(service, hours=24)
    Janitor(service).run_pass()
    if meanwhile == "submitted":
        _captured_once(service, emulator, payment_id, txn_id, reference)
        return
    txn = service.get_transaction(txn_id)
    assert txn.status == "failed"
    payment = service.get_payment(payment_id)
    assert payment.state == PaymentState.FAILED and payment.captured == Money.of("0", EUR)
    assert _submissions(emulator, reference) == 0


def test_a_resend_racing_another_whose_answer_is_lost_waits_and_the_next_finishes_the_sale(
        emulator: BraintreeEmulator, workers: Callable[[int], list[PaymentService]], step_clock: Callable[..., None],
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Two workers on one PostgreSQL ledger, each told by reconciliation to resend the sale: the
    first's submission lands and its answer is lost. The second, meanwhile, waits for that outcome;
    resending after it, it finds the sale submitted under the key. Reconciliation's mark outlives
    the lost answer, so neither is refused `not_unfinished` (a Janitor's pass error)."""
    one, two = workers(2)
    payment_id, txn_id, reference = _unfinished_sale(one, emulator, "pg-lost", step_clock)
    step_clock(two)
    emulator.inject(Fault("drop_after", path="/graphql", contains="captureTransaction"))
    emulator.inject(Fault("hold", path="/graphql", contains="captureTransaction"))
    waiting = threading.Event()
    wait = two._wait

    def waits(txn: Transaction) -> Transaction:
        waiting.set()
        return wait(txn)

    monkeypatch.setattr(two, "_wait", waits)
    first, done = _in_thread(lambda: one.resend_unfinished(txn_id))
    try:
        assert emulator.wait_until_held(timeout=30)  # submitted; its answer held, then lost
        second, also = _in_thread(lambda: two.resend_unfinished(txn_id))
        assert waiting.wait(30)  # the second found the first's claim, and waits for its outcome
    finally:
        assert emulator.release_held(timeout=30)
        first.join(30)
    second.join(30)
    assert not first.is_alive() and not second.is_alive()
    assert [type(r).__name__ for r in done + also] == ["OutcomeUnknown", "OutcomeUnknown"], done + also
    assert one.get_transaction(txn_id).status == "unknown"
    assert _submissions(emulator, reference) == 1
    again = two.resend_unfinished(txn_id)  # the second worker's next resend: no error
    assert again.id == payment_id
    _captured_once(one, emulator, payment_id, txn_id, reference)


def test_the_resend_goes_by_the_mark_on_the_sale_as_locked_not_as_first_read(
        service: PaymentService, emulator: BraintreeEmulator, monkeypatch: pytest.MonkeyPatch,
        step_clock: Callable[..., None]) -> None:
    """Read before reconciliation marked it (accepted, unmarked), marked before the resend takes
    its locks: the resend goes by the row as locked, and finishes the sale once."""
    emulator.settlement = "batch"
    payment = service.sale("braintree", AMOUNT, source=AUTHORIZING_CHARGE, order_id="marked-meanwhile",
                           idempotency_key="marked-meanwhile")
    (txn,) = service.list_transactions(payment.id)
    reference = payment.reference or ""
    emulator.settle(reference)
    step_clock(service)
    send_again = service._send_again

    def marked_meanwhile(read: Transaction, *, finish_only: bool) -> Payment | Transaction:
        assert read.status == "accepted"  # as read: not marked
        report = service.reconcile(payment_id=payment.id)  # another worker's reconciliation
        assert [s.resend for s in report.unresolved] == [True]
        return send_again(read, finish_only=finish_only)

    monkeypatch.setattr(service, "_send_again", marked_meanwhile)
    assert service.resend_unfinished(txn.id).id == payment.id
    _captured_once(service, emulator, payment.id, txn.id, reference)
