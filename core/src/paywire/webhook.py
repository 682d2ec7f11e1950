"""Webhook events, as every provider plugin reports them after verifying the signature."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any, Final, Protocol

import attrs

from paywire.money import Money

__all__ = ["SHARED_REFERENCES", "EventKind", "WebhookBatch", "WebhookEvent", "WebhookVerifier"]


class EventKind:
    """What a webhook event means for a payment, normalised across providers."""

    AUTHORIZED: Final = "authorized"
    CAPTURED: Final = "captured"
    REFUNDED: Final = "refunded"
    # A refund the provider holds and has not decided yet (Stripe's `pending`): no money back yet,
    # and it may fail, so it is in no refunded total; yet the provider refunds nothing of it again.
    # One the ledger does not hold (made in the provider's dashboard) is recorded accepted, so
    # what is left to refund leaves it out until its refunded or failed event (or a reading) decides it.
    REFUND_PENDING: Final = "refund_pending"
    # A capture the provider holds and has not decided yet (PayPal's `PENDING`, an eCheck): no
    # money moved and it may be declined, so it is in no captured total; yet the provider holds it
    # against the authorization. One the ledger does not hold (made in the provider's dashboard)
    # is recorded accepted, so what is left to capture leaves it out until its captured or failed
    # event (or a reading) decides it.
    CAPTURE_PENDING: Final = "capture_pending"
    VOIDED: Final = "voided"
    FAILED: Final = "failed"
    # The provider undid an operation it had reported done: a capture or sale declined at
    # settlement (after it was submitted), a refund returned. A failed event naming a refund
    # that had succeeded means the same; one naming a payment object (a PaymentIntent) is about
    # an attempt, and never undoes a sale that succeeded.
    REVERSED: Final = "reversed"
    ACTION_REQUIRED: Final = "action_required"
    APPROVED: Final = "approved"  # the buyer approved; the payment can be authorized or captured
    OTHER: Final = "other"


# Reference names of objects many payments share (a customer, a saved payment method or token):
# an event or a payment may name them, but they never match an event to a payment.
SHARED_REFERENCES: Final = frozenset({"customer", "payment_method", "payment_token", "setup_token"})


def _mapping(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen(kw_only=True)
class WebhookEvent:
    """A verified provider event.

    :param id: the provider's event id; the ledger applies each (provider, id) once.
    :param type: the provider's event type (`payment_intent.succeeded`, `PAYMENT.CAPTURE.COMPLETED`).
    :param kind: an `EventKind` value.
    :param reference: the provider id of the object the event is about.
    :param references: every provider id the event names (payment_intent, charge, refund, order,
        authorization, capture), so it can be matched to a payment whichever id paywire kept.
    :param amount: the amount the event reports for its object, if any.
    :param total: a running total the provider reports (captured or refunded so far), if any.
    :param closes_capture: the event's capture (a `captured` or `capture_pending` event) was made
        final at the provider (PayPal's `final_capture`): its authorization takes no further
        capture. Set it only from the provider's own word on that capture; one the ledger records
        as made outside paywire then closes the payment's capture, as a final capture of the
        service's own does. False (the default) says nothing.
    """

    provider: str
    id: str
    type: str
    kind: str = EventKind.OTHER
    reference: str | None = None
    references: Mapping[str, str] = attrs.field(factory=dict, converter=_mapping)
    amount: Money | None = None
    total: Money | None = None
    closes_capture: bool = False
    occurred_at: datetime | None = None
    data: Any = attrs.field(default=None, repr=False, eq=False)


def _events(value: Iterable[WebhookEvent]) -> tuple[WebhookEvent, ...]:
    return tuple(value)


@attrs.frozen(kw_only=True)
class WebhookBatch:
    """One delivery holding several verified events (Adyen's `notificationItems`), and the answer
    the provider expects for it.

    :param events: the events, each verified on its own; the ledger stores and applies each once.
    :param acknowledgement: the body the provider needs back to stop redelivering (Adyen:
        `[accepted]`); empty when any 2xx will do.
    :param content_type: the acknowledgement's media type.
    """

    events: tuple[WebhookEvent, ...] = attrs.field(converter=_events)
    acknowledgement: bytes = b""
    content_type: str = "text/plain"


class WebhookVerifier(Protocol):
    """Verifies a raw webhook and parses it; raises `WebhookVerificationError` when it does not verify.

    `headers` have lower-cased names; `body` is the raw bytes as received (never re-serialised).
    A provider that sends several events in one delivery returns a `WebhookBatch`.
    """

    def __call__(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent | WebhookBatch: ...
