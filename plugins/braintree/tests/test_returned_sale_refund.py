"""A bank-account sale refunded in the Control Panel, its refund still SETTLEMENT_PENDING when the
customer's bank returns the sale, and the refund settling after: no money the payment held was
given back (the outcome model counts nothing of a refund of a capture the provider undid), so
however the notifications arrive, the ledger ends holding nothing captured or refunded, reconciled
clean, rather than a capture raised to cover the refund that Braintree does not hold."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from pathlib import Path

import pytest

import paywire_braintree
from paywire import Gateway, Money, PaymentService, Plugins, Retry
from paywire.ledger.url import open_ledger
from paywire.testing.emulator import EmulatorServer
from paywire.testing.sandbox import load_sandbox
from paywire_braintree.emulator import BraintreeEmulator

_FORM = {"content-type": "application/x-www-form-urlencoded"}


class _Kept(BraintreeEmulator):
    """The emulator keeping its notifications for the test to deliver in the order it likes."""

    def __init__(self, public_key: str, private_key: str) -> None:
        super().__init__(public_key, private_key, settlement="batch")
        self.webhook_url = "http://127.0.0.1:9/kept"  # never posted: kept below
        self.sent: list[bytes] = []

    def deliver_webhook(self, body: bytes, headers: object) -> None:
        self.sent.append(body)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def served(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[PaymentService, _Kept]]:
    url = f"sqlite:///{tmp_path / 'ledger.db'}" if request.param == "sqlite" else request.getfixturevalue("ledger_url")
    sandbox = load_sandbox(paywire_braintree.BRAINTREE)
    assert isinstance(sandbox.app, BraintreeEmulator)
    app = _Kept(sandbox.app.public_key, sandbox.app.private_key)
    plugins = Plugins()
    plugins.register(paywire_braintree)
    ledger = open_ledger(url)
    try:
        with EmulatorServer(app) as server, Gateway([sandbox.method("braintree", server.url)], plugins=plugins,
                                                    retry=Retry.never()) as gateway:
            yield PaymentService(gateway, ledger), app
    finally:
        ledger.close()


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_a_refund_settling_after_its_sale_was_returned_counts_nothing(
        served: tuple[PaymentService, _Kept], order: tuple[int, ...]) -> None:
    service, app = served
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
