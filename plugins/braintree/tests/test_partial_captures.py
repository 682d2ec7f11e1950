"""An authorization captured in parts, as Braintree reads it back: once partially captured, the
authorization is SETTLEMENT_PENDING (Braintree's SDK integration tests) and its `amount` is what
its captures hold, while `ParentAuthorization.totalAmountAuthorized` keeps what it authorized
(Braintree's schema). What it authorized is still held for more captures. Real emulator on
loopback."""

from __future__ import annotations

import base64
import json
import urllib.request
import uuid
from collections.abc import Callable
from typing import Any

import pytest
from graphql import GraphQLError
from hypothesis import given, settings
from hypothesis import strategies as st

from paywire import Gateway, Money, Order, PaymentService, PaywireError, ProviderState, Subject
from paywire_braintree.emulator import BraintreeEmulator
from paywire_braintree.emulator.app import merchant_account

EUR = "EUR"
_PARENT = """query Parent($id: ID!) { node(id: $id) { ... on Transaction {
  status amount { value } partialCaptureDetails { ... on ParentAuthorization { totalAmountAuthorized { value } } }
} } }"""


def fresh_key() -> str:
    """A key no run has used (letters only: a run of digits could pass for a card number)."""
    return "parts-" + uuid.uuid4().hex.translate(str.maketrans("0123456789", "ghijklmnop"))


def _authorize(gateway: Gateway, euros: str = "100.00", source: str = "fake-valid-nonce") -> str:
    key = fresh_key()
    made = gateway.execute("braintree", "authorize", Subject(amount=Money.of(euros, EUR), source=source,
                                                             order=Order(id=key), idempotency_key=key))
    return made.reference or ""


def _capture(gateway: Gateway, reference: str, euros: int, final: bool = False) -> None:
    gateway.execute("braintree", "capture", Subject(reference=reference, amount=Money.of(str(euros), EUR),
                                                    final=final, idempotency_key=fresh_key()))


def _read(emulator: BraintreeEmulator, url: str, reference: str) -> dict[str, Any]:
    """The authorization as Braintree's GraphQL API answers for it."""
    auth = base64.b64encode(f"{emulator.public_key}:{emulator.private_key}".encode()).decode()
    request = urllib.request.Request(f"{url}/graphql", method="POST", headers={
        "Authorization": f"Basic {auth}", "Braintree-Version": "2019-01-01", "Content-Type": "application/json"},
        data=json.dumps({"query": _PARENT, "variables": {"id": reference}}).encode())
    with urllib.request.urlopen(request) as answer:
        node: dict[str, Any] = json.load(answer)["data"]["node"]
    return node


def test_the_emulator_reads_a_partially_captured_authorization_as_braintree_does(
        emulator: BraintreeEmulator, gateway: Gateway, served: tuple[str, str | None]) -> None:
    url, ca_certs = served
    if ca_certs:
        pytest.skip("read over plain HTTP; the HTTPS run changes nothing here")
    reference = _authorize(gateway)
    _capture(gateway, reference, 30)
    parent = _read(emulator, url, reference)
    assert parent["status"] == "SETTLEMENT_PENDING"
    assert parent["amount"] == {"value": "30.00"}
    assert parent["partialCaptureDetails"] == {"totalAmountAuthorized": {"value": "100.00"}}
    _capture(gateway, reference, 20)  # still open to more
    assert _read(emulator, url, reference)["amount"] == {"value": "50.00"}
    _capture(gateway, reference, 10, final=True)
    with pytest.raises(PaywireError):
        _capture(gateway, reference, 5)  # closed by the final one
    assert _read(emulator, url, reference)["status"] == "SETTLEMENT_PENDING"


@settings(max_examples=10, deadline=None)
@given(captures=st.lists(st.integers(1, 60), min_size=1, max_size=4))
def test_fetch_holds_what_a_partially_captured_authorization_authorized(
        shared_service: tuple[PaymentService, BraintreeEmulator], captures: list[int]) -> None:
    """Whatever partial captures were made, fetch reports the whole authorization, what the
    captures hold, and whether more can be captured."""
    gateway = shared_service[0].gateway
    reference = _authorize(gateway)
    made = 0
    for euros in captures:
        if made + euros <= 100:
            _capture(gateway, reference, euros)
            made += euros
    fetched = gateway.execute("braintree", "fetch", Subject(reference=reference))
    assert (fetched.authorized, fetched.captured) == (Money.of("100.00", EUR), Money.of(str(made), EUR))
    assert fetched.state == (ProviderState.CAPTURED if made == 100 else ProviderState.PARTIALLY_CAPTURED)


def test_an_authorization_whose_captures_settle_later_is_still_authorized(
        shared_service: tuple[PaymentService, BraintreeEmulator]) -> None:
    """Captures of a bank account settle later: the authorization they came from was decided
    long before, and is not "processing" with nothing authorized."""
    gateway = shared_service[0].gateway
    reference = _authorize(gateway, source="paywire-emulator-bank-account-nonce")
    _capture(gateway, reference, 30)
    fetched = gateway.execute("braintree", "fetch", Subject(reference=reference))
    assert fetched.state == ProviderState.AUTHORIZED
    assert (fetched.authorized, fetched.captured) == (Money.of("100.00", EUR), Money.zero(EUR))
    assert [op.status for op in fetched.operations] == ["accepted"]


def test_reconciling_a_partially_captured_payment_leaves_it_open_to_more_captures(
        shared_service: tuple[PaymentService, BraintreeEmulator]) -> None:
    payments, _ = shared_service
    key = fresh_key()
    payment = payments.authorize("braintree", Money.of("100.00", EUR), source="fake-valid-nonce", order_id=key,
                                 idempotency_key=key)
    payments.capture(payment.id, Money.of("30.00", EUR), idempotency_key=f"{key}-a")
    report = payments.reconcile(payment_id=payment.id)
    assert not report.mismatches
    assert payments.get_payment(payment.id).authorized == Money.of("100.00", EUR)
    payments.capture(payment.id, Money.of("20.00", EUR), idempotency_key=f"{key}-b")
    assert payments.get_payment(payment.id).captured == Money.of("50.00", EUR)


def _authorization(emulator: BraintreeEmulator, settlement: str) -> str:
    """An authorization of 40.00 made straight in the emulator, its captures settled as `settlement` says."""
    emulator.settlement = settlement
    with emulator.lock:
        return emulator.operations.create({"paymentMethodId": "fake-valid-nonce", "transaction": {
            "amount": "40.00", "merchantAccountId": merchant_account(EUR)}}, submit=False).id


def _refused(emulator: BraintreeEmulator, operation: Callable[[], object]) -> str:
    with emulator.lock, pytest.raises(GraphQLError) as refused:
        operation()
    return str((refused.value.extensions or {})["legacyCode"])


def test_a_partially_captured_authorization_never_settles_itself_its_captures_do(
        emulator: BraintreeEmulator) -> None:
    """Braintree's batch settles the captures, each a transaction of its own; the authorization
    stays SETTLEMENT_PENDING, open to more, and moves on only once closed, moving no money."""
    ops = emulator.operations
    parent = _authorization(emulator, "batch")
    with emulator.lock:
        child = ops.partial_capture({"transactionId": parent, "transaction": {"amount": "15.00"}})
        ops.settle(ops.transaction(parent))
    assert (child.status, ops.transaction(parent).status) == ("SETTLED", "SETTLEMENT_PENDING")
    # nothing of it waits for the batch, and it is open: there is nothing to settle
    assert _refused(emulator, lambda: ops.settle(ops.transaction(parent))) == "91575"
    assert ops.transaction(parent).status == "SETTLEMENT_PENDING"
    with emulator.lock:
        last = ops.partial_capture({"transactionId": parent, "transaction": {"amount": "5.00", "finalCapture": True}})
        ops.settle(ops.transaction(parent))
    assert (last.status, ops.transaction(parent).status) == ("SETTLED", "SETTLED")
    assert not ops.transaction(parent).refunds


@pytest.mark.parametrize("settlement", ["instant", "batch"])
@pytest.mark.parametrize("final", [False, True])
def test_reversing_a_partially_captured_authorization_is_refused_and_refunds_none_of_its_captures(
        emulator: BraintreeEmulator, settlement: str, final: bool) -> None:
    """Braintree refunds only the captures of an authorization captured in parts, and voids a
    SETTLEMENT_PENDING transaction only for PayPal (91504): reverseTransaction on the
    authorization is refused, whether open or closed and settled, and moves nothing."""
    ops = emulator.operations
    parent = _authorization(emulator, settlement)
    with emulator.lock:
        child = ops.partial_capture({"transactionId": parent, "transaction": {"amount": "15.00", "finalCapture": final}})
        if settlement == "batch" or final:
            ops.settle(ops.transaction(parent))
    status = child.status
    assert _refused(emulator, lambda: ops.reverse({"transactionId": parent})) == "91504"
    assert not ops.transaction(parent).refunds and not child.refunds
    assert child.status == status == "SETTLED"
    assert ops.transaction(parent).status == ("SETTLED" if final else "SETTLEMENT_PENDING")


def test_a_void_of_a_partially_captured_payment_is_refused_and_leaves_its_captures(
        shared_service: tuple[PaymentService, BraintreeEmulator]) -> None:
    """What is captured stays captured: the void is refused before anything is sent, and the
    ledger still holds what Braintree holds."""
    payments, emulator = shared_service
    emulator.settlement = "instant"
    key = fresh_key()
    payment = payments.authorize("braintree", Money.of("40.00", EUR), source="fake-valid-nonce", order_id=key,
                                 idempotency_key=key)
    payments.capture(payment.id, Money.of("15.00", EUR), idempotency_key=f"{key}-a")
    with pytest.raises(PaywireError):
        payments.void(payment.id, idempotency_key=f"{key}-v")
    parent = emulator.transactions[payment.reference or ""]
    assert not parent.refunds and parent.status == "SETTLEMENT_PENDING"
    fetched = payments.gateway.execute("braintree", "fetch", Subject(reference=payment.reference))
    held = payments.get_payment(payment.id)
    assert (held.authorized, held.captured, held.refunded) == (fetched.authorized, fetched.captured, fetched.refunded)
    assert fetched.captured == Money.of("15.00", EUR)


def test_a_keyed_capture_of_all_after_a_partial_one_captures_what_is_left(
        emulator: BraintreeEmulator, gateway: Gateway) -> None:
    """A capture without an amount takes all that is left. Keyed, it is sent as a final partial
    capture; the authorization's `amount` is then what its captures hold (30.00), not what is left
    (70.00): sent as the amount, it captured 30.00 and released the other 40.00."""
    reference = _authorize(gateway)
    _capture(gateway, reference, 30)
    rest = gateway.execute("braintree", "capture", Subject(reference=reference, idempotency_key=fresh_key()))
    assert rest.amount == Money.of("70.00", EUR)
    fetched = gateway.execute("braintree", "fetch", Subject(reference=reference))
    assert (fetched.authorized, fetched.captured) == (Money.of("100.00", EUR), Money.of("100.00", EUR))
    assert sorted(t.amount for t in emulator.transactions.values() if t.kind == "sale") == [30, 70, 100]


def test_a_keyed_capture_of_all_when_the_captures_hold_it_all_is_refused_before_sending(
        emulator: BraintreeEmulator, gateway: Gateway) -> None:
    reference = _authorize(gateway)
    _capture(gateway, reference, 60)
    _capture(gateway, reference, 40)
    captures = sum(1 for t in emulator.transactions.values() if t.kind == "sale")
    with pytest.raises(PaywireError) as refused:
        gateway.execute("braintree", "capture", Subject(reference=reference, idempotency_key=fresh_key()))
    assert (refused.value.code, refused.value.state_conflict, refused.value.may_have_been_sent) == (
        "nothing_to_capture", True, False)
    assert sum(1 for t in emulator.transactions.values() if t.kind == "sale") == captures
