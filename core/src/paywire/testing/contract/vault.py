"""Vaulting: a stored payment method is charged later without the buyer."""

from __future__ import annotations

import pytest

from paywire.errors import PaywireError
from paywire.money import Money
from paywire.subject import Customer, Subject
from paywire.testing.contract.fixtures import ContractFixtures
from paywire.testing.harness import ContractHarness, payment_reference

__all__ = ["VaultContract"]

capability = pytest.mark.paywire_capability


class VaultContract(ContractFixtures):
    @capability("vault")
    def test_a_vaulted_method_is_charged_without_the_buyer(
        self, harness: ContractHarness, example_amount: Money
    ) -> None:
        customer = Customer(email="buyer@shop.example", name="Contract Buyer")
        stored = harness.execute("vault", Subject(source=harness.payment_source, customer=customer,
                                                  idempotency_key=harness.key()))
        assert stored.token, f"vault returned no token: {stored!r}"
        vaulted = Customer(email=customer.email, reference=stored.references.get("customer"))
        result = harness.execute("authorize", harness.payment_subject(example_amount, source=stored.token,
                                                                      customer=vaulted, vaulted=True))
        assert result.succeeded, f"a vaulted charge asked for buyer action: {result!r}"
        assert harness.fetch(payment_reference(result)).authorized == example_amount

    @capability("vault", "buyer_action")
    def test_a_vaulted_charge_that_needs_the_buyer_is_declined_not_redirected(
        self, harness: ContractHarness, example_amount: Money, buyer_action_source: str
    ) -> None:
        customer = Customer(email="buyer@shop.example")
        stored = harness.attempt("vault", Subject(source=buyer_action_source, customer=customer,
                                                  idempotency_key=harness.key()))
        if isinstance(stored, PaywireError) or not stored.token:
            pytest.skip(f"{harness.provider} does not vault {buyer_action_source!r}")
        vaulted = Customer(email=customer.email, reference=stored.references.get("customer"))
        outcome = harness.attempt("authorize", harness.payment_subject(example_amount, source=stored.token,
                                                                       customer=vaulted, vaulted=True))
        assert isinstance(outcome, PaywireError) and not outcome.retryable, (
            f"an off-session charge of a method that needs the buyer gave {outcome!r}; the buyer is absent"
        )
