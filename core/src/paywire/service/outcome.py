"""Turning what a gateway answered (a result or an error) into a finished transaction, and back.

Everything stored goes through `redact()`: the ledger keeps enough to audit and resend an
operation, never a credential or a card number.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from paywire.command.result import CommandResult
from paywire.errors import (
    AuthenticationError,
    BuyerActionRequired,
    ConfigurationError,
    Declined,
    IdempotencyConflict,
    InvalidRequest,
    OutcomeUnknown,
    PaywireError,
    ProviderUnavailable,
    RateLimited,
    StateError,
    TransportError,
    UnsupportedOperation,
)
from paywire.ledger.model import SettledBy, Transaction, TransactionKind, TransactionStatus, replace, updated
from paywire.money import Money
from paywire.security import redact
from paywire.service.held import note_held

__all__ = [
    "FAILED_AT_PROVIDER", "NOT_APPLIED", "attach", "concluded", "failed", "is_unknown", "rebuild_error",
    "settled_by_caller", "succeeded", "summary_of_result", "unknown",
]

# The codes of a failure concluded from the provider's state (reconciliation) or its event, not
# from the request's own answer.
NOT_APPLIED = "not_applied"  # the provider never got it, and it can no longer land
FAILED_AT_PROVIDER = "failed_at_provider"  # the provider holds it failed: its key would get that again

_ERRORS: dict[str, type[PaywireError]] = {
    cls.__name__: cls
    for cls in (
        PaywireError, ConfigurationError, InvalidRequest, StateError, UnsupportedOperation, Declined,
        BuyerActionRequired, AuthenticationError, RateLimited, ProviderUnavailable, TransportError,
        OutcomeUnknown, IdempotencyConflict,
    )
}


def _money(value: Money | None) -> str | None:
    return f"{value.format()} {value.currency}" if value is not None else None


def summary_of_result(result: CommandResult) -> dict[str, Any]:
    """The answer's ids, state and amounts. Only what the provider wrote is redacted: the status
    and the amounts are paywire's own words, and the keys are fixed and harmless."""
    summary: dict[str, Any] = {"status": result.status}
    if result.reference is not None:
        summary["reference"] = redact(result.reference)
    if result.references:
        summary["references"] = redact(dict(result.references))
    if result.state is not None:
        summary["state"] = redact(result.state)
    # Each amount spelt out, in this order, rather than looked up by name in a loop: every outcome.
    if result.amount is not None:
        summary["amount"] = _money(result.amount)
    if result.authorized is not None:
        summary["authorized"] = _money(result.authorized)
    if result.captured is not None:
        summary["captured"] = _money(result.captured)
    if result.refunded is not None:
        summary["refunded"] = _money(result.refunded)
    if result.action is not None:
        summary["action"] = redact({"redirect_url": result.action.redirect_url,
                                    "return_url": result.action.return_url})
    return summary


def summary_of_error(error: BaseException) -> dict[str, Any]:
    if not isinstance(error, PaywireError):
        return {"error": type(error).__name__, "message": redact(str(error))[:500]}
    summary = {
        "error": type(error).__name__,
        "message": error.message,
        "code": error.code,
        "provider": error.provider,
        "status": error.status,
        "retryable": error.retryable,
        "may_have_been_sent": error.may_have_been_sent,
        "debug_id": error.debug_id,
        "decline_code": getattr(error, "decline_code", None),
    }
    redacted: dict[str, Any] = redact({k: v for k, v in summary.items() if v is not None})
    return redacted


def succeeded(txn: Transaction, result: CommandResult, at: datetime) -> Transaction:
    """The transaction as the provider answered it: succeeded, action_required, or accepted
    (the provider holds it and decides later: still open, its reference known), recorded at `at`
    (here and below: the ledger's clock, `Ledger.now`)."""
    answered = result.status  # compared here, not through `accepted` and `action_required`: every outcome
    accepted = answered == "accepted"
    if accepted:
        status = TransactionStatus.ACCEPTED
    else:
        status = TransactionStatus.ACTION_REQUIRED if answered == "action_required" else TransactionStatus.SUCCEEDED
    reference = result.reference
    if txn.kind == TransactionKind.VAULT:  # the token is kept apart; the reference names the customer
        reference = result.references.get("customer") or reference
    response = summary_of_result(result)
    if status == TransactionStatus.SUCCEEDED:  # `result.succeeded`
        response = note_held(txn, response, result.amount)  # a partial authorization holds less than asked
    return updated(txn, {
        "status": status, "provider_reference": reference or txn.provider_reference,
        "token": result.token or txn.token, "response": response, "updated_at": at,
        "finished_at": None if accepted else at, "settled_by": None if accepted else SettledBy.ANSWER,
        "error_type": None, "error_code": None, "error_message": None, "retryable": False,
    })


def is_unknown(error: BaseException) -> bool:
    """Whether the request may have taken effect although no usable answer came back.

    Failed needs evidence that the provider did not and will not apply it: a decline, a
    validation or authentication error, a rate limit, a connection never made, or a 5xx the
    plugin knows was not applied (`may_have_been_sent=False`). Anything else after the request
    left is unknown: timeouts, dropped connections, 5xx answers, and failures inside the pipeline.
    """
    if isinstance(error, IdempotencyConflict):
        return True  # the provider holds the key for a request still in flight (or it lost our record)
    if isinstance(error, (TransportError, ProviderUnavailable)):
        return error.may_have_been_sent
    return not isinstance(error, PaywireError)


def _kept(text: str | None) -> str | None:
    """An error's text as its ledger column keeps it: a NUL or a lone surrogate (the provider
    echoing what it was sent) written out, or the row is refused (PostgreSQL ends text at a NUL;
    neither ledger can encode a surrogate) and the answer in hand goes unrecorded."""
    if not text:
        return text
    text = text.replace("\x00", "\\x00")
    return text if text.isascii() else text.encode("utf-8", "backslashreplace").decode("utf-8")


def failed(txn: Transaction, error: BaseException, at: datetime) -> Transaction:
    typed = error if isinstance(error, PaywireError) else None
    return replace(
        txn, status=TransactionStatus.FAILED, error_type=type(error).__name__,
        provider_reference=(typed.reference if typed else None) or txn.provider_reference,
        error_code=_kept(typed.code if typed else None),
        error_message=_kept(redact(typed.message if typed else str(error))[:1000]),
        retryable=bool(typed and typed.retryable), response=summary_of_error(error),
        updated_at=at, finished_at=at, settled_by=SettledBy.ANSWER,
    )


def unknown(txn: Transaction, error: BaseException | None, at: datetime, note: str | None = None) -> Transaction:
    """`txn` left unknown by `error` (or by `note`: its worker stopped). Reconciliation's finding
    that the provider holds the first operation made but unfinished (`reconcile.unfinished`) stays
    true whatever became of a resend of it, so it is kept: a lost resend never turns the Janitor's
    next resend, or another worker's racing it, into a `not_unfinished` refusal."""
    response = summary_of_error(error) if error is not None else {}
    if note:
        response["note"] = note
    reconciled = txn.response.get("reconciled")
    if isinstance(reconciled, dict) and reconciled.get("unfinished") is True:
        response["reconciled"] = reconciled
    return replace(
        txn, status=TransactionStatus.UNKNOWN, response=response, updated_at=at,
        error_type=type(error).__name__ if error is not None else None,
        error_code=_kept(error.code if isinstance(error, PaywireError) else None),
        error_message=_kept(redact(str(error))[:1000]) if error is not None else note,
    )


def concluded(txn: Transaction, status: str, why: str, *, applied_nowhere: bool = False) -> dict[str, Any]:
    """The error fields of `txn` once reconciliation or an event settles it as `status`.

    They replace what the lost answer left (an `OutcomeUnknown` saying the request may have
    acted): a replay raises what the ledger holds. A failure is the provider's `why`:
    `applied_nowhere` when it never got the request (a transport failure, sent again safely under
    its key), else a failure it decided (a decline, which its key would only repeat).
    """
    if status != TransactionStatus.FAILED:
        return {"error_type": None, "error_code": None, "error_message": None}
    if applied_nowhere:
        then = "retry the same call (its idempotency key is reused) or send a new request with a new idempotency key"
        kind, code = TransportError.__name__, NOT_APPLIED
    else:
        then = "sent again under its idempotency key it would get the same answer: send a new request with a new " \
               "idempotency key"
        kind, code = Declined.__name__, FAILED_AT_PROVIDER
    message = f"the {txn.kind} did not take effect ({redact(why)}); nothing of it is held; {then}"
    return {"error_type": kind, "error_code": code, "error_message": message[:1000]}


def settled_by_caller(txn: Transaction, token: str | None, customer_reference: str | None,
                      at: datetime) -> Transaction:
    """`txn`, an unknown vault, as the caller found it at the provider: the payment method stored
    as `token` (for the customer `customer_reference`, when the caller names it), or, with no
    token, nothing stored. What the lost answer left in the response is kept, as reconciliation
    keeps it, and the response says who settled it."""
    status = TransactionStatus.SUCCEEDED if token is not None else TransactionStatus.FAILED
    why = ("the caller checked with the provider and recorded with settle_vault() that "
           + ("it stored the payment method" if token is not None else "nothing was stored"))
    return replace(
        txn, status=status, token=token, provider_reference=customer_reference or txn.provider_reference,
        response={**txn.response, "settled_by": why}, updated_at=at, finished_at=at,
        settled_by=SettledBy.CALLER, retryable=False, **concluded(txn, status, why),
    )


def attach(error: PaywireError, payment_id: str | None, transaction_id: str | None) -> PaywireError:
    """Name the ledger records an error is about, so the caller can look them up or retry."""
    error.payment_id = payment_id
    error.transaction_id = transaction_id
    error.details.setdefault("payment_id", payment_id)
    error.details.setdefault("transaction_id", transaction_id)
    return error


def rebuild_error(txn: Transaction) -> PaywireError:
    """The stored failure of a transaction: as the error it was first raised as, or, once
    reconciliation or an event settled it, as what they concluded (`concluded`): it did not take
    effect. The summary then holds the lost answer's fields, which are not the failure's."""
    response: Mapping[str, Any] = txn.response
    settled = txn.settled_by in (SettledBy.RECONCILE, SettledBy.WEBHOOK, SettledBy.CALLER)
    if settled and txn.error_code not in (NOT_APPLIED, FAILED_AT_PROVIDER):  # recorded before they were written
        why = (response.get("reconciled") or {}).get("note") or response.get("settled_by") or "settled from the provider"
        txn = replace(txn, **concluded(txn, TransactionStatus.FAILED, why, applied_nowhere=txn.retryable))
    cls = _ERRORS.get(txn.error_type or "", PaywireError)
    message = txn.error_message or f"the {txn.kind} failed"
    # What the refused request left at the provider, as its first answer named it (`failed`).
    kwargs: dict[str, Any] = {"provider": response.get("provider"), "code": txn.error_code, "retryable": txn.retryable,
                              "reference": txn.provider_reference}
    if settled:
        kwargs["may_have_been_sent"] = False
    else:
        kwargs.update(status=response.get("status"), debug_id=response.get("debug_id"))
    if cls is Declined:
        kwargs["decline_code"] = response.get("decline_code")
    error = cls(f"{message} (stored outcome of transaction {txn.id})", **kwargs)
    error.details["replayed"] = True
    return attach(error, txn.payment_id, txn.id)
