"""Deliberately broken variants of the acme plugin, each with one defect seen in real integrations.

Each variant registers acme's gateway definition with one part swapped, so everything else (the
emulator, the sandbox, the other commands) is the real acme plugin. `FIELD_SIGNED` is not broken:
acme with a second signing scheme (an HMAC over fields inside the body, no timestamp, as Adyen
signs), so that the kit's declared-scheme checks have a sound plugin and a broken one to judge.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import json
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from paywire import (
    CommandPool,
    Declined,
    ErrorMapper,
    ErrorRule,
    GatewayCommand,
    GatewayDefinition,
    GatewaySettings,
    InvalidRequest,
    Money,
    PaywireError,
    ProviderUnavailable,
    Response,
    Result,
    Subject,
    TransportError,
    WebhookEvent,
    hookimpl,
)
from paywire.command.context import CommandContext
from paywire.errors import OutcomeUnknown, WebhookVerificationError
from paywire.http.retry import Retry
from paywire.http.transfer import Transfer
from paywire.testing.emulator import EmulatorRequest, Reply
from paywire.testing.sandbox import Sandbox
from paywire_acme import ACME
from paywire_acme.commands import (
    ERRORS,
    answered_ok,
    build_commands,
    decided_later,
    fetched_fields,
    metadata_request,
    operation_amount,
    payment_fields,
    payment_request,
)
from paywire_acme.emulator import AcmeEmulator
from paywire_acme.emulator import sandbox as acme_sandbox
from paywire_acme.webhook import build_verifier, sign


class BrokenAcme:
    """The acme plugin with its gateway definition changed by `parts`."""

    def __init__(self, name: str, **parts: Any) -> None:
        self.__name__ = f"broken_acme_{name}"
        self.definition = ACME._replace(**parts)

    @hookimpl
    def register_gateways(self, register: Callable[[GatewayDefinition], None]) -> None:
        register(self.definition)


def _with(settings: GatewaySettings, **changed: Any) -> CommandPool:
    """Acme's commands, with some replaced by `changed(command) -> command` functions."""
    pool = build_commands(settings)
    commands = {code: changed[code](command) if code in changed else command for code, command in pool.items()}
    return CommandPool(commands, gateway=settings.gateway)


# -- 1. amounts converted through a float and rounded to two decimals --------------------------------
def _amount_sent_as(amount: Callable[[Money], Any]) -> Callable[[GatewaySettings], CommandPool]:
    """Acme's authorize and sale, with the amount they send computed by `amount` instead."""

    def request(capture: bool) -> Callable[[Subject], dict[str, Any]]:
        build = payment_request(capture)

        def built(subject: Subject) -> dict[str, Any]:
            body: dict[str, Any] = build(subject)
            assert subject.amount is not None
            body["amount"] = amount(subject.amount)
            return body

        return built

    def commands(settings: GatewaySettings) -> CommandPool:
        return _with(settings,
                     authorize=lambda command: attrs.evolve(command, builder=[request(False), metadata_request]),
                     sale=lambda command: attrs.evolve(command, builder=[request(True), metadata_request]))

    return commands


rounding_commands = _amount_sent_as(lambda money: int(round(float(money.amount), 2) * 10**money.exponent))


# -- 2. the API key quoted in error messages "to help debugging" ---------------------------------------
def leaky_commands(settings: GatewaySettings) -> CommandPool:
    key = settings.secret("api_key").reveal()

    def mapper(subject: Subject, response: Response, result: Result) -> PaywireError:
        error = ERRORS(subject, response, result)
        error.message = f"{error.message} (sent with key {key})"
        return error

    leak = {code: (lambda command: attrs.evolve(command, error_mapper=mapper)) for code in build_commands(settings)}
    return _with(settings, **leak)


# -- 3. the signature checked over the body as re-serialised after parsing ------------------------------
def reserialising_verifier(settings: GatewaySettings) -> Callable[[Mapping[str, str], bytes], WebhookEvent]:
    verify = build_verifier(settings)

    def lenient(headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        event: WebhookEvent = verify(headers, json.dumps(json.loads(body)).encode())
        return event

    return lenient


# -- 4. a decline mapped as retryable ------------------------------------------------------------------
RETRYING_DECLINES = ErrorMapper("acme", {**ERRORS.rules, "card_declined": ErrorRule(Declined, retryable=True)})


def retrying_decline_commands(settings: GatewaySettings) -> CommandPool:
    retry = {code: (lambda command: attrs.evolve(command, error_mapper=RETRYING_DECLINES))
             for code in build_commands(settings)}
    return _with(settings, **retry)


# -- 5. amounts sent as hundredths whatever the currency's exponent ------------------------------------
exponent_commands = _amount_sent_as(lambda money: int(money.amount * 100))


# -- 6. no idempotency key on the wire -----------------------------------------------------------------
def keyless_commands(settings: GatewaySettings) -> CommandPool:
    def keyless(command: GatewayCommand) -> GatewayCommand:
        return attrs.evolve(command, transfer_factory=attrs.evolve(command.transfer_factory, idempotency_header=None))

    return _with(settings, **{code: keyless for code in build_commands(settings)})


# -- 7. a 5xx mapped to a decline -----------------------------------------------------------------------
SERVER_ERROR_DECLINES = ErrorMapper("acme", {**ERRORS.rules, "server_error": ErrorRule(Declined)})


def _mapped(mapper: Any) -> Callable[[GatewaySettings], CommandPool]:
    def build(settings: GatewaySettings) -> CommandPool:
        return _with(settings, **{code: (lambda command: attrs.evolve(command, error_mapper=mapper))
                                  for code in build_commands(settings)})

    return build


# -- 8. a 5xx taken as "not applied": recorded failed although the provider may have acted -------------
def _sure_of_5xx(subject: Subject, response: Response, result: Result) -> PaywireError:
    error = ERRORS(subject, response, result)
    if isinstance(error, ProviderUnavailable):
        error.may_have_been_sent = False
    return error


# -- 9. a verifier that accepts anything -----------------------------------------------------------------
def _parsed(body: bytes) -> WebhookEvent:
    try:
        event = json.loads(body)
        payment = event["data"]
        return WebhookEvent(provider="acme", id=event["id"], type=event["type"], kind=event["type"].removeprefix("payment."),
                            reference=payment["id"], references={"payment": payment["id"]},
                            amount=Money.minor_units(int(payment["last_amount"]), payment["currency"]))
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise WebhookVerificationError(f"webhook payload is malformed: {exc}", provider="acme") from None


def trusting_verifier(settings: GatewaySettings) -> Callable[[Mapping[str, str], bytes], WebhookEvent]:
    return lambda headers, body: _parsed(body)


def _timestamp_and_signature(headers: Mapping[str, str]) -> tuple[int, str]:
    """Acme's signature headers, as the real verifier reads them (the broken verifiers differ after)."""
    try:
        return int(headers["acme-timestamp"]), headers["acme-signature"]
    except (KeyError, ValueError):
        raise WebhookVerificationError("Acme-Timestamp and Acme-Signature are required", provider="acme") from None


# -- 10. a verifier that checks the signature but not the age of its timestamp --------------------------
def timeless_verifier(settings: GatewaySettings) -> Callable[[Mapping[str, str], bytes], WebhookEvent]:
    secret = settings.secret("webhook_secret")

    def timeless(headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        timestamp, signature = _timestamp_and_signature(headers)
        if not hmac.compare_digest(sign(secret.reveal(), timestamp, body).encode(), signature.encode("utf-8", "replace")):
            raise WebhookVerificationError("webhook signature does not match", provider="acme")
        return _parsed(body)

    return timeless


# -- 11. the API key in the debug log --------------------------------------------------------------------
def logging_commands(settings: GatewaySettings) -> CommandPool:
    key = settings.secret("api_key").reveal()
    log = logging.getLogger("paywire_acme.debug")

    def logged(build: Callable[[Subject], dict[str, Any]]) -> Callable[[Subject], dict[str, Any]]:
        def request(subject: Subject) -> dict[str, Any]:
            log.debug("building a request with key %s", key)
            return build(subject)

        return request

    return _with(settings,
                 authorize=lambda command: attrs.evolve(command, builder=[logged(payment_request(False)), metadata_request]),
                 sale=lambda command: attrs.evolve(command, builder=[logged(payment_request(True)), metadata_request]))


# -- 12. a read timeout reported as a failure that was never sent ---------------------------------------
@attrs.frozen
class _SureOfTimeouts:
    command: GatewayCommand

    def execute(self, subject: Subject, context: CommandContext) -> Any:
        try:
            return self.command.execute(subject, context)
        except OutcomeUnknown as lost:
            raise TransportError(f"acme did not answer: {lost.message}", provider="acme",
                                 may_have_been_sent=False) from None


def timeout_commands(settings: GatewaySettings) -> CommandPool:
    return _with(settings, **{code: _SureOfTimeouts for code in build_commands(settings)})


# -- 13. a refund of the order total instead of the amount asked for ------------------------------------
def _order_total(subject: Subject) -> dict[str, Any]:
    total = subject.order.amount if subject.order is not None and subject.order.amount else subject.amount
    return {"amount": total.minor} if total is not None else {}


def order_total_refund_commands(settings: GatewaySettings) -> CommandPool:
    return _with(settings, refund=lambda command: attrs.evolve(command, builder=[_order_total]))


# -- 14. a capture reporting the order total as the amount captured -------------------------------------
def _captured_order_total(subject: Subject, response: Response) -> dict[str, Any]:
    total = subject.order.amount if subject.order is not None and subject.order.amount else subject.amount
    return {"amount": total}


def order_total_capture_commands(settings: GatewaySettings) -> CommandPool:
    from paywire import HandlerChain

    return _with(settings, capture=lambda command: attrs.evolve(
        command, handler=HandlerChain([payment_fields, operation_amount, decided_later, _captured_order_total])))


# -- 15. a fresh idempotency key on every retry attempt (the plugin's own retry loop) ------------------
@attrs.frozen
class _OwnRetryLoop(GatewayCommand):
    """A command that retries by itself, each attempt after the first sent as `resent` makes it."""

    def resent(self, transfer: Transfer, attempt: int) -> Transfer:
        raise NotImplementedError

    def send(self, transfer: Transfer, context: CommandContext) -> Response:
        retry, attempt, once = context.retry, 1, attrs.evolve(context, retry=Retry.never())
        while True:
            sent = transfer if attempt == 1 else self.resent(transfer, attempt)
            try:
                response = super().send(sent, once)
            except PaywireError as error:
                if not retry.is_retryable_error(sent, error) or retry.increment(error=error).is_exhausted():
                    raise
                retry, attempt = retry.increment(error=error), attempt + 1
                continue
            if retry.is_retryable_status(sent, response, None) and not retry.increment(response=response).is_exhausted():
                retry, attempt = retry.increment(response=response), attempt + 1
                continue
            return response


def _own_retry_commands(settings: GatewaySettings, loop: type[_OwnRetryLoop]) -> CommandPool:
    """Every acme command, sent through `loop` instead."""

    def looping(command: GatewayCommand) -> GatewayCommand:
        return loop(**{field.name: getattr(command, field.name) for field in attrs.fields(GatewayCommand)})

    return _with(settings, **{code: looping for code in build_commands(settings)})


@attrs.frozen
class _RetryingWithFreshKeys(_OwnRetryLoop):
    def resent(self, transfer: Transfer, attempt: int) -> Transfer:
        return attrs.evolve(transfer, headers={**transfer.headers,
                                               "Acme-Idempotency-Key": f"{transfer.idempotency_key}-retry-{attempt}"})


def fresh_key_commands(settings: GatewaySettings) -> CommandPool:
    return _own_retry_commands(settings, _RetryingWithFreshKeys)


# -- 16. a builder that writes into the subject it was given --------------------------------------------
def _consuming_metadata(subject: Subject) -> dict[str, Any]:
    metadata = dict(subject.metadata)
    object.__setattr__(subject, "metadata", {})  # "consumed": a later builder must not send it twice
    return {"metadata": metadata} if metadata else {}


def writing_commands(settings: GatewaySettings) -> CommandPool:
    return _with(settings,
                 authorize=lambda command: attrs.evolve(command, builder=[payment_request(False), _consuming_metadata]),
                 sale=lambda command: attrs.evolve(command, builder=[payment_request(True), _consuming_metadata]))


# -- 17. fetch reporting a refused payment as authorized ------------------------------------------------
def _refused_as_authorized(subject: Subject, response: Response) -> dict[str, Any]:
    if response.status == 404:
        return {"state": "not_found"}
    data = dict(response.data)
    if data["status"] == "failed":
        data["status"] = "authorized"
    return payment_fields(subject, attrs.evolve(response, data=data))


def refused_fetch_commands(settings: GatewaySettings) -> CommandPool:
    from paywire import HandlerChain

    return _with(settings, fetch=lambda command: attrs.evolve(command, handler=HandlerChain([_refused_as_authorized])))


# -- 18. an answer the provider decides later reported as succeeded -------------------------------------
def eager_commands(settings: GatewaySettings) -> CommandPool:
    from paywire import HandlerChain

    eager = HandlerChain([payment_fields, operation_amount])
    return _with(settings, sale=lambda command: attrs.evolve(command, handler=eager),
                 capture=lambda command: attrs.evolve(command, handler=eager))


# -- 19. a pending authorization reported as authorized -------------------------------------------------
def eager_authorize_commands(settings: GatewaySettings) -> CommandPool:
    from paywire import HandlerChain

    return _with(settings, authorize=lambda command: attrs.evolve(
        command, handler=HandlerChain([payment_fields, operation_amount])))


# -- 20. a signature compared only as far as the header's value goes -------------------------------------
def prefix_verifier(settings: GatewaySettings) -> Callable[[Mapping[str, str], bytes], WebhookEvent]:
    secret = settings.secret("webhook_secret")

    def verify(headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        timestamp, signature = _timestamp_and_signature(headers)
        if abs(time.time() - timestamp) > 300:
            raise WebhookVerificationError("webhook timestamp is outside the tolerance", provider="acme")
        expected = sign(secret.reveal(), timestamp, body)
        if not signature or not hmac.compare_digest(expected[:len(signature)], signature):
            raise WebhookVerificationError("webhook signature does not match", provider="acme")
        return _parsed(body)

    return verify


# -- 21. "in progress" (the key's first request still in flight) mapped to a final refusal ----------------
IN_PROGRESS_REFUSED = ErrorMapper("acme", {**ERRORS.rules, "request_in_progress": ErrorRule(InvalidRequest)})


# -- 22. the idempotency key sent in a header Acme does not read ----------------------------------------
def unread_key_commands(settings: GatewaySettings) -> CommandPool:
    def unread(command: GatewayCommand) -> GatewayCommand:
        return attrs.evolve(command, transfer_factory=attrs.evolve(command.transfer_factory,
                                                                   idempotency_header="Idempotency-Key"))

    return _with(settings, **{code: unread for code in build_commands(settings)})


# -- 23. only a 4xx taken as a failure: a 5xx answer reported as success ------------------------------
def _only_4xx_fails(subject: Subject, response: Response) -> Result:
    return answered_ok(subject, response) if 400 <= response.status < 500 else Result.success()


def _tolerant_fields(subject: Subject, response: Response) -> dict[str, Any]:
    """Reads what it finds: a 5xx's body holds no payment, so the payment is taken as asked for."""
    data = response.data if isinstance(response.data, Mapping) else {}
    if "id" in data:
        return {**payment_fields(subject, response), **operation_amount(subject, response),
                **decided_later(subject, response)}
    return {"reference": data.get("id") or subject.idempotency_key, "state": "authorized",
            "authorized": subject.amount, "amount": subject.amount}


def success_on_5xx_commands(settings: GatewaySettings) -> CommandPool:
    from paywire import HandlerChain, ValidatorComposite

    def lenient(command: GatewayCommand) -> GatewayCommand:
        return attrs.evolve(command, validator=ValidatorComposite([(_only_4xx_fails, True)]),
                            handler=HandlerChain([_tolerant_fields]))

    return _with(settings, authorize=lenient, sale=lenient)


# -- 24. a connection lost after sending taken as a refusal of the card ----------------------------------
@attrs.frozen
class _LostAsDeclined:
    command: GatewayCommand

    def execute(self, subject: Subject, context: CommandContext) -> Any:
        try:
            return self.command.execute(subject, context)
        except OutcomeUnknown:
            raise Declined("acme did not confirm the payment", provider="acme") from None


def lost_declined_commands(settings: GatewaySettings) -> CommandPool:
    return _with(settings, **{code: _LostAsDeclined for code in build_commands(settings)})


# -- 25. the idempotency key left off the retries (the plugin's own retry loop) -------------------------
@attrs.frozen
class _RetryingWithoutKeys(_OwnRetryLoop):
    def resent(self, transfer: Transfer, attempt: int) -> Transfer:
        return attrs.evolve(transfer, headers={name: value for name, value in transfer.headers.items()
                                               if name.lower() != "acme-idempotency-key"})


def keyless_retry_commands(settings: GatewaySettings) -> CommandPool:
    return _own_retry_commands(settings, _RetryingWithoutKeys)


# -- 26. the provider's reference read from a field Acme does not send ----------------------------------
def _no_reference(subject: Subject, response: Response) -> dict[str, Any]:
    fields = payment_fields(subject, response)
    payment = response.data.get("payment_id")  # Acme names its payment `id`
    return {**fields, "reference": payment, "references": {"payment": payment} if payment else {}}


def lost_reference_commands(settings: GatewaySettings) -> CommandPool:
    from paywire import HandlerChain

    lost = HandlerChain([_no_reference, operation_amount, decided_later])
    return _with(settings, authorize=lambda command: attrs.evolve(command, handler=lost),
                 sale=lambda command: attrs.evolve(command, handler=lost))


# -- 27. the amount sent as a float of minor units ----------------------------------------------------
float_commands = _amount_sent_as(lambda money: float(money.amount) * 10**money.exponent)


# -- 28. fetch reporting the whole authorization captured once anything is ------------------------------
def _captured_whole(subject: Subject, response: Response) -> dict[str, Any]:
    fields = fetched_fields(subject, response)
    if response.data.get("captured"):
        fields["captured"] = Money.minor_units(int(response.data["amount"]), response.data["currency"])
    return fields


def inflated_fetch_commands(settings: GatewaySettings) -> CommandPool:
    from paywire import HandlerChain

    return _with(settings, fetch=lambda command: attrs.evolve(command, handler=HandlerChain([_captured_whole])))


# -- 29. a verifier that lets unsigned events through ("test events come unsigned") ----------------------
def unsigned_verifier(settings: GatewaySettings) -> Callable[[Mapping[str, str], bytes], WebhookEvent]:
    verify = build_verifier(settings)

    def lenient(headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        if "acme-signature" not in headers:
            return _parsed(body)
        event: WebhookEvent = verify(headers, body)
        return event

    return lenient


# -- 30. the amount asked for reported as authorized, whatever the provider held ------------------------
def _asked_amount(subject: Subject, response: Response) -> dict[str, Any]:
    return {"amount": subject.amount, "authorized": subject.amount}


def asked_amount_commands(settings: GatewaySettings) -> CommandPool:
    from paywire import HandlerChain

    asked = HandlerChain([payment_fields, _asked_amount, decided_later])
    return _with(settings, authorize=lambda command: attrs.evolve(command, handler=asked),
                 sale=lambda command: attrs.evolve(command, handler=asked))


# -- a second signing scheme: an HMAC over fields inside the body, no timestamp (as Adyen signs) --------
SIGNED_FIELDS = ("id", "type", "currency", "last_amount")


def field_signature(secret: str, event: Mapping[str, Any]) -> str:
    data = event["data"]
    text = ":".join(str(value) for value in (event["id"], event["type"], data["id"], data["currency"], data["last_amount"]))
    return hmac.new(secret.encode(), text.encode(), hashlib.sha256).hexdigest()


def field_verifier(amount_field: str) -> Callable[[GatewaySettings], Callable[[Mapping[str, str], bytes], WebhookEvent]]:
    """The verifier of field-signed events; its event amount read from `amount_field`."""

    def build(settings: GatewaySettings) -> Callable[[Mapping[str, str], bytes], WebhookEvent]:
        secret = settings.secret("webhook_secret")

        def verify(headers: Mapping[str, str], body: bytes) -> WebhookEvent:
            try:
                event = json.loads(body)
                data = event["data"]
                expected = field_signature(secret.reveal(), event)
                if not hmac.compare_digest(expected.encode(), str(event["signature"]).encode("utf-8", "replace")):
                    raise WebhookVerificationError("webhook signature does not match", provider="acme")
                return WebhookEvent(provider="acme", id=event["id"], type=event["type"],
                                    kind=event["type"].removeprefix("payment."), reference=data["id"],
                                    references={"payment": data["id"]},
                                    amount=Money.minor_units(int(data[amount_field]), data["currency"]))
            except (ValueError, KeyError, TypeError, AttributeError) as exc:
                raise WebhookVerificationError(f"webhook payload is malformed: {exc}", provider="acme") from None

        return verify

    return build


ROUNDING = BrokenAcme("rounding", build=rounding_commands)
LEAKY = BrokenAcme("leaky", build=leaky_commands)
LENIENT_WEBHOOK = BrokenAcme("lenient_webhook", webhook=reserialising_verifier)
RETRYABLE_DECLINE = BrokenAcme("retryable_decline", build=retrying_decline_commands)
WRONG_EXPONENT = BrokenAcme("wrong_exponent", build=exponent_commands)
KEYLESS = BrokenAcme("keyless", build=keyless_commands)
SERVER_ERROR_DECLINED = BrokenAcme("server_error_declined", build=_mapped(SERVER_ERROR_DECLINES))
SURE_OF_5XX = BrokenAcme("sure_of_5xx", build=_mapped(_sure_of_5xx))
TRUSTING_WEBHOOK = BrokenAcme("trusting_webhook", webhook=trusting_verifier)
TIMELESS_WEBHOOK = BrokenAcme("timeless_webhook", webhook=timeless_verifier)
LOGGED_KEY = BrokenAcme("logged_key", build=logging_commands)
SURE_OF_TIMEOUTS = BrokenAcme("sure_of_timeouts", build=timeout_commands)
ORDER_TOTAL_REFUND = BrokenAcme("order_total_refund", build=order_total_refund_commands)
ORDER_TOTAL_CAPTURE = BrokenAcme("order_total_capture", build=order_total_capture_commands)
FRESH_KEY_PER_ATTEMPT = BrokenAcme("fresh_key_per_attempt", build=fresh_key_commands)
WRITES_SUBJECT = BrokenAcme("writes_subject", build=writing_commands)
REFUSED_AS_AUTHORIZED = BrokenAcme("refused_as_authorized", build=refused_fetch_commands)
ACCEPTED_AS_SUCCEEDED = BrokenAcme("accepted_as_succeeded", build=eager_commands)
PENDING_AUTHORIZATION_AUTHORIZED = BrokenAcme("pending_authorization_authorized", build=eager_authorize_commands)
PREFIX_SIGNATURE = BrokenAcme("prefix_signature", webhook=prefix_verifier)
IN_PROGRESS_FAILED = BrokenAcme("in_progress_failed", build=_mapped(IN_PROGRESS_REFUSED))
UNREAD_KEY_HEADER = BrokenAcme("unread_key_header", build=unread_key_commands)
SUCCESS_ON_5XX = BrokenAcme("success_on_5xx", build=success_on_5xx_commands)
LOST_DECLINED = BrokenAcme("lost_declined", build=lost_declined_commands)
KEYLESS_RETRY = BrokenAcme("keyless_retry", build=keyless_retry_commands)
LOST_REFERENCE = BrokenAcme("lost_reference", build=lost_reference_commands)
FLOAT_AMOUNT = BrokenAcme("float_amount", build=float_commands)
INFLATED_FETCH = BrokenAcme("inflated_fetch", build=inflated_fetch_commands)
UNSIGNED_WEBHOOK = BrokenAcme("unsigned_webhook", webhook=unsigned_verifier)
ASKED_AMOUNT = BrokenAcme("asked_amount", build=asked_amount_commands)
FIELD_SIGNED = BrokenAcme("field_signed", webhook=field_verifier("last_amount"))
FIELD_SIGNED_UNSIGNED_AMOUNT = BrokenAcme("field_signed_unsigned_amount", webhook=field_verifier("amount"))



# -- 31. capture and refund amounts written as hundredths ("in cents"), whatever the currency --------
def _hundredths(subject: Subject) -> dict[str, Any]:
    return {"amount": int(subject.amount.amount * 100)} if subject.amount is not None else {}


def cents_follow_up_commands(settings: GatewaySettings) -> CommandPool:
    return _with(settings,
                 capture=lambda command: attrs.evolve(command, builder=[_hundredths, lambda s: {"final": s.final}]),
                 refund=lambda command: attrs.evolve(command, builder=[_hundredths]))


# -- 32. capture amounts sent in major units -------------------------------------------------------
def _major_units(subject: Subject) -> dict[str, Any]:
    return {"amount": int(subject.amount.amount)} if subject.amount is not None else {}


def major_capture_commands(settings: GatewaySettings) -> CommandPool:
    return _with(settings,
                 capture=lambda command: attrs.evolve(command, builder=[_major_units, lambda s: {"final": s.final}]))


# -- 33. captures sent to the payment the gateway created last (kept in the plugin's state) ------------
@attrs.frozen
class _RemembersLast:
    command: GatewayCommand
    last: list[str]
    remember: bool

    def execute(self, subject: Subject, context: CommandContext) -> Any:
        if not self.remember and self.last:
            subject = attrs.evolve(subject, reference=self.last[-1])
        result = self.command.execute(subject, context)
        if self.remember and result.reference:
            self.last.append(result.reference)
        return result


def last_payment_commands(settings: GatewaySettings) -> CommandPool:
    last: list[str] = []
    return _with(settings,
                 authorize=lambda c: _RemembersLast(c, last, True), sale=lambda c: _RemembersLast(c, last, True),
                 capture=lambda c: _RemembersLast(c, last, False))


# -- 34. fetch counting the refunded total twice -------------------------------------------------------
def _refunded_twice(subject: Subject, response: Response) -> dict[str, Any]:
    fields = fetched_fields(subject, response)
    if response.data.get("refunded"):
        fields["refunded"] = fields["refunded"] + fields["refunded"]
    return fields


# -- 35. fetch leaving out what is pending (a processing payment reported as decided) --------------------
def _pending_left_out(subject: Subject, response: Response) -> dict[str, Any]:
    if isinstance(response.data, Mapping) and response.data.get("status") == "processing":
        decided = {**response.data, "status": "captured" if response.data.get("capture") else "authorized"}
        return fetched_fields(subject, attrs.evolve(response, data=decided))
    return fetched_fields(subject, response)


def _fetch_handled_by(handler: Callable[[Subject, Response], dict[str, Any]]) -> Callable[[GatewaySettings], CommandPool]:
    def build(settings: GatewaySettings) -> CommandPool:
        from paywire import HandlerChain

        return _with(settings, fetch=lambda command: attrs.evolve(command, handler=HandlerChain([handler])))

    return build


# -- 36. a 429 mapped to a decline ("too many attempts with this card") --------------------------------
def _rate_limit_declined(subject: Subject, response: Response, result: Result) -> PaywireError:
    if response.status == 429:
        return Declined("too many attempts, try another card", provider="acme", code="rate_limited")
    return ERRORS(subject, response, result)


# -- 37. a handler reading the shop's note back from the answer's metadata, without a default -----------
def _note_read(subject: Subject, response: Response) -> dict[str, Any]:
    """Acme echoes `metadata`: empty when the shop sent none, and this reads it as always filled."""
    return {"raw": {**response.data, "note": response.data["metadata"]["shop_note"]}}


def note_reading_commands(settings: GatewaySettings) -> CommandPool:
    from paywire import HandlerChain

    reading = HandlerChain([payment_fields, operation_amount, decided_later, _note_read])
    return _with(settings, authorize=lambda command: attrs.evolve(command, handler=reading),
                 sale=lambda command: attrs.evolve(command, handler=reading))


# -- 38. an auth of the plugin's own holding the API key in a plain field (its repr shows it) -----------
@attrs.frozen
class _PlainKeyAuth:
    key: str

    def headers(self) -> Mapping[str, str]:
        return {"Authorization": f"Bearer {self.key}"}

    def refresh(self) -> bool:
        return False


def plain_auth_commands(settings: GatewaySettings) -> CommandPool:
    auth = _PlainKeyAuth(settings.secret("api_key").reveal())
    return _with(settings, **{code: (lambda command: attrs.evolve(
        command, transfer_factory=attrs.evolve(command.transfer_factory, auth=auth))) for code in build_commands(settings)})


CENTS_FOLLOW_UP = BrokenAcme("cents_follow_up", build=cents_follow_up_commands)
MAJOR_CAPTURE = BrokenAcme("major_capture", build=major_capture_commands)
LAST_PAYMENT = BrokenAcme("last_payment", build=last_payment_commands)
REFUNDED_TWICE = BrokenAcme("refunded_twice", build=_fetch_handled_by(_refunded_twice))
PENDING_LEFT_OUT = BrokenAcme("pending_left_out", build=_fetch_handled_by(_pending_left_out))
RATE_LIMIT_DECLINED = BrokenAcme("rate_limit_declined", build=_mapped(_rate_limit_declined))
NOTE_READING = BrokenAcme("note_reading", build=note_reading_commands)
PLAIN_AUTH = BrokenAcme("plain_auth", build=plain_auth_commands)


# -- 39. fetch without a reference looking the payment up by its order, not by the key ------------------
class OrderLookupEmulator(AcmeEmulator):
    """Acme with a lookup by order too (`?order=`: the first payment made for it), as many
    providers offer; a second payment for one order (after a decline, say) is not the one found."""

    def lookup(self, request: EmulatorRequest) -> Reply:
        order = dict(request.query).get("order")
        if order is None:
            return super().lookup(request)
        found = next((payment for payment in self.payments.values() if payment["order"] == order), None)
        if found is None:
            return Reply.json(404, {"error": {"code": "not_found", "message": "no payment for this order"}})
        return self._view(found)


def order_lookup_sandbox() -> Sandbox:
    app = OrderLookupEmulator()
    return attrs.evolve(acme_sandbox(), app=app, settle=app.settle)


def _order_query(subject: Subject) -> dict[str, Any]:
    return {} if subject.reference else {"order": subject.order.id if subject.order else None}


def order_lookup_commands(settings: GatewaySettings) -> CommandPool:
    return _with(settings, fetch=lambda command: attrs.evolve(command, builder=[_order_query]))


ORDER_LOOKUP = BrokenAcme("order_lookup", build=order_lookup_commands, sandbox="broken_acme:order_lookup_sandbox")


# -- 40. a webhook verifier of the plugin's own, the secret in a plain field -------------------------------
@attrs.frozen
class _PlainSecretVerifier:
    secret: str

    def __call__(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        timestamp, signature = _timestamp_and_signature(headers)
        if abs(time.time() - timestamp) > 300:
            raise WebhookVerificationError("webhook timestamp is outside the tolerance", provider="acme")
        if not hmac.compare_digest(sign(self.secret, timestamp, body).encode(), signature.encode("utf-8", "replace")):
            raise WebhookVerificationError("webhook signature does not match", provider="acme")
        return _parsed(body)


def plain_secret_verifier(settings: GatewaySettings) -> Callable[[Mapping[str, str], bytes], WebhookEvent]:
    return _PlainSecretVerifier(settings.secret("webhook_secret").reveal())


PLAIN_SECRET_VERIFIER = BrokenAcme("plain_secret_verifier", webhook=plain_secret_verifier)


# -- 41. a capture reporting the running total captured as its own amount --------------------------------
def _running_total(subject: Subject, response: Response) -> dict[str, Any]:
    return {"amount": Money.minor_units(int(response.data["captured"]), response.data["currency"])}


def running_total_capture_commands(settings: GatewaySettings) -> CommandPool:
    from paywire import HandlerChain

    chain = HandlerChain([payment_fields, operation_amount, decided_later, _running_total])
    return _with(settings, capture=lambda command: attrs.evolve(command, handler=chain))


RUNNING_TOTAL_CAPTURE = BrokenAcme("running_total_capture", build=running_total_capture_commands)


# -- 42. a refund reporting the running total refunded of its payment (kept by the plugin) as its amount --
def running_total_refund_commands(settings: GatewaySettings) -> CommandPool:
    from paywire import HandlerChain
    from paywire_acme.commands import refund_fields

    totals: dict[str, Money] = {}

    def running(subject: Subject, response: Response) -> dict[str, Any]:
        fields = refund_fields(subject, response)
        payment = response.data["payment"]
        totals[payment] = totals[payment] + fields["amount"] if payment in totals else fields["amount"]
        return {**fields, "amount": totals[payment]}

    return _with(settings, refund=lambda command: attrs.evolve(command, handler=HandlerChain([running])))


RUNNING_TOTAL_REFUND = BrokenAcme("running_total_refund", build=running_total_refund_commands)


# -- 43. a capture the provider decides later (a bank debit) answered succeeded; the sale answers right ---
def eager_capture_commands(settings: GatewaySettings) -> CommandPool:
    from paywire import HandlerChain

    return _with(settings, capture=lambda command: attrs.evolve(
        command, handler=HandlerChain([payment_fields, operation_amount])))


EAGER_CAPTURE = BrokenAcme("eager_capture", build=eager_capture_commands)


# -- 44. fetch reporting a sale the provider has not decided (a bank debit) as authorized ----------------
def _undecided_sale_authorized(subject: Subject, response: Response) -> dict[str, Any]:
    fields = fetched_fields(subject, response)
    data = response.data
    if data.get("status") == "processing" and data.get("capture") and not data.get("review"):
        fields["authorized"] = Money.minor_units(int(data["amount"]), data["currency"])
    return fields


def undecided_sale_authorized_commands(settings: GatewaySettings) -> CommandPool:
    from paywire import HandlerChain

    return _with(settings, fetch=lambda command: attrs.evolve(
        command, handler=HandlerChain([_undecided_sale_authorized])))


UNDECIDED_SALE_AUTHORIZED = BrokenAcme("undecided_sale_authorized", build=undecided_sale_authorized_commands)


# -- 45. a void the provider refused reported voided ("it cannot be voided: it is released already") -----
@attrs.frozen
class _RefusalAsVoided:
    command: GatewayCommand

    def execute(self, subject: Subject, context: CommandContext) -> Any:
        from paywire import CommandResult

        try:
            return self.command.execute(subject, context)
        except InvalidRequest:
            return CommandResult(reference=subject.reference, state="voided",
                                 references={"payment": subject.reference} if subject.reference else {})


VOID_REFUSAL_VOIDED = BrokenAcme("void_refusal_voided", build=lambda settings: _with(settings, void=_RefusalAsVoided))


# -- 46. captures and refunds keyed by the reference they act on ("one capture per payment") ---------------
@attrs.frozen
class _KeyedByReference:
    command: GatewayCommand
    step: str

    def execute(self, subject: Subject, context: CommandContext) -> Any:
        return self.command.execute(attrs.evolve(subject, idempotency_key=f"{self.step}-{subject.reference}"), context)


def reference_key_commands(settings: GatewaySettings) -> CommandPool:
    return _with(settings, capture=lambda command: _KeyedByReference(command, "capture"),
                 refund=lambda command: _KeyedByReference(command, "refund"))


REFERENCE_KEY = BrokenAcme("reference_key", build=reference_key_commands)


# -- 47. every send of a capture or refund stamped with a request id of its own (in the body) --------------
def _stamped(command: GatewayCommand) -> GatewayCommand:
    from itertools import count

    sent = count(1)
    return attrs.evolve(command, builder=[*command.builder.builders, lambda subject: {"request_id": f"req_{next(sent)}"}])


STAMPED_BODY = BrokenAcme("stamped_body", build=lambda settings: _with(settings, capture=_stamped, refund=_stamped))


# -- 48. fetch reading the refunded total as hundredths (rounded to fit), whatever the currency's exponent ---
def _refunded_in_hundredths(subject: Subject, response: Response) -> dict[str, Any]:
    from decimal import Decimal

    from paywire.money import CURRENCY_EXPONENTS

    fields = fetched_fields(subject, response)
    data = response.data
    if isinstance(data, Mapping) and "refunded" in data:
        places = Decimal(1).scaleb(-CURRENCY_EXPONENTS[data["currency"]])
        fields["refunded"] = Money.of((Decimal(int(data["refunded"])) / 100).quantize(places), data["currency"])
    return fields


REFUNDED_IN_HUNDREDTHS = BrokenAcme("refunded_in_hundredths", build=_fetch_handled_by(_refunded_in_hundredths))


# -- 49. a webhook's payment read from the shop's order id (which names every attempt for the order) -------
def order_reference_verifier(settings: GatewaySettings) -> Callable[[Mapping[str, str], bytes], WebhookEvent]:
    verify = build_verifier(settings)

    def by_order(headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        event: WebhookEvent = verify(headers, body)
        order = json.loads(body)["data"].get("order")
        return attrs.evolve(event, reference=order, references={"payment": order}) if order else event

    return by_order


ORDER_REFERENCE_WEBHOOK = BrokenAcme("order_reference_webhook", webhook=order_reference_verifier)


# -- 50. a key reused with another request "recovered" by answering the payment the key made --------------
@attrs.frozen
class _ConflictRecovered:
    command: GatewayCommand
    fetch: GatewayCommand

    def execute(self, subject: Subject, context: CommandContext) -> Any:
        from paywire import IdempotencyConflict

        try:
            return self.command.execute(subject, context)
        except IdempotencyConflict:
            return self.fetch.execute(Subject(idempotency_key=subject.idempotency_key), context)


def conflict_recovered_commands(settings: GatewaySettings) -> CommandPool:
    fetch = build_commands(settings)["fetch"]
    return _with(settings, authorize=lambda command: _ConflictRecovered(command, fetch),
                 sale=lambda command: _ConflictRecovered(command, fetch))


CONFLICT_RECOVERED = BrokenAcme("conflict_recovered", build=conflict_recovered_commands)


# -- 51. a lost answer settled at once by looking the payment up by its key: not there yet, taken as failed -
@attrs.frozen
class _LookedUpAtOnce:
    command: GatewayCommand
    fetch: GatewayCommand

    def execute(self, subject: Subject, context: CommandContext) -> Any:
        try:
            return self.command.execute(subject, context)
        except OutcomeUnknown:
            found = self.fetch.execute(Subject(idempotency_key=subject.idempotency_key), context)
            if found.state == "not_found":
                raise InvalidRequest("acme never got the payment", provider="acme") from None
            return found


def looked_up_commands(settings: GatewaySettings) -> CommandPool:
    fetch = build_commands(settings)["fetch"]
    return _with(settings, authorize=lambda command: _LookedUpAtOnce(command, fetch),
                 sale=lambda command: _LookedUpAtOnce(command, fetch))


LOOKED_UP_AT_ONCE = BrokenAcme("looked_up_at_once", build=looked_up_commands)


# -- 52. a sale's answer read as paid, its buyer action left out (3-D Secure tried on authorize only) ------
def _sale_paid(subject: Subject, response: Response) -> dict[str, Any]:
    data = response.data
    if data.get("status") == "requires_action":
        data = {**data, "status": "captured", "captured": data["amount"]}
    return payment_fields(subject, attrs.evolve(response, data=data))


def sale_paid_commands(settings: GatewaySettings) -> CommandPool:
    from paywire import HandlerChain

    paid = HandlerChain([_sale_paid, operation_amount, decided_later])
    return _with(settings, sale=lambda command: attrs.evolve(command, handler=paid))


SALE_ACTION_IGNORED = BrokenAcme("sale_action_ignored", build=sale_paid_commands)


# -- 53. keys namespaced per gateway instance: stable within a worker, another key from any other ----------
@attrs.frozen
class _Namespaced:
    command: GatewayCommand
    namespace: str

    def execute(self, subject: Subject, context: CommandContext) -> Any:
        keyed = attrs.evolve(subject, idempotency_key=f"{self.namespace}-{subject.idempotency_key}")
        return self.command.execute(keyed if subject.idempotency_key else subject, context)


def namespaced_key_commands(settings: GatewaySettings) -> CommandPool:
    import secrets

    namespace = f"gw{secrets.token_hex(4)}"  # "so that two shops on one account never share a key"
    return _with(settings, **{code: (lambda command: _Namespaced(command, namespace))
                              for code in build_commands(settings) if code != "fetch"})


NAMESPACED_KEY = BrokenAcme("namespaced_key", build=namespaced_key_commands)


# -- 54. fetch counting captures the bank has not decided (`pending`) as captured -------------------------
def _captured_with_pending(subject: Subject, response: Response) -> dict[str, Any]:
    fields = fetched_fields(subject, response)
    data = response.data
    if isinstance(data, Mapping) and data.get("pending"):
        fields["captured"] = Money.minor_units(int(data["captured"]) + int(data["pending"]), data["currency"])
    return fields


CAPTURED_WITH_PENDING = BrokenAcme("captured_with_pending", build=_fetch_handled_by(_captured_with_pending))


# -- 55. fetch reporting what is captured net of refunds ("what the shop keeps") ------------------------
def _net_captured(subject: Subject, response: Response) -> dict[str, Any]:
    fields = fetched_fields(subject, response)
    if response.data.get("refunded"):
        fields["captured"] = fields["captured"] - fields["refunded"]
    return fields


NET_CAPTURED = BrokenAcme("net_captured", build=_fetch_handled_by(_net_captured))


# -- 56. a sale whose key was used before answered with the payment the key made (the sale only) ----------
@attrs.frozen
class _KeyReuseAnswered:
    command: GatewayCommand
    fetch: GatewayCommand

    def execute(self, subject: Subject, context: CommandContext) -> Any:
        from paywire import IdempotencyConflict

        try:
            return self.command.execute(subject, context)
        except IdempotencyConflict as conflict:
            if conflict.retryable:  # still in flight: unknown, as it should be
                raise
            return self.fetch.execute(Subject(idempotency_key=subject.idempotency_key), context)


def sale_key_reuse_commands(settings: GatewaySettings) -> CommandPool:
    fetch = build_commands(settings)["fetch"]
    return _with(settings, sale=lambda command: _KeyReuseAnswered(command, fetch))


SALE_KEY_REUSE_ANSWERED = BrokenAcme("sale_key_reuse_answered", build=sale_key_reuse_commands)


# -- 57. the sale's amount written as hundredths whatever the currency (its own builder; authorize's is right) -
def sale_in_hundredths_commands(settings: GatewaySettings) -> CommandPool:
    return _with(settings, sale=lambda command: _amount_sent_as(lambda money: int(money.amount * 100))(settings)["sale"])


SALE_IN_HUNDREDTHS = BrokenAcme("sale_in_hundredths", build=sale_in_hundredths_commands)


# -- 58. the sale's declines mapped retryable (its own error mapper; authorize's is right) -------------
def sale_retrying_decline_commands(settings: GatewaySettings) -> CommandPool:
    return _with(settings, sale=lambda command: attrs.evolve(command, error_mapper=RETRYING_DECLINES))


SALE_RETRYABLE_DECLINE = BrokenAcme("sale_retryable_decline", build=sale_retrying_decline_commands)


# -- 59. a refund reporting the amount asked for, not the amount Acme says it refunded --------------------
def _refund_as_asked(subject: Subject, response: Response) -> dict[str, Any]:
    from paywire_acme.commands import refund_fields

    return {**refund_fields(subject, response), "amount": subject.amount}


def refund_as_asked_commands(settings: GatewaySettings) -> CommandPool:
    from paywire import HandlerChain

    return _with(settings, refund=lambda command: attrs.evolve(command, handler=HandlerChain([_refund_as_asked])))


REFUND_AS_ASKED = BrokenAcme("refund_as_asked", build=refund_as_asked_commands)


# -- 60. a refund's answered amount read as hundredths whatever the currency (fetch reads it right) --------
def _refund_in_hundredths(subject: Subject, response: Response) -> dict[str, Any]:
    from decimal import Decimal

    from paywire.money import CURRENCY_EXPONENTS
    from paywire_acme.commands import refund_fields

    data = response.data
    places = Decimal(1).scaleb(-CURRENCY_EXPONENTS[data["currency"]])
    amount = Money.of((Decimal(int(data["amount"])) / 100).quantize(places), data["currency"])
    return {**refund_fields(subject, response), "amount": amount}


def refund_in_hundredths_commands(settings: GatewaySettings) -> CommandPool:
    from paywire import HandlerChain

    return _with(settings, refund=lambda command: attrs.evolve(command, handler=HandlerChain([_refund_in_hundredths])))


REFUND_IN_HUNDREDTHS = BrokenAcme("refund_in_hundredths", build=refund_in_hundredths_commands)


# -- 61. a capture reporting the amount asked for, not the amount Acme says it captured ---------------------
def _capture_as_asked(subject: Subject, response: Response) -> dict[str, Any]:
    return {"amount": subject.amount}


def capture_as_asked_commands(settings: GatewaySettings) -> CommandPool:
    from paywire import HandlerChain

    chain = HandlerChain([payment_fields, decided_later, _capture_as_asked])
    return _with(settings, capture=lambda command: attrs.evolve(command, handler=chain))


CAPTURE_AS_ASKED = BrokenAcme("capture_as_asked", build=capture_as_asked_commands)


# -- 62. a refused webhook's error telling the signature expected ("to help debugging") -------------------
def oracle_verifier(settings: GatewaySettings) -> Callable[[Mapping[str, str], bytes], WebhookEvent]:
    secret = settings.secret("webhook_secret")

    def verify(headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        timestamp, signature = _timestamp_and_signature(headers)
        if abs(time.time() - timestamp) > 300:
            raise WebhookVerificationError("webhook timestamp is outside the tolerance", provider="acme")
        expected = sign(secret.reveal(), timestamp, body)
        if not hmac.compare_digest(expected.encode(), signature.encode("utf-8", "replace")):
            raise WebhookVerificationError(f"webhook signature does not match: expected {expected}, got {signature}",
                                           provider="acme")
        return _parsed(body)

    return verify


SIGNATURE_ORACLE = BrokenAcme("signature_oracle", webhook=oracle_verifier)


# -- 63. a read before the capture whose lost answer is left as it is: unknown, though the capture never left
@attrs.frozen
class _ReadFirst:
    """Reads the payment before capturing it, as PayPal's complete reads the order."""

    read: GatewayCommand
    write: GatewayCommand

    def execute(self, subject: Subject, context: CommandContext) -> Any:
        if not context.rehearsal:
            self.read.execute(Subject(reference=subject.reference), context)
        return self.write.execute(subject, context)


@attrs.frozen
class _WritesAfterLostRead(_ReadFirst):
    """Goes on to capture when the read got no answer."""

    def execute(self, subject: Subject, context: CommandContext) -> Any:
        with contextlib.suppress(PaywireError):
            self.read.execute(Subject(reference=subject.reference), context)
        return self.write.execute(subject, context)


def _read_first_commands(read_first: type[_ReadFirst]) -> Callable[[GatewaySettings], CommandPool]:
    def build(settings: GatewaySettings) -> CommandPool:
        fetch = build_commands(settings)["fetch"]
        return _with(settings, capture=lambda command: read_first(fetch, command))

    return build


READ_LOST_UNKNOWN = BrokenAcme("read_lost_unknown", build=_read_first_commands(_ReadFirst))

# -- 64. a capture sent after the read before it got no answer ----------------------------------------
WRITES_AFTER_LOST_READ = BrokenAcme("writes_after_lost_read", build=_read_first_commands(_WritesAfterLostRead))
