"""The gateway command (Magento's GatewayCommand): one operation, read top to bottom as
build -> transfer -> send (with retries) -> decode -> validate -> map errors -> handle.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import attrs

from paywire.command.context import CommandContext
from paywire.command.result import CommandResult
from paywire.converter import JSON, Converter
from paywire.error_mapper import ErrorMapperProtocol
from paywire.errors import (
    AuthenticationError,
    InvalidRequest,
    OutcomeUnknown,
    PaywireError,
    ProviderUnavailable,
    RateLimited,
    TransportError,
)
from paywire.handler import HandlerChain
from paywire.http.response import Response
from paywire.http.transfer import Transfer, TransferFactory
from paywire.request.builder import Builder, BuilderComposite
from paywire.security import get_logger, redact, refuse_card_numbers
from paywire.subject import Subject
from paywire.validator.result import Validator

__all__ = ["Command", "GatewayCommand", "Rehearsed", "before_the_write"]

log = get_logger("paywire.command")


class Command(Protocol):
    """Anything a command pool can hold: a `GatewayCommand`, or a plugin's own composite.

    A composite may declare `transfers`, the most requests one run sends (an access token
    included); the ledger assumes 3 when it does not, to bound how long its outcome can take.
    """

    def execute(self, subject: Subject, context: CommandContext) -> CommandResult: ...


class Rehearsed(BaseException):
    """A rehearsal reached the point where a request would leave; nothing was sent. It carries the
    command and the transfer it built, so a single-request command sends what was checked.

    A BaseException, so that a composite command's own error handling lets it through.
    """

    def __init__(self, command: GatewayCommand, transfer: Transfer) -> None:
        super().__init__(command, transfer)
        self.command = command
        self.transfer = transfer


def _builders(value: Builder | BuilderComposite | tuple[Builder, ...] | list[Builder]) -> BuilderComposite:
    if isinstance(value, BuilderComposite):
        return value
    if isinstance(value, (tuple, list)):
        return BuilderComposite(tuple(value))
    return BuilderComposite((value,))


@attrs.frozen
class GatewayCommand:
    """One gateway operation assembled from its parts.

    :param builder: a builder, a list of builders, or a `BuilderComposite`.
    :param transfer_factory: turns the request into a `Transfer`.
    :param validator: checks the answer; a failing result goes to the error mapper.
    :param error_mapper: turns a failed result into a typed error.
    :param handler: turns a valid answer into a `CommandResult`.
    :param converter: decodes the answer body (JSON unless the provider says otherwise).
    :param retry_hint: the provider's own word on whether an answer may be retried (a header
        such as Stripe-Should-Retry): True or False overrides the status rule, None defers to it.
    """

    builder: BuilderComposite = attrs.field(converter=_builders)
    transfer_factory: TransferFactory
    validator: Validator
    error_mapper: ErrorMapperProtocol
    handler: HandlerChain
    converter: Converter = JSON
    retry_hint: Callable[[Response], bool | None] | None = None

    def execute(self, subject: Subject, context: CommandContext) -> CommandResult:
        transfer = self.prepare(subject, context)
        if context.rehearsal:
            raise Rehearsed(self, transfer)
        return self.perform(subject, transfer, context)

    def prepare(self, subject: Subject, context: CommandContext) -> Transfer:
        """The transfer to send, built and checked: nothing has left yet."""
        request = self.build(subject, context)
        transfer = self.transfer_factory.create(request, subject)
        refuse_card_numbers(request, headers=transfer.headers, wire=(transfer.url,))
        return transfer

    def perform(self, subject: Subject, transfer: Transfer, context: CommandContext) -> CommandResult:
        """Send a prepared transfer, then validate, map errors and handle the answer, all inside
        the `perform_command` hook, so that its wrappers see how the command ended."""
        hooks = context.plugins
        if "perform_command" not in hooks.extended:  # no wrapper to call it: no closure for one
            return self._perform(subject, transfer, context)
        return hooks.perform_command(context, subject, transfer, lambda: self._perform(subject, transfer, context))

    def _perform(self, subject: Subject, transfer: Transfer, context: CommandContext) -> CommandResult:
        hooks = context.plugins
        response = self.send(transfer, context)
        own = self.validator(subject, response)
        result = own
        if "validate_response" in hooks.extended:
            for extra in hooks.validate_response(context, subject, response):
                result = result + extra
        if not result.ok:
            error = self.error_mapper(subject, response, result)
            error = hooks.map_error(context, subject, response, result, error) or error
            if own.ok:
                error = _refused_success(error, response)
            raise after_unsure(error) if response.unsure else error
        try:
            outcome = self.handler(subject, response)
            if "handle_response" in hooks.extended:
                hooks.handle_response(context, subject, response, outcome)
        except InvalidRequest as error:
            raise _unreadable(error, response) from error
        except PaywireError:
            raise
        except Exception as error:  # a field missing (KeyError) or of another type (ValueError, TypeError)
            unread = InvalidRequest(f"{type(error).__name__}: {error}", provider=context.provider)
            raise _unreadable(unread, response) from error
        return outcome

    def build(self, subject: Subject, context: CommandContext) -> Mapping[str, Any]:
        """The request: the provider's builders, then plugins' parts (checked for card numbers
        on the wire by `execute`)."""
        request: Mapping[str, Any] = self.builder(subject)
        hooks = context.plugins
        extra = hooks.build_request(context, subject) if "build_request" in hooks.extended else None
        if extra:
            request = BuilderComposite.merge([(f"{context.provider} {context.command} builders", request), *extra])
        return request

    def send(self, transfer: Transfer, context: CommandContext) -> Response:
        """Send with the retry policy; the answer is decoded once, and says (`unsure`) whether an
        attempt before it may have taken effect (a read timeout, a dropped connection, a 5xx, or
        an earlier call's: `CommandContext.resent`)."""
        retry, hooks = context.retry, context.plugins
        attempt, refreshed = 1, False
        unsure = context.resent  # an earlier call's attempt may have taken effect
        while True:
            started = time.perf_counter()
            try:
                # The client itself unless a plugin extends send_transfer: no hook call to make.
                response = (hooks.send_transfer(context, transfer) if "send_transfer" in hooks.extended
                            else context.client.send(transfer))
            except PaywireError as error:
                # Raised as it is: its cause stays the client's (the urllib3 exception), and a
                # `raise e from e` would make the chain a loop.
                if not retry.is_retryable_error(transfer, error):
                    raise self._final(error, transfer, attempt, unsure)  # noqa: B904
                retry = retry.increment(error=error)
                if retry.is_exhausted():
                    raise self._final(error, transfer, attempt, unsure)  # noqa: B904
                unsure = unsure or error.may_have_been_sent
                log.info("retrying %s %s after %s (attempt %d)", transfer.method, transfer.url, type(error).__name__, attempt)
                retry.sleep()
                attempt += 1
                continue
            if response.status == 401 and transfer.auth is not None and not refreshed:
                refreshed = True
                try:
                    renewed = transfer.auth.refresh()
                except PaywireError as error:  # no new credential: this attempt's error, as above
                    raise self._final(error, transfer, attempt, unsure)  # noqa: B904
                if renewed:
                    attempt += 1
                    continue
            # A success is never sent again (`Retry.is_retryable_status`): no hint to read for it.
            if not 200 <= response.status < 300:
                hint = self.retry_hint(response) if self.retry_hint is not None else None
                if retry.is_retryable_status(transfer, response, hint):
                    next_retry = retry.increment(response=response)
                    if not next_retry.is_exhausted():
                        log.info("retrying %s %s after HTTP %d", transfer.method, transfer.url, response.status)
                        next_retry.sleep(response)
                        retry, attempt = next_retry, attempt + 1
                        unsure = unsure or response.status >= 500  # a 5xx may come after the provider acted
                        continue
            if log.isEnabledFor(logging.DEBUG):  # the clock is read again only for the message
                log.debug(
                    "%s %s -> %d in %.1f ms", transfer.method, transfer.url, response.status,
                    (time.perf_counter() - started) * 1000,
                )
            return self._decode(response, attempt, unsure)

    def _decode(self, response: Response, attempt: int, unsure: bool) -> Response:
        try:
            data = self.converter.decode(response.body) if response.body else None
        except ValueError:
            data = None
        return Response(response.status, response.headers, response.body, data, attempt, unsure)

    @staticmethod
    def _final(error: PaywireError, transfer: Transfer, attempts: int, unsure: bool = False) -> PaywireError:
        """The error to raise after the last attempt, told how many attempts ran and what was sent.

        Its `may_have_been_sent` comes from the client: `OutcomeUnknown` means the request may
        have taken effect and must be reconciled, never sent again with a new key. So does an
        earlier attempt's (`unsure`): a last attempt that could not connect proves nothing about it.
        """
        if attempts > 1:
            error.message = f"{error.message} (after {attempts} attempts)"
        error.details.setdefault("attempts", attempts)
        error.details.setdefault("request", redact({"method": transfer.method, "url": transfer.url}))
        return after_unsure(error) if unsure else error


def _unreadable(error: InvalidRequest, response: Response) -> OutcomeUnknown:
    """A success answer the handlers (or a plugin's `handle_response`) cannot read (an amount
    paywire cannot hold, a field missing): the provider applied the request, or may have, so this
    is no evidence that it did not (`InvalidRequest` would be recorded as failed): the outcome is
    unknown, to be reconciled."""
    return OutcomeUnknown(
        f"{error.message}; the provider answered HTTP {response.status} but its answer cannot be read, so the "
        "outcome is unknown", provider=error.provider, code=error.code, status=response.status,
        details=dict(error.details),
    )


def _refused_success(error: PaywireError, response: Response) -> PaywireError:
    """The error for an answer the provider's own validators took for its success, which another
    validator (a `validate_response` policy) refused: the provider applied the request, so it is
    an unknown outcome whatever the error mapper made of the refusal's codes (a shop may name its
    code as the provider names a decline, and a code-keyed table then reads it as one)."""
    if isinstance(error, OutcomeUnknown):
        return error
    return OutcomeUnknown.instead_of(error, f"the provider answered HTTP {response.status} with its success, refused "
                                            "by another validator, so the outcome is unknown", status=response.status)


def after_unsure(error: PaywireError) -> PaywireError:
    """The operation's error when an earlier attempt may have taken effect. The last attempt's
    evidence that *it* was not applied (a connection never made, a rate limit, a refused
    credential, a 5xx the provider documents as not processed) comes before the provider's
    deduplication by key and says nothing about the earlier one: the outcome is unknown. A
    definite answer (a decline, a validation error) stands: the provider gave it under the key."""
    if isinstance(error, (RateLimited, AuthenticationError)) or (
        isinstance(error, (TransportError, ProviderUnavailable)) and not error.may_have_been_sent
    ):
        return OutcomeUnknown.instead_of(error, "an earlier attempt may have taken effect, so the outcome is unknown")
    return error


def before_the_write(error: PaywireError, context: CommandContext, why: str) -> PaywireError:
    """The error of a read a composite command makes before its write, the write not sent. A
    read changes nothing, so the read's lost answer (a dropped connection, a timeout, a 5xx) is
    no sign that the operation took effect: a retryable failure, `why` saying what was not done.
    Not so for a resend (`CommandContext.resent`): the earlier attempt may have written, and the
    error stays as it is (an unknown outcome). Nor for an answer the provider gave as its success
    (2xx) that cannot be read or is refused: it was not lost, and what it holds may be the
    operation's outcome (PayPal's complete answers an order completed before from its read)."""
    answered = error.status is not None and 200 <= error.status < 300
    if context.resent or answered or not (
        isinstance(error, (TransportError, ProviderUnavailable)) and error.may_have_been_sent
    ):
        return error
    kind = ProviderUnavailable if isinstance(error, ProviderUnavailable) else TransportError
    failed = kind(f"{error.message}; {why}", provider=error.provider, code=error.code, status=error.status,
                  debug_id=error.debug_id, details=dict(error.details), retryable=True, may_have_been_sent=False)
    failed.__cause__ = error
    return failed
