"""Braintree's PaymentStatus in paywire's terms: the state of a payment, and the status of one
capture or refund as `fetch` lists it.

SUBMITTED_FOR_SETTLEMENT is a capture Braintree holds (it settles in the next batch); AUTHORIZING
and SETTLEMENT_PENDING are taken and decided later ("accepted"); SETTLEMENT_DECLINED, FAILED and
the refusals never moved money. A capture, refund or sale declined at settlement after it was
submitted for it, or VOIDED then (the Control Panel voids one SUBMITTED_FOR_SETTLEMENT), took
effect and was undone: `operation_status` lists it "reversed". A sale or whole capture so voided
(`voided_unsettled`) leaves the payment failed, as one declined at settlement: unlike an
authorization voided, which paywire reads as authorized then released (for an authorization
captured whole, the hold released: `handlers.released_whole`). Unless paywire's own refund in
full reversed it (`refunded_by_reversal`): that capture was made, and refunded. When the batch
settled it first, Braintree's reversal refunded it instead (`reversal_refund`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from paywire import ProviderState
from paywire_braintree.amounts import from_braintree
from paywire_braintree.builders import VOID_KEY_FIELD, is_void_tag
from paywire_braintree.objects import OBJECT

__all__ = [
    "ACCEPTED", "CAPTURED", "FAILED", "SUBMITTED", "known", "moved_status", "operation_status", "payment_state",
    "refunded_by_reversal",
    "result_status", "reversal_key", "reversal_refund", "voided_unsettled",
]

CAPTURED: Final = frozenset({"SUBMITTED_FOR_SETTLEMENT", "SETTLING", "SETTLED", "SETTLEMENT_CONFIRMED"})
ACCEPTED: Final = frozenset({"AUTHORIZING", "SETTLEMENT_PENDING"})
FAILED: Final = frozenset({"PROCESSOR_DECLINED", "GATEWAY_REJECTED", "FAILED", "SETTLEMENT_DECLINED"})
_NOT_MADE: Final = FAILED | {"VOIDED", "AUTHORIZATION_EXPIRED"}  # a capture or refund Braintree did not make
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


def known(status: str) -> bool:
    """Whether `status` is one of Braintree's PaymentStatus values paywire reads (a status Braintree
    adds says nothing of what the transaction holds or still takes)."""
    return status in _STATES


def payment_state(status: str) -> str:
    return _STATES.get(status, ProviderState.PENDING)


def operation_status(status: str, history: Any = ()) -> str:
    """"succeeded", "accepted", "failed" or "reversed" for a capture or refund in `status`, with
    its `statusHistory` when read. One declined at settlement after it was submitted for it
    (SUBMITTED_FOR_SETTLEMENT or SETTLING, which paywire reports succeeded) took effect and the
    batch undid it: "reversed", as its transaction_settlement_declined notification says, so a
    lost request that made it is never concluded not applied. So is one VOIDED then (the Control
    Panel's void, of which Braintree sends no notification). One declined or voided after it only
    waited (SETTLEMENT_PENDING, an accepted answer), or whose history is not read, is "failed".
    Any other status says neither that it was made nor that it failed (AUTHORIZED, which the
    schema allows a refund, or one Braintree adds): "accepted", left open until Braintree says,
    as a lost request that may have taken effect is never concluded not applied."""
    if status in CAPTURED:
        return "succeeded"
    if status in ("SETTLEMENT_DECLINED", "VOIDED") and any(
            isinstance(event, OBJECT) and event.get("status") in CAPTURED for event in history or ()):
        return "reversed"
    if status in _NOT_MADE:
        return "failed"
    return "accepted"


def result_status(status: str) -> str:
    """A command's result status for an authorization or sale it created or found (refusals are
    told apart before): taken and decided later (ACCEPTED), or a status paywire does not know,
    which says nothing of what it holds, is "accepted"; any other (AUTHORIZED, submitted, settled,
    or moved on since: voided, expired) "succeeded"."""
    return "accepted" if status in ACCEPTED or not known(status) else "succeeded"


def moved_status(status: str) -> str:
    """A command's result status for a capture or refund it made: "succeeded" only once Braintree
    holds it submitted for settlement or further on (CAPTURED), as `operation_status` reads it;
    AUTHORIZED (which a refund may answer: not submitted, nothing given back yet), AUTHORIZING,
    SETTLEMENT_PENDING or a status paywire does not know is "accepted", left open until it is."""
    return "succeeded" if status in CAPTURED else "accepted"


def _voided_capture(transaction: Mapping[str, Any]) -> bool:
    """A sale or whole capture (no partial captures of its own) that Braintree voided after it was
    submitted for settlement. Its status, VOIDED, is an authorization's released one; only its
    history tells that it was a capture."""
    if transaction.get("status") != "VOIDED":
        return False
    details = transaction.get("partialCaptureDetails")
    if isinstance(details, OBJECT) and details.get("childCaptures"):
        return False
    return any(isinstance(event, OBJECT) and event.get("status") in SUBMITTED
               for event in transaction.get("statusHistory") or ())


def reversal_key(transaction: Mapping[str, Any]) -> str | None:
    """The idempotency key paywire's refund wrote on the transaction (`paywire_void_key`) before
    reversing it; never a void's (`builders.void_tag`): that reversal released an authorization
    (or voided the capture the Control Panel made of it meanwhile), and refunded nothing."""
    for field in transaction.get("customFields") or ():
        if isinstance(field, OBJECT) and field.get("name") == VOID_KEY_FIELD and field.get("value"):
            value = str(field["value"])
            return None if is_void_tag(value) else value
    return None


def refunded_by_reversal(transaction: Mapping[str, Any], *, child: bool = False, inherited: str | None = None) -> bool:
    """A capture or sale paywire refunded in full before it settled: reversed (VOIDED) under the
    key it wrote first. Braintree took it and gives it back whole: captured, then refunded. A
    `child` capture (listed by its authorization, history not read) was submitted when made; any
    other must show it in its history, or its key is that of a void of the authorization. A
    partial capture copies its authorization's custom fields when made: the key `inherited` from
    it (a void of the authorization that did not land) is never that of the capture's reversal."""
    key = reversal_key(transaction)
    if transaction.get("status") != "VOIDED" or key is None or key == inherited:
        return False
    return child or _voided_capture(transaction)


def reversal_refund(transaction: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The Refund that paywire's reversal made when the batch settled the capture or sale between
    the refund command's read and its reverseTransaction, which then refunds all of it. It carries
    no key of its own (reverseTransaction takes no orderId: the refund inherits the
    transaction's), so it is told by what only that reversal leaves together: the transaction,
    not VOIDED, carries the refund's key in paywire_void_key (written just before reversing); the
    refund was made through the API (its `source`), of the whole amount, under the inherited
    orderId. A refund from the Control Panel (CONTROL_PANEL), of part, or with an orderId of its
    own (paywire's other refunds: their key) is never it.

    Left ambiguous: another API client's unkeyed refund in full of a transaction carrying a key
    whose reversal never took effect (or a void key left on an authorization whose void did not,
    copied to its capture) reads as that reversal's refund: the money is the same, the actor not.
    """
    if transaction.get("status") == "VOIDED" or reversal_key(transaction) is None:
        return None
    whole = from_braintree(transaction["amount"])
    return next((refund for refund in transaction.get("refunds") or ()
                 if isinstance(refund, OBJECT) and refund.get("source") == "API"
                 and refund.get("orderId") == transaction.get("orderId")
                 and from_braintree(refund["amount"]) == whole), None)


def voided_unsettled(transaction: Mapping[str, Any]) -> bool:
    """A sale or whole capture voided before the batch by anything but paywire's refund in full
    (`refunded_by_reversal`): the control panel, or a void of a sale whose answer was lost. It
    holds no money: the payment failed. Voided once SUBMITTED_FOR_SETTLEMENT, the capture took
    effect and was undone (`operation_status`: "reversed"); voided while it only waited, it failed."""
    return _voided_capture(transaction) and not refunded_by_reversal(transaction)
