"""The kit's own model of one payment at the provider: what it must hold after each operation.

The model decides which operations are possible; the provider's answers and `fetch` must agree
with it. Amounts are minor units of the payment's currency.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import attrs

from paywire.command.result import CommandResult, ProviderState
from paywire.money import Money

__all__ = ["CaptureModel", "ExpectedStates", "PaymentModel", "expected_states", "totals_disagreement"]


@attrs.define
class CaptureModel:
    """One capture (or a sale): the reference refunds act on, and how much of it was refunded."""

    reference: str
    amount: int
    refunded: int = 0

    @property
    def refundable(self) -> int:
        return self.amount - self.refunded


@attrs.define
class PaymentModel:
    """One payment: authorized, its captures, whether voided or closed to further captures."""

    reference: str  # what capture and void act on
    payment: str  # what fetch reads
    currency: str
    authorized: int
    captures: list[CaptureModel] = attrs.field(factory=list)
    voided: bool = False
    closed: bool = False  # a final capture (or a sale) released what was left

    @property
    def captured(self) -> int:
        return sum(capture.amount for capture in self.captures)

    @property
    def refunded(self) -> int:
        return sum(capture.refunded for capture in self.captures)

    @property
    def capturable(self) -> int:
        return 0 if self.voided or self.closed else self.authorized - self.captured

    @property
    def voidable(self) -> bool:
        return not self.voided and not self.closed and self.captured == 0

    def money(self, minor: int) -> Money:
        return Money.minor_units(minor, self.currency)

    def capture(self, reference: str, amount: int, *, final: bool) -> None:
        self.captures.append(CaptureModel(reference, amount))
        self.closed = final or self.captured == self.authorized

    def refund(self, capture: CaptureModel, amount: int) -> None:
        capture.refunded += amount


ExpectedStates = Callable[[PaymentModel], Collection[str]]
"""The `ProviderState` values `fetch` may report for a payment the model describes."""


def expected_states(payment: PaymentModel) -> Collection[str]:
    """The state a provider following `docs/commands.md` reports for `payment`."""
    if payment.voided:
        return {ProviderState.VOIDED}
    if payment.captured == 0:
        return {ProviderState.AUTHORIZED}
    if payment.refunded == 0:
        return {ProviderState.CAPTURED if payment.closed else ProviderState.PARTIALLY_CAPTURED}
    if payment.refunded < payment.captured:
        return {ProviderState.PARTIALLY_REFUNDED}
    return {ProviderState.REFUNDED}


def totals_disagreement(payment: PaymentModel, fetched: CommandResult, states: ExpectedStates) -> str | None:
    """Why `fetched` (the provider's answer to fetch) disagrees with the model, or None."""
    problems = []
    for name, minor in (("authorized", payment.authorized), ("captured", payment.captured),
                        ("refunded", payment.refunded)):
        reported = getattr(fetched, name)
        if reported != payment.money(minor):
            problems.append(f"{name}: provider reports {reported!r}, expected {payment.money(minor)!r}")
    allowed = states(payment)
    if fetched.state not in allowed:
        problems.append(f"state: provider reports {fetched.state!r}, expected one of {sorted(allowed)}")
    problems.extend(_split_disagreement(payment, fetched))
    if not problems:
        return None
    return f"fetch of {payment.payment} disagrees with the operations applied: " + "; ".join(problems)


def _split_disagreement(payment: PaymentModel, fetched: CommandResult) -> list[str]:
    """Where the refunds fetch lists with their parent (`ProviderOperation.parent`, when the plugin
    reports it) do not add up, capture by capture, to what the model refunded of each: the parent
    must be the reference the capture (or sale) answered, which reconciliation compares with the
    ledger's capture transaction."""
    listed: dict[str, int] = {}
    for op in fetched.operations:
        if op.kind == "refund" and op.parent is not None and op.status == "succeeded":
            listed[op.parent] = listed.get(op.parent, 0) + op.amount.minor
    if not listed:
        return []
    expected: dict[str, int] = {}
    for capture in payment.captures:
        if capture.refunded:
            expected[capture.reference] = expected.get(capture.reference, 0) + capture.refunded
    if listed == expected:
        return []
    return [f"refunds by the capture each names as its parent: provider lists {listed}, expected {expected}"]
