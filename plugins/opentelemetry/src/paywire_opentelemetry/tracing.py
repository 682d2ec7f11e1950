"""A CLIENT span per command attempt, with OpenTelemetry's HTTP client attributes.

The `send_transfer` wrapper opens the span around the request, with the attributes HTTP client
semantic conventions name (`http.request.method`, `server.address`, `server.port`, `url.full`
without its query, `http.response.status_code`, `error.type`, `http.request.resend_count` on a
retry) and paywire's own (`paywire.method`,
`paywire.command`, `paywire.attempt`). An answered request's span stays open until the command
decides what the answer means: `handle_response` (succeeded, accepted, action_required) or
`map_error` (declined, failed, unknown) records `paywire.outcome` and ends it; an attempt that
raised records its outcome from the error (unknown when the request may have been sent). A
command sent once is one span; each retry is a span of its own.

Never recorded: headers, bodies, query strings, credentials, amounts or buyer data.
"""

from __future__ import annotations

import threading
from collections.abc import Generator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from paywire.hookspecs import hookimpl

if TYPE_CHECKING:  # loading plugins stays cheap: paywire's request machinery loads with the first request
    from paywire import CommandResult, PaywireError, Response, Transfer

__all__ = ["Tracing"]


def _url(url: str) -> tuple[str, str | None, int | None]:
    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname
    netloc = f"{host}:{parts.port}" if parts.port else (host or "")
    return urlunsplit((parts.scheme, netloc, parts.path, "", "")), host, port


def _error_outcome(error: BaseException) -> str:
    from paywire.errors import Declined, OutcomeUnknown, PaywireError

    if isinstance(error, Declined):
        return "declined"
    if isinstance(error, OutcomeUnknown):
        return "unknown"
    if isinstance(error, PaywireError) and getattr(error, "may_have_been_sent", False):
        return "unknown"
    return "failed"


class Tracing:
    """The hooks, bound to a tracer provider (None: the global one)."""

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self._provider = tracer_provider
        self._local = threading.local()

    @property
    def tracer(self) -> trace.Tracer:
        return trace.get_tracer("paywire_opentelemetry", "0.1.0", tracer_provider=self._provider)

    def _close_waiting(self, outcome: str | None) -> None:
        """End the span of this thread's last answered attempt, if the command left it open."""
        span: Span | None = getattr(self._local, "waiting", None)
        self._local.waiting = None
        if span is not None:
            if outcome is not None:
                span.set_attribute("paywire.outcome", outcome)
            span.end()

    @hookimpl(wrapper=True)
    def send_transfer(self, gateway: str, command: str, transfer: Transfer) -> Generator[None, Any, Response]:
        retry = getattr(self._local, "transfer", None) is transfer
        self._close_waiting("retried" if retry else None)
        attempt = self._local.attempt + 1 if retry else 1
        self._local.transfer, self._local.attempt = transfer, attempt
        url, host, port = _url(transfer.url)
        attributes: dict[str, Any] = {
            "http.request.method": transfer.method, "url.full": url, "paywire.method": gateway,
            "paywire.command": command, "paywire.attempt": attempt,
        }
        if attempt > 1:  # OpenTelemetry's name for a retry's ordinal
            attributes["http.request.resend_count"] = attempt - 1
        if host:
            attributes["server.address"] = host
        if port:
            attributes["server.port"] = port
        span = self.tracer.start_span(f"paywire {command}", kind=SpanKind.CLIENT, attributes=attributes)
        try:
            with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                response: Response = yield
        except BaseException as exc:
            span.set_attribute("error.type", type(exc).__name__)
            span.set_attribute("paywire.outcome", _error_outcome(exc))
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            span.end()
            raise
        span.set_attribute("http.response.status_code", response.status)
        if response.status >= 400:
            span.set_attribute("error.type", str(response.status))
            span.set_status(Status(StatusCode.ERROR))
        self._local.waiting = span
        return response

    @hookimpl
    def handle_response(self, result: CommandResult) -> None:
        self._close_waiting(str(result.status))

    @hookimpl
    def map_error(self, error: PaywireError) -> None:
        self._close_waiting(_error_outcome(error))
