"""Random operation sequences keep refunded <= captured <= authorized and agree with the provider."""

from __future__ import annotations

from hypothesis.stateful import run_state_machine_as_test

from paywire.gateway_definition import Capabilities
from paywire.testing.contract.fixtures import ContractFixtures
from paywire.testing.contract.lifecycle_machine import LifecycleSetup, PaymentLifecycle
from paywire.testing.contract.model import ExpectedStates
from paywire.testing.harness import ContractHarness
from paywire.testing.profiles import bounded_shrinking, contract_settings
from paywire.testing.strategies import Bounds, Representable

__all__ = ["LifecycleContract"]


class LifecycleContract(ContractFixtures):
    """The stateful property: see `PaymentLifecycle` for the operations and what each checks.

    `lifecycle_max_examples` caps the runs per test whatever the profile asks (each run is a
    dozen or more HTTP round trips); a subclass may raise it for a soak.
    """

    lifecycle_max_examples = 50

    def test_random_operation_sequences_agree_with_the_provider(
        self,
        harness: ContractHarness,
        capabilities: Capabilities,
        expected_states: ExpectedStates,
        supported_currencies: frozenset[str] | None,
        amount_bounds: Bounds,
        amount_representable: Representable | None,
    ) -> None:
        machine = PaymentLifecycle.bound(LifecycleSetup(
            harness=harness,
            capabilities=capabilities,
            states=expected_states,
            bounds=amount_bounds,
            representable=amount_representable,
            supported_currencies=supported_currencies,
        ))
        with bounded_shrinking():
            run_state_machine_as_test(machine, settings=contract_settings(max_examples=self.lifecycle_max_examples))
