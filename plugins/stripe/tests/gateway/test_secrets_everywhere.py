"""No secret and no card number shows anywhere a person or another system can see: the payment
service driving the emulator through its happy and unhappy paths with DEBUG logging on, then
everything it showed searched (log records, every error raised, every object returned, the
webhook endpoint's answers, and the whole ledger file, every table and row)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from paywire import Gateway, Money, PaymentService, PaywireError, SQLiteLedger
from paywire.testing.emulator import Fault
from paywire.testing.leaks import LeakWatch
from paywire.web import handle_webhook
from paywire_stripe.emulator import StripeEmulator
from paywire_stripe.sandbox import pass_challenge

CARDS = ("4242424242424242", "4000002760003184", "5555555555554444")
WRONG_KEY = "sk_test_wrong0123456789"


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def stripe_secrets(app: StripeEmulator) -> list[str]:
    """Every client secret the emulator handed out: the intents' and the 3-D Secure pages'."""
    intents = [intent["client_secret"] for intent in app.store.payment_intents.values() if intent.get("client_secret")]
    pages = re.findall(r"src_client_secret_[0-9A-Za-z]+", repr(vars(app.store)))
    assert intents and pages
    return [*intents, *pages]


def test_nothing_secret_shows_in_logs_errors_results_answers_or_the_ledger(
    gateway_at: Callable[..., Gateway],
    gateway: Gateway,
    app: StripeEmulator,
    tmp_path: Path,
    api_key: str,
    webhook_secret: str,
    server: Any,
) -> None:
    watch = LeakWatch()
    run = watch.call
    ledger = SQLiteLedger(tmp_path / "ledger.db")
    service = PaymentService(gateway, ledger, wait_timeout=5.0)
    wrong = PaymentService(
        gateway_at(server.url, credentials={"secret_key": WRONG_KEY, "webhook_secret": webhook_secret}), ledger
    )
    with watch.watching():
        paid = run(service.authorize, "stripe", eur("10.00"), source="pm_card_visa", order_id="S-1")
        run(service.capture, paid.id, eur("6.00"))
        run(service.refund, paid.id)
        challenged = run(
            service.authorize,
            "stripe",
            eur("11.00"),
            source="pm_card_threeDSecure2Required",
            return_url="https://shop.example/return",
        )
        pass_challenge(challenged.action.redirect_url)
        run(service.complete, challenged.id)
        by_sdk = run(service.authorize, "stripe", eur("12.00"), source="pm_card_threeDSecure2Required")
        assert by_sdk.action.client_secret, "the caller's Stripe.js needs it from this answer"
        run(service.authorize, "stripe", eur("13.00"), source="pm_card_chargeDeclined")
        run(service.authorize, "stripe", eur("14.00"), source="pm_missing_4242")  # Stripe's 404 quotes it
        for refused in (
            {"source": CARDS[0]},
            {"source": "pm_card_visa", "order_id": "4000 0027 6000 3184"},
            {"source": "pm_card_visa", "return_url": "https://shop.example/r?n=5555%205555%205555%204444"},
        ):
            error = run(service.authorize, "stripe", eur("15.00"), **refused)
            assert isinstance(error, PaywireError) and error.code == "raw_card_number", refused
        app.inject(Fault(kind="status", status=500))
        run(service.authorize, "stripe", eur("16.00"), source="pm_card_visa")
        app.inject(Fault(kind="drop_after"))
        run(service.authorize, "stripe", eur("17.00"), source="pm_card_visa")
        watch.note_repr("a reconciliation report", service.reconcile())
        run(service.vault, "stripe", "pm_card_visa")
        run(wrong.authorize, "stripe", eur("18.00"), source="pm_card_visa")
        for event_id in list(app.store.events):
            body, headers = app.signed_event(event_id)
            for sent in (body, body + b" "):  # genuine, then one whose signature no longer matches
                watch.note("the webhook endpoint's answer", repr(handle_webhook(service, "stripe", headers, sent)))
        watch.note_reads(service)
    ledger.close()
    watch.note_sqlite(tmp_path / "ledger.db")
    findings = watch.leaks([api_key, webhook_secret, WRONG_KEY, *stripe_secrets(app), *CARDS])
    assert not findings, "secrets showed:\n" + "\n".join(findings)


@pytest.mark.parametrize("shown", [repr, str])
def test_a_redirect_shows_no_client_secret(service: PaymentService, shown: Callable[[object], str]) -> None:
    """Stripe's 3-D Secure redirect carries the client secret of its page: the payment holds it
    for the caller to send the buyer there, its repr (as any log line of it) masks it."""
    payment = service.authorize(
        "stripe", eur("10.00"), source="pm_card_threeDSecure2Required", return_url="https://shop.example/return"
    )
    assert payment.action is not None and "_secret_" in payment.action.redirect_url
    assert "_secret_" not in shown(payment) and "_secret_" not in shown(payment.action)
    assert "client_secret=***" in shown(payment.action)


def test_the_command_line_prints_no_secret(
    app: StripeEmulator, server: Any, tmp_path: Path, api_key: str, webhook_secret: str
) -> None:
    """What `paywire` prints, on stdout or stderr, for payments, errors, lists and webhooks
    (Stripe's events carry the intent's client secret) holds no credential, client secret or
    card number."""
    script = shutil.which("paywire", path=os.path.dirname(sys.executable))
    assert script, "the paywire console script is not installed"
    (tmp_path / "paywire.toml").write_text(
        f'[paywire]\nledger = "sqlite:///{tmp_path / "ledger.db"}"\n\n'
        f'[methods.stripe]\nprovider = "stripe"\nbase_url = "{server.url}"\n'
        'environment = "sandbox"\n'
    )
    environment = {k: v for k, v in os.environ.items() if not k.startswith("PAYWIRE_")}
    good = {**environment, "PAYWIRE_STRIPE_SECRET_KEY": api_key, "PAYWIRE_STRIPE_WEBHOOK_SECRET": webhook_secret}
    printed: list[tuple[str, str]] = []

    def paywire(*args: str, env: dict[str, str] = good) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([script, *args], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120)
        printed.extend(
            [(f"stdout of paywire {' '.join(args)}", done.stdout), (f"stderr of paywire {' '.join(args)}", done.stderr)]
        )
        return done

    paid = json.loads(paywire("--json", "sale", "stripe", "10.00", "EUR", "--source", "pm_card_visa").stdout)
    waiting = paywire("--json", "authorize", "stripe", "11.00", "EUR", "--source", "pm_card_threeDSecure2Required")
    assert waiting.returncode == 8, waiting.stderr  # left to Stripe.js: its client secret is the caller's alone
    paywire("sale", "stripe", "12.00", "EUR", "--source", "pm_card_chargeDeclined")
    paywire("sale", "stripe", "13.00", "EUR", "--source", CARDS[0])
    paywire("sale", "stripe", "13.00", "EUR", "--source", "pm_card_visa", "--order-id", "4000-0027-6000-3184")
    paywire(
        "sale",
        "stripe",
        "14.00",
        "EUR",
        "--source",
        "pm_card_visa",
        env={**good, "PAYWIRE_STRIPE_SECRET_KEY": WRONG_KEY},
    )
    for listing in (
        ("show", paid["id"]),
        ("--json", "show", paid["id"]),
        ("payments",),
        ("--json", "payments"),
        ("transactions", paid["id"]),
        ("reconcile",),
    ):
        paywire(*listing)
    signed = [app.signed_event(event_id) for event_id in list(app.store.events)]
    with_secrets = [(body, headers) for body, headers in signed if b"_secret_" in body][:2]
    assert with_secrets
    for number, (body, headers) in enumerate(with_secrets):
        (tmp_path / f"event-{number}.json").write_bytes(body)
        (tmp_path / f"event-{number}.headers").write_text(json.dumps(headers))
        (tmp_path / f"forged-{number}.json").write_bytes(body + b" ")
        for sent in (f"event-{number}.json", f"forged-{number}.json"):
            paywire("--json", "verify-webhook", "stripe", sent, "--headers", f"event-{number}.headers")
    verified = [text for where, text in printed if "stdout of paywire --json verify-webhook" in where]
    assert [text for text in verified if '"type": "payment_intent.' in text], verified
    watch = LeakWatch()
    for where, text in printed:
        watch.note(where, text)
    intents = [intent["client_secret"] for intent in app.store.payment_intents.values()]
    findings = watch.leaks([api_key, webhook_secret, WRONG_KEY, *intents, *CARDS])
    assert not findings, "secrets showed:\n" + "\n".join(findings)
