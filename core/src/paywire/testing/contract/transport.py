"""Transport faults injected at the emulator surface as the right errors.

Nothing sent: retryable `TransportError`. Sent, no answer: `OutcomeUnknown`, settled by sending
again with the same key. A 5xx or a 429 answer: retryable, with Retry-After kept. Faults are aimed
at the operation's write (the request carrying its idempotency key); a read before the write
that gets no answer leaves the write unsent: a retryable failure, recorded failed.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from urllib.parse import urlsplit, urlunsplit

import attrs
import pytest

from paywire.command.result import CommandResult
from paywire.errors import OutcomeUnknown, PaywireError, ProviderUnavailable, RateLimited, TransportError
from paywire.gateway import Gateway
from paywire.gateway_definition import Capabilities
from paywire.http.response import Response
from paywire.http.retry import Retry
from paywire.http.transfer import Transfer
from paywire.money import Money
from paywire.testing.contract.checks import part_of
from paywire.testing.contract.error_case import FAILED, UNKNOWN, ErrorCase, outcome_of
from paywire.testing.contract.errors import documented_not_applied
from paywire.testing.contract.fixtures import ContractFixtures
from paywire.testing.contract.scenarios import COMMANDS, offered, reads_before_the_write, scenario
from paywire.testing.emulator import Fault
from paywire.testing.harness import ContractHarness, payment_reference
from paywire.testing.ports import refusing_port
from paywire.testing.recorder import carries, the_reads
from paywire.testing.strategies import Representable

__all__ = ["TransportFaultContract"]

# Faults after the provider applied the request: the answer is lost or replaced by a 5xx.
_AFTER_EFFECT = (
    ("a connection dropped after the provider applied it", Fault(kind="drop_after", method="POST")),
    ("HTTP 500 after the provider applied it", Fault(kind="status_after", status=500, method="POST")),
    ("HTTP 502 after the provider applied it", Fault(kind="status_after", status=502, method="POST")),
)


class TransportFaultContract(ContractFixtures):
    """Faults of the network and of the provider, as the emulator injects them."""

    def _target(self, harness: ContractHarness, amount: Money) -> tuple[str, str]:
        """The method and path regex of authorize requests, learnt from one real authorization."""
        mark = harness.sent()
        harness.authorize(amount)
        sent = [record.transfer for record in harness.sent_since(mark) if record.command == "authorize"]
        assert sent, "authorize sent no request"
        return sent[0].method, re.escape(urlsplit(sent[0].url).path) + "$"

    def _fails(self, harness: ContractHarness, amount: Money, fault: Fault, *, read_timeout: float | None = None
               ) -> PaywireError:
        """authorize's error when `fault` hits its write (the request carrying its key)."""
        gateway = harness.factory(read_timeout=read_timeout) if read_timeout else harness.gateway
        subject = harness.payment_subject(amount)
        harness.emulator.inject(attrs.evolve(fault, contains=subject.idempotency_key))
        outcome = harness.attempt("authorize", subject, gateway=gateway)
        assert isinstance(outcome, PaywireError), f"authorize under a {fault.kind} fault succeeded: {outcome!r}"
        return outcome

    def test_a_server_error_is_a_retryable_provider_unavailable(
        self, harness: ContractHarness, example_amount: Money, provider_errors: Sequence[ErrorCase]
    ) -> None:
        """A 503 is retryable, and recorded unknown unless the provider documents its 503 as "not
        applied" (an `ErrorCase` with outcome "failed"): nothing else says the request was not applied."""
        error = self._fails(harness, example_amount, Fault(kind="status", status=503))
        assert isinstance(error, ProviderUnavailable) and error.retryable, f"HTTP 503 gave {error!r}"
        if 503 not in documented_not_applied(provider_errors):
            assert outcome_of(error) == UNKNOWN, (
                f"HTTP 503 gave {error!r} with may_have_been_sent={error.may_have_been_sent}: recorded failed, but "
                "no ErrorCase documents the provider's 503 as not applied"
            )

    def test_a_rate_limit_is_retryable_and_keeps_retry_after(
        self, harness: ContractHarness, example_amount: Money
    ) -> None:
        error = self._fails(harness, example_amount, Fault(kind="status", status=429, retry_after=7))
        assert isinstance(error, RateLimited) and error.retryable, f"HTTP 429 gave {error!r}"
        assert error.retry_after == 7, f"Retry-After: 7 became retry_after={error.retry_after!r}"

    def test_a_connection_dropped_after_sending_is_outcome_unknown_and_settled_by_the_same_key(
        self, harness: ContractHarness, example_amount: Money
    ) -> None:
        subject = harness.payment_subject(example_amount)
        harness.emulator.inject(Fault(kind="drop_after", contains=subject.idempotency_key))
        lost = harness.attempt("authorize", subject)
        assert isinstance(lost, OutcomeUnknown), f"a connection dropped after the operation gave {lost!r}"
        assert lost.may_have_been_sent and lost.retryable
        settled = harness.execute("authorize", subject)
        again = harness.execute("authorize", subject)
        assert payment_reference(settled) == payment_reference(again), "resending with the same key made two payments"
        if not settled.action_required:
            assert harness.fetch(payment_reference(settled)).authorized == example_amount

    def test_an_answer_slower_than_the_read_timeout_is_outcome_unknown(
        self, harness: ContractHarness, example_amount: Money
    ) -> None:
        error = self._fails(harness, example_amount, Fault(kind="latency", seconds=1.0), read_timeout=0.25)
        assert isinstance(error, OutcomeUnknown) and error.may_have_been_sent, f"a read timeout gave {error!r}"

    def test_a_read_before_the_write_left_unanswered_is_a_retryable_failure_and_the_write_is_not_sent(
        self, harness: ContractHarness, capabilities: Capabilities, example_amount: Money,
        request: pytest.FixtureRequest,
    ) -> None:
        """For each money-moving command that reads before it writes (PayPal's complete reads the
        order, a vaulted charge its token): a 429 or 5xx in place of the read's answer leaves the
        write unsent, so a first attempt is a retryable failure, recorded failed, and the write is
        not sent after it."""
        problems: list[str] = []
        reading = []
        for command in COMMANDS:
            if offered(command, capabilities, harness.commands):
                source = request.getfixturevalue("buyer_action_source") if command == "complete" else None
                found = self._read_lost(harness, command, example_amount, source)
                if found is not None:
                    reading.append(command)
                    problems += found
        if not reading:
            pytest.skip(f"no command of {harness.provider} reads before its write")
        assert not problems, "reads before the write went wrong:\n" + "\n".join(problems)

    def _read_lost(self, harness: ContractHarness, command: str, amount: Money, source: str | None
                   ) -> list[str] | None:
        """What went wrong; None when `command` reads nothing before its write (or sends none)."""
        probed = reads_before_the_write(harness, command, scenario(harness, command, amount, source)[1])
        if probed is None or not probed[0]:
            return None
        write = (probed[1].transfer.method, urlsplit(probed[1].transfer.url).path)
        subject = scenario(harness, command, amount, source)[1]  # a failed read changes nothing
        key = subject.idempotency_key or ""
        problems = []
        for status in (429, 500, 502, 503, 504):
            mark, calls = harness.sent(), len(harness.emulator.calls)
            with harness.recorder.answering(Response(status=status), the_reads(command, key)):
                outcome = harness.attempt(command, subject)
            what = f"{command} whose read before {write[0]} {write[1]} got HTTP {status}"
            if any(carries(record.transfer, key) for record in harness.sent_since(mark)) \
                    or write in harness.emulator.calls[calls:]:
                problems.append(f"{what} sent its write anyway (gave {outcome!r})")
            elif not isinstance(outcome, PaywireError) or not outcome.retryable or outcome_of(outcome) != FAILED:
                problems.append(f"{what} gave {outcome!r} (may_have_been_sent="
                                f"{getattr(outcome, 'may_have_been_sent', None)}): the write was not sent, so it "
                                "is a retryable failure, recorded failed")
        return problems

    def test_a_refused_connection_is_retryable_and_nothing_was_sent(
        self, harness: ContractHarness, example_amount: Money
    ) -> None:
        parts = urlsplit(harness.method.settings.base_url)
        with refusing_port() as port:
            dead = urlunsplit(parts._replace(netloc=f"127.0.0.1:{port}"))
            error = harness.attempt("authorize", harness.payment_subject(example_amount),
                                    gateway=harness.factory(base_url=dead))
        assert isinstance(error, TransportError) and not isinstance(error, OutcomeUnknown), f"no listener gave {error!r}"
        assert error.retryable and not error.may_have_been_sent, f"{error!r} should be retryable and unsent"

    def test_a_retry_with_the_same_key_after_a_server_error_takes_effect_once(
        self, harness: ContractHarness, example_amount: Money
    ) -> None:
        method, path = self._target(harness, example_amount)
        gateway = harness.factory(retry=Retry(total=2, backoff_factor=0))
        harness.emulator.inject(Fault(kind="status", status=500, method=method, path=path))
        result: CommandResult = harness.authorize(example_amount, gateway=gateway)
        assert harness.fetch(payment_reference(result)).authorized == example_amount

    def test_retries_after_faults_that_took_effect_carry_one_key_and_apply_once(
        self, harness: ContractHarness, capabilities: Capabilities, example_amount: Money,
        amount_representable: Representable | None, wire_idempotency_key: Callable[[Transfer], str | None],
    ) -> None:
        """The fault hits a capture or refund the provider did apply; the gateway's retry policy
        (or, when it gives up with an unknown outcome, sending again with the same key) must end
        with that one operation applied, every attempt carrying the same idempotency key where
        the provider reads it (a read sent as a POST carries none)."""
        commands = [name for name in ("capture", "refund") if getattr(capabilities, name) and name in harness.commands]
        if not commands:
            pytest.skip(f"{harness.provider} has no capture or refund to retry")
        retrying = harness.factory(retry=Retry(total=2, backoff_factor=0))
        problems: list[str] = []
        for command in commands:
            for label, fault in _AFTER_EFFECT:
                problems.extend(self._retried(harness, retrying, command, label, fault, example_amount,
                                              amount_representable, wire_idempotency_key))
        assert not problems, "retries after faults that took effect went wrong:\n" + "\n".join(problems)

    def _retried(self, harness: ContractHarness, retrying: Gateway, command: str, label: str, fault: Fault,
                 amount: Money, representable: Representable | None,
                 wire_key: Callable[[Transfer], str | None]) -> list[str]:
        authorized = harness.authorize(amount, gateway=retrying)  # its method's tokens are warm: one POST per attempt
        payment = payment_reference(authorized)
        part = part_of(amount, 1 / 2, representable) if getattr(harness.capabilities, f"{command}_partial") else amount
        target = authorized.reference
        if command == "refund":
            captured = harness.execute("capture", harness.follow_up(authorized.reference, amount), gateway=retrying)
            target = captured.reference or authorized.reference
        subject = harness.follow_up(target, part, final=True)
        mark = harness.sent()
        harness.emulator.inject(fault)
        outcome = harness.attempt(command, subject, gateway=retrying)
        harness.emulator.clear_faults()
        what = f"{command} of {part!r} after {label}"
        if isinstance(outcome, PaywireError):
            if outcome_of(outcome) != UNKNOWN:
                return [f"{what} gave {outcome!r}, recorded as failed although the provider applied it"]
            outcome = harness.attempt(command, subject, gateway=retrying)  # sent again with its key
            if isinstance(outcome, PaywireError):
                return [f"{what}, sent again with the same key, gave {outcome!r}"]
        problems = []
        attempts = [record.transfer for record in harness.sent_since(mark)
                    if record.command == command and record.transfer.method == "POST"]
        keys = {wire_key(transfer) for transfer in attempts} - {None}
        if len(attempts) < 2:
            problems.append(f"{what}: {len(attempts)} request(s) sent; the fault should have caused a second")
        if len(keys) != 1 or len({tuple(sorted(t.headers.items())) for t in attempts}) != 1:
            problems.append(f"{what}: its {len(attempts)} attempts carried different requests or keys "
                            f"({len(keys)} keys); every attempt must send the same key")
        fetched = harness.fetch(payment)
        held, total = ("captured", fetched.captured) if command == "capture" else ("refunded", fetched.refunded)
        if total != part:
            problems.append(f"{what}: the provider holds {held} {total!r}; the one {command} of {part!r} "
                            "must be applied exactly once (a retry with a new key applies it again)")
        return problems
