"""Refunds: partial, several, never beyond what was captured, and reported as the provider applied them."""

from __future__ import annotations

import pytest

from paywire.gateway_definition import Capabilities
from paywire.money import Money
from paywire.testing.contract.checks import (
    assert_agrees,
    assert_names_the_refund,
    assert_refused,
    captured_model,
    part_of,
    reports_what_was_applied,
)
from paywire.testing.contract.fixtures import ContractFixtures
from paywire.testing.contract.model import ExpectedStates
from paywire.testing.harness import ContractHarness
from paywire.testing.strategies import Bounds, Representable

__all__ = ["RefundContract"]

capability = pytest.mark.paywire_capability


class RefundContract(ContractFixtures):
    @capability("capture", "refund", "refund_partial")
    def test_a_partial_refund_refunds_exactly_that_amount(
        self, harness: ContractHarness, example_amount: Money, expected_states: ExpectedStates,
        amount_representable: Representable | None,
    ) -> None:
        payment, capture = captured_model(harness, example_amount)
        part = part_of(example_amount, 1 / 4, amount_representable)
        subject = harness.follow_up(capture.reference, part)
        result = harness.execute("refund", subject)
        assert result.amount in (None, part), f"a refund of {part!r} applied {result.amount!r}"
        assert_names_the_refund(result)
        payment.refund(capture, part.minor, reference=result.reference, key=subject.idempotency_key)
        assert_agrees(harness, payment, expected_states)

    @capability("capture", "refund", "refund_partial", "refund_multiple")
    def test_several_refunds_add_up_to_the_capture_and_no_further(
        self, harness: ContractHarness, example_amount: Money, expected_states: ExpectedStates,
        amount_representable: Representable | None,
    ) -> None:
        payment, capture = captured_model(harness, example_amount)
        half = part_of(example_amount, 1 / 2, amount_representable).minor
        named: set[str] = set()
        for amount in (half, example_amount.minor - half):
            subject = harness.follow_up(capture.reference, payment.money(amount))
            result = harness.execute("refund", subject)
            assert result.amount in (None, payment.money(amount)), (
                f"a refund of {payment.money(amount)!r} (after {payment.money(payment.refunded)!r} refunded) reports "
                f"amount {result.amount!r}: a refund's amount is what it refunded, not the running total")
            reference = assert_names_the_refund(result)
            assert reference not in named, (
                f"two refunds of capture {capture.reference} both name {reference!r}: each refund is an object of "
                "its own at the provider, named by its own id (not the payment's or the capture's it refunds)")
            named.add(reference)
            payment.refund(capture, amount, reference=result.reference, key=subject.idempotency_key)
            assert_agrees(harness, payment, expected_states)
        more = part_of(example_amount, 0.1, amount_representable)
        assert_refused(harness, "refund", harness.follow_up(capture.reference, more))
        assert_agrees(harness, payment, expected_states)

    @capability("capture", "refund")
    def test_a_refund_beyond_the_capture_is_refused_and_changes_nothing(
        self, harness: ContractHarness, example_amount: Money, expected_states: ExpectedStates
    ) -> None:
        payment, capture = captured_model(harness, example_amount)
        assert_refused(harness, "refund", harness.follow_up(capture.reference, example_amount + example_amount))
        assert_agrees(harness, payment, expected_states)

    @capability("capture", "refund", "refund_partial")
    def test_a_refund_the_provider_applies_in_part_reports_what_it_refunded(
        self, harness: ContractHarness, capabilities: Capabilities, supported_currencies: frozenset[str] | None,
        amount_bounds: Bounds, amount_representable: Representable | None, partial_refund_source: str | None,
    ) -> None:
        """A refund's `amount` is what the provider refunded, read from its answer: the amount
        asked for, reported when the provider refunded less, claims money returned to the buyer
        that the provider still holds. Property: whatever the currency and the part asked, the
        reported amount is what fetch shows refunded."""
        source = partial_refund_source
        if source is None:
            pytest.skip("the sandbox declares no 'partial_refund' source (Sandbox.sources['partial_refund']): "
                        "the provider refunds all that is asked or refuses")
        reports_what_was_applied(harness, "refund", source, supported_currencies, amount_bounds, amount_representable,
                                 sale=capabilities.sale and "sale" in harness.commands)
