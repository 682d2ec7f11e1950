"""Captures: partial, multiple, never beyond the authorization, and reported as the provider applied them."""

from __future__ import annotations

import pytest

from paywire.money import Money
from paywire.testing.contract.checks import (
    assert_agrees,
    assert_refused,
    authorized_model,
    part_of,
    reports_what_was_applied,
)
from paywire.testing.contract.fixtures import ContractFixtures
from paywire.testing.contract.model import ExpectedStates
from paywire.testing.harness import ContractHarness
from paywire.testing.strategies import Bounds, Representable

__all__ = ["CaptureContract"]

capability = pytest.mark.paywire_capability


class CaptureContract(ContractFixtures):
    @capability("capture", "capture_partial")
    def test_a_partial_capture_captures_exactly_that_amount_and_closes(
        self, harness: ContractHarness, example_amount: Money, expected_states: ExpectedStates,
        amount_representable: Representable | None,
    ) -> None:
        payment = authorized_model(harness, example_amount)
        part = part_of(example_amount, 1 / 3, amount_representable)
        subject = harness.follow_up(payment.reference, part, final=True)
        result = harness.execute("capture", subject)
        assert result.amount in (None, part), f"a capture of {part!r} applied {result.amount!r}"
        payment.capture(result.reference or payment.reference, part.minor, final=True, key=subject.idempotency_key)
        assert_agrees(harness, payment, expected_states)
        more = part_of(example_amount, 0.1, amount_representable)
        assert_refused(harness, "capture", harness.follow_up(payment.reference, more))
        assert_agrees(harness, payment, expected_states)

    @capability("capture", "capture_partial", "capture_multiple")
    def test_multiple_captures_add_up_to_the_authorization_and_no_further(
        self, harness: ContractHarness, example_amount: Money, expected_states: ExpectedStates,
        amount_representable: Representable | None,
    ) -> None:
        payment = authorized_model(harness, example_amount)
        third = part_of(example_amount, 1 / 3, amount_representable).minor
        for amount, final in ((third, False), (third, False), (example_amount.minor - 2 * third, True)):
            subject = harness.follow_up(payment.reference, payment.money(amount), final=final)
            result = harness.execute("capture", subject)
            assert result.amount in (None, payment.money(amount)), (
                f"a capture of {payment.money(amount)!r} (after {payment.money(payment.captured)!r} captured) reports "
                f"amount {result.amount!r}: a capture's amount is what it captured, not the running total")
            payment.capture(result.reference or payment.reference, amount, final=final, key=subject.idempotency_key)
            assert_agrees(harness, payment, expected_states)
        more = part_of(example_amount, 0.1, amount_representable)
        assert_refused(harness, "capture", harness.follow_up(payment.reference, more))

    @capability("capture")
    def test_a_capture_beyond_the_authorization_is_refused_and_changes_nothing(
        self, harness: ContractHarness, example_amount: Money, expected_states: ExpectedStates
    ) -> None:
        payment = authorized_model(harness, example_amount)
        assert_refused(harness, "capture", harness.follow_up(payment.reference, example_amount + example_amount))
        assert_agrees(harness, payment, expected_states)

    @capability("capture", "capture_partial")
    def test_a_capture_the_provider_applies_in_part_reports_what_it_captured(
        self, harness: ContractHarness, supported_currencies: frozenset[str] | None, amount_bounds: Bounds,
        amount_representable: Representable | None, partial_capture_source: str | None,
    ) -> None:
        """A capture's `amount` is what the provider captured, read from its answer: the amount
        asked for, reported when the provider captured less, claims money the shop will never
        receive (and refunds of it). Property: whatever the currency and the part asked, the
        reported amount is what fetch shows captured."""
        source = partial_capture_source
        if source is None:
            pytest.skip("the sandbox declares no 'partial_capture' source (Sandbox.sources['partial_capture']): "
                        "the provider captures all that is asked or refuses")
        reports_what_was_applied(harness, "capture", source, supported_currencies, amount_bounds, amount_representable)
