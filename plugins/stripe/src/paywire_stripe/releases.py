"""Stripe's bookings of released authorizations, told from refunds by reading the payment.

At the pinned API version (before 2025-03-31.basil) Stripe books what a partial capture released,
and an authorization a cancellation released, as a Refund of the charge: succeeded, without a
reason or paywire's key, and listed with the charge's refunds. No money went back for it. An event
about it (`refund.updated` when a back office tags it, `charge.refund.updated`) looks like a refund
made in Stripe's dashboard, and taken as one the ledger would claim a refund Stripe never made.
Nothing in the refund itself tells the two apart: the charge does (`without_release`).

So a succeeded refund event without a reason or paywire's key is confirmed by reading its payment
from Stripe with the method's own `fetch`: a refund the fetch does not list among the payment's
refunds is the release, and its event is `other`. A refund with a reason, or one paywire made
(its key in the metadata), is taken as it comes; so is one whose read fails for a reason other
than Stripe's answer, which is refused as retryable (Stripe delivers the event again).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import attrs

from paywire import EventKind, OwnCommands, PaywireError, Subject, WebhookEvent, WebhookVerificationError
from paywire_stripe.builders import IDEMPOTENCY_KEY_FIELD

__all__ = ["ReleaseFilter"]


def _may_be_release(event: WebhookEvent) -> Mapping[str, Any] | None:
    """The refund of `event` when it could be Stripe's booking of a release, else None."""
    data = event.data.get("data") if isinstance(event.data, Mapping) else None
    refund = data.get("object") if isinstance(data, Mapping) else None
    if event.kind != EventKind.REFUNDED or not isinstance(refund, Mapping) or refund.get("object") != "refund":
        return None
    metadata = refund.get("metadata")
    if refund.get("reason") or (isinstance(metadata, Mapping) and metadata.get(IDEMPOTENCY_KEY_FIELD)):
        return None
    return refund


class ReleaseFilter:
    """Turns the event of a release's booking into `other` (see the module docstring)."""

    def __init__(self, commands: OwnCommands) -> None:
        self._commands = commands

    def __repr__(self) -> str:
        return f"ReleaseFilter({self._commands!r})"

    def __call__(self, event: WebhookEvent) -> WebhookEvent:
        refund = _may_be_release(event)
        intent = event.references.get("payment_intent")
        if refund is None or intent is None:
            return event
        try:
            payment = self._commands.run("fetch", Subject(reference=intent))
        except PaywireError as exc:
            raise WebhookVerificationError(
                f"refund {refund.get('id')} could not be told from a released authorization: reading its payment "
                f"from Stripe failed ({exc.code or type(exc).__name__}); nothing was applied, Stripe delivers it again",
                provider="stripe", code="release_unconfirmed", retryable=True,
            ) from exc
        if any(op.kind == "refund" and op.reference == refund.get("id") for op in payment.operations):
            return event
        return attrs.evolve(event, kind=EventKind.OTHER, amount=None)
