"""Deliberately broken variants of the Stripe plugin, each with one defect in what `fetch` lists
or reports, what a refund answers, or what a decline names.

Acme's `fetch` lists no operations (reconciliation then splits its running totals), its refunds
are decided at once, and its declines name nothing, so the kit's checks of listed operations, of
refunds decided later and of what a refusal names are proven on Stripe's plugin, whose `fetch`
lists every capture and refund with its status, amount, idempotency key and parent, whose refunds
of some test cards stay pending, and whose decline of a create names the PaymentIntent it left. Each
variant changes only what the plugin reads from Stripe's answer; the emulator, the sandbox and the
other commands are the real plugin's.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from paywire import (
    CommandPool,
    CommandResult,
    Declined,
    GatewayDefinition,
    GatewaySettings,
    Money,
    PaywireError,
    Subject,
    hookimpl,
)
from paywire.command.context import CommandContext
from paywire_stripe import STRIPE
from paywire_stripe.builders import IDEMPOTENCY_KEY_FIELD
from paywire_stripe.commands import build_commands

Change = Callable[[CommandResult], CommandResult]


@attrs.frozen
class _Changed:
    """A command whose result `change` rewrites."""

    command: Any
    change: Change

    def execute(self, subject: Subject, context: CommandContext) -> CommandResult:
        return self.change(self.command.execute(subject, context))


@attrs.frozen
class _Misnamed:
    """A command whose decline names what `name` picks from its details instead."""

    command: Any
    name: Callable[[PaywireError], str | None]

    def execute(self, subject: Subject, context: CommandContext) -> CommandResult:
        try:
            result: CommandResult = self.command.execute(subject, context)
        except Declined as error:
            error.reference = self.name(error)
            raise
        return result


class BrokenStripe:
    """The Stripe plugin with its `command` wrapped in `wrap` (by default: `fetch`'s answer
    changed by `change`)."""

    def __init__(self, name: str, change: Any, *, command: str = "fetch", wrap: Callable[..., Any] = _Changed) -> None:
        self.__name__ = f"broken_stripe_{name}"

        def build(settings: GatewaySettings) -> CommandPool:
            pool = build_commands(settings)
            commands = {code: wrap(found, change) if code == command else found for code, found in pool.items()}
            return CommandPool(commands, gateway=settings.gateway)

        self.definition = STRIPE._replace(build=build)

    @hookimpl
    def register_gateways(self, register: Callable[[GatewayDefinition], None]) -> None:
        register(self.definition)


# -- 1. refunds listed (from GET /v1/refunds), the intent's capture left out ------------------------------
def _refunds_only(result: CommandResult) -> CommandResult:
    return attrs.evolve(result, operations=tuple(op for op in result.operations if op.kind != "capture"))


# -- 2. the capture listed with the key its intent was created with, not the capture's own ----------------
def _authorization_key_on_capture(result: CommandResult) -> CommandResult:
    metadata = result.raw.get("metadata") if isinstance(result.raw, Mapping) else None
    key = metadata.get(IDEMPOTENCY_KEY_FIELD) if isinstance(metadata, Mapping) else None
    return attrs.evolve(result, operations=tuple(attrs.evolve(op, idempotency_key=key) if op.kind == "capture" else op
                                                 for op in result.operations))


# -- 3. each refund listed with the charge's running total refunded (`amount_refunded`) -------------------
def _running_total_per_refund(result: CommandResult) -> CommandResult:
    if result.refunded is None:
        return result
    return attrs.evolve(result, operations=tuple(attrs.evolve(op, amount=result.refunded) if op.kind == "refund" else op
                                                 for op in result.operations))


# -- 4. a pending refund counted as refunded ---------------------------------------------------------------
def _pending_refunds_refunded(result: CommandResult) -> CommandResult:
    operations = tuple(attrs.evolve(op, status="succeeded") if op.kind == "refund" and op.status == "accepted" else op
                       for op in result.operations)
    refunds = [op.amount for op in operations if op.kind == "refund"]
    if not refunds:
        return result
    refunded = sum(refunds, Money.zero(refunds[0].currency))
    return attrs.evolve(result, operations=operations, refunded=refunded)


# -- 5. the authorized total reported as what is left to capture (the intent's `amount`, not `amount_capturable`) -
def _authorized_capturable(result: CommandResult) -> CommandResult:
    return attrs.evolve(result, capturable=result.authorized)


# -- 6. a declined create naming its charge, not the PaymentIntent it left (what fetch reads); the sale -----
# variant reads its refusal apart from the authorization's, which names the intent
def _the_charge(error: PaywireError) -> str | None:
    return error.details.get("charge")


# -- 7. a refund recorded under the charge it refunds, not the Refund Stripe made ---------------------------
def _refund_names_charge(result: CommandResult) -> CommandResult:
    return attrs.evolve(result, reference=result.references.get("charge") or result.reference)


# -- 8. a refund Stripe has not finished (`pending`) reported succeeded -------------------------------------
def _pending_refund_succeeded(result: CommandResult) -> CommandResult:
    return attrs.evolve(result, status="succeeded") if result.status == "accepted" else result


# -- 9. a sale created without the key fetch searches by in its metadata (only the authorization's has it) --
def _unsearchable(command: Any) -> Any:
    """The sale's request without `metadata.paywire_idempotency_key`, which fetch searches by."""
    build = command.builder

    def built(subject: Subject) -> dict[str, Any]:
        request: dict[str, Any] = dict(build(subject))
        metadata = request.get("metadata")
        if isinstance(metadata, Mapping):
            request["metadata"] = {name: value for name, value in metadata.items() if name != IDEMPOTENCY_KEY_FIELD}
        return request

    return attrs.evolve(command, builder=[built])


CAPTURE_UNLISTED = BrokenStripe("capture_unlisted", _refunds_only)
AUTHORIZATION_KEY_ON_CAPTURE = BrokenStripe("authorization_key_on_capture", _authorization_key_on_capture)
RUNNING_TOTAL_PER_REFUND = BrokenStripe("running_total_per_refund", _running_total_per_refund)
PENDING_REFUND_REFUNDED = BrokenStripe("pending_refund_refunded", _pending_refunds_refunded)
AUTHORIZED_CAPTURABLE = BrokenStripe("authorized_capturable", _authorized_capturable)
DECLINE_NAMES_CHARGE = BrokenStripe("decline_names_charge", _the_charge, command="authorize", wrap=_Misnamed)
REFUND_NAMES_CHARGE = BrokenStripe("refund_names_charge", _refund_names_charge, command="refund")
PENDING_REFUND_SUCCEEDED = BrokenStripe("pending_refund_succeeded", _pending_refund_succeeded, command="refund")
DECLINED_SALE_NAMES_CHARGE = BrokenStripe("declined_sale_names_charge", _the_charge, command="sale", wrap=_Misnamed)
SALE_UNSEARCHABLE = BrokenStripe("sale_unsearchable", None, command="sale", wrap=lambda sale, _: _unsearchable(sale))
