"""Reconciliation taking a pending vault transaction for abandoned while a retry claims it.

A vault or unvault has no payment row to lock, so nothing but the transaction's own row orders
reconciliation's mark (pending past its life -> unknown) against a retry that claims it (pending
again, with a new life) and sends it. On PostgreSQL the two units can both read the row before
either writes; the mark must then be written only over the row as reconciliation read it, or it
would turn the retry's send in flight unknown, and a duplicate would send the key again. (SQLite
units hold its one write lock from their first read, so there they cannot interleave.)
"""

from __future__ import annotations

import signal
import threading
from collections.abc import Callable
from typing import Any

import pytest

from paywire import IdempotencyConflict
from paywire.ledger import Ledger, TransactionStatus
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.conftest import finish_workers, start_worker
from tests.ledger.fakepay import FakePayApp
from tests.ledger.support import FAST, wait_out_life, wait_until
from tests.ledger.test_concurrency import _waiting_on

psycopg = pytest.importorskip("psycopg", reason="psycopg is not installed (pip install 'paywire[postgresql]')")

S = TransactionStatus
KEY = "customer-7-vault"


def vaults(app: FakePayApp) -> int:
    with app.lock:
        return sum(1 for entry in app.applied if entry[0] == "vault")


@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_reconcile_never_marks_a_vault_a_retry_has_claimed_meanwhile_unknown(
    patient: PaymentService, app: FakePayApp, fakepay: tuple[FakePayApp, str], ledger_url: str,
    make_ledger: Callable[[], Ledger],
) -> None:
    """A worker killed between sending a vault and recording it leaves it pending; past its life,
    a retry with its key and reconciliation both read it pending. The retry's claim is written
    first (each unit queues where it writes the row), then reconciliation's mark: it finds the
    row changed and leaves it, so the resend stays pending, a duplicate waits for it, and its
    answer is what the ledger records."""
    # The crashed send's life is FAST's (waited out); the retry is answered once released, however
    # long the test holds it, and reconciliation's reads are answered.
    service = patient
    codes, results = finish_workers([start_worker({
        "url": fakepay[1], "ledger": ledger_url, "ops": [["vault", "fakepay", None, KEY]], "crash": "after_send",
        "crash_command": "vault", "margin": 0, **FAST,
    })])
    assert codes == [-signal.SIGKILL] and results == []
    wait_until(lambda: vaults(app) == 1, "the emulator stored the vault (its answer may come late)")
    (txn,) = service.list_transactions()
    assert (txn.kind, txn.status, vaults(app)) == ("vault", S.PENDING, 1)
    wait_out_life(service, [txn.id])
    app.inject(Fault("hold", method="POST", path="/v1/vault$"))  # the resend stays in flight until released
    duplicate = PaymentService(service.gateway, make_ledger(), margin=0, wait_timeout=0)

    outcomes: list[Any] = []
    reports: list[Any] = []

    def retry() -> None:
        try:
            outcomes.append(service.vault("fakepay", "tok_ok", idempotency_key=KEY))
        except Exception as exc:
            outcomes.append(exc)

    dsn, schema = ledger_url.split("?schema=")
    retrying = threading.Thread(target=retry)
    reconciling = threading.Thread(target=lambda: reports.append(service.reconcile()))
    try:
        with psycopg.connect(dsn) as holder:  # holds the transaction's row: each unit queues where it writes it
            holder.execute(f'SET search_path TO "{schema}"')
            holder.execute("SELECT id FROM paywire_transactions WHERE id = %s FOR UPDATE", (txn.id,))
            pid = holder.info.backend_pid
            retrying.start()
            wait_until(lambda: _waiting_on(dsn, pid) == 1, "the retry waits to claim the transaction")
            reconciling.start()  # reads it pending past its life, and waits to mark it behind the retry
            wait_until(lambda: _waiting_on(dsn, pid) == 2, "reconciliation waits behind the retry")
            holder.rollback()
        assert app.wait_until_held(1), "the resend reached the provider"
        reconciling.join(60)
        (report,) = reports
        assert report.marked_unknown == () and report.errors == (), report
        claimed = service.get_transaction(txn.id)
        assert claimed.status == S.PENDING, claimed
        assert claimed.settle_after is not None and txn.settle_after is not None
        assert claimed.settle_after > txn.settle_after  # the claim's new life, not the mark's
        with pytest.raises(IdempotencyConflict) as busy:
            duplicate.vault("fakepay", "tok_ok", idempotency_key=KEY)
        assert busy.value.code == "in_progress" and busy.value.retryable
    finally:
        app.release_held()
        retrying.join(60)
        reconciling.join(60)
    (vaulted,) = outcomes
    assert not isinstance(vaulted, BaseException), vaulted
    assert vaulted.id == txn.id and vaulted.status == S.SUCCEEDED and vaulted.token in app.vaulted
    assert service.get_transaction(txn.id).status == S.SUCCEEDED
    assert vaults(app) == 1 and len(app.vaulted) == 1  # the resend got the first send's answer
    with app.lock:  # the crashed send and the retry's: the duplicate sent nothing
        assert [c for c in app.calls if c == ("POST", "/v1/vault")] == [("POST", "/v1/vault")] * 2
