"""PayPal's webhooks through `paywire serve`'s application on uvicorn over loopback: a money event
whose confirming read from PayPal fails was not refused, and is counted as what it is."""

from __future__ import annotations

import json

import pytest

pytest.importorskip("paywire_paypal", reason="the PayPal plugin these tests are of")
pytest.importorskip("uvicorn", reason="paywire serve's server: a test tool of the core and all sessions only")
pytest.importorskip("prometheus_client", reason="paywire serve's metrics: a test tool of the core and all sessions only")

from paywire import Money, PaymentService
from paywire.serve.app import serve_app
from paywire.serve.metrics import Metrics
from paywire.testing.emulator import Fault
from tests.serve.servers import uvicorn_server
from tests.serve.support import metric
from tests.serve.test_endpoints import send

from .conftest import PayPal
from .test_webhook_verification import delivered


def test_an_event_paypal_could_not_be_read_to_confirm_is_counted_unavailable_not_refused(
        paypal: PayPal, service: PaymentService) -> None:
    """503 `verification_unavailable`: not stored, and PayPal delivers it again (which applies it
    once PayPal answers). A dashboard of refusals (forged or broken deliveries) must not count it,
    and one of deliveries left for later must."""
    payment = service.sale("paypal", Money.of("12.00", "EUR"), source=paypal.app.vault_card(),
                           idempotency_key=paypal.key())
    headers, body = delivered(paypal, "PAYMENT.CAPTURE.COMPLETED")
    paypal.app.inject(Fault(kind="status", status=503, method="GET", path=r"/v2/payments/captures/", times=10))
    metrics = Metrics()
    with uvicorn_server(serve_app(service, janitor=None, metrics=metrics)) as port:
        status, _, text = send(port, "POST", "/webhooks/paypal", body, headers)
        assert (status, json.loads(text)) == (503, {"error": "verification_unavailable"})
        paypal.app.clear_faults()
        status, _, text = send(port, "POST", "/webhooks/paypal", body, headers)  # PayPal delivers it again
        assert status == 200, text
        exposition = send(port, "GET", "/metrics")[2].decode()
    assert metric(exposition, "paywire_webhooks_total", method="paypal", status="unavailable") == 1
    assert metric(exposition, "paywire_webhooks_total", method="paypal", status="refused") == 0
    assert metric(exposition, "paywire_webhooks_total", method="paypal", status="error") == 0
    assert [e.status for e in service.ledger.list_events()] in (["applied"], ["duplicate"])
    assert service.get_payment(payment.id).captured == Money.of("12.00", "EUR")
