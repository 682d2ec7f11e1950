"""Two workers on one PostgreSQL ledger, the first one's request held at the provider (applied
there, its answer not yet back) while the second acts: whatever the second may do is decided by
the ledger alone, before anything is sent. No sleeps: the hold is released only once the second
call has returned, so each interleaving is forced. Afterwards the ledger holds what the provider
holds, and the provider never had to refuse anything."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any

import pytest

from paywire import IdempotencyConflict, Money, OutcomeUnknown, PaywireError
from paywire.errors import StateError
from paywire.ledger import Ledger
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import FakePayApp, make_gateway
from tests.ledger.support import in_thread, ledger_totals

pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'paywire[postgresql]')")


@pytest.fixture(params=[pytest.param("postgres", marks=pytest.mark.postgres)])
def backend(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture
def workers(fakepay: tuple[FakePayApp, str], make_ledger: Callable[[], Ledger]) -> Iterator[list[PaymentService]]:
    gateway = make_gateway(fakepay[1])
    yield [PaymentService(gateway, make_ledger(), wait_timeout=0) for _ in range(2)]
    gateway.close()


def eur(minor: int) -> Money:
    return Money(minor, "EUR")


def held(app: FakePayApp, path: str, call: Callable[[], Any], second: Callable[[], Any]) -> tuple[Any, Any]:
    """`call` in a thread until its request is held at the provider, then `second` here; then the
    first is released. Each one's result or paywire error."""
    app.inject(Fault("hold", path=path, method="POST"))
    thread, out = in_thread(call)
    try:
        assert app.wait_until_held(1)
        try:
            second_result: Any = second()
        except PaywireError as exc:
            second_result = exc
    finally:
        app.release_held()
        thread.join(30)
    return out[0], second_result


def settled(service: PaymentService, app: FakePayApp, payment_id: str) -> None:
    payment = service.get_payment(payment_id)
    assert ledger_totals(payment) == app.totals(payment.reference or "")
    assert app.refusals == []


def test_a_whole_capture_while_another_whole_capture_is_held_is_refused_before_sending(workers: list[PaymentService], app: FakePayApp) -> None:
    a, b = workers
    p = a.authorize("fakepay", eur(10_000), source="tok_ok")
    first, second = held(app, "/captures$", lambda: a.capture(p.id, eur(10_000)), lambda: b.capture(p.id, eur(10_000)))
    assert not isinstance(first, BaseException), first
    assert isinstance(second, StateError), second
    assert app.count("capture") == 1
    settled(a, app, p.id)


def test_a_void_while_a_capture_is_held_is_refused_before_sending(workers: list[PaymentService], app: FakePayApp) -> None:
    a, b = workers
    p = a.authorize("fakepay", eur(10_000), source="tok_ok")
    first, second = held(app, "/captures$", lambda: a.capture(p.id, eur(4_000), final=False), lambda: b.void(p.id))
    assert not isinstance(first, BaseException), first
    assert isinstance(second, StateError), second
    settled(a, app, p.id)


def test_a_capture_while_a_void_is_held_is_refused_before_sending(workers: list[PaymentService], app: FakePayApp) -> None:
    a, b = workers
    p = a.authorize("fakepay", eur(10_000), source="tok_ok")
    first, second = held(app, "/void$", lambda: a.void(p.id), lambda: b.capture(p.id, eur(4_000)))
    assert not isinstance(first, BaseException), first
    assert isinstance(second, StateError), second
    settled(a, app, p.id)


def test_a_refund_beyond_what_a_held_refund_leaves_is_refused_before_sending(workers: list[PaymentService], app: FakePayApp) -> None:
    a, b = workers
    p = a.authorize("fakepay", eur(10_000), source="tok_ok")
    a.capture(p.id, eur(6_000), final=False)
    first, second = held(app, "/refunds$", lambda: a.refund(p.id, eur(4_000)), lambda: b.refund(p.id, eur(3_000)))
    assert not isinstance(first, BaseException), first
    assert isinstance(second, StateError), second
    assert app.count("refund") == 1
    settled(a, app, p.id)


@pytest.mark.parametrize("other", ["amount", "refund", "void", "authorize"])
def test_a_held_operations_key_used_for_another_operation_is_a_conflict_and_not_sent(workers: list[PaymentService], app: FakePayApp, other: str) -> None:
    a, b = workers
    p = a.authorize("fakepay", eur(10_000), source="tok_ok")
    a.capture(p.id, eur(1_000), final=False)
    seconds = {
        "amount": lambda: b.capture(p.id, eur(2_000), final=False, idempotency_key="k1"),
        "refund": lambda: b.refund(p.id, eur(500), idempotency_key="k1"),
        "void": lambda: b.void(p.id, idempotency_key="k1"),
        "authorize": lambda: b.authorize("fakepay", eur(3_000), source="tok_ok", idempotency_key="k1"),
    }
    first, second = held(app, "/captures$", lambda: a.capture(p.id, eur(3_000), final=False, idempotency_key="k1"),
                         seconds[other])
    assert not isinstance(first, BaseException), first
    assert isinstance(second, IdempotencyConflict), second
    assert app.count("capture") == 2 and app.count("refund") == 0 and app.count("authorize") == 1
    settled(a, app, p.id)


def test_a_refund_while_the_only_capture_is_held_is_refused_before_sending(workers: list[PaymentService], app: FakePayApp) -> None:
    a, b = workers
    p = a.authorize("fakepay", eur(10_000), source="tok_ok")
    first, second = held(app, "/captures$", lambda: a.capture(p.id, eur(6_000), final=False),
                         lambda: b.refund(p.id, eur(1_000)))
    assert not isinstance(first, BaseException), first
    assert isinstance(second, StateError), second
    assert app.count("refund") == 0
    settled(a, app, p.id)


def test_a_held_captures_key_used_on_another_payment_is_a_conflict_and_not_sent(workers: list[PaymentService], app: FakePayApp) -> None:
    a, b = workers
    p = a.authorize("fakepay", eur(10_000), source="tok_ok")
    q = a.authorize("fakepay", eur(10_000), source="tok_ok")
    first, second = held(app, "/captures$", lambda: a.capture(p.id, eur(3_000), final=False, idempotency_key="k2"),
                         lambda: b.capture(q.id, eur(3_000), final=False, idempotency_key="k2"))
    assert not isinstance(first, BaseException), first
    assert isinstance(second, IdempotencyConflict), second
    assert app.count("capture") == 1
    settled(a, app, p.id)
    settled(a, app, q.id)


def test_retry_of_a_capture_held_at_the_provider_sends_nothing_more(workers: list[PaymentService], app: FakePayApp) -> None:
    a, b = workers
    p = a.authorize("fakepay", eur(10_000), source="tok_ok")

    def second() -> Any:
        [txn] = [t for t in b.list_transactions(p.id) if t.kind == "capture"]
        return b.retry(txn.id)

    first, second_result = held(app, "/captures$", lambda: a.capture(p.id, eur(3_000), final=False), second)
    assert not isinstance(first, BaseException), first
    assert isinstance(second_result, PaywireError), second_result
    assert app.count("capture") == 1
    with app.lock:
        assert len([c for c in app.calls if c[1].endswith("/captures")]) == 1
    settled(a, app, p.id)


def test_a_held_authorizations_key_used_for_a_sale_is_a_conflict_and_not_sent(workers: list[PaymentService], app: FakePayApp) -> None:
    a, b = workers
    first, second = held(app, "/v1/payments$",
                         lambda: a.authorize("fakepay", eur(3_000), source="tok_ok", idempotency_key="k3"),
                         lambda: b.sale("fakepay", eur(3_000), source="tok_ok", idempotency_key="k3"))
    assert not isinstance(first, BaseException), first
    assert isinstance(second, IdempotencyConflict), second
    with app.lock:
        assert len([c for c in app.calls if c[1] == "/v1/payments"]) == 1


def test_an_unknown_whole_capture_keeps_its_amount_from_other_workers(workers: list[PaymentService],
                                                                     app: FakePayApp) -> None:
    a, b = workers
    p = a.authorize("fakepay", eur(10_000), source="tok_ok")
    app.inject(Fault("drop_after", path="/captures$", method="POST"))
    with pytest.raises(OutcomeUnknown):
        a.capture(p.id, eur(10_000))
    with pytest.raises(StateError):
        b.capture(p.id, eur(1))
    with pytest.raises(StateError):
        b.void(p.id)
    assert app.count("capture") == 1
    a.reconcile(payment_id=p.id)
    settled(a, app, p.id)


@pytest.mark.parametrize("first_kind", ["authorize", "sale"])
@pytest.mark.parametrize("other", ["capture", "void", "refund"])
def test_a_follow_up_while_the_first_operation_is_held_is_refused_before_sending(
        workers: list[PaymentService], app: FakePayApp, first_kind: str, other: str) -> None:
    a, b = workers
    key = f"first-{first_kind}-{other}"
    make = a.sale if first_kind == "sale" else a.authorize

    def follow_up() -> Any:
        [payment_id] = [p.id for p in b.list_payments()
                        if any(t.idempotency_key == key for t in b.list_transactions(p.id))]
        if other == "void":
            return b.void(payment_id)
        if other == "refund":
            return b.refund(payment_id, eur(1_000))
        return b.capture(payment_id, eur(1_000))

    first, second = held(app, "/v1/payments$",
                         lambda: make("fakepay", eur(5_000), source="tok_ok", idempotency_key=key), follow_up)
    assert not isinstance(first, BaseException), first
    assert isinstance(second, StateError), second
    with app.lock:
        assert [c for c in app.calls if c[1] != "/v1/payments"] == []
    settled(a, app, first.id)


def test_a_capture_while_a_final_capture_is_held_is_refused_before_sending(workers: list[PaymentService],
                                                                          app: FakePayApp) -> None:
    a, b = workers
    p = a.authorize("fakepay", eur(10_000), source="tok_ok")
    first, second = held(app, "/captures$", lambda: a.capture(p.id, eur(4_000), final=True),
                         lambda: b.capture(p.id, eur(1_000), final=False))
    assert not isinstance(first, BaseException), first
    assert isinstance(second, StateError) and second.code == "capture_closed", second
    assert app.count("capture") == 1
    settled(a, app, p.id)
