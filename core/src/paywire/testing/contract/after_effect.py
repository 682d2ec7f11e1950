"""Faults after the provider applied an operation, for every money-moving command.

The emulator applies the operation, then loses its answer: the connection drops, a 5xx comes
back instead, or the answer is held past the client's read timeout. Each must be recorded
unknown (never failed: the money moved), and sending the same subject again (its idempotency key)
must end with the operation applied once. Faults are aimed at the request carrying the
operation's idempotency key, so a read or a token request sent first is not hit.
"""

from __future__ import annotations

from collections.abc import Sequence

import attrs
import pytest

from paywire.errors import PaywireError
from paywire.gateway import Gateway
from paywire.gateway_definition import Capabilities
from paywire.money import Money
from paywire.service.outcome import is_unknown
from paywire.testing.contract.error_case import ErrorCase
from paywire.testing.contract.errors import documented_not_applied
from paywire.testing.contract.fixtures import ContractFixtures
from paywire.testing.contract.scenarios import COMMANDS, Scenario, offered, scenario
from paywire.testing.emulator import Fault
from paywire.testing.harness import ContractHarness, payment_reference

__all__ = ["AfterEffectFaultContract"]

_READ_TIMEOUT = 0.25  # the held answer never comes: any timeout shows it; short keeps the kit cheap
_STATUSES = (500, 502, 503, 504)


class AfterEffectFaultContract(ContractFixtures):
    """For each money-moving command the plugin declares: a connection dropped after the
    provider applied it, HTTP 500/502/503/504 in place of its answer, and an answer slower than
    the read timeout are unknown outcomes, and a resend with the same key applies it once.
    Needs `buyer_action_source` for complete; the read timeout needs an emulator with
    `release_held` (every `EmulatorApp`), else it is left out."""

    @pytest.mark.parametrize("command", COMMANDS)
    def test_a_lost_answer_after_the_operation_took_effect_is_unknown_and_a_resend_applies_it_once(
        self, harness: ContractHarness, capabilities: Capabilities, example_amount: Money,
        provider_errors: Sequence[ErrorCase], request: pytest.FixtureRequest, command: str,
    ) -> None:
        if not offered(command, capabilities, harness.commands):
            pytest.skip(f"{harness.provider} does not offer {command}")
        source = request.getfixturevalue("buyer_action_source") if command == "complete" else None
        not_applied = documented_not_applied(provider_errors)
        faults: list[tuple[str, Fault]] = [("a connection dropped after the provider applied it",
                                            Fault(kind="drop_after"))]
        faults += [(f"HTTP {status} after the provider applied it", Fault(kind="status_after", status=status))
                   for status in _STATUSES if status not in not_applied]
        slow: Gateway | None = None
        if hasattr(harness.emulator, "release_held"):
            slow = harness.factory(read_timeout=_READ_TIMEOUT)
            faults.append(("an answer held past the read timeout", Fault(kind="hold")))
        problems: list[str] = []
        for label, fault in faults:
            prepared = scenario(harness, command, example_amount, source)
            found = self._lost_then_resent(harness, command, prepared, label, fault,
                                           slow if fault.kind == "hold" else None)
            if found is None:
                pytest.skip(f"{harness.provider}'s {command} only reads (it sent no write): the provider "
                            "applied the operation on the buyer's step, no answer of it can be lost")
            problems += found
        assert not problems, f"{command} after faults that took effect went wrong:\n" + "\n".join(problems)

    def _lost_then_resent(self, harness: ContractHarness, command: str, prepared: Scenario, label: str,
                          fault: Fault, gateway: Gateway | None) -> list[str] | None:
        """What went wrong; None when the command sent no write (only reads) to aim the fault at."""
        payment, subject, converged = prepared
        what = f"{command} after {label}"
        harness.emulator.inject(attrs.evolve(fault, contains=subject.idempotency_key))
        mark = harness.sent()
        try:
            outcome = harness.attempt(command, subject, gateway=gateway)
        finally:
            harness.emulator.clear_faults()  # also lets a held request finish before anything else is sent
        writes = [record for record in harness.sent_since(mark)
                  if record.command == command and record.transfer.method not in ("GET", "HEAD")]
        if not isinstance(outcome, PaywireError) and not writes:
            return None
        if not isinstance(outcome, PaywireError):
            return [f"{what}: the fault, aimed at the request carrying the idempotency key "
                    f"{subject.idempotency_key!r}, never hit (it succeeded: {outcome!r}); the command must "
                    "send its key with the request that moves the money"]
        if not is_unknown(outcome):
            return [f"{what} gave {outcome!r} (may_have_been_sent={outcome.may_have_been_sent}): recorded failed, "
                    "but the provider applied it; it must be an unknown outcome"]
        resent = harness.attempt(command, subject)
        if isinstance(resent, PaywireError):
            return [f"{what}, sent again with the same key, gave {resent!r}"]
        again = harness.attempt(command, subject)
        if isinstance(again, PaywireError):
            return [f"{what}, sent a third time with the same key, gave {again!r}"]
        problems = []
        if payment is None and payment_reference(resent) != payment_reference(again):
            problems.append(f"{what}: resending with the same key made two payments "
                            f"({payment_reference(resent)!r}, {payment_reference(again)!r})")
        problems += [f"{what}: {problem}" for problem in converged(resent)]
        return problems
