"""What other workers do while an operation is between its pending record and its outcome.

The operation runs in a thread and its request is parked at the emulator's hold point: the
provider has applied it (and emitted its events) and holds its idempotency key, and no answer
has come back. Meanwhile other workers, each on a connection of its own, do what hypothesis
draws: deliver every event emitted so far twice at the same moment, reconcile the payment, call
the same operation with the same key, match stored events. Then the answer comes back (or is
lost). Whatever the interleaving: the provider got the operation once, every event was applied
once, nothing is left deferred or open once everything has settled, and the ledger holds what the
provider holds.
"""

from __future__ import annotations

import itertools
import secrets
import threading
from collections.abc import Callable
from functools import partial
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paywire import Gateway, IdempotencyConflict, Money, OutcomeUnknown, PaywireError
from paywire.ledger import EventStatus, Ledger, TransactionStatus, open_ledger
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import FakePayApp
from tests.ledger.support import in_thread, ledger_totals

S = TransactionStatus
_counter = itertools.count()
PATHS = {"authorize": "/v1/payments$", "sale": "/v1/payments$", "capture": "/captures$",
         "refund": "/refunds$", "void": "/void$"}
ACTIONS = ["deliver", "reconcile", "duplicate", "match"]


class World:
    """One payment on a fresh ledger, and workers (services on connections of their own)."""

    def __init__(self, app: FakePayApp, gateway: Gateway, make_ledger: Callable[[], Ledger]) -> None:
        self.app = app
        app.clear_faults()
        self.ledgers = [make_ledger() for _ in range(3)]
        # wait_timeout=0: a duplicate answers "in progress" at once instead of polling.
        self.workers = [PaymentService(gateway, ledger, margin=0, wait_timeout=0) for ledger in self.ledgers]
        self.service = self.workers[0]
        with app.lock:
            self.outbox_start = len(app.outbox)
        self.receipts: list[list[str]] = []

    def close(self) -> None:
        for ledger in self.ledgers:
            ledger.close()

    def events(self) -> list[tuple[dict[str, str], bytes]]:
        with self.app.lock:
            return self.app.outbox[self.outbox_start:]

    def deliver_twice(self) -> None:
        """Every event so far, delivered to two workers at the same moment."""
        for headers, body in self.events():
            barrier = threading.Barrier(2)
            runs = [in_thread(partial(_deliver, worker, barrier, headers, body)) for worker in self.workers[1:3]]
            for thread, _ in runs:
                thread.join()
            statuses = [out[0] for _, out in runs]
            for status in statuses:
                if isinstance(status, BaseException):
                    raise status
            self.receipts.append(sorted(statuses))


def _deliver(worker: PaymentService, barrier: threading.Barrier, headers: dict[str, str], body: bytes) -> str:
    barrier.wait()
    return worker.receive_webhook("fakepay", headers, body).status


def _operation(service: PaymentService, kind: str, payment_id: str | None, amount: int,
               key: str) -> Callable[[], Any]:
    money = Money(amount, "EUR")
    if kind in ("authorize", "sale"):
        make = service.sale if kind == "sale" else service.authorize
        return lambda: make("fakepay", money, source="tok_ok", idempotency_key=key)
    assert payment_id is not None
    if kind == "capture":
        return lambda: service.capture(payment_id, money, final=False, idempotency_key=key)
    if kind == "refund":
        return lambda: service.refund(payment_id, money, idempotency_key=key)
    return lambda: service.void(payment_id, idempotency_key=key)


def check_interleaving(world: World, kind: str, actions: list[str], lost: bool) -> None:
    app, service = world.app, world.service
    payment_id = None
    if kind != "authorize" and kind != "sale":
        payment = service.authorize("fakepay", Money(10_000, "EUR"), source="tok_ok")
        payment_id = payment.id
        if kind == "refund":
            service.capture(payment_id, Money(6_000, "EUR"), final=False)
    amount = {"authorize": 5_000, "sale": 5_000, "capture": 4_000, "refund": 2_500, "void": 0}[kind]
    key = f"held-{next(_counter)}-{secrets.token_hex(3)}"
    call = _operation(service, kind, payment_id, amount, key)
    app.inject(Fault("hold", path=PATHS[kind], method="POST"))
    if lost:
        app.inject(Fault("drop_after", path=PATHS[kind], method="POST"))
    thread, out = in_thread(call)
    try:
        assert app.wait_until_held(1), "the operation reached the provider"
        for action in actions:
            worker = world.workers[1]
            if action == "deliver":
                world.deliver_twice()
            elif action == "reconcile":
                target = payment_id or _payment_of(world, key)
                if target is not None:
                    report = worker.reconcile(payment_id=target)
                    assert report.errors == (), report.errors
            elif action == "duplicate":
                try:
                    answer = _operation(worker, kind, payment_id, amount, key)()
                except IdempotencyConflict as exc:
                    assert exc.code == "in_progress" and exc.retryable, exc
                else:
                    raise AssertionError(f"a duplicate of an operation in flight was answered {answer!r}")
            else:
                assert worker.match_unmatched().failures == ()
    finally:
        app.release_held()
        thread.join(30)
        app.clear_faults()
    (result,) = out
    if lost:
        assert isinstance(result, OutcomeUnknown), result
    else:
        assert not isinstance(result, BaseException), result
    owner = payment_id or (result.payment_id if isinstance(result, PaywireError) else result.id)
    assert owner is not None

    # Everything settles: every event once more (late copies), reconciliation, stored events matched.
    world.deliver_twice()
    report = service.reconcile(payment_id=owner)
    assert report.errors == () and report.mismatches == (), report
    assert service.match_unmatched().failures == ()

    # Of two copies delivered at once, one is stored and the other is a duplicate; later copies are duplicates.
    assert all(statuses.count("duplicate") >= 1 for statuses in world.receipts), world.receipts
    taken = [status for statuses in world.receipts for status in statuses if status != "duplicate"]
    assert len(taken) == len(world.events()), world.receipts
    assert {e.status for e in service.ledger.list_events()} == {EventStatus.APPLIED}, service.ledger.list_events()
    final = service.get_payment(owner)
    assert final.reference is not None
    assert ledger_totals(final) == app.totals(final.reference), (final, service.list_transactions(owner))
    txns = service.list_transactions(owner)
    assert [t for t in txns if t.open] == [], txns
    assert [t for t in txns if t.origin != "service"] == [], "an event was counted as another operation"
    assert app.count(kind if kind != "sale" else "authorize", final.reference) == 1


def _payment_of(world: World, key: str) -> str | None:
    """The payment a first operation in flight recorded (its pending record is committed)."""
    for payment in world.service.list_payments():
        if any(t.idempotency_key == key for t in world.service.list_transactions(payment.id)):
            return payment.id
    return None


INTERLEAVINGS = dict(
    kind=st.sampled_from(["authorize", "sale", "capture", "refund", "void"]),
    actions=st.lists(st.sampled_from(ACTIONS), max_size=4),
    lost=st.booleans(),
)


def _settings(max_examples: int) -> settings:
    current = settings()
    return settings(current, deadline=None, max_examples=min(current.max_examples, max_examples),
                    suppress_health_check=[*current.suppress_health_check, HealthCheck.too_slow,
                                           HealthCheck.function_scoped_fixture])


def test_in_flight_interleavings(shared_fakepay: tuple[FakePayApp, Gateway],
                                 fresh_ledger_url: Callable[[], str]) -> None:
    app, gateway = shared_fakepay

    @_settings(40)
    @given(**INTERLEAVINGS)
    def run(kind: str, actions: list[str], lost: bool) -> None:
        world = World(app, gateway, partial(open_ledger, fresh_ledger_url()))
        try:
            check_interleaving(world, kind, actions, lost)
        finally:
            world.close()

    run()
