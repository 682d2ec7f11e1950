"""A duplicate sent while the first request with its idempotency key is still in flight.

The provider refuses it with an "in progress" answer of its own (Stripe's 409
`idempotency_key_in_use`, PayPal's 409 `PREVIOUS_REQUEST_IN_PROGRESS`): the duplicate was not
applied, but the first request may have been, or may still be. Recorded failed, it tells the shop
to pay again under a new key, and the buyer is charged twice; it must be an unknown outcome, and
retryable: sent again with the key once the first is done, it gets the first's answer.

The emulator holds the first request at its `hold_point` (applied, its key still claimed), the
duplicates go out from other threads through another gateway (another worker of the shop), then
the first is released, and a resend with the key must converge on the one operation.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paywire.command.result import CommandResult
from paywire.errors import PaywireError
from paywire.gateway import Gateway
from paywire.gateway_definition import Capabilities, GatewayDefinition
from paywire.money import Money
from paywire.service.outcome import is_unknown
from paywire.testing.contract.fixtures import ContractFixtures
from paywire.testing.contract.scenarios import COMMANDS, Scenario, offered, scenario
from paywire.testing.emulator import EmulatorApp, Fault
from paywire.testing.harness import ContractHarness, payment_reference
from paywire.testing.profiles import run_property
from paywire.testing.recorder import RecordedTransfer

__all__ = ["InFlightDuplicateContract"]

_POLL = 0.05  # how often to look whether the first request finished without being held
_EXAMPLES = 3  # each example is a payment, a held request and its duplicates: a few cover 1 to 3 of them

Outcome = CommandResult | PaywireError


def _writes(records: list[RecordedTransfer], command: str) -> list[RecordedTransfer]:
    return [record for record in records if record.command == command and record.transfer.method not in ("GET", "HEAD")]


def _held(emulator: EmulatorApp, first: threading.Thread) -> bool:
    """Whether the first request is parked at the emulator's hold point; False once it finished
    without being held (it sent no request carrying its key)."""
    while first.is_alive():
        if emulator.wait_until_held(timeout=_POLL):
            return True
    return emulator.wait_until_held(timeout=0)


class InFlightDuplicateContract(ContractFixtures):
    """For each money-moving command the plugin declares and whose key the provider keeps: one
    to three duplicates sent while the first request is held in flight are each an unknown,
    retryable outcome (never a failure, never a second operation), and once the first is
    answered, a resend with the key converges on the one operation it applied. Skipped where
    `refuses_keys_in_flight` is False, and for an emulator outside this process (a hold is
    released in-process only)."""

    @pytest.mark.parametrize("command", COMMANDS)
    def test_a_duplicate_while_the_key_is_in_flight_is_unknown_and_a_resend_converges(
        self, harness: ContractHarness, capabilities: Capabilities, example_amount: Money,
        gateway_definition: GatewayDefinition, refuses_keys_in_flight: bool, request: pytest.FixtureRequest,
        command: str,
    ) -> None:
        if not offered(command, capabilities, harness.commands):
            pytest.skip(f"{harness.provider} does not offer {command}")
        if gateway_definition.key_lives.get(command) == 0:
            pytest.skip(f"{harness.provider} keeps no idempotency key for {command} (key_lives 0)")
        if not refuses_keys_in_flight:
            pytest.skip(f"{harness.provider} refuses no request while its key is in flight (refuses_keys_in_flight "
                        "is False): it deduplicates on no key of its own")
        emulator = harness.emulator
        if not isinstance(emulator, EmulatorApp):
            pytest.skip(f"holding a request in flight needs the emulator in this process, not {emulator!r}")
        source = request.getfixturevalue("buyer_action_source") if command == "complete" else None
        worker = harness.factory()  # another worker of the shop: its own connections (and tokens)

        def raced(duplicates: int) -> None:
            prepared = scenario(harness, command, example_amount, source)
            problems = self._raced(harness, emulator, worker, command, prepared, duplicates)
            if problems is None:
                pytest.skip(f"{harness.provider}'s {command} only reads (it sent no write): the provider applied the "
                            "operation on the buyer's step, there is no request of it to be in flight")
            assert not problems, (f"{command} sent again while its key was in flight went wrong:\n"
                                  + "\n".join(problems))

        run_property(given(st.integers(1, 3))(raced), max_examples=_EXAMPLES)

    def _raced(self, harness: ContractHarness, emulator: EmulatorApp, worker: Gateway, command: str,
               prepared: Scenario, duplicates: int) -> list[str] | None:
        """What went wrong; None when the command sent no write (only reads) to hold."""
        payment, subject, converged = prepared
        key = subject.idempotency_key
        what = f"{command} with {duplicates} duplicate(s) while its key {key!r} was in flight"
        emulator.inject(Fault(kind="hold", contains=key))
        mark = harness.sent()
        firsts: list[Outcome] = []
        first = threading.Thread(target=lambda: firsts.append(harness.attempt(command, subject)), daemon=True)
        first.start()
        try:
            if not _held(emulator, first):
                if not _writes(harness.sent_since(mark), command):
                    return None
                return [f"{what}: the hold aimed at the request carrying the key never hit (the first gave "
                        f"{firsts!r}); the command must send its key with the request that moves the money"]
            during = harness.sent()
            with ThreadPoolExecutor(duplicates) as pool:
                seconds = list(pool.map(lambda _: harness.attempt(command, subject, gateway=worker), range(duplicates)))
            reached = bool(_writes(harness.sent_since(during), command))
        finally:
            emulator.clear_faults()  # releases the first request, and waits until it is answered
            first.join(10)
        problems = [f"{what}: {problem}" for outcome in seconds for problem in _judged(outcome, reached)]
        if not firsts or isinstance(firsts[0], PaywireError):
            return [*problems, f"{what}: the first request, released, gave {firsts[0] if firsts else 'no answer'!r}"]
        resent = harness.attempt(command, subject)
        if isinstance(resent, PaywireError):
            return [*problems, f"{what}: sent again with the same key once the first was answered, it gave {resent!r}"]
        if payment is None:  # authorize, sale: every answer names the one payment
            results = [firsts[0], resent, *(outcome for outcome in seconds if isinstance(outcome, CommandResult))]
            payments = {payment_reference(result) for result in results}
            if len(payments) > 1:
                problems.append(f"{what}: one key made {len(payments)} payments ({sorted(payments)!r})")
        problems += [f"{what}: {problem}" for problem in converged(resent)]
        return problems


def _judged(outcome: Outcome, reached: bool) -> list[str]:
    """What is wrong with one duplicate's outcome; `reached`: a duplicate's write reached the
    provider while the first request still held the key."""
    if not isinstance(outcome, PaywireError):
        if reached:
            return [f"a duplicate succeeded ({outcome!r}) although its write reached the provider while the first "
                    "request held the key; the provider answers it \"in progress\" (an emulator must too: call "
                    "hold_point before storing the answer under the key)"]
        return []  # it only read what the first request did
    if not is_unknown(outcome):
        return [f"a duplicate gave {outcome!r} (may_have_been_sent={outcome.may_have_been_sent}), which is recorded "
                "failed; the first request with its key may have been applied, and a shop told it failed pays again "
                "under a new key: it must be an unknown outcome"]
    if not outcome.retryable:
        return [f"a duplicate gave {outcome!r}, which is not retryable; sent again with its key once the first is "
                "answered, it gets the first's answer"]
    return []
