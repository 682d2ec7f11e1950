"""Braintree's failures as paywire's typed errors.

| Braintree | error | recorded as |
|---|---|---|
| errorClass VALIDATION, NOT_FOUND, UNSUPPORTED_CLIENT | InvalidRequest (legacyCode kept) | failed |
| a refund of more than is left (91521) or of a transaction refunded in full already (91512), a capture of more than is left (91522) or of an authorization no longer authorized (91507) | StateError with `state_conflict` (the ledger is behind); a partial capture refused 91507 also with `capture_closed` (`composites.Capture`) | failed; the payment is read (and its capture closed) |
| errorClass AUTHENTICATION, AUTHORIZATION | AuthenticationError | failed |
| errorClass RESOURCE_LIMIT, HTTP 429 | RateLimited (Retry-After kept) | failed, retryable |
| errorClass INTERNAL, SERVICE_AVAILABILITY, any 5xx | ProviderUnavailable | unknown: Braintree documents neither as not applied |
| a transaction PROCESSOR_DECLINED | Declined (processor response code) | failed |
| a transaction GATEWAY_REJECTED | Declined (the rejection reason; a DUPLICATE names its original in `details["duplicate_of"]`) | failed |
| a transaction FAILED | Declined | failed |
| a payment method its verification refused (vaultPaymentMethod answers the verification, no payment method) | Declined (processor response code, or the rejection reason) | failed |
| a sale found VOIDED while it only waited for settlement (SETTLEMENT_PENDING; a replay) | Declined (`voided`) | failed |
| HTTP 200 that cannot be read, or an error of no class or one paywire does not know | OutcomeUnknown | unknown |
| HTTP 400, 401, 402, 403, 404, 422, 426 or 429 with no error class (a request refused as it stands) | by status | failed |
| any other 4xx with no error class (408 Request Timeout, a proxy's 409, 413, 499, ...) | OutcomeUnknown | unknown: Braintree documents none as not applied |
| errors beside the data (a partial success: a mutation was made, a read is incomplete, never an absence) | OutcomeUnknown | unknown |

A refused authorizePaymentMethod or chargePaymentMethod is a Transaction Braintree made all the
same: the decline names it (`PaywireError.reference`), so the ledger records it as the payment's
and finds the payment by it. A refused capture or refund is an operation on the payment: it
names nothing, so nothing of the payment's is taken for its own.

Of several errors, the one that decides the class is chosen by `validation.answered`: any that
leaves the outcome unknown wins over refusals beside it.
"""

from __future__ import annotations

from typing import Any, Final

import attrs

from paywire import Response, Result, Subject
from paywire.error_mapper import error_for_status
from paywire.errors import (
    AuthenticationError,
    Declined,
    InvalidRequest,
    OutcomeUnknown,
    PaywireError,
    ProviderUnavailable,
    RateLimited,
    StateError,
)
from paywire.http.retry import parse_retry_after
from paywire_braintree.objects import OBJECT

__all__ = ["ERRORS", "BraintreeErrors"]

_CLASSES: dict[str, type[PaywireError]] = {
    "VALIDATION": InvalidRequest,
    "NOT_FOUND": InvalidRequest,
    "UNSUPPORTED_CLIENT": InvalidRequest,
    "AUTHENTICATION": AuthenticationError,
    "AUTHORIZATION": AuthenticationError,
    "RESOURCE_LIMIT": RateLimited,
    "INTERNAL": ProviderUnavailable,
    "SERVICE_AVAILABILITY": ProviderUnavailable,
    "DECLINED": Declined,
    "GATEWAY_REJECTED": Declined,
    "FAILED": Declined,
}
# A refund of more than the transaction has left (91521) or of one refunded in full already (91512),
# a capture of more than the authorization has left (91522), a capture of an authorization no
# longer authorized (91507: captured whole or closed by a final capture): the ledger checked what
# is left before sending, so it counts less refunded or captured than Braintree (made in the
# control panel); the service reads the payment (`PaywireError.state_conflict`).
_CONFLICTS = frozenset({"91507", "91512", "91521", "91522"})
# The mutations that create the payment (whatever the processor then said of it).
_CREATES: Final = ("authorizePaymentMethod", "chargePaymentMethod")
# The 4xx statuses that refuse a request as it stands when no error class says more: a request
# not taken (400, 402, 422), a credential refused (401, 403), no such endpoint (404), an API
# version refused (426), a rate limit (429). Braintree documents no other 4xx as "not applied": a
# 408 (its SDK's RequestTimeoutError: the request timed out after its body was sent) or a proxy's
# 409, 413 or 499 may come after Braintree made the mutation.
_REFUSED_STATUSES: Final = frozenset({400, 401, 402, 403, 404, 422, 426, 429})
_CUSTOMER_MESSAGES = {
    "DECLINED": "Your bank declined the payment. Please use another payment method.",
    "GATEWAY_REJECTED": "The payment was refused. Please check your details or use another payment method.",
}


@attrs.frozen
class BraintreeErrors:
    """The error mapper: the failure's kind decides the class, the HTTP status what is left."""

    provider: str = "braintree"

    def __call__(self, subject: Subject, response: Response, result: Result) -> PaywireError:
        kind = result.codes[0] if result.codes else None
        code = result.codes[1] if len(result.codes) > 1 else kind
        message = "; ".join(result.messages) or f"Braintree answered HTTP {response.status}"
        error_class = _CLASSES.get(kind or "")
        if error_class is None:
            if response.ok or (400 <= response.status < 500 and response.status not in _REFUSED_STATUSES):
                fallback = "unreadable" if response.ok else f"http_{response.status}"
                return OutcomeUnknown(f"{message}; the operation may have been applied: reconcile it",
                                      provider=self.provider, code=kind or fallback, status=response.status)
            error_class = error_for_status(response.status)
            code = kind or f"http_{response.status}"
        extra: dict[str, Any] = {}
        if issubclass(error_class, RateLimited):
            extra["retry_after"] = parse_retry_after(response.header("retry-after"))
        details: dict[str, Any] = {}
        if issubclass(error_class, Declined):
            extra["decline_code"] = code
            if len(result.codes) > 2:  # a DUPLICATE rejection names the original transaction
                details["duplicate_of"] = result.codes[2]
            extra["reference"] = made(response)
        if code in _CONFLICTS:
            error_class, extra["state_conflict"] = StateError, True
        return error_class(message, provider=self.provider, code=code, status=response.status,
                           customer_message=_CUSTOMER_MESSAGES.get(kind or ""), details=details, **extra)


def made(response: Response) -> str | None:
    """The id of the authorization or sale a refused authorizePaymentMethod or chargePaymentMethod
    made (None for any other answer)."""
    data = response.data.get("data") if isinstance(response.data, OBJECT) else None
    for field in _CREATES:
        node = data.get(field) if isinstance(data, OBJECT) else None
        transaction = node.get("transaction") if isinstance(node, OBJECT) else None
        if isinstance(transaction, OBJECT) and transaction.get("id"):
            return str(transaction["id"])
    return None


ERRORS = BraintreeErrors()
