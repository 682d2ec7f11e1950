"""Spans of PayPal commands, over loopback against its emulator, into the SDK's in-memory exporter:
a credential PayPal refuses (401) and paywire renews before sending the request again, and a
decline PayPal answers with a 2xx."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode

from paywire import (
    AuthenticationError,
    Declined,
    Gateway,
    MethodConfig,
    Money,
    PaymentService,
    Plugins,
    Retry,
    SQLiteLedger,
)
from paywire.testing.emulator import Fault
from paywire_opentelemetry import Tracing
from tests.ledger.support import PATIENT

paywire_paypal = pytest.importorskip("paywire_paypal", reason="the PayPal plugin is not installed")
from paywire_paypal.emulator import PayPalEmulator  # noqa: E402
from paywire_paypal.emulator.payments import DECLINE_CODES  # noqa: E402

CLIENT_ID = "otel-client-id-3f9a"
CLIENT_SECRET = "otel-client-secret-8d2c7b"
TOKEN = "/v1/oauth2/token"


class Traced:
    def __init__(self, app: PayPalEmulator, service: PaymentService, exporter: InMemorySpanExporter,
                 provider: TracerProvider) -> None:
        self.app, self.service, self.exporter, self.provider = app, service, exporter, provider

    def spans(self) -> list[ReadableSpan]:
        return list(self.exporter.get_finished_spans())

    def authorized(self) -> str:
        payment = self.service.authorize("paypal", Money.of("10.00", "EUR"), source=self.app.vault_card())
        self.exporter.clear()
        return payment.id

    def secrets(self) -> list[str]:
        """Everything that must never show in a span: the app's credentials and every token issued."""
        return [CLIENT_ID, CLIENT_SECRET, "Bearer", "Basic", *self.app.tokens]


@pytest.fixture
def traced(tmp_path: Path) -> Iterator[Traced]:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    plugins = Plugins()
    plugins.register(paywire_paypal, name="paypal")
    plugins.register(Tracing(provider), name="tracing")
    app = PayPalEmulator(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, webhook_id="8PT597110X687430L")
    with app.serve() as server:
        settings = {"base_url": server.url, "environment": "sandbox", **PATIENT,
                    "credentials": {"client_id": CLIENT_ID, "client_secret": CLIENT_SECRET}}
        gateway = Gateway([MethodConfig.from_mapping("paypal", settings)], plugins=plugins,
                          retry=Retry(total=1, backoff_factor=0))
        with SQLiteLedger(tmp_path / "ledger.db") as ledger:
            try:
                yield Traced(app, PaymentService(gateway, ledger, margin=0), exporter, provider)
            finally:
                gateway.close()


def _everything_recorded(span: ReadableSpan) -> list[str]:
    """Every string a span exports: name, attributes, status, events and their attributes."""
    values = [span.name, str(span.status.description), *map(str, (span.attributes or {}).values())]
    for event in span.events:
        values += [event.name, *map(str, (event.attributes or {}).values())]
    return values


def test_a_refused_token_is_renewed_and_the_request_sent_again_each_a_span_of_its_own(traced: Traced) -> None:
    payment = traced.authorized()
    traced.app.expire_tokens()  # PayPal ends the token while paywire still holds it
    with traced.provider.get_tracer("shop").start_as_current_span("checkout") as checkout:
        traced.service.capture(payment, Money.of("4.00", "EUR"))
    parent, *paywire = sorted(traced.spans(), key=lambda span: span.start_time or 0)
    refused, token, resent = paywire
    assert [(s.name, s.attributes["paywire.command"]) for s in paywire] == [  # type: ignore[index]
        ("paywire capture", "capture"), ("paywire token", "token"), ("paywire capture", "capture")]
    assert all(s.kind == SpanKind.CLIENT for s in paywire)

    # The refused attempt: an error span that says it was sent again, ended when its answer came,
    # not after the token exchange that followed it.
    assert refused.attributes["http.response.status_code"] == 401  # type: ignore[index]
    assert refused.attributes["error.type"] == "401"  # type: ignore[index]
    assert refused.status.status_code == StatusCode.ERROR
    assert refused.attributes["paywire.outcome"] == "retried"  # type: ignore[index]
    assert refused.attributes["paywire.attempt"] == 1 and "http.request.resend_count" not in refused.attributes  # type: ignore[index,operator]
    assert refused.end_time is not None and token.start_time is not None and refused.end_time <= token.start_time

    # The token exchange: a span of its own, its URL without credentials.
    assert str(token.attributes["url.full"]).endswith(TOKEN)  # type: ignore[index]
    assert token.attributes["http.response.status_code"] == 200  # type: ignore[index]
    assert token.attributes["paywire.outcome"] == "succeeded"  # type: ignore[index]

    # The request sent again with the new token: OpenTelemetry's resend count, the command's outcome.
    assert resent.attributes["paywire.attempt"] == 2 and resent.attributes["http.request.resend_count"] == 1  # type: ignore[index]
    assert resent.attributes["http.response.status_code"] == 201  # type: ignore[index]
    assert resent.status.status_code == StatusCode.UNSET and "error.type" not in (resent.attributes or {})
    assert resent.attributes["paywire.outcome"] == "succeeded"  # type: ignore[index]

    # All in the caller's trace, under its span; never a credential or a token anywhere.
    assert parent.name == "checkout"
    assert {s.context.trace_id for s in paywire} == {checkout.get_span_context().trace_id}
    assert [s.parent.span_id for s in paywire] == [checkout.get_span_context().span_id] * 3  # type: ignore[union-attr]
    recorded = [value for span in paywire for value in _everything_recorded(span)]
    assert not [value for value in recorded for secret in traced.secrets() if secret in value]


def test_a_credential_that_cannot_be_renewed_ends_every_span_with_what_the_ledger_recorded(traced: Traced) -> None:
    payment = traced.authorized()
    traced.app.expire_tokens()
    traced.app.inject(Fault("status", status=401, path=TOKEN))  # the app's secret was rotated at PayPal
    with pytest.raises(AuthenticationError) as raised:
        traced.service.capture(payment, Money.of("4.00", "EUR"))
    assert raised.value.transaction_id is not None
    recorded = str(traced.service.get_transaction(raised.value.transaction_id).status)
    refused, token = sorted(traced.spans(), key=lambda s: str((s.attributes or {})["paywire.command"]))
    assert (refused.attributes["paywire.command"], token.attributes["paywire.command"]) == ("capture", "token")  # type: ignore[index]
    assert refused.attributes["paywire.outcome"] == recorded == "failed"  # type: ignore[index]
    assert refused.status.status_code == token.status.status_code == StatusCode.ERROR
    assert token.attributes["http.response.status_code"] == 401  # type: ignore[index]
    values = [value for span in traced.spans() for value in _everything_recorded(span)]
    assert not [value for value in values for secret in traced.secrets() if secret in value]


def test_a_decline_in_a_2xx_is_an_error_span_as_a_decline_in_a_402_is(traced: Traced) -> None:
    """PayPal answers a refused card's order with 201 and a DECLINED capture: the span says the
    command failed, as Stripe's 402 says it, so error rates do not depend on the provider's wire."""
    card = traced.app.vault_card(name=next(iter(DECLINE_CODES)))
    with pytest.raises(Declined):
        traced.service.sale("paypal", Money.of("10.00", "EUR"), source=card)
    last = traced.spans()[-1]
    assert last.attributes["http.response.status_code"] == 201  # type: ignore[index]
    assert last.attributes["paywire.outcome"] == "declined"  # type: ignore[index]
    assert last.status.status_code == StatusCode.ERROR
    assert last.attributes["error.type"] == "Declined"  # type: ignore[index]
    assert all(s.status.status_code == StatusCode.UNSET for s in traced.spans()[:-1])  # the token, the card's lookup
