"""PayPal's error answers as paywire's typed errors.

PayPal answers failures with `{name, message, debug_id, details: [{field, issue, description}],
links}` (the OAuth endpoint with `{error, error_description}`). The issue decides the error class
(a table below, from the issues the Orders v2 and Payments v2 specifications list); the HTTP
status decides the rest. The issue is kept as the error's `code`, the debug id for PayPal's
support, and no value from the request is ever repeated in a message.

Which answers leave the outcome unknown (`may_have_been_sent`), for a request that left:

| answer | error | outcome |
|---|---|---|
| 400 INVALID_REQUEST, 422 UNPROCESSABLE_ENTITY (issues), 404 | InvalidRequest / StateError | failed: PayPal validated and refused it |
| 422 saying the request's effect is there already (`REPEATS`), after an attempt that may have taken effect | OutcomeUnknown | unknown |
| 422 declines (INSTRUMENT_DECLINED...), 2xx DECLINED/FAILED/DENIED | Declined | failed, final |
| 422 funding failure with a `redirect` link, completing an order | BuyerActionRequired | action required |
| 401, 403 | AuthenticationError | failed: refused before any processing |
| 409 PREVIOUS_REQUEST_IN_PROGRESS | IdempotencyConflict (retryable) | unknown: the first request with the id may have been applied |
| 422 PAYPAL_REQUEST_ID_PREVIOUSLY_USED, DUPLICATE_REQUEST_ID | IdempotencyConflict | unknown: a request with the id reached PayPal, maybe this one |
| 429 RATE_LIMIT_REACHED | RateLimited (retryable) | failed: blocked before processing |
| any 5xx: 500 INTERNAL_SERVER_ERROR, 503 SERVICE_UNAVAILABLE, 502, 504, unreadable | ProviderUnavailable | unknown |
| 3xx (PayPal answers none: a proxy's redirect) | OutcomeUnknown | unknown |
| 2xx that cannot be read, or that another validator refuses | OutcomeUnknown | unknown |

Why: PayPal's API responses page says an HTTP 5xx or a timeout from an /execute or /capture call
could have created a transaction, and tells callers to repeat the call with the same
PayPal-Request-Id; its idempotency guide gives a lost answer after "the server captures the
payment" as its example. That holds for its own 503 SERVICE_UNAVAILABLE body as for a 500, and
502 and 504 come from the gateways in front of PayPal's services, which may have passed the
request on before failing. 429 is PayPal's rate limiter refusing the call ("Blocked due to rate
limiting"), which happens before the API runs. In every unknown case the retry with the same
PayPal-Request-Id returns what PayPal holds (see command.py); a 5xx from the token endpoint means
only that the request it was for never left (oauth.py).

A repeat of a request that took effect is refused with what that effect left behind: the
authorization PREVIOUSLY_VOIDED or ALREADY_CAPTURED, the capture FULLY_REFUNDED, no amount left
to capture or refund. PayPal replays a request only while it keeps its PayPal-Request-Id ("Not
all APIs support this header"; Payments v2 takes none for a void, the others keep it 6 hours to
45 days) and may fail a duplicate that arrives while the first is running. So when an earlier
attempt may have taken effect (`Response.unsure`: a resend, or a retry after a timeout or a 5xx),
such a refusal may describe that attempt's own effect: it is no evidence that the request was not
applied, and reconciliation reads what PayPal holds. On a first attempt it is PayPal's refusal.

A completion of an order the buyer approved may meet a funding failure (INSTRUMENT_DECLINED, or
REDIRECT_PAYER_FOR_ALTERNATE_FUNDING) carrying a `redirect` link to PayPal's approval page.
PayPal's "Handle funding failures" recovery is to send the buyer back there to pick another
funding source and then complete the same order again: the order is still approved, nothing was
paid in it, and it may yet be paid, so it is the buyer's action, not a decline
(`COMPLETION_ERRORS`; complete.py makes it the payment's `BuyerAction`). Without the link (a charge
from the vault, whose buyer is absent), or on any other call, it is a final decline.

A refusal saying the order, authorization or capture is no longer as the ledger holds it
(expired, denied, voided, completed, captured or refunded already: `CONFLICTS`) carries
`state_conflict`, so the service reads PayPal for the payment once it has recorded it.

An order PayPal voided before anything was authorized or captured in it (`VOIDED_ORDER`, found by
a retry under the key of the request that created it, or by a completion) is a `Declined`: no
buyer can finish it and it holds nothing, so the payment ends, whatever an earlier attempt did.

An order paid from the vault is paid as it is created: a capture PayPal declines or an
authorization it denies comes back in the 201 order. That decline names the order
(`PaywireError.reference`), as does one of an order found voided by a retry of its creation: the
order exists, PayPal's events about it name it, and reconciliation reads it, so the ledger records
it as the payment's. A refused completion, capture or refund names nothing: it acts on an order,
authorization or capture the payment already names.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Mapping, Sequence
from typing import Any, Final, NamedTuple

from paywire import (
    BuyerActionRequired,
    Declined,
    IdempotencyConflict,
    InvalidRequest,
    OutcomeUnknown,
    PaywireError,
    RateLimited,
    Response,
    Result,
    StateError,
    Subject,
)
from paywire.error_mapper import error_for_status

__all__ = [
    "BACK_TO_PAYPAL",
    "COMPLETION_ERRORS",
    "ERRORS",
    "NOTES",
    "REPEATS",
    "VOIDED_ORDER",
    "PayPalErrorBody",
    "PayPalErrorMapper",
    "read_error",
]

# paywire's code for an order PayPal voided before anything was paid in it (validators.py).
VOIDED_ORDER: Final = "order_voided"
# The buyer's instrument or account refused the payment: final, never retried.
DECLINES: Final = frozenset({
    "ALIAS_DECLINED_BY_PROCESSOR", "CARD_EXPIRED", "COMPLIANCE_VIOLATION", "DECLINED_DUE_TO_RELATED_TXN",
    "INSTRUMENT_DECLINED", "MAX_NUMBER_OF_PAYMENT_ATTEMPTS_EXCEEDED", "PAYEE_BLOCKED_TRANSACTION",
    "PAYER_ACCOUNT_LOCKED_OR_CLOSED", "PAYER_ACCOUNT_RESTRICTED", "PAYER_CANNOT_PAY",
    "PAYMENT_SOURCE_CANNOT_BE_USED", "PAYMENT_SOURCE_DECLINED_BY_PROCESSOR",
    "PAYMENT_SOURCE_INFO_CANNOT_BE_VERIFIED", "REDIRECT_PAYER_FOR_ALTERNATE_FUNDING", "REFERENCED_CARD_EXPIRED",
    "TRANSACTION_BLOCKED_BY_PAYEE", "TRANSACTION_LIMIT_EXCEEDED", "TRANSACTION_RECEIVING_LIMIT_EXCEEDED",
    "TRANSACTION_REFUSED",
    # 2xx answers whose capture was DECLINED or FAILED, authorization DENIED, or refund FAILED, or
    # whose order PayPal voided before anything was paid in it (validators.py)
    "DECLINED", "DENIED", "CAPTURE_FAILED", "REFUND_FAILED", "REFUND_CANCELLED", VOIDED_ORDER,
})
# The buyer must go back to PayPal (declined instead when the buyer is absent: a vaulted charge).
BUYER_ACTIONS: Final = frozenset({"PAYER_ACTION_REQUIRED", "ORDER_NOT_APPROVED"})
# Declines of the funding source the buyer picked, which the buyer mends at PayPal's `redirect`
# link by picking another: a buyer action when an order is completed with that link (see above).
FUNDING_FAILURES: Final = frozenset({"INSTRUMENT_DECLINED", "REDIRECT_PAYER_FOR_ALTERNATE_FUNDING"})
# A completion refused with these and a link for the buyer waits for the buyer at that link.
BACK_TO_PAYPAL: Final = frozenset({"PAYER_ACTION_REQUIRED"}) | FUNDING_FAILURES
# The operation is impossible in the state the order, authorization or capture is in.
STATES: Final = frozenset({
    "ACTION_DOES_NOT_MATCH_INTENT", "AUTHORIZATION_ALREADY_CAPTURED", "AUTHORIZATION_AMOUNT_EXCEEDED",
    "AUTHORIZATION_DENIED", "AUTHORIZATION_EXPIRED", "AUTHORIZATION_VOIDED", "CANNOT_BE_VOIDED",
    "CAPTURE_FULLY_REFUNDED", "MAX_AUTHORIZATION_COUNT_EXCEEDED", "MAX_CAPTURE_AMOUNT_EXCEEDED",
    "MAX_CAPTURE_COUNT_EXCEEDED", "MAX_NUMBER_OF_REFUNDS_EXCEEDED", "ORDER_ALREADY_AUTHORIZED",
    "ORDER_ALREADY_CAPTURED", "ORDER_ALREADY_COMPLETED", "ORDER_COMPLETED_OR_VOIDED", "ORDER_EXPIRED",
    "PARTIAL_REFUND_NOT_ALLOWED", "PENDING_CAPTURE", "PREVIOUSLY_CAPTURED", "PREVIOUSLY_VOIDED",
    "REAUTHORIZATION_NOT_SUPPORTED", "REAUTHORIZATION_TOO_SOON", "REFUND_AMOUNT_EXCEEDED", "REFUND_NOT_ALLOWED",
    "REFUND_NOT_PERMITTED_DUE_TO_CHARGEBACK", "REFUND_TIME_LIMIT_EXCEEDED", "SETUP_TOKEN_ALREADY_TOKENIZED",
    "TRANSACTION_DISPUTED",
})
# Of those, the refusals saying the order, authorization or capture is no longer as the ledger
# holds it (expired, denied, voided, captured or refunded without a word to it yet): the service
# reads PayPal for the payment (`PaywireError.state_conflict`). A completion reads the order
# first and answers a completed or voided one from it, so an order completed, voided or expired
# by the time its authorize or capture arrives moved on without the ledger (another request
# completed it, or PayPal ended it); ORDER_NOT_APPROVED is no conflict: the buyer has yet to act.
CONFLICTS: Final = frozenset({
    "AUTHORIZATION_ALREADY_CAPTURED", "AUTHORIZATION_DENIED", "AUTHORIZATION_EXPIRED", "AUTHORIZATION_VOIDED",
    "CAPTURE_FULLY_REFUNDED", "ORDER_ALREADY_AUTHORIZED", "ORDER_ALREADY_CAPTURED", "ORDER_COMPLETED_OR_VOIDED",
    "ORDER_EXPIRED", "PREVIOUSLY_CAPTURED", "PREVIOUSLY_VOIDED",
    # a refund of more than the capture has left, a capture of more than the authorization allows:
    # the ledger checked what is left before sending, so it counts less refunded or captured than
    # PayPal (made without paywire)
    "MAX_CAPTURE_AMOUNT_EXCEEDED", "REFUND_AMOUNT_EXCEEDED",
    # a refund of a capture the ledger holds as captured, which PayPal no longer does: declined,
    # denied, or its money taken back by a chargeback whose event the shop has not applied yet
    "REFUND_NOT_ALLOWED", "REFUND_NOT_PERMITTED_DUE_TO_CHARGEBACK",
})
# What a repeat of a request that took effect is refused with (see above): failed on a first
# attempt, unknown after one that may have taken effect.
REPEATS: Final = frozenset({
    "AUTHORIZATION_ALREADY_CAPTURED", "CAPTURE_FULLY_REFUNDED", "DUPLICATE_INVOICE_ID", "MAX_AUTHORIZATION_COUNT_EXCEEDED",
    "MAX_CAPTURE_AMOUNT_EXCEEDED", "MAX_CAPTURE_COUNT_EXCEEDED", "MAX_NUMBER_OF_REFUNDS_EXCEEDED",
    "ORDER_ALREADY_AUTHORIZED", "ORDER_ALREADY_CAPTURED", "ORDER_COMPLETED_OR_VOIDED", "PREVIOUSLY_VOIDED",
    "REFUND_AMOUNT_EXCEEDED",
})
# What paywire adds to PayPal's words for a refusal, where they leave the caller guessing.
NOTES: Final = {
    # The authorization's age alone makes this refusal: an earlier attempt was sooner still, so
    # PayPal refused it too, and nothing was reauthorized on any attempt.
    "REAUTHORIZATION_TOO_SOON": "nothing was reauthorized and the authorization stands as it was: PayPal "
                                "reauthorizes only after the authorization's 3-day honor period, within its 29 days",
}
# Another request with the same PayPal-Request-Id (or on the same order) is still running.
IN_PROGRESS: Final = frozenset({"PREVIOUS_REQUEST_IN_PROGRESS", "ORDER_COMPLETION_IN_PROGRESS"})
# The PayPal-Request-Id was used before (Vault v3's PAYPAL_REQUEST_ID_PREVIOUSLY_USED, "already been
# used for another request"; DUPLICATE_REQUEST_ID elsewhere): a request under this key reached
# PayPal, and may be this one's earlier attempt, so it is a conflict on the key (an unknown
# outcome), never a refusal of this request.
KEY_USED: Final = frozenset({"PAYPAL_REQUEST_ID_PREVIOUSLY_USED", "DUPLICATE_REQUEST_ID"})
# paywire's own codes for 2xx answers it cannot accept (validators.py).
REUSED_KEY: Final = "idempotency_key_reused"
UNREADABLE: Final = "unreadable_answer"

_CUSTOMER_MESSAGES: Final = {
    BuyerActionRequired: "Please return to PayPal to complete your payment.",
    Declined: "PayPal declined this payment. Please choose another way to pay.",
}


class PayPalErrorBody(NamedTuple):
    """What a failed answer says, read leniently (undocumented answers have any shape)."""

    name: str | None = None
    issue: str | None = None
    description: str | None = None
    field: str | None = None
    debug_id: str | None = None
    links: tuple[Mapping[str, Any], ...] = ()
    processor_code: str | None = None

    @property
    def code(self) -> str | None:
        return self.issue or self.name

    def link(self, *rels: str) -> str | None:
        """The first link with one of `rels` (payer-action, approve, redirect), for the buyer."""
        for rel in rels:
            for link in self.links:
                href = link.get("href")
                if link.get("rel") == rel and isinstance(href, str):
                    return href
        return None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def read_error(response: Response) -> PayPalErrorBody:
    """The error object of a PayPal answer (or of its OAuth endpoint); empty when there is none."""
    data = response.data
    debug_id = response.header("paypal-debug-id")
    if not isinstance(data, Mapping):
        return PayPalErrorBody(debug_id=debug_id)
    if "error" in data and "name" not in data:  # OAuth: {"error": "invalid_client", "error_description": ...}
        return PayPalErrorBody(name=_text(data.get("error")), description=_text(data.get("error_description")),
                               debug_id=debug_id)
    details = data.get("details")
    first = details[0] if isinstance(details, Sequence) and details and isinstance(details[0], Mapping) else {}
    links = data.get("links")
    return PayPalErrorBody(
        name=_text(data.get("name")),
        issue=_text(first.get("issue")),
        description=_text(first.get("description")) or _text(data.get("message")),
        field=_text(first.get("field")),
        debug_id=_text(data.get("debug_id")) or debug_id,
        links=tuple(link for link in links if isinstance(link, Mapping)) if isinstance(links, Sequence) else (),
    )


def _class_for(code: str | None, response: Response, subject: Subject, redirect: bool) -> type[PaywireError]:
    status = response.status
    if code in REPEATS and response.unsure:
        return OutcomeUnknown
    if code in BUYER_ACTIONS or (redirect and code in FUNDING_FAILURES):
        # A vaulted charge runs without the buyer: nobody can act, so it is declined.
        return Declined if subject.vaulted else BuyerActionRequired
    if code in DECLINES:
        return Declined
    if code in STATES:
        return StateError
    if code in IN_PROGRESS or code in KEY_USED or code == REUSED_KEY:
        return IdempotencyConflict
    if code == UNREADABLE or 200 <= status < 300:
        # A 2xx is PayPal's success unless a code above says otherwise: one that another validator
        # refuses (a shop's validate_response policy) was applied all the same.
        return OutcomeUnknown
    if code == "RATE_LIMIT_REACHED":
        return RateLimited
    # The rest by status, as the core reads it: a redirect (no PayPal answer) is an unknown outcome.
    return error_for_status(status)


def _retry_after(value: str | None) -> float | None:
    """Seconds from a Retry-After header (PayPal sends delta-seconds; an HTTP date works too)."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        return max(0.0, email.utils.parsedate_to_datetime(value).timestamp() - time.time())
    except (TypeError, ValueError):
        return None


def _created_order(subject: Subject, response: Response) -> str | None:
    """The id of the order a refused authorize or sale created (it names no reference yet, and the
    answer is the order): None for any other refusal."""
    data = response.data
    if subject.reference is not None or not response.ok or not isinstance(data, Mapping):
        return None
    is_order = isinstance(data.get("purchase_units"), Sequence) and "intent" in data
    return data["id"] if is_order and isinstance(data.get("id"), str) and data["id"] else None


class PayPalErrorMapper:
    """Maps a failed answer (`Result` codes from the validators first, else PayPal's error object).

    :param completing: the mapper of an approved order's authorize or capture, where a funding
        failure with PayPal's `redirect` link is the buyer's to mend (see the module's docstring).
    """

    provider = "paypal"

    def __init__(self, *, completing: bool = False) -> None:
        self.completing = completing

    def __repr__(self) -> str:
        return f"PayPalErrorMapper(completing={self.completing})"

    def __call__(self, subject: Subject, response: Response, result: Result) -> PaywireError:
        body = read_error(response)
        code = result.codes[0] if result.codes else body.code
        # PayPal's own refusal, not a 2xx another validator refused under that name.
        redirect = self.completing and not response.ok and body.link("redirect", "payer-action") is not None
        error_class = _class_for(code, response, subject, redirect)
        what = body.description or "; ".join(result.messages) or f"PayPal answered HTTP {response.status}"
        message = f"{code}: {what}" if code else what
        if body.field:
            message += f" (field {body.field})"
        if error_class is OutcomeUnknown and code in REPEATS:
            message += "; an earlier attempt of this request may have done it, so the outcome is unknown"
        elif code in NOTES:
            message += f"; {NOTES[code]}"
        common: dict[str, Any] = {
            "provider": self.provider,
            "code": code,
            "status": response.status,
            "debug_id": body.debug_id,
            "customer_message": _CUSTOMER_MESSAGES.get(error_class),
        }
        if error_class is Declined:
            decline_code = result.codes[1] if len(result.codes) > 1 else code
            return Declined(message, decline_code=decline_code, reference=_created_order(subject, response), **common)
        if error_class is BuyerActionRequired:
            return BuyerActionRequired(message, redirect_url=body.link("payer-action", "approve", "redirect"), **common)
        if issubclass(error_class, InvalidRequest):
            return error_class(message, param=body.field, state_conflict=code in CONFLICTS, **common)
        if error_class is RateLimited:
            return RateLimited(message, retry_after=_retry_after(response.header("retry-after")), **common)
        if error_class is IdempotencyConflict:
            return IdempotencyConflict(message, retryable=code in IN_PROGRESS, **common)
        return error_class(message, **common)


ERRORS: Final = PayPalErrorMapper()
COMPLETION_ERRORS: Final = PayPalErrorMapper(completing=True)
