"""A payment given only what each command needs: no order, buyer or metadata.

Every other check sends subjects as full as a shop's (an order, the buyer, metadata), so the
provider's answers always carry the fields those fill in. A handler that reads such a field back
without a default passes them, then crashes on the first payment a shop sends without it.
"""

from __future__ import annotations

import pytest

from paywire.command.result import CommandResult
from paywire.errors import InvalidRequest, OutcomeUnknown, PaywireError
from paywire.gateway_definition import Capabilities
from paywire.money import Money
from paywire.subject import Subject
from paywire.testing.contract.checks import part_of
from paywire.testing.contract.fixtures import ContractFixtures
from paywire.testing.harness import ApproveBuyerAction, ContractHarness, payment_reference
from paywire.testing.strategies import Representable

__all__ = ["SparseSubjectContract"]


class _Crashed(Exception):
    """A command let something other than a `PaywireError` escape."""


def _run(harness: ContractHarness, command: str, subject: Subject) -> CommandResult | PaywireError:
    try:
        outcome = harness.attempt(command, subject)
    except Exception as crash:
        raise _crashed(command, crash) from crash
    # The pipeline makes a handler's crash on a success answer an unknown outcome (the provider
    # applied the request): still the handler's crash, on what a shop may leave out.
    cause = outcome.__cause__ if isinstance(outcome, OutcomeUnknown) else None
    if cause is not None and not isinstance(cause, PaywireError):
        raise _crashed(command, cause) from cause
    return outcome


def _crashed(command: str, crash: BaseException) -> _Crashed:
    return _Crashed(
        f"{command} of a subject without order, buyer or metadata crashed with {type(crash).__name__}: {crash}; "
        "read what the provider may leave out of an answer with a default, and raise a typed error "
        "(paywire.errors) for an answer that cannot be read"
    )


class SparseSubjectContract(ContractFixtures):
    def test_a_payment_without_order_buyer_or_metadata_runs_its_whole_life(
        self, harness: ContractHarness, capabilities: Capabilities, example_amount: Money,
        amount_representable: Representable | None, approve_buyer_action: ApproveBuyerAction,
    ) -> None:
        """Authorize (completing the buyer's step when asked), capture part, refund part and fetch,
        each subject holding only the amount, the source or reference, the key (and where the
        buyer comes back to). A plugin that needs an order refuses before sending."""
        sent = harness.calls()
        subject = Subject(amount=example_amount, source=harness.payment_source, idempotency_key=harness.key(),
                          return_url="https://shop.example/return")
        try:
            outcome = _run(harness, "authorize", subject)
            if isinstance(outcome, InvalidRequest) and harness.calls() == sent:
                pytest.skip(f"{harness.provider} needs more than the amount and source to authorize "
                            f"({outcome.message}), and refuses before sending")
            self._sparse_problem("authorize", outcome)
            assert isinstance(outcome, CommandResult)
            if outcome.action_required:
                approve_buyer_action(outcome)
                outcome = _run(harness, "complete", Subject(reference=payment_reference(outcome),
                                                           idempotency_key=harness.key()))
                self._sparse_problem("complete", outcome)
                assert isinstance(outcome, CommandResult)
            self._sparse_follow_ups(harness, capabilities, outcome, example_amount, amount_representable)
        except _Crashed as crashed:
            pytest.fail(str(crashed), pytrace=False)

    def _sparse_follow_ups(self, harness: ContractHarness, capabilities: Capabilities, authorized: CommandResult,
                    amount: Money, representable: Representable | None) -> None:
        payment = payment_reference(authorized)
        self._sparse_problem("fetch", _run(harness, "fetch", Subject(reference=payment)))
        if not (capabilities.capture and "capture" in harness.commands):
            return
        part = part_of(amount, 1 / 2, representable) if capabilities.capture_partial else amount
        captured = _run(harness, "capture", Subject(reference=authorized.reference, amount=part,
                                                    idempotency_key=harness.key()))
        self._sparse_problem("capture", captured)
        assert isinstance(captured, CommandResult)
        if capabilities.refund and "refund" in harness.commands:
            back = part_of(part, 1 / 2, representable) if capabilities.refund_partial else part
            refunded = _run(harness, "refund", Subject(reference=captured.reference or authorized.reference,
                                                       amount=back, idempotency_key=harness.key()))
            self._sparse_problem("refund", refunded)
        self._sparse_problem("fetch", _run(harness, "fetch", Subject(reference=payment)))

    @staticmethod
    def _sparse_problem(command: str, outcome: CommandResult | PaywireError) -> None:
        assert not isinstance(outcome, PaywireError), (
            f"{command} of a subject without order, buyer or metadata gave {outcome!r}: they are optional")
