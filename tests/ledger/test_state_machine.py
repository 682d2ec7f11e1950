"""A hypothesis state machine of payments: random sequences of authorizations, sales, captures,
refunds, voids and webhook deliveries, on methods with and without partial/multiple captures.

After every step, each payment's totals satisfy refunded <= captured <= authorized and equal the
provider's; every operation is accepted exactly when a simple model of the rules says so; and
the provider never has to refuse anything (the ledger refuses first).
"""

from __future__ import annotations

import itertools
from pathlib import Path

import attrs
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import Bundle, RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from paywire import EventKind, Gateway, InvalidRequest, Money
from paywire.ledger import SQLiteLedger
from paywire.service import PaymentService
from tests.ledger.fakepay import FakePayApp

_counter = itertools.count()


@attrs.define
class Model:
    """What the rules allow, tracked independently of the service."""

    method: str
    sale: bool
    authorized: int
    captured: int = 0
    refunded: int = 0
    closed: bool = False
    voided: bool = False
    captures: list[int] = attrs.Factory(list)  # what is left to refund on each capture, oldest first

    @property
    def single(self) -> bool:
        return self.method == "fakepay_single"

    def can_capture(self, amount: int) -> bool:
        if self.sale or self.voided or self.closed:
            return False
        if self.single and (self.captured or amount != self.authorized):
            return False
        return amount <= self.authorized - self.captured

    def can_refund(self, amount: int) -> bool:
        if self.single and (self.refunded or amount != self.captured):
            return False
        return amount <= self.captured - self.refunded and any(left >= amount for left in self.captures)

    def can_void(self) -> bool:
        return not self.sale and not self.voided and self.captured == 0


class PaymentMachine(RuleBasedStateMachine):
    payments = Bundle("payments")

    def __init__(self, app: FakePayApp, gateway: Gateway, directory: Path) -> None:
        super().__init__()
        self.app = app
        self.ledger = SQLiteLedger(directory / f"machine-{next(_counter)}.db", synchronous="NORMAL")
        self.service = PaymentService(gateway, self.ledger)
        self.models: dict[str, Model] = {}
        self.refusals_before = len(app.refusals)

    def teardown(self) -> None:
        self.ledger.close()

    def _accepted(self, expected: bool, call: object) -> bool:
        try:
            call()  # type: ignore[operator]
        except InvalidRequest as refused:  # StateError and UnsupportedOperation are InvalidRequests
            assert not expected, f"refused although the rules allow it: {refused}"
            return False
        assert expected, "accepted although the rules forbid it"
        return True

    @rule(target=payments, method=st.sampled_from(["fakepay", "fakepay_single"]), sale=st.booleans(),
          amount=st.integers(1, 10_000))
    def open_payment(self, method: str, sale: bool, amount: int) -> str:
        money = Money(amount, "EUR")
        make = self.service.sale if sale else self.service.authorize
        payment = make(method, money, source="tok_ok")
        self.models[payment.id] = Model(method, sale, amount, captured=amount if sale else 0,
                                        closed=sale, captures=[amount] if sale else [])
        return payment.id

    @rule(payment=payments, share=st.floats(0.01, 1.2), final=st.booleans(), whole=st.booleans())
    def capture(self, payment: str, share: float, final: bool, whole: bool) -> None:
        model = self.models[payment]
        left = model.authorized - model.captured
        amount = model.authorized if whole else max(1, int(left * share))
        final_flag = True if model.single else final
        if self._accepted(model.can_capture(amount),
                          lambda: self.service.capture(payment, Money(amount, "EUR"), final=final_flag)):
            model.captured += amount
            model.captures.append(amount)
            model.closed = final_flag or model.captured == model.authorized

    @rule(payment=payments, share=st.floats(0.01, 1.2), whole=st.booleans())
    def refund(self, payment: str, share: float, whole: bool) -> None:
        model = self.models[payment]
        amount = model.captured if whole else max(1, int((model.captured - model.refunded) * share))
        if self._accepted(model.can_refund(amount), lambda: self.service.refund(payment, Money(amount, "EUR"))):
            model.refunded += amount
            index = max(i for i, left in enumerate(model.captures) if left >= amount)
            model.captures[index] -= amount

    @rule(payment=payments)
    def void(self, payment: str) -> None:
        model = self.models[payment]
        if self._accepted(model.can_void(), lambda: self.service.void(payment)):
            model.voided = True

    @rule(payment=payments, kind=st.sampled_from([EventKind.CAPTURED, EventKind.REFUNDED, EventKind.AUTHORIZED]),
          repeat=st.booleans())
    def webhook(self, payment: str, kind: str, repeat: bool) -> None:
        """The provider reports what it holds; the ledger already knows it, so nothing may change."""
        reference = self.service.get_payment(payment).reference or ""
        authorized, captured, refunded = self.app.totals(reference)
        total = {EventKind.CAPTURED: captured, EventKind.REFUNDED: refunded, EventKind.AUTHORIZED: authorized}[kind]
        if total == 0:
            return  # a provider tells of no capture or refund of nothing (on a single-capture method one closes it)
        headers, body = self.app.event(f"evt_{payment}_{kind}_{total}", kind, reference, total=total, amount=total)
        for _ in range(2 if repeat else 1):
            self.service.receive_webhook("fakepay", headers, body)

    @invariant()
    def ledger_agrees_with_model_and_provider(self) -> None:
        assert self.app.refusals[self.refusals_before:] == []
        for payment_id, model in self.models.items():
            payment = self.service.get_payment(payment_id)
            assert payment.refunded <= payment.captured <= payment.authorized
            assert (payment.authorized.minor, payment.captured.minor, payment.refunded.minor) == \
                (model.authorized, model.captured, model.refunded)
            assert self.app.totals(payment.reference or "") == (model.authorized, model.captured, model.refunded)


def test_payment_state_machine(shared_fakepay: tuple[FakePayApp, Gateway], tmp_path: Path) -> None:
    app, gateway = shared_fakepay
    run_state_machine_as_test(
        lambda: PaymentMachine(app, gateway, tmp_path),
        settings=settings(max_examples=40, stateful_step_count=25, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow]),
    )
