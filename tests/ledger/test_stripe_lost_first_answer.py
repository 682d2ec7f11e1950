"""A Stripe payment whose first answer was lost, settled by reconciliation on each ledger while
Stripe's search index misses the intent (it lags writes, for long during an outage) and the
account made more than 100 intents since: reconciliation must find the intent all the same, or
the ledger records failed a payment Stripe holds. Only a request Stripe truly never applied is
concluded failed, once its life (and Stripe's window) has passed.

The payment is made two hours back, by the service's and by Stripe's clocks alike, so reconcile,
run now, is past the request's `settle_after` without waiting for it.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from paywire import Gateway, Money, Order, OutcomeUnknown, PaymentService, Plugins, Retry, Subject
from paywire.ledger import Ledger
from paywire.ledger.model import TransactionStatus, now
from paywire.testing.emulator import EmulatorServer, Fault
from paywire.testing.sandbox import load_sandbox

paywire_stripe = pytest.importorskip("paywire_stripe", reason="needs the Stripe plugin (the all session has it)")

S = TransactionStatus
BACK = timedelta(hours=2)
LATER_INTENTS = 130  # more than the 100 a single list page holds
CREATE = Fault("drop_after", method="POST", path=r"^/v1/payment_intents$")  # applied, its answer lost
UNANSWERED = Fault("status", status=502, method="POST", path=r"^/v1/payment_intents$")  # a proxy's 502: never applied


class Shop:
    """A payment service on the Stripe emulator, whose search index misses all of the last 3 hours."""

    def __init__(self, ledger: Ledger) -> None:
        sandbox = load_sandbox(paywire_stripe.STRIPE)
        app: Any = sandbox.app  # a StripeEmulator
        app.search_lag = 3 * 3600.0
        self.app = app
        self.server = EmulatorServer(self.app).__enter__()
        plugins = Plugins()
        plugins.register(paywire_stripe, name="stripe")
        self.gateway = Gateway([sandbox.method("stripe", self.server.url)], plugins=plugins, retry=Retry.never())
        self.service = PaymentService(self.gateway, ledger, wait_timeout=5.0)

    def close(self) -> None:
        self.gateway.close()
        self.server.__exit__(None, None, None)

    def busy(self) -> None:
        """Other checkouts of the account, made after the payment."""
        for n in range(LATER_INTENTS):
            self.gateway.execute("stripe", "authorize", Subject(
                amount=Money.of("1.00", "USD"), source="pm_card_visa", order=Order(id=f"other-{n}"),
                idempotency_key=f"other-{n}"))


@pytest.fixture
def shop(ledger: Ledger) -> Iterator[Shop]:
    made = Shop(ledger)
    yield made
    made.close()


def _back_then(shop: Shop, monkeypatch: pytest.MonkeyPatch) -> None:
    """Both clocks two hours back: the service's (its ledger's: what it records, and the deadlines
    it sets) and Stripe's (`created`)."""
    ledger = shop.service.ledger
    ledgers_now, deadline = ledger.now, ledger.deadline
    monkeypatch.setattr(ledger, "now", lambda: ledgers_now() - BACK)
    monkeypatch.setattr(ledger, "deadline", lambda seconds: deadline(seconds) - BACK)
    shop.app.store.clock = lambda: time.time() - BACK.total_seconds()


def _lost_authorize(shop: Shop, key: str) -> str:
    """An authorization whose answer is lost; its transaction's id."""
    with pytest.raises(OutcomeUnknown) as lost:
        shop.service.authorize("stripe", Money.of("30.00", "USD"), source="pm_card_visa", order_id=key,
                               idempotency_key=key)
    return str(lost.value.transaction_id)


def _lost_hours_ago(shop: Shop, monkeypatch: pytest.MonkeyPatch, fault: Fault, key: str) -> str:
    """An authorize under `key` whose answer `fault` lost, made back then and followed by a busy
    account; its transaction, whose request can no longer land now."""
    with monkeypatch.context() as then:
        _back_then(shop, then)
        shop.app.inject(fault)
        lost = _lost_authorize(shop, key)
        shop.busy()
    shop.app.store.clock = time.time
    settle_after = shop.service.get_transaction(lost).settle_after
    assert settle_after is not None and settle_after < now(), "the test's clock shift must pass the request's life"
    return lost


def test_a_lost_authorization_stripe_holds_is_authorized_although_search_and_the_latest_100_miss_it(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    lost = _lost_hours_ago(shop, monkeypatch, CREATE, "lost-held")
    (intent,) = [pi for pi in shop.app.store.payment_intents.values() if pi["metadata"].get(
        "paywire_idempotency_key") == "lost-held"]
    assert intent["status"] == "requires_capture"
    newest = list(shop.app.store.payment_intents)[-100:]
    assert intent["id"] not in newest  # the latest 100 do not hold it

    payment_id = str(shop.service.get_transaction(lost).payment_id)
    report = shop.service.reconcile(payment_id=payment_id)
    txn = shop.service.get_transaction(lost)
    assert (txn.status, txn.provider_reference) == (S.SUCCEEDED, intent["id"]), report
    payment = shop.service.get_payment(payment_id)
    assert (payment.state, payment.authorized) == ("authorized", Money.of("30.00", "USD"))
    assert payment.reference == intent["id"]


def test_an_authorization_stripe_never_applied_is_still_concluded_failed_after_its_life(
    shop: Shop, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A 502 from in front of Stripe: the request never reached it, which paywire cannot tell."""
    lost = _lost_hours_ago(shop, monkeypatch, UNANSWERED, "never-held")
    assert shop.service.get_transaction(lost).status == S.UNKNOWN
    assert not [pi for pi in shop.app.store.payment_intents.values()
                if pi["metadata"].get("paywire_idempotency_key") == "never-held"]

    payment_id = str(shop.service.get_transaction(lost).payment_id)
    shop.service.reconcile(payment_id=payment_id)
    txn = shop.service.get_transaction(lost)
    assert (txn.status, txn.retryable) == (S.FAILED, True)
    assert shop.service.get_payment(payment_id).authorized == Money.zero("USD")
