"""A refund in full of a capture or sale that has not settled yet: Braintree refuses to refund
it (91506) but reverses it (reverseTransaction voids it, so the buyer is never charged), and the
ledger records that as a refund of the capture. Through the payment service and a real ledger,
against the emulator on loopback."""

from __future__ import annotations

import base64
import itertools
import json
import threading
import urllib.request
from decimal import Decimal
from typing import Any

import pytest
from hypothesis import HealthCheck, event, example, given, settings
from hypothesis import strategies as st

from paywire import Money, OutcomeUnknown, PaymentService, PaywireError, StateError
from paywire.ledger import PaymentState
from paywire.testing.emulator import EmulatorServer, Fault
from paywire_braintree import documents
from paywire_braintree.builders import void_tag
from paywire_braintree.emulator import BraintreeEmulator
from paywire_braintree.emulator.model import Transaction
from paywire_braintree.transfer import BRAINTREE_VERSION

EUR = "EUR"
_MOVED = ("SUBMITTED_FOR_SETTLEMENT", "SETTLING", "SETTLED")  # what holds the buyer's money (batch mode)


@pytest.fixture(autouse=True)
def _batch(emulator: BraintreeEmulator) -> None:
    """Settlement in batches, as Braintree's: a capture waits, unsettled, until the batch runs."""
    emulator.settlement = "batch"


def _net(emulator: BraintreeEmulator, root: str) -> Decimal:
    """What Braintree holds of the buyer's money for the payment whose transaction is `root`:
    its captures (the sale or whole capture itself, or its partial captures) less its refunds."""
    transactions = emulator.transactions
    parent = transactions[root]
    captures: list[Transaction] = [transactions[c] for c in parent.children] or [parent]
    credits = [transactions[r] for c in captures for r in c.refunds]
    return (sum((c.amount for c in captures if c.status in _MOVED), Decimal(0))
            - sum((r.amount for r in credits if r.status in _MOVED), Decimal(0)))


def _ledger_net(payments: PaymentService, payment_id: str) -> Decimal:
    payment = payments.get_payment(payment_id)
    assert payment.refunded <= payment.captured <= payment.authorized
    return Decimal((payment.captured - payment.refunded).format())


def _pay(payments: PaymentService, flow: str, key: str) -> tuple[str, str]:
    """A payment of 50.00 with something submitted for settlement (the sale, a partial capture of
    30.00, or the whole authorization): its id and the captured transaction's reference."""
    if flow == "sale":
        payment = payments.sale("braintree", Money.of("50.00", EUR), source="fake-valid-nonce", order_id=key,
                                idempotency_key=key)
    else:
        payment = payments.authorize("braintree", Money.of("50.00", EUR), source="fake-valid-nonce", order_id=key,
                                     idempotency_key=key)
        payment = payments.capture(payment.id, Money.of("30.00", EUR) if flow == "part" else None,
                                   final=flow != "part", idempotency_key=f"{key}-capture")
    return payment.id, payments.list_transactions(payment.id)[-1].provider_reference or ""


@pytest.mark.parametrize("flow", ["sale", "part", "whole"])
def test_a_refund_in_full_before_settlement_reverses_the_capture_and_is_recorded_as_its_refund(
        service: PaymentService, emulator: BraintreeEmulator, flow: str) -> None:
    payment_id, captured = _pay(service, flow, f"rev-{flow}")
    amount = service.get_payment(payment_id).captured
    assert emulator.transactions[captured].status == "SUBMITTED_FOR_SETTLEMENT"
    payment = service.refund(payment_id, idempotency_key=f"rev-{flow}-refund")
    made = emulator.transactions[captured]
    assert made.status == "VOIDED" and not made.refunds  # voided: the buyer is never charged
    refund = service.list_transactions(payment_id)[-1]
    assert (refund.kind, refund.status, refund.amount, refund.provider_reference) == (
        "refund", "succeeded", amount, captured)
    expected = PaymentState.PARTIALLY_REFUNDED if flow == "part" else PaymentState.REFUNDED
    assert (payment.state, payment.captured, payment.refunded) == (expected, amount, amount)
    assert _ledger_net(service, payment_id) == _net(emulator, payment.reference or "") == 0
    for _ in range(2):  # fetch reads the voided capture as captured and refunded: nothing moves
        assert service.reconcile(payment_id=payment_id).clean
        again = service.get_payment(payment_id)
        assert (again.state, again.authorized, again.captured, again.refunded) == (
            payment.state, payment.authorized, payment.captured, payment.refunded)
    kinds = [(t.kind, t.status) for t in service.list_transactions(payment_id)]
    assert ("reversal", "succeeded") not in kinds and kinds[0] == (
        "sale" if flow == "sale" else "authorize", "succeeded")


@pytest.mark.parametrize("flow", ["sale", "part"])
def test_a_partial_refund_before_settlement_is_refused_before_writing_saying_how_to_proceed(
        service: PaymentService, emulator: BraintreeEmulator, flow: str) -> None:
    payment_id, captured = _pay(service, flow, f"part-{flow}")
    with pytest.raises(StateError) as refused:
        service.refund(payment_id, Money.of("10.00", EUR), idempotency_key=f"part-{flow}-refund")
    message = str(refused.value)
    assert refused.value.code == "91506" and "nothing was sent" in message
    assert "in full" in message and "settle" in message
    made = emulator.transactions[captured]
    assert made.status == "SUBMITTED_FOR_SETTLEMENT" and not made.refunds and "paywire_void_key" not in made.custom
    assert service.get_payment(payment_id).refunded == Money.zero(EUR)


@pytest.mark.parametrize("settle", ["retry", "reconcile"])
@pytest.mark.parametrize("flow", ["sale", "part"])
def test_a_reversal_whose_answer_was_lost_is_found_under_its_key_and_never_sent_twice(
        service: PaymentService, emulator: BraintreeEmulator, flow: str, settle: str) -> None:
    payment_id, captured = _pay(service, flow, f"lost-{flow}-{settle}")
    amount = service.get_payment(payment_id).captured
    key = f"lost-{flow}-{settle}-refund"
    emulator.inject(Fault("drop_after", path="reverseTransaction"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.refund(payment_id, idempotency_key=key)
    assert emulator.transactions[captured].status == "VOIDED"  # Braintree reversed it; the answer was lost
    emulator.inject(Fault("status", status=500, path="reverseTransaction"))  # a second reversal would fail
    if settle == "retry":
        payment = service.refund(payment_id, idempotency_key=key)
    else:
        report = service.reconcile(payment_id=payment_id)
        assert [(s.transaction_id, s.status) for s in report.settled] == [(lost.value.transaction_id, "succeeded")]
        payment = service.get_payment(payment_id)
    reversals = [t for t in service.list_transactions(payment_id) if t.kind == "refund"]
    assert [(t.status, t.provider_reference) for t in reversals] == [("succeeded", captured)]
    assert (payment.captured, payment.refunded) == (amount, amount)
    assert _ledger_net(service, payment_id) == _net(emulator, payment.reference or "") == 0
    assert service.reconcile(payment_id=payment_id).clean


def _refund_racing_the_batch(payments: PaymentService, emulator: BraintreeEmulator, payment_id: str,
                             captured: str, key: str) -> OutcomeUnknown:
    """A refund in full whose read finds `captured` unsettled, and whose reversal comes only after
    the batch settled it (the key's write is held until the test has settled it), so Braintree
    refunds it whole instead; the reversal's answer is lost."""
    emulator.inject(Fault("hold", path="updateCustomFields"))
    emulator.inject(Fault("drop_after", path="reverseTransaction"))
    raised: list[BaseException] = []

    def refund() -> None:
        try:
            payments.refund(payment_id, idempotency_key=key)
        except BaseException as error:  # handed to the test thread
            raised.append(error)

    worker = threading.Thread(target=refund)
    worker.start()
    try:
        assert emulator.wait_until_held()
        emulator.settle(captured)  # the batch runs between the read and the reversal
    finally:
        emulator.release_held()
        worker.join(30)
    assert not worker.is_alive()
    (lost,) = raised
    assert isinstance(lost, OutcomeUnknown), lost
    return lost


@pytest.mark.parametrize("settle", ["retry", "reconcile"])
@pytest.mark.parametrize("flow", ["sale", "part"])
def test_a_reversal_the_batch_turned_into_a_refund_is_found_under_its_key_after_a_lost_answer(
        service: PaymentService, emulator: BraintreeEmulator, flow: str, settle: str) -> None:
    """The batch settled the capture between the refund's read and its reversal, so Braintree made
    a Refund, whose orderId is the capture's (reverseTransaction takes none), and the answer was
    lost. Reconcile and a retry under the key find it through the key the refund wrote on the
    capture: the refund is recorded succeeded with Braintree's Refund as its reference, and
    nothing is refunded twice."""
    payment_id, captured = _pay(service, flow, f"raced-{flow}-{settle}")
    amount = service.get_payment(payment_id).captured
    key = f"raced-{flow}-{settle}-refund"
    lost = _refund_racing_the_batch(service, emulator, payment_id, captured, key)
    made = emulator.transactions[captured]
    assert made.status == "SETTLED" and len(made.refunds) == 1  # refunded whole, not voided
    (refund_id,) = made.refunds
    assert emulator.transactions[refund_id].order_id != key
    emulator.clear_faults()
    if settle == "reconcile":
        report = service.reconcile(payment_id=payment_id)
        assert [(s.transaction_id, s.status) for s in report.settled] == [(lost.transaction_id, "succeeded")]
    payment = service.refund(payment_id, idempotency_key=key)  # the retry answers what the key made
    assert emulator.transactions[captured].refunds == [refund_id]  # and refunds nothing twice
    refunds = [t for t in service.list_transactions(payment_id) if t.kind == "refund"]
    assert [(t.id, t.status, t.amount, t.provider_reference) for t in refunds] == [
        (lost.transaction_id, "succeeded", amount, refund_id)]
    assert (payment.captured, payment.refunded) == (amount, amount)
    assert _ledger_net(service, payment_id) == _net(emulator, payment.reference or "") == 0
    assert service.reconcile(payment_id=payment_id).clean


@pytest.mark.parametrize(("origin", "order_id"), [("CONTROL_PANEL", None), ("API", "another-client-refund")])
def test_a_refund_in_full_someone_else_made_is_never_taken_for_a_reversal_that_did_not_land(
        service: PaymentService, emulator: BraintreeEmulator, origin: str, order_id: str | None) -> None:
    """The refund's key is on the sale, but its reversal was refused before it ran (a 500); the
    batch settles the sale, and the merchant refunds all of it in the Control Panel, or another
    API client does under an orderId of its own. Neither is the reversal's refund: the key's
    refund stays open (the reversal may still land), and a retry under it sends nothing."""
    payment_id, sold = _pay(service, "sale", f"else-{origin}")
    key = f"else-{origin}-refund"
    emulator.inject(Fault("status", status=500, path="reverseTransaction"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.refund(payment_id, idempotency_key=key)
    assert emulator.transactions[sold].custom["paywire_void_key"] == key
    emulator.settle(sold)
    with emulator.lock:
        other = emulator.operations.refund({"transactionId": sold, "refund": {"orderId": order_id}}, origin=origin)
    service.reconcile(payment_id=payment_id)
    txn = service.get_transaction(lost.value.transaction_id or "")
    assert (txn.status, txn.provider_reference) == ("unknown", None)
    with pytest.raises(OutcomeUnknown) as again:
        service.refund(payment_id, idempotency_key=key)
    assert again.value.code == "earlier_attempt_not_seen"
    assert emulator.transactions[sold].refunds == [other.id]


def test_a_sale_the_shop_refunded_by_reversal_and_one_voided_in_the_control_panel_stay_apart(
        service: PaymentService, emulator: BraintreeEmulator) -> None:
    """Both are VOIDED at Braintree after submitted for settlement. The refund's key on the
    transaction (`paywire_void_key`) tells the shop's refund, which the ledger holds as a refund of
    the sale; the other took no money and the sale is undone, the payment failed."""
    refunded_id, _ = _pay(service, "sale", "apart-refunded")
    service.refund(refunded_id, idempotency_key="apart-refund")
    voided_id, voided = _pay(service, "sale", "apart-voided")
    with emulator.lock:  # the merchant voids it in the control panel, with no word to the ledger
        emulator.operations.reverse({"transactionId": voided})
    for payment_id in (refunded_id, voided_id):
        service.reconcile(payment_id=payment_id)
    refunded, failed = service.get_payment(refunded_id), service.get_payment(voided_id)
    assert (refunded.state, refunded.captured, refunded.refunded) == (
        PaymentState.REFUNDED, Money.of("50.00", EUR), Money.of("50.00", EUR))
    assert (failed.state, failed.captured, failed.refunded) == (PaymentState.FAILED, Money.zero(EUR), Money.zero(EUR))
    assert [t.kind for t in service.list_transactions(voided_id)] == ["sale", "reversal"]
    assert [t.kind for t in service.list_transactions(refunded_id)] == ["sale", "refund"]
    for payment_id in (refunded_id, voided_id):
        assert service.reconcile(payment_id=payment_id).clean


def test_the_emulator_reverses_as_braintree_does(emulator: BraintreeEmulator) -> None:
    """reverseTransaction takes no amount: it voids a transaction not yet settled (answering the
    Transaction, VOIDED) and refunds a settled one in full (answering a Refund); a voided one it
    refuses (91504), so a reversal cannot be applied twice."""
    emulator.settlement = "batch"
    pair = base64.b64encode(f"{emulator.public_key}:{emulator.private_key}".encode()).decode()

    def sale(amount: str) -> str:
        with emulator.lock:
            return emulator.operations.create(
                {"paymentMethodId": "fake-valid-nonce", "transaction": {"amount": amount}}, submit=True).id

    with EmulatorServer(emulator) as server:
        def reverse(transaction_id: str, **extra: Any) -> Any:
            body = {"query": documents.REVERSE, "variables": {"input": {"transactionId": transaction_id, **extra}}}
            request = urllib.request.Request(
                f"{server.url}/graphql", data=json.dumps(body).encode(),
                headers={"Authorization": f"Basic {pair}", "Braintree-Version": BRAINTREE_VERSION,
                         "Content-Type": "application/json"})
            with urllib.request.urlopen(request, timeout=10) as answer:
                return json.loads(answer.read())

        sold = sale("40.00")
        voided = reverse(sold)["data"]["reverseTransaction"]["reversal"]
        assert (voided["__typename"], voided["id"], voided["status"], voided["amount"]["value"]) == (
            "Transaction", sold, "VOIDED", "40.00")
        assert reverse(sold)["errors"][0]["extensions"]["legacyCode"] == "91504"
        assert not emulator.transactions[sold].refunds
        assert reverse(sale("20.00"), amount="10.00")["errors"][0]["extensions"]["errorClass"] == "VALIDATION"
        settled = sale("30.00")
        emulator.settle(settled)
        refund = reverse(settled)["data"]["reverseTransaction"]["reversal"]
        assert (refund["__typename"], refund["status"], refund["amount"]["value"]) == (
            "Refund", "SUBMITTED_FOR_SETTLEMENT", "30.00")
        assert emulator.transactions[settled].refunds == [refund["id"]]
        assert emulator.transactions[settled].status == "SETTLED"


def test_notifications_about_the_other_captures_agree_with_a_refund_by_reversal(
        service: PaymentService, emulator: BraintreeEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    """Braintree notifies nothing of a void; the settlement of the payment's other capture is
    notified (signed as Braintree signs it), applied, and reconciliation then changes nothing."""
    delivered: list[tuple[bytes, dict[str, str]]] = []
    emulator.webhook_url = "http://127.0.0.1:9/never"  # delivered to the list below instead
    monkeypatch.setattr(emulator, "deliver_webhook", lambda body, headers: delivered.append((body, dict(headers))))
    payment = service.authorize("braintree", Money.of("50.00", EUR), source="fake-valid-nonce", order_id="W-1",
                                idempotency_key="webhook-auth")
    service.capture(payment.id, Money.of("20.00", EUR), final=False, idempotency_key="webhook-first")
    kept = service.list_transactions(payment.id)[-1].provider_reference or ""
    service.capture(payment.id, Money.of("30.00", EUR), final=False, idempotency_key="webhook-second")
    service.refund(payment.id, Money.of("30.00", EUR), idempotency_key="webhook-refund")
    assert not delivered
    emulator.settle(kept)
    ((body, headers),) = delivered
    receipt = service.receive_webhook("braintree", {k.lower(): v for k, v in headers.items()}, body)
    assert (receipt.payment_id, receipt.status) == (payment.id, "applied")
    held = service.get_payment(payment.id)
    assert (held.state, held.captured, held.refunded) == (
        PaymentState.PARTIALLY_REFUNDED, Money.of("50.00", EUR), Money.of("30.00", EUR))
    assert _ledger_net(service, payment.id) == _net(emulator, payment.reference or "") == Decimal("20.00")
    assert service.reconcile(payment_id=payment.id).clean
    assert service.get_payment(payment.id).refunded == Money.of("30.00", EUR)


# -- any sequence -----------------------------------------------------------------------------
_keys = itertools.count()

_STEPS = st.lists(st.one_of(
    st.tuples(st.just("capture"), st.integers(1, 6000)),
    st.tuples(st.just("settle"), st.integers(0, 5)),
    st.tuples(st.just("refund"), st.integers(0, 5), st.booleans()),
    st.tuples(st.just("reconcile")),
), max_size=7)


@pytest.fixture(scope="module")
def batch_service(shared_service: tuple[PaymentService, BraintreeEmulator]) -> tuple[PaymentService, BraintreeEmulator]:
    shared_service[1].settlement = "batch"
    return shared_service


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@example(flow="sale", steps=[("refund", 0, True), ("reconcile",)])
@example(flow="authorize", steps=[("capture", 3000), ("capture", 2000), ("settle", 1), ("refund", 0, True),
                                  ("refund", 1, False), ("reconcile",), ("capture", 5000), ("refund", 2, False)])
@given(flow=st.sampled_from(["sale", "authorize"]), steps=_STEPS)
def test_after_any_captures_settlements_and_refunds_the_ledger_holds_what_braintree_holds(
        batch_service: tuple[PaymentService, BraintreeEmulator], flow: str, steps: list[tuple[Any, ...]]) -> None:
    """Whatever the order of captures, settlement batches and refunds (in full or in part, before
    or after settlement): a refund in full of what has not settled is a reversal, one in part is
    refused before writing, and the ledger's captured less refunded is always what Braintree
    holds of the buyer's money; reconciliation then finds nothing to change."""
    payments, emulator = batch_service
    key = f"any-{next(_keys)}"
    total = Money.of("100.00", EUR)
    start = payments.sale if flow == "sale" else payments.authorize
    payment = start("braintree", total, source="fake-valid-nonce", order_id=key, idempotency_key=key)
    root = payment.reference or ""
    # each capture as the ledger holds it: [reference, amount, refunded, settled]
    captures: list[list[Any]] = [[root, total.minor, 0, False]] if flow == "sale" else []
    for number, step in enumerate(steps):
        if step[0] == "capture" and flow == "authorize":
            left = total.minor - sum(c[1] for c in captures)
            if step[1] > left:
                continue
            payments.capture(payment.id, Money(step[1], EUR), final=False, idempotency_key=f"{key}-{number}")
            captures.append([payments.list_transactions(payment.id)[-1].provider_reference, step[1], 0, False])
        elif step[0] == "settle" and captures:
            capture = captures[step[1] % len(captures)]
            if emulator.transactions[capture[0]].status == "SUBMITTED_FOR_SETTLEMENT":
                emulator.settle(capture[0])
                capture[3] = True
        elif step[0] == "refund" and any(c[1] > c[2] for c in captures):
            open_ = [c for c in captures if c[1] > c[2]]
            chosen = open_[step[1] % len(open_)]
            amount = chosen[1] - chosen[2] if step[2] else max((chosen[1] - chosen[2]) // 2, 1)
            # the payment service refunds the newest capture with that much left
            target = next(c for c in reversed(captures) if c[1] - c[2] >= amount)
            whole = amount == target[1] - target[2]
            if target[3] or whole:
                payments.refund(payment.id, Money(amount, EUR), idempotency_key=f"{key}-{number}")
                target[2] += amount
                event("refunded" if target[3] else "reversed")
            else:
                event("refused in part")
                with pytest.raises(StateError) as refused:
                    payments.refund(payment.id, Money(amount, EUR), idempotency_key=f"{key}-{number}")
                assert refused.value.code == "91506"
        elif step[0] == "reconcile":
            assert payments.reconcile(payment_id=payment.id).clean
        assert _ledger_net(payments, payment.id) == _net(emulator, root)
    assert payments.reconcile(payment_id=payment.id).clean
    assert _ledger_net(payments, payment.id) == _net(emulator, root)
    held = payments.get_payment(payment.id)
    assert (held.captured.minor, held.refunded.minor) == (sum(c[1] for c in captures), sum(c[2] for c in captures))


def test_the_key_of_a_reversal_that_never_happened_does_not_make_a_later_void_a_refund(
        service: PaymentService, emulator: BraintreeEmulator) -> None:
    """A refund in full writes its key on the sale, then reverses it; the reversal is refused (a
    rate limit: nothing applied, recorded failed), and the key stays on the sale. The merchant then
    voids the sale in the control panel before the batch: no money moved. That void is not the
    refund's reversal, so the ledger must not read it as a capture refunded in full."""
    payment_id, sale = _pay(service, "sale", "stale-tag")
    emulator.inject(Fault("status", status=429, path="reverseTransaction"))
    with pytest.raises(PaywireError):
        service.refund(payment_id, idempotency_key="stale-tag-refund")
    refund = service.list_transactions(payment_id)[-1]
    assert (refund.kind, refund.status) == ("refund", "failed")
    with emulator.lock:  # the control panel's void, with no word to the ledger
        emulator.operations.reverse({"transactionId": sale})
    assert _net(emulator, sale) == 0
    service.reconcile(payment_id=payment_id)
    payment = service.get_payment(payment_id)
    assert (payment.state, payment.captured, payment.refunded) == (PaymentState.FAILED, Money.zero(EUR),
                                                                   Money.zero(EUR))
    assert _ledger_net(service, payment_id) == _net(emulator, sale)


def test_the_key_of_a_void_that_never_happened_does_not_make_a_later_void_a_refund(
        service: PaymentService, emulator: BraintreeEmulator) -> None:
    """The same for a void of an authorization: its refused reversal leaves no key behind, so the
    control panel capturing it whole and then voiding it before the batch reads as what it is,
    an authorization released with nothing captured, not a capture refunded in full."""
    payment = service.authorize("braintree", Money.of("50.00", EUR), source="fake-valid-nonce", order_id="sv-1",
                                idempotency_key="stale-void")
    authorization = payment.reference or ""
    emulator.inject(Fault("status", status=429, path="reverseTransaction"))
    with pytest.raises(PaywireError):
        service.void(payment.id, idempotency_key="stale-void-void")
    with emulator.lock:  # the control panel captures it whole, then voids it before the batch
        emulator.operations.capture({"transactionId": authorization})
        emulator.operations.reverse({"transactionId": authorization})
    assert _net(emulator, authorization) == 0
    service.reconcile(payment_id=payment.id)
    payment = service.get_payment(payment.id)
    assert (payment.captured, payment.refunded) == (Money.zero(EUR), Money.zero(EUR))
    assert _ledger_net(service, payment.id) == _net(emulator, authorization)


def test_a_void_key_a_capture_copied_from_its_authorization_is_never_taken_for_its_reversal(
        service: PaymentService, emulator: BraintreeEmulator) -> None:
    """A void refused with a 500 (not applied) leaves its key on the authorization, and a partial
    capture made after it copies the authorization's custom fields. The merchant voids that
    capture in the Control Panel before its batch: it took no money, and the key it carries is
    the void's, not that of a refund in full of the capture."""
    service.margin = -3600.0  # each request's life already over: reconciliation concludes at once
    payment = service.authorize("braintree", Money.of("50.00", EUR), source="fake-valid-nonce",
                                order_id="copied-void-key", idempotency_key="copied-void-key")
    payment_id, authorization = payment.id, payment.reference or ""
    emulator.inject(Fault("status", status=500, path="reverseTransaction"))
    with pytest.raises(OutcomeUnknown):
        service.void(payment_id, idempotency_key="copied-void-key-void")
    service.reconcile(payment_id=payment_id)  # Braintree holds no void: it did not land
    assert emulator.transactions[authorization].status == "AUTHORIZED"
    assert emulator.transactions[authorization].custom["paywire_void_key"] == void_tag("copied-void-key-void")
    service.capture(payment_id, Money.of("20.00", EUR), final=False)
    capture = service.list_transactions(payment_id)[-1].provider_reference or ""
    assert emulator.transactions[capture].custom["paywire_void_key"] == void_tag("copied-void-key-void")
    with emulator.lock:  # the merchant voids the capture in the control panel, with no word to the ledger
        emulator.operations.reverse({"transactionId": capture})
    service.reconcile(payment_id=payment_id)
    payment = service.get_payment(payment_id)
    assert (payment.captured, payment.refunded) == (Money.zero(EUR), Money.zero(EUR))
    assert _ledger_net(service, payment_id) == _net(emulator, authorization) == 0
