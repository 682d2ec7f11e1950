"""The payment service: operations through any gateway, recorded in a ledger before and after
they are sent, reconciled when their outcome is unknown, and kept current by verified webhooks."""

from __future__ import annotations

from paywire.service.payments import Notification, PaymentService, WebhookReceipt
from paywire.service.reconcile import MatchReport, Mismatch, ReconcileReport, Settlement

__all__ = ["MatchReport", "Mismatch", "Notification", "PaymentService", "ReconcileReport", "Settlement",
           "WebhookReceipt"]
