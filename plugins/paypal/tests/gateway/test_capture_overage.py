"""PayPal lets a capture take up to 115% of its authorization (`capture_overage_percent`); made
outside paywire (the dashboard), the ledger then holds more authorized than PayPal reports."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import Money, PaymentService


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


@pytest.mark.xfail(strict=True, reason=(
    "design decision pending: the ledger keeps captured <= authorized, so a capture above the "
    "authorization (PayPal's overage) raises the ledger's authorized past PayPal's, and every "
    "reconciliation reports that mismatch; whether PayPal's authorized should count the overage, "
    "or the ledger allow captured > authorized, is not decided"))
def test_a_dashboard_capture_over_the_authorization_leaves_the_ledger_as_paypal_holds_it(
    paypal: Any, service: PaymentService
) -> None:
    payment = service.authorize("paypal", eur("100.00"), source=paypal.app.vault_card(), idempotency_key=paypal.key())
    paypal.run("capture", reference=payment.references["authorization"], amount=eur("100.01"), final=True,
               idempotency_key=paypal.key())
    paypal.deliver(service, "PAYMENT.CAPTURE.COMPLETED")
    report = service.reconcile(payment_id=payment.id)
    held = paypal.run("fetch", reference=payment.reference)
    later = service.get_payment(payment.id)
    assert (later.authorized, later.captured) == (held.authorized, held.captured), report
    assert report.clean, report
