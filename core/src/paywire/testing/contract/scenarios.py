"""A payment ready for each money-moving command, shared by the checks that send one command
while something goes wrong (a lost answer, a duplicate in flight) and then look at what the
provider holds: the subject to send, and what fetch must show once it was applied once."""

from __future__ import annotations

from collections.abc import Callable

from paywire.command.result import CommandResult, ProviderState
from paywire.gateway_definition import Capabilities
from paywire.money import Money
from paywire.subject import Subject
from paywire.testing.harness import ContractHarness, payment_reference
from paywire.testing.recorder import RecordedTransfer, carries

__all__ = ["COMMANDS", "Scenario", "offered", "reads_before_the_write", "scenario"]

COMMANDS = ("authorize", "sale", "capture", "void", "refund", "complete")

# (payment reference, subject of the command under test, check of the converged payment)
Scenario = tuple[str | None, Subject, Callable[[CommandResult], list[str]]]


def offered(command: str, capabilities: Capabilities, commands: frozenset[str]) -> bool:
    """Whether the plugin declares `command` (complete: the buyer_action capability) and has it."""
    declared = capabilities.buyer_action if command == "complete" else getattr(capabilities, command)
    return bool(declared) and command in commands


def scenario(harness: ContractHarness, command: str, amount: Money, source: str | None) -> Scenario:
    """A payment ready for `command`, its subject, and what fetch must show once it is applied.

    `source` is the buyer-action source, for complete."""
    zero = Money.zero(amount.currency)

    def holds(field: str, expected: Money, payment: str | None = None) -> Callable[[CommandResult], list[str]]:
        def check(result: CommandResult) -> list[str]:
            if result.action_required or result.status == "accepted":
                return []  # waiting for the buyer or decided later: nothing is held yet
            fetched = harness.fetch(payment or payment_reference(result))
            held = getattr(fetched, field)
            return [] if held == expected else [
                f"the provider holds {field} {held!r}; the one {command} of {expected!r} must be applied once"]
        return check

    if command in ("authorize", "sale"):
        return None, harness.payment_subject(amount), holds("authorized" if command == "authorize" else "captured",
                                                            amount)
    if command == "complete":
        started = harness.execute("authorize", harness.payment_subject(amount, source=source))
        assert started.action_required, f"{source!r} gave {started!r}, not a payment waiting for the buyer"
        harness.approve_buyer_action(started)
        payment = payment_reference(started)
        return payment, harness.follow_up(payment, amount), holds("authorized", amount, payment)
    authorized = harness.authorize(amount)
    payment = payment_reference(authorized)
    if command == "capture":
        return payment, harness.follow_up(authorized.reference, amount, final=True), holds("captured", amount, payment)
    if command == "refund":
        captured = harness.execute("capture", harness.follow_up(authorized.reference, amount, final=True))
        target = captured.reference or authorized.reference
        return payment, harness.follow_up(target, amount), holds("refunded", amount, payment)

    def voided(result: CommandResult) -> list[str]:
        fetched = harness.fetch(payment)
        if fetched.state != ProviderState.VOIDED or fetched.captured not in (None, zero):
            return [f"the provider holds {fetched.state!r}, captured {fetched.captured!r}; it must be voided"]
        return []

    return payment, harness.follow_up(authorized.reference), voided


def reads_before_the_write(harness: ContractHarness, command: str, subject: Subject
                           ) -> tuple[list[RecordedTransfer], RecordedTransfer] | None:
    """Run `command` for real: the requests it sent before its write, and the write (its first
    request carrying the subject's idempotency key, as every write must); None when it sent no
    write (it only reads: the buyer's step applied the operation)."""
    key = subject.idempotency_key
    assert key, f"{command}'s subject has no idempotency key"
    mark = harness.sent()
    harness.execute(command, subject)
    sent = [record for record in harness.sent_since(mark) if record.command == command]
    write = next((index for index, record in enumerate(sent) if carries(record.transfer, key)), None)
    return None if write is None else (sent[:write], sent[write])
