"""Reading Braintree's answers: GraphQL `errors` (HTTP 200 included), and transactions that exist
but were refused (processor declines, gateway rejections, failures).

A failed `Result` carries two codes: the kind of failure (Braintree's `errorClass`, or DECLINED,
GATEWAY_REJECTED, FAILED) and Braintree's own code (`legacyCode`, the processor response code,
the rejection reason), which the error mapper keeps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from paywire import Response, Result, Subject
from paywire_braintree.objects import OBJECT
from paywire_braintree.states import voided_unsettled

__all__ = ["REFUSED", "answered", "deleted", "payload", "refusal", "transaction_accepted", "vaulted"]

# SETTLEMENT_DECLINED is only ever found (a replay reading what an earlier attempt made): the
# processor refused the capture when it settled, so no money moved.
REFUSED = frozenset({"PROCESSOR_DECLINED", "GATEWAY_REJECTED", "FAILED", "SETTLEMENT_DECLINED"})


def payload(response: Response) -> Any:
    """The one field under `data` the document asked for (None when absent)."""
    data = response.data.get("data") if isinstance(response.data, OBJECT) else None
    if not isinstance(data, OBJECT) or len(data) != 1:
        return None
    return next(iter(data.values()))


def answered(subject: Subject, response: Response) -> Result:
    """No GraphQL errors, and data for the operation. Errors beside the operation's data are
    Braintree's "partial success": only a field of the answer failed, so whatever class the errors
    name (NOT_FOUND included), they say nothing of the operation or the object it names: a
    mutation was made, a read is incomplete. Either way the kind is PARTIAL, which the
    error mapper makes an unknown outcome on a 200, never a refusal or an absence."""
    result = _answered(response)
    errors = response.data.get("errors") if isinstance(response.data, OBJECT) else None
    if not result.ok and errors and payload(response) is not None:
        return Result(False, result.messages, ("PARTIAL", *result.codes))
    return result


def _answered(response: Response) -> Result:
    body = response.data
    errors = body.get("errors") if isinstance(body, OBJECT) else None
    if isinstance(errors, list) and errors:
        extensions = _deciding(errors)
        kind = _error_class(extensions)
        code = extensions.get("legacyCode")
        messages = tuple(str(error.get("message")) for error in errors if isinstance(error, OBJECT))
        return Result(False, messages or (f"Braintree answered HTTP {response.status}",),
                      (kind, str(code)) if code else (kind,))
    if not response.ok:
        return Result.failure(f"Braintree answered HTTP {response.status}")
    if payload(response) is None:
        return Result.failure("Braintree's answer holds no data for the operation", "UNREADABLE")
    return Result.success()


# The classes by which Braintree refuses a request: it was not applied.
_REFUSALS = frozenset({"VALIDATION", "NOT_FOUND", "UNSUPPORTED_CLIENT", "AUTHENTICATION", "AUTHORIZATION",
                       "RESOURCE_LIMIT"})


def _extensions(error: Any) -> Mapping[str, Any]:
    extensions = error.get("extensions") if isinstance(error, OBJECT) else None
    return extensions if isinstance(extensions, OBJECT) else {}


def _error_class(extensions: Mapping[str, Any]) -> str:
    return str(extensions.get("errorClass") or "UNKNOWN")


def _deciding(errors: list[Any]) -> Mapping[str, Any]:
    """The extensions of the error that decides the answer's kind. Every error counts, as the
    official SDK reads them (past VALIDATION, to the first other class): one that says nothing of
    whether the request was applied (INTERNAL, SERVICE_AVAILABILITY, a class paywire does not know)
    wins wherever it stands, or a refusal beside it would record failed what Braintree may have
    made; then a refusal other than VALIDATION; then the first error."""
    found = [_extensions(error) for error in errors]
    unsure = next((e for e in found if _error_class(e) not in _REFUSALS), None)
    if unsure is not None:
        return unsure
    return next((e for e in found if _error_class(e) != "VALIDATION"), found[0])


def deleted(subject: Subject, response: Response) -> Result:
    """`answered`, for a deletion: NOT_FOUND after an earlier attempt may have arrived (the
    payment service resending an unknown unvault) is the deletion that attempt made, not a
    refusal. Braintree's mutations take no idempotency key, so the resend is a new request."""
    result = answered(subject, response)
    if not result.ok and response.unsure and result.codes[:1] == ("NOT_FOUND",):
        return Result.success()
    return result


def refusal(transaction: Any) -> Result:
    """A transaction Braintree created in a refused status, or a sale voided before it settled
    (only ever found, by a replay), as a failed Result. A replay first asks whether it was undone
    after it took effect (`composites._undone`: voided or declined once submitted), a success."""
    if not isinstance(transaction, OBJECT):
        return Result.success()
    if voided_unsettled(transaction):
        return Result.failure("Braintree voided the transaction before it settled: it moved no money",
                              "DECLINED", "voided")
    if transaction.get("status") not in REFUSED:
        return Result.success()
    status = transaction["status"]
    events = [e for e in transaction.get("statusHistory") or () if isinstance(e, OBJECT) and e.get("status") == status]
    event: Mapping[str, Any] = events[-1] if events else {}
    if status == "GATEWAY_REJECTED":
        reason = str(event.get("gatewayRejectionReason") or "UNKNOWN")
        original = event.get("duplicateOf")
        extra = (str(original["id"]),) if isinstance(original, OBJECT) and original.get("id") else ()
        return Result.failure(f"Braintree's gateway rejected the transaction ({reason.lower()})",
                              "GATEWAY_REJECTED", reason.lower(), *extra)
    response: Mapping[str, Any] = event.get("processorResponse") or {}
    if not isinstance(response, OBJECT):
        response = {}
    code, message = response.get("legacyCode"), response.get("message")
    kind = "DECLINED" if status in ("PROCESSOR_DECLINED", "SETTLEMENT_DECLINED") else "FAILED"
    text = f"the processor declined the transaction: {code} {message}" if code else f"the transaction {status.lower()}"
    return Result.failure(text, kind, str(code or status.lower()))


def transaction_accepted(field: str) -> Any:
    """A validator: the transaction under `data.<field>.<key>` was not refused."""

    def validate(subject: Subject, response: Response) -> Result:
        node = payload(response)
        transaction = node.get(field) if isinstance(node, OBJECT) else None
        if not isinstance(transaction, OBJECT) or "status" not in transaction:
            return Result.failure("Braintree's answer holds no transaction", "UNREADABLE")
        return refusal(transaction)

    return validate


def vaulted(subject: Subject, response: Response) -> Result:
    """A validator: vaultPaymentMethod stored the payment method. Braintree verifies a card before
    vaulting it, and one the verification refuses is not vaulted: the answer holds no payment
    method and no error, only the verification, read as a transaction's refusal (a decline)."""
    node = payload(response)
    if isinstance(node, OBJECT) and isinstance(node.get("paymentMethod"), OBJECT):
        return Result.success()
    verification = node.get("verification") if isinstance(node, OBJECT) else None
    status = verification.get("status") if isinstance(verification, OBJECT) else None
    if not isinstance(verification, OBJECT) or status not in ("PROCESSOR_DECLINED", "GATEWAY_REJECTED", "FAILED"):
        return Result.failure("Braintree's answer holds no vaulted payment method", "UNREADABLE")
    if status == "GATEWAY_REJECTED":
        reason = str(verification.get("gatewayRejectionReason") or "UNKNOWN").lower()
        return Result.failure(f"Braintree's gateway rejected the payment method's verification ({reason}): "
                              "it was not vaulted", "GATEWAY_REJECTED", reason)
    processor: Any = verification.get("processorResponse")
    code = processor.get("legacyCode") if isinstance(processor, OBJECT) else None
    message = processor.get("message") if isinstance(processor, OBJECT) else None
    kind = "DECLINED" if status == "PROCESSOR_DECLINED" else "FAILED"
    text = f"the processor declined the payment method's verification: {code} {message}" if code \
        else f"the payment method's verification {status.lower()}"
    return Result.failure(f"{text}; it was not vaulted", kind, str(code or status.lower()))
