"""complete: after the buyer approved, authorize or capture the order, as its intent says.

The order is read first (a read whose answer is lost leaves the call unsent: a retryable failure
on a first attempt, `before_the_write`): its intent picks the call (`/authorize` or `/capture`), an order already
completed (the buyer came back twice, a retry after a lost answer), or voided since, answers from
what PayPal holds without a second call, and an amount that differs from the order's is refused
before sending. An order PayPal voided before anything was authorized or captured in it (the
capture window after approval passed) can never be completed: that is a `Declined`, sent nowhere.
When PayPal needs the buyer again, the result is `action_required` with PayPal's link for the
buyer, and the payment waits: PAYER_ACTION_REQUIRED with its payer-action link, or a funding
failure (INSTRUMENT_DECLINED) with its redirect link, where PayPal's documented recovery is that the
buyer picks another funding source and the same order is completed again (errors.py). The order is
still approved and nothing was paid in it; once the buyer is back, `complete` is called again.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from paywire import (
    BuyerAction,
    BuyerActionRequired,
    CommandContext,
    CommandResult,
    GatewayCommand,
    InvalidRequest,
    OutcomeUnknown,
    PaywireError,
    ProviderState,
    Response,
    Subject,
)
from paywire.command.gateway_command import before_the_write
from paywire_paypal.amounts import from_paypal
from paywire_paypal.errors import BACK_TO_PAYPAL, ERRORS
from paywire_paypal.orders import completed_fields
from paywire_paypal.validators import not_declined, not_voided

__all__ = ["Complete"]


@attrs.frozen
class Complete:
    read: GatewayCommand  # GET /v2/checkout/orders/{reference}
    authorize: GatewayCommand  # POST /v2/checkout/orders/{reference}/authorize
    capture: GatewayCommand  # POST /v2/checkout/orders/{reference}/capture

    def execute(self, subject: Subject, context: CommandContext) -> CommandResult:
        try:
            order = self.read.execute(Subject(reference=subject.reference), context).raw
        except PaywireError as error:
            # Only the read's answer was lost: the authorize or capture after it never left.
            raise before_the_write(error, context, f"order {subject.reference} was read before its authorize or "
                                                   "capture, which was not sent: nothing was paid") from error
        if not isinstance(order, Mapping):
            raise InvalidRequest("PayPal answered the order without its details", provider="paypal",
                                 code="unexpected_order")
        _check_amount(subject, order, context)
        if order.get("status") in ("COMPLETED", "VOIDED"):
            answer = Response(200, data=order)
            for check in (not_voided, not_declined):
                refused = check(subject, answer)
                if not refused.ok:
                    raise ERRORS(subject, answer, refused)
            return CommandResult(**completed_fields(subject, answer), raw=order)
        step = self.authorize if order.get("intent") == "AUTHORIZE" else self.capture
        try:
            return step.execute(subject, context)
        except BuyerActionRequired as error:
            if error.code not in BACK_TO_PAYPAL or not error.redirect_url:
                raise
            order_id = str(order["id"])
            return CommandResult(
                status="action_required", reference=order_id, state=ProviderState.ACTION_REQUIRED,
                action=BuyerAction(error.redirect_url, subject.return_url),
                references={"payment": order_id, "order": order_id},
            )


def _check_amount(subject: Subject, order: Mapping[str, object], context: CommandContext) -> None:
    """Refuse another amount than the order's before sending. An order amount paywire cannot read
    is refused too, unless PayPal completed the order already (or an earlier call may have): then
    PayPal holds the money, and a refusal would be recorded as a failure, so the outcome is unknown."""
    units = order.get("purchase_units")
    unit = units[0] if isinstance(units, list) and len(units) == 1 and isinstance(units[0], Mapping) else None
    if subject.amount is None or unit is None or not isinstance(unit.get("amount"), Mapping):
        return
    try:
        ordered = from_paypal(unit["amount"])
    except InvalidRequest as error:
        if order.get("status") in ("COMPLETED", "VOIDED") or context.resent:
            raise OutcomeUnknown.instead_of(error, f"the order is {order.get('status')!s:.40} at PayPal but its "
                                                   "amount cannot be read, so the outcome is unknown") from error
        raise InvalidRequest(f"{error.message}; nothing was sent", param="amount", provider="paypal",
                             code=error.code) from error
    if ordered != subject.amount:
        raise InvalidRequest(
            f"the order is for {ordered}, not {subject.amount}; nothing was sent",
            param="amount", provider="paypal", code="amount_mismatch",
        )
