"""Spans for FakePay commands over loopback, through the hooks alone: attributes, outcomes, retries,
transport failures, and never a secret."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from paywire import Declined, Money, OutcomeUnknown, Retry, SQLiteLedger, TransportError
from paywire.service import PaymentService
from paywire.testing.emulator import EmulatorServer, Fault
from paywire_opentelemetry import Tracing
from tests.ledger.fakepay import API_KEY, WEBHOOK_SECRET, FakePayApp, make_gateway


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@pytest.fixture
def traced(exporter: InMemorySpanExporter, tmp_path: Path) -> Iterator[tuple[PaymentService, FakePayApp]]:
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    app = FakePayApp()
    with EmulatorServer(app) as server:
        gateway = make_gateway(server.url, extra=[Tracing(provider)], read_timeout=2.0,
                               retry=Retry(total=2, backoff_factor=0))
        service = PaymentService(gateway, SQLiteLedger(tmp_path / "ledger.db"), margin=0)
        yield service, app
        gateway.close()
        service.ledger.close()


def _spans(exporter: InMemorySpanExporter) -> list[ReadableSpan]:
    return list(exporter.get_finished_spans())


def test_a_span_per_command_with_http_client_attributes_and_its_outcome(
        traced: tuple[PaymentService, FakePayApp], exporter: InMemorySpanExporter) -> None:
    service, _ = traced
    payment = service.authorize("fakepay", Money.of("10.00", "EUR"), source="tok_ok")
    service.capture(payment.id, Money.of("4.00", "EUR"))
    authorize, capture = _spans(exporter)
    assert (authorize.name, capture.name) == ("paywire authorize", "paywire capture")
    attributes = dict(capture.attributes or {})
    assert capture.kind == SpanKind.CLIENT
    assert attributes["http.request.method"] == "POST"
    assert attributes["server.address"] == "127.0.0.1" and isinstance(attributes["server.port"], int)
    assert str(attributes["url.full"]).startswith("http://127.0.0.1:") and "?" not in str(attributes["url.full"])
    assert attributes["http.response.status_code"] == 200
    assert (attributes["paywire.method"], attributes["paywire.command"]) == ("fakepay", "capture")
    assert attributes["paywire.outcome"] == "succeeded" and attributes["paywire.attempt"] == 1
    pending = service.sale("fakepay", Money.of("3.00", "EUR"), source="tok_pending")
    assert pending.id and _spans(exporter)[-1].attributes["paywire.outcome"] == "accepted"  # type: ignore[index]


def test_a_decline_is_an_error_span_with_its_outcome(traced: tuple[PaymentService, FakePayApp],
                                                     exporter: InMemorySpanExporter) -> None:
    service, _ = traced
    with pytest.raises(Declined):
        service.authorize("fakepay", Money.of("10.00", "EUR"), source="tok_decline")
    (span,) = _spans(exporter)
    assert span.status.status_code == StatusCode.ERROR
    assert span.attributes["paywire.outcome"] == "declined"  # type: ignore[index]
    assert span.attributes["error.type"] == str(span.attributes["http.response.status_code"])  # type: ignore[index]


def test_retries_and_a_lost_answer_are_spans_of_their_own(traced: tuple[PaymentService, FakePayApp],
                                                         exporter: InMemorySpanExporter) -> None:
    service, app = traced
    app.inject(Fault("status", status=503, times=1, path="/v1/payments"))
    service.authorize("fakepay", Money.of("10.00", "EUR"), source="tok_ok")
    first, second = _spans(exporter)
    assert (first.attributes["paywire.attempt"], second.attributes["paywire.attempt"]) == (1, 2)  # type: ignore[index]
    assert first.attributes["paywire.outcome"] == "retried"  # type: ignore[index]
    assert "http.request.resend_count" not in (first.attributes or {})
    assert second.attributes["http.request.resend_count"] == 1  # type: ignore[index]
    assert second.attributes["paywire.outcome"] == "succeeded"  # type: ignore[index]
    exporter.clear()
    app.inject(Fault("latency", seconds=8.0, times=3, path="/v1/payments"))
    with pytest.raises((OutcomeUnknown, TransportError)):
        service.authorize("fakepay", Money.of("11.00", "EUR"), source="tok_ok")
    spans = _spans(exporter)
    assert spans and all(s.attributes["paywire.outcome"] == "unknown" for s in spans)  # type: ignore[index]
    assert all(s.attributes["error.type"] for s in spans)  # type: ignore[index]


def test_no_secret_ever_reaches_an_attribute(traced: tuple[PaymentService, FakePayApp],
                                             exporter: InMemorySpanExporter) -> None:
    service, _ = traced
    payment = service.sale("fakepay", Money.of("10.00", "EUR"), source="tok_ok", order_id="order-77")
    service.refund(payment.id, Money.of("1.00", "EUR"))
    values = [str(v) for span in _spans(exporter) for v in (span.attributes or {}).values()]
    assert values and not [v for v in values if API_KEY in v or WEBHOOK_SECRET in v or "Bearer" in v]
    assert not [v for v in values if "order-77" in v or "10.00" in v or "1000" in v]


def test_the_plugin_is_found_through_its_entry_point() -> None:
    from paywire.plugins import Plugins

    plugins = Plugins().load_entry_points()
    assert "opentelemetry" in [info.name for info in plugins.loaded]
    assert plugins.implemented("send_transfer") and plugins.implemented("handle_response")
