"""Disputes: a payer contesting a completed capture with PayPal, which the shop does not start.

PayPal announces them as CUSTOMER.DISPUTE.CREATED and CUSTOMER.DISPUTE.RESOLVED, whose resource is
a Disputes v1 dispute: it is named by `dispute_id` (it has no `id`) and names the captures it
contests as `disputed_transactions[].seller_transaction_id`. Opening one moves no captured or
refunded money; one resolved for the buyer does, as PayPal's reversal of the capture (a refund
of it announced as PAYMENT.CAPTURE.REVERSED, see `PaymentsAPI.reverse_capture`).
"""

from __future__ import annotations

import secrets
from typing import Any

import attrs

from paywire_paypal.emulator import ids
from paywire_paypal.emulator.amounts import money
from paywire_paypal.emulator.base import PayPalApp
from paywire_paypal.emulator.payments import PaymentsAPI
from paywire_paypal.emulator.render import link

__all__ = ["Dispute", "DisputesAPI"]


@attrs.define
class Dispute:
    id: str
    capture_id: str
    amount_minor: int
    currency: str
    reason: str
    status: str  # OPEN | RESOLVED
    create_time: float
    update_time: float
    outcome: str | None = None  # RESOLVED_BUYER_FAVOUR | RESOLVED_SELLER_FAVOUR


class DisputesAPI(PaymentsAPI):
    """Test controls: `open_dispute(capture_id)` and `resolve_dispute(dispute_id, buyer_wins)`."""

    def __init__(self, **options: Any) -> None:
        super().__init__(**options)
        self.disputes: dict[str, Dispute] = {}

    def open_dispute(self, capture_id: str, reason: str = "MERCHANDISE_OR_SERVICE_NOT_RECEIVED") -> str:
        """The payer disputes what is left of a completed capture: CUSTOMER.DISPUTE.CREATED is
        sent. Returns the dispute's id."""
        with self.lock:
            cap = self.captures[capture_id]
            if cap.status not in ("COMPLETED", "PARTIALLY_REFUNDED"):
                raise ValueError(f"capture {capture_id} is {cap.status}: nothing of it can be disputed")
            now = self.now()
            dispute = Dispute(id=f"PP-D-{secrets.randbelow(10**6):06d}", capture_id=cap.id,
                              amount_minor=cap.amount_minor, currency=cap.currency, reason=reason, status="OPEN",
                              create_time=now, update_time=now)
            self.disputes[dispute.id] = dispute
            self._announce(dispute, "CUSTOMER.DISPUTE.CREATED", "A new dispute opened")
            return dispute.id

    def resolve_dispute(self, dispute_id: str, buyer_wins: bool) -> None:
        """PayPal decides an open dispute: for the buyer it reverses the capture first (its money
        goes back to the payer), then CUSTOMER.DISPUTE.RESOLVED is sent."""
        with self.lock:
            dispute = self.disputes[dispute_id]
            if dispute.status != "OPEN":
                raise ValueError(f"dispute {dispute_id} is {dispute.status}")
            if buyer_wins:
                self.reverse_capture(dispute.capture_id)
            dispute.status, dispute.update_time = "RESOLVED", self.now()
            dispute.outcome = "RESOLVED_BUYER_FAVOUR" if buyer_wins else "RESOLVED_SELLER_FAVOUR"
            self._announce(dispute, "CUSTOMER.DISPUTE.RESOLVED", "A dispute was resolved")

    def _announce(self, dispute: Dispute, event_type: str, summary: str) -> None:
        self.emit(event_type, "dispute", summary, _view(self, dispute), resource_version="1.0")


def _view(app: PayPalApp, dispute: Dispute) -> dict[str, Any]:
    cap = app.captures[dispute.capture_id]
    view: dict[str, Any] = {
        "dispute_id": dispute.id,
        "create_time": ids.timestamp(dispute.create_time),
        "update_time": ids.timestamp(dispute.update_time),
        "disputed_transactions": [{
            "seller_transaction_id": cap.id,
            "create_time": ids.timestamp(cap.create_time),
            "transaction_status": "COMPLETED",
            "gross_amount": money(cap.amount_minor, cap.currency),
            **({"invoice_number": cap.invoice_id} if cap.invoice_id else {}),
            **({"custom": cap.custom_id} if cap.custom_id else {}),
        }],
        "reason": dispute.reason,
        "status": dispute.status,
        "dispute_amount": money(dispute.amount_minor, dispute.currency),
        "dispute_life_cycle_stage": "INQUIRY",
        "dispute_channel": "INTERNAL",
    }
    if dispute.outcome:
        view["dispute_outcome"] = {"outcome_code": dispute.outcome}
    view["links"] = [link(app, f"/v1/customer/disputes/{dispute.id}", "self")]
    return view
