"""An order as paywire reads it: its state, running totals and the ids the next commands act on.

PayPal keeps a payment's history inside the order: `purchase_units[].payments` lists its
authorizations (a reauthorization is listed after the one it renews), captures and refunds. The
totals are computed from those, in the order's currency:

- authorized: what the live authorization of each purchase unit covers (the latest one not
  DENIED, voided or expired ones included: they were authorized; a PENDING one only once PayPal
  decides), or what was captured for intent CAPTURE. That is the authorization's amount, which
  PayPal never changes, or what the unit's captures took when they went over it: PayPal lets
  captures add up to more than the authorization (its overage, by default up to 115%, at most
  USD 75 more), and the authorization then covers what they took (a ledger, which keeps
  captured <= authorized, then agrees with the reading). A live reauthorization holds its own
  amount, less or more than the original's: it covers that on top of what captures of earlier
  authorizations took, no more than the larger of its amount and the original's, and the
  references name the original as `REAUTHORIZED` (what the reauthorization holds replaced it);
  one PayPal has not created (still PENDING, or DENIED with none created since) holds nothing and
  takes no capture, nor does the one it renews: the unit covers what it did before it, and the
  references name it as `REAUTHORIZATION_UNDECIDED`;
- captured: captures COMPLETED, PARTIALLY_REFUNDED or REFUNDED (money that moved);
- refunded: refunds COMPLETED.

An order PayPal cancelled (VOIDED) before any authorization or capture is `ProviderState.FAILED`:
paywire's "voided" is an authorization released, which such an order never had, and a completion
whose answer was lost did not take effect.

A PENDING capture or refund has not moved money yet: PayPal decides later (a review, an eCheck
clearing) and says so by webhook. It is counted nowhere, listed by `operations` as "accepted", and
an order whose captures are all pending (none completed) is `ProviderState.PROCESSING`, so the
ledger's totals never run ahead of PayPal's; but one whose authorization PayPal voided since (or
let expire) is `ProviderState.AUTHORIZED`, nothing capturable: PayPal takes no further capture of
it whatever it decides of the pending one, and the ledger closes its capture on that reading (not
voided: the pending capture may still complete). An authorization a pending capture took the rest of
(a final one, or one of all that was left) reads CAPTURED, but is not closed until PayPal decides
that capture: declined, it takes captures again.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Final

from paywire import (
    REAUTHORIZATION_UNDECIDED,
    REAUTHORIZED,
    VOID_TARGET,
    InvalidRequest,
    Money,
    ProviderOperation,
    ProviderState,
)
from paywire_paypal.amounts import from_paypal

__all__ = [
    "KEY_NOT_ECHOED",
    "OPERATION_STATUS",
    "TAKEN_BACK",
    "authorization_of",
    "cancelled",
    "capturable",
    "capture_of",
    "operations",
    "order_fields",
    "order_id_of",
    "renewed",
    "renews",
    "taken_back",
    "up_id",
]

# The custom_id of a refund made under a key PayPal cannot echo: still paywire's, key unknown.
KEY_NOT_ECHOED: Final = "paywire"
# Reasons of a failed capture status that say its captured money was taken back (Payments v2
# `capture_status_details`): the capture had succeeded.
TAKEN_BACK: Final = frozenset({"CHARGEBACK", "BUYER_COMPLAINT", "REFUNDED"})
_CAPTURED: Final = frozenset({"COMPLETED", "PARTIALLY_REFUNDED", "REFUNDED"})
_REFUNDED: Final = frozenset({"COMPLETED"})
_TAKEN: Final = _CAPTURED | {"PENDING"}  # captures that count against their authorization
# A capture's or refund's PayPal status as a `ProviderOperation` status.
OPERATION_STATUS: Final = {
    "COMPLETED": "succeeded", "PARTIALLY_REFUNDED": "succeeded", "REFUNDED": "succeeded",
    "PENDING": "accepted",
    "DECLINED": "failed", "DENIED": "failed", "FAILED": "failed", "CANCELLED": "failed",
}
_WAITING: Final = {
    "CREATED": ProviderState.ACTION_REQUIRED,
    "PAYER_ACTION_REQUIRED": ProviderState.ACTION_REQUIRED,
    "SAVED": ProviderState.PENDING,
    "APPROVED": ProviderState.PENDING,
}


def _list(value: Any) -> list[Mapping[str, Any]]:
    return [item for item in value if isinstance(item, Mapping)] if isinstance(value, list) else []


def _payments(unit: Mapping[str, Any], kind: str) -> list[Mapping[str, Any]]:
    payments = unit.get("payments")
    return _list(payments.get(kind)) if isinstance(payments, Mapping) else []


def _sum(amounts: Iterable[Mapping[str, Any]], currency: str) -> Money:
    total = Money.zero(currency)
    for payment in amounts:
        total += from_paypal(payment.get("amount"))
    return total


def _currency(units: list[Mapping[str, Any]]) -> str:
    for unit in units:
        amount = unit.get("amount")
        if isinstance(amount, Mapping) and isinstance(amount.get("currency_code"), str):
            return str(amount["currency_code"])
        for kind in ("authorizations", "captures"):
            for payment in _payments(unit, kind):
                return from_paypal(payment.get("amount")).currency
    raise InvalidRequest("PayPal answered an order without an amount", provider="paypal", code="unexpected_order")


def _live_authorization(unit: Mapping[str, Any]) -> Mapping[str, Any] | None:
    live = [auth for auth in _payments(unit, "authorizations") if auth.get("status") != "DENIED"]
    return live[-1] if live else None


def _original_authorization(unit: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The authorization the unit's reauthorizations renew, listed before them: what a void of
    the unit goes to. PayPal refuses to void a reauthorization (CANNOT_BE_VOIDED: "Please void the
    original parent authorization"), and voiding the original voids its reauthorization with it."""
    live = [auth for auth in _payments(unit, "authorizations") if auth.get("status") != "DENIED"]
    return live[0] if live else None


def _undecided(unit: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The unit's last reauthorization, when PayPal has not created it: it still reviews it
    (PENDING), or denied it and none was created since. PayPal takes no capture of it, nor of the
    authorization it renews, until one is created. PayPal documents neither ("any subsequent
    capture should be performed on the new Authorization ID"): the reading that takes least."""
    authorizations = _payments(unit, "authorizations")
    last = authorizations[-1] if len(authorizations) > 1 else None
    return last if last is not None and last.get("status") in ("PENDING", "DENIED") else None


def _before_undecided(unit: Mapping[str, Any]) -> Mapping[str, Any]:
    """The unit as it stood before its live reauthorization, when PayPal still reviews that one
    (`_undecided`): what it covers and what it renewed; otherwise the unit itself."""
    auth, undecided = _live_authorization(unit), _undecided(unit)
    if auth is None or undecided is None or auth.get("id") != undecided.get("id"):
        return unit
    payments = unit.get("payments")
    rest = [a for a in _payments(unit, "authorizations") if a.get("id") != auth.get("id")]
    return {**unit, "payments": {**(payments if isinstance(payments, Mapping) else {}), "authorizations": rest}}


def _covered(unit: Mapping[str, Any], currency: str) -> Money:
    """What the unit's live authorization covers: its amount, or what the unit's captures took
    when they went over it (PayPal's overage); nothing while PayPal has not decided it (PENDING).
    A reauthorization (`_renewed_by`) covers what it holds on top of what captures of the
    authorizations before it took, never more than the larger of its amount and the original's;
    one PayPal still reviews (`_undecided`) holds nothing yet: the unit covers what it did before it."""
    auth = _live_authorization(unit)
    standing = _before_undecided(unit)
    if standing is not unit:
        return _covered(standing, currency)
    if auth is None or auth.get("status") == "PENDING":
        return Money.zero(currency)
    captures = [cap for cap in _payments(unit, "captures") if cap.get("status") in _CAPTURED]
    captured = _sum(captures, currency)
    amount = from_paypal(auth.get("amount"))
    original = _renewed_by(unit)
    if original is not None:
        before = _sum((cap for cap in captures if not _made_on(cap, auth)), currency)
        amount = min(max(from_paypal(original.get("amount")), amount), before + amount)
    return max(amount, captured)


def _renewed_by(unit: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The authorization the unit's live one renews, when that is a reauthorization PayPal
    created (not one it still reviews, PENDING: nothing is held for captures until it decides)."""
    live, original = _live_authorization(unit), _original_authorization(unit)
    if live is None or original is None or live.get("id") == original.get("id") or live.get("status") == "PENDING":
        return None
    return original


def _waiting(unit: Mapping[str, Any]) -> bool:
    """Whether a capture of the unit waits for PayPal's decision (PENDING). What it takes of the
    authorization is held meanwhile (it counts against it, and a final one reads CAPTURED), but
    declined, it gives that back: the authorization takes captures again."""
    return any(cap.get("status") == "PENDING" for cap in _payments(unit, "captures"))


def _made_on(capture: Mapping[str, Any], authorization: Mapping[str, Any]) -> bool:
    """Whether `capture` was made on `authorization`, as the capture names it (its related ids, or
    its `up` link); one naming none is counted against it. PayPal counts captures per
    authorization: a reauthorization holds its own amount, and what earlier authorizations of the
    unit captured takes nothing of it."""
    related = capture.get("supplementary_data")
    ids = related.get("related_ids") if isinstance(related, Mapping) else None
    named = ids.get("authorization_id") if isinstance(ids, Mapping) else None
    named = named if isinstance(named, str) else up_id(capture, "authorizations")
    return named is None or named == authorization.get("id")


def _closed(unit: Mapping[str, Any]) -> bool:
    """Whether the unit's live authorization takes no more captures for good: voided, expired,
    or captured with none of its captures left for PayPal to decide."""
    auth = _live_authorization(unit)
    status = auth.get("status") if auth is not None else None
    return status in ("VOIDED", "EXPIRED") or (status == "CAPTURED" and not _waiting(unit))


def cancelled(order: Mapping[str, Any]) -> bool:
    """Whether PayPal voided the order before anything was authorized or captured in it (the buyer
    never approved in time, or the capture window after approval passed): it can never be
    completed, and no buyer can change that."""
    return order.get("status") == "VOIDED" and not any(unit.get("payments") for unit in _list(order.get("purchase_units")))


def order_id_of(payment: Mapping[str, Any]) -> str | None:
    """The order an authorization, capture or reauthorization belongs to."""
    related = (payment.get("supplementary_data") or {}).get("related_ids") if isinstance(
        payment.get("supplementary_data"), Mapping) else None
    order_id = related.get("order_id") if isinstance(related, Mapping) else None
    return order_id if isinstance(order_id, str) else None


def authorization_of(order: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The live authorization of the order's (first) purchase unit."""
    units = _list(order.get("purchase_units"))
    return _live_authorization(units[0]) if units else None


def renews(order: Mapping[str, Any], authorization_id: str) -> str | None:
    """The authorization that `authorization_id` renews, when the order lists it as its purchase
    unit's live reauthorization PayPal created (`_renewed_by`): what it holds replaces that one's."""
    for unit in _list(order.get("purchase_units")):
        live, original = _live_authorization(unit), _renewed_by(unit)
        if live is not None and live.get("id") == authorization_id and original is not None:
            return str(original["id"])
    return None


def renewed(order: Mapping[str, Any], authorization_id: str) -> bool:
    """Whether the order lists the authorization with a live one after it in its purchase unit (a
    reauthorization of it, `_live_authorization`): captures act on that one, and PayPal refuses
    to capture the authorization it renews."""
    for unit in _list(order.get("purchase_units")):
        ids = [auth.get("id") for auth in _payments(unit, "authorizations")]
        if authorization_id in ids:
            live = _live_authorization(unit)
            return live is not None and live.get("id") != authorization_id
    return False


def capture_of(order: Mapping[str, Any]) -> Mapping[str, Any] | None:
    """The first capture of the order that moved money (or its first capture, if none did)."""
    captures = [cap for unit in _list(order.get("purchase_units")) for cap in _payments(unit, "captures")]
    counted = [cap for cap in captures if cap.get("status") in _CAPTURED]
    chosen = counted or captures
    return chosen[0] if chosen else None


def taken_back(payment: Mapping[str, Any]) -> bool:
    """Whether a capture failed because its money was taken back after it was captured (a
    DENIED capture whose `status_details.reason` is in `TAKEN_BACK`): it had succeeded."""
    details = payment.get("status_details")
    reason = details.get("reason") if isinstance(details, Mapping) else None
    return payment.get("status") in ("DECLINED", "DENIED", "FAILED") and reason in TAKEN_BACK


def up_id(resource: Mapping[str, Any], segment: str) -> str | None:
    """The id in the resource's `up` link, when it points at `/<segment>/<id>` (a refund's capture:
    the only place PayPal names it in a refund)."""
    for link in _list(resource.get("links")):
        href = link.get("href")
        if isinstance(href, str) and link.get("rel") == "up" and f"/{segment}/" in href:
            return href.rstrip("/").rsplit("/", 1)[-1]
    return None


def operations(order: Mapping[str, Any]) -> tuple[ProviderOperation, ...]:
    """Every capture and refund the order holds, for reconciliation: in PayPal's order, those that
    failed (DECLINED, FAILED, ...) after the others. A capture whose money PayPal took back
    (`taken_back`) is "reversed": it took effect, and a lost request that made it did too.

    A refund's `custom_id` is the paywire idempotency key it was sent with, or `KEY_NOT_ECHOED`
    for a key PayPal cannot echo (see `payments.refund_request`): not known, then. A refund
    without one is none of paywire's (PayPal's reversal of a chargeback, the dashboard's), its
    key "": matched by amount, it would stand for a refund of paywire's that never reached PayPal.
    Its `up` link names its capture, the refund's parent (an order captured several times can hold
    refunds of one amount on different captures). PayPal's capture request has no free field that
    captures echo (`invoice_id` is the payer-visible invoice, unique per payment), so captures
    carry none (not known) and reconciliation matches an open capture by amount, taking the first
    one listed. A capture says whether it was final (`final_capture`): PayPal takes no further
    capture of its authorization, also while it holds that capture PENDING. A failed one goes
    last: the ledger records a capture PayPal declined as failed without its id (the decline is
    the answer), so an earlier declined capture of the same amount must not take the place of the
    one a lost request made (a retry after the decline that went through).

    An authorization VOIDED in a unit whose captures took something is listed too, as a "void" of
    what they left of it (`_releases`): the order's state and totals read as after a final capture,
    and its status is what tells a void from one (CAPTURED). Not only the live one: a void sent to
    an authorization reauthorized since voids that one, whatever its reauthorization holds.
    """
    found: list[ProviderOperation] = []
    for unit in _list(order.get("purchase_units")):
        found.extend(_releases(unit))
        for kind, listed in (("capture", "captures"), ("refund", "refunds")):
            for payment in _payments(unit, listed):
                if not isinstance(payment.get("id"), str):
                    continue
                # A status PayPal may add later says neither made nor failed: open, so a lost
                # request it may have made is matched to it and waits, never concluded not applied.
                status = OPERATION_STATUS.get(str(payment.get("status")), "accepted")
                if kind == "capture" and taken_back(payment):
                    status = "reversed"
                found.append(ProviderOperation(kind=kind, reference=payment["id"],
                                               amount=from_paypal(payment.get("amount")), status=status,
                                               idempotency_key=_refund_key(payment) if kind == "refund" else None,
                                               parent=up_id(payment, "captures") if kind == "refund" else None,
                                               final=kind == "capture" and payment.get("final_capture") is True))
    return tuple(sorted(found, key=lambda operation: operation.status == "failed"))


def _releases(unit: Mapping[str, Any]) -> list[ProviderOperation]:
    """The voids that released what the unit's authorizations had left once captures took part
    of the unit (PayPal voids a partly captured authorization): each authorization VOIDED, with
    what the captures made on it left of it. A void sent to an original authorization that was
    reauthorized since is one of them, whatever its reauthorization holds (captured in full beside
    paywire: the order reads captured). None where nothing was captured (the order reads
    voided)."""
    captures = [cap for cap in _payments(unit, "captures") if cap.get("status") in _TAKEN or taken_back(cap)]
    if not captures:
        return []
    found = []
    for auth in _payments(unit, "authorizations"):
        if auth.get("status") != "VOIDED" or not isinstance(auth.get("id"), str):
            continue
        amount = from_paypal(auth.get("amount"))
        taken = _sum((cap for cap in captures if _made_on(cap, auth)), amount.currency)
        found.append(ProviderOperation(kind="void", reference=auth["id"],
                                       amount=max(amount - taken, Money.zero(amount.currency))))
    return found


def _refund_key(refund: Mapping[str, Any]) -> str | None:
    """The key a refund was made with: "" for one made without paywire's `custom_id`; None when
    not known (a key PayPal could not echo)."""
    key = refund.get("custom_id")
    if key is None or key == "":
        return ""
    return None if not isinstance(key, str) or key == KEY_NOT_ECHOED else key


def order_fields(order: Mapping[str, Any]) -> dict[str, Any]:
    """`CommandResult` fields for an order: state, totals, and references (payment = the order)."""
    order_id = str(order["id"])
    units = _list(order.get("purchase_units"))
    references = {"payment": order_id, "order": order_id}
    status = order.get("status")
    if status in _WAITING:
        return {"state": _WAITING[status], "reference": order_id, "references": references}
    if cancelled(order):
        # No authorization was ever there to void, and the order can no longer be completed.
        return {"state": ProviderState.FAILED, "reference": order_id, "references": references}
    currency = _currency(units)
    captures = [cap for unit in units for cap in _payments(unit, "captures")]
    counted = [cap for cap in captures if cap.get("status") in _CAPTURED]
    refunds = [ref for unit in units for ref in _payments(unit, "refunds") if ref.get("status") in _REFUNDED]
    captured, refunded = _sum(counted, currency), _sum(refunds, currency)
    authorizations = [auth for auth in (_live_authorization(unit) for unit in units) if auth is not None]
    if order.get("intent") == "AUTHORIZE":
        authorized = sum((_covered(unit, currency) for unit in units), Money.zero(currency))
        closed = bool(authorizations) and all(_closed(unit) for unit in units if _live_authorization(unit))
        reference = authorizations[-1].get("id") if authorizations else None
    else:
        authorized, closed = captured, True
        first = capture_of(order)
        reference = first.get("id") if first else None
    if authorizations:
        references["authorization"] = str(authorizations[-1]["id"])
        unit = [unit for unit in units if _live_authorization(unit)][-1]
        original = _original_authorization(unit)
        if original is not None:
            references[VOID_TARGET] = str(original["id"])
        if _renewed_by(_before_undecided(unit)) is not None and original is not None:
            references[REAUTHORIZED] = str(original["id"])  # what it holds replaced the original's
        undecided = _undecided(unit)
        if undecided is not None and isinstance(undecided.get("id"), str):
            references[REAUTHORIZATION_UNDECIDED] = str(undecided["id"])  # no capture until PayPal creates one
    if captures:
        references["capture"] = str((counted or captures)[-1]["id"])
    pending = any(cap.get("status") == "PENDING" for cap in captures)
    return {
        "state": _state(authorizations, authorized, captured, refunded, closed, pending),
        "reference": reference or order_id,
        "references": references,
        "authorized": authorized,
        "captured": captured,
        "refunded": refunded,
    }


# An authorization's statuses paywire reads; any other leaves what it still takes unknown.
_AUTHORIZATION_STATUSES: Final = frozenset({"CREATED", "PARTIALLY_CAPTURED", "CAPTURED", "VOIDED", "EXPIRED",
                                            "PENDING", "DENIED"})


def capturable(order: Mapping[str, Any]) -> Money | None:
    """What PayPal still lets be captured of the order: of each purchase unit whose live
    authorization is open to captures (CREATED, PARTIALLY_CAPTURED), what its captures (completed,
    refunded or pending, or taken back since: a charged-back capture took its part, which PayPal
    does not reopen; `_made_on`) left of it; nothing of one CAPTURED (a final capture, or
    captures of all of it), VOIDED, EXPIRED or still PENDING, nor of an order paid by capture.
    None for an order waiting for the buyer or cancelled: it holds no authorization to read; for
    an authorization in a status paywire does not know; and
    None where a unit has nothing left only while a capture of it is PENDING (`_waiting`): PayPal
    may still decline that one, and the authorization then takes it again, so a zero read then
    would close for good what PayPal reopens."""
    if order.get("status") in _WAITING or cancelled(order):
        return None
    units = _list(order.get("purchase_units"))
    currency = _currency(units)
    left = Money.zero(currency)
    if order.get("intent") != "AUTHORIZE":
        return left
    for unit in units:
        auth = _live_authorization(unit)
        status = auth.get("status") if auth is not None else None
        if auth is not None and status not in _AUTHORIZATION_STATUSES:
            return None  # says nothing of what it still takes (PARTIALLY_CREATED, or one PayPal adds)
        if _undecided(unit) is not None:
            return None  # nothing now, but a reauthorization PayPal creates later takes captures
        rest = Money.zero(currency)
        if auth is not None and status in ("CREATED", "PARTIALLY_CAPTURED"):
            taken = _sum((cap for cap in _payments(unit, "captures")
                          if (cap.get("status") in _TAKEN or taken_back(cap)) and _made_on(cap, auth)), currency)
            rest = max(from_paypal(auth.get("amount")) - taken, rest)
        if rest.minor == 0 and status in ("CREATED", "PARTIALLY_CAPTURED", "CAPTURED") and _waiting(unit):
            return None
        left += rest
    return left


def _state(authorizations: list[Mapping[str, Any]], authorized: Money, captured: Money, refunded: Money,
           closed: bool, pending: bool) -> str:
    if captured.minor == 0:
        statuses = {auth.get("status") for auth in authorizations}
        if pending and authorizations and statuses <= {"VOIDED", "EXPIRED"}:
            # Voided (or expired) since: whatever PayPal decides of the pending capture, the
            # authorization takes no other, which only a state that stands lets `capturable` say.
            return ProviderState.AUTHORIZED
        if pending:
            return ProviderState.PROCESSING  # a capture PayPal has not decided yet, none completed
        if statuses == {"PENDING"}:
            return ProviderState.PROCESSING  # an authorization PayPal has not decided yet
        if authorized.minor == 0:
            return ProviderState.FAILED
        if statuses <= {"VOIDED", "EXPIRED"}:
            return ProviderState.VOIDED
        return ProviderState.AUTHORIZED
    if refunded.minor == 0:
        return ProviderState.CAPTURED if closed else ProviderState.PARTIALLY_CAPTURED
    return ProviderState.PARTIALLY_REFUNDED if refunded < captured else ProviderState.REFUNDED
