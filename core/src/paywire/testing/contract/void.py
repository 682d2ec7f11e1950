"""Voids release an uncaptured authorization, and only that."""

from __future__ import annotations

import pytest

from paywire.command.result import ProviderState
from paywire.money import Money
from paywire.testing.contract.checks import assert_agrees, assert_refused, authorized_model
from paywire.testing.contract.fixtures import ContractFixtures
from paywire.testing.contract.model import ExpectedStates
from paywire.testing.harness import ContractHarness

__all__ = ["VoidContract"]

capability = pytest.mark.paywire_capability


class VoidContract(ContractFixtures):
    @capability("void")
    def test_a_void_releases_the_authorization_and_blocks_captures(
        self, harness: ContractHarness, example_amount: Money, expected_states: ExpectedStates
    ) -> None:
        payment = authorized_model(harness, example_amount)
        result = harness.execute("void", harness.follow_up(payment.reference))
        assert result.state in (None, ProviderState.VOIDED), f"void answered state {result.state!r}"
        payment.voided = True
        assert_agrees(harness, payment, expected_states)
        if "capture" in harness.commands:
            assert_refused(harness, "capture", harness.follow_up(payment.reference, example_amount))
            assert_agrees(harness, payment, expected_states)

    @capability("void", "capture")
    def test_a_void_after_a_full_capture_is_refused(
        self, harness: ContractHarness, example_amount: Money, expected_states: ExpectedStates
    ) -> None:
        payment = authorized_model(harness, example_amount)
        subject = harness.follow_up(payment.reference, example_amount)
        result = harness.execute("capture", subject)
        payment.capture(result.reference or payment.reference, example_amount.minor, final=True,
                        key=subject.idempotency_key)
        assert_refused(harness, "void", harness.follow_up(payment.reference))
        assert_agrees(harness, payment, expected_states)
