"""The payment service through every installed provider plugin that ships a sandbox emulator
(Stripe, PayPal, the sample Acme plugin, ...), using nothing but the command contract.

Each check compares the ledger with the provider's own state as its `fetch` command reports it,
and the provider's real signed webhooks are delivered to the service's WSGI endpoint while the
operations run (so they arrive during, before or after the service records each outcome).
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import attrs
import pytest

from paywire import (
    Declined,
    Gateway,
    InvalidRequest,
    Money,
    OutcomeUnknown,
    Plugins,
    Response,
    Retry,
    Subject,
    Transfer,
    hookimpl,
)
from paywire.ledger import PaymentState, SQLiteLedger
from paywire.service import PaymentService
from paywire.testing.emulator import EmulatorServer, Fault
from paywire.testing.sandbox import Sandbox, load_sandbox
from paywire.web import webhook_wsgi


def _installed() -> list[str]:
    try:
        gateways = Plugins().load_entry_points().gateways()
    except Exception:  # a broken plugin is the plugin tests' business
        return []
    return sorted(code for code, definition in gateways.items() if getattr(definition, "sandbox", None))


PROVIDERS = _installed()
pytestmark = pytest.mark.skipif(not PROVIDERS, reason="no provider plugin with a sandbox emulator is installed")


class _Quiet(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Middlebox:
    """Something between paywire and the provider (a proxy, a load balancer): it passes every
    request on, and once given an `answer`, keeps the provider's answer to the next write of
    `command` from paywire and gives its own."""

    def __init__(self) -> None:
        self.command = ""
        self.answer: Response | None = None
        self.kept: list[Response] = []

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str, transfer: Transfer) -> Generator[None, Response, Response]:
        response: Response = yield
        read = transfer.method != "POST" or b'{"query":"query ' in (transfer.body or b"")  # a GraphQL query reads
        if self.answer is None or command != self.command or read:
            return response
        answer, self.answer = self.answer, None
        self.kept.append(response)
        return answer


@attrs.define
class Provider:
    code: str
    sandbox: Sandbox
    gateway: Gateway
    service: PaymentService
    currency: str
    middlebox: _Middlebox

    def money(self, amount: str) -> Money:
        return Money.of(amount, self.currency)

    def fetched(self, payment_id: str) -> tuple[int, int, int]:
        payment = self.service.get_payment(payment_id)
        result = self.gateway.execute(self.code, "fetch", Subject(reference=payment.reference, amount=payment.amount))
        return tuple(m.minor if m is not None else 0 for m in (result.authorized, result.captured, result.refunded))  # type: ignore[return-value]

    def agree(self, payment_id: str) -> None:
        payment = self.service.get_payment(payment_id)
        assert payment.refunded <= payment.captured <= payment.authorized
        assert (payment.authorized.minor, payment.captured.minor, payment.refunded.minor) == self.fetched(payment_id)

    def names_its_operation(self, txn: Any) -> None:
        """Where the provider's fetch lists its operations, the transaction carries the id of exactly
        the one it made (a plugin that lists none reports running totals, which need no id)."""
        payment = self.service.get_payment(txn.payment_id)
        listed = self.gateway.execute(self.code, "fetch", Subject(reference=payment.reference,
                                                                  amount=payment.amount)).operations
        if listed:
            assert txn.provider_reference in {op.reference for op in listed if op.kind == txn.kind}, (txn, listed)

    def calls(self) -> int:
        app = self.sandbox.app
        with app.lock:
            return len(app.calls)

    def settle_webhooks(self, timeout: float = 60.0) -> list[tuple[int | None, bytes]]:
        """Wait until every delivery the provider started has been answered by the service."""
        app = self.sandbox.app
        assert app.wait_for_webhooks(timeout), f"{self.code}'s webhook deliveries still running after {timeout} s"
        with app.lock:
            return list(app.webhook_deliveries)


@pytest.fixture(params=PROVIDERS or ["none"])
def provider(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Provider]:
    code = str(request.param)
    plugins = Plugins().load_entry_points()
    middlebox = _Middlebox()
    plugins.register(middlebox, name="middlebox")
    definition = plugins.gateway(code)
    sandbox = load_sandbox(definition)
    ledger = SQLiteLedger(tmp_path / "ledger.db")
    with EmulatorServer(sandbox.app) as server:
        gateway = Gateway([sandbox.method(code, server.url)], plugins=plugins, retry=Retry.never())
        service = PaymentService(gateway, ledger)
        hooks = make_server("127.0.0.1", 0, webhook_wsgi(service), handler_class=_Quiet)
        thread = threading.Thread(target=hooks.serve_forever, daemon=True)
        thread.start()
        sandbox.app.webhook_url = f"http://127.0.0.1:{hooks.server_address[1]}/webhooks/{code}"
        currency = "EUR" if definition.accepts("EUR") else "USD"
        try:
            yield Provider(code, sandbox, gateway, service, currency, middlebox)
        finally:
            sandbox.app.webhook_url = None
            hooks.shutdown()
            hooks.server_close()
            gateway.close()
            ledger.close()


def test_authorize_capture_refund_agree_with_the_provider(provider: Provider) -> None:
    service, caps = provider.service, provider.gateway.method(provider.code).capabilities
    ok = provider.sandbox.sources["ok"]
    payment = service.authorize(provider.code, provider.money("100.00"), source=ok, order_id="L-1")
    assert payment.state == PaymentState.AUTHORIZED
    provider.agree(payment.id)
    part = provider.money("60.00") if caps.capture_partial else None
    payment = service.capture(payment.id, part)
    provider.agree(payment.id)
    refund = provider.money("20.00") if caps.refund_partial else None
    payment = service.refund(payment.id, refund)
    provider.agree(payment.id)
    deliveries = provider.settle_webhooks()
    assert all(status in (200, 202) for status, _ in deliveries), deliveries
    provider.agree(payment.id)  # the provider's own events changed nothing: all already known
    assert service.reconcile(payment_id=payment.id).clean
    provider.agree(payment.id)
    stored = service.ledger.list_events(limit=10_000)
    assert len({(e.provider, e.event_id) for e in stored}) == len(stored)


def test_sale_and_decline(provider: Provider) -> None:
    service = provider.service
    sale = service.sale(provider.code, provider.money("15.00"), source=provider.sandbox.sources["ok"])
    assert sale.state == PaymentState.CAPTURED
    provider.agree(sale.id)
    with pytest.raises(Declined) as declined:
        service.sale(provider.code, provider.money("15.00"), source=provider.sandbox.sources["decline"])
    assert declined.value.payment_id and declined.value.transaction_id
    assert service.get_payment(declined.value.payment_id).state == PaymentState.FAILED
    provider.settle_webhooks()
    provider.agree(sale.id)


def test_buyer_action_then_complete(provider: Provider) -> None:
    caps = provider.gateway.method(provider.code).capabilities
    source = provider.sandbox.sources.get("buyer_action")
    if not caps.buyer_action or not source:
        pytest.skip(f"{provider.code} declares no buyer action")
    service = provider.service
    payment = service.authorize(provider.code, provider.money("42.00"), source=source,
                                return_url="https://shop.example/return", order_id="L-3")
    assert payment.state == PaymentState.ACTION_REQUIRED and payment.action is not None
    # Completed before the buyer acted: still waiting, and still knowing where to send them.
    try:
        early = service.complete(payment.id)
    except InvalidRequest:  # a provider may refuse it outright instead
        early = service.get_payment(payment.id)
    assert early.state == PaymentState.ACTION_REQUIRED and early.action is not None
    assert early.action.redirect_url == payment.action.redirect_url, "the buyer's redirect was lost"
    provider.sandbox.act_as_buyer(payment.action.redirect_url)
    provider.settle_webhooks()  # the provider may tell the service first; complete() must still work
    payment = service.complete(payment.id) if service.get_payment(payment.id).state == PaymentState.ACTION_REQUIRED \
        else service.get_payment(payment.id)
    assert payment.state == PaymentState.AUTHORIZED and payment.authorized == provider.money("42.00")
    payment = service.capture(payment.id)
    provider.settle_webhooks()
    provider.agree(payment.id)


def test_replay_and_lost_answer(provider: Provider) -> None:
    service = provider.service
    ok = provider.sandbox.sources["ok"]
    first = service.authorize(provider.code, provider.money("30.00"), source=ok, idempotency_key="L-4-auth")
    provider.settle_webhooks()  # delivered in the background; the replay shows their effect too
    payment = service.get_payment(first.id)
    before = provider.calls()
    assert service.authorize(provider.code, provider.money("30.00"), source=ok, idempotency_key="L-4-auth") == payment
    assert provider.calls() == before
    provider.sandbox.app.inject(Fault("drop_after", method="POST"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.capture(payment.id)
    assert lost.value.payment_id == payment.id
    report = service.reconcile()
    assert [s.status for s in report.settled] == ["succeeded"], report
    provider.agree(payment.id)
    authorized, captured, _ = provider.fetched(payment.id)
    assert captured == authorized == 3000  # captured once, never twice
    provider.settle_webhooks()
    provider.agree(payment.id)


class _Held:
    """A webhook endpoint that keeps what the provider delivers, to hand it to the service later."""

    def __init__(self) -> None:
        self.deliveries: list[tuple[dict[str, str], bytes]] = []
        self._lock = threading.Lock()

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        body = environ["wsgi.input"].read(int(environ.get("CONTENT_LENGTH") or 0))
        headers = {key[5:].replace("_", "-").lower(): str(value) for key, value in environ.items()
                   if key.startswith("HTTP_")}
        headers["content-type"] = environ.get("CONTENT_TYPE", "")
        with self._lock:
            self.deliveries.append((headers, body))
        start_response("200 OK", [("Content-Length", "0")])
        return [b""]

    def hand_over(self, provider: Provider) -> list[str]:
        with self._lock:
            held, self.deliveries = self.deliveries, []
        return [provider.service.receive_webhook(provider.code, headers, body).status for headers, body in held]


@pytest.fixture
def held(provider: Provider) -> Iterator[_Held]:
    """The provider's webhooks held back until the test hands them over."""
    keeper = _Held()
    server = make_server("127.0.0.1", 0, keeper, handler_class=_Quiet)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    provider.sandbox.app.webhook_url = f"http://127.0.0.1:{server.server_address[1]}/"
    yield keeper
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("webhooks", ["before reconcile", "after reconcile"])
def test_a_refund_whose_answer_was_lost_is_counted_once(provider: Provider, held: _Held, webhooks: str) -> None:
    caps = provider.gateway.method(provider.code).capabilities
    if not (caps.refund_partial and caps.refund_multiple):
        pytest.skip(f"{provider.code} cannot refund in parts")
    service = provider.service
    payment = service.sale(provider.code, provider.money("20.00"), source=provider.sandbox.sources["ok"])
    provider.settle_webhooks()
    held.hand_over(provider)
    provider.sandbox.app.inject(Fault("drop_after", method="POST"))
    with pytest.raises(OutcomeUnknown):
        service.refund(payment.id, provider.money("3.00"))
    provider.settle_webhooks()
    if webhooks == "before reconcile":
        held.hand_over(provider)
    report = service.reconcile()
    assert [s.status for s in report.settled] == ["succeeded"] and report.clean, report
    held.hand_over(provider)
    provider.agree(payment.id)  # 3.00 refunded, not 6.00
    refund = service.list_transactions(payment.id)[-1]
    assert (refund.kind, refund.status) == ("refund", "succeeded")
    provider.names_its_operation(refund)
    assert [t.kind for t in service.list_transactions(payment.id)].count("refund") == 1
    payment = service.refund(payment.id, provider.money("17.00"))  # the rest is still refundable
    provider.settle_webhooks()
    held.hand_over(provider)
    provider.agree(payment.id)
    assert payment.refunded == provider.money("20.00")


def _settled_by_reconcile(provider: Provider, held: _Held, payment_id: str, unknown: OutcomeUnknown) -> None:
    """An operation the provider applied and whose answer was spoiled is unknown, never failed;
    reconciliation settles it, and the ledger then agrees with the provider and names its operation."""
    service = provider.service
    txn = service.get_transaction(unknown.transaction_id or "")
    assert (txn.payment_id, txn.status) == (payment_id, "unknown")  # never failed: the provider applied it
    report = service.reconcile()
    assert [s.status for s in report.settled] == ["succeeded"] and report.clean, report
    provider.settle_webhooks()
    assert set(held.hand_over(provider)) <= {"applied", "duplicate"}
    provider.agree(payment_id)
    provider.names_its_operation(service.get_transaction(txn.id))


@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_after_the_provider_acted_is_unknown_then_settled(provider: Provider, held: _Held, status: int) -> None:
    service = provider.service
    payment = service.authorize(provider.code, provider.money("40.00"), source=provider.sandbox.sources["ok"])
    provider.settle_webhooks()
    held.hand_over(provider)
    provider.sandbox.app.inject(Fault("status_after", status=status, method="POST"))
    with pytest.raises(OutcomeUnknown) as unknown:
        service.capture(payment.id)
    _settled_by_reconcile(provider, held, payment.id, unknown.value)


@pytest.mark.parametrize("status", [302, 303])
def test_a_redirect_after_the_provider_acted_is_unknown_then_settled(provider: Provider, held: _Held,
                                                                      status: int) -> None:
    """No payment API answers a redirect, and paywire follows none: one comes from something in
    between after the request reached it, and is no evidence that the provider applied nothing (a
    303 after a POST even says it was processed)."""
    service = provider.service
    payment = service.authorize(provider.code, provider.money("40.00"), source=provider.sandbox.sources["ok"])
    provider.settle_webhooks()
    held.hand_over(provider)
    provider.middlebox.command = "capture"
    provider.middlebox.answer = Response(status, {"Location": "https://proxy.example/done", "Content-Type": "text/html"},
                                         b"<html><body>See Other</body></html>")
    with pytest.raises(OutcomeUnknown) as unknown:
        service.capture(payment.id)
    assert [answer.ok for answer in provider.middlebox.kept] == [True]  # the provider captured
    _settled_by_reconcile(provider, held, payment.id, unknown.value)
