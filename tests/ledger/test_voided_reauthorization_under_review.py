"""A payment whose authorization PayPal was asked to reauthorize beside paywire, the
reauthorization held PENDING for review, then voided (through paywire or PayPal's dashboard):
PayPal voids the reauthorization with its original, and sends no created event for it. The
order then lists both VOIDED, which PayPal's reading cannot tell from a reauthorization created
and then voided: it reads the reauthorization's amount as what was authorized. The voided event
of the reauthorization says the same, so the ledger holds that once its events are in (each
received twice, in either order), not the original's 100.00 until a reconciliation, and
reconciliation then changes nothing. On both ledgers."""

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
VOIDED = "PAYMENT.AUTHORIZATION.VOIDED"


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def _reviewed(sandbox: Sandbox, gateway: Gateway, authorization: str, amount: str) -> str:
    """PayPal holds a reauthorization of `authorization` for `amount`, asked for beside the
    service past the honor period (PayPal's clock moved, not the machine's), PENDING its review."""
    clock = sandbox.app.clock
    sandbox.app.clock = lambda: clock() + 4 * DAY
    sandbox.app.review_reauthorizations = True
    try:
        renewed = gateway.execute("paypal", "reauthorize", Subject(reference=authorization, amount=eur(amount)))
    finally:
        sandbox.app.review_reauthorizations = False
    with sandbox.app.lock:
        assert sandbox.app.authorizations[renewed.reference].status == "PENDING"
    return renewed.reference


def _deliver(sandbox: Sandbox, service: PaymentService, resource: str) -> None:
    """PayPal's voided event of `resource`, received twice; signed by the machine's clock, which
    the verifier checks (PayPal's moved days on)."""
    app = sandbox.app
    event = next(e for e in app.events if e["event_type"] == VOIDED and e["resource"]["id"] == resource)
    body, headers = app.signer.sign(event, app.webhook_id, app.cert_url(), time.time())
    for _ in range(2):
        service.receive_webhook("paypal", headers, body)


@pytest.mark.parametrize("amount", ["0.01", "40.00"])
@pytest.mark.parametrize("order", ["original-first", "reauthorization-first"])
@pytest.mark.parametrize("voided_by", ["service", "service-after-reconcile", "dashboard"])
def test_a_reauthorization_voided_in_review_leaves_what_paypal_reads(
    paypal: tuple[Sandbox, Gateway], ledger: Ledger, amount: str, order: str, voided_by: str,
) -> None:
    sandbox, gateway = paypal
    service = PaymentService(gateway, ledger)
    payment = service.authorize("paypal", eur("100.00"), source=sandbox.sources["ok"])
    original = payment.references["authorization"]
    renewed = _reviewed(sandbox, gateway, original, amount)
    if voided_by == "dashboard":
        gateway.execute("paypal", "void", Subject(reference=original))
    else:
        if voided_by == "service-after-reconcile":
            assert service.reconcile(payment_id=payment.id).clean  # the ledger learns PayPal reviews it
        assert service.void(payment.id).state == PaymentState.VOIDED
    with sandbox.app.lock:
        assert {sandbox.app.authorizations[a].status for a in (original, renewed)} == {"VOIDED"}
    read = gateway.execute("paypal", "fetch", Subject(reference=payment.reference))
    assert (read.state, read.authorized) == ("voided", eur(amount))  # PayPal's reading of the order

    for authorization in (original, renewed) if order == "original-first" else (renewed, original):
        _deliver(sandbox, service, authorization)
    payment = service.get_payment(payment.id)
    assert (payment.state, payment.voided, payment.authorized) == (PaymentState.VOIDED, True, eur(amount))
    assert (payment.references["authorization"], payment.references[REAUTHORIZED]) == (renewed, original)
    assert payment.capturable == Money.zero("EUR")
    offers_no_capture_and_reconciles(service, sandbox.app.calls, payment.id, eur(amount))
