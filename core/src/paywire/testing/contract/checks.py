"""Checks shared by the example-based contract tests: model a payment, compare it with fetch."""

from __future__ import annotations

from paywire.errors import InvalidRequest
from paywire.money import Money
from paywire.subject import Subject
from paywire.testing.contract.model import CaptureModel, ExpectedStates, PaymentModel, totals_disagreement
from paywire.testing.harness import ContractHarness, payment_reference
from paywire.testing.strategies import Representable, representable_at_most

__all__ = ["assert_agrees", "assert_refused", "authorized_model", "captured_model", "part_of"]


def part_of(amount: Money, share: float, representable: Representable | None) -> Money:
    """About `share` of `amount`, as an amount the provider holds (at least one minor unit)."""
    part = representable_at_most(max(1, int(amount.minor * share)), amount.currency, representable)
    if part is None:
        raise AssertionError(f"no representable part of {amount!r} near {share:.0%}")
    return part


def authorized_model(harness: ContractHarness, amount: Money) -> PaymentModel:
    """Authorize `amount` and model the payment."""
    result = harness.authorize(amount)
    assert result.reference, f"authorize returned no reference: {result!r}"
    return PaymentModel(result.reference, payment_reference(result), amount.currency, amount.minor)


def assert_agrees(harness: ContractHarness, payment: PaymentModel, states: ExpectedStates) -> None:
    problem = totals_disagreement(payment, harness.fetch(payment.payment), states)
    assert problem is None, problem


def assert_refused(harness: ContractHarness, command: str, subject: Subject) -> None:
    outcome = harness.attempt(command, subject)
    assert isinstance(outcome, InvalidRequest) and not outcome.retryable, (
        f"{command} of {subject.amount!r} on {subject.reference} should be refused, gave {outcome!r}"
    )


def captured_model(harness: ContractHarness, amount: Money) -> tuple[PaymentModel, CaptureModel]:
    """Authorize and capture `amount` in full; the model and its capture."""
    payment = authorized_model(harness, amount)
    subject = harness.follow_up(payment.reference, amount)
    result = harness.execute("capture", subject)
    payment.capture(result.reference or payment.reference, amount.minor, final=True, key=subject.idempotency_key)
    return payment, payment.captures[-1]
