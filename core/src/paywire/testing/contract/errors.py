"""Every provider error becomes exactly one typed error whose `retryable` matches its meaning.

The answer under test is given to the money-moving command's write, on a payment ready for it:
the reads a command makes before its write (the order PayPal's complete reads) reach the
provider, so an answer is judged as the write's, never a read's (`TransportFaultContract` checks
a failed read). A command that only reads gets the answer to every request.
"""

from __future__ import annotations

from collections.abc import Sequence

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from paywire.command.result import ProviderState
from paywire.config import MethodConfig
from paywire.errors import AuthenticationError, Declined, InvalidRequest, PaywireError
from paywire.gateway_definition import Capabilities
from paywire.http.response import Response
from paywire.money import Money
from paywire.subject import Subject
from paywire.testing.contract.error_case import FAILED, UNKNOWN, ErrorCase, outcome_of
from paywire.testing.contract.fixtures import ContractFixtures
from paywire.testing.contract.scenarios import COMMANDS, reads_before_the_write, scenario
from paywire.testing.harness import ContractHarness
from paywire.testing.profiles import run_property
from paywire.testing.recorder import Aim, every, the_write

__all__ = ["ErrorMappingContract"]

_JUNK_BODIES = (b"", b"null", b"{}", b"[]", b"<html><body>Bad Gateway</body></html>", b"\xff\xfe garbage", b'{"error": 42}',
                b'{"id": "contract_ref_0001", "status": "succe', b'{"error": {"code": "card_declined", "message": "declined"}}')
_FINAL_STATUSES = frozenset({400, 401, 402, 403, 404, 422})
_REDIRECTS = (301, 302, 303, 307)


class _Targets:
    """Per command, a subject on a payment ready for it and which of its requests take the
    answer: its write and all after it, or every one where it only reads. Built once per command:
    an answered write never reaches the provider, so the payment stays ready."""

    def __init__(self, harness: ContractHarness, amount: Money, request: pytest.FixtureRequest) -> None:
        self.harness, self.amount, self.request = harness, amount, request
        self._built: dict[str, tuple[Subject, Aim]] = {}

    def __call__(self, command: str) -> tuple[Subject, Aim]:
        if command not in self._built:
            self._built[command] = self._build(command)
        return self._built[command]

    def _build(self, command: str) -> tuple[Subject, Aim]:
        harness = self.harness
        if command not in COMMANDS:  # fetch reads; vault is aimed at as a whole
            subject = harness.payment_subject(self.amount) if command == "vault" else harness.follow_up(
                "contract_ref_0001", self.amount)
            return subject, every
        source = self.request.getfixturevalue("buyer_action_source") if command == "complete" else None
        writes = reads_before_the_write(harness, command, scenario(harness, command, self.amount, source)[1])
        subject = scenario(harness, command, self.amount, source)[1]
        return subject, every if writes is None else the_write(subject.idempotency_key or "")


def _answered(harness: ContractHarness, command: str, target: tuple[Subject, Aim], response: Response
              ) -> PaywireError | str:
    """The error the plugin raises when the provider answers `response`, or why there was none."""
    subject, aim = target
    mark = harness.sent()
    try:
        with harness.recorder.answering(response, aim):
            outcome = harness.attempt(command, subject)
    except Exception as crash:  # noqa: BLE001 - the contract is that nothing but a PaywireError escapes
        return f"crashed with {type(crash).__name__}: {crash}"
    if aim is not every and not any(aim([], record) for record in harness.sent_since(mark)):
        return f"sent no request carrying its idempotency key {subject.idempotency_key!r} to answer ({outcome!r})"
    if isinstance(outcome, PaywireError):
        return outcome
    if command == "fetch" and outcome.state == ProviderState.NOT_FOUND:
        return _NOT_FOUND
    return f"succeeded with {outcome!r}"


_NOT_FOUND = "reported not found"


def documented_not_applied(provider_errors: Sequence[ErrorCase]) -> frozenset[int]:
    """The 5xx statuses the provider documents as "not applied" (an `ErrorCase` with outcome "failed")."""
    return frozenset(case.status for case in provider_errors if case.status >= 500 and case.expected_outcome == FAILED)


class ErrorMappingContract(ContractFixtures):
    """Provider errors, documented or not, map to one typed error; declines are final."""

    def test_every_documented_provider_error_maps_to_one_typed_error(
        self, harness: ContractHarness, provider_errors: Sequence[ErrorCase], example_amount: Money,
        request: pytest.FixtureRequest,
    ) -> None:
        assert provider_errors, "provider_errors is empty: list the error answers your provider documents"
        targets = _Targets(harness, example_amount, request)
        problems = []
        for case in provider_errors:
            first = _answered(harness, case.command, targets(case.command), case.response())
            again = _answered(harness, case.command, targets(case.command), case.response())
            if isinstance(first, str):
                problems.append(f"{case.name}: {first}")
                continue
            if type(first) is not case.error:
                problems.append(f"{case.name}: raised {type(first).__name__}, expected {case.error.__name__}")
            if case.expected_retryable is not None and first.retryable != case.expected_retryable:
                problems.append(f"{case.name}: {type(first).__name__} has retryable={first.retryable}, "
                                f"its meaning is retryable={case.expected_retryable}")
            if outcome_of(first) != case.expected_outcome:
                problems.append(f"{case.name}: {type(first).__name__} with may_have_been_sent={first.may_have_been_sent} "
                                f"is recorded as {outcome_of(first)}; the answer means {case.expected_outcome}")
            if case.code is not None and first.code != case.code:
                problems.append(f"{case.name}: kept code {first.code!r}, the provider's is {case.code!r}")
            if first.provider not in (harness.provider, harness.method_code):
                problems.append(f"{case.name}: names provider {first.provider!r}")
            if isinstance(again, str) or (type(again), again.code, again.retryable) != (type(first), first.code, first.retryable):
                problems.append(f"{case.name}: the same answer mapped differently the second time ({again!r})")
        assert not problems, "provider errors mapped wrongly:\n" + "\n".join(problems)

    def test_undocumented_error_answers_still_map_to_typed_errors(
        self, harness: ContractHarness, example_amount: Money, provider_errors: Sequence[ErrorCase],
        request: pytest.FixtureRequest,
    ) -> None:
        """Answers the provider does not document: any 4xx or 5xx, a redirect (never followed), a
        2xx whose body cannot be read or reads as an error, each with a body that is not the
        provider's. A money-moving command given one of these must raise, and record it unknown
        unless the answer is evidence that nothing was applied (a final 4xx, a 429, a 5xx the
        provider documents as not applied): the request reached something that may have passed it
        on. `fetch` must raise for every one of them: reporting "not found" tells reconciliation
        that the provider never got the payment, and it would record the payment failed."""
        not_applied = documented_not_applied(provider_errors)
        targets = _Targets(harness, example_amount, request)

        def typed(status: int, body: bytes, command: str) -> None:
            outcome = _answered(harness, command, targets(command), Response(status=status, body=body))
            assert not isinstance(outcome, str), f"HTTP {status} with body {body[:40]!r} to {command}: {outcome}"
            if status == 429 or status >= 500:
                assert outcome.retryable, f"HTTP {status} became {outcome!r}, which is not retryable"
            elif status in _FINAL_STATUSES:
                assert not outcome.retryable, f"HTTP {status} became {outcome!r}, which is retryable"
            if command == "fetch":
                return  # a read: how it is recorded does not matter, that it raised does
            if status == 429 or status in _FINAL_STATUSES or status in not_applied:
                assert outcome_of(outcome) == FAILED, f"HTTP {status} became {outcome!r}, recorded as unknown"
            elif status < 400 or status >= 500:
                assert outcome_of(outcome) == UNKNOWN, (
                    f"HTTP {status} with body {body[:40]!r} to {command} became {outcome!r} with "
                    f"may_have_been_sent={outcome.may_have_been_sent}: recorded failed, but the provider "
                    "(or whatever answered in front of it) may have applied it"
                )

        commands = [c for c in (*COMMANDS, "fetch") if c in harness.commands]
        statuses = st.one_of(st.sampled_from([200, 201, 202, *_REDIRECTS, 400, 401, 402, 403, 404, 409, 422, 429,
                                              500, 502, 503, 504, 520, 522, 524]),
                             st.integers(200, 599).filter(lambda status: not 204 <= status < 300))
        prop = given(statuses, st.sampled_from(_JUNK_BODIES), st.sampled_from(commands))(typed)
        for index, command in enumerate(commands):  # the answers every profile tries, however few it draws
            for status, body in ((404, 0), (500, 0), (503, 4), (200, 4), (200, 8), (200, 7),
                                 (_REDIRECTS[index % 4], 0), (520 + index % 5, 2)):
                prop = example(status, _JUNK_BODIES[body], command)(prop)
        run_property(prop)

    def test_a_decline_is_declined_and_never_retryable(
        self, harness: ContractHarness, capabilities: Capabilities, declined_source: str, example_amount: Money
    ) -> None:
        """By authorize, and by sale where the plugin sells: each command maps its own errors."""
        for command in ("authorize", *(["sale"] if capabilities.sale and "sale" in harness.commands else [])):
            outcome = harness.attempt(command, harness.payment_subject(example_amount, source=declined_source))
            assert isinstance(outcome, Declined), f"{command} with {declined_source!r} gave {outcome!r}"
            assert not outcome.retryable, f"{command}: {outcome!r} is retryable: a decline never is"
            assert outcome_of(outcome) == FAILED, (
                f"{command}: {outcome!r} is recorded as unknown: a decline is a definite answer")
            assert outcome.code, f"{command}: {outcome!r} lost the provider's code"
            assert outcome.customer_message, f"{command}: a decline needs a message the buyer can be shown"

    def test_refused_credentials_are_a_final_authentication_error(
        self, harness: ContractHarness, method_config: MethodConfig, example_amount: Money
    ) -> None:
        wrong = {name: f"wrong-{name}-{harness.key()}" for name in method_config.credentials}
        gateway = harness.factory(credentials=wrong)
        outcome = harness.attempt("authorize", harness.payment_subject(example_amount), gateway=gateway)
        assert isinstance(outcome, AuthenticationError), f"wrong credentials gave {outcome!r}"
        assert not outcome.retryable, f"{outcome!r} is retryable: wrong credentials stay wrong"

    def test_an_unknown_reference_is_a_final_invalid_request(
        self, harness: ContractHarness, example_amount: Money
    ) -> None:
        command = next((c for c in ("capture", "refund", "void") if c in harness.commands), None)
        if command is None:
            pytest.skip(f"{harness.provider} has no command acting on a reference")
        outcome = harness.attempt(command, harness.follow_up("contract_unknown_0001", example_amount))
        assert isinstance(outcome, InvalidRequest), f"{command} of an unknown reference gave {outcome!r}"
        assert not outcome.retryable, f"{outcome!r} is retryable: the reference stays unknown"
