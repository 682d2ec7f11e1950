"""3-D Secure for a payment confirmed without a `return_url`: Stripe leaves the challenge to its
client SDK (`next_action.type` `use_stripe_sdk`), not a redirect. The payment waits on its
PaymentIntent, so that Stripe's events, `complete` and `reconcile` find and settle it; the shop gets
the intent's client secret (what Stripe.js's `handleNextAction` takes) in the answer only: the
ledger, the logs and reprs never hold it."""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from paywire import Money, PaymentService
from paywire.ledger import PaymentState, TransactionStatus
from paywire_stripe.sandbox import handle_next_action

THREE_D_SECURE = "pm_card_threeDSecure2Required"

Deliver = Callable[[set[str]], list[str]]  # the deliver_all fixture


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def _start(service: PaymentService, operation: str, amount: str = "20.00") -> Any:
    start = service.authorize if operation == "authorize" else service.sale
    return start("stripe", eur(amount), source=THREE_D_SECURE)  # no return_url: nowhere to send the buyer back


def _buyer_authenticates(app: Any, succeed: bool = True) -> None:
    """The buyer passes (or fails) 3-D Secure in Stripe.js, with the client secret of the one intent."""
    (intent,) = app.store.payment_intents.values()
    handle_next_action(app, intent["client_secret"], succeed=succeed)


def _ledger_text(path: Path) -> str:
    """Every row of every table of the ledger, as text."""
    with sqlite3.connect(path) as db:
        tables = [row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
        return "\n".join(repr(row) for table in tables for row in db.execute(f'SELECT * FROM "{table}"'))


@pytest.mark.parametrize("operation", ["authorize", "sale"])
def test_a_payment_left_to_stripe_js_waits_on_its_intent_and_its_client_secret_is_only_in_the_answer(
        service: PaymentService, app: Any, tmp_path: Path, caplog: Any, operation: str) -> None:
    caplog.set_level(logging.DEBUG)
    payment = _start(service, operation)
    assert payment.state == PaymentState.ACTION_REQUIRED
    assert payment.reference is not None and payment.reference.startswith("pi_")
    intent = app.get(payment.reference)
    assert (intent["status"], intent["next_action"]["type"]) == ("requires_action", "use_stripe_sdk")
    assert payment.action is not None and payment.action.kind == "use_stripe_sdk"
    secret = intent["client_secret"]
    assert payment.action.client_secret == secret  # what the shop hands to Stripe.js
    (txn,) = service.list_transactions(payment.id)
    assert (txn.status, txn.provider_reference) == (TransactionStatus.ACTION_REQUIRED, payment.reference)
    stored = service.get_payment(payment.id)
    assert stored.state == PaymentState.ACTION_REQUIRED and stored.reference == payment.reference
    assert stored.action is not None and stored.action.kind == "use_stripe_sdk"
    assert stored.action.client_secret is None and stored == payment
    for shown in (repr(payment), str(payment.action), repr(txn), _ledger_text(tmp_path / "ledger.db"), caplog.text):
        assert secret not in shown


@pytest.mark.parametrize("operation, succeed", [("authorize", True), ("sale", True), ("authorize", False)])
def test_stripes_events_after_the_buyer_acted_in_stripe_js_settle_the_payment(
        service: PaymentService, app: Any, operation: str, succeed: bool, deliver_all: Deliver) -> None:
    seen: set[str] = set()
    payment = _start(service, operation)
    deliver_all(seen)
    _buyer_authenticates(app, succeed)
    assert "unmatched" not in deliver_all(seen)
    settled = service.get_payment(payment.id)
    assert settled.action is None
    if not succeed:
        assert (settled.state, settled.authorized) == (PaymentState.FAILED, eur("0.00"))
    elif operation == "authorize":
        assert (settled.state, settled.authorized) == (PaymentState.AUTHORIZED, eur("20.00"))
        settled = service.capture(payment.id, eur("15.00"))
        assert (settled.state, settled.captured) == (PaymentState.CAPTURED, eur("15.00"))
    else:
        assert (settled.state, settled.captured) == (PaymentState.CAPTURED, eur("20.00"))
    deliver_all(seen)
    assert service.reconcile(payment_id=payment.id).clean


def test_complete_waits_for_the_buyer_then_finishes_the_payment(service: PaymentService, app: Any) -> None:
    payment = _start(service, "authorize")
    waiting = service.complete(payment.id)  # the buyer has not authenticated yet
    assert waiting.state == PaymentState.ACTION_REQUIRED and waiting.reference == payment.reference
    assert waiting.action is not None and waiting.action.kind == "use_stripe_sdk"
    _buyer_authenticates(app)
    done = service.complete(payment.id)
    assert (done.state, done.authorized, done.action) == (PaymentState.AUTHORIZED, eur("20.00"), None)
    assert service.capture(payment.id).captured == eur("20.00")


def test_reconcile_reads_what_the_buyer_did_in_stripe_js(service: PaymentService, app: Any) -> None:
    payment = _start(service, "sale")
    assert service.reconcile(payment_id=payment.id).clean
    assert service.get_payment(payment.id).state == PaymentState.ACTION_REQUIRED
    _buyer_authenticates(app)
    service.reconcile(payment_id=payment.id)
    done = service.get_payment(payment.id)
    assert (done.state, done.captured, done.action) == (PaymentState.CAPTURED, eur("20.00"), None)
