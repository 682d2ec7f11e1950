"""A reauthorization's PAYMENT.AUTHORIZATION.CREATED delivered after PayPal voided the payment
(PayPal retries a delivery for days; voiding the original voids its reauthorization with it): the
event still says what the reauthorization held, which replaced what the original held, voided or
not. The ledger, which sent the void to the original without knowing of the reauthorization,
holds from then on what PayPal's reading says (the reauthorization's amount on top of what
captures of the original took), not the original's amount until a reconciliation, and reads
voided (or its capture closed) all the same: nothing is offered, and reconciliation finds
nothing to change. On both ledgers, each delivery received twice, the voided events before or
after."""

from __future__ import annotations

import time

import pytest

from paywire import REAUTHORIZED, Gateway, Money, PaymentService, Subject
from paywire.ledger import Ledger, PaymentState
from paywire.testing.sandbox import Sandbox
from tests.ledger.support import offers_no_capture_and_reconciles

# Tested alone, the core package has no plugin installed.
paywire_paypal = pytest.importorskip(
    "paywire_paypal", reason="needs the PayPal plugin (installed when all packages are tested together)")

DAY = 86400.0
CREATED = "PAYMENT.AUTHORIZATION.CREATED"
VOIDED = "PAYMENT.AUTHORIZATION.VOIDED"


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def _deliver(sandbox: Sandbox, service: PaymentService, event_type: str, resource: str) -> None:
    """PayPal's event of `event_type` about `resource`, received twice; signed by the machine's
    clock, which the verifier checks (PayPal's moved days on)."""
    app = sandbox.app
    event = next(e for e in reversed(app.events) if e["event_type"] == event_type and e["resource"]["id"] == resource)
    body, headers = app.signer.sign(event, app.webhook_id, app.cert_url(), time.time())
    for _ in range(2):
        service.receive_webhook("paypal", headers, body)


def _reauthorize(sandbox: Sandbox, gateway: Gateway, authorization: str, amount: str) -> str:
    """PayPal reauthorizes `authorization` for `amount` beside the service, its clock past the
    honor period; returns the new one."""
    clock = sandbox.app.clock
    sandbox.app.clock = lambda: clock() + 4 * DAY
    return gateway.execute("paypal", "reauthorize", Subject(reference=authorization, amount=eur(amount))).reference


@pytest.mark.parametrize("voided_events", ["before", "after", "none"])
@pytest.mark.parametrize(("captured", "held"), [(None, "40.00"), ("30.00", "70.00")])
def test_the_created_event_of_a_reauthorization_voided_since_replaces_what_the_payment_holds(
    paypal: tuple[Sandbox, Gateway], ledger: Ledger, captured: str | None, held: str, voided_events: str,
) -> None:
    """100.00 authorized through paywire (and reauthorized as it was, `captured` of that through
    paywire), reauthorized beside it for 40.00, the payment voided through paywire; then the reauthorization's created event: the payment
    holds `held`, as PayPal reads it."""
    sandbox, gateway = paypal
    service = PaymentService(gateway, ledger)
    payment = service.authorize("paypal", eur("100.00"), source=sandbox.sources["ok"])
    original = payment.references["authorization"]
    if captured is not None:
        # PayPal reauthorizes no authorization captured in part: the capture is of a first reauthorization.
        _reauthorize(sandbox, gateway, original, "100.00")
        service.reconcile(payment_id=payment.id)
        service.capture(payment.id, eur(captured), final=False)
    renewed = _reauthorize(sandbox, gateway, original, "40.00")
    service.void(payment.id)
    with sandbox.app.lock:
        assert {sandbox.app.authorizations[a].status for a in (original, renewed)} == {"VOIDED"}
    if voided_events == "before":
        for authorization in (original, renewed):
            _deliver(sandbox, service, VOIDED, authorization)
    _deliver(sandbox, service, CREATED, renewed)
    if voided_events == "after":
        for authorization in (original, renewed):
            _deliver(sandbox, service, VOIDED, authorization)

    payment = service.get_payment(payment.id)
    assert (payment.authorized, payment.references["authorization"], payment.references[REAUTHORIZED]) == (
        eur(held), renewed, original)
    assert payment.capturable == Money.zero("EUR")
    if captured is None:
        assert (payment.state, payment.voided) == (PaymentState.VOIDED, True)
    else:
        assert (payment.state, payment.captured, payment.capture_closed) == (
            PaymentState.CAPTURED, eur(captured), True)
    offers_no_capture_and_reconciles(service, sandbox.app.calls, payment.id, eur(held))
