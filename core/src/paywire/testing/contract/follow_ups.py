"""Captures and refunds in every exponent, each acting on the payment it names.

The other example-based checks capture and refund one payment in one currency: a follow-up amount
written as hundredths whatever the currency, or an operation sent to the payment the gateway made
last, passes them. Here two payments are made per exponent, and the first is captured and refunded
after the second exists, and each capture and refund must report the amount it applied in the
currency's exponent (an answer's amount read as hundredths reports a JPY refund a hundred times off).
"""

from __future__ import annotations

import pytest

from paywire.errors import PaywireError
from paywire.gateway_definition import Capabilities
from paywire.money import CURRENCY_EXPONENTS, Money
from paywire.testing.contract.amounts import representative_amounts
from paywire.testing.contract.checks import authorized_model, part_of
from paywire.testing.contract.fixtures import ContractFixtures
from paywire.testing.contract.model import ExpectedStates, totals_disagreement
from paywire.testing.harness import ContractHarness
from paywire.testing.strategies import Bounds, Representable

__all__ = ["FollowUpContract"]

capability = pytest.mark.paywire_capability


class FollowUpContract(ContractFixtures):
    @capability("capture")
    def test_captures_and_refunds_of_every_exponent_act_on_their_own_payment(
        self, harness: ContractHarness, capabilities: Capabilities, supported_currencies: frozenset[str] | None,
        amount_bounds: Bounds, amount_representable: Representable | None, expected_states: ExpectedStates,
    ) -> None:
        """Per exponent the provider takes: authorize A, then B; capture part of A, refund part of
        that capture. A must hold exactly what was captured and refunded, B nothing but its
        authorization."""
        problems: list[str] = []
        for amount in representative_amounts(supported_currencies, amount_bounds, amount_representable):
            problems.extend(self._two_payments(harness, capabilities, amount, amount_representable, expected_states))
        assert not problems, "captures and refunds went wrong:\n" + "\n".join(problems)

    def _two_payments(self, harness: ContractHarness, capabilities: Capabilities, amount: Money,
                    representable: Representable | None, states: ExpectedStates) -> list[str]:
        where = f"{amount.currency} (exponent {CURRENCY_EXPONENTS[amount.currency]})"
        first = authorized_model(harness, amount)
        other = authorized_model(harness, amount)
        steps = [("capture", part_of(amount, 1 / 2, representable) if capabilities.capture_partial else amount)]
        if capabilities.refund and "refund" in harness.commands:
            steps.append(("refund", part_of(steps[0][1], 1 / 2, representable) if capabilities.refund_partial
                          else steps[0][1]))
        for command, part in steps:
            what = f"a {command} of {part!r} on {first.payment}, {where}"
            if command == "capture":
                subject = harness.follow_up(first.reference, part, final=True)
            else:
                subject = harness.follow_up(first.captures[-1].reference, part)
            outcome = harness.attempt(command, subject)
            if isinstance(outcome, PaywireError):
                return [f"{what} raised {outcome!r}: is the amount written in this currency's exponent, and "
                        "sent to the reference the subject names?"]
            if outcome.amount not in (None, part):
                return [f"{what} reports amount {outcome.amount!r}: is the amount in the answer read in this "
                        "currency's exponent?"]
            if command == "capture":
                first.capture(outcome.reference or first.reference, part.minor, final=True, key=subject.idempotency_key)
            else:
                first.refund(first.captures[-1], part.minor, reference=outcome.reference, key=subject.idempotency_key)
        problems = []
        problem = totals_disagreement(first, harness.fetch(first.payment), states)
        if problem:
            problems.append(f"after {what}: {problem} (a follow-up amount in another scale than the currency's "
                            "exponent, or an operation applied to another payment)")
        problem = totals_disagreement(other, harness.fetch(other.payment), states)
        if problem:
            problems.append(f"the other payment {other.payment}, authorized after {first.payment}, changed when "
                            f"only {first.payment} was captured and refunded: {problem}; each operation must act on "
                            "the reference its subject names")
        return problems
