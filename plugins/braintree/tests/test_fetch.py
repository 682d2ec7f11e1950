"""fetch is Braintree's account of a payment: after any sequence of partial captures and refunds
its operations add up to its totals, refunded <= captured <= authorized, and each operation
carries the key it was sent with."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import paywire_braintree
from paywire import Gateway, Money, Order, PaywireError, Plugins, Subject
from paywire.testing.emulator import EmulatorServer
from paywire.testing.sandbox import load_sandbox

EUR = "EUR"
steps = st.lists(st.tuples(st.sampled_from(["capture", "refund"]), st.integers(1, 60), st.booleans()),
                 min_size=1, max_size=6)


@pytest.fixture(scope="module")
def gateway() -> Iterator[Gateway]:
    sandbox = load_sandbox(paywire_braintree.BRAINTREE)
    plugins = Plugins()
    plugins.register(paywire_braintree)
    with EmulatorServer(sandbox.app) as server, Gateway([sandbox.method("braintree", server.url)],
                                                        plugins=plugins) as gateway:
        yield gateway


def fresh_key() -> str:
    """A key no run has used (letters only: a run of digits could pass for a card number)."""
    return "fetch-" + uuid.uuid4().hex.translate(str.maketrans("0123456789", "ghijklmnop"))


@settings(max_examples=15, deadline=None)
@given(steps=steps)
def test_operations_add_up_to_the_totals_and_carry_their_keys(gateway: Gateway, steps: list[tuple[str, int, bool]]) -> None:
    key = fresh_key()
    auth = gateway.execute("braintree", "authorize", Subject(
        amount=Money.of("100.00", EUR), source="fake-valid-nonce", order=Order(id=key), idempotency_key=key))
    captures: list[str] = []
    sent: dict[str, str] = {}
    for index, (command, euros, final) in enumerate(steps):
        step_key = f"{key}-{index}"
        target = auth.reference if command == "capture" else (captures[-1] if captures else auth.reference)
        try:
            result = gateway.execute("braintree", command, Subject(
                reference=target, amount=Money.of(str(euros), EUR), final=final, idempotency_key=step_key))
        except PaywireError:
            continue  # more than is left, after a final capture, a refund of nothing captured: refused
        sent[result.reference or ""] = step_key
        if command == "capture":
            captures.append(result.reference or "")
    fetched = gateway.execute("braintree", "fetch", Subject(reference=auth.reference))
    assert fetched.authorized is not None and fetched.captured is not None and fetched.refunded is not None
    for kind, total in (("capture", fetched.captured), ("refund", fetched.refunded)):
        done = [op for op in fetched.operations if op.kind == kind and op.status == "succeeded"]
        assert sum((op.amount for op in done), Money.zero(EUR)) == total
    assert fetched.refunded <= fetched.captured <= fetched.authorized
    assert {op.reference: op.idempotency_key for op in fetched.operations} == sent
