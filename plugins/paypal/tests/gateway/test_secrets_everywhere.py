"""No secret and no card number shows anywhere a person or another system can see: the payment
service driving the emulator through its happy and unhappy paths (an OAuth token refused on
renewal among them) with DEBUG logging on, then everything it showed searched (log records,
every error raised, every object returned, the webhook endpoint's answers, and the whole ledger
file, every table and row)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from paywire import Money, PaymentService, PaywireError, SQLiteLedger
from paywire.testing.emulator import Fault
from paywire.testing.leaks import LeakWatch
from paywire.web import handle_webhook
from paywire_paypal.emulator.sandbox import approve_as_buyer

from .conftest import CLIENT_ID, CLIENT_SECRET, RETURN_URL, WEBHOOK_ID

CARDS = ("4111111111111111", "5555555555554444")
WRONG_SECRET = "wrong-client-secret-7f3a1c"
TOKEN = "/v1/oauth2/token"


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def test_nothing_secret_shows_in_logs_errors_results_answers_or_the_ledger(paypal: Any, tmp_path: Path) -> None:
    watch = LeakWatch()
    run = watch.call
    ledger = SQLiteLedger(tmp_path / "ledger.db")
    service = PaymentService(paypal.gateway, ledger, wait_timeout=5.0)
    wrong = PaymentService(
        paypal.gateway_with(
            credentials={"client_id": CLIENT_ID, "client_secret": WRONG_SECRET, "webhook_id": WEBHOOK_ID}
        ),
        ledger,
    )
    with watch.watching():
        started = run(service.authorize, "paypal", eur("50.00"), source="paypal", return_url=RETURN_URL)
        approve_as_buyer(started.action.redirect_url)
        run(service.complete, started.id)
        run(service.capture, started.id, eur("20.00"))
        run(service.refund, started.id)
        run(service.sale, "paypal", eur("30.00"), source=paypal.app.vault_card())
        for refused in ({"source": CARDS[0]}, {"source": "paypal", "order_id": "5555-5555-5555-4444"}):
            error = run(service.authorize, "paypal", eur("15.00"), return_url=RETURN_URL, **refused)
            assert isinstance(error, PaywireError) and error.code == "raw_card_number", refused
        paypal.app.expire_tokens()  # the next call renews its token, and PayPal refuses the renewal
        paypal.app.inject(Fault(kind="status", status=401, path=TOKEN))
        run(service.sale, "paypal", eur("31.00"), source=paypal.app.vault_card())
        paypal.app.expire_tokens()
        paypal.app.inject(Fault(kind="status", status=500, path=TOKEN))
        run(service.sale, "paypal", eur("32.00"), source=paypal.app.vault_card())
        paypal.app.inject(Fault(kind="status", status=500))
        run(service.sale, "paypal", eur("33.00"), source=paypal.app.vault_card())
        paypal.app.inject(Fault(kind="drop_after", method="POST"))
        run(service.sale, "paypal", eur("34.00"), source=paypal.app.vault_card())
        watch.note_repr("a reconciliation report", service.reconcile())
        run(wrong.sale, "paypal", eur("35.00"), source=paypal.app.vault_card())
        for event in list(paypal.app.events):
            body, headers = paypal.app.signed_event(event)
            for sent in (body, body.replace(b'"EUR"', b'"USD"')):  # genuine, then tampered with
                watch.note("the webhook endpoint's answer", repr(handle_webhook(service, "paypal", headers, sent)))
        watch.note_reads(service)
    ledger.close()
    watch.note_sqlite(tmp_path / "ledger.db")
    tokens = list(paypal.app.tokens)
    assert tokens
    findings = watch.leaks([CLIENT_SECRET, WRONG_SECRET, *tokens, *CARDS])
    assert not findings, "secrets showed:\n" + "\n".join(findings)
