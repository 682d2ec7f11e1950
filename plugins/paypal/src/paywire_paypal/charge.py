"""authorize and sale: create an order, for the buyer to approve or paid from the vault at once.

An order paid with a vault token must name the token's kind (`payment_source.card.vault_id` or
`payment_source.paypal.vault_id`; PayPal refuses a mismatch), which the token id alone does not
tell. The kind is read from the token first (`GET /v3/vault/payment-tokens/{id}`), unless the
subject names it in `options["vault_source"]`. PayPal's order names no customer: it charges the
token whoever it was vaulted for, so a token read first that another customer holds than
`customer.reference` names is refused here, before the order.
"""

from __future__ import annotations

from collections.abc import Mapping

import attrs

from paywire import CommandContext, CommandResult, GatewayCommand, OutcomeUnknown, PaywireError, Subject
from paywire.command.gateway_command import before_the_write
from paywire_paypal.orders import VAULT_SOURCE_OPTION, is_wallet
from paywire_paypal.vault import held_by_buyer

__all__ = ["CreateOrder", "vault_kind"]


def vault_kind(token: Mapping[str, object]) -> str | None:
    """The kind of a payment token ("card", "paypal", "venmo", ...) from its `payment_source`."""
    source = token.get("payment_source")
    if isinstance(source, Mapping) and len(source) == 1:
        return str(next(iter(source)))
    return None


@attrs.frozen
class CreateOrder:
    """Creates the order (`create`), looking up a vault token's kind first (`lookup`) when needed."""

    create: GatewayCommand
    lookup: GatewayCommand

    def execute(self, subject: Subject, context: CommandContext) -> CommandResult:
        if not is_wallet(subject.source) and VAULT_SOURCE_OPTION not in subject.options:
            # An order paid from the vault needs a key; refusing first spares the lookup.
            self.create.builder(attrs.evolve(subject, options={VAULT_SOURCE_OPTION: "paypal"}))
            token = self._token(subject, context)
            if isinstance(token, Mapping):
                held_by_buyer(subject, token)
            kind = vault_kind(token) if isinstance(token, Mapping) else None
            subject = attrs.evolve(subject, options={**subject.options, VAULT_SOURCE_OPTION: kind or "paypal"})
        return self.create.execute(subject, context)

    def _token(self, subject: Subject, context: CommandContext) -> object:
        """The vault token, read before the order. On a first attempt, a read whose answer was
        lost leaves the order unsent: a retryable failure (`before_the_write`). Resending an order
        whose outcome is unknown, a refusal of this read (the buyer deleted the token since)
        answers the read, not the order the lost attempt may have made: the outcome stays unknown."""
        try:
            return self.lookup.execute(Subject(source=subject.source), context).raw
        except PaywireError as error:
            if not context.resent:
                raise before_the_write(error, context, f"payment token {subject.source!r} was read before the "
                                                       "order, which was not sent: nothing was paid") from error
            if isinstance(error, OutcomeUnknown):
                raise
            raise OutcomeUnknown.instead_of(error, "reading the vault token before resending an order whose outcome "
                                                   "is unknown, so the earlier attempt may have made it: reconcile the "
                                                   "payment") from error
