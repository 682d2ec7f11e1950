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
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paywire import Gateway, Money, Order, PaymentService, PaywireError, ProviderState, Subject
from paywire_braintree.emulator import BraintreeEmulator

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
