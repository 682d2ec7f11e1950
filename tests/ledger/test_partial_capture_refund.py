"""A capture or refund the provider applies in part: Acme's `tok_partial_capture` (the issuer
honours half of each capture) and `tok_partial_refund` (Acme keeps its fee: half of each refund
returns). The payment's captured and refunded totals are what the provider applied (its answer
here; an event or a reconciliation: test_partial_settlement.py); what is left to capture or refund
follows what the provider holds, and a reconciliation afterwards finds nothing to change."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paywire import Gateway, MethodConfig, Money, OutcomeUnknown, PaymentService, Plugins, StateError
from paywire.errors import PaywireError
from paywire.ledger import Ledger, Payment, PaymentState
from paywire.testing.emulator import EmulatorServer
from tests.ledger.support import eur

paywire_acme = pytest.importorskip("paywire_acme", reason="needs the acme test plugin (the all session has it)")
from paywire_acme.emulator import AcmeEmulator  # noqa: E402


@pytest.fixture
def acme() -> Iterator[tuple[AcmeEmulator, Gateway]]:
    app = AcmeEmulator()
    plugins = Plugins()
    plugins.register(paywire_acme)
    with EmulatorServer(app) as server, Gateway(
        [MethodConfig(code="acme", base_url=server.url,
                      credentials={"api_key": app.api_key, "webhook_secret": app.webhook_secret})],
        plugins=plugins,
    ) as gateway:
        yield app, gateway


@pytest.fixture
def app(acme: tuple[AcmeEmulator, Gateway]) -> AcmeEmulator:
    return acme[0]


@pytest.fixture
def service(acme: tuple[AcmeEmulator, Gateway], ledger: Ledger) -> PaymentService:
    return PaymentService(acme[1], ledger)


def _held(app: AcmeEmulator, payment: Payment) -> dict[str, Any]:
    return app.payments[payment.reference or ""]


def agree(service: PaymentService, app: AcmeEmulator, payment_id: str) -> Payment:
    """The ledger's totals, and what it leaves to capture and refund, are Acme's; nothing is open."""
    payment = service.get_payment(payment_id)
    held = _held(app, payment)
    capturable = 0 if held["closed"] or held["capture"] else held["amount"] - held["captured"]
    assert (payment.authorized.minor, payment.captured.minor, payment.refunded.minor) == (
        held["amount"], held["captured"], held["refunded"])
    assert (payment.capturable.minor, payment.refundable.minor) == (capturable, held["captured"] - held["refunded"])
    assert [t for t in service.list_transactions(payment_id) if t.open] == []
    return payment


def unchanged_by_reconcile(service: PaymentService, payment: Payment) -> None:
    report = service.reconcile(payment_id=payment.id)
    assert (report.mismatches, report.settled, report.unresolved) == ((), (), ())
    after = service.get_payment(payment.id)
    assert (after.state, after.authorized, after.captured, after.refunded, after.capturable, after.refundable) == (
        payment.state, payment.authorized, payment.captured, payment.refunded, payment.capturable, payment.refundable)


def test_a_capture_applied_in_part_counts_what_the_provider_captured(service: PaymentService,
                                                                     app: AcmeEmulator) -> None:
    payment = service.authorize("acme", eur("30.00"), source="tok_partial_capture")
    payment = service.capture(payment.id, eur("10.00"), final=False)
    assert _held(app, payment)["captured"] == 500
    assert (payment.state, payment.captured, payment.capturable, payment.refundable) == (
        PaymentState.PARTIALLY_CAPTURED, eur("5.00"), eur("25.00"), eur("5.00"))
    agree(service, app, payment.id)
    with pytest.raises(StateError) as refused:
        service.refund(payment.id, eur("5.01"))
    assert refused.value.code == "refund_exceeds_captured"
    with pytest.raises(StateError) as refused:
        service.capture(payment.id, eur("25.01"))
    assert refused.value.code == "capture_exceeds_authorized"
    payment = service.capture(payment.id, eur("25.00"), final=False)  # all that is left: half of it is taken
    assert (payment.captured, payment.capturable) == (eur("17.50"), eur("12.50"))
    payment = agree(service, app, payment.id)
    unchanged_by_reconcile(service, payment)


def test_a_refund_applied_in_part_counts_what_the_provider_returned(service: PaymentService,
                                                                    app: AcmeEmulator) -> None:
    payment = service.sale("acme", eur("30.00"), source="tok_partial_refund")
    payment = service.refund(payment.id, eur("4.00"))
    assert _held(app, payment)["refunded"] == 200
    assert (payment.state, payment.refunded, payment.refundable) == (
        PaymentState.PARTIALLY_REFUNDED, eur("2.00"), eur("28.00"))
    agree(service, app, payment.id)
    with pytest.raises(StateError) as refused:
        service.refund(payment.id, eur("28.01"))
    assert refused.value.code == "refund_exceeds_captured"
    payment = service.refund(payment.id)  # all that is left: Acme returns half of it
    assert (payment.refunded, payment.refundable) == (eur("16.00"), eur("14.00"))
    payment = agree(service, app, payment.id)
    unchanged_by_reconcile(service, payment)


STEPS = st.lists(st.tuples(st.sampled_from(["capture", "refund"]), st.integers(min_value=1, max_value=4_000)),
                 min_size=1, max_size=6)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(source=st.sampled_from(["tok_partial_capture", "tok_partial_refund"]),
       amount=st.integers(min_value=2, max_value=10_000), steps=STEPS)
def test_the_ledger_holds_what_acme_holds_whatever_captures_and_refunds_it_applies_in_part(
        service: PaymentService, app: AcmeEmulator, source: str, amount: int, steps: list[tuple[str, int]]) -> None:
    first = "authorize" if source == "tok_partial_capture" else "sale"
    payment = getattr(service, first)("acme", Money(amount, "EUR"), source=source)
    for kind, minor in steps:
        try:
            if kind == "capture":
                service.capture(payment.id, Money(minor, "EUR"), final=False)
            else:
                service.refund(payment.id, Money(minor, "EUR"))
        except PaywireError as refused:  # refused before anything was sent: beyond what Acme holds
            assert not isinstance(refused, OutcomeUnknown), refused
        agree(service, app, payment.id)
    unchanged_by_reconcile(service, service.get_payment(payment.id))
