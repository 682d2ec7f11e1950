"""Metrics of a shop's own service: commands by outcome, latency per attempt, retries; labels are
codes only."""

from __future__ import annotations

from pathlib import Path

import pytest

from paywire import Declined, Money, OutcomeUnknown, Retry, SQLiteLedger
from paywire.ledger import TransactionStatus
from paywire.serve.metrics import Metrics
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import API_KEY, ClaimsMore, make_gateway
from tests.ledger.support import PATIENT
from tests.serve.support import CountingFakePay, metric


def test_commands_are_counted_by_outcome_with_latency_and_retries(
        provider: tuple[CountingFakePay, str], tmp_path: Path) -> None:
    app, url = provider
    # Every answer but the late ones is needed: a loaded machine's slow answer must not turn into
    # one more retry or unknown. Only the late authorize goes through the short read timeout, and
    # its answer comes 8 s later: it times out however loaded the machine.
    gateway = make_gateway(url, **PATIENT, retry=Retry(total=1, backoff_factor=0))
    hurried = make_gateway(url, read_timeout=2.0, retry=Retry(total=1, backoff_factor=0))
    ledger = SQLiteLedger(tmp_path / "ledger.db")
    service, impatient = PaymentService(gateway, ledger, margin=0), PaymentService(hurried, ledger, margin=0)
    metrics = Metrics()
    metrics.instrument(service)
    metrics.instrument(impatient)
    try:
        payment = service.sale("fakepay", Money.of("10.00", "EUR"), source="tok_ok", order_id="buyer-order-42")
        with pytest.raises(Declined):
            service.authorize("fakepay", Money.of("10.00", "EUR"), source="tok_decline")
        service.sale("fakepay", Money.of("3.00", "EUR"), source="tok_pending")
        app.inject(Fault("status", status=503, path="/v1/payments$", times=1))
        service.authorize("fakepay", Money.of("4.00", "EUR"), source="tok_ok")  # once retried
        app.inject(Fault("latency", seconds=8.0, path="/v1/payments$", times=2))
        with pytest.raises(OutcomeUnknown):
            impatient.authorize("fakepay", Money.of("5.00", "EUR"), source="tok_ok")
    finally:
        gateway.close()
        hurried.close()
        ledger.close()
    text = metrics.exposition().decode()
    counts = {outcome: metric(text, "paywire_operations_total", method="fakepay", outcome=outcome)
              for outcome in ("succeeded", "declined", "accepted_later", "unknown")}
    assert counts == {"succeeded": 2, "declined": 1, "accepted_later": 1, "unknown": 1}
    assert metric(text, "paywire_retries_total", method="fakepay", command="authorize") == 2  # 503, then a timeout
    assert metric(text, "paywire_provider_latency_seconds_count", method="fakepay", command="authorize") == 5
    for secret in (payment.id, payment.reference or "?", "buyer-order-42", API_KEY, "10.00", "tok_ok"):
        assert secret not in text


@pytest.mark.parametrize("cause", ["a 5xx", "an answer claiming more than was asked"])
def test_an_authorize_the_ledger_records_unknown_is_counted_unknown(cause: str, provider: tuple[CountingFakePay, str],
                                                                    tmp_path: Path) -> None:
    """The counter's outcome is the ledger's: a 5xx after the request left may have taken effect,
    and an answer claiming more than was asked cannot say what is held, so the transaction stays
    unknown until reconciliation reads it; a dashboard counting it failed would hide money in
    doubt, one counting it succeeded would count money nobody knows is held."""
    app, url = provider
    claims_more = cause != "a 5xx"
    gateway = make_gateway(url, extra=[ClaimsMore()] if claims_more else [], retry=Retry.never())
    service = PaymentService(gateway, SQLiteLedger(tmp_path / "ledger.db"), margin=0)
    metrics = Metrics()
    metrics.instrument(service)
    try:
        if not claims_more:
            app.inject(Fault("status", status=500, path="/v1/payments$", times=1))
        with pytest.raises(OutcomeUnknown) as raised:
            service.authorize("fakepay", Money.of("4.00", "EUR"), source="tok_ok")
        (txn,) = service.list_transactions(raised.value.payment_id or "")
    finally:
        gateway.close()
        service.ledger.close()
    assert txn.status == TransactionStatus.UNKNOWN
    text = metrics.exposition().decode()
    assert metric(text, "paywire_operations_total", method="fakepay", outcome="unknown") == 1
    assert metric(text, "paywire_operations_total", method="fakepay", outcome="failed") == 0
    assert metric(text, "paywire_operations_total", method="fakepay", outcome="succeeded") == 0


def test_a_payment_the_janitor_caught_up_is_counted_on_metrics(
        provider: tuple[CountingFakePay, str], tmp_path: Path) -> None:
    """A void refused because the authorization lapsed at the provider, whose read then failed:
    the payment owes a read. The Janitor's pass that reads it counts it, and /metrics says so."""
    from paywire import PaywireError
    from paywire.ledger.model import Look
    from paywire.serve import Janitor
    from paywire.serve.app import serve_app
    from tests.serve.servers import uvicorn_server
    from tests.serve.test_endpoints import send

    app, url = provider
    gateway = make_gateway(url, **PATIENT)  # every answer is needed; nothing's life is waited out
    service = PaymentService(gateway, SQLiteLedger(tmp_path / "ledger.db"), margin=0)
    metrics = Metrics()
    try:
        payment = service.authorize("fakepay", Money.of("10.00", "EUR"), source="tok_ok")
        app.lapse(payment.reference or "")
        app.inject(Fault("status", status=500, method="GET", path=r"^/v1/payments/[^/]+$", times=1_000))
        with pytest.raises(PaywireError) as refused:
            service.void(payment.id)
        assert refused.value.state_conflict and refused.value.details["reconciled"] is False
        app.clear_faults()
        with service.ledger.unit() as u:  # due now, its read's lease over as far as the schedule knows
            u.set_owed_read(payment.id, Look(0, u.now()))
        janitor = Janitor(service, on_pass=metrics.reconcile_pass)
        with uvicorn_server(serve_app(service, janitor=None, metrics=metrics)) as port:
            before = send(port, "GET", "/metrics")[2].decode()
            report = janitor.run_pass()
            after = send(port, "GET", "/metrics")[2].decode()
    finally:
        gateway.close()
        service.ledger.close()
    assert report.caught_up == (payment.id,) and not report.errors, report
    assert metric(before, "paywire_reconcile_caught_up_total") == 0
    assert metric(after, "paywire_reconcile_caught_up_total") == 1
