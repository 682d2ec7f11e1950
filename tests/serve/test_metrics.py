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
from tests.serve.support import CountingFakePay, metric


def test_commands_are_counted_by_outcome_with_latency_and_retries(
        provider: tuple[CountingFakePay, str], tmp_path: Path) -> None:
    app, url = provider
    gateway = make_gateway(url, read_timeout=2.0, retry=Retry(total=1, backoff_factor=0))
    service = PaymentService(gateway, SQLiteLedger(tmp_path / "ledger.db"), margin=0)
    metrics = Metrics()
    metrics.instrument(service)
    try:
        payment = service.sale("fakepay", Money.of("10.00", "EUR"), source="tok_ok", order_id="buyer-order-42")
        with pytest.raises(Declined):
            service.authorize("fakepay", Money.of("10.00", "EUR"), source="tok_decline")
        service.sale("fakepay", Money.of("3.00", "EUR"), source="tok_pending")
        app.inject(Fault("status", status=503, path="/v1/payments$", times=1))
        service.authorize("fakepay", Money.of("4.00", "EUR"), source="tok_ok")  # once retried
        app.inject(Fault("latency", seconds=8.0, path="/v1/payments$", times=2))
        with pytest.raises(OutcomeUnknown):
            service.authorize("fakepay", Money.of("5.00", "EUR"), source="tok_ok")
    finally:
        gateway.close()
        service.ledger.close()
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
