"""Idempotency keys: a replay gives the same outcome and one side effect; another body conflicts."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import given

from paywire.command.result import CommandResult
from paywire.errors import IdempotencyConflict, PaywireError
from paywire.money import Money
from paywire.subject import Subject
from paywire.testing.contract.checks import part_of
from paywire.testing.contract.fixtures import ContractFixtures
from paywire.testing.harness import ContractHarness, payment_reference
from paywire.testing.profiles import run_property
from paywire.testing.strategies import Operation, Representable, operations, representable_at_most

__all__ = ["IdempotencyContract"]

_SAME = ("status", "reference", "amount", "state")


def _differences(first: CommandResult, again: CommandResult) -> list[str]:
    return [f"{name}: {getattr(again, name)!r}, first {getattr(first, name)!r}"
            for name in _SAME if getattr(again, name) != getattr(first, name)]


class IdempotencyContract(ContractFixtures):
    """Retrying with the same key is safe; reusing a key for something else is refused."""

    def test_replaying_an_authorization_returns_the_same_payment(
        self, harness: ContractHarness, example_amount: Money
    ) -> None:
        subject = harness.payment_subject(example_amount)
        first = harness.execute("authorize", subject)
        again = harness.execute("authorize", subject)
        assert not _differences(first, again), "a replayed authorize answered differently: " + "; ".join(_differences(first, again))
        assert payment_reference(again) == payment_reference(first)

    def test_the_same_key_with_a_different_body_is_a_conflict(
        self, harness: ContractHarness, example_amount: Money
    ) -> None:
        """For an authorization, and a sale where the plugin offers one: answered with the payment
        the key made, the ledger records the other amount as held (a shop's key made from its
        order, reused after the cart changed)."""
        commands = ["authorize", *(["sale"] if harness.capabilities.sale and "sale" in harness.commands else [])]
        for command in commands:
            subject = harness.payment_subject(example_amount)
            first = harness.execute(command, subject)
            other = attrs.evolve(subject, amount=example_amount + Money.minor_units(1, example_amount.currency))
            outcome = harness.attempt(command, other)
            assert isinstance(outcome, IdempotencyConflict), (
                f"a reused key with another amount gave {outcome!r} ({command})")
            if not first.action_required and first.status != "accepted":
                held = "authorized" if command == "authorize" else "captured"
                found = getattr(harness.fetch(payment_reference(first)), held)
                assert found == example_amount, f"{command} of {example_amount!r}: the provider holds {held} {found!r}"

    def test_replaying_captures_and_refunds_applies_each_once(
        self, harness: ContractHarness, example_amount: Money, amount_representable: Representable | None
    ) -> None:
        if not {"capture", "refund"} <= harness.commands:
            pytest.skip(f"{harness.provider} offers no capture and refund to replay")
        authorized = harness.authorize(example_amount)
        part = part_of(example_amount, 1 / 2, amount_representable)
        capture = harness.follow_up(authorized.reference, part)
        captured = harness.execute("capture", capture)
        assert not _differences(captured, harness.execute("capture", capture)), "a replayed capture answered differently"
        refund = harness.follow_up(captured.reference or authorized.reference, part)
        refunded = harness.execute("refund", refund)
        assert not _differences(refunded, harness.execute("refund", refund)), "a replayed refund answered differently"
        fetched = harness.fetch(payment_reference(authorized))
        assert (fetched.captured, fetched.refunded) == (part, part), (
            f"after replays the provider holds captured {fetched.captured!r} and refunded {fetched.refunded!r}; "
            f"each of {part!r} was applied once"
        )

    def test_replaying_a_sale_charges_once(self, harness: ContractHarness, example_amount: Money) -> None:
        if "sale" not in harness.commands or not harness.capabilities.sale:
            pytest.skip(f"{harness.provider} offers no sale to replay")
        subject = harness.payment_subject(example_amount)
        first = harness.execute("sale", subject)
        again = harness.attempt("sale", subject)
        assert not isinstance(again, PaywireError), f"a replayed sale gave {again!r}; the first gave {first!r}"
        assert not _differences(first, again), "a replayed sale answered differently: " + "; ".join(_differences(first, again))
        assert payment_reference(again) == payment_reference(first), "a replayed sale made a second payment"
        if first.succeeded:
            fetched = harness.fetch(payment_reference(first))
            assert fetched.captured == example_amount, (
                f"after a replayed sale of {example_amount!r} the provider holds captured {fetched.captured!r}")

    @pytest.mark.paywire_capability("buyer_action")
    def test_replaying_a_completion_completes_once(
        self, harness: ContractHarness, example_amount: Money, buyer_action_source: str
    ) -> None:
        if "complete" not in harness.commands:
            pytest.skip(f"{harness.provider} offers no complete to replay")
        started = harness.execute("authorize", harness.payment_subject(example_amount, source=buyer_action_source))
        assert started.action_required, f"{buyer_action_source!r} gave {started!r}, not a buyer action"
        harness.approve_buyer_action(started)
        subject = harness.follow_up(payment_reference(started), example_amount)
        first = harness.execute("complete", subject)
        again = harness.attempt("complete", subject)
        assert not isinstance(again, PaywireError), f"a replayed complete gave {again!r}; the first gave {first!r}"
        assert not _differences(first, again), (
            "a replayed complete answered differently: " + "; ".join(_differences(first, again)))
        fetched = harness.fetch(payment_reference(started))
        assert fetched.authorized == example_amount and fetched.captured in (None, Money.zero(example_amount.currency)), (
            f"after a replayed complete of an authorization of {example_amount!r} the provider holds "
            f"authorized {fetched.authorized!r}, captured {fetched.captured!r}")

    def test_replaying_a_sequence_of_operations_changes_nothing(
        self, harness: ContractHarness, example_amount: Money, amount_representable: Representable | None
    ) -> None:
        def amount(step: Operation, available: int) -> Money:
            part = representable_at_most(step.amount_of(available), example_amount.currency, amount_representable)
            return part or example_amount  # nothing smaller to hold: an impossible step, refused

        keyed = sorted({"capture", "refund", "void"} & harness.commands)

        def replayed(steps: list[Operation]) -> None:
            authorized = harness.authorize(example_amount)
            payment = payment_reference(authorized)
            refundable_reference = None
            done: list[tuple[str, Subject, CommandResult]] = []
            for step in steps:
                state = harness.fetch(payment)
                assert state.authorized is not None and state.captured is not None and state.refunded is not None
                if step.command == "capture":
                    available = state.authorized.minor - state.captured.minor
                    keyed_subject = harness.follow_up(authorized.reference, amount(step, available), final=step.final)
                elif step.command == "refund":
                    available = state.captured.minor - state.refunded.minor
                    keyed_subject = harness.follow_up(refundable_reference or authorized.reference,
                                                      amount(step, available))
                else:
                    keyed_subject = harness.follow_up(authorized.reference)
                outcome = harness.attempt(step.command, keyed_subject)
                if isinstance(outcome, PaywireError):
                    continue  # a refused step may not be stored by the provider; only done steps replay
                if step.command == "capture":
                    refundable_reference = outcome.reference
                done.append((step.command, keyed_subject, outcome))
            before = harness.fetch(payment)
            for command, subject, first in done:
                again = harness.execute(command, subject)
                assert not _differences(first, again), f"replayed {command}: " + "; ".join(_differences(first, again))
            after = harness.fetch(payment)
            assert (after.authorized, after.captured, after.refunded, after.state) == (
                before.authorized, before.captured, before.refunded, before.state
            ), f"replaying {[command for command, _, _ in done]} changed the payment: {before!r} -> {after!r}"

        run_property(given(operations(keyed or ["fetch"]))(replayed), max_examples=15)
