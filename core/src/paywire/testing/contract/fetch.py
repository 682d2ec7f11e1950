"""`fetch` in every state the provider can produce, as reconciliation reads it.

Reconciliation settles lost and accepted outcomes from `fetch` alone, so each state must come
back as the command contract names it: a refused payment as failed (or not found), a payment
that never reached the provider as not found, and the money states with their totals.
"""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from paywire.command.result import CommandResult, ProviderState
from paywire.errors import Declined, InvalidRequest, PaywireError
from paywire.gateway_definition import Capabilities
from paywire.money import Money
from paywire.subject import Subject
from paywire.testing.contract.checks import authorized_model, part_of
from paywire.testing.contract.fixtures import ContractFixtures
from paywire.testing.contract.model import ExpectedStates, PaymentModel, totals_disagreement
from paywire.testing.harness import ContractHarness, payment_reference
from paywire.testing.strategies import Representable

__all__ = ["FetchContract"]

_GONE = (ProviderState.FAILED, ProviderState.NOT_FOUND)


def _nothing(value: Money | None) -> bool:
    return value is None or value.minor == 0


class FetchContract(ContractFixtures):
    def _by_key(self, harness: ContractHarness, subject: Subject, sent_at: datetime) -> CommandResult | PaywireError:
        """fetch as reconciliation asks after a lost first answer: by key and order, no reference,
        and when the request was first sent (`sent_at`: recorded before it was)."""
        return harness.attempt("fetch", Subject(idempotency_key=subject.idempotency_key, amount=subject.amount,
                                                order=subject.order, sent_at=sent_at))

    def test_fetch_by_key_finds_the_payment_or_reports_it_never_arrived(
        self, harness: ContractHarness, capabilities: Capabilities, example_amount: Money, fetch_finds_by_key: bool,
        declined_source: str,
    ) -> None:
        """One order, three keys: a declined attempt, the authorization that followed it (a shop's
        retry with a new key), and a key never sent. Fetch by the second finds the second payment,
        by the third nothing: a lookup by the order alone finds the declined one, and
        reconciliation would settle the authorization as refused. A sale, where the plugin offers
        one, is found by its key too: its request is built apart from the authorization's, and a
        sale the lookup cannot find is settled, once its answer is lost, as never arrived."""
        sent_at = datetime.now(UTC)
        made = harness.payment_subject(example_amount)
        never = harness.payment_subject(example_amount, order=made.order)
        if not fetch_finds_by_key:
            calls, mark = harness.calls(), harness.sent()
            outcome = self._by_key(harness, never, sent_at)
            assert isinstance(outcome, InvalidRequest) and not outcome.may_have_been_sent, (
                f"fetch_finds_by_key is False, so fetch without a reference must be refused before sending; gave {outcome!r}"
            )
            assert not harness.sent_since(mark) and harness.calls() == calls, "fetch without a reference was sent"
            return
        harness.attempt("authorize", harness.payment_subject(example_amount, source=declined_source, order=made.order))
        result = harness.execute("authorize", made)
        found = self._by_key(harness, made, sent_at)
        assert not isinstance(found, PaywireError), f"fetch by the key an authorization was made with gave {found!r}"
        assert payment_reference(found) == payment_reference(result), (
            f"fetch by key found {payment_reference(found)}, the authorization made {payment_reference(result)} "
            "(after a declined attempt for the same order with another key): look the payment up by its key"
        )
        missing = self._by_key(harness, never, sent_at)
        assert not isinstance(missing, PaywireError) and missing.state == ProviderState.NOT_FOUND, (
            f"fetch by a key the provider never saw (for an order it has payments for) gave {missing!r}: it must "
            "report state 'not_found', which reconciliation reads as 'never arrived'"
        )
        if capabilities.sale and "sale" in harness.commands:
            sold = harness.payment_subject(example_amount)
            made_by_sale = payment_reference(harness.execute("sale", sold))
            found = self._by_key(harness, sold, sent_at)
            assert not isinstance(found, PaywireError) and found.state != ProviderState.NOT_FOUND, (
                f"fetch by the key a sale was made with gave {found!r}: a sale whose answer was lost would be "
                "settled as never arrived, and recorded failed although it took effect"
            )
            assert payment_reference(found) == made_by_sale, (
                f"fetch by the key a sale was made with found {payment_reference(found)}, the sale made {made_by_sale}"
            )

    def test_fetch_of_an_unknown_reference_is_not_found(self, harness: ContractHarness) -> None:
        outcome = harness.attempt("fetch", Subject(reference="contract_missing_0001"))
        if isinstance(outcome, PaywireError):
            assert isinstance(outcome, InvalidRequest) and not outcome.retryable, (
                f"fetch of an unknown reference gave {outcome!r}: report state 'not_found' or raise a final InvalidRequest"
            )
        else:
            assert outcome.state == ProviderState.NOT_FOUND, f"fetch of an unknown reference reported {outcome!r}"

    def test_fetch_of_a_refused_payment_reports_it_failed(
        self, harness: ContractHarness, capabilities: Capabilities, example_amount: Money, declined_source: str,
        fetch_finds_by_key: bool,
    ) -> None:
        """What a refusal names (`PaywireError.reference`: the object the refused create made) is
        what the ledger records and reconciliation fetches: the provider must hold it failed.
        Without a name, reconciliation finds the payment by its key, where the provider can. A
        refused sale is checked as well as a refused authorization: plugins often read the two
        refusals apart, and a sale naming another object than the one the provider keeps (and the
        buyer may still pay) leaves that payment's events nothing to find."""
        commands = ["authorize", *(["sale"] if capabilities.sale and "sale" in harness.commands else [])]
        checked = False
        for command in commands:
            checked = self._fetch_refused(harness, command, example_amount, declined_source, fetch_finds_by_key) or checked
        if not checked:
            pytest.skip(f"{harness.provider} cannot fetch by key (fetch_finds_by_key is False), and a refusal "
                        "names no payment to fetch")

    def _fetch_refused(self, harness: ContractHarness, command: str, amount: Money, declined_source: str,
                       fetch_finds_by_key: bool) -> bool:
        """Check one refused `command`; whether there was anything to fetch."""
        subject = harness.payment_subject(amount, source=declined_source)
        sent_at = datetime.now(UTC)
        refused = harness.attempt(command, subject)
        assert isinstance(refused, Declined), f"{command} with {declined_source!r} gave {refused!r}"
        if refused.reference:
            named = harness.attempt("fetch", Subject(reference=refused.reference, amount=subject.amount,
                                                     order=subject.order))
            assert not isinstance(named, PaywireError), (
                f"fetch of {refused.reference!r}, which the refusal named as what it made ({command}), gave {named!r}")
            assert named.state == ProviderState.FAILED and _nothing(named.authorized) and _nothing(named.captured), (
                f"fetch of {refused.reference!r}, which the refusal named as what it made ({command}), reports "
                f"state {named.state!r}, authorized {named.authorized!r}, captured {named.captured!r}: it must be "
                "'failed' with nothing held"
            )
        if not fetch_finds_by_key:
            return bool(refused.reference)
        fetched = self._by_key(harness, subject, sent_at)
        assert not isinstance(fetched, PaywireError), f"fetch of a refused {command} gave {fetched!r}"
        assert fetched.state in _GONE and _nothing(fetched.authorized) and _nothing(fetched.captured), (
            f"fetch of a {command} the provider refused reports state {fetched.state!r}, authorized "
            f"{fetched.authorized!r}, captured {fetched.captured!r}: it must be 'failed' (or 'not_found') with "
            "nothing held"
        )
        return True

    def test_fetch_reports_each_money_state_with_its_totals(
        self, harness: ContractHarness, capabilities: Capabilities, example_amount: Money,
        expected_states: ExpectedStates, amount_representable: Representable | None,
    ) -> None:
        """authorized, partially captured, captured, partially refunded, refunded, voided."""
        problems: list[str] = []

        def check(payment: PaymentModel, step: str) -> None:
            problem = totals_disagreement(payment, harness.fetch(payment.payment), expected_states)
            if problem:
                problems.append(f"after {step}: {problem}")

        payment = authorized_model(harness, example_amount)
        check(payment, "authorize")
        if capabilities.capture and "capture" in harness.commands:
            captures = [(example_amount, True)]
            if capabilities.capture_partial and capabilities.capture_multiple:
                half = part_of(example_amount, 1 / 2, amount_representable)
                captures = [(half, False), (example_amount - half, True)]
            for amount, final in captures:
                subject = harness.follow_up(payment.reference, amount, final=final)
                result = harness.execute("capture", subject)
                payment.capture(result.reference or payment.reference, amount.minor, final=final,
                                key=subject.idempotency_key)
                check(payment, f"a capture of {amount!r}")
            if capabilities.refund and "refund" in harness.commands:
                capture = payment.captures[-1]
                whole = payment.money(capture.amount)
                refunds = [whole]
                if capabilities.refund_partial and capabilities.refund_multiple:
                    half = part_of(whole, 1 / 2, amount_representable)
                    refunds = [half, whole - half]
                for amount in refunds:
                    subject = harness.follow_up(capture.reference, amount)
                    refunded = harness.execute("refund", subject)
                    payment.refund(capture, amount.minor, reference=refunded.reference, key=subject.idempotency_key)
                    check(payment, f"a refund of {amount!r}")
        if capabilities.void and "void" in harness.commands:
            voided = authorized_model(harness, example_amount)
            harness.execute("void", harness.follow_up(voided.reference))
            voided.voided = True
            check(voided, "a void")
        assert not problems, "fetch disagrees with the operations applied:\n" + "\n".join(problems)

