"""Prometheus metrics of payments (prometheus-client; install `paywire[server]`).

Every label is a code paywire or the shop's configuration chose (method, command, outcome,
status, kind), never an id, an amount, a secret, card or buyer data, so label values stay few
and nothing sensitive reaches a metrics store. A method or command name a caller gave that the
gateway does not configure or offer (free text: a typo, a value from a form, worse) is labelled
`unknown`, as it would otherwise be a series of its own, and shown to whoever scrapes.

`Metrics.instrument(service)` counts the service's commands (by outcome, with the provider's
latency per attempt and the retries); `webhook()` and `reconcile_pass()` are fed by the webhook
endpoint and the Janitor.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Generator
from typing import TYPE_CHECKING, Any

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from paywire.command.result import CommandResult
from paywire.errors import Declined, PaywireError
from paywire.gateway import Gateway, Rehearsal
from paywire.hookspecs import hookimpl
from paywire.http.response import Response
from paywire.http.transfer import Transfer
from paywire.money import Money
from paywire.service.held import holds_unreadably
from paywire.service.outcome import is_unknown
from paywire.subject import Subject

if TYPE_CHECKING:
    from paywire.serve.janitor import PassReport
    from paywire.service.payments import PaymentService
    from paywire.web import WebhookApp

__all__ = ["CONTENT_TYPE", "UNKNOWN", "Metrics", "outcome_of"]

CONTENT_TYPE = CONTENT_TYPE_LATEST
UNKNOWN = "unknown"  # the label of a method or command name the gateway does not know
WEBHOOK_STATUSES = ("applied", "duplicate", "deferred", "unmatched", "refused", "unavailable", "not_found", "error")


def outcome_of(result: CommandResult | None, error: BaseException | None) -> str:
    """A command's outcome as the operations counter labels it."""
    if error is None:
        assert result is not None
        return {"accepted": "accepted_later"}.get(result.status, result.status)
    if isinstance(error, Declined):
        return "declined"
    if not isinstance(error, PaywireError):
        return "error"  # a fault inside the pipeline: the ledger records it unknown, and it is a defect
    return "unknown" if is_unknown(error) else "failed"  # as the ledger records it (a 5xx after sending)


class Metrics:
    """paywire's instruments in a registry of their own (`registry`), ready to expose."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.operations = Counter("paywire_operations", "Gateway commands by outcome",
                                  ["method", "command", "outcome"], registry=r)
        self.latency = Histogram("paywire_provider_latency_seconds", "Provider answer time per attempt",
                                 ["method", "command"], registry=r,
                                 buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60))
        self.retries = Counter("paywire_retries", "Attempts after the first", ["method", "command"], registry=r)
        self.webhooks = Counter("paywire_webhooks", "Webhook deliveries by what became of them",
                                ["method", "status"], registry=r)
        self.settlements = Counter("paywire_reconcile_settlements", "Transactions reconciliation settled",
                                   ["kind", "status"], registry=r)
        self.caught_up = Counter("paywire_reconcile_caught_up", "Payments read because they owed a read",
                                 registry=r)
        self.reconcile_errors = Counter("paywire_reconcile_errors", "Payments a reconcile pass could not settle, and passes whose stored events could not all be applied",
                                        registry=r)
        self.mismatched = Gauge("paywire_reconcile_mismatched_payments",
                                "Payments whose totals differed from the provider's when last reconciled", registry=r)
        self.last_pass = Gauge("paywire_reconcile_last_pass_timestamp_seconds",
                               "When the Janitor last finished a pass (Unix time)", registry=r)
        self.in_hand = Gauge("paywire_webhooks_in_hand",
                             "Webhook deliveries whose bodies are arriving, being handled or waiting for a thread", registry=r)
        self.max_in_hand = Gauge("paywire_webhooks_max_in_hand",
                                 "Webhook deliveries held at most; more are answered 503 busy", registry=r)
        self._mismatched: set[str] = set()
        self._local = threading.local()
        self._hooked: set[int] = set()
        self._methods: frozenset[str] = frozenset()  # the method codes it labels (`label_methods`)
        self._offered: set[tuple[str, str]] = set()  # (method, command) pairs known to be configured

    # -- commands ---------------------------------------------------------------------------------
    def instrument(self, service: PaymentService) -> None:
        """Count `service`'s commands: its gateway is replaced by a measured view of itself, and
        a `send_transfer` wrapper times each attempt."""
        gateway = service.gateway
        self.label_methods(gateway)
        if not isinstance(gateway, _MeasuredGateway):
            service.gateway = _MeasuredGateway.measuring(gateway, self)
        if id(gateway.plugins) not in self._hooked:
            gateway.plugins.register(_Attempts(self), f"paywire.metrics.{id(self)}")
            self._hooked.add(id(gateway.plugins))

    def label_methods(self, gateway: Gateway) -> None:
        """Take `gateway`'s method codes as label values (`instrument` does): any other method
        name is counted as `unknown`."""
        self._methods |= {method.code for method in gateway.methods}

    # -- webhooks and reconciliation ------------------------------------------------------------------
    def webhook(self, method: str, status: str) -> None:
        method = method if method in self._methods else UNKNOWN
        self.webhooks.labels(method, status if status in WEBHOOK_STATUSES else "error").inc()

    def watch_in_hand(self, endpoint: WebhookApp) -> None:
        """Read the endpoint's deliveries in hand, and its bound, at each scrape."""
        self.in_hand.set_function(lambda: endpoint.in_hand)
        self.max_in_hand.set(endpoint.max_in_hand)

    def reconcile_pass(self, report: PassReport) -> None:
        for settlement in report.settled:
            self.settlements.labels(settlement.kind, settlement.status or "open").inc()
        self.caught_up.inc(len(report.caught_up))
        self.reconcile_errors.inc(len(report.errors))
        looked = {s.payment_id for s in (*report.settled, *report.unresolved) if s.payment_id} | set(report.caught_up)
        self._mismatched -= looked
        self._mismatched |= {m.payment_id for m in report.mismatches}
        self.mismatched.set(len(self._mismatched))
        self.last_pass.set(report.finished_at.timestamp())

    def exposition(self) -> bytes:
        """The text format Prometheus scrapes."""
        return generate_latest(self.registry)

    def _command_labels(self, gateway: Gateway, method: str, command: str) -> tuple[str, str]:
        """`method` and `command` as labels: as given when `gateway` configures the method and
        offers the command, `UNKNOWN` in place of either it does not."""
        if (method, command) in self._offered:
            return method, command
        if method not in self._methods:
            return UNKNOWN, UNKNOWN
        try:
            offered = command in gateway.method(method).commands
        except Exception:  # noqa: BLE001 - not configured here, or its commands cannot be built: not offered
            offered = False
        if not offered:
            return method, UNKNOWN
        self._offered.add((method, command))
        return method, command


class _MeasuredGateway(Gateway):
    """The same gateway (its methods, plugins and pools), each command's outcome counted."""

    _metrics: Metrics

    @classmethod
    def measuring(cls, gateway: Gateway, metrics: Metrics) -> _MeasuredGateway:
        measured = cls.__new__(cls)
        measured.__dict__.update(gateway.__dict__)
        measured._metrics = metrics
        return measured

    def execute(self, method: str, command: str, subject: Subject) -> CommandResult:
        return self._counted(method, command, lambda: super(_MeasuredGateway, self).execute(method, command, subject))

    def perform(self, rehearsal: Rehearsal, *, resent: bool = False) -> CommandResult:
        """What the payment service runs (a rehearsed command): a first operation's success whose
        amount cannot be what it holds is counted unknown, as the service records it."""
        return self._counted(rehearsal.method, rehearsal.command,
                             lambda: super(_MeasuredGateway, self).perform(rehearsal, resent=resent),
                             rehearsal.subject.amount)

    def _counted(self, method: str, command: str, run: Callable[[], CommandResult],
                 asked: Money | None = None) -> CommandResult:
        try:
            result = run()
        except BaseException as exc:
            self._metrics.operations.labels(*self._metrics._command_labels(self, method, command),
                                            outcome_of(None, exc)).inc()
            raise
        outcome = "unknown" if holds_unreadably(command, asked, result) else outcome_of(result, None)
        self._metrics.operations.labels(*self._metrics._command_labels(self, method, command), outcome).inc()
        return result


class _Attempts:
    """Times every attempt and counts the retries (an attempt resending the transfer just sent)."""

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    @hookimpl(wrapper=True)
    def send_transfer(self, gateway: str, command: str, transfer: Transfer) -> Generator[None, Any, Response]:
        local = self.metrics._local
        if getattr(local, "transfer", None) is transfer:
            self.metrics.retries.labels(gateway, command).inc()
        local.transfer = transfer
        started = time.perf_counter()
        try:
            response: Response = yield
            return response
        finally:
            self.metrics.latency.labels(gateway, command).observe(time.perf_counter() - started)
