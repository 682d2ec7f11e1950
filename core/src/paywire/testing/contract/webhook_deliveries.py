"""The webhooks an emulator really sends, received on loopback, and what the kit checks in each.

The kit's rendered events (`webhook_body`) show that the plugin parses what the kit wrote; they
cannot show that it reads the provider's own events right. So the kit also runs operations
against the emulator, receives the events the emulator sends about them, parses each with the
plugin's verifier, and holds every event to what the operations returned and to what `fetch`
reports: the kind, the amount and running total, the currency, and the ids the ledger matches
it by (an event naming a capture by an id no capture result gave is recorded as a second
capture, doubling the captured total).
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Protocol

import attrs

from paywire.command.result import CommandResult
from paywire.money import Money
from paywire.webhook import SHARED_REFERENCES, EventKind, WebhookEvent

__all__ = [
    "AMOUNT_KINDS",
    "Delivery",
    "EmulatorWebhooks",
    "PaymentIds",
    "WebhookReceiver",
    "event_problems",
    "receiving",
]

AMOUNT_KINDS = frozenset({EventKind.CAPTURED, EventKind.REFUNDED, EventKind.REVERSED})
"""Kinds of events that move money: they must say how much (an amount or a running total)."""

_MONEY_KINDS = {EventKind.CAPTURED: "capture", EventKind.REFUNDED: "refund"}


@attrs.frozen
class Delivery:
    """One webhook POST as the emulator sent it."""

    headers: Mapping[str, str]
    body: bytes


class EmulatorWebhooks(Protocol):
    """Where the kit reads the webhooks an emulator sent: `wait()` until every delivery started so
    far arrived (True) or a timeout passed (False); `deliveries` in the order they arrived."""

    @property
    def deliveries(self) -> list[Delivery]: ...

    def wait(self) -> bool: ...


class WebhookReceiver:
    """A loopback HTTP server keeping every POST it gets, answering 200."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._received: list[Delivery] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    receiver._received.append(Delivery(dict(self.headers.items()), body))
                self.send_response(200)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}/webhooks"

    @property
    def deliveries(self) -> list[Delivery]:
        with self._lock:
            return list(self._received)

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@attrs.define
class _AppWebhooks:
    """`EmulatorWebhooks` of an `EmulatorApp`: its `webhook_url` pointed at a `WebhookReceiver`."""

    app: Any
    receiver: WebhookReceiver

    @property
    def deliveries(self) -> list[Delivery]:
        return self.receiver.deliveries

    def wait(self) -> bool:
        return bool(self.app.wait_for_webhooks(10.0))


def receiving(emulator: object) -> Iterator[EmulatorWebhooks | None]:
    """For the `emulator_webhooks` fixture: an emulator with `webhook_url` and `wait_for_webhooks`
    (every `EmulatorApp`) sends its webhooks to a receiver while the test runs; None for others."""
    if not hasattr(emulator, "webhook_url") or not callable(getattr(emulator, "wait_for_webhooks", None)):
        yield None
        return
    app: Any = emulator
    previous = app.webhook_url
    with WebhookReceiver() as receiver:
        app.webhook_url = receiver.url
        try:
            yield _AppWebhooks(app, receiver)
        finally:
            app.wait_for_webhooks(10.0)
            app.webhook_url = previous


@attrs.define
class PaymentIds:
    """What the operations on one payment returned: the ids naming the payment object, and each
    capture's and refund's reference with its amount."""

    currency: str
    payment: set[str] = attrs.field(factory=set)
    captures: dict[str, list[int]] = attrs.field(factory=dict)
    refunds: dict[str, list[int]] = attrs.field(factory=dict)
    other: set[str] = attrs.field(factory=set)

    def started(self, result: CommandResult, *, sale: bool, amount: Money) -> None:
        """An authorization or sale: its reference and payment, order and authorization ids
        name the payment object; a sale's capture (if it names one) is its capture."""
        for name in ("payment", "authorization", "order"):
            if reference := result.references.get(name):
                self.payment.add(reference)
        if result.reference:
            self.payment.add(result.reference)
        if sale:
            capture = result.references.get("capture") or result.reference
            if capture:
                self.captures.setdefault(capture, []).append((result.amount or amount).minor)
        self._note(result)

    def operation(self, kind: str, result: CommandResult, amount: Money | None) -> None:
        """A capture or refund that took effect: its reference, as the ledger records it."""
        moved = result.amount or amount
        book = self.captures if kind == "capture" else self.refunds
        if result.reference and moved is not None:
            book.setdefault(result.reference, []).append(moved.minor)
        self._note(result)

    def _note(self, result: CommandResult) -> None:
        self.other.update(ref for name, ref in result.references.items() if ref and name not in SHARED_REFERENCES)

    def known(self) -> set[str]:
        return self.payment | set(self.captures) | set(self.refunds) | self.other


def _named(event: WebhookEvent) -> set[str]:
    return {ref for name, ref in event.references.items() if ref and name not in SHARED_REFERENCES} | (
        {event.reference} if event.reference else set())


def _over(money: Money | None, limit: Money | None) -> bool:
    held = 0 if limit is None else limit.minor
    return money is not None and money.minor > held


_PENDING_KINDS = {EventKind.REFUND_PENDING: "refund", EventKind.CAPTURE_PENDING: "capture"}


def _pending_problems(event: WebhookEvent, ids: PaymentIds, label: str, role: str, *, amounts: bool) -> list[str]:
    """A refund or capture (`role`) the provider holds undecided: the ledger holds one it does not
    know in flight (one made in the dashboard), so the event names the one the results gave, with
    its amount."""
    own = event.references.get(role) or event.reference
    book = ids.captures if role == "capture" else ids.refunds
    if own not in book:
        return [f"{label} names the pending {role} as {own!r}, but the {role} results gave "
                f"{sorted(book) or 'none'}: the ledger would hold a second {role} in flight"]
    if amounts and event.amount is None:
        return [f"{label} reports no amount: the ledger cannot hold what the pending {role} takes"]
    if event.amount is not None and event.amount.minor not in book[own]:
        return [f"{label} names the {role} {own} with amount {event.amount!r}; that {role} moved "
                f"{' or '.join(map(str, book[own]))} minor units"]
    return []


def event_problems(event: WebhookEvent, ids: PaymentIds, fetched: CommandResult, *,
                   forbidden: Collection[str] = (), amounts: bool = True) -> list[str]:
    """What is wrong with `event`, delivered by the emulator after an operation on the payment
    `ids` describes, given the provider's `fetch` of that payment once the event was sent.

    :param forbidden: kinds this step cannot have caused (a captured event after the provider
        refused the capture).
    :param amounts: whether the provider's money events carry an amount (`WebhookScheme.amounts`).
    """
    kind = event.kind
    if kind in (EventKind.OTHER, EventKind.ACTION_REQUIRED, EventKind.APPROVED):
        return []
    label = f"{event.type} {event.id} (read as {kind})"
    named = _named(event)
    if not named & ids.known():
        return [f"{label} names {sorted(named)}, none of the ids the operations on its payment returned "
                f"({sorted(ids.known())}): the ledger cannot match it to the payment"]
    problems = []
    if kind in forbidden:
        problems.append(f"{label} was sent after the provider refused the operation: the event says it took effect")
    for name, money in (("amount", event.amount), ("total", event.total)):
        if money is not None and money.currency != ids.currency:
            problems.append(f"{label} {name} {money!r} is not in the payment's currency {ids.currency}")
    if amounts and kind in AMOUNT_KINDS and event.amount is None and event.total is None:
        problems.append(f"{label} moves money but reports no amount and no total (the provider sends one: "
                        "WebhookScheme.amounts)")
    if kind in _PENDING_KINDS:
        return problems + _pending_problems(event, ids, label, _PENDING_KINDS[kind], amounts=amounts)
    role = _MONEY_KINDS.get(kind)
    if role is None:
        return problems
    limit = fetched.captured if kind == EventKind.CAPTURED else fetched.refunded
    if _over(event.total, limit):
        problems.append(f"{label} reports a running total {event.total!r} above the {limit!r} fetch reports "
                        f"{role}d: the ledger would count more than the provider holds")
    own = event.references.get(role) or event.reference
    book = ids.captures if role == "capture" else ids.refunds
    if own in ids.payment:  # the payment object: its amount is a running total
        if _over(event.amount, limit):
            problems.append(f"{label} names the payment object {own}, so its amount {event.amount!r} is a "
                            f"running total, above the {limit!r} fetch reports {role}d")
    elif own in book:
        if event.amount is not None and event.amount.minor not in book[own]:
            problems.append(f"{label} names the {role} {own} with amount {event.amount!r}; that {role} "
                            f"moved {' or '.join(map(str, book[own]))} minor units")
        if _over(event.amount, limit):
            problems.append(f"{label} reports {event.amount!r} {role}d, above the {limit!r} fetch reports")
    else:
        given = sorted(book) or "none"
        problems.append(
            f"{label} names the {role} it is about as {own!r} (references[{role!r}] or reference), but the "
            f"{role} results gave {given} and the payment is {sorted(ids.payment)}: the ledger would record "
            f"a second {role} made outside paywire, counting the money twice")
    return problems
