"""A CLIENT span per command attempt, with OpenTelemetry's HTTP client attributes.

The `send_transfer` wrapper opens the span around the request, with the attributes HTTP client
semantic conventions name (`http.request.method`, `server.address`, `server.port`, `url.full`
without its query, `http.response.status_code`, `error.type`, `http.request.resend_count` on a
retry) and paywire's own (`paywire.method`, `paywire.command`, `paywire.attempt`). The span stays
open until what the attempt led to is known, though its end time is when its answer came (a
token renewal or a retry's wait after it is not the request's): the command's next attempt ends
it as `retried`, and the `perform_command` wrapper, around the whole command, ends the last one
with the command's outcome, however the command ended: its result's status (succeeded, accepted,
action_required; unknown for a first operation's success for an amount the ledger cannot believe),
or from the error it raised what the payment service records (declined, action_required, failed,
or unknown when the request may have taken effect). A command sent once is one span; each retry
is a span of its own.

Never recorded: headers, bodies, query strings, credentials, amounts or buyer data. Tracing never
changes a payment: what OpenTelemetry raises (a sampler or span processor that fails) is logged and
the command goes on as untraced, its answer and its error the same.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit, urlunsplit

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode, TracerProvider

from paywire.hookspecs import hookimpl

if TYPE_CHECKING:  # loading plugins stays cheap: paywire's request machinery loads with the first request
    from paywire import CommandResult, Response, Subject, Transfer

__all__ = ["Tracing"]

def _quietly(trace_it: Callable[..., Any], *args: Any) -> Any:
    """Run one step of tracing; one that fails is logged and returns None, never raised into the
    payment: a request answered would be recorded unknown, one never sent too."""
    try:
        return trace_it(*args)
    except Exception as exc:  # noqa: BLE001 - the tracer's failure is not the payment's
        # imported here: discovering plugins loads nothing a request needs (attrs, urllib3)
        from paywire.security import get_logger

        get_logger(__name__).warning("tracing failed (%s); the payment is not affected", type(exc).__name__, exc_info=True)
        return None


def _url(url: str) -> tuple[str, str | None, int | None]:
    """`url.full` without userinfo, query or fragment, and redacted as paywire's logs are: an
    endpoint's path may carry a token (a relay in front of the provider)."""
    from paywire.security import redact

    parts = urlsplit(url)
    port = parts.port or {"https": 443, "http": 80}.get(parts.scheme)
    host = parts.hostname
    netloc = f"[{host}]" if host and ":" in host else host or ""  # an IPv6 address keeps its brackets
    if parts.port:
        netloc = f"{netloc}:{parts.port}"
    return redact(urlunsplit((parts.scheme, netloc, parts.path, "", ""))), host, port


def _error_outcome(error: BaseException) -> str:
    """What the payment service records for a command that raised `error` (a decline named as such)."""
    from paywire.errors import BuyerActionRequired, Declined
    from paywire.service.outcome import is_unknown

    if isinstance(error, BuyerActionRequired):
        return "action_required"
    if isinstance(error, Declined):
        return "declined"
    return "unknown" if is_unknown(error) else "failed"


def _result_outcome(command: str, subject: Subject, result: CommandResult) -> str:
    """What the payment service records for a command that returned `result`: a first
    operation's success for an amount that cannot be what it holds (more than asked, another
    currency, none) is unknown, as the ledger and the operations counter have it."""
    from paywire.service.held import holds_unreadably

    return "unknown" if holds_unreadably(command, subject.amount, result) else str(result.status)


def _error(span: Span, kind: str, description: str | None) -> None:
    span.set_attribute("error.type", kind)
    span.set_status(Status(StatusCode.ERROR, description))


def _answered(span: Span, status: int) -> None:
    span.set_attribute("http.response.status_code", status)
    if status >= 400:
        _error(span, str(status), None)


class _Attempts:
    """One running command's attempts: the last one's span, open until what it led to is known,
    and when its answer came, which is when it ends: what follows (a token renewal, a retry's
    wait, validation) is not the request's time."""

    def __init__(self) -> None:
        self.count = 0
        self.span: Span | None = None
        self.answered: int | None = None
        self.failed = False  # the last attempt's answer or exception already made its span an error

    def end(self, outcome: str | None, error: BaseException | None = None) -> None:
        """End the last span; `error`, the command's, makes it an error span unless its answer
        already did or the buyer has a step to take: a decline in a 2xx fails as one in a 402."""
        span, self.span = self.span, None
        if span is not None:
            _quietly(self._end, span, outcome, error)

    def _end(self, span: Span, outcome: str | None, error: BaseException | None) -> None:
        if outcome is not None:
            span.set_attribute("paywire.outcome", outcome)
        if error is not None and not self.failed and outcome != "action_required":
            _error(span, type(error).__name__, type(error).__name__)
        span.end(end_time=self.answered)


class _Running(threading.local):
    """This thread's running commands, innermost last (a command may run one of its own, such as
    fetching an access token)."""

    def __init__(self) -> None:
        self.commands: list[_Attempts] = []


class Tracing:
    """The hooks, bound to a tracer provider (None: the global one)."""

    def __init__(self, tracer_provider: TracerProvider | None = None) -> None:
        self._provider = tracer_provider
        self._running = _Running()

    @property
    def tracer(self) -> trace.Tracer:
        return trace.get_tracer("paywire_opentelemetry", "0.1.0", tracer_provider=self._provider)

    @hookimpl(wrapper=True)
    def perform_command(self, command: str, subject: Subject) -> Generator[None, CommandResult, CommandResult]:
        commands = self._running.commands
        attempts = _Attempts()
        commands.append(attempts)
        try:
            result = yield
        except BaseException as exc:
            attempts.end(_quietly(_error_outcome, exc), exc)
            raise
        finally:
            commands.pop()
        attempts.end(_quietly(_result_outcome, command, subject, result))
        return result

    @hookimpl(wrapper=True)
    def send_transfer(self, gateway: str, command: str, transfer: Transfer) -> Generator[None, Any, Response]:
        commands = self._running.commands
        attempts = commands[-1] if commands else _Attempts()  # sent outside a command: ended with its attempt
        attempts.end("retried")
        attempts.count += 1
        attempts.answered, attempts.failed = None, False
        span = attempts.span = _quietly(self._start, gateway, command, transfer, attempts.count)
        if span is None:  # the tracer failed: the attempt is sent untraced
            untraced: Response = yield
            return untraced
        try:
            with trace.use_span(span, end_on_exit=False, record_exception=False, set_status_on_exception=False):
                response: Response = yield
        except BaseException as exc:
            attempts.answered, attempts.failed = time.time_ns(), True
            _quietly(_error, span, type(exc).__name__, type(exc).__name__)
            if not commands:
                attempts.end(_quietly(_error_outcome, exc))
            raise
        attempts.answered = time.time_ns()
        attempts.failed = response.status >= 400
        _quietly(_answered, span, response.status)
        if not commands:
            attempts.end(None)
        return response

    def _start(self, gateway: str, command: str, transfer: Transfer, attempt: int) -> Span:
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
        return self.tracer.start_span(f"paywire {command}", kind=SpanKind.CLIENT, attributes=attributes)
