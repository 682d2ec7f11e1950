"""The typed subject of a gateway command (Magento's PaymentDataObject: payment + order).

Builders read only from a `Subject`; there are no untyped dicts between the caller and the wire.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import datetime
from types import MappingProxyType
from typing import Any

import attrs

from paywire.errors import InvalidRequest
from paywire.money import Money
from paywire.security import redact

__all__ = ["Address", "BuyerAction", "Customer", "LineItem", "Order", "Subject"]


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@attrs.frozen
class Address:
    """A postal address; `country` is an ISO 3166-1 alpha-2 code."""

    line1: str | None = None
    line2: str | None = None
    city: str | None = None
    state: str | None = None
    postal_code: str | None = None
    country: str | None = attrs.field(default=None)
    name: str | None = None

    @country.validator
    def _check_country(self, _: attrs.Attribute[str | None], value: str | None) -> None:
        if value is not None and (len(value) != 2 or not value.isalpha() or not value.isupper()):
            from paywire.errors import InvalidRequest

            raise InvalidRequest(
                f"country {value!r} must be an ISO 3166-1 alpha-2 code such as 'DE'", param="country"
            )


@attrs.frozen
class Customer:
    """The buyer as the shop knows them; `reference` is the provider's customer id once vaulted."""

    email: str | None = None
    name: str | None = None
    phone: str | None = None
    reference: str | None = None
    id: str | None = None


def _check_quantity(item: LineItem, _: attrs.Attribute[int], value: int) -> None:
    # `True` is an int to Python, and a provider would be sent the text "True" as the quantity.
    if type(value) is not int:
        raise InvalidRequest(f"a line item's quantity must be an int, not {type(value).__name__} {value!r}; "
                             "give a whole number such as 2", param="order.items.quantity")


def _check_price(item: LineItem, _: attrs.Attribute[Money], value: Money) -> None:
    if not isinstance(value, Money):
        raise InvalidRequest(f"a line item's unit_price must be Money, not {type(value).__name__}: give "
                             "Money.of(\"3.50\", currency)", param="order.items.unit_price")


@attrs.frozen
class LineItem:
    """One line of an order; its type is checked when it is made, as a provider receives it as text."""

    name: str
    quantity: int = attrs.field(validator=_check_quantity)
    unit_price: Money = attrs.field(validator=_check_price)
    sku: str | None = None


def _items(value: Iterable[LineItem]) -> tuple[LineItem, ...]:
    return tuple(value)


def _money_or_none(param: str) -> Any:
    """A validator refusing what is neither Money nor None: any other type (a float above all)
    failed untyped where the amount is read (its currency, its minor units)."""

    def check(instance: object, _: attrs.Attribute[Money | None], value: Money | None) -> None:
        if value is not None and not isinstance(value, Money):
            raise InvalidRequest(f"{param} must be Money, not {type(value).__name__} {value!r}: give "
                                 "Money.of(\"19.99\", currency) (floats are refused: they cannot hold money exactly)",
                                 param=param)

    return check


@attrs.frozen
class Order:
    """The order a payment is for. `amount` is the order total, which may differ from a capture."""

    id: str
    amount: Money | None = attrs.field(default=None, validator=_money_or_none("order.amount"))
    billing: Address | None = None
    shipping: Address | None = None
    customer: Customer | None = None
    items: tuple[LineItem, ...] = attrs.field(default=(), converter=_items)
    description: str | None = None


@attrs.frozen
class BuyerAction:
    """What the buyer must do before an operation can finish (3-D Secure, PayPal approval).

    :param redirect_url: where to send the buyer; empty when the provider's client SDK acts instead.
        Its repr masks what it carries for the buyer alone (the client secret of Stripe's).
    :param kind: "redirect", or the provider's name for what its client SDK does (Stripe's
        `use_stripe_sdk`: Stripe.js's `handleNextAction`).
    :param client_secret: what that SDK takes (Stripe's PaymentIntent client secret). A secret: it
        is in the answer that asked for the action only, never in the ledger, logs or repr, so a
        payment read again has none (the provider gives it again for its reference).
    """

    redirect_url: str = attrs.field(repr=lambda url: repr(redact(url)))
    return_url: str | None = None
    kind: str = "redirect"
    client_secret: str | None = attrs.field(default=None, repr=False, eq=False)


@attrs.frozen(kw_only=True)
class Subject:
    """Everything a command may need, typed.

    :param amount: the amount of this operation (authorize, capture, refund ...), if it has one.
    :param source: a payment method token (`pm_card_visa`, a vault token); never a raw card number.
    :param reference: the provider's id of the object this operation acts on (payment intent,
        order, authorization, capture).
    :param idempotency_key: sent with the request so the provider deduplicates retries.
    :param final: for partial captures, whether this is the last one (releases the rest).
    :param reason: why a void or refund happens, in the provider's vocabulary when it has one.
    :param return_url: where the buyer comes back to after a redirect.
    :param vaulted: `source` is a vaulted token charged without the buyer present (off-session):
        no buyer action is possible.
    :param metadata: string pairs stored with the provider object.
    :param options: provider-specific extras (a typed escape hatch for plugins' own commands).
    :param flow: for fetch, the payment's flow ("authorize" or "sale") when the payment service
        knows it: a provider may hold an authorization captured whole exactly as it holds a sale.
    :param earlier_step_keys: the command was first sent by a release that made its steps' keys
        in the caller's key space (Stripe's vault: `{key}:customer`, `{key}:attach`), not with
        `step_key`: sent again, its steps must carry those keys, or the provider applies them
        a second time (a second customer).
    :param sent_at: for fetch by idempotency key (no reference), when the payment's first request
        was recorded, just before it was first sent: whatever the provider made of it was made no
        earlier, so a plugin may look through everything made since instead of an index that lags
        writes (Stripe's search). None when unknown; plugins that need no bound ignore it.
    """

    amount: Money | None = attrs.field(default=None, validator=_money_or_none("amount"))
    order: Order | None = None
    source: str | None = None
    reference: str | None = None
    idempotency_key: str | None = None
    final: bool = True
    reason: str | None = None
    return_url: str | None = None
    customer: Customer | None = None
    vaulted: bool = False
    metadata: Mapping[str, str] = attrs.field(factory=dict, converter=_frozen_mapping)
    options: Mapping[str, Any] = attrs.field(factory=dict, converter=_frozen_mapping)
    flow: str | None = None
    earlier_step_keys: bool = False
    sent_at: datetime | None = None

    @property
    def currency(self) -> str | None:
        return self.amount.currency if self.amount is not None else None

    @property
    def buyer(self) -> Customer | None:
        """The customer of this operation, falling back to the order's."""
        if self.customer is not None:
            return self.customer
        return self.order.customer if self.order is not None else None
