"""A bank-account sale refunded in the Control Panel, its refund still SETTLEMENT_PENDING when the
customer's bank returns the sale, and the refund settling after: no money the payment held was
given back (the outcome model counts nothing of a refund of a capture the provider undid), so
however the notifications arrive, the ledger ends holding nothing captured or refunded, reconciled
clean, rather than a capture raised to cover the refund that Braintree does not hold."""

from __future__ import annotations

import itertools
from typing import Any

import pytest

from paywire import Money

_FORM = {"content-type": "application/x-www-form-urlencoded"}


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_a_refund_settling_after_its_sale_was_returned_counts_nothing(kept: Any, order: tuple[int, ...]) -> None:
    service, app = kept
    payment = service.sale("braintree", Money.of("100.00", "EUR"), source="paywire-emulator-bank-account-nonce",
                           idempotency_key="sale")
    reference = payment.reference or ""
    app.settle(reference)
    with app.lock:
        refund = app.operations.refund({"transactionId": reference, "refund": {"amount": "0.01"}},
                                       origin="CONTROL_PANEL")
    assert refund.status == "SETTLEMENT_PENDING"
    app.bank_return(reference)
    app.settle(refund.id)
    settled, returned, refunded = app.sent
    bodies = (settled, returned, refunded)
    for index in order:
        service.receive_webhook("braintree", _FORM, bodies[index])
    report = service.reconcile(payment_id=payment.id)
    assert report.clean, report
    ended = service.get_payment(payment.id)
    assert (ended.authorized.minor, ended.captured.minor, ended.refunded.minor) == (0, 0, 0)
    assert service.reconcile(payment_id=payment.id).clean
