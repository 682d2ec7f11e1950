"""Braintree's PaymentStatus in paywire's terms: the state of a payment, and the status of one
capture or refund as `fetch` lists it.

SUBMITTED_FOR_SETTLEMENT is a capture Braintree holds (it settles in the next batch); AUTHORIZING
and SETTLEMENT_PENDING are taken and decided later ("accepted"); SETTLEMENT_DECLINED, FAILED and
the refusals never moved money. Nor did a sale or whole capture VOIDED while it waited for
settlement (`voided_unsettled`): unlike an authorization voided, which paywire reads as authorized
then released, it is a capture that failed, as one declined at settlement.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from paywire import ProviderState
from paywire_braintree.objects import OBJECT

__all__ = [
    "ACCEPTED", "CAPTURED", "FAILED", "SUBMITTED", "operation_status", "payment_state", "result_status",
    "voided_unsettled",
]

CAPTURED: Final = frozenset({"SUBMITTED_FOR_SETTLEMENT", "SETTLING", "SETTLED", "SETTLEMENT_CONFIRMED"})
ACCEPTED: Final = frozenset({"AUTHORIZING", "SETTLEMENT_PENDING"})
FAILED: Final = frozenset({"PROCESSOR_DECLINED", "GATEWAY_REJECTED", "FAILED", "SETTLEMENT_DECLINED"})
# submitted for settlement at some point: a capture, decided or not
SUBMITTED: Final = CAPTURED | {"SETTLEMENT_PENDING", "SETTLEMENT_DECLINED"}

_STATES: Final = {
    "AUTHORIZING": ProviderState.PROCESSING,
    "AUTHORIZED": ProviderState.AUTHORIZED,
    "SETTLEMENT_PENDING": ProviderState.PROCESSING,
    "VOIDED": ProviderState.VOIDED,
    "AUTHORIZATION_EXPIRED": ProviderState.VOIDED,  # released: nothing can be captured any more
    **{status: ProviderState.CAPTURED for status in CAPTURED},
    **{status: ProviderState.FAILED for status in FAILED},
}


def payment_state(status: str) -> str:
    return _STATES.get(status, ProviderState.PENDING)


def operation_status(status: str) -> str:
    """"succeeded", "accepted" or "failed" for a capture or refund in `status`."""
    if status in CAPTURED:
        return "succeeded"
    if status in ACCEPTED:
        return "accepted"
    return "failed"


def result_status(status: str) -> str:
    """A command's result status for a transaction it created or changed."""
    return "accepted" if status in ACCEPTED else "succeeded"


def voided_unsettled(transaction: Mapping[str, Any]) -> bool:
    """A sale or whole capture (no partial captures of its own) that Braintree voided after it was
    submitted for settlement: the control panel's or the API's void before the batch. Its status,
    VOIDED, is an authorization's released one; only its history tells that it was a capture,
    which moved no money."""
    if transaction.get("status") != "VOIDED":
        return False
    details = transaction.get("partialCaptureDetails")
    if isinstance(details, OBJECT) and details.get("childCaptures"):
        return False
    return any(isinstance(event, OBJECT) and event.get("status") in SUBMITTED
               for event in transaction.get("statusHistory") or ())
