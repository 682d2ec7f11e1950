"""Commands made of several Stripe requests: complete, fetch, vault and unvault, and the
PaymentIntent writes that read the intent when they are resent.

Each is a `Command` (anything with `execute(subject, context)`) running `GatewayCommand`s, so every
request still goes through the whole pipeline and its hooks.
"""

from __future__ import annotations

import hashlib

import attrs

from paywire import (
    CommandContext,
    CommandResult,
    Customer,
    GatewayCommand,
    IdempotencyConflict,
    InvalidRequest,
    OutcomeUnknown,
    PaywireError,
    ProviderOperation,
    ProviderState,
    ProviderUnavailable,
    Subject,
    Transfer,
    TransportError,
    step_key,
)
from paywire.command.gateway_command import before_the_write
from paywire_stripe.amounts import to_stripe
from paywire_stripe.builders import MAX_KEY
from paywire_stripe.operations import capture_operations, refunded_total, without_release
from paywire_stripe.states import charge_of, intent_state, intent_totals

__all__ = ["Complete", "Current", "Fetch", "Unvault", "Vault", "derived_key"]


def derived_key(subject: Subject, step: str) -> str | None:
    """The idempotency key of one step of a keyed command: stable across retries, distinct per step.

    Stripe refuses a key reused on another endpoint, so the steps cannot share the command's key;
    nor may a step's key be one a caller can give another operation: each is `step_key`'s, in
    paywire's own key space. A command first sent by an earlier release (`earlier_step_keys`)
    sends its steps under the keys it made then, `{key}:{step}` (or, were that too long for
    Stripe, `paywire:{sha256 of key}:{step}`): new ones would make its customer again.
    """
    key = subject.idempotency_key
    if key is None:
        return None
    if not subject.earlier_step_keys:
        return step_key(key, step, MAX_KEY)
    earlier = f"{key}:{step}"
    if len(earlier) <= MAX_KEY:
        return earlier
    return f"paywire:{hashlib.sha256(key.encode()).hexdigest()}:{step}"


@attrs.frozen
class Current(GatewayCommand):
    """A PaymentIntent write (authorize, sale, capture) whose result says what the intent is now.

    Resent under its key after a lost answer (`CommandContext.resent`), the request is answered
    with what Stripe stored for the first attempt: the intent as it was then, since perhaps
    canceled, expired, captured or refunded. The intent is read then (`read`), and the result
    takes its state and totals, so the payment service sees that it moved on. A first send costs
    nothing more: this is the very command the rehearsal checked, and it sends one request.
    """

    read: GatewayCommand = attrs.field(kw_only=True)

    def perform(self, subject: Subject, transfer: Transfer, context: CommandContext) -> CommandResult:
        result = super().perform(subject, transfer, context)
        if not context.resent or not result.reference:
            return result
        intent = result.references.get("payment") or result.reference
        try:
            now = self.read.execute(Subject(reference=intent), context)
        except PaywireError as error:
            raise OutcomeUnknown.instead_of(error, f"Stripe answered the resent request with its stored answer, and "
                                                   f"PaymentIntent {intent} as it is now could not be read") from error
        return attrs.evolve(result, state=now.state, authorized=now.authorized, captured=now.captured,
                            refunded=now.refunded)


@attrs.frozen
class Complete:
    """`complete`: once the buyer passed 3-D Secure Stripe resumes the intent by itself, so the
    intent is read; only one waiting for confirmation (manual confirmation) is confirmed."""

    retrieve: GatewayCommand
    confirm: GatewayCommand

    def execute(self, subject: Subject, context: CommandContext) -> CommandResult:
        result = self.retrieve.execute(subject, context)
        if result.raw.get("status") == "requires_confirmation":
            result = self.confirm.execute(subject, context)
        return result


@attrs.frozen
class Fetch:
    """`fetch`: the intent by reference or, when the first answer was lost, by the idempotency key it
    was created with. The search is the fast way, but Stripe's index lags writes (under a minute
    normally, longer during an outage), so when it finds nothing the intents are listed (the list
    is current): with `Subject.sent_at`, every one created since, page by page, so that
    `not_found` means Stripe holds no intent of the key; without it, only the latest 100.

    The result lists the intent's capture and, once its charge holds money, every refund Stripe has
    on it (`GET /v1/refunds`, page by page) in `operations`; its refunded total counts the
    succeeded refunds only, as a pending one may still fail.
    """

    retrieve: GatewayCommand
    search: GatewayCommand
    listed: GatewayCommand
    refunds: GatewayCommand

    def execute(self, subject: Subject, context: CommandContext) -> CommandResult:
        if subject.reference:
            found = self.retrieve.execute(subject, context)
        else:
            found = self.search.execute(subject, context)
            if found.state == ProviderState.NOT_FOUND:
                found = self._listed(subject, context)
        if found.state == ProviderState.NOT_FOUND or not isinstance(found.raw, dict):
            return found
        return self._with_operations(found, found.raw, subject, context)

    def _listed(self, subject: Subject, context: CommandContext) -> CommandResult:
        """The newest intent of the key among those listed: the pages since `sent_at` until one
        holds it or Stripe has no more, or without `sent_at` the first page."""
        cursor: str | None = None
        while True:
            page = self.listed.execute(attrs.evolve(subject, options={**subject.options, "starting_after": cursor}),
                                       context)
            if page.state != ProviderState.NOT_FOUND or subject.sent_at is None or not page.raw.get("has_more"):
                return page
            items = page.raw.get("data") or ()
            if not items or not isinstance(items[-1], dict) or not isinstance(items[-1].get("id"), str):
                raise OutcomeUnknown("Stripe said it lists more intents but gave none to page on from: whether "
                                     "it holds the one of the key is unknown", provider="stripe",
                                     code="unreadable_list")
            cursor = items[-1]["id"]

    def _with_operations(self, found: CommandResult, intent: dict[str, object], subject: Subject,
                         context: CommandContext) -> CommandResult:
        operations = capture_operations(intent)
        charge = charge_of(intent)
        if charge is None or charge.get("status") != "succeeded" or not charge.get("captured"):
            return attrs.evolve(found, operations=operations)
        refunds = without_release(self._refunds(str(intent["id"]), subject, context), charge)
        operations += refunds
        refunded = refunded_total(refunds)
        if refunded is None:
            return attrs.evolve(found, operations=operations)
        figures = intent_totals(intent)._replace(refunded=to_stripe(refunded))
        return attrs.evolve(found, operations=operations, refunded=refunded, state=intent_state(intent, figures))

    def _refunds(self, intent: str, subject: Subject, context: CommandContext) -> tuple[ProviderOperation, ...]:
        listed: tuple[ProviderOperation, ...] = ()
        cursor: str | None = None
        while True:
            options = {**subject.options, "starting_after": cursor}
            page = self.refunds.execute(attrs.evolve(subject, reference=intent, options=options), context)
            listed += page.operations
            if not page.raw.get("has_more") or not page.operations:
                return listed
            cursor = page.operations[-1].reference


def _may_have_acted(error: PaywireError) -> bool:
    """Whether a request answered with `error` may have taken effect (no definite answer came)."""
    if isinstance(error, (OutcomeUnknown, IdempotencyConflict)):
        return True
    return isinstance(error, (TransportError, ProviderUnavailable)) and error.may_have_been_sent


@attrs.frozen
class Vault:
    """`vault`: a Stripe customer for the buyer (unless `customer.reference` names one), then the
    payment method attached to it; the attached method's id is the reusable token.

    An attach left without a definite answer (a 5xx, a lost connection) is settled by reading the
    PaymentMethod (`read`): attached to the vault's customer, the vault took effect. Nothing else
    can tell: Stripe keeps its own 500 under the attach's key and answers every resend with it for
    a day, and reconciliation reads payments, not vaults. Attached to no one, the attach may still
    land, so the outcome stays unknown.
    """

    customer: GatewayCommand
    attach: GatewayCommand
    read: GatewayCommand

    def execute(self, subject: Subject, context: CommandContext) -> CommandResult:
        buyer = subject.buyer or Customer()
        if not buyer.reference:
            created = self.customer.execute(
                attrs.evolve(subject, idempotency_key=derived_key(subject, "customer")), context
            )
            buyer = attrs.evolve(buyer, reference=created.reference)
        try:
            return self.attach.execute(
                attrs.evolve(subject, customer=buyer, idempotency_key=derived_key(subject, "attach")),
                context,
            )
        except PaywireError as error:
            if context.rehearsal or not _may_have_acted(error):
                raise
            try:
                method = self.read.execute(Subject(source=subject.source), context)
            except PaywireError:
                raise error from None
            if not buyer.reference or method.references.get("customer") != buyer.reference:
                raise
            return attrs.evolve(method, token=method.reference)


@attrs.frozen
class Unvault:
    """`unvault`: the PaymentMethod detached from its Customer. Stripe's detach names no
    Customer, so one that `customer.reference` names is checked first: the PaymentMethod is read
    (`GET /v1/payment_methods/{pm}`), and one attached to another Customer is refused, left
    attached. Whatever else the read finds (no such PaymentMethod, one attached to none), the
    detach answers as it does without a customer; without one, nothing is read.

    A token found attached to another Customer was never detached by an earlier attempt (the
    detach follows a read finding the named Customer, and Stripe attaches a detached
    PaymentMethod to no one again), so the refusal stands for a resend too.
    """

    read: GatewayCommand
    detach: GatewayCommand
    transfers = 2

    def execute(self, subject: Subject, context: CommandContext) -> CommandResult:
        named = subject.buyer.reference if subject.buyer is not None else None
        if context.rehearsal or not named:
            return self.detach.execute(subject, context)
        self.detach.prepare(subject, context)  # what the detach refuses is refused before the read
        try:
            holder = self.read.execute(Subject(source=subject.source), context).references.get("customer")
        except InvalidRequest:
            holder = None
        except PaywireError as error:
            raise before_the_write(error, context, f"PaymentMethod {subject.source} was read before its detach, "
                                                   "which was not sent: nothing was detached") from error
        if holder is not None and holder != named:
            raise InvalidRequest(f"PaymentMethod {subject.source} is attached to another Stripe customer than "
                                 f"customer.reference {named!r}; unvault it naming the customer holding it; nothing "
                                 "was detached", param="customer.reference", provider="stripe",
                                 code="customer_mismatch")
        return self.detach.execute(subject, context)
