"""The emulator's state: orders, authorizations, captures, refunds and vault tokens.

Plain mutable records guarded by the app's lock. Amounts are integer minor units; the running
totals that PayPal's rules depend on (captured, refunded) are derived from the children, so they
can never drift from what was actually recorded.
"""

from __future__ import annotations

from typing import Any

import attrs

__all__ = [
    "AccessToken",
    "Authorization",
    "Capture",
    "Order",
    "PaymentToken",
    "PurchaseUnit",
    "Refund",
    "SetupToken",
]

# Capture statuses whose money counts as captured (a DECLINED capture moved nothing).
CAPTURED_STATUSES = frozenset({"COMPLETED", "PENDING", "PARTIALLY_REFUNDED", "REFUNDED"})
# Capture statuses that count against their authorization: a completed capture PayPal took back
# since (DENIED: a chargeback, a buyer's complaint) was captured, and PayPal does not reopen the
# authorization for it; a DECLINED one (a pending capture PayPal decided against) took nothing, so
# the authorization can be captured again, as PayPal's reattempted capture allows.
CONSUMED_STATUSES = CAPTURED_STATUSES | {"DENIED"}


@attrs.define
class AccessToken:
    value: str = attrs.field(repr=False)
    scopes: frozenset[str]
    expires_at: float


@attrs.define
class PurchaseUnit:
    reference_id: str
    amount_minor: int
    currency: str
    request: dict[str, Any]  # the validated purchase unit as sent (amount, items, shipping, ids)
    authorization_ids: list[str] = attrs.field(factory=list)
    capture_ids: list[str] = attrs.field(factory=list)


@attrs.define
class Order:
    id: str
    intent: str  # CAPTURE | AUTHORIZE
    status: str  # CREATED | SAVED | APPROVED | VOIDED | COMPLETED | PAYER_ACTION_REQUIRED
    purchase_units: list[PurchaseUnit]
    create_time: float
    update_time: float
    source_kind: str | None = None  # "paypal" or "card" once known
    experience_context: dict[str, Any] = attrs.field(factory=dict)
    vault_token_id: str | None = None  # the vaulted instrument paying this order
    store_in_vault: bool = False  # payment_source.paypal.attributes.vault.store_in_vault = ON_SUCCESS
    saved_token_id: str | None = None  # the payment token that vaulting on success created
    customer_id: str | None = None
    payer: dict[str, Any] | None = None  # filled at approval
    outcome: str = "approve"  # the test payer's behaviour, chosen at approval (see the package docstring)


@attrs.define
class Authorization:
    id: str
    order_id: str
    reference_id: str
    amount_minor: int
    currency: str
    status: str  # CREATED | CAPTURED | DENIED | PARTIALLY_CAPTURED | VOIDED | EXPIRED | PENDING
    create_time: float
    update_time: float
    expiration_time: float
    outcome: str = "approve"
    invoice_id: str | None = None
    custom_id: str | None = None
    capture_ids: list[str] = attrs.field(factory=list)
    parent_id: str | None = None  # set on a reauthorization
    reauthorized_by: str | None = None  # the live reauthorization of this one


@attrs.define
class Capture:
    id: str
    order_id: str
    reference_id: str
    authorization_id: str | None
    amount_minor: int
    currency: str
    status: str  # COMPLETED | DECLINED | PARTIALLY_REFUNDED | PENDING | REFUNDED | FAILED | DENIED
    final_capture: bool
    fee_minor: int
    create_time: float
    update_time: float
    status_reason: str | None = None
    processor_response: dict[str, str] | None = None
    invoice_id: str | None = None
    custom_id: str | None = None
    note_to_payer: str | None = None
    refund_ids: list[str] = attrs.field(factory=list)


@attrs.define
class Refund:
    id: str
    capture_id: str
    order_id: str
    amount_minor: int
    currency: str
    fee_minor: int  # the part of the capture's fee PayPal gives back
    total_refunded_minor: int  # on the capture, this refund included
    status: str  # COMPLETED | PENDING | CANCELLED | FAILED
    create_time: float
    update_time: float
    status_reason: str | None = None  # ECHECK while PENDING (or FAILED)
    invoice_id: str | None = None
    custom_id: str | None = None
    note_to_payer: str | None = None


@attrs.define
class SetupToken:
    id: str
    customer_id: str
    status: str  # CREATED | PAYER_ACTION_REQUIRED | APPROVED | VAULTED
    source_kind: str  # "card" or "paypal"
    source: dict[str, Any]  # the response view of the instrument (never a full card number)
    experience_context: dict[str, Any]
    create_time: float
    outcome: str = "approve"
    payment_token_id: str | None = None


@attrs.define
class PaymentToken:
    id: str
    customer_id: str
    source_kind: str
    source: dict[str, Any]
    create_time: float
    outcome: str = "approve"
