"""Payments waiting for their buyer, through every installed provider that declares buyer action
and ships a sandbox: read from the provider once they have waited `buyer_wait` (by `reconcile()`
and by the Janitor), so a lost webhook leaves none waiting for ever; cancelled by `void()` where
the provider can cancel them, refused before anything is sent where it cannot.

The provider's webhooks are never delivered here: each test is the lost-webhook case.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paywire import Gateway, Money, PaywireError, Plugins, Retry, Subject, UnsupportedOperation
from paywire.command.result import ProviderState
from paywire.ledger import Ledger, PaymentState, open_ledger
from paywire.ledger.model import now
from paywire.serve.janitor import Janitor
from paywire.service import PaymentService
from paywire.testing.emulator import EmulatorServer
from paywire.testing.sandbox import Sandbox, load_sandbox
from tests.ledger.support import step_past


def _waiting_providers() -> list[str]:
    try:
        gateways = Plugins().load_entry_points().gateways()
    except Exception:  # a broken plugin is the plugin tests' business
        return []
    return sorted(code for code, definition in gateways.items()
                  if getattr(definition, "sandbox", None) and definition.capabilities.buyer_action)


PROVIDERS = _waiting_providers()
pytestmark = pytest.mark.skipif(not PROVIDERS, reason="no provider plugin with buyer action and a sandbox is installed")
_WAITING = (ProviderState.ACTION_REQUIRED, ProviderState.PENDING)  # the buyer has not acted, or it is not completed


@attrs.define
class Shop:
    code: str
    sandbox: Sandbox
    gateway: Gateway
    ledger: Ledger

    def service(self, buyer_wait: float) -> PaymentService:
        return PaymentService(self.gateway, self.ledger, buyer_wait=buyer_wait)

    @property
    def currency(self) -> str:
        return "EUR" if self.gateway.method(self.code).definition.accepts("EUR") else "USD"

    def start(self, service: PaymentService, kind: str = "authorize", amount: str = "42.00") -> Any:
        payment = getattr(service, kind)(self.code, Money.of(amount, self.currency),
                                         source=self.sandbox.sources["buyer_action"],
                                         return_url="https://shop.example/return")
        assert payment.state == PaymentState.ACTION_REQUIRED
        return payment

    def calls(self) -> int:
        with self.sandbox.app.lock:
            return len(self.sandbox.app.calls)

    def provider(self, payment_id: str) -> tuple[str, tuple[int, int, int]]:
        payment = self.ledger.get_payment(payment_id)
        assert payment is not None
        result = self.gateway.execute(self.code, "fetch", Subject(reference=payment.reference, amount=payment.amount))
        totals = tuple(m.minor if m is not None else 0 for m in (result.authorized, result.captured, result.refunded))
        if result.state == ProviderState.ACTION_REQUIRED:  # nothing is held yet (a plugin may name the amount asked)
            totals = (0, 0, 0)
        return result.state, totals  # type: ignore[return-value]

    def agree(self, payment_id: str) -> None:
        """The ledger holds what the provider holds, and waits for the buyer exactly while it does."""
        payment = self.ledger.get_payment(payment_id)
        assert payment is not None
        state, totals = self.provider(payment_id)
        assert (payment.authorized.minor, payment.captured.minor, payment.refunded.minor) == totals, (payment, state)
        assert (payment.state == PaymentState.ACTION_REQUIRED) == (state in _WAITING), (payment.state, state)


@pytest.fixture(params=PROVIDERS or ["none"])
def shop(request: pytest.FixtureRequest, ledger_url: str) -> Iterator[Shop]:
    code = str(request.param)
    plugins = Plugins().load_entry_points()
    sandbox = load_sandbox(plugins.gateway(code))
    ledger = open_ledger(ledger_url)
    with EmulatorServer(sandbox.app) as server:
        gateway = Gateway([sandbox.method(code, server.url)], plugins=plugins, retry=Retry.never())
        try:
            yield Shop(code, sandbox, gateway, ledger)
        finally:
            gateway.close()
            ledger.close()


def _sweep_with(how: str) -> Callable[[PaymentService], tuple[str, ...]]:
    """One sweep, by `reconcile()` or by a Janitor pass: the payments it read because they owed a read."""
    if how == "reconcile":
        return lambda service: service.reconcile().caught_up
    return lambda service: Janitor(service).run_pass().caught_up


@pytest.mark.parametrize("how", ["reconcile", "janitor"])
def test_a_waiting_payment_is_read_once_it_has_waited_and_settled_as_the_provider_holds_it(
        shop: Shop, how: str, monkeypatch: pytest.MonkeyPatch) -> None:
    sweep = _sweep_with(how)
    service = shop.service(buyer_wait=3600.0)
    started = now()
    payment = shop.start(service)
    owed = shop.ledger.owed_reads()
    assert set(owed) == {payment.id}
    assert started.timestamp() + 3600 <= owed[payment.id].next_at.timestamp() <= now().timestamp() + 3600
    shop.sandbox.act_as_buyer(payment.action.redirect_url)  # the provider's webhook is lost
    calls = shop.calls()
    assert sweep(service) == ()  # it has not waited an hour: the provider is not asked
    assert shop.calls() == calls
    assert shop.ledger.get_payment(payment.id).state == PaymentState.ACTION_REQUIRED

    impatient = shop.service(buyer_wait=0.2)
    waiting = shop.start(impatient, amount="43.00")
    shop.sandbox.act_as_buyer(waiting.action.redirect_url)
    mark = shop.ledger.owed_reads()[waiting.id].next_at
    # Past its wait on the ledger's clock, which the sweep reads (the database's, on PostgreSQL,
    # whose "now" may trail this host's by a loaded round trip): stepped, never waited out.
    step_past(impatient, mark, monkeypatch)
    assert sweep(impatient) == (waiting.id,)  # the hour-long wait of the other one is not over
    shop.agree(waiting.id)
    if shop.provider(waiting.id)[0] in _WAITING:  # approved but not completed (PayPal): completing it pays it
        assert impatient.complete(waiting.id).authorized == Money.of("43.00", shop.currency)
        shop.agree(waiting.id)
    else:
        assert shop.ledger.get_payment(waiting.id).state == PaymentState.AUTHORIZED
    assert shop.ledger.get_payment(payment.id).state == PaymentState.ACTION_REQUIRED  # not read yet


def test_a_payment_still_waiting_is_left_waiting_and_read_again_later_each_time_later(shop: Shop) -> None:
    service = shop.service(buyer_wait=0.0)
    payment = shop.start(service)
    first = service.reconcile()
    assert first.caught_up == (payment.id,) and first.clean
    shop.agree(payment.id)
    assert shop.ledger.get_payment(payment.id).action == payment.action  # where the buyer is to go is kept
    assert shop.ledger.owed_reads()[payment.id].looks == 1
    patient = shop.service(buyer_wait=600.0)
    assert patient.reconcile(payment_id=payment.id).clean  # a read that finds it waiting: the next one later
    look = shop.ledger.owed_reads()[payment.id]
    assert look.looks == 2 and look.next_at.timestamp() >= now().timestamp() + 600 * 3


def test_void_cancels_a_waiting_payment_where_the_provider_can_and_is_refused_where_it_cannot(shop: Shop) -> None:
    service = shop.service(buyer_wait=3600.0)
    payment = shop.start(service)
    calls = shop.calls()
    if not shop.gateway.method(shop.code).capabilities.cancel_waiting:
        with pytest.raises(UnsupportedOperation) as refused:
            service.void(payment.id, idempotency_key="cancel-1")
        assert refused.value.code == "no_cancel_waiting"
        assert shop.calls() == calls and len(service.list_transactions(payment.id)) == 1  # nothing sent or recorded
        assert shop.ledger.get_payment(payment.id).state == PaymentState.ACTION_REQUIRED
        return
    voided = service.void(payment.id, idempotency_key="cancel-1")
    assert voided.state == PaymentState.VOIDED and voided.authorized.minor == 0 and voided.action is None
    sent = shop.calls()
    assert service.void(payment.id, idempotency_key="cancel-1") == voided  # the stored outcome, nothing sent
    assert shop.calls() == sent
    assert shop.provider(payment.id) == (ProviderState.FAILED, (0, 0, 0))  # cancelled before anything was held
    try:
        shop.sandbox.act_as_buyer(payment.action.redirect_url)  # too late: nothing left to pay
    except OSError:
        pass
    assert service.reconcile(payment_id=payment.id).clean
    shop.agree(payment.id)
    assert shop.ledger.get_payment(payment.id).state == PaymentState.VOIDED


_ONCE = settings(max_examples=12, deadline=None, derandomize=True,
                 suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@_ONCE
@given(kind=st.sampled_from(["authorize", "sale"]), buyer=st.sampled_from(["acts", "walks away"]),
       shop_voids=st.sampled_from([None, "before the buyer", "after the buyer"]))
def test_whatever_the_buyer_and_the_shop_do_after_a_sweep_the_ledger_holds_what_the_provider_holds(
        shop: Shop, kind: str, buyer: str, shop_voids: str | None) -> None:
    service = shop.service(buyer_wait=0.0)
    payment = shop.start(service, kind)
    cancels = shop.gateway.method(shop.code).capabilities.cancel_waiting

    def void() -> None:
        try:
            service.void(payment.id)
        except UnsupportedOperation:
            assert not cancels
        except PaywireError as exc:  # the buyer was first: refused, and the provider read
            assert exc.state_conflict and exc.details.get("reconciled"), exc

    if shop_voids == "before the buyer":
        void()
    if buyer == "acts":
        try:
            shop.sandbox.act_as_buyer(payment.action.redirect_url)
        except OSError:  # a cancelled payment's page may refuse the buyer
            pass
    if shop_voids == "after the buyer":
        void()
    service.reconcile()
    shop.agree(payment.id)
    state = shop.ledger.get_payment(payment.id).state
    if shop_voids and cancels:  # cancelled first, or the buyer paid first and the refusal read that
        assert state in (PaymentState.VOIDED, PaymentState.CAPTURED), state


def test_a_janitor_read_finding_the_payment_still_waiting_counts_once(shop: Shop) -> None:
    """The Janitor's claim counts its read before asking the provider; the read that then finds
    the payment still waiting does not count it again."""
    service = shop.service(buyer_wait=0.0)
    payment = shop.start(service)
    assert Janitor(service).run_pass().caught_up == (payment.id,)
    shop.agree(payment.id)
    assert shop.ledger.owed_reads()[payment.id].looks == 1
