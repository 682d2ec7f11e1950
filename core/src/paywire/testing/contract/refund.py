"""Refunds: partial, several, and never beyond what was captured."""

from __future__ import annotations

import pytest

from paywire.money import Money
from paywire.subject import Subject
from paywire.testing.contract.checks import assert_agrees, assert_refused, captured_model
from paywire.testing.contract.fixtures import ContractFixtures
from paywire.testing.contract.model import ExpectedStates
from paywire.testing.harness import ContractHarness

__all__ = ["RefundContract"]

capability = pytest.mark.paywire_capability


class RefundContract(ContractFixtures):
    @capability("capture", "refund", "refund_partial")
    def test_a_partial_refund_refunds_exactly_that_amount(
        self, harness: ContractHarness, example_amount: Money, expected_states: ExpectedStates
    ) -> None:
        payment, capture = captured_model(harness, example_amount)
        part = example_amount.minor // 4
        result = harness.execute("refund", Subject(reference=capture.reference, amount=payment.money(part),
                                                   idempotency_key=harness.key()))
        assert result.amount in (None, payment.money(part)), f"a refund of {part} applied {result.amount!r}"
        payment.refund(capture, part)
        assert_agrees(harness, payment, expected_states)

    @capability("capture", "refund", "refund_partial", "refund_multiple")
    def test_several_refunds_add_up_to_the_capture_and_no_further(
        self, harness: ContractHarness, example_amount: Money, expected_states: ExpectedStates
    ) -> None:
        payment, capture = captured_model(harness, example_amount)
        half = example_amount.minor // 2
        for amount in (half, example_amount.minor - half):
            harness.execute("refund", Subject(reference=capture.reference, amount=payment.money(amount),
                                              idempotency_key=harness.key()))
            payment.refund(capture, amount)
            assert_agrees(harness, payment, expected_states)
        assert_refused(harness, "refund", Subject(reference=capture.reference, amount=payment.money(1),
                                                  idempotency_key=harness.key()))
        assert_agrees(harness, payment, expected_states)

    @capability("capture", "refund")
    def test_a_refund_beyond_the_capture_is_refused_and_changes_nothing(
        self, harness: ContractHarness, example_amount: Money, expected_states: ExpectedStates
    ) -> None:
        payment, capture = captured_model(harness, example_amount)
        assert_refused(harness, "refund", Subject(reference=capture.reference, amount=example_amount + example_amount,
                                                  idempotency_key=harness.key()))
        assert_agrees(harness, payment, expected_states)
