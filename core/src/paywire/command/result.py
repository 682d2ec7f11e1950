"""What a command returns: the provider's answer in paywire's terms."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any, Final

import attrs

from paywire.money import Money
from paywire.subject import BuyerAction

__all__ = ["REAUTHORIZATION_UNDECIDED", "REAUTHORIZED", "VOID_TARGET", "CommandResult", "ProviderOperation", "ProviderState"]

# The name under `CommandResult.references` of the object a void acts on, where the provider voids
# through another object than captures act on (PayPal voids a reauthorization only through the
# authorization it renews): the payment service sends voids there, captures to "authorization".
VOID_TARGET: Final = "void_target"
# The name under `CommandResult.references` and `WebhookEvent.references` of the authorization a
# reauthorization renews, given beside the reauthorization as "authorization" (PayPal's reauthorize:
# a new authorization of its own amount, more or less than the one it renews). A payment whose
# authorization names one holds what the provider reports of that reauthorization
# (`Payment.observed_authorized`), no longer what its first operation asked: `rules.derive`.
REAUTHORIZED: Final = "reauthorized"
# The name under `CommandResult.references` of a reauthorization the provider has not created:
# one it still reviews (PayPal's PENDING), or one it denied while nothing renewed the authorization
# since. The provider takes no capture of it, nor of the authorization it renews, so a payment
# whose references name one offers none (`Payment.capturable`) until the provider creates it (its
# authorized event) or a reading names it no more; what the payment holds stays as it was.
REAUTHORIZATION_UNDECIDED: Final = "reauthorization_undecided"


class ProviderState:
    """Normalised states of the provider's payment object, as `fetch` reports them."""

    ACTION_REQUIRED: Final = "action_required"  # waiting for the buyer (3-D Secure, approval)
    PENDING: Final = "pending"  # created, not yet authorized
    PROCESSING: Final = "processing"  # accepted; the provider decides later (Stripe processing, PayPal PENDING)
    AUTHORIZED: Final = "authorized"
    PARTIALLY_CAPTURED: Final = "partially_captured"  # more captures possible
    CAPTURED: Final = "captured"
    PARTIALLY_REFUNDED: Final = "partially_refunded"
    REFUNDED: Final = "refunded"
    VOIDED: Final = "voided"
    FAILED: Final = "failed"
    NOT_FOUND: Final = "not_found"


def _one_of(*allowed: str) -> Any:
    """A validator refusing a value outside `allowed`: a plugin's misspelt status ("pending",
    "success") would otherwise read as a success, recorded as money moved."""
    choices = frozenset(allowed)

    def check(instance: Any, attribute: attrs.Attribute[Any], value: Any) -> None:
        if value not in choices:
            raise ValueError(f"{type(instance).__name__}.{attribute.name} is {value!r}; it must be one of "
                             f"{', '.join(map(repr, allowed))}")

    return check


def _mapping(value: Mapping[str, str] | None) -> Mapping[str, str]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen(kw_only=True)
class ProviderOperation:
    """One capture or refund as the provider holds it, listed by `fetch`; or the void that released
    what a partly captured authorization had left (`Capabilities.void_after_capture`).

    Reconciliation matches the ledger's open transactions to these (by idempotency key, then by
    reference, then by amount) and records each one's reference, so later webhooks about it match.
    A listed void settles an open void of a payment with captures (the provider's state reads
    captured, as after a final capture); with none listed, such a void did not release the rest.

    :param kind: "capture", "refund" or "void".
    :param reference: the provider's id of the capture or refund, or of the authorization voided.
    :param amount: what it moves (a void: what it released).
    :param status: "succeeded"; "accepted" (the provider decides later); "failed" (it did not
        take effect, or nothing says it did); or "reversed": it took effect and the provider has
        since taken it back (a capture's money reclaimed by a chargeback). A lost request matched
        to a reversed operation took effect: reconciliation records it succeeded, then its
        reversal, as it records a failed operation that the ledger holds succeeded. Reported as
        "failed", a lost request could only be concluded not applied.
    :param idempotency_key: the key it was created with, when the provider reports it; "" when
        the provider reports it was made without one (only where every request of paywire's
        carries its key, or a mark, on the operation): none of paywire's, so never matched to an
        open transaction, by key or by amount. None: not known.
    :param parent: for a refund, the reference of the capture (or sale, charge) it gives money back
        from, as the capture command answered it, when the provider says. A payment captured
        several times can hold refunds of one amount on different captures: matched by amount
        alone, one made on another capture would be recorded on the wrong one, and outlive that
        capture's reversal (or be undone with the wrong one). None: not reported.
    :param final: for a capture, whether the provider says it was final (PayPal's `final_capture`):
        it closed the authorization, which takes no further capture. Reconciliation records one
        made outside paywire as a final capture, as the service's own: while the provider decides
        it, no capture is sent; succeeded, capture closes. False: not final, or not reported.
    """

    kind: str = attrs.field(validator=_one_of("capture", "refund", "void"))
    reference: str
    amount: Money
    status: str = attrs.field(default="succeeded", validator=_one_of("succeeded", "accepted", "failed", "reversed"))
    idempotency_key: str | None = None
    parent: str | None = None
    final: bool = False


def _operations(value: Iterable[ProviderOperation]) -> tuple[ProviderOperation, ...]:
    return tuple(value)


def _not_negative(instance: Any, attribute: attrs.Attribute[Any], value: Money | None) -> None:
    if value is not None and value.minor < 0:
        raise ValueError(f"{type(instance).__name__}.{attribute.name} is {value}; it cannot be negative")


@attrs.frozen(kw_only=True, slots=False)
class CommandResult:
    """The outcome of a successful command.

    :param status: "succeeded"; "action_required" when the buyer must act first (`action`); or
        "accepted" when the provider took the request and decides later (a PaymentIntent
        `processing`, a PayPal capture `PENDING`, a modification answered `received`): the
        ledger counts it as in flight until a webhook or `fetch` settles it.
    :param reference: the provider's id of what the command created or acted on.
    :param state: the provider object's state (a `ProviderState` value) when the answer says it.
    :param amount: the amount the provider applied in this operation.
    :param authorized: the provider's running totals, when the answer carries them (fetch does).
    :param capturable: for `fetch`, what the provider still lets be captured of the
        authorization, whatever the state says of refunds: a payment captured in full and then
        partly refunded is "partially_refunded", and so is one whose authorization still takes
        more captures. Zero: the provider takes no further capture (a final capture, or captures
        that asked for all of it, closed the authorization; it was voided or expired), and
        reconciliation closes the payment's capture, so the ledger never offers what the
        provider would refuse. None: not reported, or the answer does not say (the ledger then
        closes capture only on the state "captured" or a final capture). Read only for an
        authorization that stands (an authorized, captured, refunded or voided state), in the
        payment's currency; never negative.
    :param token: a reusable payment method token (vault).
    :param references: further provider ids (order, authorization, charge, capture, customer;
        `VOID_TARGET`: what a void acts on, where not what captures act on).
    :param operations: for `fetch`, every capture and refund the provider holds on the payment.
    :param unfinished: for `fetch`, the provider holds the first operation made but waiting for a
        step of its own that only a resend under its key takes (a Braintree sale authorized, not
        yet submitted for settlement): reconciliation leaves it open, unknown, and the Janitor
        resends it (`PaymentService.resend_unfinished`), so it completes as asked instead of
        lapsing. That resend carries only what the ledger keeps of the request (not the order's
        items nor the buyer's details) and is a resend (`CommandContext.resent`): a plugin setting
        this must, on a resend, only find what the earlier attempt made under the key and finish
        it, and write nothing when it finds nothing. Never set for what the provider itself still
        decides (that is `processing`), nor for what the caller must do.
    :param raw: the decoded answer, for handlers and observers; never logged unredacted.
    """

    status: str = attrs.field(default="succeeded", validator=_one_of("succeeded", "action_required", "accepted"))
    reference: str | None = None
    state: str | None = None
    amount: Money | None = None
    authorized: Money | None = None
    captured: Money | None = None
    refunded: Money | None = None
    capturable: Money | None = attrs.field(default=None, validator=_not_negative)
    action: BuyerAction | None = None
    token: str | None = None
    references: Mapping[str, str] = attrs.field(factory=dict, converter=_mapping)
    operations: tuple[ProviderOperation, ...] = attrs.field(default=(), converter=_operations)
    unfinished: bool = False
    raw: Any = attrs.field(default=None, repr=False, eq=False)

    @property
    def succeeded(self) -> bool:
        return self.status == "succeeded"

    @property
    def action_required(self) -> bool:
        return self.status == "action_required"

    @property
    def accepted(self) -> bool:
        return self.status == "accepted"
