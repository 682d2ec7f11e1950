"""A refund's own answer arriving after reconciliation settled it from Stripe's word: the answer
gives way only to reconciliation's conclusion that the request never landed (a guess), never to
Stripe's own reading of the refund as failed. A `pm_card_refundFail` refund answers `succeeded`
and fails afterwards; recorded from its stale answer, the ledger would count money Stripe gave
back to the charge."""

from __future__ import annotations

from collections.abc import Generator
from datetime import timedelta
from typing import Any

import pytest

from paywire import Money, PaymentService, PaywireError, Response, Subject, hookimpl
from paywire.ledger import TransactionStatus
from paywire.ledger.model import SettledBy, now
from paywire_stripe.emulator import StripeEmulator


class ReconciledMeanwhile:
    """Holds the refund's answer back until Stripe failed the refund and `reconcile()`, run once
    the request's life is over (the ledger's clock moved, not the machine's), settled it."""

    def __init__(self, service: PaymentService, app: StripeEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
        self.service, self.app, self.monkeypatch = service, app, monkeypatch
        self.payment_id = ""

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str, transfer: Any) -> Generator[None, Response, Response]:
        response: Response = yield
        if command == "refund":
            [refund] = [r for r in self.app.store.refunds.values() if r["status"] == "succeeded"
                        and r["metadata"]]
            self.app.settle(refund["id"])  # the card's refund fails after it succeeded
            later = now() + timedelta(days=1)
            with self.monkeypatch.context() as patch:
                patch.setattr(self.service.ledger, "now", lambda: later)
                report = self.service.reconcile(payment_id=self.payment_id)
            assert [(s.kind, s.status) for s in report.settled] == [("refund", TransactionStatus.FAILED)]
        return response


def test_a_late_success_answer_never_overrules_a_refund_stripe_reported_failed(
        service: PaymentService, app: StripeEmulator, monkeypatch: pytest.MonkeyPatch) -> None:
    payment = service.sale("stripe", Money.of("10.00", "EUR"), source="pm_card_refundFail",
                           return_url="https://shop.example/r")
    hook = ReconciledMeanwhile(service, app, monkeypatch)
    hook.payment_id = payment.id
    service.gateway.plugins.register(hook, name="reconciled_meanwhile")
    with pytest.raises(PaywireError) as failed:
        service.refund(payment.id, Money.of("4.00", "EUR"))
    assert not failed.value.retryable
    [refund] = [t for t in service.list_transactions(payment.id) if t.kind == "refund"]
    assert (refund.status, refund.settled_by, refund.retryable) == (
        TransactionStatus.FAILED, SettledBy.RECONCILE, False)
    payment = service.get_payment(payment.id)
    held = service.gateway.execute("stripe", "fetch", Subject(reference=payment.reference))
    assert (payment.captured, payment.refunded) == (held.captured, held.refunded) == (
        Money.of("10.00", "EUR"), Money.of("0.00", "EUR"))
    assert payment.refundable == Money.of("10.00", "EUR")

