"""Buyer action (3-D Secure, approval): a redirect first, completion only after the buyer acted."""

from __future__ import annotations

import pytest

from paywire.command.result import ProviderState
from paywire.errors import BuyerActionRequired, InvalidRequest
from paywire.money import Money
from paywire.testing.contract.fixtures import ContractFixtures
from paywire.testing.harness import ContractHarness, payment_reference

__all__ = ["BuyerActionContract"]

capability = pytest.mark.paywire_capability


class BuyerActionContract(ContractFixtures):
    """Requires `buyer_action_source` and `approve_buyer_action` when `buyer_action` is declared."""

    @capability("buyer_action")
    def test_buyer_action_redirects_then_completes_after_approval(
        self, harness: ContractHarness, example_amount: Money, buyer_action_source: str
    ) -> None:
        started = harness.execute("authorize", harness.payment_subject(example_amount, source=buyer_action_source))
        assert started.action_required and started.action is not None, f"{buyer_action_source!r} gave {started!r}"
        assert started.action.redirect_url, "the buyer action has no redirect URL"
        payment = payment_reference(started)
        waiting = harness.fetch(payment)
        assert waiting.state == ProviderState.ACTION_REQUIRED, f"while waiting for the buyer: {waiting.state!r}"
        assert waiting.captured in (None, Money.zero(example_amount.currency))
        done = harness.complete(started, example_amount)
        assert done.succeeded, f"complete after the buyer acted gave {done!r}"
        fetched = harness.fetch(payment)
        assert fetched.state == ProviderState.AUTHORIZED and fetched.authorized == example_amount, (
            f"after completion the provider holds {fetched.state!r}, {fetched.authorized!r}"
        )

    @capability("buyer_action")
    def test_completing_before_the_buyer_acted_is_refused(
        self, harness: ContractHarness, example_amount: Money, buyer_action_source: str
    ) -> None:
        started = harness.execute("authorize", harness.payment_subject(example_amount, source=buyer_action_source))
        assert started.action_required, f"{buyer_action_source!r} gave {started!r}"
        outcome = harness.attempt("complete", harness.follow_up(payment_reference(started), example_amount))
        assert isinstance(outcome, (InvalidRequest, BuyerActionRequired)) and not outcome.retryable, (
            f"completing before the buyer acted gave {outcome!r}"
        )
        assert harness.fetch(payment_reference(started)).state == ProviderState.ACTION_REQUIRED
