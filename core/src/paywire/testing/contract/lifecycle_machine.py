"""A state machine of random authorize / capture / void / refund / fetch sequences on payments.

Each step runs against the provider (the emulator), updates the kit's model only with what the
provider applied, and asks `fetch` whether the provider agrees. Impossible operations must be
refused with a final typed error and change nothing; operations the gateway refuses itself must
send nothing at all.
"""

from __future__ import annotations

from typing import ClassVar

import attrs
from hypothesis import note
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, precondition, rule

from paywire.command.result import CommandResult, ProviderState
from paywire.errors import InvalidRequest, PaywireError, UnsupportedOperation
from paywire.gateway_definition import Capabilities
from paywire.money import CURRENCY_EXPONENTS, Money
from paywire.subject import Subject
from paywire.testing.contract.model import CaptureModel, ExpectedStates, PaymentModel, totals_disagreement
from paywire.testing.harness import ContractHarness, payment_reference
from paywire.testing.strategies import Bounds, Representable, card_numbers, money, representable_at_most

__all__ = ["LifecycleSetup", "PaymentLifecycle"]

_CONTRACT_COMMANDS = ("authorize", "sale", "capture", "void", "refund", "fetch", "complete", "vault", "unvault")


@attrs.frozen
class _Done:
    """A successful keyed operation, kept to replay it."""

    command: str
    subject: Subject
    result: CommandResult


@attrs.frozen
class LifecycleSetup:
    """What a run of the machine is bound to: the harness and what the plugin declares."""

    harness: ContractHarness
    capabilities: Capabilities
    states: ExpectedStates
    bounds: Bounds
    representable: Representable | None
    supported_currencies: frozenset[str] | None

    @property
    def unsupported_currency(self) -> str | None:
        if self.supported_currencies is None:
            return None
        return next(iter(sorted(set(CURRENCY_EXPONENTS) - self.supported_currencies)), None)


class PaymentLifecycle(RuleBasedStateMachine):
    """Bind it to a harness with `PaymentLifecycle.bound(setup)`, then run it as a test."""

    setup: ClassVar[LifecycleSetup]
    payments = Bundle("payments")
    max_payments = 3  # a few payments, many operations on each

    @classmethod
    def bound(cls, setup: LifecycleSetup) -> type[PaymentLifecycle]:
        return type(f"{cls.__name__}For{setup.harness.provider.title()}", (cls,), {"setup": setup})

    def __init__(self) -> None:
        super().__init__()
        self.harness = self.setup.harness
        self.capabilities = self.setup.capabilities
        self.states = self.setup.states
        self.bounds = self.setup.bounds
        self.amounts = money(currency=self.setup.supported_currencies, bounds=self.bounds,
                             representable=self.setup.representable)
        self.unsupported_currency = self.setup.unsupported_currency
        self.models: list[PaymentModel] = []
        self.done: dict[str, list[_Done]] = {}

    # -- checks ---------------------------------------------------------------------------------
    def agrees(self, payment: PaymentModel) -> None:
        """The provider's own state (fetch) matches the model."""
        problem = totals_disagreement(payment, self.harness.fetch(payment.payment), self.states)
        assert problem is None, problem

    def refused(self, payment: PaymentModel, command: str, subject: Subject) -> None:
        """An impossible operation is refused with a final typed error, and nothing changes."""
        outcome = self.harness.attempt(command, subject)
        assert isinstance(outcome, InvalidRequest) and not outcome.retryable, (
            f"{command} of {subject.amount!r} on {payment.payment}, impossible in the model "
            f"(authorized {payment.authorized}, captured {payment.captured}, refunded {payment.refunded}, "
            f"voided {payment.voided}), gave {outcome!r} instead of a non-retryable InvalidRequest"
        )
        self.agrees(payment)

    def refused_before_sending(self, command: str, subject: Subject, kind: type[PaywireError]) -> None:
        calls, mark = self.harness.calls(), self.harness.sent()
        outcome = self.harness.attempt(command, subject)
        assert isinstance(outcome, kind), f"{command} should be refused with {kind.__name__}, gave {outcome!r}"
        assert not outcome.may_have_been_sent, f"{outcome!r} says it may have been sent"
        assert not self.harness.sent_since(mark), f"{command} was refused but sent a request"
        assert self.harness.calls() == calls, f"{command} was refused but reached the provider"

    def run(self, payment: PaymentModel, command: str, subject: Subject) -> CommandResult:
        result = self.harness.execute(command, subject)
        assert result.succeeded, f"{command} on {payment.payment} asked for buyer action: {result!r}"
        self.done.setdefault(payment.payment, []).append(_Done(command, subject, result))
        return result

    def key(self) -> str:
        return self.harness.key()

    def draw_part(self, data: st.DataObject, payment: PaymentModel, most: int, label: str) -> int:
        """An amount of at most `most` the provider holds (`most` itself is one)."""
        low = min(self.bounds(payment.currency)[0], most)
        drawn = data.draw(st.integers(low, most), label=label)
        part = representable_at_most(drawn, payment.currency, self.setup.representable, low)
        return most if part is None else part.minor

    # -- rules ----------------------------------------------------------------------------------
    @rule(payment=payments, data=st.data())
    def operate(self, payment: PaymentModel, data: st.DataObject) -> None:
        """One operation on a payment, drawn so that captures and refunds come up most."""
        choices = ["fetch", "replay", "refused_by_the_gateway"]
        for name, weight in (("capture", 4), ("refund", 3), ("void", 1)):
            if getattr(self.capabilities, name) and name in self.harness.commands:
                choices.extend([name] * weight)
        operation = data.draw(st.sampled_from(choices), label="operation")
        getattr(self, operation)(payment, data)
    @precondition(lambda self: len(self.models) < self.max_payments)
    @rule(target=payments, data=st.data())
    def authorize(self, data: st.DataObject) -> PaymentModel:
        amount = data.draw(self.amounts, label="amount")
        can_sell = self.capabilities.sale and "sale" in self.harness.commands
        sale = can_sell and data.draw(st.integers(0, 3), label="sale if 0") == 0  # mostly authorize: more to do
        result = self.harness.authorize(amount, sale=sale)
        assert result.reference, f"{'sale' if sale else 'authorize'} returned no reference: {result!r}"
        payment = PaymentModel(result.reference, payment_reference(result), amount.currency, amount.minor)
        if sale:
            payment.capture(result.reference, amount.minor, final=True)
        self.models.append(payment)
        self.agrees(payment)
        return payment

    # -- operations -----------------------------------------------------------------------------
    def capture(self, payment: PaymentModel, data: st.DataObject) -> None:
        capturable = payment.capturable
        if capturable == 0 or data.draw(st.integers(0, 4), label="too much if 0") == 0:
            amount = payment.money(capturable + payment.authorized + 1)
            subject = self.harness.follow_up(payment.reference, amount)
            self.refused(payment, "capture", subject)
            return
        partial = self.capabilities.capture_partial and data.draw(st.booleans(), label="partial")
        amount_minor = self.draw_part(data, payment, capturable, "capture") if partial else capturable
        more = self.capabilities.capture_multiple and amount_minor < capturable and data.draw(st.booleans(), label="more")
        subject = self.harness.follow_up(payment.reference, payment.money(amount_minor), final=not more)
        result = self.run(payment, "capture", subject)
        if result.amount is not None:
            assert result.amount == payment.money(amount_minor), f"capture of {amount_minor} applied {result.amount!r}"
        payment.capture(result.reference or payment.reference, amount_minor, final=not more, key=subject.idempotency_key)
        self.agrees(payment)

    def void(self, payment: PaymentModel, data: st.DataObject) -> None:
        subject = self.harness.follow_up(payment.reference)
        releases = self.capabilities.void_after_capture and not (payment.voided or payment.closed)
        if payment.voidable or releases:
            result = self.run(payment, "void", subject)
            assert result.state in (None, ProviderState.VOIDED), f"void answered state {result.state!r}"
            payment.void()
            self.agrees(payment)
        elif payment.voided or payment.closed:
            self.refused(payment, "void", subject)
        # a void after a partial, non-final capture where the provider does not declare
        # `void_after_capture` differs by provider: not generated

    def _refundable(self, payment: PaymentModel) -> list[CaptureModel]:
        return [
            capture for capture in payment.captures
            if capture.refundable > 0 and (self.capabilities.refund_multiple or capture.refunded == 0)
        ]

    def refund(self, payment: PaymentModel, data: st.DataObject) -> None:
        if not payment.captures:
            return
        refundable = self._refundable(payment)
        if not refundable or data.draw(st.integers(0, 4), label="too much if 0") == 0:
            capture = payment.captures[-1]
            amount = payment.money(payment.captured - payment.refunded + 1)
            self.refused(payment, "refund", self.harness.follow_up(capture.reference, amount))
            return
        capture = data.draw(st.sampled_from(refundable), label="capture refunded")
        partial = self.capabilities.refund_partial and data.draw(st.booleans(), label="partial")
        amount_minor = self.draw_part(data, payment, capture.refundable, "refund") if partial else capture.refundable
        subject = self.harness.follow_up(capture.reference, payment.money(amount_minor))
        result = self.run(payment, "refund", subject)
        if result.amount is not None:
            assert result.amount == payment.money(amount_minor), f"refund of {amount_minor} applied {result.amount!r}"
        payment.refund(capture, amount_minor, reference=result.reference, key=subject.idempotency_key)
        self.agrees(payment)

    def fetch(self, payment: PaymentModel, data: st.DataObject) -> None:
        self.agrees(payment)

    def replay(self, payment: PaymentModel, data: st.DataObject) -> None:
        """Sending a done operation again with its key gives the same answer and changes nothing."""
        done = self.done.get(payment.payment)
        if not done:
            return
        earlier = data.draw(st.sampled_from(done), label="replayed")
        again = self.harness.execute(earlier.command, earlier.subject)
        for name in ("status", "reference", "amount", "state"):
            assert getattr(again, name) == getattr(earlier.result, name), (
                f"replaying {earlier.command} with key {earlier.subject.idempotency_key} gave {name} "
                f"{getattr(again, name)!r}, the first answer {getattr(earlier.result, name)!r}"
            )
        self.agrees(payment)

    # -- refused before sending -----------------------------------------------------------------
    def refused_by_the_gateway(self, payment: PaymentModel, data: st.DataObject) -> None:
        """A card number, a missing reference, an unsupported currency or command: nothing is sent."""
        refusals = ["card number"]
        if self.capabilities.capture and "capture" in self.harness.commands:
            refusals.append("no reference")
            if self.unsupported_currency is not None:
                refusals.append("unsupported currency")
        missing = sorted(set(_CONTRACT_COMMANDS) - self.harness.commands)
        if missing:
            refusals.append("missing command")
        refusal = data.draw(st.sampled_from(refusals), label="refusal")
        if refusal == "card number":
            amount = payment.money(min(payment.authorized, 1000))
            pan = data.draw(card_numbers(), label="card number")
            self.refused_before_sending("authorize", self.harness.payment_subject(amount, source=pan), InvalidRequest)
        elif refusal == "no reference":
            self.refused_before_sending("capture", Subject(amount=payment.money(1), idempotency_key=self.key()),
                                        InvalidRequest)
        elif refusal == "unsupported currency":
            assert self.unsupported_currency is not None
            amount = Money.minor_units(1, self.unsupported_currency)
            self.refused_before_sending("capture", self.harness.follow_up(payment.reference, amount), InvalidRequest)
        else:
            command = data.draw(st.sampled_from(missing), label="missing command")
            self.refused_before_sending(command, self.harness.follow_up(payment.reference), UnsupportedOperation)

    # -- invariants -----------------------------------------------------------------------------
    @invariant()
    def totals_are_ordered(self) -> None:
        for payment in self.models:
            assert 0 <= payment.refunded <= payment.captured <= payment.authorized, (
                f"{payment.payment}: refunded {payment.refunded}, captured {payment.captured}, "
                f"authorized {payment.authorized}"
            )

    def teardown(self) -> None:
        note(f"{len(self.models)} payments at {self.harness.provider}")

