"""Two Janitors sharing one PostgreSQL ledger (each on a connection of its own) match a stored
unmatched event while a webhook about the same payment arrives, whose unit applies the events
waiting for that payment too: all three queue on the payment's row lock (held by the test), and
once it is let go, the event is applied exactly once, by whichever comes first; the others find it
applied and leave it. Nothing is counted twice, and every pass reports no error."""

from __future__ import annotations

import psycopg
import pytest

from paywire import EventKind, Money
from paywire.ledger import Ledger, open_ledger
from paywire.serve import Janitor, PassReport
from paywire.service import PaymentService, WebhookReceipt
from tests.ledger.support import in_thread, store_unmatched, wait_until
from tests.serve.support import CountingFakePay

pytestmark = [pytest.mark.postgres, pytest.mark.patient]  # its requests need answers, not a short life


def _blocked(dsn: str, holder_pid: int) -> int:
    """How many sessions wait, directly or queued behind another waiter, for the holder's locks."""
    with psycopg.connect(dsn, autocommit=True) as conn:
        rows = conn.execute("SELECT pid, pg_blocking_pids(pid) FROM pg_stat_activity").fetchall()
    behind, found = {holder_pid}, True
    while found:
        found = False
        for pid, blockers in rows:
            if pid not in behind and behind.intersection(blockers or ()):
                behind.add(pid)
                found = True
    return len(behind) - 1


def test_two_janitors_and_a_webhook_apply_an_unmatched_event_once(
        shop: PaymentService, provider: tuple[CountingFakePay, str], pg_url: str) -> None:
    app, _ = provider
    payment = shop.sale("fakepay", Money.of("30.00", "EUR"), source="tok_ok")
    ref, cap = payment.reference or "", payment.references["capture"]
    first, second = app.refund_beside(cap, 500), app.refund_beside(cap, 700)  # two refunds in the dashboard
    waiting = store_unmatched(shop, "fakepay", *app.event("evt_first", EventKind.REFUNDED, first, amount=500,
                                                 references={"capture": cap, "payment": ref}))
    delivery = app.event("evt_second", EventKind.REFUNDED, second, amount=700,
                         references={"capture": cap, "payment": ref})
    ledgers: list[Ledger] = [open_ledger(pg_url) for _ in range(3)]
    workers = [PaymentService(shop.gateway, ledger, margin=0) for ledger in ledgers]
    dsn, schema = pg_url.split("?schema=")
    try:
        with psycopg.connect(dsn) as holder:  # the payment's row: every worker queues on it
            holder.execute(f'SET search_path TO "{schema}"')
            holder.execute("SELECT id FROM paywire_payments WHERE id = %s FOR UPDATE", (payment.id,))
            pid = holder.info.backend_pid
            runs = [in_thread(Janitor(workers[0]).run_pass), in_thread(Janitor(workers[1]).run_pass),
                    in_thread(lambda: workers[2].receive_webhook("fakepay", *delivery))]
            wait_until(lambda: _blocked(dsn, pid) == 3, "both passes and the delivery wait for the payment")
            holder.rollback()
            for thread, _ in runs:
                thread.join(60)
    finally:
        for ledger in ledgers:
            ledger.close()
    out = [result for _, results in runs for result in results]
    assert len(out) == 3 and not [r for r in out if isinstance(r, Exception)], out
    passes = [r for r in out if isinstance(r, PassReport)]
    [receipt] = [r for r in out if isinstance(r, WebhookReceipt)]
    assert receipt.status == "applied"
    assert all(p.errors == () for p in passes), passes
    assert sum(p.applied for p in passes) <= 1  # none when the delivery's unit applied it first
    assert shop.ledger.get_event("fakepay", waiting).status == "applied"
    settled = shop.get_payment(payment.id)
    assert (settled.captured, settled.refunded) == (Money.of("30.00", "EUR"), Money.of("12.00", "EUR"))
    assert app.totals(ref) == (3_000, 3_000, 1_200)
    refunds = [t for t in shop.list_transactions(payment.id) if t.kind == "refund"]
    assert sorted(t.provider_reference or "" for t in refunds) == sorted([first, second])
