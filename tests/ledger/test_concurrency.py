"""Concurrency across processes (and threads in each) sharing one ledger, on both backends.

The emulator counts what reached it: the invariants must hold without the provider's help (it
never has to refuse an over-capture or over-refund), and duplicates must reach it once.
"""

from __future__ import annotations

import threading
import time
from collections import Counter

import pytest

from paywire import IdempotencyConflict, Money, OutcomeUnknown, hookimpl
from paywire.ledger import Ledger, Payment, TransactionStatus
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.conftest import finish_workers, start_worker
from tests.ledger.fakepay import FakePayApp, make_gateway
from tests.ledger.support import step_past_life, wait_until

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'paywire[postgresql]')")

pytestmark = pytest.mark.slow

WORKERS, THREADS = 4, 2


def test_racing_captures_and_refunds_never_break_the_invariants(
    service: PaymentService, app: FakePayApp, fakepay: tuple[FakePayApp, str], ledger_url: str,
) -> None:
    payment = service.authorize("fakepay", Money.of("100.00", "EUR"), source="tok_ok")
    app.inject(Fault("latency", seconds=0.01, path="/(captures|refunds)$", times=10_000))
    ops = [["capture", payment.id, "7.00", None], ["refund", payment.id, "3.00", None]] * 4
    start_at = time.time() + 1.0
    procs = [start_worker({"url": fakepay[1], "ledger": ledger_url, "ops": ops, "threads": THREADS,
                           "start_at": start_at}) for _ in range(WORKERS)]
    codes, results = finish_workers(procs)
    assert codes == [0] * WORKERS and len(results) == WORKERS * THREADS * len(ops)

    outcomes = Counter((r["op"], r["ok"] or r["error"]) for r in results)
    assert set(outcomes) <= {("capture", True), ("capture", "StateError"), ("refund", True), ("refund", "StateError")}
    final = service.get_payment(payment.id)
    reference = final.reference or ""
    assert app.totals(reference) == (final.authorized.minor, final.captured.minor, final.refunded.minor)
    assert final.refunded <= final.captured <= final.authorized
    assert final.captured.minor == 700 * outcomes[("capture", True)] == 700 * app.count("capture")
    assert final.refunded.minor == 300 * outcomes[("refund", True)] == 300 * app.count("refund")
    assert outcomes[("capture", True)] == 14  # every 7.00 that fits into 100.00, and no more
    assert app.refusals == []  # the provider never had to refuse anything: the ledger checked first
    assert {t.status for t in service.list_transactions(payment.id)} == {TransactionStatus.SUCCEEDED}


def test_a_storm_of_duplicates_reaches_the_provider_once(
    service: PaymentService, app: FakePayApp, fakepay: tuple[FakePayApp, str], ledger_url: str,
) -> None:
    payment = service.authorize("fakepay", Money.of("100.00", "EUR"), source="tok_ok")
    # Slow answers, so that every duplicate arrives while the first is in flight.
    app.inject(Fault("latency", seconds=0.3, path="/(captures|payments)$", method="POST", times=10_000))
    start_at = time.time() + 1.0
    ops = [["authorize", "fakepay", "5.00", "storm-auth"], ["capture", payment.id, "10.00", "storm-key"]]
    procs = [start_worker({"url": fakepay[1], "ledger": ledger_url, "ops": ops, "threads": THREADS,
                           "start_at": start_at}) for _ in range(WORKERS)]
    codes, results = finish_workers(procs)
    assert codes == [0] * WORKERS
    assert all(r["ok"] for r in results), [r for r in results if not r["ok"]]
    captures = [r for r in results if r["op"] == "capture"]
    authorizations = [r for r in results if r["op"] == "authorize"]
    assert len(captures) == len(authorizations) == WORKERS * THREADS
    assert {r["captured"] for r in captures} == {1000}
    assert len({r["payment"] for r in authorizations}) == 1  # one payment made, every caller got it
    with app.lock:
        capture_calls = [c for c in app.calls if c[1].endswith("/captures")]
        create_calls = [c for c in app.calls if c[1] == "/v1/payments"]
    assert len(capture_calls) == 1 and app.count("capture") == 1
    assert len(create_calls) == 2 and app.count("authorize") == 2  # the setup's, and the storm's one
    assert len(service.list_transactions(payment.id)) == 2


def _waiting_on(dsn: str, holder_pid: int) -> int:
    """How many sessions wait, directly or behind one that does, for a lock the holder has."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        row = conn.execute(
            "WITH first AS (SELECT pid FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid))) "
            "SELECT count(*) FROM pg_stat_activity WHERE %s = ANY(pg_blocking_pids(pid)) "
            "OR pg_blocking_pids(pid) && ARRAY(SELECT pid FROM first)", (holder_pid, holder_pid)).fetchone()
        return int(row[0]) if row else 0


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_reconcile_never_fails_a_first_operation_a_retry_is_resending(
    patient: PaymentService, app: FakePayApp, ledger_url: str, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An authorization whose outcome is unknown (the provider never got it), retried with its key
    while reconciliation concludes it was not applied: the retry's claim and the conclusion are
    ordered by the payment's lock, so a resend in flight is never recorded failed, even when its
    answer is lost after the provider applied it."""
    service = patient  # every answer read however loaded the machine; the lives are stepped past
    app.inject(Fault("status", status=500, method="POST", path="/v1/payments$"))
    with pytest.raises(OutcomeUnknown):
        service.authorize("fakepay", Money.of("30.00", "EUR"), source="tok_ok", idempotency_key="order-77")
    (payment,) = service.list_payments()
    (txn,) = service.list_transactions(payment.id)
    step_past_life(service, [txn.id], monkeypatch)
    app.inject(Fault("drop_after", method="POST", path="/v1/payments$"))  # the resend lands; its answer is lost

    dsn, schema = ledger_url.split("?schema=")
    errors: list[BaseException] = []
    reports: list[object] = []

    def retry() -> None:
        try:
            service.authorize("fakepay", Money.of("30.00", "EUR"), source="tok_ok", idempotency_key="order-77")
        except OutcomeUnknown as exc:
            errors.append(exc)

    with psycopg.connect(dsn) as holder:  # holds the transaction's row: each unit queues where it writes it
        holder.execute(f'SET search_path TO "{schema}"')
        holder.execute("SELECT id FROM paywire_transactions WHERE id = %s FOR UPDATE", (txn.id,))
        pid = holder.info.backend_pid
        retrying = threading.Thread(target=retry)
        retrying.start()
        wait_until(lambda: _waiting_on(dsn, pid) == 1, "the retry waits to claim the transaction")
        reconciling = threading.Thread(target=lambda: reports.append(service.reconcile()))
        reconciling.start()
        wait_until(lambda: _waiting_on(dsn, pid) == 2, "reconciliation waits behind the retry")
        holder.rollback()
        retrying.join(60)
        reconciling.join(60)
    assert len(errors) == 1 and len(reports) == 1
    assert app.count("authorize") == 1  # the resend was applied
    assert service.get_transaction(txn.id).status != TransactionStatus.FAILED
    step_past_life(service, [txn.id], monkeypatch)
    service.reconcile()
    assert service.get_transaction(txn.id).status == TransactionStatus.SUCCEEDED
    assert service.get_payment(payment.id).authorized == Money.of("30.00", "EUR")


class _MeetInRehearsal:
    """A plugin part run while an operation is rehearsed, inside the ledger unit that holds its
    key's lock and has recorded it pending: the first operation to get there waits until the
    other has either queued behind it (a PostgreSQL session it blocks) or got there too."""

    def __init__(self, ledger: Ledger, dsn: str) -> None:
        self.ledger = ledger
        self.dsn = dsn
        self.arrived = 0
        self.lock = threading.Lock()

    @hookimpl
    def build_request(self, command: str, subject: object) -> None:
        if command != "authorize":
            return
        with self.lock:
            self.arrived += 1
            first = self.arrived == 1
        if first:
            pid = self.ledger.connection().info.backend_pid  # type: ignore[attr-defined]
            wait_until(lambda: self.arrived > 1 or _waiting_on(self.dsn, pid) > 0,
                       "the other method's call queues behind this one, or gets as far")


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_first_uses_of_a_key_racing_on_two_methods_of_one_account_make_one_provider_call(
    fakepay: tuple[FakePayApp, str], ledger: Ledger, ledger_url: str,
) -> None:
    """"fakepay" and "fakepay_single" are one FakePay account, which scopes keys to the account:
    two threads authorizing with one key, one on each, queue on one lock, so one request reaches
    the provider and the other call is refused as a key used on the other method. (Each one's
    lookup alone would not do: neither sees the other's pending record before it commits.)"""
    app, url = fakepay
    gateway = make_gateway(url, extra=[_MeetInRehearsal(ledger, ledger_url.split("?schema=")[0])])
    service = PaymentService(gateway, ledger)
    outcomes: dict[str, Payment | Exception] = {}

    def authorize(method: str) -> None:
        try:
            outcomes[method] = service.authorize(method, Money.of("20.00", "EUR"), source="tok_ok",
                                                 idempotency_key="order-1001-authorize")
        except Exception as exc:
            outcomes[method] = exc

    threads = [threading.Thread(target=authorize, args=(method,)) for method in ("fakepay", "fakepay_single")]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
    finally:
        gateway.close()
    made = [o for o in outcomes.values() if isinstance(o, Payment)]
    refused = [o for o in outcomes.values() if isinstance(o, IdempotencyConflict)]
    assert len(made) == len(refused) == 1, outcomes
    with app.lock:
        assert [c for c in app.calls if c[1] == "/v1/payments"] == [("POST", "/v1/payments")]
    assert app.count("authorize") == 1 and refused[0].payment_id == made[0].id
    assert service.list_payments() == [made[0]] and len(service.list_transactions()) == 1
