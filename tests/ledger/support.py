"""Helpers shared by the ledger tests: money, agreement with the provider, waiting on real state
(the emulator's, the clock's) instead of sleeping a guess of the machine's speed, and a mapping
that is not a dict."""

from __future__ import annotations

import os
import subprocess
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from paywire import LedgerBusy, Money, OutcomeUnknown, StateError, hookimpl
from paywire.ledger import Ledger, Payment, StoredEvent, Transaction, TransactionStatus, open_ledger
from paywire.ledger.model import now
from paywire.service import PaymentService
from paywire.testing.ledger_checks import reconciled_again_changes_nothing
from tests.ledger.fakepay import FakePayApp

# Tiny timeouts and no retries: a request's longest life is connect + read = 1 second, so a test
# can wait it out; with margin=0 reconciliation may conclude "not applied" right after it. Most of
# it is the read's: a loopback connect is the kernel's alone, while an answer waits for the
# emulator's thread, which a loaded machine may leave unscheduled for a while.
FAST = {"connect_timeout": 0.25, "read_timeout": 0.75}
LIFE = FAST["connect_timeout"] + FAST["read_timeout"]
# For the requests a test needs answered: a loaded machine's slow answer is still an answer.
PATIENT = {"read_timeout": 30.0}


class Opaque(Mapping[str, Any]):
    """A mapping whose str names the object, not what it holds (as most mapping types' do)."""

    def __init__(self, items: Mapping[str, Any]) -> None:
        self._items = dict(items)

    def __getitem__(self, key: str) -> Any:
        return self._items[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._items)

    def __len__(self) -> int:
        return len(self._items)

    __repr__ = object.__repr__


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def wait_until(predicate: Callable[[], object], what: str, timeout: float = 30.0) -> None:
    """Poll `predicate` until it holds (the deadline only guards against a hang)."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting until {what}")
        time.sleep(0.01)


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Run `call` in a thread of its own (a worker on a connection of its own); its result, or
    the exception it raised, lands in the list."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(call())
        except Exception as exc:
            out.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, out


def wait_out_life(service: PaymentService, transaction_ids: Iterable[str]) -> None:
    """Wait, by the ledger's clock (what `settle_after` is written and read by), until every
    named transaction's request can no longer land."""
    deadlines = []
    for transaction_id in transaction_ids:
        txn = service.get_transaction(transaction_id)
        assert txn.settle_after is not None, f"{txn.id} has no settle_after"
        deadlines.append(txn.settle_after)
    if deadlines:
        last = max(deadlines)
        wait_until(lambda: service.ledger.now() >= last, f"the latest settle_after ({last}) passed")


def step_past_life(service: PaymentService, transaction_ids: Iterable[str], monkeypatch: pytest.MonkeyPatch) -> None:
    """Move the ledger's clock (what `settle_after` is written and read by) on past every named
    transaction's life instead of waiting it out: a request sent with patient timeouts, which a
    test needs answered however loaded the machine, has a long life."""
    lives = [service.get_transaction(t).settle_after for t in transaction_ids]
    assert None not in lives, "a transaction has no settle_after"
    step_past(service, max(t for t in lives if t is not None), monkeypatch)


def step_past(service: PaymentService, at: datetime, monkeypatch: pytest.MonkeyPatch) -> None:
    """Move the ledger's clock on past `at` (a life's end, a lease's) instead of waiting for it."""
    ledger = service.ledger
    shift = at - ledger.now() + timedelta(milliseconds=1)
    if shift <= timedelta(0):
        return
    ledgers_now, deadline = ledger.now, ledger.deadline
    monkeypatch.setattr(ledger, "now", lambda: ledgers_now() + shift)
    monkeypatch.setattr(ledger, "deadline", lambda seconds: deadline(seconds) + shift)


def within_life(service: PaymentService, transaction_ids: Iterable[str]) -> bool:
    """Whether every named transaction's request may still land, asked right after a check that
    reconcile leaves such a request alone: with FAST's one-second life a loaded machine may be
    past it by then, and the check then says nothing about the ledger (only about the machine)."""
    at = now()
    return all(at < (service.get_transaction(t).settle_after or at) for t in transaction_ids)


class Sent:
    """Counts the requests the gateway sent (every attempt): one its client gave up on may not
    even have been read by the emulator yet, so `inflight` alone cannot say that all landed."""

    def __init__(self) -> None:
        self.count = 0
        self._lock = threading.Lock()

    @hookimpl(wrapper=True)
    def send_transfer(self) -> Iterator[None]:
        with self._lock:
            self.count += 1
        return (yield)


def wait_until_landed(app: FakePayApp, sent: Sent) -> None:
    """Wait until the emulator has received and answered every request sent.

    FakePay promises that a request lands within its outcome window; on a loaded machine the
    emulator's threads may not keep that promise, and a reconcile past the life of a request
    still on its way would rightly conclude "not applied" of what then lands. A test waits for
    what was sent before it looks, so that it checks the ledger, not the scheduler."""
    wait_until(lambda: app.received >= sent.count and app.inflight == 0, "every request sent landed")


def provider_totals(app: FakePayApp, payment: Payment) -> tuple[int, int, int]:
    return app.totals(payment.reference or "")


def ledger_totals(payment: Payment) -> tuple[int, int, int]:
    return payment.authorized.minor, payment.captured.minor, payment.refunded.minor


def agree(service: PaymentService, app: FakePayApp, payment_id: str) -> None:
    """The ledger's totals are the provider's, and nothing on the payment is still open."""
    payment = service.get_payment(payment_id)
    assert payment.reference is not None
    assert ledger_totals(payment) == provider_totals(app, payment)
    assert [t for t in service.list_transactions(payment_id) if t.open] == []


def offers_no_capture_and_reconciles(service: PaymentService, calls: list[Any], payment_id: str,
                                     authorized: Money) -> None:
    """A capture of the payment is refused before anything is sent (`calls`: what the provider's
    emulator was sent), reconciling it is clean and keeps `authorized`, and reconciling it again
    changes nothing: the ledger holds what the provider reads, with nothing left to offer."""
    sent = calls[:]
    with pytest.raises(StateError):
        service.capture(payment_id, Money(1, authorized.currency), final=False)
    assert calls == sent  # refused before sending
    report = service.reconcile(payment_id=payment_id)
    assert report.clean and not report.mismatches, report
    assert service.get_payment(payment_id).authorized == authorized
    reconciled_again_changes_nothing(service, payment_id)


def only(txns: list[Transaction], kind: str) -> Transaction:
    (txn,) = [t for t in txns if t.kind == kind]
    return txn


def cause_chain(error: BaseException) -> list[BaseException]:
    """`error` and its causes, in order; fails on a cycle instead of looping."""
    chain: list[BaseException] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None:
        assert id(current) not in seen, f"the cause chain loops back to {current!r}: {chain}"
        seen.add(id(current))
        chain.append(current)
        current = current.__cause__
    return chain


def unrecorded_capture_settles_later(service: PaymentService, app: FakePayApp, payment_id: str,
                                     error: BaseException) -> None:
    """After a capture of 20.00 (key "capture-1") of a 50.00 authorization was sent and its answer
    could not be recorded (`error`): it stays open, never failed, with nothing half-written;
    reconciliation settles it once its request can no longer land, and the call again under its
    key gets the stored outcome, sent no more."""
    assert isinstance(error, OutcomeUnknown), error
    (txn,) = [t for t in service.list_transactions(payment_id) if t.kind == "capture"]
    assert (error.payment_id, error.transaction_id) == (payment_id, txn.id)
    assert txn.status == TransactionStatus.PENDING and app.count("capture") == 1  # sent: open, never failed
    assert service.get_payment(payment_id).captured == eur("0.00")  # no half-written outcome
    wait_out_life(service, [txn.id])
    report = service.reconcile(payment_id=payment_id)
    assert report.errors == () and report.mismatches == (), report
    assert service.get_transaction(txn.id).status == TransactionStatus.SUCCEEDED
    settled = service.get_payment(payment_id)
    assert ledger_totals(settled) == app.totals(settled.reference or "") == (5_000, 2_000, 0)
    assert service.capture(payment_id, eur("20.00"), idempotency_key="capture-1") == settled  # the stored outcome
    assert app.count("capture") == 1


def store_unmatched(service: PaymentService, method: str, headers: Mapping[str, str], body: bytes) -> str:
    """Store a delivery's event unmatched, as a race with the unit learning its payment's
    reference leaves it (stored while that unit was uncommitted); its id."""
    event = service.gateway.parse_webhook(method, headers, body)
    with service.ledger.unit() as u:
        assert u.insert_event(StoredEvent(
            provider=event.provider, event_id=event.id, method=method, type=event.type, kind=event.kind,
            reference=event.reference, references=event.references, amount=event.amount, total=event.total,
            status="unmatched", received_at=now(), closes_capture=event.closes_capture))
    return event.id


@contextmanager
def read_only(path: Path) -> Iterator[None]:
    """`path` read-only, as the system makes a file so: its mode, or for root (who writes
    whatever a mode says) its immutable attribute."""
    if os.geteuid() != 0:
        mode = path.stat().st_mode
        path.chmod(0o444)
        try:
            yield
        finally:
            path.chmod(mode)
        return
    if subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode != 0:
        pytest.skip("running as root, where only the immutable attribute makes a file read-only, and chattr "
                    "cannot set it on this file system")
    try:
        yield
    finally:
        subprocess.run(["chattr", "-i", str(path)], check=True)


def open_past_upgrades(url: str) -> Ledger:
    """Open the ledger at `url`, waiting out other workers' upgrades however short its
    lock_timeout: a URL naming no schema takes the migrations' lock every such URL in the
    database takes (''), which another test run beside this one may hold for a while. Only an
    open meant to be refused as busy calls `open_ledger` itself."""
    deadline = time.monotonic() + 60  # a hang guard, never reached while upgrades end
    while True:
        try:
            return open_ledger(url)
        except LedgerBusy:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
