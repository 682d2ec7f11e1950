"""Buyer action (3-D Secure, approval): a redirect first, completion only after the buyer acted,
for an authorization and for a sale alike."""

from __future__ import annotations

import pytest

from paywire.command.result import ProviderState
from paywire.errors import BuyerActionRequired, InvalidRequest, PaywireError
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

    @capability("buyer_action", "sale")
    def test_a_sale_waiting_for_the_buyer_holds_nothing_until_completed(
        self, harness: ContractHarness, example_amount: Money, buyer_action_source: str
    ) -> None:
        """A sale the provider holds until the buyer acts must say so: read as paid, the ledger
        counts captured money that comes only if the buyer passes the challenge (and a shop ships
        an order nobody paid). The sale's answer is read apart from the authorization's in most
        plugins, so this is checked apart."""
        if "sale" not in harness.commands:
            pytest.skip(f"{harness.provider} offers no sale")
        started = harness.execute("sale", harness.payment_subject(example_amount, source=buyer_action_source))
        assert started.action_required and started.action is not None, (
            f"a sale with {buyer_action_source!r} gave {started!r}: the provider waits for the buyer, so it must "
            "answer action_required with the buyer's action; nothing is paid yet")
        payment = payment_reference(started)
        waiting = harness.fetch(payment)
        zero = Money.zero(example_amount.currency)
        assert waiting.state == ProviderState.ACTION_REQUIRED and waiting.captured in (None, zero), (
            f"while the sale waits for the buyer the provider holds {waiting.state!r}, captured {waiting.captured!r}")
        done = harness.complete(started, example_amount)
        assert done.succeeded, f"complete of the sale after the buyer acted gave {done!r}"
        fetched = harness.fetch(payment)
        assert fetched.captured == example_amount, (
            f"after the buyer acted and the sale was completed the provider holds captured {fetched.captured!r}, "
            f"not {example_amount!r}")

    @capability("buyer_action", "cancel_waiting")
    def test_cancel_waiting_leaves_the_buyer_nothing_to_pay(
        self, harness: ContractHarness, example_amount: Money, buyer_action_source: str
    ) -> None:
        """Declaring `cancel_waiting` says `void` cancels a payment still waiting for its buyer: the
        provider then holds it failed or voided, nothing held, and it cannot be completed."""
        started = harness.execute("authorize", harness.payment_subject(example_amount, source=buyer_action_source))
        assert started.action_required, f"{buyer_action_source!r} gave {started!r}"
        payment = payment_reference(started)
        cancelled = harness.execute("void", harness.follow_up(payment))
        assert cancelled.state in (None, ProviderState.FAILED, ProviderState.VOIDED), (
            f"the cancel of a payment waiting for the buyer answered state {cancelled.state!r}")
        fetched = harness.fetch(payment)
        zero = Money.zero(example_amount.currency)
        assert fetched.state in (ProviderState.FAILED, ProviderState.VOIDED), (
            f"after the cancel the provider holds {fetched.state!r}: the buyer could still pay it")
        assert fetched.authorized in (None, zero) and fetched.captured in (None, zero), (
            f"after the cancel the provider holds {fetched.authorized!r} authorized, {fetched.captured!r} captured")
        outcome = harness.attempt("complete", harness.follow_up(payment, example_amount))
        assert isinstance(outcome, PaywireError) and not outcome.retryable, f"completing after the cancel gave {outcome!r}"
