"""The payment service against a real HTTP provider (the FakePay emulator), on both backends."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Callable, Generator, Iterator, Mapping
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import attrs
import pytest

from paywire import (
    Customer,
    Declined,
    IdempotencyConflict,
    InvalidRequest,
    Money,
    Order,
    OutcomeUnknown,
    PaywireError,
    ProviderUnavailable,
    StateError,
    UnsupportedOperation,
    hookimpl,
)
from paywire.ledger import Ledger, PaymentState, TransactionStatus
from paywire.ledger._sql import SQLUnit
from paywire.ledger.model import build, canonical_json
from paywire.service import PaymentService, payments
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import API_KEY, WEBHOOK_SECRET, FakePayApp, make_gateway
from tests.ledger.support import Opaque, only

S = TransactionStatus


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def calls(app: FakePayApp) -> int:
    with app.lock:
        return len(app.calls)


def history(service: PaymentService) -> list[tuple[str, str, str]]:
    return [(t.id, t.status, t.kind) for t in service.list_transactions()]


def test_authorize_capture_refund(service: PaymentService, app: FakePayApp) -> None:
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok", order_id="A-1")
    assert (payment.state, payment.authorized, payment.reference) == (PaymentState.AUTHORIZED, eur("100.00"),
                                                                      payment.references["payment"])
    payment = service.capture(payment.id, eur("30.00"))
    assert (payment.state, payment.captured) == (PaymentState.PARTIALLY_CAPTURED, eur("30.00"))
    payment = service.capture(payment.id, eur("70.00"))
    assert (payment.state, payment.captured) == (PaymentState.CAPTURED, eur("100.00"))
    payment = service.refund(payment.id, eur("25.00"))
    assert (payment.state, payment.refunded) == (PaymentState.PARTIALLY_REFUNDED, eur("25.00"))
    with pytest.raises(StateError, match="no single capture"):  # 75.00 spans both captures
        service.refund(payment.id)
    payment = service.refund(payment.id, eur("45.00"))  # the rest of the second capture
    payment = service.refund(payment.id)  # everything left: the first capture
    assert (payment.state, payment.refunded) == (PaymentState.REFUNDED, eur("100.00"))
    assert app.totals(payment.reference or "") == (10_000, 10_000, 10_000)
    txns = service.list_transactions(payment.id)
    assert [(t.kind, t.status) for t in txns] == [("authorize", "succeeded"), ("capture", "succeeded"),
                                                  ("capture", "succeeded"), ("refund", "succeeded"),
                                                  ("refund", "succeeded"), ("refund", "succeeded")]
    assert len({t.idempotency_key for t in txns}) == 6  # every operation its own derived key
    assert [t.parent_id for t in txns[3:]] == [txns[2].id, txns[2].id, txns[1].id]
    assert txns[5].request["reference"] == txns[1].provider_reference


def test_sale_and_final_partial_capture(service: PaymentService, app: FakePayApp) -> None:
    sale = service.sale("fakepay", eur("12.50"), source="tok_ok")
    assert (sale.state, sale.authorized, sale.captured, sale.capture_closed) == (
        PaymentState.CAPTURED, eur("12.50"), eur("12.50"), True)
    with pytest.raises(StateError, match="sale"):
        service.capture(sale.id, eur("1.00"))
    auth = service.authorize("fakepay", eur("50.00"), source="tok_ok")
    auth = service.capture(auth.id, eur("20.00"), final=True)  # releases the remaining 30.00
    assert (auth.state, auth.captured, auth.capturable) == (PaymentState.CAPTURED, eur("20.00"), eur("0.00"))
    before = calls(app)
    with pytest.raises(StateError, match="final capture"):
        service.capture(auth.id, eur("10.00"))
    assert calls(app) == before


@pytest.mark.parametrize(("operation", "error", "code"), [
    ("capture_too_much", StateError, "capture_exceeds_authorized"),
    ("refund_uncaptured", StateError, "nothing_captured"),
    ("void_after_capture", StateError, "void_after_capture"),
    ("refund_too_much", StateError, "refund_exceeds_captured"),
    ("capture_after_void", StateError, "payment_final"),
    ("wrong_currency", InvalidRequest, "currency_mismatch"),
    ("negative", InvalidRequest, None),
    ("capture_float", InvalidRequest, None),
    ("capture_int", InvalidRequest, None),
    ("refund_float", InvalidRequest, None),
    ("refund_str", InvalidRequest, None),
    ("partial_on_single", UnsupportedOperation, "no_capture_partial"),
    ("second_capture_on_single", UnsupportedOperation, "no_capture_multiple"),
    ("partial_refund_on_single", UnsupportedOperation, "no_refund_partial"),
    ("capture_rest_of_nothing", StateError, "nothing_to_capture"),
    ("refund_rest_of_nothing", StateError, "nothing_to_refund"),
    ("refund_rest_uncaptured", StateError, "nothing_captured"),
])
def test_refused_operations_change_nothing_and_send_nothing(
    service: PaymentService, app: FakePayApp, operation: str, error: type[Exception], code: str | None,
) -> None:
    payment = service.authorize("fakepay", eur("10.00"), source="tok_ok")
    single = service.authorize("fakepay_single", eur("10.00"), source="tok_ok")
    if operation in ("void_after_capture", "refund_too_much", "refund_float", "refund_str"):
        service.capture(payment.id, eur("4.00"))
    if operation == "capture_after_void":
        service.void(payment.id)
    if operation in ("second_capture_on_single", "partial_refund_on_single"):
        service.capture(single.id)
    if operation in ("capture_rest_of_nothing", "refund_rest_of_nothing"):  # all of it, the payment still open
        service.capture(payment.id, eur("10.00"), final=False)
    if operation == "refund_rest_of_nothing":
        service.refund(payment.id, eur("4.00"))
        app.inject(Fault("status", status=500, path="/refunds$"))  # the rest's refund stays in flight, unknown
        with pytest.raises(OutcomeUnknown):
            service.refund(payment.id, eur("6.00"))
    attempts = {
        "capture_too_much": lambda: service.capture(payment.id, eur("10.01")),
        "refund_uncaptured": lambda: service.refund(payment.id, eur("1.00")),
        "void_after_capture": lambda: service.void(payment.id),
        "refund_too_much": lambda: service.refund(payment.id, eur("4.01")),
        "capture_after_void": lambda: service.capture(payment.id, eur("1.00")),
        "wrong_currency": lambda: service.capture(payment.id, Money.of("1.00", "USD")),
        "negative": lambda: service.capture(payment.id, eur("-1.00")),
        "capture_float": lambda: service.capture(payment.id, 5.0),  # type: ignore[arg-type]
        "capture_int": lambda: service.capture(payment.id, 500),  # type: ignore[arg-type]
        "refund_float": lambda: service.refund(payment.id, 1.0),  # type: ignore[arg-type]
        "refund_str": lambda: service.refund(payment.id, "1.00"),  # type: ignore[arg-type]
        "partial_on_single": lambda: service.capture(single.id, eur("5.00")),
        "second_capture_on_single": lambda: service.capture(single.id, eur("1.00")),
        "partial_refund_on_single": lambda: service.refund(single.id, eur("1.00")),
        "capture_rest_of_nothing": lambda: service.capture(payment.id),
        "refund_rest_of_nothing": lambda: service.refund(payment.id),
        "refund_rest_uncaptured": lambda: service.refund(payment.id),
    }
    before_calls, before_history = calls(app), history(service)
    before = (service.get_payment(payment.id), service.get_payment(single.id))
    with pytest.raises(error) as raised:
        attempts[operation]()
    if code:
        assert raised.value.code == code  # type: ignore[attr-defined]
    if "float" in operation or "int" in operation or "str" in operation:
        assert "must be Money" in str(raised.value) and raised.value.param == "amount"  # type: ignore[attr-defined]
    assert calls(app) == before_calls
    assert history(service) == before_history
    assert (service.get_payment(payment.id), service.get_payment(single.id)) == before


# Text no index compresses, longer than any ledger keeps (PostgreSQL's btree rows end at 2704 bytes).
_LONG = hashlib.shake_256(b"no index compresses this").hexdigest(1500)
_BAD_TEXT: dict[str, tuple[str, dict[str, Any]]] = {
    "idempotency_key past 1024 bytes": ("idempotency_key", {"idempotency_key": _LONG}),
    "order_id past 1024 bytes": ("order_id", {"order_id": _LONG}),
    "order_id past 1024 bytes in UTF-8": ("order_id", {"order_id": "é" * 513}),
    "order.id past 1024 bytes": ("order.id", {"order": Order(id=_LONG)}),
    "key with a NUL": ("idempotency_key", {"idempotency_key": "order-1\x00A"}),
    "key with a newline": ("idempotency_key", {"idempotency_key": "order-1\n"}),
    "key with CR LF": ("idempotency_key", {"idempotency_key": "cap\r\n1"}),
    "key not ASCII": ("idempotency_key", {"idempotency_key": "clé-1"}),
    "key an int": ("idempotency_key", {"idempotency_key": 12345}),
    "key bytes": ("idempotency_key", {"idempotency_key": b"abc"}),
    "key empty": ("idempotency_key", {"idempotency_key": ""}),
    "key blank": ("idempotency_key", {"idempotency_key": "   "}),
    "order_id a float": ("order_id", {"order_id": 12.5}),
    "order_id a Decimal": ("order_id", {"order_id": Decimal("12")}),
    "order_id with a NUL": ("order_id", {"order_id": "A-1\x00B"}),
    "order_id a lone surrogate": ("order_id", {"order_id": "A\udc80"}),
    "order.id with a NUL": ("order.id", {"order": Order(id="A-1\x00")}),
    "source with a NUL": ("source", {"source": "tok_ok\x00"}),
    "customer reference with a NUL": ("customer.reference", {"customer": Customer(reference="cus_1\x00")}),
    "return_url with a NUL": ("return_url", {"return_url": "https://shop.example/back\x00"}),
    "return_url an int": ("return_url", {"return_url": 5}),
    "order_id empty": ("order_id", {"order_id": ""}),
    "order.id empty": ("order.id", {"order": Order(id="")}),
    "return_url empty": ("return_url", {"return_url": ""}),
}


@pytest.mark.parametrize("case", list(_BAD_TEXT))
def test_text_a_ledger_or_a_header_cannot_keep_as_given_is_refused_and_changes_nothing(
    service: PaymentService, app: FakePayApp, case: str,
) -> None:
    """PostgreSQL ends text at a NUL (two keys differing after it would be one, and a retry
    under the key as given another request to the provider); a header cannot carry a newline; an
    empty or blank key taken as none would make each retry under it a new operation. Both backends
    refuse the same values, before anything is recorded or sent."""
    param, given = _BAD_TEXT[case]
    with pytest.raises(InvalidRequest) as refused:
        service.authorize("fakepay", eur("10.00"), **{"source": "tok_ok", **given})
    assert refused.value.param == param
    assert service.list_payments() == [] and service.list_transactions() == [] and calls(app) == 0
    payment = service.authorize("fakepay", eur("10.00"), source="tok_ok")
    before = calls(app)
    with pytest.raises(InvalidRequest):
        service.capture(payment.id, eur("1.00"), idempotency_key=given.get("idempotency_key", "cap\n"))
    with pytest.raises(InvalidRequest) as refused:
        service.capture(payment.id + "\x00", eur("1.00"))
    assert refused.value.param == "payment_id"
    assert [t.kind for t in service.list_transactions()] == ["authorize"] and calls(app) == before


def test_a_key_and_an_order_id_of_1024_bytes_are_kept_on_every_ledger(service: PaymentService, app: FakePayApp) -> None:
    """The longest key and order id taken are stored and found again on SQLite and PostgreSQL."""
    key, order_id = _LONG[:1024], "é" * 512
    payment = service.authorize("fakepay", eur("10.00"), source="tok_ok", idempotency_key=key, order_id=order_id)
    assert service.authorize("fakepay", eur("10.00"), source="tok_ok", idempotency_key=key,
                             order_id=order_id).id == payment.id
    assert [p.id for p in service.list_payments(order_id=order_id)] == [payment.id] and calls(app) == 1


_WRONG_TYPES: dict[str, tuple[str, Callable[[PaymentService, str, str], object]]] = {
    "metadata value an int": ("metadata", lambda s, auth, sale: s.authorize(
        "fakepay", eur("1.00"), source="tok_ok", metadata={"a": 5})),  # type: ignore[dict-item]
    "metadata value a dict": ("metadata", lambda s, auth, sale: s.authorize(
        "fakepay", eur("1.00"), source="tok_ok", metadata={"a": {"b": "c"}})),  # type: ignore[dict-item]
    "metadata key an int": ("metadata", lambda s, auth, sale: s.sale(
        "fakepay", eur("1.00"), source="tok_ok", metadata={5: "a"})),  # type: ignore[dict-item]
    "metadata a list": ("metadata", lambda s, auth, sale: s.authorize(
        "fakepay", eur("1.00"), source="tok_ok", metadata=["a"])),  # type: ignore[arg-type]
    "metadata a str": ("metadata", lambda s, auth, sale: s.charge_vaulted(
        "fakepay", "tok_ok", eur("1.00"), metadata="ab")),  # type: ignore[arg-type]
    "metadata value a lone surrogate": ("metadata['a']", lambda s, auth, sale: s.authorize(
        "fakepay", eur("1.00"), source="tok_ok", metadata={"a": "b\udc80"})),
    "refund reason an int": ("reason", lambda s, auth, sale: s.refund(sale, eur("1.00"), reason=5)),  # type: ignore[arg-type]
    "refund reason a lone surrogate": ("reason", lambda s, auth, sale: s.refund(sale, reason="r\udc80")),
    "void reason an int": ("reason", lambda s, auth, sale: s.void(auth, reason=5)),  # type: ignore[arg-type]
    "options a list": ("options", lambda s, auth, sale: s.authorize(
        "fakepay", eur("1.00"), source="tok_ok", options=["a"])),  # type: ignore[arg-type]
    "complete options a str": ("options", lambda s, auth, sale: s.complete(auth, options="ab")),  # type: ignore[arg-type]
    "order a str": ("order", lambda s, auth, sale: s.sale(
        "fakepay", eur("1.00"), source="tok_ok", order="A-1")),  # type: ignore[arg-type]
    "customer a str": ("customer", lambda s, auth, sale: s.charge_vaulted(
        "fakepay", "tok_ok", eur("1.00"), customer="cus_1")),  # type: ignore[arg-type]
    "vault customer a str": ("customer", lambda s, auth, sale: s.vault(
        "fakepay", "tok_ok", customer="cus_1")),  # type: ignore[arg-type]
    "capture final a str": ("final", lambda s, auth, sale: s.capture(auth, eur("1.00"), final="no")),  # type: ignore[arg-type]
    "capture final an int": ("final", lambda s, auth, sale: s.capture(auth, final=0)),  # type: ignore[arg-type]
    "charge_vaulted capture a str": ("capture", lambda s, auth, sale: s.charge_vaulted(
        "fakepay", "tok_ok", eur("1.00"), capture="no")),  # type: ignore[arg-type]
    "charge_vaulted capture an int": ("capture", lambda s, auth, sale: s.charge_vaulted(
        "fakepay", "tok_ok", eur("1.00"), capture=1)),  # type: ignore[arg-type]
}


@pytest.mark.parametrize("case", list(_WRONG_TYPES))
def test_a_value_of_the_wrong_type_is_refused_and_changes_nothing(
    service: PaymentService, app: FakePayApp, case: str,
) -> None:
    """Metadata, options, an order, a customer, a reason, `final` or `capture` of another type than
    the API takes reached the plugin or the service's own reading of it: it failed untyped (a
    TypeError, a ValueError, an AttributeError), or the value was sent as the provider read it
    (`final="no"` a final capture, `capture="no"` a sale taking the money) and its answer recorded."""
    param, attempt = _WRONG_TYPES[case]
    auth = service.authorize("fakepay", eur("10.00"), source="tok_ok")
    sale = service.sale("fakepay", eur("10.00"), source="tok_ok")
    before, sent = (history(service), service.list_payments()), calls(app)
    with pytest.raises(InvalidRequest) as refused:
        attempt(service, auth.id, sale.id)
    assert refused.value.param == param and "nothing was recorded or sent" in str(refused.value)
    assert (history(service), service.list_payments()) == before and calls(app) == sent


def test_a_return_url_with_a_nul_is_refused_before_the_buyer_action_is_sent(
    service: PaymentService, app: FakePayApp,
) -> None:
    """The return URL is kept with the buyer's action: on PostgreSQL, which ends text at a NUL,
    its outcome could not be recorded after the provider made the payment, left pending."""
    with pytest.raises(InvalidRequest) as refused:
        service.authorize("fakepay", eur("10.00"), source="tok_3ds", return_url="https://shop.example/back\x00")
    assert refused.value.param == "return_url" and "nothing was recorded or sent" in str(refused.value)
    assert service.list_payments() == [] and service.list_transactions() == [] and calls(app) == 0


@pytest.mark.parametrize("read", ["get_payment", "get_transaction", "retry", "reconcile", "list_payments",
                                  "list_transactions", "list_transactions_by_status"])
def test_reading_by_an_id_with_a_nul_is_refused_alike_on_both_backends(service: PaymentService, read: str) -> None:
    """PostgreSQL's ledger refused the NUL with a bare ValueError; SQLite's found nothing."""
    reads: dict[str, Callable[[], object]] = {
        "get_payment": lambda: service.get_payment("pay_1\x00"),
        "get_transaction": lambda: service.get_transaction("txn_1\x00"),
        "retry": lambda: service.retry("txn_1\x00"),
        "reconcile": lambda: service.reconcile(payment_id="pay_1\x00"),
        "list_payments": lambda: service.list_payments(order_id="A-1\x00"),
        "list_transactions": lambda: service.list_transactions("pay_1\x00"),
        "list_transactions_by_status": lambda: service.list_transactions(statuses=["succeeded\x00"]),
    }
    with pytest.raises(InvalidRequest) as refused:
        reads[read]()
    assert "NUL" in str(refused.value) and refused.value.param in ("payment_id", "transaction_id", "order_id",
                                                                      "statuses")


@pytest.mark.parametrize(("param", "value"), [("limit", -1), ("offset", -1), ("limit", "5"), ("offset", 1.5),
                                            ("limit", 2**63), ("offset", 2**63)])
def test_listing_payments_with_a_count_that_is_no_count_is_refused_alike_on_both_backends(
    service: PaymentService, param: str, value: object,
) -> None:
    """PostgreSQL refused a negative LIMIT with its own error; SQLite read it as no limit."""
    service.authorize("fakepay", eur("10.00"), source="tok_ok")
    with pytest.raises(InvalidRequest) as refused:
        service.list_payments(**{param: value})  # type: ignore[arg-type]
    assert refused.value.param == param


@pytest.mark.parametrize("param", ["limit", "offset"])
def test_listing_payments_with_the_largest_count_both_backends_take_works(service: PaymentService, param: str) -> None:
    """One above it is refused (a SQLite OverflowError, a PostgreSQL bigint error, untyped)."""
    made = service.authorize("fakepay", eur("10.00"), source="tok_ok")
    listed = service.list_payments(**{param: 2**63 - 1})  # type: ignore[arg-type]
    assert [p.id for p in listed] == ([made.id] if param == "limit" else [])


def test_decline_is_recorded_and_replayed_without_a_call(service: PaymentService, app: FakePayApp) -> None:
    with pytest.raises(Declined) as first:
        service.sale("fakepay", eur("5.00"), source="tok_decline", idempotency_key="order-9-sale")
    error = first.value
    assert error.payment_id and error.transaction_id and error.details["payment_id"] == error.payment_id
    assert error.decline_code == "generic_decline" and not error.retryable
    payment = service.get_payment(error.payment_id)
    assert payment.state == PaymentState.FAILED
    txn = service.get_transaction(error.transaction_id)
    assert (txn.status, txn.error_code, txn.error_type) == (S.FAILED, "card_declined", "Declined")
    before = calls(app)
    with pytest.raises(Declined) as again:
        service.sale("fakepay", eur("5.00"), source="tok_decline", idempotency_key="order-9-sale")
    assert calls(app) == before
    assert (again.value.payment_id, again.value.transaction_id) == (error.payment_id, error.transaction_id)
    assert again.value.code == "card_declined" and again.value.decline_code == "generic_decline"
    with pytest.raises(StateError, match="final"):
        service.capture(payment.id, eur("5.00"))


class NamesNoAction:
    """The authorize answer says the payment waits for its buyer but names no action."""

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Generator[None, Any, Any]:
        response: Any = yield
        if command == "authorize" and response.status == 200 and b"next_action" in response.body:
            data = {**json.loads(response.body), "next_action": None}
            return attrs.evolve(response, body=json.dumps(data).encode(), data=None)
        return response


def test_an_answer_waiting_for_the_buyer_without_an_action_is_recorded_without_one(
        fakepay: tuple[FakePayApp, str], ledger: Ledger) -> None:
    """The payment waits, and no redirect with an empty URL is made up for it."""
    _, url = fakepay
    gateway = make_gateway(url, extra=[NamesNoAction()])
    try:
        service = PaymentService(gateway, ledger)
        payment = service.authorize("fakepay", eur("40.00"), source="tok_3ds")
        assert (payment.state, payment.action) == (PaymentState.ACTION_REQUIRED, None)
        assert service.get_payment(payment.id) == payment
        payment = service.complete(payment.id)
        assert (payment.state, payment.authorized, payment.action) == (PaymentState.AUTHORIZED, eur("40.00"), None)
    finally:
        gateway.close()


def test_buyer_action_then_complete(service: PaymentService, app: FakePayApp) -> None:
    payment = service.authorize("fakepay", eur("40.00"), source="tok_3ds", return_url="https://shop.example/back",
                                order=Order(id="A-3", amount=eur("40.00"), customer=Customer(email="b@example.com")))
    assert payment.state == PaymentState.ACTION_REQUIRED
    assert payment.action is not None and payment.action.redirect_url.startswith("https://fakepay.example/3ds/")
    assert payment.action.return_url == "https://shop.example/back"
    assert payment.authorized == eur("0.00") and payment.order_id == "A-3"
    with pytest.raises(StateError, match="nothing is authorized"):
        service.capture(payment.id, eur("40.00"))
    payment = service.complete(payment.id)
    assert (payment.state, payment.authorized, payment.action) == (PaymentState.AUTHORIZED, eur("40.00"), None)
    payment = service.capture(payment.id)
    assert payment.state == PaymentState.CAPTURED
    assert service.complete(payment.id) == service.get_payment(payment.id)  # done already: nothing sent
    assert [t.status for t in service.list_transactions(payment.id)] == ["action_required", "succeeded", "succeeded"]
    plain = service.authorize("fakepay", eur("5.00"), source="tok_ok")
    with pytest.raises(StateError, match="waiting for buyer action"):
        service.complete(plain.id)  # never waited for the buyer


def test_a_completion_refused_for_a_reason_other_than_a_decline_leaves_the_payment_waiting(
        service: PaymentService, app: FakePayApp) -> None:
    payment = service.authorize("fakepay", eur("15.00"), source="tok_3ds", return_url="https://shop.example/back")
    assert payment.action is not None
    app.not_processed()  # the provider refuses the completion before processing it
    with pytest.raises(ProviderUnavailable) as refused:
        service.complete(payment.id)
    assert refused.value.retryable
    waiting = service.get_payment(payment.id)
    assert (waiting.state, waiting.action) == (PaymentState.ACTION_REQUIRED, payment.action)
    done = service.complete(payment.id)  # the same completion again, under its key
    assert (done.state, done.authorized) == (PaymentState.AUTHORIZED, eur("15.00"))
    completes = [t for t in service.list_transactions(payment.id) if t.kind == "complete"]
    assert [t.status for t in completes] == ["failed", "succeeded"]
    assert completes[0].idempotency_key == completes[1].idempotency_key


def test_complete_hands_what_the_buyers_return_brought_to_the_provider(service: PaymentService,
                                                                      app: FakePayApp) -> None:
    payment = service.authorize("fakepay", eur("12.00"), source="tok_3ds", return_url="https://shop.example/back")
    returned = {"redirect_result": "X6XtfGC3!Y"}
    done = service.complete(payment.id, options=returned, idempotency_key="ret-1")
    assert done.state == PaymentState.AUTHORIZED
    assert app.payments[done.reference or ""]["_returned_with"] == "X6XtfGC3!Y"
    calls = len(app.calls)
    assert service.complete(payment.id, options=returned, idempotency_key="ret-1") == done  # a replay
    assert len(app.calls) == calls
    with pytest.raises(IdempotencyConflict):
        service.complete(payment.id, options={"redirect_result": "other"}, idempotency_key="ret-1")


def test_vault_and_charge_vaulted(service: PaymentService, app: FakePayApp) -> None:
    stored = service.vault("fakepay", "tok_ok", customer=Customer(email="v@example.com"), idempotency_key="vault-1")
    assert stored.status == S.SUCCEEDED and stored.token and stored.provider_reference
    assert stored.payment_id is None
    assert service.vault("fakepay", "tok_ok", customer=Customer(email="v@example.com"),
                         idempotency_key="vault-1").id == stored.id  # replay, no call
    with pytest.raises(IdempotencyConflict):  # the buyer's details are the vault's: without them, another one
        service.vault("fakepay", "tok_ok", idempotency_key="vault-1")
    assert app.count("vault") == 1
    customer = Customer(reference=stored.provider_reference)
    payment = service.charge_vaulted("fakepay", stored.token or "", eur("9.99"), customer=customer)
    assert (payment.state, payment.token, payment.customer_reference) == (
        PaymentState.CAPTURED, stored.token, stored.provider_reference)
    held = service.charge_vaulted("fakepay", stored.token or "", eur("5.00"), capture=False)
    assert held.state == PaymentState.AUTHORIZED
    with pytest.raises(Declined):  # off-session: a card that needs 3-D Secure is declined
        service.charge_vaulted("fakepay", "tok_3ds", eur("5.00"))
    removed = service.unvault("fakepay", stored.token or "")
    assert removed.status == S.SUCCEEDED and app.vaulted == {}


def test_idempotency_replay_and_conflict(service: PaymentService, app: FakePayApp) -> None:
    first = service.authorize("fakepay", eur("20.00"), source="tok_ok", order_id="A-5", idempotency_key="auth-A-5")
    before = calls(app)
    again = service.authorize("fakepay", eur("20.00"), source="tok_ok", order_id="A-5", idempotency_key="auth-A-5")
    assert again == first and calls(app) == before
    with pytest.raises(IdempotencyConflict) as conflict:
        service.authorize("fakepay", eur("21.00"), source="tok_ok", order_id="A-5", idempotency_key="auth-A-5")
    assert conflict.value.payment_id == first.id and calls(app) == before
    captured = service.capture(first.id, eur("5.00"), idempotency_key="cap-A-5")
    assert service.capture(first.id, eur("5.00"), idempotency_key="cap-A-5") == captured
    with pytest.raises(IdempotencyConflict):
        service.capture(first.id, eur("6.00"), idempotency_key="cap-A-5")
    other = service.authorize("fakepay", eur("20.00"), source="tok_ok")
    with pytest.raises(IdempotencyConflict):  # the same key on another payment is another operation
        service.capture(other.id, eur("5.00"), idempotency_key="cap-A-5")
    assert app.count("capture") == 1


def test_the_same_parameters_in_any_kind_of_mapping_are_the_same_operation(service: PaymentService,
                                                                          app: FakePayApp) -> None:
    """A fingerprint reads a mapping by its items: the same call with the same key, its options
    held in another mapping type or given in another order, is a replay, not a conflict."""
    first = service.authorize("fakepay", eur("20.00"), source="tok_ok", idempotency_key="auth-risk",
                              options={"risk": MappingProxyType({"score": 3, "checked": True}), "tags": {"b", "a"}})
    before = calls(app)
    for options in ({"risk": MappingProxyType({"checked": True, "score": 3}), "tags": frozenset("ab")},
                    {"risk": {"checked": True, "score": 3}, "tags": {"a", "b"}},
                    {"risk": Opaque({"score": 3, "checked": True}), "tags": {"a", "b"}}):
        assert service.authorize("fakepay", eur("20.00"), source="tok_ok", idempotency_key="auth-risk",
                                 options=options) == first
    assert calls(app) == before
    for other in ({"risk": Opaque({"score": 4, "checked": True}), "tags": {"a", "b"}},
                  {"risk": {"checked": True, "score": 3}, "tags": {"a"}}):
        with pytest.raises(IdempotencyConflict):
            service.authorize("fakepay", eur("20.00"), source="tok_ok", idempotency_key="auth-risk", options=other)
    # Without a key, a completion whose answer was lost is retried by calling it again.
    payment = service.authorize("fakepay", eur("15.00"), source="tok_3ds", return_url="https://shop.example/back")
    app.inject(Fault("drop_after", path="/complete$"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.complete(payment.id, options={"three_ds": Opaque({"eci": "05", "result": "Y"})})
    done = service.complete(payment.id, options={"three_ds": Opaque({"result": "Y", "eci": "05"})})
    assert done.state == PaymentState.AUTHORIZED
    assert service.get_transaction(lost.value.transaction_id or "").status == S.SUCCEEDED


def test_a_key_recorded_with_an_earlier_fingerprint_still_replays(service: PaymentService, app: FakePayApp,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """A ledger written before fingerprints read other mappings by their items holds their str
    (insertion order, or the object's address): the same call under its key is still a replay."""
    def earlier(kind: str, method: str, scope: str | None, params: Mapping[str, Any]) -> str:
        text = json.dumps({"kind": kind, "method": method, "scope": scope, "params": params}, sort_keys=True,
                          separators=(",", ":"), default=str)
        return hashlib.sha256(text.encode()).hexdigest()

    options = {"risk": MappingProxyType({"score": 3, "checked": True})}
    with monkeypatch.context() as patched:
        patched.setattr(payments, "fingerprint", earlier)
        first = service.authorize("fakepay", eur("20.00"), source="tok_ok", idempotency_key="auth-old",
                                  options=options)
    assert service.get_transaction(only(service.list_transactions(first.id), "authorize").id).fingerprint == \
        earlier("authorize", "fakepay", None, {"amount": 2000, "currency": "EUR", "source": "tok_ok",
                                               "order_id": None, "return_url": None, "vaulted": False,
                                               "customer_reference": None, "customer_id": None, "metadata": {},
                                               "options": options})
    before = calls(app)
    assert service.authorize("fakepay", eur("20.00"), source="tok_ok", idempotency_key="auth-old",
                             options=options) == first
    assert calls(app) == before
    with pytest.raises(IdempotencyConflict):
        service.authorize("fakepay", eur("20.00"), source="tok_ok", idempotency_key="auth-old",
                          options={"risk": {"score": 4, "checked": True}})
    # Without a key: a completion whose answer was lost, recorded before the upgrade, is retried.
    payment = service.authorize("fakepay", eur("15.00"), source="tok_3ds", return_url="https://shop.example/back")
    app.inject(Fault("drop_after", path="/complete$"))
    with monkeypatch.context() as patched, pytest.raises(OutcomeUnknown) as lost:
        patched.setattr(payments, "fingerprint", earlier)
        service.complete(payment.id, options={"three_ds": MappingProxyType({"eci": "05"})})
    done = service.complete(payment.id, options={"three_ds": MappingProxyType({"eci": "05"})})
    assert done.state == PaymentState.AUTHORIZED
    assert service.get_transaction(lost.value.transaction_id or "").status == S.SUCCEEDED


def test_a_key_recorded_with_the_general_encoders_fingerprint_still_replays(service: PaymentService, app: FakePayApp,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """A fingerprint is the hash of the canonical JSON of the whole operation, however it is put
    together: one written as the encoder writes the four keys (as earlier releases did) is this
    release's own, so the same call under its key replays, and another is a conflict."""
    def whole(kind: str, method: str, scope: str | None, params: Mapping[str, Any]) -> str:
        text = canonical_json({"kind": kind, "method": method, "scope": scope, "params": params})
        return hashlib.sha256(text.encode()).hexdigest()

    options = {"risk": MappingProxyType({"score": 3, "checked": True}), "tags": {"b", "a"}}
    with monkeypatch.context() as patched:
        patched.setattr(payments, "fingerprint", whole)
        first = service.authorize("fakepay", eur("20.00"), source="tok_ok", idempotency_key="auth-whole",
                                  options=options, metadata={"order": "A-1"})
    recorded = service.get_transaction(only(service.list_transactions(first.id), "authorize").id).fingerprint
    assert recorded == whole("authorize", "fakepay", None, {
        "amount": 2000, "currency": "EUR", "source": "tok_ok", "order_id": None, "return_url": None, "vaulted": False,
        "customer_reference": None, "customer_id": None, "metadata": {"order": "A-1"}, "options": options})
    before = calls(app)
    assert service.authorize("fakepay", eur("20.00"), source="tok_ok", idempotency_key="auth-whole",
                             options=options, metadata={"order": "A-1"}) == first
    assert calls(app) == before
    with pytest.raises(IdempotencyConflict):
        service.authorize("fakepay", eur("20.00"), source="tok_ok", idempotency_key="auth-whole",
                          options=options, metadata={"order": "A-2"})
    captured = service.capture(first.id, eur("5.00"), idempotency_key="cap-whole")
    with monkeypatch.context() as patched:
        patched.setattr(payments, "fingerprint", whole)
        assert service.capture(first.id, eur("5.00"), idempotency_key="cap-whole") == captured
    assert calls(app) == before + 1


def test_a_first_operations_new_records_hold_every_field(service: PaymentService, app: FakePayApp,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    """The payment and pending transaction a first operation writes are made with every field
    given in its final form, not through `build`: a field the records gain must be given there too."""
    written: list[Any] = []

    def keeping(insert: Callable[[SQLUnit, Any], None]) -> Callable[[SQLUnit, Any], None]:
        def keep(unit: SQLUnit, record: Any) -> None:
            written.append(record)
            insert(unit, record)
        return keep

    for name in ("insert_payment", "insert_transaction"):
        monkeypatch.setattr(SQLUnit, name, keeping(getattr(SQLUnit, name)))
    service.sale("fakepay", eur("20.00"), source="tok_ok", order_id="A-1", metadata={"a": "b"})
    payment, pending = written
    for record in (payment, pending):
        assert set(vars(record)) == {field.name for field in attrs.fields(type(record))}
        assert record == build(type(record), **vars(record))
    assert (payment.state, payment.order_id, pending.status, pending.kind) == ("pending", "A-1", "pending", "sale")


@pytest.mark.parametrize("first", ["answered", "lost"])
def test_the_same_call_with_a_default_amount_and_its_key_is_the_same_operation(
    service: PaymentService, app: FakePayApp, first: str,
) -> None:
    """`capture(id)` and `refund(id)` take what is left; once the key's operation spent it, the
    same call with that key must still be that operation (replayed, or resent after a lost
    answer), not a conflict. An amount the caller gave differently stays a conflict."""
    payment = service.authorize("fakepay", eur("50.00"), source="tok_ok")
    for operate, kind, total in ((service.capture, "capture", "captured"), (service.refund, "refund", "refunded")):
        key = f"{kind}-all"
        if first == "lost":
            app.inject(Fault("drop_after", path=f"/{kind}s$"))
            with pytest.raises(OutcomeUnknown):
                operate(payment.id, idempotency_key=key)
        else:
            operate(payment.id, idempotency_key=key)
        done = operate(payment.id, idempotency_key=key)
        assert getattr(done, total) == eur("50.00") and app.count(kind) == 1
        assert operate(payment.id, idempotency_key=key) == done
        with pytest.raises(IdempotencyConflict):
            operate(payment.id, eur("10.00"), idempotency_key=key)
    # Without a key, calling it again after an unknown outcome is its retry (the derived key).
    third = service.authorize("fakepay", eur("40.00"), source="tok_ok")
    app.inject(Fault("drop_after", path="/captures$"))
    with pytest.raises(OutcomeUnknown) as unknown:
        service.capture(third.id)
    retried = service.capture(third.id)
    assert retried.captured == eur("40.00") and app.count("capture") == 2
    assert service.get_transaction(unknown.value.transaction_id or "").status == S.SUCCEEDED
    # A key first used with an amount the caller gave is not the default's.
    other = service.sale("fakepay", eur("30.00"), source="tok_ok")
    service.refund(other.id, eur("30.00"), idempotency_key="refund-30")
    with pytest.raises(IdempotencyConflict):
        service.refund(other.id, idempotency_key="refund-30")
    assert app.count("refund") == 2


def test_retryable_failure_then_retry_reuses_the_key(service: PaymentService, app: FakePayApp) -> None:
    payment = service.authorize("fakepay", eur("30.00"), source="tok_ok")
    app.not_processed()  # FakePay documents its 503 not_processed as never applied
    with pytest.raises(ProviderUnavailable) as failure:
        service.capture(payment.id, eur("10.00"))
    assert failure.value.retryable and not failure.value.may_have_been_sent
    assert failure.value.payment_id == payment.id
    failed = service.get_transaction(failure.value.transaction_id or "")
    assert failed.status == S.FAILED and failed.retryable
    assert service.get_payment(payment.id).captured == eur("0.00")
    payment = service.capture(payment.id, eur("10.00"))  # the same call again
    assert payment.captured == eur("10.00")
    txns = [t for t in service.list_transactions(payment.id) if t.kind == "capture"]
    assert [(t.status, t.attempt) for t in txns] == [(S.FAILED, 1), (S.SUCCEEDED, 2)]
    assert txns[0].idempotency_key == txns[1].idempotency_key
    assert app.count("capture") == 1


def test_unknown_outcome_then_retry_is_deduplicated_by_the_provider(service: PaymentService, app: FakePayApp) -> None:
    payment = service.authorize("fakepay", eur("30.00"), source="tok_ok")
    app.inject(Fault("drop_after", path="/captures$"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.capture(payment.id, eur("10.00"))
    assert lost.value.payment_id == payment.id and lost.value.may_have_been_sent
    txn = service.get_transaction(lost.value.transaction_id or "")
    assert txn.status == S.UNKNOWN
    assert app.count("capture") == 1  # it did take effect
    # While unknown, the amount counts as spent: no capture may exceed what is left if it succeeded.
    with pytest.raises(StateError, match="being captured"):
        service.capture(payment.id, eur("20.01"))
    payment = service.capture(payment.id, eur("10.00"))  # retried: same key, provider replays
    assert payment.captured == eur("10.00") and app.count("capture") == 1
    assert service.get_transaction(txn.id).status == S.SUCCEEDED  # the same row, now finished
    assert service.retry(txn.id) == payment  # retrying a finished transaction replays it


def test_retry_by_transaction_id_after_lost_answer(service: PaymentService, app: FakePayApp) -> None:
    app.inject(Fault("drop_after", path="/v1/payments$"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.authorize("fakepay", eur("8.00"), source="tok_ok", metadata={"cart": "c-1"})
    payment = service.get_payment(lost.value.payment_id or "")
    assert payment.state == PaymentState.PENDING and payment.reference is None
    with pytest.raises(StateError, match="nothing is authorized"):
        service.capture(payment.id, eur("8.00"))
    resent = service.retry(lost.value.transaction_id or "")
    assert resent.state == PaymentState.AUTHORIZED  # type: ignore[union-attr]
    assert app.count("authorize") == 1


class SendsOrderDetails:
    """A plugin part sending what the ledger does not keep: the order's description, the buyer's
    email (as real plugins send items, addresses and contacts)."""

    @hookimpl
    def build_request(self, command: str, subject: Any) -> Any:
        if command != "authorize":
            return None
        return {"description": subject.order.description if subject.order else None,
                "email": subject.buyer.email if subject.buyer else None}


@pytest.mark.parametrize("fault", ["lost answer", "not processed"])
@pytest.mark.parametrize("given", ["a masked value", "order details", "buyer details"])
def test_retry_by_transaction_id_never_sends_another_request_under_the_key(
    fakepay: tuple[FakePayApp, str], ledger: Ledger, fault: str, given: str,
) -> None:
    """The ledger keeps a request redacted (here a metadata key naming a token is masked) and
    not whole (the order's and buyer's details are not kept): resending what it kept under the
    key would be another request, refused by the provider as a reused key (the first may have
    taken effect), or applied without what the caller gave. `retry()` refuses, sending nothing;
    the same call with its key settles it."""
    app, url = fakepay
    gateway = make_gateway(url, extra=[SendsOrderDetails()])
    service = PaymentService(gateway, ledger)
    call: dict[str, Any] = {"source": "tok_ok"}
    if given == "a masked value":
        call["metadata"] = {"cart_token": "ct-1"}
    elif given == "order details":
        call["order"] = Order(id="A-9", amount=eur("8.00"), description="two mugs")
    else:
        call["customer"] = Customer(reference="cus_1", email="buyer@example.com")
    try:
        if fault == "lost answer":
            app.inject(Fault("drop_after", path="/v1/payments$"))
            expected: type[Exception] = OutcomeUnknown
        else:
            app.not_processed()
            expected = ProviderUnavailable
        with pytest.raises(expected) as first:
            service.authorize("fakepay", eur("8.00"), **call)
        txn = service.get_transaction(first.value.transaction_id or "")  # type: ignore[attr-defined]
        applied = app.count("authorize")
        sent = calls(app)
        with pytest.raises(InvalidRequest, match="not stored whole") as refused:
            service.retry(txn.id)
        assert refused.value.code == "request_not_stored" and refused.value.transaction_id == txn.id
        assert calls(app) == sent and service.get_transaction(txn.id) == txn  # nothing sent or changed
        # nor by the resend that finishes what a provider holds unfinished: none was found so
        with pytest.raises(PaywireError) as unasked:
            service.resend_unfinished(txn.id)
        if fault == "lost answer":  # open: refused; a failed one is answered as recorded
            assert getattr(unasked.value, "code", None) == "not_unfinished"
        assert calls(app) == sent and service.get_transaction(txn.id) == txn
        payment = service.authorize("fakepay", eur("8.00"), idempotency_key=txn.idempotency_key, **call)
        assert payment.id == txn.payment_id and payment.state == PaymentState.AUTHORIZED
        assert app.count("authorize") == 1 and applied in (0, 1)
    finally:
        gateway.close()


def test_ledger_holds_no_secrets(service: PaymentService, app: FakePayApp, ledger: Ledger, tmp_path: Path) -> None:
    payment = service.sale("fakepay", eur("3.00"), source="tok_ok", metadata={"api_key": "sk_live_abcdef123456"})
    app.not_processed()
    with pytest.raises(ProviderUnavailable):
        service.refund(payment.id, eur("1.00"))
    with pytest.raises(InvalidRequest, match="card number"):
        service.sale("fakepay", eur("3.00"), source="tok_ok", metadata={"note": "4242 4242 4242 4242"})
    dump = repr([(t.request, t.response, t.error_message) for t in service.list_transactions()])
    for secret in (API_KEY, WEBHOOK_SECRET, "sk_live_abcdef123456", "4242 4242 4242 4242", "4242424242424242"):
        assert secret not in dump
    if hasattr(ledger, "path"):
        raw = b"".join(p.read_bytes() for p in ledger.path.parent.glob("ledger.db*"))
        for secret in (API_KEY, WEBHOOK_SECRET, "sk_live_abcdef123456", "4242424242424242"):
            assert secret.encode() not in raw


def test_finished_history_never_changes(service: PaymentService) -> None:
    payment = service.authorize("fakepay", eur("10.00"), source="tok_ok")
    snapshot = service.list_transactions()
    service.capture(payment.id, eur("4.00"))
    service.refund(payment.id, eur("1.00"))
    service.capture(payment.id, eur("6.00"))
    after = service.list_transactions()
    assert after[: len(snapshot)] == snapshot and len(after) == len(snapshot) + 3


def test_unknown_payment_and_method(service: PaymentService) -> None:
    with pytest.raises(InvalidRequest, match="no payment"):
        service.capture("pay_missing", eur("1.00"))
    with pytest.raises(Exception, match="unknown payment method"):
        service.authorize("nope", eur("1.00"), source="tok_ok")
    assert service.list_transactions() == []


class CaptureDuringSend:
    """While the first capture is at the provider, runs `during` (another capture of the same
    payment, start to finish) before letting the first one's answer through."""

    def __init__(self) -> None:
        self.during: Callable[[], None] | None = None

    @hookimpl(wrapper=True)
    def send_transfer(self, command: str) -> Iterator[None]:
        response: Any = yield
        during, self.during = self.during, None
        if command == "capture" and during is not None:
            during()
        return response


@pytest.mark.parametrize("where", ["same thread", "another thread", "another ledger connection"])
def test_an_outcome_counts_what_other_operations_recorded_while_it_was_sent(
    fakepay: tuple[FakePayApp, str], ledger: Ledger, make_ledger: Callable[[], Ledger], where: str,
) -> None:
    """The outcome unit must see what was committed after the pending unit (the ledger may vouch
    that nothing was, and only then be trusted): a capture recorded meanwhile is not lost from
    the payment's total."""
    app, url = fakepay
    hook = CaptureDuringSend()
    gateway = make_gateway(url, extra=[hook])
    service = PaymentService(gateway, ledger)
    other = PaymentService(gateway, make_ledger()) if where == "another ledger connection" else service
    try:
        payment = service.authorize("fakepay", eur("60.00"), source="tok_ok")
        done: list[Any] = []

        def second() -> None:
            done.append(other.capture(payment.id, eur("15.00"), final=False))

        if where == "another thread":
            def run() -> None:
                worker = threading.Thread(target=second)
                worker.start()
                worker.join()
            hook.during = run
        else:
            hook.during = second
        first = service.capture(payment.id, eur("20.00"), final=False)
        assert done and done[0].captured == eur("15.00")
        assert first.captured == eur("35.00") == service.get_payment(payment.id).captured
        assert first.state == PaymentState.PARTIALLY_CAPTURED
        assert app.totals(first.reference or "")[1] == 3500
    finally:
        if other is not service:
            other.ledger.close()
        gateway.close()


def test_a_stored_fingerprint_stays_what_earlier_releases_wrote(service: PaymentService) -> None:
    """A retry under its key after an upgrade is compared with the fingerprint an earlier release
    stored: the same request must hash to the very same value, whatever the code computing it."""
    payment = service.authorize("fakepay", eur("19.99"), source="tok_ok", order_id="A-7", idempotency_key="pin-1",
                                metadata={"z": "1", "a": "2"}, options={"capture_method": "manual"})
    (txn,) = service.list_transactions(payment.id)
    assert txn.fingerprint == "1731bf73678e7f4aa366cdd80a9436f1b89fe2b857a617f674e8bc5031705b73"
