"""Stripe's error answers as paywire's typed errors, each classified as a definite failure or an
unknown outcome.

Stripe answers a failure with an HTTP status and `{"error": {type, code, decline_code, message,
param, doc_url}}`. The type, code and status decide the class (see `error_class`); the Stripe `code`
is kept as the error's code (the `type` where there is none), the request id as `debug_id`, and
`Stripe-Should-Retry`, when present, decides `retryable` over the class's default.

Which answers leave the outcome unknown, from Stripe's "Advanced error handling" and "Idempotent
requests" pages:

- A 5xx (`api_error`, or a 502/503/504 from the load balancers in front of the API) is
  indeterminate: Stripe says to treat the result of a 500 as unknown and learn it from a webhook or
  by reading the object, and a gateway timeout can come after the API committed the write. It is a
  `ProviderUnavailable` with `may_have_been_sent=True`; a retry with the same idempotency key
  replays what the API stored, so it is also retryable.
- A 424 (External Dependency Failed: "couldn't be completed due to a failure in a dependency
  external to Stripe", its API errors page) is no refusal of the request and not documented as
  not applied: something Stripe relies on failed while the request ran. It is the same
  indeterminate, retryable `ProviderUnavailable`, not an `InvalidRequest`.
- Stripe saves an idempotent result only once an endpoint began executing; the rate limiter (429,
  `rate_limit`), the object lock (`lock_timeout`: another request holds the object) and the
  concurrent-key check (409 `idempotency_error`, `idempotency_key_in_use`) run before that, and
  nothing of that request was applied. A rate limit or lock timeout is a definite, retryable
  `RateLimited`. A key in use is not: the earlier request holding it may have been applied, or
  may still be, so it is an `IdempotencyConflict` (recorded unknown), and retryable also when
  Stripe sends no `Stripe-Should-Retry`: sent again with the key once the first is done, it gets
  the first's answer.
- Every other 4xx is Stripe's definite answer after (or instead of) executing: a decline
  (`card_error`, 402), a refused parameter or state (`invalid_request_error`), a key reused with
  other parameters (`idempotency_error`), a refused key (401/403). A refusal for the payment's own
  state (`payment_intent_unexpected_state`: its error embeds the intent, canceled when Stripe let
  the authorization lapse; a charge already captured or refunded) is a `StateError` with
  `state_conflict`: the ledger is behind Stripe, and the service reads the intent. A refund of a
  charged-back charge (`charge_disputed`) is a `StateError` without it: a chargeback moves neither
  total the ledger keeps.
- A decline of a PaymentIntent write whose embedded `payment_intent` is `succeeded`,
  `requires_capture` or `processing` is no evidence of a failure: Stripe's error object carries
  the intent as it stands, and that one holds the buyer's money. It is an `OutcomeUnknown` naming
  the intent, which a fetch settles; recorded failed, the ledger would lose a payment Stripe holds.
- A 2xx is Stripe's success unless the object itself shows a failure (an intent back in
  `requires_payment_method` with its error, or canceled; a refund failed or canceled): one that
  only another validator refuses (a shop's `validate_response` policy) was applied, so unknown.
  An intent found canceled when completing it is a `Declined` (its `cancellation_reason` the
  decline code): nobody can finish it and it holds nothing, so the payment ends.

A card error's message is written by Stripe to be shown to the buyer, so it becomes the
customer message; other messages are for the shop's developers only.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paywire import (
    AuthenticationError,
    BuyerActionRequired,
    Declined,
    IdempotencyConflict,
    InvalidRequest,
    OutcomeUnknown,
    PaywireError,
    ProviderUnavailable,
    RateLimited,
    Response,
    Result,
    StateError,
    Subject,
)
from paywire.error_mapper import error_for_status

__all__ = ["error_class", "error_from", "map_error", "map_refund_error"]

# Codes saying the object's state forbids the operation (not a malformed request).
_STATE_CODES = frozenset({
    "payment_intent_unexpected_state",
    "charge_already_captured",
    "charge_already_refunded",
    "charge_expired_for_capture",
    "charge_disputed",
    "payment_method_unexpected_state",
})
# Of those, the ones about the payment itself (lapsed, or captured, canceled or refunded without
# paywire): the ledger's view of it is behind Stripe's (`PaywireError.state_conflict`). A chargeback
# (`charge_disputed`) moves neither total, so it leaves the ledger's view as it was.
_CONFLICT_CODES = _STATE_CODES - {"payment_method_unexpected_state", "charge_disputed"}
# A refund of more than the charge has unrefunded: the ledger, which checks what is left before
# sending, counts less refunded than Stripe (a refund made without paywire), so it is behind too.
_REFUND_EXCEEDS = "amount_too_large"
# PaymentIntent statuses in which it holds money, or is taking it (a bank debit).
_HOLDING = frozenset({"succeeded", "requires_capture", "processing"})


def error_class(status: int, type_: str | None, code: str | None) -> type[PaywireError]:
    """The paywire error for a Stripe error of this status, type and code."""
    if status == 401 or type_ == "authentication_error":
        return AuthenticationError
    if status == 403 or type_ == "permission_error":
        return AuthenticationError
    if status == 429 or type_ == "rate_limit_error" or code in ("rate_limit", "lock_timeout"):
        return RateLimited
    if type_ == "card_error" or status == 402:
        return Declined
    if type_ == "idempotency_error" or code == "idempotency_key_in_use":
        return IdempotencyConflict
    if type_ == "api_error" or status >= 500 or status == 424:
        return ProviderUnavailable
    if status == 409:
        return IdempotencyConflict
    # The rest by status, as the core reads it: a redirect (no Stripe answer) is an unknown outcome.
    return StateError if code in _STATE_CODES else error_for_status(status)


def _in_progress(status: int, type_: str | None, code: str | None) -> bool:
    """Stripe's answer to a request whose idempotency key an earlier request still holds."""
    return code == "idempotency_key_in_use" or (type_ == "idempotency_error" and status == 409)


def _text(error: Mapping[str, Any], name: str) -> str | None:
    value = error.get(name)
    return value if isinstance(value, str) and value else None


def should_retry(response: Response) -> bool | None:
    """Stripe's `Stripe-Should-Retry` header: its word on retrying, over the status's."""
    value = response.header("stripe-should-retry")
    return None if value is None else _RETRY_WORDS.get(value.strip().lower())


_RETRY_WORDS = {"true": True, "false": False}


def _retry_after(response: Response) -> float | None:
    """Seconds from `Retry-After`, which Stripe sends as a whole number of seconds."""
    value = (response.header("retry-after") or "").strip()
    return float(value) if value.isdigit() else None


def _holds_money(error: Mapping[str, Any]) -> bool:
    """Whether the error embeds its PaymentIntent in a status that holds (or is taking) the buyer's
    money: Stripe's error object carries the intent as it stands, and one `succeeded`,
    `requires_capture` or `processing` shows the request took effect whatever the status line says
    (a decline answered for an intent another attempt since paid)."""
    intent = error.get("payment_intent")
    return isinstance(intent, Mapping) and intent.get("status") in _HOLDING


def error_from(error: Mapping[str, Any], response: Response, *, status: int | None = None) -> PaywireError:
    """The typed error for one Stripe error object that came with `response`.

    `status` overrides the response's, for an error reported inside a 200 answer (an intent's
    `last_payment_error`), which is classified as the decline it is.
    """
    status = response.status if status is None else status
    type_, code = _text(error, "type"), _text(error, "code")
    decline_code, param = _text(error, "decline_code"), _text(error, "param")
    message = _text(error, "message") or f"Stripe answered HTTP {status}"
    kind = error_class(status, type_, code)
    details = {name: value for name, value in (("type", type_), ("param", param), ("decline_code", decline_code),
                                               ("doc_url", _text(error, "doc_url"))) if value}
    for name in ("payment_intent", "charge", "payment_method"):  # ids only: the objects hold client secrets
        value = error.get(name)
        found = value.get("id") if isinstance(value, Mapping) else value
        if isinstance(found, str) and found:
            details[name] = found
    retryable = should_retry(response)
    common: dict[str, Any] = {
        "provider": "stripe",
        "code": code or type_,
        "status": status,
        "debug_id": response.header("request-id"),
        "retryable": True if retryable is None and _in_progress(status, type_, code) else retryable,
        "details": details,
    }
    if kind is Declined:  # final: a retry under the key replays it, whatever Stripe-Should-Retry says
        return Declined(message, decline_code=decline_code or code, customer_message=message,
                        **{**common, "retryable": False})
    if kind is RateLimited:
        return RateLimited(message, retry_after=_retry_after(response), may_have_been_sent=False, **common)
    if kind is ProviderUnavailable:  # indeterminate: the API may have committed before failing
        return ProviderUnavailable(message, may_have_been_sent=True, **common)
    if issubclass(kind, InvalidRequest):
        return kind(message, param=param, state_conflict=code in _CONFLICT_CODES, **common)
    return kind(message, **common)


def _took_effect(declined: Declined, error: Mapping[str, Any]) -> OutcomeUnknown:
    """A decline whose error shows its PaymentIntent holding money (`_holds_money`)."""
    intent = declined.details.get("payment_intent")
    return OutcomeUnknown(
        f"{declined.message}; yet Stripe's error shows PaymentIntent {intent} {error['payment_intent']['status']}: "
        "the request may have taken effect, fetch the payment to learn its state", reference=intent,
        provider=declined.provider, code=declined.code, status=declined.status, debug_id=declined.debug_id,
        details=dict(declined.details),
    )


def _answered(subject: Subject, response: Response, *, intent_write: bool) -> PaywireError:
    """The typed error of an error answer; of a PaymentIntent write (`intent_write`), a decline
    showing the intent holding money is an unknown outcome."""
    body = response.data
    error = body.get("error") if isinstance(body, Mapping) else None
    error = error if isinstance(error, Mapping) else {}
    mapped = error_from(error, response)
    if intent_write and isinstance(mapped, Declined) and _holds_money(error):
        return _took_effect(mapped, error)
    if subject.reference is None and isinstance(mapped, Declined):
        # A decline of a create-and-confirm leaves its PaymentIntent behind, which the buyer
        # may still pay with another method (Stripe's retry flow): its events must find it.
        mapped.reference = mapped.details.get("payment_intent")
    return mapped


def map_refund_error(subject: Subject, response: Response, result: Result) -> PaywireError:
    """`map_error` for a refund: one refused as more than the charge has left is a `StateError`
    with `state_conflict` (see `_REFUND_EXCEEDS`), so the service reads the intent. A refund's
    error may embed its (succeeded) PaymentIntent, which says nothing of the refund."""
    error = _answered(subject, response, intent_write=False) if not response.ok else map_error(subject, response, result)
    if isinstance(error, InvalidRequest) and not error.state_conflict and error.code == _REFUND_EXCEEDS:
        return StateError(error.message, param=error.param, state_conflict=True, provider=error.provider,
                          code=error.code, status=error.status, debug_id=error.debug_id,
                          retryable=error.retryable, details=error.details)
    return error


def _intent_error(intent: Mapping[str, Any], response: Response, result: Result) -> PaywireError:
    """Why a PaymentIntent the command expected to be paid (or payable) is not."""
    error = intent.get("last_payment_error")
    if intent.get("status") == "requires_payment_method" and isinstance(error, Mapping):
        return error_from(error, response, status=402)  # the attempt failed: a decline, or failed authentication
    common: dict[str, Any] = {"provider": "stripe", "status": response.status, "debug_id": response.header("request-id")}
    if intent.get("status") == "requires_action":
        next_action = intent.get("next_action")
        redirect = next_action.get("redirect_to_url") if isinstance(next_action, Mapping) else None
        url = redirect.get("url") if isinstance(redirect, Mapping) else None
        return BuyerActionRequired(f"PaymentIntent {intent.get('id')} still waits for the buyer (3-D Secure)",
                                   redirect_url=url if isinstance(url, str) else None, code="requires_action", **common)
    if intent.get("status") == "canceled":
        # Canceled before it was completed (a clean-up job, or Stripe letting an authorization
        # lapse): no buyer can finish it and it holds nothing, so it is as final as a decline.
        reason = _text(intent, "cancellation_reason") or "canceled"
        return Declined(f"PaymentIntent {intent.get('id')} was canceled ({reason}) before it was completed",
                        decline_code=reason, code="payment_intent_unexpected_state", retryable=False, **common)
    return _refused(f"PaymentIntent {intent.get('id')} is {intent.get('status')}", response, result)


def _refused(what: str, response: Response, result: Result) -> PaywireError:
    """A 2xx answer showing the operation applied, refused by another validator (a shop's
    `validate_response` policy): Stripe holds it, so it is no evidence of a failure."""
    return OutcomeUnknown(
        f"{what}: Stripe applied the operation, but its answer was refused ({'; '.join(result.messages)}); "
        "the outcome stays open until reconciliation reads it", provider="stripe",
        code=result.codes[0] if result.codes else "refused_answer", status=response.status,
        debug_id=response.header("request-id"),
    )


def _unexpected(response: Response, result: Result) -> PaywireError:
    """A 2xx answer that is not the object asked for: whatever Stripe did, paywire cannot tell."""
    return OutcomeUnknown(
        f"Stripe answered HTTP {response.status} without the expected object ({'; '.join(result.messages)}); "
        "the operation may have taken effect: fetch the payment to learn its state",
        provider="stripe", code="unexpected_answer", status=response.status, debug_id=response.header("request-id"),
    )


def map_error(subject: Subject, response: Response, result: Result) -> PaywireError:
    """The `GatewayCommand` error mapper: an error answer, or a 2xx answer the validators refused."""
    body = response.data
    if not response.ok:
        return _answered(subject, response, intent_write=True)
    if "unexpected_answer" in result.codes:
        return _unexpected(response, result)
    if isinstance(body, Mapping) and body.get("object") == "payment_intent":
        return _intent_error(body, response, result)
    if isinstance(body, Mapping) and body.get("object") == "refund":
        if body.get("status") not in ("failed", "canceled"):
            return _refused(f"refund {body.get('id')} is {body.get('status')}", response, result)
        code = _text(body, "failure_reason") or f"refund_{body['status']}"  # a refund that failed at once
        return Declined(f"Stripe did not refund: {code}", decline_code=code, code=code, provider="stripe",
                        status=response.status, debug_id=response.header("request-id"))
    return _unexpected(response, result)
