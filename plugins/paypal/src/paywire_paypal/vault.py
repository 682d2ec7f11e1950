"""Vault v3: store a payment method (setup token -> payment token) and delete one.

`vault` takes as `source`:

- "paypal": the buyer's PayPal wallet. PayPal must ask the buyer, so a setup token is created
  and the answer is `action_required` with its approval link; once the buyer approved, `vault`
  with the setup token's id (`reference`) as source stores it.
- an approved setup token's id (made here, or by PayPal's JavaScript SDK for cards): exchanged
  for a payment token, the reusable `token` (`references["customer"]` is PayPal's customer).
- a payment token's id: already stored; answered as it is (setup token ids are upper case and
  digits, so anything else is looked up as a payment token directly), unless another PayPal
  customer holds it than `customer.reference` names (`held_by_buyer`).

`unvault` deletes the payment token `source` (`Unvault`); naming a customer (`customer.reference`),
it reads the token first and refuses one another PayPal customer holds (`held_by_buyer`).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any, Final

import attrs

from paywire import (
    BuyerAction,
    CommandContext,
    CommandResult,
    GatewayCommand,
    InvalidRequest,
    PaywireError,
    Response,
    Subject,
)
from paywire.command.gateway_command import before_the_write
from paywire_paypal.orders import WALLET

__all__ = ["Unvault", "Vault", "held_by_buyer", "payment_token_fields", "payment_token_request", "setup_token_fields",
           "setup_token_request"]

_SETUP_TOKEN_ID: Final = re.compile(r"[0-9A-Z_-]{1,255}")  # Vault v3's token id pattern
_NOT_FOUND: Final = frozenset({"INVALID_RESOURCE_ID", "RESOURCE_NOT_FOUND", "TOKEN_ID_NOT_FOUND"})
_CUSTOMER_ID: Final = re.compile(r"[0-9a-zA-Z_-]{1,22}")


def _customer(subject: Subject) -> dict[str, Any]:
    buyer = subject.buyer
    if buyer is not None and buyer.reference and _CUSTOMER_ID.fullmatch(buyer.reference):
        return {"customer": {"id": buyer.reference}}
    return {}


_CHARGED: Final = "use it for the customer holding it; nothing was charged or stored"


def held_by_buyer(subject: Subject, token: Mapping[str, Any], advice: str = _CHARGED) -> None:
    """Refuse a payment token that another PayPal customer holds than `customer.reference` names:
    PayPal's orders and its DELETE name no customer, so the token would be charged for, or deleted
    from, whoever it was vaulted for. `advice` says what to do and what was left undone."""
    named = subject.buyer.reference if subject.buyer is not None else None
    holder = _customer_reference(token).get("customer")
    if named and holder and holder != named:
        raise InvalidRequest(f"payment token {subject.source!r} was vaulted for another PayPal customer than "
                             f"customer.reference {named!r}; {advice}", param="customer.reference",
                             provider="paypal", code="customer_mismatch")


def setup_token_request(subject: Subject) -> dict[str, Any]:
    """A setup token for the buyer's PayPal wallet, which the buyer then approves."""
    wallet: dict[str, Any] = {"usage_type": "MERCHANT", "customer_type": "CONSUMER"}
    if subject.return_url:
        wallet["experience_context"] = {"return_url": subject.return_url, "cancel_url": subject.return_url}
    return {"payment_source": {WALLET: wallet}, **_customer(subject)}


def payment_token_request(subject: Subject) -> dict[str, Any]:
    """Exchange the approved setup token `source` for a payment token."""
    return {"payment_source": {"token": {"id": subject.source, "type": "SETUP_TOKEN"}}}


def _customer_reference(data: Mapping[str, Any]) -> dict[str, str]:
    customer = data.get("customer")
    customer_id = customer.get("id") if isinstance(customer, Mapping) else None
    return {"customer": customer_id} if isinstance(customer_id, str) else {}


def setup_token_fields(subject: Subject, response: Response) -> dict[str, Any]:
    token = response.data
    links = {link.get("rel"): link.get("href") for link in token.get("links") or () if isinstance(link, Mapping)}
    fields: dict[str, Any] = {
        "reference": token["id"],
        "references": {"setup_token": token["id"], **_customer_reference(token)},
    }
    approve = links.get("approve")
    if isinstance(approve, str):
        fields |= {"status": "action_required", "action": BuyerAction(approve, subject.return_url)}
    return fields


def payment_token_fields(subject: Subject, response: Response) -> dict[str, Any]:
    token = response.data
    return {
        "token": token["id"],
        "reference": token["id"],
        "references": {"payment_token": token["id"], **_customer_reference(token)},
    }


@attrs.frozen
class Vault:
    setup: GatewayCommand  # POST /v3/vault/setup-tokens
    exchange: GatewayCommand  # POST /v3/vault/payment-tokens
    lookup: GatewayCommand  # GET /v3/vault/payment-tokens/{source}

    def execute(self, subject: Subject, context: CommandContext) -> CommandResult:
        source = subject.source
        if not source:
            raise InvalidRequest("vault needs a source: 'paypal', or a setup token's id; nothing was sent",
                                 param="source", provider="paypal", code="source_required")
        if source == WALLET:
            return self.setup.execute(subject, context)
        if _SETUP_TOKEN_ID.fullmatch(source):
            self.exchange.builder(subject)  # a missing key is refused before anything is sent
            try:
                return self.exchange.execute(subject, context)
            except InvalidRequest as error:
                if error.code not in _NOT_FOUND:
                    raise
        stored = self.lookup.execute(Subject(source=source), context)
        if isinstance(stored.raw, Mapping):
            held_by_buyer(subject, stored.raw)
        return stored


@attrs.frozen
class Unvault:
    """`unvault`: DELETE the payment token. PayPal's DELETE names no customer, so one that
    `customer.reference` names is checked first: the token is read (`GET`), and one another PayPal
    customer holds is refused, left stored. Whatever else the read finds (no such token), the
    DELETE answers as it does without a customer; without one, nothing is read.

    A token found held by another customer was never deleted by an earlier attempt (the DELETE
    follows a read finding the named customer, and a deleted token does not come back), so the
    refusal stands for a resend too.
    """

    lookup: GatewayCommand  # GET /v3/vault/payment-tokens/{source}
    delete: GatewayCommand  # DELETE /v3/vault/payment-tokens/{source}

    def execute(self, subject: Subject, context: CommandContext) -> CommandResult:
        named = subject.buyer.reference if subject.buyer is not None else None
        if context.rehearsal or not named:
            return self.delete.execute(subject, context)
        self.delete.prepare(subject, context)  # what the DELETE refuses is refused before the read
        try:
            token = self.lookup.execute(Subject(source=subject.source), context).raw
        except InvalidRequest:
            token = None
        except PaywireError as error:
            raise before_the_write(error, context, f"payment token {subject.source!r} was read before its DELETE, "
                                                   "which was not sent: nothing was deleted") from error
        if isinstance(token, Mapping):
            held_by_buyer(subject, token, "unvault it naming the customer holding it; nothing was deleted")
        return self.delete.execute(subject, context)
