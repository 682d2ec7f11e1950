"""A tracer that fails (a span processor or sampler raising) never changes a payment: the
command's answer, its error and what the ledger records are those of an untraced run."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.context import Context
from opentelemetry.sdk.trace import SpanProcessor, TracerProvider
from opentelemetry.sdk.trace.sampling import Sampler, SamplingResult
from opentelemetry.trace import Link, SpanKind, TraceState
from opentelemetry.util.types import Attributes

from paywire import Declined, Money, Retry, SQLiteLedger, TransportError
from paywire.service import PaymentService
from paywire.testing.emulator import EmulatorServer
from paywire_opentelemetry import Tracing
from tests.ledger.fakepay import FakePayApp, make_gateway


class FailingProcessor(SpanProcessor):
    """A span processor (an exporter's, say) that raises when a span starts or ends."""

    def __init__(self, when: str) -> None:
        self.when = when

    def on_start(self, span: Any, parent_context: Context | None = None) -> None:
        if self.when == "start":
            raise RuntimeError("collector unreachable")

    def on_end(self, span: Any) -> None:
        if self.when == "end":
            raise RuntimeError("collector unreachable")


class FailingSampler(Sampler):
    def should_sample(self, parent_context: Context | None, trace_id: int, name: str, kind: SpanKind | None = None,
                      attributes: Attributes = None, links: Sequence[Link] | None = None,
                      trace_state: TraceState | None = None) -> SamplingResult:
        raise RuntimeError("sampler configuration broken")

    def get_description(self) -> str:
        return "FailingSampler"


def _provider(failing: str) -> TracerProvider:
    if failing == "sampler":
        return TracerProvider(sampler=FailingSampler())
    provider = TracerProvider()
    provider.add_span_processor(FailingProcessor(failing.removeprefix("processor on ")))
    return provider


@contextmanager
def serving(tmp_path: Path, failing: str, url: str | None = None) -> Iterator[PaymentService]:
    with EmulatorServer(FakePayApp()) as server:
        gateway = make_gateway(url or server.url, extra=[Tracing(_provider(failing))], read_timeout=2.0,
                               retry=Retry(total=1, backoff_factor=0))
        service = PaymentService(gateway, SQLiteLedger(tmp_path / "ledger.db"), margin=0)
        try:
            yield service
        finally:
            gateway.close()
            service.ledger.close()


FAILING = ["processor on start", "processor on end", "sampler"]


@pytest.mark.parametrize("failing", FAILING)
def test_a_failing_tracer_leaves_a_success_succeeded(tmp_path: Path, failing: str) -> None:
    with serving(tmp_path, failing) as service:
        payment = service.authorize("fakepay", Money.of("10.00", "EUR"), source="tok_ok")
        payment = service.capture(payment.id, Money.of("4.00", "EUR"))
        assert payment.captured == Money.of("4.00", "EUR")
        assert [t.status for t in service.list_transactions(payment.id)] == ["succeeded", "succeeded"]


@pytest.mark.parametrize("failing", FAILING)
def test_a_failing_tracer_leaves_a_decline_declined(tmp_path: Path, failing: str) -> None:
    with serving(tmp_path, failing) as service, pytest.raises(Declined) as raised:
        service.authorize("fakepay", Money.of("10.00", "EUR"), source="tok_decline")
    assert raised.value.transaction_id is not None
    assert service.get_transaction(raised.value.transaction_id).status == "failed"


@pytest.mark.parametrize("failing", FAILING)
def test_a_failing_tracer_leaves_a_connection_never_made_failed(tmp_path: Path, failing: str) -> None:
    """Nothing listens on port 1: the request never left, which is failed, not unknown."""
    with serving(tmp_path, failing, url="http://127.0.0.1:1") as service, pytest.raises(TransportError) as raised:
        service.authorize("fakepay", Money.of("10.00", "EUR"), source="tok_ok")
    assert raised.value.transaction_id is not None
    assert service.get_transaction(raised.value.transaction_id).status == "failed"
