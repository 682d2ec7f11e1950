"""No secret and no card number shows anywhere a person or another system can see: the payment
service driving the emulator through its happy and unhappy paths with DEBUG logging on, then
everything it showed searched (log records, every error raised, every object returned, the
webhook endpoint's answers, and the whole ledger file, every table and row)."""

from __future__ import annotations

from pathlib import Path

import paywire_braintree
from paywire import Gateway, Money, PaymentService, PaywireError, Plugins, Retry, SQLiteLedger
from paywire.testing.emulator import EmulatorServer, Fault
from paywire.testing.leaks import LeakWatch
from paywire.testing.sandbox import Sandbox
from paywire.web import handle_webhook
from paywire_braintree.emulator import BraintreeEmulator
from paywire_braintree.emulator.webhooks import notification_body

CARDS = ("5555555555554444", "4111111111111111")
WRONG_KEY = "wrong-private-key-6b2e91d4"
FORM = {"Content-Type": "application/x-www-form-urlencoded"}


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def test_nothing_secret_shows_in_logs_errors_results_answers_or_the_ledger(
    sandbox: Sandbox,
    emulator: BraintreeEmulator,
    tmp_path: Path,
) -> None:
    watch = LeakWatch()
    run = watch.call
    plugins = Plugins()
    plugins.register(paywire_braintree)
    wrong_credentials = {"public_key": emulator.public_key, "private_key": WRONG_KEY}
    ledger = SQLiteLedger(tmp_path / "ledger.db")
    with (
        EmulatorServer(emulator) as server,
        Gateway([sandbox.method("braintree", server.url)], plugins=plugins, retry=Retry.never()) as gateway,
        Gateway(
            [sandbox.method("braintree", server.url, credentials=wrong_credentials)],
            plugins=plugins,
            retry=Retry.never(),
        ) as wrong_gateway,
        watch.watching(),
    ):
        service = PaymentService(gateway, ledger)
        paid = run(service.authorize, "braintree", eur("10.00"), source="fake-valid-nonce")
        run(service.capture, paid.id)
        run(service.authorize, "braintree", eur("11.00"), source="fake-processor-declined-visa-nonce")
        run(service.authorize, "braintree", eur("12.00"), source="not-a-nonce")  # a validation error
        for refused in ({"source": CARDS[0]}, {"source": "fake-valid-nonce", "order_id": "4111 1111 1111 1111"}):
            error = run(service.authorize, "braintree", eur("13.00"), **refused)
            assert isinstance(error, PaywireError) and error.code == "raw_card_number", refused
        emulator.inject(Fault(kind="status", status=500))
        run(service.authorize, "braintree", eur("14.00"), source="fake-valid-nonce")
        emulator.inject(Fault(kind="drop_after"))
        run(service.authorize, "braintree", eur("15.00"), source="fake-valid-nonce")
        watch.note_repr("a reconciliation report", service.reconcile())
        run(PaymentService(wrong_gateway, ledger).authorize, "braintree", eur("16.00"), source="fake-valid-nonce")
        transaction = emulator.operations.transaction(paid.reference)
        genuine = notification_body(emulator.public_key, emulator.private_key, "transaction_settled", transaction)
        forged = notification_body(emulator.public_key, WRONG_KEY, "transaction_settled", transaction)
        for body in (genuine, forged, genuine.replace(b"bt_signature=", b"bt_signature=0")):
            watch.note("the webhook endpoint's answer", repr(handle_webhook(service, "braintree", FORM, body)))
        watch.note_reads(service)
    ledger.close()
    watch.note_sqlite(tmp_path / "ledger.db")
    findings = watch.leaks([emulator.private_key, WRONG_KEY, *CARDS])
    assert not findings, "secrets showed:\n" + "\n".join(findings)
