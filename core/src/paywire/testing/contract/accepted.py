"""Operations the provider accepts and decides later: answered `accepted`, never `succeeded`;
not counted by `fetch` until decided; then reported as the provider decided.

The sandbox declares them: an "accepted" source (a bank debit, an eCheck), a "refund_accepted"
source, an "authorization_accepted" source (a pending authorization), and
`settle(reference, succeed)` acting as the provider's later decision.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from paywire.command.result import CommandResult, ProviderState
from paywire.errors import PaywireError
from paywire.gateway_definition import Capabilities
from paywire.money import Money
from paywire.testing.contract.checks import part_of
from paywire.testing.contract.fixtures import ContractFixtures
from paywire.testing.harness import ContractHarness, payment_reference
from paywire.testing.strategies import Representable

__all__ = ["AcceptedOutcomeContract", "operation_problems"]

Settle = Callable[[str, bool], None]


def _zero(value: Money | None) -> bool:
    return value is None or value.minor == 0


def operation_problems(fetched: CommandResult, kind: str, reference: str, status: str) -> list[str]:
    """Where fetch's `operations` (when it lists any) disagree on one operation's status."""
    if not fetched.operations:
        return []
    listed = [op for op in fetched.operations if op.kind == kind and op.reference == reference]
    if not listed:
        return [f"fetch lists no {kind} {reference} among its operations {fetched.operations!r}"]
    if listed[0].status != status:
        return [f"fetch lists {kind} {reference} as {listed[0].status!r}, expected {status!r}"]
    return []


def _needs(settle: Settle | None, source: str | None, role: str) -> tuple[Settle, str]:
    if source is None:
        pytest.skip(f"the sandbox declares no {role!r} source (Sandbox.sources[{role!r}]): every such "
                    "operation is decided at once")
    if settle is None:
        raise AssertionError(f"the sandbox declares a {role!r} source but no settle control (Sandbox.settle)")
    return settle, source


class AcceptedOutcomeContract(ContractFixtures):
    """Needs the sandbox's "accepted" / "refund_accepted" sources and its `settle` control."""

    def _pay_later(self, harness: ContractHarness, capabilities: Capabilities, amount: Money,
                   source: str) -> tuple[CommandResult, CommandResult]:
        """Pay with `source`: (the first result, the accepted one: the sale's or the capture's)."""
        if capabilities.sale and "sale" in harness.commands:
            sold = harness.authorize(amount, sale=True, source=source)
            return sold, sold
        authorized = harness.authorize(amount, source=source)
        assert authorized.succeeded, f"authorizing with the 'accepted' source {source!r} gave {authorized!r}"
        return authorized, harness.execute("capture", harness.follow_up(authorized.reference, amount))

    @pytest.mark.parametrize("succeed", [True, False], ids=["decided-paid", "decided-refused"])
    def test_a_payment_decided_later_is_accepted_and_counted_only_once_decided(
        self, harness: ContractHarness, capabilities: Capabilities, accepted_amount: Money,
        accepted_source: str | None, settle_accepted: Settle | None, succeed: bool,
    ) -> None:
        example_amount = accepted_amount
        settle, source = _needs(settle_accepted, accepted_source, "accepted")
        first, taken = self._pay_later(harness, capabilities, example_amount, source)
        assert taken.accepted, (
            f"paying with {source!r}, which the provider decides later, answered status {taken.status!r}: "
            "it must answer 'accepted' (never 'succeeded') until the provider decides"
        )
        assert taken.reference, f"the accepted answer names no reference to settle it by: {taken!r}"
        payment = payment_reference(first)
        waiting = harness.fetch(payment)
        problems = []
        if taken is first and not _zero(waiting.authorized):
            problems.append(f"while the sale is undecided fetch reports authorized {waiting.authorized!r}: nothing "
                            "is held until the provider decides (reconciliation would record the payment authorized)")
        problems += _decided_problems(harness, payment, taken.reference, example_amount, waiting, settle, succeed)
        assert not problems, "an accepted payment was reported wrongly:\n" + "\n".join(problems)

    @pytest.mark.parametrize("succeed", [True, False], ids=["decided-paid", "decided-refused"])
    def test_a_capture_decided_later_is_accepted_and_counted_only_once_decided(
        self, harness: ContractHarness, capabilities: Capabilities, accepted_amount: Money,
        accepted_source: str | None, settle_accepted: Settle | None, succeed: bool,
    ) -> None:
        """The capture of an authorization made with the "accepted" source, where the check above
        paid by sale: its answer must agree with `fetch`. A capture answered `succeeded` that the
        provider has not decided is counted by the ledger as money held, which the bank may yet
        refuse; one answered `accepted` is reported as decided once `settle` decides it."""
        settle, source = _needs(settle_accepted, accepted_source, "accepted")
        if not (capabilities.capture and "capture" in harness.commands):
            pytest.skip(f"{harness.provider} has no capture")
        if not (capabilities.sale and "sale" in harness.commands):
            pytest.skip("the payment decided later is paid through its capture in the check above")
        authorized = harness.attempt("authorize", harness.payment_subject(accepted_amount, source=source))
        if isinstance(authorized, PaywireError) or not authorized.succeeded:
            pytest.skip(f"{harness.provider} does not authorize the 'accepted' source {source!r} on its own "
                        f"({authorized!r}): it is paid by sale only")
        payment = payment_reference(authorized)
        taken = harness.execute("capture", harness.follow_up(authorized.reference, accepted_amount, final=True))
        waiting = harness.fetch(payment)
        counted = waiting.captured == accepted_amount and waiting.state != ProviderState.PROCESSING
        if not taken.accepted:
            assert counted, (
                f"a capture of {accepted_amount!r} with {source!r} answered status {taken.status!r}, but fetch reports "
                f"{waiting.state!r} with captured {waiting.captured!r}: a capture the provider decides later must "
                "answer 'accepted' (never 'succeeded') until it decides")
            pytest.skip(f"{harness.provider} decided the capture at once")
        assert taken.reference, f"the accepted capture names no reference to settle it by: {taken!r}"
        problems = _decided_problems(harness, payment, taken.reference, accepted_amount, waiting, settle, succeed)
        assert not problems, "a capture decided later was reported wrongly:\n" + "\n".join(problems)

    @pytest.mark.parametrize("succeed", [True, False], ids=["decided-refunded", "decided-refused"])
    def test_a_refund_decided_later_is_accepted_and_counted_only_once_decided(
        self, harness: ContractHarness, capabilities: Capabilities, example_amount: Money,
        amount_representable: Representable | None, refund_accepted_source: str | None,
        settle_accepted: Settle | None, succeed: bool,
    ) -> None:
        settle, source = _needs(settle_accepted, refund_accepted_source, "refund_accepted")
        sale = capabilities.sale and "sale" in harness.commands
        first = harness.authorize(example_amount, sale=sale, source=source)
        captured = first if sale else harness.execute("capture", harness.follow_up(first.reference, example_amount))
        part = part_of(example_amount, 1 / 2, amount_representable) if capabilities.refund_partial else example_amount
        refund = harness.execute("refund", harness.follow_up(captured.reference or first.reference, part))
        assert refund.accepted, (
            f"refunding a payment of {source!r}, whose refunds the provider decides later, answered status "
            f"{refund.status!r}: it must answer 'accepted' (never 'succeeded') until the provider decides"
        )
        assert refund.reference, f"the accepted refund names no reference to settle it by: {refund!r}"
        payment = payment_reference(first)
        waiting = harness.fetch(payment)
        problems = []
        if not _zero(waiting.refunded):
            problems.append(f"while undecided fetch reports refunded {waiting.refunded!r}: an undecided refund is counted")
        problems += operation_problems(waiting, "refund", refund.reference, "accepted")
        settle(refund.reference, succeed)
        decided = harness.fetch(payment)
        expected = part if succeed else Money.zero(part.currency)
        if (decided.refunded or Money.zero(part.currency)) != expected:
            problems.append(f"decided {'refunded' if succeed else 'refused'}, fetch reports refunded "
                            f"{decided.refunded!r}, expected {expected!r}")
        problems += operation_problems(decided, "refund", refund.reference, "succeeded" if succeed else "failed")
        assert not problems, "an accepted refund was reported wrongly:\n" + "\n".join(problems)

    @pytest.mark.parametrize("succeed", [True, False], ids=["decided-authorized", "decided-refused"])
    def test_an_authorization_decided_later_is_accepted_and_holds_nothing_until_decided(
        self, harness: ContractHarness, example_amount: Money, authorization_accepted_source: str | None,
        settle_accepted: Settle | None, succeed: bool,
    ) -> None:
        settle, source = _needs(settle_accepted, authorization_accepted_source, "authorization_accepted")
        started = harness.execute("authorize", harness.payment_subject(example_amount, source=source))
        assert started.accepted, (
            f"authorizing with {source!r}, which the provider decides later, answered status {started.status!r}: "
            "a pending authorization must answer 'accepted' (never 'succeeded') until the provider decides"
        )
        assert started.reference, f"the accepted authorization names no reference to settle it by: {started!r}"
        payment = payment_reference(started)
        waiting = harness.fetch(payment)
        problems = []
        if waiting.state != ProviderState.PROCESSING or not _zero(waiting.authorized):
            problems.append(f"while undecided fetch reports {waiting.state!r} with authorized {waiting.authorized!r}: "
                            "expected 'processing' with nothing authorized yet")
        settle(started.reference, succeed)
        decided = harness.fetch(payment)
        if succeed and (decided.state != ProviderState.AUTHORIZED or decided.authorized != example_amount):
            problems.append(f"decided authorized, fetch reports {decided.state!r} with authorized "
                            f"{decided.authorized!r}, expected {example_amount!r}")
        if not succeed and (decided.state not in (ProviderState.FAILED, ProviderState.NOT_FOUND)
                            or not _zero(decided.authorized)):
            problems.append(f"decided refused, fetch reports {decided.state!r} with authorized {decided.authorized!r}")
        assert not problems, "an authorization decided later was reported wrongly:\n" + "\n".join(problems)


def _decided_problems(harness: ContractHarness, payment: str, taken: str, amount: Money,
                      waiting: CommandResult, settle: Settle, succeed: bool) -> list[str]:
    """What `fetch` reported wrongly about `taken` (its reference), a capture (or sale) of
    `amount` answered accepted: counted while undecided (`waiting`, fetched before deciding), or,
    once `settle` decided it, not counted as decided."""
    problems = []
    if waiting.state == ProviderState.CAPTURED or not _zero(waiting.captured):
        problems.append(f"while undecided fetch reports {waiting.state!r} with captured {waiting.captured!r}: "
                        "money the provider has not decided is counted")
    problems += operation_problems(waiting, "capture", taken, "accepted")
    settle(taken, succeed)
    decided = harness.fetch(payment)
    if succeed:
        if decided.captured != amount or decided.state != ProviderState.CAPTURED:
            problems.append(f"decided paid, fetch reports {decided.state!r} with captured {decided.captured!r}, "
                            f"expected captured {amount!r}")
        problems += operation_problems(decided, "capture", taken, "succeeded")
    else:
        if not _zero(decided.captured) or decided.state == ProviderState.CAPTURED:
            problems.append(f"decided refused, fetch reports {decided.state!r} with captured {decided.captured!r}")
        problems += operation_problems(decided, "capture", taken, "failed")
    return problems
