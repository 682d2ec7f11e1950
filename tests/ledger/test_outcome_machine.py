"""A hypothesis state machine of the outcome model: payments, captures, refunds, voids and retries
under injected faults (answer dropped after the effect, a 5xx after the effect, an answer later
than the read timeout, a 5xx before it, a documented not-applied 503), operations the provider
accepts and decides later, webhooks delivered in any order and more than once, and reconcile runs.

After every step the ledger never claims more than the provider holds (authorized, captured and
refunded, per payment). At the end, once every late request has landed, every accepted operation
is decided, and reconcile has run (after the longest life of whatever the provider does not hold):
nothing is open, the ledger equals the provider for every payment, every settled capture and
refund carries the provider's id of that very operation, and no event was counted as a second one.
"""

from __future__ import annotations

import itertools
import os
import secrets
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from paywire import Gateway, Money, PaywireError
from paywire.ledger import Ledger, Payment, SQLiteLedger, TransactionStatus, open_ledger
from paywire.service import PaymentService
from paywire.testing.emulator import EmulatorServer, Fault
from tests.ledger.fakepay import FakePayApp, make_gateway
from tests.ledger.support import Sent, ledger_totals, wait_out_life, wait_until_landed

S = TransactionStatus
READ = 0.2  # the client gives up on an answer after this long...
LATENCY = 0.35  # ...while a slow provider applies the request after this long
CONNECT = 0.25
WINDOW = 0.75  # FakePay's declared outcome window: a slow request (0.35 s) lands well within its life (1.2 s)
FAULTS = ["none", "none", "drop_after", "status_after", "latency", "status", "not_processed"]
PATHS = {"open": "/v1/payments$", "capture": "/captures$", "refund": "/refunds$", "void": "/void$"}
_counter = itertools.count()


class Gateways(NamedTuple):
    hurried: Gateway  # the operations': an answer later than READ is lost by design
    patient: Gateway  # reconcile's
    sent: Sent  # what both sent


class OutcomeMachine(RuleBasedStateMachine):
    payments = Bundle("payments")

    def __init__(self, app: FakePayApp, gateways: Gateways, make_ledger: Callable[[], Ledger]) -> None:
        super().__init__()
        self.app, self.sent = app, gateways.sent
        app.clear_faults()
        self.ledger = make_ledger()
        self.service = PaymentService(gateways.hurried, self.ledger, margin=0)
        # Reconcile's reads must be answered (a read it could not make is an error the machine
        # asserts against): they wait as long as a loaded machine may take.
        self.reconciler = PaymentService(gateways.patient, self.ledger, margin=0)
        self.ids: list[str] = []
        with app.lock:
            self.outbox_start = len(app.outbox)

    # -- helpers -----------------------------------------------------------------------------------
    def _run(self, fault: str, status: int, path: str, call: Callable[[], Any]) -> PaywireError | None:
        """Run one operation with `fault` injected into its request; the error it raised, if any."""
        if fault == "not_processed":
            self.app.not_processed()
        elif fault == "latency":
            self.app.inject(Fault("latency", seconds=LATENCY, path=path, method="POST"))
        elif fault == "status":
            self.app.inject(Fault("status", status=status, path=path, method="POST"))
        elif fault != "none":
            self.app.inject(Fault(fault, status=status, path=path, method="POST"))
        try:
            call()
        except PaywireError as error:  # refusals, declines, failures and unknown outcomes alike
            return error
        finally:
            self.app.clear_faults()  # one that was not used (refused first) must not hit a later request
        return None

    def _events(self) -> list[tuple[dict[str, str], bytes]]:
        with self.app.lock:
            return self.app.outbox[self.outbox_start:]

    def _provider_id(self, payment: Payment) -> str | None:
        if payment.reference:
            return payment.reference
        first = min((t for t in self.service.list_transactions(payment.id) if t.kind in ("authorize", "sale")),
                    key=lambda t: t.created_at)
        with self.app.lock:
            return self.app.by_key.get(first.idempotency_key)

    def _provider_totals(self, payment: Payment) -> tuple[int, int, int]:
        reference = self._provider_id(payment)
        return self.app.totals(reference) if reference else (0, 0, 0)

    # -- operations ----------------------------------------------------------------------------------
    @initialize(target=payments, sale=st.booleans(), amount=st.integers(100, 10_000),
                source=st.sampled_from(["tok_ok", "tok_async"]))
    def first_payment(self, sale: bool, amount: int, source: str) -> Any:
        """Every run starts with a payment the provider holds (answered at once or not)."""
        return self.open_payment(sale, amount, source, "none", 500)

    @initialize(target=payments, sale=st.booleans(), amount=st.integers(100, 10_000),
                source=st.sampled_from(["tok_ok", "tok_ok", "tok_async", "tok_pending"]),
                fault=st.sampled_from(FAULTS), status=st.sampled_from([500, 502, 504]))
    def second_payment(self, sale: bool, amount: int, source: str, fault: str, status: int) -> Any:
        return self.open_payment(sale, amount, source, fault, status)

    @rule(target=payments, sale=st.booleans(), amount=st.integers(100, 10_000),
          source=st.sampled_from(["tok_ok", "tok_ok", "tok_async", "tok_pending"]),
          fault=st.sampled_from(FAULTS), status=st.sampled_from([500, 502, 504]))
    def open_payment(self, sale: bool, amount: int, source: str, fault: str, status: int) -> Any:
        make = self.service.sale if sale else self.service.authorize
        key = f"machine-{next(_counter)}-{secrets.token_hex(3)}"
        result: list[Payment] = []
        error = self._run(fault, status, PATHS["open"],
                          lambda: result.append(make("fakepay", Money(amount, "EUR"), source=source,
                                                     idempotency_key=key)))
        payment_id = result[0].id if result else (error.payment_id if error else None)
        if payment_id is None:
            return multiple()
        self.ids.append(payment_id)
        return payment_id

    @rule(payment=payments, share=st.floats(0.05, 1.0), final=st.booleans(), fault=st.sampled_from(FAULTS),
          status=st.sampled_from([500, 502, 504]))
    def capture(self, payment: str, share: float, final: bool, fault: str, status: int) -> None:
        current = self.service.get_payment(payment)
        amount = max(1, int((current.authorized - current.captured).minor * share))
        self._run(fault, status, PATHS["capture"],
                  lambda: self.service.capture(payment, Money(amount, "EUR"), final=final))

    @rule(payment=payments, share=st.floats(0.05, 1.0), fault=st.sampled_from(FAULTS),
          status=st.sampled_from([500, 502, 504]))
    def refund(self, payment: str, share: float, fault: str, status: int) -> None:
        current = self.service.get_payment(payment)
        amount = max(1, int((current.captured - current.refunded).minor * share))
        self._run(fault, status, PATHS["refund"], lambda: self.service.refund(payment, Money(amount, "EUR")))

    @rule(payment=payments, fault=st.sampled_from(FAULTS), status=st.sampled_from([500, 502, 504]))
    def void(self, payment: str, fault: str, status: int) -> None:
        self._run(fault, status, PATHS["void"], lambda: self.service.void(payment))

    @rule(payment=payments)
    def retry(self, payment: str) -> None:
        """The caller retries what is unknown or failed retryably: the same key is resent."""
        again = [t for t in self.service.list_transactions(payment)
                 if t.status == S.UNKNOWN or (t.status == S.FAILED and t.retryable)]
        if again:
            self._run("none", 0, "", lambda: self.service.retry(again[-1].id))

    # -- the provider and the outside world ------------------------------------------------------------
    @rule(pick=st.integers(0, 1_000), succeed=st.booleans())
    def provider_decides(self, pick: int, succeed: bool) -> None:
        undecided = self.app.undecided()
        if undecided:
            self.app.decide(undecided[pick % len(undecided)], succeed=succeed)

    @rule(pick=st.integers(0, 1_000), twice=st.booleans())
    def webhook_arrives(self, pick: int, twice: bool) -> None:
        events = self._events()
        if events:
            headers, body = events[pick % len(events)]
            for _ in range(2 if twice else 1):
                self.service.receive_webhook("fakepay", headers, body)

    @rule()
    def late_requests_land(self) -> None:
        wait_until_landed(self.app, self.sent)

    @rule()
    def reconcile(self) -> None:
        wait_until_landed(self.app, self.sent)
        report = self.reconciler.reconcile()
        assert report.errors == (), report.errors

    # -- what must always hold -----------------------------------------------------------------------
    @invariant()
    def ledger_never_claims_more_than_the_provider_holds(self) -> None:
        for payment_id in self.ids:
            payment = self.service.get_payment(payment_id)  # the ledger first: the provider only gains
            assert payment.refunded <= payment.captured <= payment.authorized
            ledger, provider = ledger_totals(payment), self._provider_totals(payment)
            assert all(mine <= theirs for mine, theirs in zip(ledger, provider, strict=True)), (
                payment_id, "ledger (authorized, captured, refunded)", ledger, "provider", provider)

    def teardown(self) -> None:
        try:
            if sys.exc_info()[0] is None:  # the run passed so far: now everything must settle
                self.everything_settles_and_agrees()
        finally:
            self.ledger.close()

    def everything_settles_and_agrees(self) -> None:
        wait_until_landed(self.app, self.sent)
        for object_id in self.app.undecided():
            self.app.decide(object_id, succeed=True)
        wait_until_landed(self.app, self.sent)
        report = self.reconciler.reconcile()
        for headers, body in self._events():  # every event, once more: none may count twice
            self.service.receive_webhook("fakepay", headers, body)
        for _ in range(3):
            still_open = [t.id for t in self.service.list_transactions() if t.open]
            if not still_open:
                break
            wait_out_life(self.service, still_open)  # what the provider does not hold may now fail
            wait_until_landed(self.app, self.sent)
            report = self.reconciler.reconcile()
        assert [t for t in self.service.list_transactions() if t.open] == [], report
        assert report.errors == () and report.mismatches == (), report
        for payment_id in self.ids:
            payment = self.service.get_payment(payment_id)
            assert ledger_totals(payment) == self._provider_totals(payment), (payment_id, report)
            self.settled_operations_are_the_providers(payment)

    def settled_operations_are_the_providers(self, payment: Payment) -> None:
        txns = self.service.list_transactions(payment.id)
        assert [t for t in txns if t.origin != "service"] == [], "an event was counted as another operation"
        latest: dict[str, Any] = {}
        for txn in txns:  # the latest attempt under each key is the operation's outcome
            if txn.kind in ("capture", "refund") and txn.attempt >= getattr(latest.get(txn.idempotency_key),
                                                                             "attempt", 0):
                latest[txn.idempotency_key] = txn
        with self.app.lock:
            objects = {**self.app.captures, **self.app.refunds}
            held = {obj["idempotency_key"]: obj for obj in objects.values() if obj["idempotency_key"]}
            capture_of_sale = self.app.payments.get(payment.reference or "", {}).get("capture_id")
        for txn in txns:  # a sale that took effect names the capture it became, however it was settled
            if txn.kind == "sale" and txn.status == S.SUCCEEDED:
                assert capture_of_sale is not None and txn.provider_reference == capture_of_sale, (txn, payment)
        for key, txn in latest.items():
            obj = held.get(key)
            if txn.status == S.SUCCEEDED:
                assert obj is not None and obj["status"] == "succeeded", (txn, obj)
                assert txn.provider_reference == obj["id"], (txn, obj)
            else:
                assert txn.status == S.FAILED, txn
                assert obj is None or obj["status"] == "failed", (txn, obj)


# -- running it ------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def machine_gateway() -> Iterator[tuple[FakePayApp, Gateways]]:
    app, sent = FakePayApp(), Sent()
    with EmulatorServer(app) as server:
        gateways = Gateways(
            make_gateway(server.url, connect_timeout=CONNECT, read_timeout=READ, outcome_window=WINDOW, extra=[sent]),
            make_gateway(server.url, read_timeout=30, outcome_window=WINDOW, extra=[sent]), sent)
        yield app, gateways
        wait_until_landed(app, sent)
        gateways.hurried.close()
        gateways.patient.close()


def machine_settings(max_examples: int, steps: int) -> settings:
    """The current profile, capped: each step is a real HTTP exchange and some wait out a timeout."""
    current = settings()
    return settings(
        current, deadline=None, max_examples=min(current.max_examples, max_examples),
        stateful_step_count=min(current.stateful_step_count, steps),
        suppress_health_check=[*current.suppress_health_check, HealthCheck.too_slow],
    )


def test_outcome_machine_on_sqlite(machine_gateway: tuple[FakePayApp, Gateways], tmp_path: Path) -> None:
    app, gateways = machine_gateway

    def make_ledger() -> Ledger:
        return SQLiteLedger(tmp_path / f"outcome-{next(_counter)}.db", synchronous="NORMAL")

    run_state_machine_as_test(lambda: OutcomeMachine(app, gateways, make_ledger),
                              settings=machine_settings(max_examples=20, steps=30))


@pytest.mark.postgres
def test_outcome_machine_on_postgres(machine_gateway: tuple[FakePayApp, Gateways], postgres_dsn: str) -> None:
    app, gateways = machine_gateway

    def make_ledger() -> Ledger:  # a schema of its own per run, dropped with the others at the end
        return open_ledger(f"{postgres_dsn}?schema=pwtest_{os.getpid()}_{secrets.token_hex(4)}")

    run_state_machine_as_test(lambda: OutcomeMachine(app, gateways, make_ledger),
                              settings=machine_settings(max_examples=6, steps=20))
