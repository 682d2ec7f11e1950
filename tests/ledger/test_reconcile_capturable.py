"""Reconciliation closes capture on the provider's word that it takes no more of an authorization
(`CommandResult.capturable` zero), whatever its state says of refunds: a payment captured with a
final capture and then partly refunded is "partially_refunded", as is one still open to captures.
Only an authorization that stands is read so: one the provider has not decided yet has nothing
capturable either, and may still be authorized. FakePay over loopback, its fetch reporting what it
still lets be captured."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from paywire import (
    CommandPool,
    CommandResult,
    HandlerChain,
    MethodConfig,
    Money,
    Plugins,
    ProviderState,
    Retry,
    StateError,
    Subject,
)
from paywire.gateway import Gateway
from paywire.ledger import Ledger, PaymentState
from paywire.service import PaymentService
from tests.ledger.fakepay import (
    CREDENTIALS,
    FAKEPAY,
    FakePayApp,
    FakePayPlugin,
    _fetch_result,
    build_commands,
    make_gateway,
)
from tests.ledger.support import FAST, eur

_UNDECIDED = ("requires_action", "processing", "failed", "voided")


def _reporting_capturable(settings: Any) -> CommandPool:
    """FakePay's commands, with a fetch that also reports what FakePay still lets be captured."""
    pool = build_commands(settings)

    def fetched(subject: Any, response: Any) -> dict[str, Any]:
        result = _fetch_result(subject, response)
        if result["state"] == ProviderState.NOT_FOUND:
            return result
        data = response.data
        taken = data["captured"] + sum(c["amount"] for c in data["captures"] if c["status"] == "pending")
        left = 0 if data["closed"] or data["status"] in _UNDECIDED else data["authorized"] - taken
        return {**result, "capturable": Money(left, data["currency"])}

    return CommandPool({**pool, "fetch": attrs.evolve(pool["fetch"], handler=HandlerChain([fetched]))},
                       gateway=settings.gateway)


@pytest.fixture
def setup(fakepay: tuple[FakePayApp, str], ledger: Ledger) -> Iterator[tuple[FakePayApp, PaymentService, Gateway]]:
    """FakePay, a service whose fetch reports `capturable`, and the merchant's dashboard (outside paywire)."""
    app, url = fakepay
    plugins = Plugins()
    plugins.register(FakePayPlugin(FAKEPAY._replace(build=_reporting_capturable)), "fakepay")
    gateway = Gateway([MethodConfig(code="fakepay", base_url=url, credentials=dict(CREDENTIALS), **FAST)],
                      plugins=plugins, retry=Retry.never())
    dashboard = make_gateway(url)
    try:
        yield app, PaymentService(gateway, ledger, margin=0), dashboard
    finally:
        gateway.close()
        dashboard.close()


@pytest.mark.parametrize("refund", ["part", "all"])
def test_nothing_capturable_closes_capture_whatever_the_refunds(
    setup: tuple[FakePayApp, PaymentService, Gateway], refund: str
) -> None:
    """A final capture of 30.00 of 100.00 made in the dashboard, refunded there before the ledger
    read the payment: FakePay reports it refunded, nothing capturable; the ledger then offers
    nothing to capture, and refuses a capture without sending it."""
    app, service, dashboard = setup
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    capture = dashboard.execute("fakepay", "capture", Subject(reference=payment.reference, amount=eur("30.00"),
                                                              final=True, idempotency_key="dashboard-capture"))
    given = eur("30.00") if refund == "all" else eur("10.00")
    dashboard.execute("fakepay", "refund", Subject(reference=capture.reference, amount=given,
                                                   idempotency_key="dashboard-refund"))
    assert not service.reconcile(payment_id=payment.id).mismatches
    payment = service.get_payment(payment.id)
    assert (payment.authorized, payment.captured, payment.refunded) == tuple(
        Money(total, "EUR") for total in app.totals(payment.reference or ""))
    state = PaymentState.REFUNDED if refund == "all" else PaymentState.PARTIALLY_REFUNDED
    assert (payment.state, payment.capturable) == (state, eur("0.00"))
    with pytest.raises(StateError) as refused:
        service.capture(payment.id, eur("1.00"), final=False)
    assert refused.value.code == ("payment_final" if refund == "all" else "capture_closed")
    assert app.count("capture") == 1


def test_what_is_left_to_capture_stays_offered(setup: tuple[FakePayApp, PaymentService, Gateway]) -> None:
    """Part captured (not final) and refunded: FakePay still takes the rest, and so does the ledger."""
    app, service, _ = setup
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    service.capture(payment.id, eur("30.00"), final=False)
    service.refund(payment.id, eur("10.00"))
    assert not service.reconcile(payment_id=payment.id).mismatches
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.capturable) == (PaymentState.PARTIALLY_REFUNDED, eur("70.00"))
    payment = service.capture(payment.id, eur("70.00"))
    assert payment.captured == eur("100.00") and app.totals(payment.reference or "")[1] == 10000


def test_nothing_capturable_while_the_provider_decides_closes_nothing(
    setup: tuple[FakePayApp, PaymentService, Gateway]
) -> None:
    """An authorization FakePay decides later: while it is processing nothing is capturable, and
    once authorized all of it is, in the ledger too."""
    app, service, _ = setup
    payment = service.authorize("fakepay", eur("100.00"), source="tok_pending")
    service.reconcile(payment_id=payment.id)
    assert not service.get_payment(payment.id).capture_closed
    app.decide(payment.reference or "")
    service.reconcile(payment_id=payment.id)
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.capturable) == (PaymentState.AUTHORIZED, eur("100.00"))
    assert service.capture(payment.id, eur("100.00")).captured == eur("100.00")


def test_a_negative_capturable_is_refused() -> None:
    with pytest.raises(ValueError, match="capturable"):
        CommandResult(state=ProviderState.AUTHORIZED, capturable=Money(-1, "EUR"))
