"""Idempotency keys on the wire: every money-moving request carries the subject's key, as sent.

`Transfer.idempotency_key` is only the key a factory's `idempotency_header` carried, and a plugin
may put the key elsewhere (in the body, a header of its own), so the kit reads the key back out
of the request actually sent, where the provider reads it (`wire_idempotency_key`). A plugin that
sends a sale without its key passes every replay the provider happens to refuse, and charges
twice the day the caller retries a sale whose answer was lost: the resend is a new sale.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from paywire.gateway_definition import GatewayDefinition
from paywire.http.transfer import Transfer
from paywire.money import Money
from paywire.subject import Customer, Subject
from paywire.testing.contract.checks import authorized_model, captured_model
from paywire.testing.contract.fixtures import ContractFixtures
from paywire.testing.harness import ContractHarness, payment_reference
from paywire.testing.recorder import RecordedTransfer

__all__ = ["MONEY_MOVING", "IdempotencyKeyContract"]

MONEY_MOVING = ("authorize", "sale", "capture", "void", "refund", "complete", "vault")
"""The commands whose requests must carry the subject's idempotency key (vault when keyed)."""

WireKey = Callable[[Transfer], "str | None"]


def _keys(records: list[RecordedTransfer], command: str, wire_key: WireKey) -> list[tuple[Transfer, str | None]]:
    return [(record.transfer, wire_key(record.transfer)) for record in records
            if record.command == command and record.transfer.method.upper() != "GET"]


def _shown(transfer: Transfer) -> str:
    return f"{transfer.method} {transfer.url}"


class IdempotencyKeyContract(ContractFixtures):
    """Needs `wire_idempotency_key` unless the provider's key header has "idempotency" in its name.

    For each money-moving command the plugin offers (and whose key the provider keeps:
    `GatewayDefinition.key_lives` of 0 means it keeps none), if the command sends any non-GET
    request, at least one carries the subject's key, none carries another key, and sent again for
    the same subject, the same request carries the same key. A command of several writes may give
    each its own key made from the subject's (`step_key`: Stripe's `paywire:customer:{key}`): a
    key that contains the subject's counts as the subject's. A command that only reads (Stripe's
    complete) sends none.
    """

    @pytest.mark.parametrize("command", MONEY_MOVING)
    def test_money_moving_requests_carry_the_subjects_key(
        self, harness: ContractHarness, example_amount: Money, gateway_definition: GatewayDefinition,
        wire_idempotency_key: Callable[[Transfer], str | None], request: pytest.FixtureRequest, command: str,
    ) -> None:
        if command not in harness.commands or not getattr(harness.capabilities, command, True):
            pytest.skip(f"{harness.provider} offers no {command}")
        if gateway_definition.key_lives.get(command) == 0:
            pytest.skip(f"{harness.provider} keeps no idempotency key for {command} (key_lives 0): it is never resent")
        subject = self._subject(harness, command, example_amount, request)
        mark = harness.sent()
        harness.attempt(command, subject)
        first = _keys(harness.sent_since(mark), command, wire_idempotency_key)
        mark = harness.sent()
        harness.attempt(command, subject)
        again = _keys(harness.sent_since(mark), command, wire_idempotency_key)
        key = subject.idempotency_key
        assert key, "the kit's subjects always carry a key"

        def of_subject(found: str | None) -> bool:  # the key itself, or one step's key made from it
            return found is not None and key in found

        problems = [f"{_shown(transfer)} carried the key {found!r}, not the subject's {key!r} (nor one made from it)"
                    for transfer, found in first + again if found is not None and not of_subject(found)]
        if first and not any(of_subject(found) for _, found in first):
            problems.append(f"none of the {len(first)} non-GET request(s) {command} sent carried the subject's key "
                            f"{key!r} where the provider reads it ({[_shown(t) for t, _ in first]}): a resend after "
                            "a lost answer would be applied again")
        sent_with = {(t.method, t.url, t.body): found for t, found in first if of_subject(found)}
        problems += [f"{_shown(transfer)}, sent again for the same subject, carried {found!r}, first "
                     f"{sent_with[(transfer.method, transfer.url, transfer.body)]!r}"
                     for transfer, found in again
                     if sent_with.get((transfer.method, transfer.url, transfer.body), found) != found]
        assert not problems, f"{command}'s idempotency key on the wire:\n" + "\n".join(problems)

    def _subject(self, harness: ContractHarness, command: str, amount: Money,
                 request: pytest.FixtureRequest) -> Subject:
        if command in ("authorize", "sale"):
            return harness.payment_subject(amount)
        if command == "vault":
            return Subject(source=harness.payment_source, idempotency_key=harness.key(),
                           customer=Customer(email="buyer@shop.example", name="Contract Buyer"))
        if command == "complete":
            if not harness.capabilities.buyer_action:
                pytest.skip(f"{harness.provider} declares no buyer action to complete")
            source: str = request.getfixturevalue("buyer_action_source")
            started = harness.execute("authorize", harness.payment_subject(amount, source=source))
            assert started.action_required, f"{source!r} gave {started!r}, not a buyer action"
            harness.approve_buyer_action(started)
            return harness.follow_up(payment_reference(started), amount)
        if command == "refund":
            if "capture" in harness.commands:
                return harness.follow_up(captured_model(harness, amount)[1].reference, amount)
            return harness.follow_up(harness.authorize(amount, sale=True).reference, amount)
        payment = authorized_model(harness, amount)
        return harness.follow_up(payment.reference, None if command == "void" else amount)

