"""One plugin under contract: gateways built against its emulator, the emulator's controls, and
the recorder and leak watch every operation of the kit goes through.

The contract tests talk to the plugin only through a `ContractHarness`, so every error they see
is checked for secrets and every request they cause is recorded.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Mapping
from typing import Any

import attrs

from paywire.command.result import CommandResult
from paywire.config import MethodConfig
from paywire.errors import PaywireError
from paywire.gateway import Gateway, Method
from paywire.gateway_definition import Capabilities
from paywire.http.retry import Retry
from paywire.money import Money
from paywire.plugins import Plugins
from paywire.security import Secret
from paywire.subject import Address, Customer, LineItem, Order, Subject
from paywire.testing.controls import EmulatorControls
from paywire.testing.leaks import LeakWatch
from paywire.testing.recorder import RecordedTransfer, TransferRecorder
from paywire.webhook import WebhookEvent

__all__ = ["ApproveBuyerAction", "ContractHarness", "GatewayFactory", "payment_reference", "plugin_name"]

ApproveBuyerAction = Callable[[CommandResult], None]
"""Acts as the buyer for a result that needs buyer action (passes 3-D Secure, approves an order)."""

_orders = itertools.count(1)
_HEX_AS_LETTERS = str.maketrans("0123456789", "ghijklmnop")


def _letters() -> str:
    return uuid.uuid4().hex.translate(_HEX_AS_LETTERS)


def payment_reference(result: CommandResult) -> str:
    """The provider's primary payment object (what `fetch` reads), per the command contract."""
    reference = result.references.get("payment") or result.reference
    if not reference:
        raise AssertionError(f"the result names no payment: neither references['payment'] nor reference ({result!r})")
    return reference


def plugin_name(plugin: object) -> str:
    """The name a plugin is registered under: its module name, or its class name."""
    return getattr(plugin, "__name__", None) or type(plugin).__name__


@attrs.define
class GatewayFactory:
    """Builds the plugin's `Gateway` against its emulator, with the kit's recorder registered.

    Keyword arguments change the method configuration for one gateway: a retry policy (none by
    default, so every error surfaces as it is), a read timeout, another endpoint, other credentials.
    """

    plugin: object
    method: MethodConfig
    recorder: TransferRecorder
    built: list[Gateway] = attrs.field(factory=list, repr=False)

    def __call__(
        self,
        *,
        retry: Retry | None = None,
        read_timeout: float | None = None,
        base_url: str | None = None,
        credentials: Mapping[str, str | Secret] | None = None,
    ) -> Gateway:
        plugins = Plugins()
        plugins.register(self.plugin, name=plugin_name(self.plugin))
        plugins.register(self.recorder, name="paywire.testing.recorder")
        changes: dict[str, Any] = {}
        if read_timeout is not None:
            changes["read_timeout"] = read_timeout
        if base_url is not None:
            changes["base_url"] = base_url
        if credentials is not None:
            changes["credentials"] = {**self.method.credentials, **credentials}
        gateway = Gateway([attrs.evolve(self.method, **changes)], plugins=plugins, retry=retry or Retry.never())
        self.built.append(gateway)
        return gateway

    def close(self) -> None:
        for gateway in self.built:
            gateway.close()
        self.built.clear()


class ContractHarness:
    """Runs commands of the plugin under contract and keeps what the checks need.

    :param factory: builds gateways; `harness.gateway` is the default one.
    :param emulator: the emulator's controls (call counts, fault injection).
    :param payment_source: a source the provider authorizes (after buyer action, if it asks).
    :param approve_buyer_action: acts as the buyer when an operation needs it.
    """

    def __init__(
        self,
        *,
        factory: GatewayFactory,
        emulator: EmulatorControls,
        leaks: LeakWatch,
        payment_source: str,
        approve_buyer_action: ApproveBuyerAction,
    ) -> None:
        self.factory = factory
        self.emulator = emulator
        self.recorder = factory.recorder
        self.leaks = leaks
        self.payment_source = payment_source
        self.approve_buyer_action = approve_buyer_action
        self.gateway = factory()
        self.method_code = factory.method.code
        self._orders: dict[str, Order] = {}  # provider reference -> the order its payment is for

    def __repr__(self) -> str:
        return f"ContractHarness({self.method_code!r})"

    # -- what the plugin declares ------------------------------------------------------------------
    @property
    def method(self) -> Method:
        return self.gateway.method(self.method_code)

    @property
    def provider(self) -> str:
        return self.method.definition.code

    @property
    def capabilities(self) -> Capabilities:
        return self.method.capabilities

    @property
    def commands(self) -> frozenset[str]:
        return frozenset(self.method.commands)

    # -- fresh values ------------------------------------------------------------------------------
    @staticmethod
    def key() -> str:
        """A new idempotency key (letters only: a uuid's digit runs can pass for a card number)."""
        return f"contract-{_letters()}"

    @staticmethod
    def order(total: Money | None = None) -> Order:
        """A fresh order as a shop sends it: id, total, buyer, addresses, items, description."""
        buyer = Customer(email="buyer@shop.example", name="Contract Buyer", id="cus_contract")
        address = Address(line1="1 Contract Street", city="Berlin", postal_code="10115", country="DE")
        order = Order(id=f"contract-{_letters()[:12]}-{next(_orders)}", amount=total, billing=address,
                      shipping=address, customer=buyer, description="a contract test order")
        if total is None:
            return order
        item = LineItem(name="Contract item", quantity=1, unit_price=total, sku="SKU-1")
        return attrs.evolve(order, items=(item,))

    def order_of(self, reference: str | None) -> Order | None:
        """The order the payment `reference` (a payment, authorization or capture) is for."""
        return self._orders.get(reference) if reference else None

    def follow_up(self, reference: str | None, amount: Money | None = None, *, key: str | None = None,
                  **fields: Any) -> Subject:
        """A subject for capture, void, refund or complete as the payment service builds it: with
        its payment's order, whose total is the whole payment's (a capture or refund is often
        less), the buyer, and a fresh idempotency key."""
        order = self.order_of(reference)
        if order is None:  # a reference the kit made up: an order worth more than the operation
            order = self.order(None if amount is None else amount + amount + Money.minor_units(1, amount.currency))
        return Subject(reference=reference, amount=amount, order=order, customer=order.customer,
                       idempotency_key=key or self.key(), **fields)

    # -- running commands --------------------------------------------------------------------------
    def calls(self) -> int:
        """How many requests have reached the emulator's provider logic so far."""
        return len(self.emulator.calls)

    def sent(self) -> int:
        """A mark for `sent_since`: how many transfers have been recorded so far."""
        return len(self.recorder.sent)

    def sent_since(self, mark: int) -> list[RecordedTransfer]:
        return self.recorder.since(mark)

    def execute(self, command: str, subject: Subject, *, gateway: Gateway | None = None) -> CommandResult:
        """Run one command; its error or result is kept for the secret checks."""
        try:
            result = (gateway or self.gateway).execute(self.method_code, command, subject)
        except PaywireError as error:
            self.leaks.note_error(error)
            raise
        self.leaks.note_repr(f"the result of {command}", result)
        if subject.order is not None:
            for reference in (result.reference, *result.references.values()):
                if reference:
                    self._orders.setdefault(reference, subject.order)
        return result

    def attempt(self, command: str, subject: Subject, *, gateway: Gateway | None = None) -> CommandResult | PaywireError:
        """Run one command and return its typed error instead of raising it."""
        try:
            return self.execute(command, subject, gateway=gateway)
        except PaywireError as error:
            return error

    def payment_subject(self, amount: Money, *, source: str | None = None, key: str | None = None,
                        **fields: Any) -> Subject:
        """A subject for authorize or sale as the payment service builds it: a fresh order (its
        total the amount), the buyer, metadata, a fresh idempotency key, the payment source."""
        order = fields.pop("order", None) or self.order(amount)
        fields.setdefault("customer", order.customer)
        fields.setdefault("metadata", {"shop_note": "contract test"})
        return Subject(
            amount=amount,
            source=source or self.payment_source,
            order=order,
            idempotency_key=key or self.key(),
            return_url=fields.pop("return_url", "https://shop.example/return"),
            **fields,
        )

    def authorize(
        self,
        amount: Money,
        *,
        sale: bool = False,
        source: str | None = None,
        gateway: Gateway | None = None,
        **fields: Any,
    ) -> CommandResult:
        """Authorize (or sell) `amount`, acting as the buyer if the provider asks for it.

        Returns the result whose `reference` capture, void (or, for a sale, refund) act on.
        """
        subject = self.payment_subject(amount, source=source, **fields)
        result = self.execute("sale" if sale else "authorize", subject, gateway=gateway)
        if result.action_required:
            result = self.complete(result, amount, gateway=gateway)
        return result

    def complete(self, started: CommandResult, amount: Money, *, gateway: Gateway | None = None) -> CommandResult:
        """Pass the buyer's step for `started`, then run `complete`."""
        self.approve_buyer_action(started)
        return self.execute("complete", self.follow_up(payment_reference(started), amount), gateway=gateway)

    def fetch(self, reference: str) -> CommandResult:
        return self.execute("fetch", Subject(reference=reference))

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> WebhookEvent:
        """Verify and parse a webhook; its error or event is kept for the secret checks."""
        try:
            event = self.gateway.parse_webhook(self.method_code, headers, body)
        except PaywireError as error:
            self.leaks.note_error(error)
            raise
        self.leaks.note_repr("a webhook event", event)
        return event
