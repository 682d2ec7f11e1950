"""The kit's own model of one payment at the provider: what it must hold after each operation.

The model decides which operations are possible; the provider's answers and `fetch` must agree
with it. Amounts are minor units of the payment's currency.
"""

from __future__ import annotations

from collections.abc import Callable, Collection

import attrs

from paywire.command.result import CommandResult, ProviderState
from paywire.money import Money

__all__ = ["CaptureModel", "ExpectedStates", "PaymentModel", "RefundModel", "expected_states", "totals_disagreement"]


@attrs.frozen
class RefundModel:
    """One refund: its amount, and the reference and idempotency key it was made with, when known."""

    amount: int
    reference: str | None = None
    key: str | None = None


@attrs.define
class CaptureModel:
    """One capture (or a sale): the reference refunds act on, the key it was sent with (when
    known), and its refunds."""

    reference: str
    amount: int
    key: str | None = None
    refunds: list[RefundModel] = attrs.field(factory=list)

    @property
    def refunded(self) -> int:
        return sum(refund.amount for refund in self.refunds)

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
    closed: bool = False  # a final capture (or a sale, or a void after a capture) released what was left

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

    def capture(self, reference: str, amount: int, *, final: bool, key: str | None = None) -> None:
        self.captures.append(CaptureModel(reference, amount, key))
        self.closed = final or self.captured == self.authorized

    def void(self) -> None:
        """A void: of an authorization with nothing captured, the payment is voided; after a
        partial capture (`Capabilities.void_after_capture`) it releases the rest, the captures
        standing, as a final capture would."""
        if self.captured:
            self.closed = True
        else:
            self.voided = True

    def refund(self, capture: CaptureModel, amount: int, *, reference: str | None = None,
               key: str | None = None) -> None:
        capture.refunds.append(RefundModel(amount, reference, key))


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
    left = payment.money(payment.capturable)
    if fetched.capturable is not None and fetched.capturable != left:
        # Reconciliation closes capture on a zero, whatever the state says of refunds: a zero too
        # early refuses captures the provider takes, a rest after a final capture (or a void)
        # offers what it refuses.
        problems.append(f"capturable: provider reports {fetched.capturable!r}, expected {left!r}")
    allowed = states(payment)
    if fetched.state not in allowed:
        problems.append(f"state: provider reports {fetched.state!r}, expected one of {sorted(allowed)}")
    problems.extend(_operations_disagreement(payment, fetched))
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


def _operations_disagreement(payment: PaymentModel, fetched: CommandResult) -> list[str]:
    """Where the captures and refunds fetch lists as succeeded (when it lists any operations) are
    not those applied. Reconciliation reads the operations alone once any are listed: one missing
    (a plugin listing its refunds but not its captures) settles a lost request that took effect as
    never applied, and records it failed; one of another kind or amount, or under a reference or
    idempotency key other than the one the operation was answered or sent with, is matched to no
    transaction, or to the wrong one."""
    if not fetched.operations:
        return []
    expected: list[tuple[str, int, str | None, str | None]] = [  # kind, amount, reference, key
        ("capture", capture.amount, capture.reference, capture.key) for capture in payment.captures]
    expected += [("refund", refund.amount, refund.reference, refund.key)
                 for capture in payment.captures for refund in capture.refunds]
    problems = []
    for op in fetched.operations:
        if op.kind not in ("capture", "refund") or op.status != "succeeded":
            continue
        match = next((item for item in expected if item[0] == op.kind and payment.money(item[1]) == op.amount
                      and item[2] in (None, op.reference)), None)
        if match is None:
            problems.append(f"it lists a succeeded {op.kind} {op.reference} of {op.amount!r} that no {op.kind} applied "
                            "made (another kind, amount or reference)")
            continue
        expected.remove(match)
        if op.idempotency_key is not None and match[3] is not None and op.idempotency_key != match[3]:
            problems.append(f"it lists {op.kind} {op.reference} with idempotency key {op.idempotency_key!r}; it was "
                            f"sent with {match[3]!r}")
    problems += [f"it lists no succeeded {kind} {reference or ''} of {payment.money(minor)!r}, which was applied "
                 "(reconciliation reads the operations alone once any are listed, and would record it failed)"
                 for kind, minor, reference, _ in expected]
    return problems
