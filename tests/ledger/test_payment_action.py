"""`pay`: the method's configured payment action decides what placing a payment does, on both backends."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from paywire import Customer, Gateway, IdempotencyConflict, MethodConfig, Money, Order, UnsupportedOperation
from paywire.http.retry import Retry
from paywire.ledger import Ledger, PaymentState, TransactionStatus
from paywire.plugins import Plugins
from paywire.service import PaymentService
from tests.ledger.fakepay import CREDENTIALS, FAKEPAY, FakePayApp, FakePayPlugin

# "authonly": FakePay's protocol under a provider that declares no sales.
AUTH_ONLY = FAKEPAY._replace(code="authonly", capabilities=FAKEPAY.capabilities._replace(sale=False))


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


@pytest.fixture
def service(fakepay: tuple[FakePayApp, str], ledger: Ledger) -> Iterator[PaymentService]:
    plugins = Plugins()
    plugins.register(FakePayPlugin(), "fakepay")
    plugins.register(FakePayPlugin(AUTH_ONLY), "authonly")
    common = {"base_url": fakepay[1], "credentials": CREDENTIALS}
    gateway = Gateway([
        MethodConfig(code="later", provider="fakepay", **common),  # payment_action defaults to "authorize"
        MethodConfig(code="now", provider="fakepay", payment_action="authorize_capture", **common),
        MethodConfig(code="no_sale", provider="fakepay", payment_action="authorize_capture",
                     capabilities={"sale": False}, **common),
        MethodConfig(code="auth_only", provider="authonly", payment_action="authorize_capture", **common),
        MethodConfig(code="auth_only_later", provider="authonly", **common),
    ], plugins=plugins, retry=Retry.never())
    yield PaymentService(gateway, ledger)
    gateway.close()


def test_the_default_action_authorizes_to_capture_later(service: PaymentService, app: FakePayApp) -> None:
    payment = service.pay("later", eur("20.00"), source="tok_ok", order_id="A-1")
    assert (payment.state, payment.flow, payment.authorized, payment.captured) == (
        PaymentState.AUTHORIZED, "authorize", eur("20.00"), eur("0.00"))
    assert [t.kind for t in service.list_transactions(payment.id)] == ["authorize"]
    assert app.totals(payment.reference or "")[1] == 0  # nothing captured at the provider
    assert service.capture(payment.id).captured == eur("20.00")


def test_authorize_capture_sells(service: PaymentService, app: FakePayApp) -> None:
    payment = service.pay("now", eur("12.50"), source="tok_ok")
    assert (payment.state, payment.flow, payment.captured) == (PaymentState.CAPTURED, "sale", eur("12.50"))
    assert [(t.kind, t.status) for t in service.list_transactions(payment.id)] == [("sale", TransactionStatus.SUCCEEDED)]
    assert app.totals(payment.reference or "")[:2] == (1250, 1250)


def test_a_retry_under_the_key_replays_and_is_the_same_as_naming_the_operation(
        service: PaymentService, app: FakePayApp) -> None:
    first = service.pay("now", eur("9.00"), source="tok_ok", idempotency_key="order-9")
    sent = len(app.calls)
    again = service.pay("now", eur("9.00"), source="tok_ok", idempotency_key="order-9")
    assert (again.id, again.state) == (first.id, PaymentState.CAPTURED)
    assert service.sale("now", eur("9.00"), source="tok_ok", idempotency_key="order-9").id == first.id
    assert len(app.calls) == sent  # replayed from the ledger: nothing sent again
    with pytest.raises(IdempotencyConflict):  # the same key as the other action is another operation
        service.authorize("now", eur("9.00"), source="tok_ok", idempotency_key="order-9")
    assert len(service.list_payments()) == 1


@pytest.mark.parametrize("method", ["no_sale", "auth_only"])
def test_an_action_the_method_cannot_make_is_refused_before_anything_is_recorded_or_sent(
        service: PaymentService, app: FakePayApp, method: str) -> None:
    with pytest.raises(UnsupportedOperation, match="payment_action = 'authorize_capture'") as refused:
        service.pay(method, eur("5.00"), source="tok_ok", idempotency_key="k-1")
    assert refused.value.code == "no_sale" and "nothing was recorded or sent" in refused.value.message
    assert (app.calls, service.list_payments(), service.list_transactions()) == ([], [], [])
    # The method stays usable as what it can do: explicit operations, and `pay` where the action fits.
    assert service.authorize(method, eur("5.00"), source="tok_ok").state == PaymentState.AUTHORIZED
    assert service.pay("auth_only_later", eur("5.00"), source="tok_ok").state == PaymentState.AUTHORIZED


def test_pay_takes_what_authorize_takes(service: PaymentService) -> None:
    order = Order(id="A-7", customer=Customer(id="c-1"))
    payment = service.pay("later", eur("3.00"), source="tok_ok", order=order, return_url="https://shop.test/back",
                          metadata={"cart": "7"}, options={}, idempotency_key="order-A-7")
    assert payment.order_id == "A-7"
    (txn,) = service.list_transactions(payment.id)
    assert (txn.idempotency_key, txn.request["metadata"]) == ("order-A-7", {"cart": "7"})
