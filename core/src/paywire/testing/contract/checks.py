"""Checks shared by the contract tests: model a payment, compare it with fetch, and read what a
capture or refund the provider applies in part reports."""

from __future__ import annotations

from collections.abc import Collection

from hypothesis import assume, given
from hypothesis import strategies as st

from paywire.command.result import CommandResult
from paywire.errors import InvalidRequest
from paywire.money import Money
from paywire.subject import Subject
from paywire.testing.contract.model import CaptureModel, ExpectedStates, PaymentModel, totals_disagreement
from paywire.testing.harness import ContractHarness, payment_reference
from paywire.testing.profiles import run_property
from paywire.testing.strategies import Bounds, Representable, money, representable_at_most

__all__ = ["assert_agrees", "assert_names_the_refund", "assert_refused", "authorized_model", "captured_model", "part_of",
           "reports_what_was_applied"]


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


def assert_names_the_refund(result: CommandResult) -> str:
    """A refund's result names the refund the provider made: what its webhooks, fetch's
    operations and reconciliation know it by. Without it the ledger can only file the refund
    under the payment, where a later event about the refund (failed, reversed) matches nothing."""
    assert result.reference, (
        f"a refund's result names no reference ({result!r}): it must be the provider's id of the refund")
    return result.reference


def captured_model(harness: ContractHarness, amount: Money) -> tuple[PaymentModel, CaptureModel]:
    """Authorize and capture `amount` in full; the model and its capture."""
    payment = authorized_model(harness, amount)
    subject = harness.follow_up(payment.reference, amount)
    result = harness.execute("capture", subject)
    payment.capture(result.reference or payment.reference, amount.minor, final=True, key=subject.idempotency_key)
    return payment, payment.captures[-1]


def reports_what_was_applied(harness: ContractHarness, command: str, source: str,
                             currencies: Collection[str] | None, bounds: Bounds, representable: Representable | None,
                             *, sale: bool = False) -> None:
    """Property: a capture or refund (`command`) of any part of a payment in any of `currencies`
    (None: all) made with `source`, whose captures or refunds the provider applies for less than
    asked, reports as its `amount` what fetch shows applied, never the amount asked. A refund's
    payment is paid by a sale when `sale`, else authorized and captured in full."""
    total = "captured" if command == "capture" else "refunded"
    payments = money(currency=sorted(currencies) if currencies else None, bounds=bounds, representable=representable)

    def applied_in_part(amount: Money, share: int) -> None:
        paid = harness.authorize(amount, sale=sale and command == "refund", source=source)
        held = paid.amount or amount  # what the payment holds: an authorize defect is not blamed on the follow-up
        asked = representable_at_most(max(2, held.minor * share // 100), held.currency, representable, low=2)
        assume(asked is not None)
        assert asked is not None
        target = paid.reference
        if command == "refund" and not sale:
            captured = harness.execute("capture", harness.follow_up(paid.reference, held, final=True))
            target = captured.reference or paid.reference
        result = harness.execute(command, harness.follow_up(target, asked, final=True) if command == "capture"
                                 else harness.follow_up(target, asked))
        applied = getattr(harness.fetch(payment_reference(paid)), total)
        assert applied is not None and 0 < applied.minor < asked.minor, (
            f"a {command} of {asked!r} with the 'partial_{command}' source {source!r}: the provider holds {applied!r} "
            f"{total}, not part of it (the sandbox's source is not partial)")
        assert result.amount == applied, (
            f"a {command} of {asked!r} that the provider applied as {applied!r} reports amount {result.amount!r}: "
            f"a {command}'s amount is what the provider {total}, read from its answer, not the amount asked")

    run_property(given(payments.filter(lambda amount: amount.minor >= 2), st.integers(1, 100))(applied_in_part),
                 max_examples=10)
