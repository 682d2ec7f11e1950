"""The payment service through every installed provider plugin that ships a sandbox emulator
(Stripe, PayPal, the sample Acme plugin, ...), using nothing but the command contract.

Each check compares the ledger with the provider's own state as its `fetch` command reports it,
and the provider's real signed webhooks are delivered to the service's WSGI endpoint while the
operations run (so they arrive during, before or after the service records each outcome).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, make_server

import attrs
import pytest

from paywire import Declined, Gateway, Money, OutcomeUnknown, Plugins, Retry, Subject
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


@attrs.define
class Provider:
    code: str
    sandbox: Sandbox
    gateway: Gateway
    service: PaymentService
    currency: str

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

    def calls(self) -> int:
        app = self.sandbox.app
        with app.lock:
            return len(app.calls)

    def settle_webhooks(self, timeout: float = 10.0) -> list[tuple[int | None, bytes]]:
        """Wait until the provider stopped delivering (no new delivery for a moment)."""
        app = self.sandbox.app
        deadline, seen, quiet_since = time.monotonic() + timeout, -1, time.monotonic()
        while time.monotonic() < deadline:
            with app.lock:
                count = len(app.webhook_deliveries)
            if count != seen:
                seen, quiet_since = count, time.monotonic()
            elif time.monotonic() - quiet_since > 0.4:
                break
            time.sleep(0.05)
        with app.lock:
            return list(app.webhook_deliveries)


@pytest.fixture(params=PROVIDERS or ["none"])
def provider(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Provider]:
    code = str(request.param)
    plugins = Plugins().load_entry_points()
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
            yield Provider(code, sandbox, gateway, service, currency)
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
