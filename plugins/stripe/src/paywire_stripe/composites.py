"""Commands made of several Stripe requests: complete, fetch and vault.

Each is a `Command` (anything with `execute(subject, context)`) running `GatewayCommand`s, so every
request still goes through the whole pipeline and its hooks.
"""

from __future__ import annotations

import hashlib

import attrs

from paywire import CommandContext, CommandResult, Customer, GatewayCommand, ProviderState, Subject

__all__ = ["Complete", "Fetch", "Vault", "derived_key"]


def derived_key(key: str | None, step: str) -> str | None:
    """The idempotency key of one step of a keyed command: stable across retries, distinct per step.

    Stripe refuses a key reused on another endpoint, so the steps cannot share the caller's key.
    """
    if key is None:
        return None
    derived = f"{key}:{step}"
    if len(derived) <= 255:
        return derived
    return f"paywire:{hashlib.sha256(key.encode()).hexdigest()}:{step}"


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
    was created with. Stripe's search index lags writes by up to a minute, so when the search finds
    nothing the latest intents are listed too (the list is current): a lost answer is recent."""

    retrieve: GatewayCommand
    search: GatewayCommand
    recent: GatewayCommand

    def execute(self, subject: Subject, context: CommandContext) -> CommandResult:
        if subject.reference:
            return self.retrieve.execute(subject, context)
        found = self.search.execute(subject, context)
        if found.state != ProviderState.NOT_FOUND:
            return found
        return self.recent.execute(subject, context)


@attrs.frozen
class Vault:
    """`vault`: a Stripe customer for the buyer (unless `customer.reference` names one), then the
    payment method attached to it; the attached method's id is the reusable token."""

    customer: GatewayCommand
    attach: GatewayCommand

    def execute(self, subject: Subject, context: CommandContext) -> CommandResult:
        buyer = subject.buyer or Customer()
        if not buyer.reference:
            created = self.customer.execute(
                attrs.evolve(subject, idempotency_key=derived_key(subject.idempotency_key, "customer")), context
            )
            buyer = attrs.evolve(buyer, reference=created.reference)
        return self.attach.execute(
            attrs.evolve(subject, customer=buyer, idempotency_key=derived_key(subject.idempotency_key, "attach")),
            context,
        )
