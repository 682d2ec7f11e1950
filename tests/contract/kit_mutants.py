"""More broken variants of the acme plugin: the mistakes a plugin author makes first, one each.

Each registers acme's gateway definition with one part swapped (see `broken_acme.BrokenAcme`);
`test_kit_catches_mutants.py` runs the contract kit against each and checks it fails naming the
mistake.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs
from broken_acme import BrokenAcme, _amount_sent_as, _mapped, _with

from paywire import (
    CommandPool,
    ErrorMapper,
    ErrorRule,
    EventKind,
    GatewayCommand,
    GatewaySettings,
    HandlerChain,
    InvalidRequest,
    Money,
    Response,
    Result,
    Subject,
    ValidatorComposite,
    WebhookEvent,
)
from paywire.command.context import CommandContext
from paywire.errors import OutcomeUnknown
from paywire_acme.commands import ERRORS, answered_ok, build_commands, payment_fields
from paywire_acme.webhook import build_verifier


# -- a decline taken as success: "the payment was created, so the call worked" ----------------------------
def _created_is_ok(subject: Subject, response: Response) -> Result:
    error = response.data.get("error") if isinstance(response.data, Mapping) else None
    if isinstance(error, Mapping) and error.get("payment"):
        return Result.success()
    return answered_ok(subject, response)


def _created_fields(subject: Subject, response: Response) -> dict[str, Any]:
    error = response.data.get("error") if isinstance(response.data, Mapping) else None
    if isinstance(error, Mapping) and error.get("payment"):
        return {"reference": error["payment"], "references": {"payment": error["payment"]}, "state": "authorized",
                "authorized": subject.amount, "amount": subject.amount}
    return payment_fields(subject, response)


def decline_as_success_commands(settings: GatewaySettings) -> CommandPool:
    def created(command: GatewayCommand) -> GatewayCommand:
        return attrs.evolve(command, validator=ValidatorComposite([(_created_is_ok, True)]),
                            handler=HandlerChain([_created_fields]))

    return _with(settings, authorize=created, sale=created)


DECLINE_AS_SUCCESS = BrokenAcme("decline_as_success", build=decline_as_success_commands)


# -- a connection lost after sending taken as a plain failure ("it did not go through") ------------------
@attrs.frozen
class _LostAsFailed:
    command: GatewayCommand

    def execute(self, subject: Subject, context: CommandContext) -> Any:
        try:
            return self.command.execute(subject, context)
        except OutcomeUnknown as lost:
            raise InvalidRequest(f"acme did not answer: {lost.message}", provider="acme") from None


def lost_failed_commands(settings: GatewaySettings) -> CommandPool:
    return _with(settings, **{code: _LostAsFailed for code in build_commands(settings)})


LOST_FAILED = BrokenAcme("lost_failed", build=lost_failed_commands)


# -- the three-decimal currencies written with two (an exponent table that stops at 2) ---------------------
TWO_DECIMALS_AT_MOST = BrokenAcme("two_decimals_at_most", build=_amount_sent_as(
    lambda money: int(money.amount * 10 ** min(money.exponent, 2))))


# -- a refund's reference left out ("the payment's id is enough") -------------------------------------------
def _unreferenced_refund(subject: Subject, response: Response) -> dict[str, Any]:
    data = response.data
    return {"amount": Money.minor_units(int(data["amount"]), data["currency"]),
            "references": {"payment": data["payment"]}}


def unreferenced_refund_commands(settings: GatewaySettings) -> CommandPool:
    return _with(settings, refund=lambda command: attrs.evolve(command, handler=HandlerChain([_unreferenced_refund])))


UNREFERENCED_REFUND = BrokenAcme("unreferenced_refund", build=unreferenced_refund_commands)


# -- a refund event read as a capture (a copy-pasted kind table) -------------------------------------------
def refund_as_capture_verifier(settings: GatewaySettings) -> Callable[[Mapping[str, str], bytes], WebhookEvent]:
    verify = build_verifier(settings)

    def verified(headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        event = verify(headers, body)
        return attrs.evolve(event, kind=EventKind.CAPTURED) if event.kind == EventKind.REFUNDED else event

    return verified


REFUND_AS_CAPTURE_WEBHOOK = BrokenAcme("refund_as_capture_webhook", webhook=refund_as_capture_verifier)


# -- a refund posted to the capture endpoint (a copy-pasted command) ----------------------------------------
def refund_as_capture_commands(settings: GatewaySettings) -> CommandPool:
    pool = build_commands(settings)
    return _with(settings, refund=lambda command: pool["capture"])


REFUND_AS_CAPTURE = BrokenAcme("refund_as_capture", build=refund_as_capture_commands)


# -- fetch reading a refunded payment's state as captured --------------------------------------------------
def _refunded_as_captured(subject: Subject, response: Response) -> dict[str, Any]:
    from paywire_acme.commands import fetched_fields

    fields = fetched_fields(subject, response)
    if fields.get("state") in ("refunded", "partially_refunded"):
        fields["state"] = "captured"
        fields["refunded"] = Money.minor_units(0, response.data["currency"])
    return fields


def refunded_as_captured_commands(settings: GatewaySettings) -> CommandPool:
    return _with(settings, fetch=lambda command: attrs.evolve(command, handler=HandlerChain([_refunded_as_captured])))


REFUNDED_AS_CAPTURED = BrokenAcme("refunded_as_captured", build=refunded_as_captured_commands)


# -- the shop's order id sent as the idempotency key ("one payment per order") -----------------------------
@attrs.frozen
class _KeyedByOrder:
    command: GatewayCommand

    def execute(self, subject: Subject, context: CommandContext) -> Any:
        if subject.order is not None and subject.idempotency_key:
            subject = attrs.evolve(subject, idempotency_key=f"order-{subject.order.id}")
        return self.command.execute(subject, context)


def order_key_commands(settings: GatewaySettings) -> CommandPool:
    return _with(settings, authorize=_KeyedByOrder, sale=_KeyedByOrder)


ORDER_KEY = BrokenAcme("order_key", build=order_key_commands)


# -- capture amounts sent as floats -------------------------------------------------------------------------
def _float_capture(subject: Subject) -> dict[str, Any]:
    return {"amount": float(subject.amount.minor)} if subject.amount is not None else {}


def float_capture_commands(settings: GatewaySettings) -> CommandPool:
    return _with(settings, capture=lambda command: attrs.evolve(
        command, builder=[_float_capture, lambda s: {"final": s.final}]))


FLOAT_CAPTURE = BrokenAcme("float_capture", build=float_capture_commands)


# -- a webhook tolerance of a day where Acme documents 300 s ------------------------------------------------
def wide_tolerance_verifier(settings: GatewaySettings) -> Callable[[Mapping[str, str], bytes], WebhookEvent]:
    import paywire_acme.webhook as acme_webhook

    verify = build_verifier(settings)

    def verified(headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        saved, acme_webhook.TOLERANCE = acme_webhook.TOLERANCE, 24 * 3600
        try:
            return verify(headers, body)
        finally:
            acme_webhook.TOLERANCE = saved

    return verified


WIDE_TOLERANCE = BrokenAcme("wide_tolerance", webhook=wide_tolerance_verifier)


# -- a refund named by the payment it refunds, not the refund the provider made ---------------------------
def _refund_named_as_payment(subject: Subject, response: Response) -> dict[str, Any]:
    data = response.data
    return {"reference": data["payment"], "amount": Money.minor_units(int(data["amount"]), data["currency"]),
            "references": {"payment": data["payment"]}}


def refund_named_as_payment_commands(settings: GatewaySettings) -> CommandPool:
    return _with(settings, refund=lambda command: attrs.evolve(command, handler=HandlerChain([_refund_named_as_payment])))


REFUND_NAMED_AS_PAYMENT = BrokenAcme("refund_named_as_payment", build=refund_named_as_payment_commands)


# -- fetch's totals read through a float of major units ("amount / 100 * 100") ------------------------------
def _through_float(subject: Subject, response: Response) -> dict[str, Any]:
    from paywire_acme.commands import fetched_fields

    fields = fetched_fields(subject, response)
    for total in ("authorized", "captured", "refunded"):
        money = fields.get(total)
        if isinstance(money, Money):
            fields[total] = Money.minor_units(int(money.minor / 100 * 100), money.currency)
    return fields


def float_fetch_commands(settings: GatewaySettings) -> CommandPool:
    return _with(settings, fetch=lambda command: attrs.evolve(command, handler=HandlerChain([_through_float])))


FLOAT_FETCH = BrokenAcme("float_fetch", build=float_fetch_commands)



# -- a 5xx error code mapped to a plain refusal ("server_error means it failed") ----------------------------
SERVER_ERROR_REFUSED = BrokenAcme("server_error_refused", build=_mapped(ErrorMapper(
    "acme", {**ERRORS.rules, "server_error": ErrorRule(InvalidRequest)})))
