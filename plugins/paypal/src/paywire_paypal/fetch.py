"""fetch: PayPal's own view of a payment, for reconciliation.

The reference is normally the order (what authorize and sale return as `references["payment"]`);
an authorization or capture id works too (webhooks name those): it is read, and then the order it
belongs to. The result is the order's state and running totals (see `order_state`), with the
authorization or capture the next commands act on as `reference`, and every capture and refund
PayPal holds on it as `operations` (reference, amount, succeeded/accepted/failed, and for refunds
the idempotency key they were sent with), and a void that released what a partly captured
authorization had left (its authorization VOIDED, where a final capture leaves it CAPTURED), so
reconciliation can match a request whose answer was lost to the exact PayPal object.

PayPal cannot find an order by PayPal-Request-Id, so a fetch without a reference is refused: send
the original request again with its key instead (PayPal answers with the order it created, if any).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import attrs

from paywire import CommandContext, CommandResult, GatewayCommand, InvalidRequest, Response, Subject
from paywire_paypal.order_state import capturable, operations, order_fields, order_id_of

__all__ = ["Fetch", "fetched_fields"]

_NOT_FOUND = frozenset({"INVALID_RESOURCE_ID", "RESOURCE_NOT_FOUND"})


def _not_found(error: InvalidRequest) -> bool:
    return error.status == 404 and error.code in _NOT_FOUND


@attrs.frozen
class Fetch:
    order: GatewayCommand  # GET /v2/checkout/orders/{reference}
    payments: Sequence[GatewayCommand]  # GET an authorization, then a capture, by id

    def execute(self, subject: Subject, context: CommandContext) -> CommandResult:
        if not subject.reference:
            raise InvalidRequest(
                "PayPal cannot look an order up by its PayPal-Request-Id: fetch needs the order id "
                "(or resend the original request with the same idempotency key); nothing was sent",
                param="reference", provider="paypal", code="reference_required",
            )
        try:
            return self.order.execute(subject, context)
        except InvalidRequest as error:
            if not _not_found(error):
                raise
            first = error
        for command in self.payments:
            try:
                payment = command.execute(subject, context).raw
            except InvalidRequest as error:
                if _not_found(error):
                    continue
                raise
            order_id = order_id_of(payment) if isinstance(payment, Mapping) else None
            if order_id is None:
                break
            return self.order.execute(Subject(reference=order_id), context)
        raise first


def fetched_fields(subject: Subject, response: Response) -> dict[str, Any]:
    """The handler of the order read: the order's state, totals, what is left to capture, captures,
    refunds and a void after captures."""
    return {**order_fields(response.data), "capturable": capturable(response.data),
            "operations": operations(response.data)}
