"""Request builders are pure, and what they build never carries a card number or a secret."""

from __future__ import annotations

from collections.abc import Collection, Mapping

import attrs
from hypothesis import given
from hypothesis import strategies as st

from paywire.errors import InvalidRequest, PaywireError
from paywire.http.response import Response
from paywire.http.transfer import Transfer
from paywire.money import Money
from paywire.security import find_card_number
from paywire.subject import Address, Customer, Order, Subject
from paywire.testing.contract.fixtures import ContractFixtures
from paywire.testing.harness import ContractHarness
from paywire.testing.leaks import SecretValues, secret_variants
from paywire.testing.profiles import run_property
from paywire.testing.strategies import Bounds, Representable, card_numbers, subjects

__all__ = ["BuilderContract", "transfer_problems"]

_BUILT_COMMANDS = ("authorize", "sale", "capture", "void", "refund", "fetch", "complete", "vault")
_REFUSED = Response(status=400, headers={"content-type": "application/json"}, body=b"{}")


def _texts(transfer: Transfer) -> list[tuple[str, str]]:
    body = (transfer.body or b"").decode("utf-8", "replace")
    return [("body", body), ("url", transfer.url), *((f"header {name}", value) for name, value in transfer.headers.items())]


def transfer_problems(transfer: Transfer, secrets: Collection[str]) -> list[str]:
    """Card numbers or secrets in what a transfer sends outside its `auth` (which may hold them)."""
    problems = []
    for where, text in _texts(transfer):
        if find_card_number(text) is not None:
            problems.append(f"a card number in the {where} of {transfer.method} {transfer.url}")
        for secret in secrets:
            if any(variant in text for variant in secret_variants(secret)):
                problems.append(f"a secret in the {where} of {transfer.method} {transfer.url}")
    return problems


def snapshot(value: object) -> object:
    """A deep, detached copy of a subject's contents, to compare before and after building.

    `copy.deepcopy` cannot copy the read-only mappings a `Subject` holds, and an `==` on the
    subject itself would compare a changed object with itself.
    """
    if attrs.has(type(value)):
        names = [field.name for field in attrs.fields(type(value))]  # type: ignore[arg-type]
        return (type(value).__name__, tuple((name, snapshot(getattr(value, name))) for name in names))
    if isinstance(value, Mapping):
        return ("mapping", tuple(sorted((str(key), snapshot(item)) for key, item in value.items())))
    if isinstance(value, (list, tuple, set, frozenset)):
        return (type(value).__name__, tuple(snapshot(item) for item in value))
    return value


def _sent_form(transfer: Transfer) -> tuple[object, ...]:
    return (transfer.method, transfer.url, dict(transfer.headers), transfer.body, transfer.idempotency_key, transfer.timeout)


class BuilderContract(ContractFixtures):
    """Same subject, same request; and only tokens ever leave, never card numbers or secrets."""

    def _dry_run(self, harness: ContractHarness, command: str, subject: Subject) -> tuple[object, ...]:
        """What the command sends for `subject`, answered by the kit instead of the provider."""
        mark = harness.sent()
        with harness.recorder.answering(_REFUSED):
            outcome: object = harness.attempt(command, subject)
        if isinstance(outcome, PaywireError):
            outcome = (type(outcome).__name__, str(outcome))
        sent = tuple(_sent_form(record.transfer) for record in harness.sent_since(mark))
        return sent, outcome

    def test_builders_are_pure_and_requests_hold_no_card_number_or_secret(
        self,
        harness: ContractHarness,
        payment_source: str,
        supported_currencies: frozenset[str] | None,
        amount_bounds: Bounds,
        amount_representable: Representable | None,
        secret_values: SecretValues,
    ) -> None:
        commands = sorted(set(_BUILT_COMMANDS) & harness.commands)

        def pure(data: st.DataObject) -> None:
            command = data.draw(st.sampled_from(commands), label="command")
            subject = data.draw(
                subjects(command, sources=st.just(payment_source), currency=supported_currencies, bounds=amount_bounds,
                         representable=amount_representable),
                label="subject",
            )
            before = snapshot(subject)
            mark = harness.sent()
            first = self._dry_run(harness, command, subject)
            assert snapshot(subject) == before, (
                f"{command} changed the subject it was given: builders must not write into it "
                f"(before {before!r}, after {snapshot(subject)!r})"
            )
            again = self._dry_run(harness, command, subject)
            evolved = self._dry_run(harness, command, attrs.evolve(subject))
            assert first == again == evolved, f"{command} built different requests from the same subject"
            for record in harness.sent_since(mark):
                problems = transfer_problems(record.transfer, secret_values)
                assert not problems, "; ".join(problems)

        run_property(given(st.data())(pure))

    def test_card_numbers_never_reach_the_wire(self, harness: ContractHarness, example_amount: Money) -> None:
        places = ("source", "metadata", "description", "customer name", "billing address")

        def placed(pan: str, place: str) -> Subject:
            order = harness.order()
            if place == "description":
                order = attrs.evolve(order, description=f"card {pan}")
            elif place == "billing address":
                order = attrs.evolve(order, billing=Address(line1=pan, country="DE"))
            return Subject(
                amount=example_amount,
                source=pan if place == "source" else harness.payment_source,
                order=order,
                customer=Customer(name=pan) if place == "customer name" else None,
                metadata={"note": pan} if place == "metadata" else {},
                idempotency_key=harness.key(),
            )

        def never_sent(pan: str, place: str) -> None:
            digits = pan.replace(" ", "").replace("-", "")
            calls, mark = harness.calls(), harness.sent()
            outcome = harness.attempt("authorize", placed(pan, place))
            sent = harness.sent_since(mark)
            if isinstance(outcome, PaywireError):
                assert digits not in str(outcome) and pan not in str(outcome), "the error repeats the card number"
            if place == "source":
                assert isinstance(outcome, InvalidRequest) and outcome.code == "raw_card_number", (
                    f"a card number as the source gave {outcome!r}"
                )
                assert not sent and harness.calls() == calls, "a card number as the source was sent"
            for record in sent:
                assert not transfer_problems(record.transfer, ()), f"a card number in the {place} was sent"

        run_property(given(card_numbers(), st.sampled_from(places))(never_sent))

    def test_a_command_without_its_reference_is_refused_before_sending(
        self, harness: ContractHarness, example_amount: Money
    ) -> None:
        for command in sorted({"capture", "void", "refund"} & harness.commands):
            calls, mark = harness.calls(), harness.sent()
            subject = Subject(amount=example_amount, order=Order(id="contract-no-reference"),
                              idempotency_key=harness.key())
            outcome = harness.attempt(command, subject)
            assert isinstance(outcome, InvalidRequest), f"{command} without a reference gave {outcome!r}"
            assert not harness.sent_since(mark) and harness.calls() == calls, f"{command} without a reference was sent"
