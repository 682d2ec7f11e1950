"""Spans for FakePay commands over loopback, through the hooks alone: attributes, outcomes, retries,
transport failures, and never a secret."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from paywire import Declined, Money, OutcomeUnknown, PaywireError, Retry, SQLiteLedger, TransportError, hookimpl
from paywire.service import PaymentService
from paywire.testing.emulator import EmulatorServer, Fault
from paywire_opentelemetry import Tracing
from tests.ledger.fakepay import API_KEY, WEBHOOK_SECRET, ClaimsMore, FakePayApp, make_gateway
from tests.ledger.support import PATIENT


@pytest.fixture
def exporter() -> InMemorySpanExporter:
    return InMemorySpanExporter()


@contextmanager
def serving(exporter: InMemorySpanExporter, tmp_path: Path, *extra: object, retries: int = 2,
            tracing_last: bool = False, url: str | None = None,
            read_timeout: float = PATIENT["read_timeout"]) -> Iterator[tuple[PaymentService, FakePayApp]]:
    """A payment service on FakePay over loopback (or on `url`), traced into `exporter`; `extra`
    plugins are registered after the tracing (before it with `tracing_last`). Its read timeout is
    patient (a loaded machine's slow answer is still an answer) unless a test waits one out."""
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    plugins = [*extra, Tracing(provider)] if tracing_last else [Tracing(provider), *extra]
    app = FakePayApp()
    with EmulatorServer(app) as server:
        gateway = make_gateway(url or server.url, extra=plugins, read_timeout=read_timeout,
                               retry=Retry(total=retries, backoff_factor=0))
        service = PaymentService(gateway, SQLiteLedger(tmp_path / "ledger.db"), margin=0)
        try:
            yield service, app
        finally:
            gateway.close()
            service.ledger.close()


@pytest.fixture
def traced(exporter: InMemorySpanExporter, tmp_path: Path) -> Iterator[tuple[PaymentService, FakePayApp]]:
    with serving(exporter, tmp_path) as traced:
        yield traced


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


def test_retries_are_spans_of_their_own(traced: tuple[PaymentService, FakePayApp],
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


def test_each_attempt_whose_answer_was_lost_is_a_span_of_its_own(exporter: InMemorySpanExporter,
                                                                   tmp_path: Path) -> None:
    """Every answer comes 8 s late: the 2 s read timeout gives up on it first."""
    with serving(exporter, tmp_path, read_timeout=2.0) as (service, app):
        app.inject(Fault("latency", seconds=8.0, times=3, path="/v1/payments"))
        with pytest.raises((OutcomeUnknown, TransportError)):
            service.authorize("fakepay", Money.of("11.00", "EUR"), source="tok_ok")
    spans = _spans(exporter)
    outcomes = [s.attributes["paywire.outcome"] for s in spans]  # type: ignore[index]
    assert outcomes == ["retried"] * (len(spans) - 1) + ["unknown"]  # each timed out; the last one's is the command's
    assert all(s.attributes["error.type"] for s in spans)  # type: ignore[index]


def test_no_secret_ever_reaches_an_attribute(traced: tuple[PaymentService, FakePayApp],
                                             exporter: InMemorySpanExporter) -> None:
    service, _ = traced
    payment = service.sale("fakepay", Money.of("10.00", "EUR"), source="tok_ok", order_id="order-77")
    service.refund(payment.id, Money.of("1.00", "EUR"))
    values = [str(v) for span in _spans(exporter) for v in (span.attributes or {}).values()]
    assert values and not [v for v in values if API_KEY in v or WEBHOOK_SECRET in v or "Bearer" in v]
    assert not [v for v in values if "order-77" in v or "10.00" in v or "1000" in v]


def _recorded(service: PaymentService, ended: Any) -> str:
    """The status the ledger recorded for the operation that ended so (a payment or its error)."""
    if isinstance(ended, PaywireError):
        assert ended.transaction_id is not None
        return str(service.get_transaction(ended.transaction_id).status)
    return str(service.list_transactions(ended.id)[-1].status)


def _as_recorded(outcome: Any) -> str:
    return "failed" if outcome == "declined" else str(outcome)  # a decline is a failure in the ledger


class CrashingCheck:
    """A plugin's validation that cannot read the answer it was given."""

    @hookimpl
    def validate_response(self) -> None:
        raise ValueError("risk service answered nonsense")


@pytest.mark.parametrize("unreadable", ["a 2xx without the provider's fields", "a validation that raises"])
def test_a_command_whose_answer_cannot_be_read_ends_its_span_with_the_ledgers_outcome(
        exporter: InMemorySpanExporter, tmp_path: Path, unreadable: str) -> None:
    extra = [CrashingCheck()] if unreadable == "a validation that raises" else []
    with serving(exporter, tmp_path, *extra) as (service, app):
        if not extra:
            app.inject(Fault("status", status=200, times=1, path="/v1/payments"))
        with pytest.raises(OutcomeUnknown) as raised:
            service.authorize("fakepay", Money.of("10.00", "EUR"), source="tok_ok")
        (span,) = _spans(exporter)  # ended with the command, not left open for the next one to end
        assert span.attributes["paywire.outcome"] == _recorded(service, raised.value) == "unknown"  # type: ignore[index]
        assert span.attributes["http.response.status_code"] == 200  # type: ignore[index]
        if not extra:
            service.authorize("fakepay", Money.of("11.00", "EUR"), source="tok_ok")
            first, second = _spans(exporter)
            assert first.end_time == span.end_time and first.attributes["paywire.outcome"] == "unknown"  # type: ignore[index]
            assert second.attributes["paywire.outcome"] == "succeeded"  # type: ignore[index]


def test_a_success_the_ledger_records_unknown_ends_its_span_unknown(exporter: InMemorySpanExporter,
                                                                    tmp_path: Path) -> None:
    """A first operation answered succeeded for more than was asked: the ledger records it
    unknown until reconciliation reads what is held, and its span says so too."""
    with serving(exporter, tmp_path, ClaimsMore()) as (service, _):
        with pytest.raises(OutcomeUnknown) as raised:
            service.authorize("fakepay", Money.of("10.00", "EUR"), source="tok_ok")
        (span,) = _spans(exporter)
        assert span.attributes["paywire.outcome"] == _recorded(service, raised.value) == "unknown"  # type: ignore[index]
        payment = service.sale("fakepay", Money.of("3.00", "EUR"), source="tok_ok")  # a sale's answer untouched
        assert _spans(exporter)[-1].attributes["paywire.outcome"] == _recorded(service, payment) == "succeeded"  # type: ignore[index]


class ShopWording:
    """The example of the `map_error` hook: a shop's wording for declines, returned first."""

    @hookimpl
    def map_error(self, error: PaywireError) -> PaywireError | None:
        if isinstance(error, Declined):
            error.customer_message = "Your bank said no. Try another card?"
            return error
        return None


@pytest.mark.parametrize("tracing_last", [False, True], ids=["wording-called-first", "tracing-called-first"])
def test_a_declined_span_ends_whichever_plugin_maps_the_error(
        exporter: InMemorySpanExporter, tmp_path: Path, tracing_last: bool) -> None:
    with serving(exporter, tmp_path, ShopWording(), tracing_last=tracing_last) as (service, _):
        with pytest.raises(Declined) as raised:
            service.authorize("fakepay", Money.of("10.00", "EUR"), source="tok_decline")
    assert raised.value.customer_message == "Your bank said no. Try another card?"
    (span,) = _spans(exporter)
    assert span.attributes["paywire.outcome"] == "declined"  # type: ignore[index]


def test_a_rate_limit_after_a_5xx_is_unknown_in_the_span_as_in_the_ledger(
        exporter: InMemorySpanExporter, tmp_path: Path) -> None:
    with serving(exporter, tmp_path, retries=1) as (service, app):
        payment = service.authorize("fakepay", Money.of("10.00", "EUR"), source="tok_ok")
        exporter.clear()
        # The first attempt's 503 may come after the capture was applied; the retry's 429 says
        # nothing of it: the core raises OutcomeUnknown, and the ledger records unknown.
        app.inject(Fault("status", status=503, times=1, path="captures"))
        app.inject(Fault("status", status=429, times=1, path="captures"))
        with pytest.raises(OutcomeUnknown) as raised:
            service.capture(payment.id, Money.of("4.00", "EUR"))
        assert _recorded(service, raised.value) == "unknown"
    assert [s.attributes["paywire.outcome"] for s in _spans(exporter)] == ["retried", "unknown"]  # type: ignore[index]


ANSWERS = {
    "unreadable 200": Fault("status", status=200), "400": Fault("status", status=400),
    "401": Fault("status", status=401), "402": Fault("status", status=402),
    "409": Fault("status", status=409), "429": Fault("status", status=429),
    "500": Fault("status", status=500), "503": Fault("status", status=503),
    "dropped after the write": Fault("drop_after"),
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(answers=st.lists(st.sampled_from(sorted(ANSWERS)), max_size=3))
def test_the_last_span_says_what_the_ledger_recorded_and_none_is_left_open(
        traced: tuple[PaymentService, FakePayApp], exporter: InMemorySpanExporter, answers: list[str]) -> None:
    """Whatever the provider answers to each attempt, every attempt's span ends with the command:
    each but the last as retried, the last with the outcome the ledger recorded."""
    service, app = traced
    app.clear_faults()
    exporter.clear()
    for answer in answers:
        app.inject(attrs.evolve(ANSWERS[answer], path="^/v1/payments$"))
    ended: Any
    try:
        ended = service.authorize("fakepay", Money.of("10.00", "EUR"), source="tok_ok")
    except PaywireError as error:
        ended = error
    *earlier, last = _spans(exporter)
    assert [s.attributes["paywire.outcome"] for s in earlier] == ["retried"] * len(earlier)  # type: ignore[index]
    assert _as_recorded(last.attributes["paywire.outcome"]) == _recorded(service, ended)  # type: ignore[index]
    app.clear_faults()
    service.authorize("fakepay", Money.of("1.00", "EUR"), source="tok_ok")
    assert len(_spans(exporter)) == len(earlier) + 2  # the next command ended no span of this one


class _IPv6Server(ThreadingHTTPServer):
    address_family = socket.AF_INET6


class _Missing(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        body = b'{"error": {"message": "no such route"}}'
        self.send_response(404)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


def test_an_ipv6_hosts_url_keeps_its_brackets(exporter: InMemorySpanExporter, tmp_path: Path) -> None:
    try:
        server = _IPv6Server(("::1", 0), _Missing)
    except OSError as exc:
        pytest.skip(f"no IPv6 loopback here: {exc}")
    port = server.server_address[1]
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with serving(exporter, tmp_path, url=f"http://[::1]:{port}") as (service, _):
            with pytest.raises(PaywireError):
                service.authorize("fakepay", Money.of("10.00", "EUR"), source="tok_ok")
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
    (span,) = _spans(exporter)
    attributes = dict(span.attributes or {})
    assert attributes["url.full"] == f"http://[::1]:{port}/v1/payments"
    assert (attributes["server.address"], attributes["server.port"]) == ("::1", port)


def test_the_plugin_is_found_through_its_entry_point() -> None:
    from paywire.plugins import Plugins

    plugins = Plugins().load_entry_points()
    assert "opentelemetry" in [info.name for info in plugins.loaded]
    assert plugins.implemented("send_transfer") and plugins.implemented("perform_command")


def test_a_command_that_failed_on_a_2xx_is_an_error_span_and_one_needing_the_buyer_is_not(
        traced: tuple[PaymentService, FakePayApp], exporter: InMemorySpanExporter) -> None:
    service, app = traced
    app.inject(Fault("status", status=200, times=1, path="/v1/payments"))  # an answer without the provider's fields
    with pytest.raises(OutcomeUnknown):
        service.authorize("fakepay", Money.of("10.00", "EUR"), source="tok_ok")
    (unreadable,) = _spans(exporter)
    assert unreadable.status.status_code == StatusCode.ERROR
    assert unreadable.attributes["error.type"] == unreadable.status.description  # type: ignore[index]
    assert unreadable.attributes["paywire.outcome"] == "unknown"  # type: ignore[index]
    exporter.clear()
    service.authorize("fakepay", Money.of("10.00", "EUR"), source="tok_3ds")  # a redirect: not an error
    (challenged,) = _spans(exporter)
    assert challenged.attributes["paywire.outcome"] == "action_required"  # type: ignore[index]
    assert challenged.status.status_code == StatusCode.UNSET and "error.type" not in (challenged.attributes or {})


@pytest.mark.parametrize("path", ["/relay/sk_test_Relay0Token99/", f"/keys/{API_KEY}/"])
def test_a_secret_in_the_endpoints_path_is_masked_in_url_full(exporter: InMemorySpanExporter, tmp_path: Path,
                                                              path: str) -> None:
    """A base_url may carry a token in its path (a relay in front of the provider): url.full kept
    it as written, where paywire's logs mask it (a secret's shape, or a credential paywire holds)."""
    with serving(exporter, tmp_path, retries=0, url=f"http://127.0.0.1:1{path}") as (service, _), \
            pytest.raises(PaywireError):
        service.authorize("fakepay", Money.of("10.00", "EUR"), source="tok_ok")
    (span,) = _spans(exporter)
    full = str(dict(span.attributes or {})["url.full"])
    assert "Relay0Token99" not in full and API_KEY not in full, full
    assert full.startswith("http://127.0.0.1:1/") and full.endswith("/v1/payments"), full
