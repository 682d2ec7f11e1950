"""A partial authorization: the provider authorizes less than was asked (FakePay's `tok_partial`, a
prepaid card with less balance, authorizes half). The payment's authorized (a sale's captured)
total is what the provider holds, whichever way the outcome is learnt (the answer, reconciliation,
an event); its `amount` stays what was asked, so the shop can tell; a capture or refund beyond
what is held is refused before anything is sent. An answer claiming more than was asked cannot
say what is held: the outcome is unknown until reconciliation reads it."""

from __future__ import annotations

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paywire import Money, OutcomeUnknown, StateError
from paywire.ledger import EventStatus, Ledger, PaymentState, TransactionStatus
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import ClaimsMore, FakePayApp, make_gateway
from tests.ledger.support import agree, eur

S = TransactionStatus
AMOUNTS = st.integers(min_value=2, max_value=10_000_000)  # minor units; FakePay holds half


def _held(amount: int) -> int:
    return max(1, amount // 2)


@attrs.frozen
class Holds:
    """What a partially authorized payment opened by an authorize or a sale holds, and the next
    operation that may take no more than that."""

    state: str
    captured: bool  # a sale captures what it holds
    next: str  # the operation limited by what is held
    limit: str  # the payment's total that says how much it may take
    refusal: str  # its code when asked for more
    total: str  # the payment's total it raises


HOLDS = {
    "authorize": Holds(PaymentState.AUTHORIZED, False, "capture", "capturable", "capture_exceeds_authorized",
                       "captured"),
    "sale": Holds(PaymentState.CAPTURED, True, "refund", "refundable", "refund_exceeds_captured", "refunded"),
}


@pytest.mark.parametrize("kind", ["authorize", "sale"])
@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(amount=AMOUNTS)
def test_a_payment_records_what_the_provider_holds_and_takes_no_more(
        service: PaymentService, app: FakePayApp, kind: str, amount: int) -> None:
    holds = HOLDS[kind]
    payment = getattr(service, kind)("fakepay", Money(amount, "EUR"), source="tok_partial")
    held = Money(_held(amount), "EUR")
    assert app.totals(payment.reference or "")[0] == held.minor
    assert (payment.state, payment.amount, payment.authorized, payment.captured, getattr(payment, holds.limit)) == (
        holds.state, Money(amount, "EUR"), held, held if holds.captured else Money(0, "EUR"), held)
    agree(service, app, payment.id)
    refusals, sent = list(app.refusals), app.count(holds.next)
    with pytest.raises(StateError) as refused:
        getattr(service, holds.next)(payment.id, held + Money(1, "EUR"))
    assert refused.value.code == holds.refusal
    assert (app.refusals, app.count(holds.next)) == (refusals, sent)  # nothing was sent
    assert getattr(getattr(service, holds.next)(payment.id), holds.total) == held  # all that is held
    agree(service, app, payment.id)
    assert service.reconcile(payment_id=payment.id).mismatches == ()


@pytest.mark.parametrize("kind", ["authorize", "sale"])
def test_a_lost_answer_reconciled_records_what_the_provider_holds(service: PaymentService, app: FakePayApp,
                                                                   kind: str) -> None:
    app.inject(Fault("drop_after", path="/v1/payments$"))
    with pytest.raises(OutcomeUnknown) as lost:
        getattr(service, kind)("fakepay", eur("50.00"), source="tok_partial", order_id="P-1")
    payment_id = lost.value.payment_id or ""
    report = service.reconcile()
    assert [s.status for s in report.settled] == [S.SUCCEEDED] and report.mismatches == ()
    payment = service.get_payment(payment_id)
    assert (payment.amount, payment.authorized) == (eur("50.00"), eur("25.00"))
    agree(service, app, payment_id)


def test_an_accepted_authorization_settled_by_its_event_records_what_the_event_says(
        service: PaymentService, app: FakePayApp) -> None:
    payment = service.authorize("fakepay", eur("50.00"), source="tok_pending")
    assert payment.state == PaymentState.PENDING  # accepted: the provider decides later
    headers, body = app.event("evt_partial", "authorized", payment.reference or "", amount=2_000)
    assert service.receive_webhook("fakepay", headers, body).status == EventStatus.APPLIED
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.amount, payment.authorized) == (PaymentState.AUTHORIZED, eur("50.00"),
                                                                   eur("20.00"))


def test_an_answer_claiming_more_than_was_asked_is_an_unknown_outcome(
        fakepay: tuple[FakePayApp, str], ledger: Ledger, app: FakePayApp) -> None:
    gateway = make_gateway(fakepay[1], extra=[ClaimsMore()])
    try:
        service = PaymentService(gateway, ledger)
        with pytest.raises(OutcomeUnknown) as unreadable:
            service.authorize("fakepay", eur("50.00"), source="tok_ok")
        payment_id = unreadable.value.payment_id or ""
        assert service.get_payment(payment_id).authorized == eur("0.00")
        assert [t.status for t in service.list_transactions(payment_id)] == [S.UNKNOWN]
        report = service.reconcile()  # fetch reads what the provider holds
        assert [s.status for s in report.settled] == [S.SUCCEEDED] and report.mismatches == ()
        assert service.get_payment(payment_id).authorized == eur("50.00")
        agree(service, app, payment_id)
    finally:
        gateway.close()


def test_an_authorized_event_without_an_amount_claims_no_more_than_is_held(
        service: PaymentService, app: FakePayApp) -> None:
    """An event saying only "authorized" (no amount) after a partial authorization raises no floor
    to the amount asked: what the provider holds is what its answer said."""
    payment = service.authorize("fakepay", eur("50.00"), source="tok_partial")
    headers, body = app.event("evt_amountless", "authorized", payment.reference or "")
    assert service.receive_webhook("fakepay", headers, body).status == EventStatus.APPLIED
    payment = service.get_payment(payment.id)
    assert (payment.authorized, payment.capturable) == (eur("25.00"), eur("25.00"))
    agree(service, app, payment.id)
