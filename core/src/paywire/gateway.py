"""The `Gateway`: configured payment methods on the installed provider plugins, ready to run.

It is the one object an application holds: it discovers plugins, builds each method's command
pool on first use (so a missing secret is reported only for a method actually used), keeps one
HTTP client per method, and runs commands through the pipeline.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import attrs

from paywire.command.context import CommandContext
from paywire.command.gateway_command import GatewayCommand, Rehearsed
from paywire.command.pool import CommandPool
from paywire.command.result import CommandResult
from paywire.config import MethodConfig, PaymentMethodList, load_config
from paywire.config_schema import check_options
from paywire.errors import ConfigurationError, InvalidRequest, UnsupportedOperation, WebhookVerificationError
from paywire.gateway_definition import Capabilities, GatewayDefinition, load_reference
from paywire.http.client import Client, Urllib3Client
from paywire.http.retry import Retry
from paywire.http.transfer import Timeout, Transfer
from paywire.plugins import Plugins, default_plugins
from paywire.security import check_endpoint, refuse_card_numbers
from paywire.settings import GatewaySettings
from paywire.subject import Subject
from paywire.webhook import WebhookBatch, WebhookEvent, WebhookVerifier

__all__ = ["Gateway", "Method", "Rehearsal"]

MAX_WEBHOOK_BYTES = 1024 * 1024
_FIRST_OPERATIONS = frozenset({"authorize", "sale"})


@attrs.frozen(slots=False)
class Rehearsal:
    """A command run up to the moment its first request would leave: what `perform` sends.

    :param transfer: the checked transfer of a single-request command; None for a composite,
        which `perform` runs afresh.
    """

    method: str
    command: str
    subject: Subject
    transfer: Transfer | None = attrs.field(default=None, repr=False)


class Method:
    """One configured payment method at run time: settings, capabilities, commands and client."""

    def __init__(self, config: MethodConfig, definition: GatewayDefinition, plugins: Plugins, retry: Retry,
                 client: Client | None = None) -> None:
        base_url = config.base_url or definition.endpoints.get(config.environment)
        if not base_url:
            raise ConfigurationError(
                f"method {config.code!r}: provider {definition.code!r} has no {config.environment} "
                "endpoint; set base_url"
            )
        check_endpoint(base_url, environment=config.environment)
        self.code = config.code
        self.config = config
        self.definition = definition
        self.capabilities: Capabilities = definition.capabilities.restrict(**config.capabilities)
        self.settings = GatewaySettings(
            gateway=config.code,
            provider=definition.code,
            environment=config.environment,
            base_url=base_url,
            options=config.options,
            timeout=Timeout(config.connect_timeout, config.read_timeout),
            credentials=config.credentials,
            secret_lookup=plugins.get_secret,
        )
        self.client: Client = client or Urllib3Client(ca_certs=config.ca_certs)
        self._plugins = plugins
        self._retry = retry
        self._commands: CommandPool | None = None
        self._verifier: WebhookVerifier | None = None
        self._lives: dict[str, float] = {}  # longest_life by command: fixed by the settings
        self._contexts: dict[tuple[str, bool, bool], CommandContext] = {}
        # Whether a first operation must be checked against the method's limits: a method that is
        # active, offered everywhere, in every currency and for any total has none to check.
        self._limited = not config.active or bool(config.countries or config.currencies) or (
            config.min_total is not None or config.max_total is not None)
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Method({self.code!r}, provider={self.definition.code!r}, environment={self.config.environment!r})"

    @property
    def commands(self) -> CommandPool:
        if self._commands is None:
            with self._lock:
                if self._commands is None:
                    pool = load_reference(self.definition, self.definition.build, "build")(self.settings)
                    self._commands = pool if isinstance(pool, CommandPool) else CommandPool(pool, gateway=self.code)
        return self._commands

    def context(self, command: str, *, rehearsal: bool = False, resent: bool = False) -> CommandContext:
        """The context `command` runs in: built once per command (a frozen value of this
        method's fixed parts), not on every run."""
        made = self._contexts.get((command, rehearsal, resent))
        if made is None or made.client is not self.client:
            made = CommandContext(self.code, self.definition.code, command, self.client, self._plugins, self._retry,
                                  rehearsal, resent)
            self._contexts[command, rehearsal, resent] = made
        return made

    def execute(self, command: str, subject: Subject) -> CommandResult:
        return self._run(self.context(command), command, subject)

    def rehearse(self, command: str, subject: Subject, *, resent: bool = False) -> Rehearsal:
        """Run `command` up to the moment its first request would leave, sending nothing
        (`resent`: rehearsing a resend, `CommandContext.resent`).

        Raises what would refuse the operation before sending (a missing secret, a card number,
        an unsupported currency, a builder's `InvalidRequest`), so the payment service can refuse
        it before the ledger records anything. `perform` then runs it for real; a single-request
        command sends the very transfer the rehearsal built and checked.
        """
        self.prepare()
        context = self.context(command, rehearsal=True, resent=resent)
        handler = self.commands[command]
        if isinstance(handler, GatewayCommand) and type(handler).execute is GatewayCommand.execute:
            # A single request: prepared here, as its `execute` would before raising `Rehearsed`;
            # an exception unwinding the pipeline on every operation costs more than the check.
            self._check(command, subject)
            return Rehearsal(self.code, command, subject, handler.prepare(subject, context))
        try:
            self._run(context, command, subject)
        except Rehearsed as reached:
            if reached.command is handler:
                return Rehearsal(self.code, command, subject, reached.transfer)
        return Rehearsal(self.code, command, subject, None)

    def prepare(self) -> None:
        """Build the commands (reading the credentials they need) and load the client's
        certificates: what makes this method unusable whatever the operation raises here."""
        _ = self.commands
        prepare = getattr(self.client, "prepare", None)
        if prepare is not None:
            prepare()

    def perform(self, rehearsal: Rehearsal, *, resent: bool = False) -> CommandResult:
        """Run a rehearsed command (see `rehearse`); `resent`: see `CommandContext.resent`."""
        handler = self.commands[rehearsal.command]
        context = self.context(rehearsal.command, resent=resent)
        if rehearsal.transfer is not None and isinstance(handler, GatewayCommand):
            return handler.perform(rehearsal.subject, rehearsal.transfer, context)
        return self._run(context, rehearsal.command, rehearsal.subject)

    def _run(self, context: CommandContext, command: str, subject: Subject) -> CommandResult:
        self._check(command, subject)
        return self.commands[command].execute(subject, context)

    def _check(self, command: str, subject: Subject) -> None:
        """What refuses `subject` whatever the command sends."""
        refuse_card_numbers(subject)  # every caller-controlled value, whether the provider sends it or not
        if command in _FIRST_OPERATIONS and self._limited:
            self._check_available(subject)
        currency = subject.currency
        accepted = self.definition.currencies
        if currency is not None and accepted is not None and currency not in accepted:
            raise InvalidRequest(
                f"{self.definition.title} does not accept {currency}; nothing was sent",
                param="currency", provider=self.definition.code, code="currency_not_supported",
            )

    def _check_available(self, subject: Subject) -> None:
        """A first operation only where `paywire methods` would offer the method: its countries
        (the order's billing country), currencies and order total limits."""
        order = subject.order
        billing = order.billing if order is not None else None
        country = billing.country if billing is not None else None
        total = order.amount if order is not None and order.amount is not None else subject.amount
        if total is not None and subject.amount is not None and total.currency != subject.amount.currency:
            # The limits are the currency charged's: an order total in another would pass a
            # method offered only in it (currencies = ["EUR"]) for a payment in USD.
            raise InvalidRequest(f"the order total {total} is not in the currency of the payment, "
                                 f"{subject.amount.currency}: give the order's total in the currency charged; "
                                 "nothing was sent", param="order.amount", code="currency_mismatch")
        why = self.config.unavailable(country=country, amount=total)
        if why is not None:
            raise UnsupportedOperation(f"payment method {self.code!r} is not available: {why}; nothing was sent",
                                       code="method_unavailable")

    def longest_life(self, command: str) -> float:
        """Seconds a run of `command` may keep a request able to land at the provider: every
        attempt the retry policy allows, each waiting its full connect and read timeouts, the
        longest backoff between them, for each request the command sends, plus the provider's
        own `outcome_window`."""
        life = self._lives.get(command)
        if life is not None:
            return life
        retry, timeout = self._retry, self.settings.timeout
        per_transfer = ((retry.total + 1) * (timeout.connect + timeout.read)
                        + retry.total * (retry.backoff_max + retry.backoff_jitter))
        handler = self.commands[command] if command in self.commands else None
        transfers = getattr(handler, "transfers", 1 if isinstance(handler, GatewayCommand) else 3)
        life = self._lives[command] = float(transfers * per_transfer + self.definition.outcome_window)
        return life

    def webhook_verifier(self) -> WebhookVerifier | None:
        if self._verifier is None and self.definition.webhook is not None:
            self._verifier = load_reference(self.definition, self.definition.webhook, "webhook")(self.settings)
        return self._verifier


class Gateway:
    """Every configured payment method, by code.

    :param methods: method configurations; when empty, one sandbox method per installed provider.
    :param plugins: the plugin manager (the process-wide one, loaded from entry points, by default).
    :param retry: the retry policy for every transfer.
    """

    def __init__(
        self,
        methods: list[MethodConfig] | None = None,
        *,
        plugins: Plugins | None = None,
        retry: Retry | None = None,
        settings: Mapping[str, Any] | None = None,
    ) -> None:
        self.plugins = plugins or default_plugins()
        if not methods:  # still subject to PAYWIRE_<METHOD>_BASE_URL and _ENVIRONMENT
            methods = [MethodConfig.from_mapping(code, {}) for code in sorted(self.plugins.gateways())]
        for config in methods:
            definition = self.plugins.gateway(config.provider, method=config.code)
            check_options(config.code, definition.code, config.options, definition.options)
        self.methods = PaymentMethodList(methods)
        self.settings: Mapping[str, Any] = dict(settings or {})
        self._retry = retry or Retry()
        self._runtime: dict[str, Method] = {}
        self._lock = threading.Lock()

    @classmethod
    def from_config(
        cls, source: str | Path | Mapping[str, Any] | None = None, *, plugins: Plugins | None = None,
        retry: Retry | None = None,
    ) -> Gateway:
        """A gateway from a TOML file or dict (`None`: `PAYWIRE_CONFIG`, then ./paywire.toml)."""
        methods, settings = load_config(source)
        return cls(methods, plugins=plugins, retry=retry, settings=settings)

    def method(self, code: str) -> Method:
        method = self._runtime.get(code)
        if method is None:
            with self._lock:
                method = self._runtime.get(code)
                if method is None:
                    config = self.methods.get(code)
                    method = Method(config, self.plugins.gateway(config.provider), self.plugins, self._retry)
                    self._runtime[code] = method
        return method

    def execute(self, method: str, command: str, subject: Subject) -> CommandResult:
        """Run `command` of `method` for `subject` through the pipeline."""
        return self._active(method).execute(command, subject)

    def rehearse(self, method: str, command: str, subject: Subject, *, resent: bool = False) -> Rehearsal:
        """Everything `execute` does before a request leaves, sending nothing (`Method.rehearse`)."""
        return self._active(method).rehearse(command, subject, resent=resent)

    def prepare(self, method: str) -> None:
        """Raise what makes `method` unusable whatever the operation (unknown, inactive, a missing
        credential, unreadable certificates), sending nothing: checked before a ledger is made."""
        self._active(method).prepare()

    def perform(self, rehearsal: Rehearsal, *, resent: bool = False) -> CommandResult:
        """Run a rehearsed command for real (`Method.perform`); `resent`: the operation was sent
        before under the same key and may have taken effect (`CommandContext.resent`)."""
        return self._active(rehearsal.method).perform(rehearsal, resent=resent)

    def longest_life(self, method: str, command: str) -> float:
        """Seconds a run of `command` on `method` may keep a request able to land (`Method.longest_life`)."""
        return self.method(method).longest_life(command)

    def _active(self, method: str) -> Method:
        runtime = self._runtime.get(method) or self.method(method)
        if not runtime.config.active:
            raise UnsupportedOperation(f"payment method {method!r} is not active", code="method_inactive")
        return runtime

    def available_methods(self, *, country: str | None = None, currency: str | None = None,
                          amount: Any = None) -> list[MethodConfig]:
        supported = {code: definition.currencies for code, definition in self.plugins.gateways().items()}
        installed = [m for m in self.methods.available(country=country, currency=currency, amount=amount,
                                                         supported=supported) if m.provider in supported]
        return installed

    def parse_webhook(self, method: str, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Verify and parse a webhook delivery holding one event for `method`; a bad one raises
        `WebhookVerificationError` (see `parse_notification` for deliveries of several)."""
        batch = self.parse_notification(method, headers, body)
        if len(batch.events) != 1:
            raise WebhookVerificationError(
                f"this {method} delivery holds {len(batch.events)} events: read it with parse_notification",
                provider=self.method(method).definition.code, code="batch",
            )
        return batch.events[0]

    def parse_notification(self, method: str, headers: Mapping[str, str], body: bytes) -> WebhookBatch:
        """Verify and parse a webhook delivery for `method`, however many events it holds, with the
        acknowledgement its provider expects; a bad one raises `WebhookVerificationError`."""
        runtime = self.method(method)
        if not isinstance(body, bytes):
            raise WebhookVerificationError("webhook body must be the raw bytes received", provider=runtime.definition.code)
        if len(body) > MAX_WEBHOOK_BYTES:
            raise WebhookVerificationError(
                f"webhook body of {len(body)} bytes exceeds the {MAX_WEBHOOK_BYTES}-byte limit",
                provider=runtime.definition.code, code="too_large",
            )
        if not isinstance(headers, Mapping):  # None, or a framework's list of pairs
            raise WebhookVerificationError(f"webhook headers must be a mapping of name to value, not "
                                           f"{type(headers).__name__}: pass dict(request.headers)",
                                           provider=runtime.definition.code)
        lowered = {str(name).lower(): str(value) for name, value in headers.items()}
        parsed = self.plugins.parse_webhook(runtime.settings, runtime.webhook_verifier(), lowered, body)
        return parsed if isinstance(parsed, WebhookBatch) else WebhookBatch(events=(parsed,))

    def close(self) -> None:
        for method in self._runtime.values():
            method.client.close()

    def __enter__(self) -> Gateway:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
