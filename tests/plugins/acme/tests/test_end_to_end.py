"""A third-party plugin, pip-installed, discovered through its entry point and run end to end
against its emulator over real HTTP, with another installed plugin extending its requests."""

from __future__ import annotations

import json

import pytest

import paywire_acme
from paywire import (
    Declined,
    Gateway,
    MethodConfig,
    Money,
    OutcomeUnknown,
    PaymentService,
    Plugins,
    Response,
    Result,
    SQLiteLedger,
    Subject,
    hookimpl,
)
from paywire.testing.emulator import EmulatorServer, Fault, Reply
from paywire_acme.emulator import AcmeEmulator


@pytest.fixture
def acme():
    app = AcmeEmulator()
    with EmulatorServer(app) as server:
        yield app, server.url


def test_discovered_and_run_without_touching_the_core(acme) -> None:
    app, url = acme
    plugins = Plugins().load_entry_points()
    assert {"acme", "acme_tagger"} <= {info.name for info in plugins.loaded}
    assert plugins.owner("acme").distribution == "paywire-acme"
    gateway = Gateway([MethodConfig(code="acme", base_url=url, credentials={"api_key": "acme_test_key", "webhook_secret": "acme_whsec"})],
                      plugins=plugins)

    auth = gateway.execute("acme", "authorize", Subject(amount=Money.of("30.00", "EUR"), source="tok_ok", idempotency_key="e2e-1"))
    assert auth.state == "authorized" and auth.authorized == Money.of("30.00", "EUR")
    assert app.payments[auth.reference]["metadata"] == {"channel": "web-shop"}  # added by paywire-acme-tagger

    capture = gateway.execute("acme", "capture", Subject(reference=auth.reference, amount=Money.of("10.00", "EUR"), final=False, idempotency_key="e2e-2"))
    assert capture.amount == Money.of("10.00", "EUR") and capture.state == "partially_captured"
    refund = gateway.execute("acme", "refund", Subject(reference=auth.reference, amount=Money.of("4.00", "EUR"), idempotency_key="e2e-3"))
    assert refund.amount == Money.of("4.00", "EUR")
    fetched = gateway.execute("acme", "fetch", Subject(reference=auth.reference))
    assert (fetched.captured, fetched.refunded) == (Money.of("10.00", "EUR"), Money.of("4.00", "EUR"))

    with pytest.raises(Declined) as caught:
        gateway.execute("acme", "sale", Subject(amount=Money.of("1.00", "EUR"), source="tok_decline"))
    assert caught.value.decline_code is None or caught.value.code in ("card_declined", "insufficient_funds")

    body, headers = app.events[-1]
    event = gateway.parse_webhook("acme", headers, body)
    assert event.kind == "refunded" and event.reference == auth.reference
    assert json.loads(body)["type"] == "payment.refunded"


class CutAnswers(AcmeEmulator):
    """Acme, with the body of every successful payment creation cut short on the way back (a
    proxy or a dropped connection mid-body): the payment is made, its answer is not JSON."""

    def answer(self, request):  # type: ignore[no-untyped-def]
        reply, drop = super().answer(request)
        if reply is not None and request.path == "/v1/payments" and reply.status == 200:
            reply = Reply(200, reply.body[: len(reply.body) // 2], {"Content-Type": "application/json"})
        return reply, drop


def test_a_2xx_answer_the_validator_cannot_read_leaves_the_payment_unknown_never_failed(tmp_path) -> None:
    app = CutAnswers()
    plugins = Plugins()
    plugins.register(paywire_acme)
    with EmulatorServer(app) as server, Gateway(
        [MethodConfig(code="acme", base_url=server.url, credentials={"api_key": "acme_test_key"})], plugins=plugins,
    ) as gateway:
        service = PaymentService(gateway, SQLiteLedger(str(tmp_path / "ledger.db")))
        try:
            with pytest.raises(OutcomeUnknown):
                service.authorize("acme", Money.of("30.00", "EUR"), source="tok_ok", idempotency_key="cut-1")
            (txn,) = service.list_transactions()
            assert txn.status == "unknown", "Acme authorized it: never recorded as failed"
            assert len(app.payments) == 1
            service.reconcile(payment_id=txn.payment_id)
            assert service.get_payment(txn.payment_id or "").authorized == Money.of("30.00", "EUR")
        finally:
            service.ledger.close()


class RefuseAsDeclined:
    """A shop's fraud policy (a `validate_response` hook) that names its refusal as Acme names a
    decline, `card_declined`: a code the Acme plugin's error table maps to `Declined`."""

    @hookimpl
    def validate_response(self, response: Response) -> Result | None:
        return Result.failure("the shop's fraud policy refuses this payment", "card_declined") if response.ok else None


def test_a_success_a_policy_refuses_under_a_decline_code_of_the_providers_table_is_unknown(acme, tmp_path) -> None:
    """Acme answered its success (the payment is made): the refusal's code, whatever the error
    table maps it to, is no evidence that it was not, so it is never recorded failed."""
    app, url = acme
    plugins = Plugins()
    plugins.register(paywire_acme)
    plugins.register(RefuseAsDeclined(), name="policy")
    with Gateway([MethodConfig(code="acme", base_url=url, credentials={"api_key": "acme_test_key"})],
                 plugins=plugins) as gateway, SQLiteLedger(str(tmp_path / "ledger.db")) as ledger:
        service = PaymentService(gateway, ledger)
        with pytest.raises(OutcomeUnknown) as refused:
            service.sale("acme", Money.of("30.00", "EUR"), source="tok_ok", idempotency_key="refused-1")
        assert refused.value.code == "card_declined" and len(app.payments) == 1
        (txn,) = service.list_transactions()
        assert txn.status == "unknown", "Acme made the payment: never recorded as failed"


def test_a_capture_replayed_after_acme_refunded_it_is_read_by_the_next_reconcile(acme, tmp_path) -> None:
    """The capture's answer is lost; Acme refunds the payment (its dashboard); the same call sent
    again gets Acme's stored answer to the first attempt (captured, nothing refunded), and the
    read after it fails. The ledger then claims a refundable capture Acme no longer holds, until
    the next `reconcile()`, which names no payment: the payment owes that read."""
    app, url = acme
    plugins = Plugins()
    plugins.register(paywire_acme)
    eur = Money.of("30.00", "EUR")
    with Gateway([MethodConfig(code="acme", base_url=url, credentials={"api_key": "acme_test_key"})],
                 plugins=plugins) as gateway, SQLiteLedger(str(tmp_path / "ledger.db")) as ledger:
        service = PaymentService(gateway, ledger)
        payment = service.authorize("acme", eur, source="tok_ok", idempotency_key="replayed-auth")
        app.inject(Fault(kind="drop_after", method="POST", path=r"/capture$", times=10))  # every attempt
        with pytest.raises(OutcomeUnknown):
            service.capture(payment.id, eur, idempotency_key="replayed-capture")
        app.clear_faults()
        gateway.execute("acme", "refund", Subject(reference=payment.reference, amount=eur, idempotency_key="dashboard"))
        app.inject(Fault(kind="status", status=500, method="GET", path=r"^/v1/payments/[^/]+$", times=100))
        payment = service.capture(payment.id, eur, idempotency_key="replayed-capture")
        assert (payment.captured, payment.refunded) == (eur, Money.zero("EUR"))  # the replay, as recorded
        app.clear_faults()
        report = service.reconcile()
        payment = service.get_payment(payment.id)
        assert (payment.captured, payment.refunded, payment.refundable) == (eur, eur, Money.zero("EUR"))
        assert report.caught_up == (payment.id,) and report.clean, report
