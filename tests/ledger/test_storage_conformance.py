"""The storage conformance suite: every ledger backend must pass all of it.

It drives the `Ledger` interface directly (no service), against real databases: an SQLite file
and a fresh PostgreSQL schema per test.
"""

from __future__ import annotations

import gc
import re
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from contextlib import closing
from datetime import timedelta
from pathlib import Path

import attrs
import pytest

from paywire import ConfigurationError, Money
from paywire.ledger import (
    EventStatus,
    Ledger,
    LedgerIntegrityError,
    Payment,
    PaymentState,
    SQLiteLedger,
    StoredEvent,
    Transaction,
    TransactionStatus,
    open_ledger,
)
from paywire.ledger.migrations import MIGRATIONS
from paywire.ledger.model import now
from paywire.ledger.postgres import PostgresLedger
from paywire.ledger.url import masked_url
from paywire.subject import BuyerAction

ROOT = Path(__file__).resolve().parents[2]
T0 = now()  # one instant for every record a test does not date itself


def payment(pid: str = "pay_1", *, currency: str = "EUR", minor: int = 10_000, **changes: object) -> Payment:
    zero = Money(0, currency)
    at = T0
    base = Payment(
        id=pid, method="fakepay", flow="authorize", amount=Money(minor, currency), state=PaymentState.PENDING,
        authorized=zero, captured=zero, refunded=zero, observed_authorized=zero, observed_captured=zero,
        observed_refunded=zero, order_id="A-1", created_at=at, updated_at=at,
    )
    return attrs.evolve(base, **changes)  # type: ignore[arg-type]


def txn(tid: str = "txn_1", *, pid: str | None = "pay_1", key: str = "key-1", attempt: int = 1,
        status: str = TransactionStatus.PENDING, **changes: object) -> Transaction:
    at = T0
    base = Transaction(
        id=tid, payment_id=pid, method="fakepay", kind="capture", amount=Money(2_500, "EUR"), status=status,
        idempotency_key=key, attempt=attempt, fingerprint="f" * 64, request={"amount": "25.00"},
        created_at=at, updated_at=at,
    )
    return attrs.evolve(base, **changes)  # type: ignore[arg-type]


def event(eid: str = "evt_1", *, status: str = EventStatus.UNMATCHED, **changes: object) -> StoredEvent:
    base = StoredEvent(provider="fakepay", event_id=eid, method="fakepay", type="payment.captured", kind="captured",
                       reference="cap_1", references={"payment": "fp_1"}, amount=Money(500, "EUR"),
                       status=status, received_at=T0)
    return attrs.evolve(base, **changes)  # type: ignore[arg-type]


def raw(ledger: Ledger, sql: str) -> None:
    """Run SQL outside the ledger API, as a careless tool or person would."""
    conn = ledger.connection()  # type: ignore[attr-defined]
    ledger.execute(conn, "BEGIN")  # type: ignore[attr-defined]
    try:
        ledger.execute(conn, sql)  # type: ignore[attr-defined]
    finally:
        ledger.execute(conn, "ROLLBACK")  # type: ignore[attr-defined]


# -- schema and migrations -----------------------------------------------------------------------------
def test_migrations_are_applied_on_start_and_idempotent(make_ledger: Callable[[], Ledger]) -> None:
    first = make_ledger()
    assert first.schema_version() == MIGRATIONS[-1].version
    assert first.migrate() == MIGRATIONS[-1].version  # a second run changes nothing
    second = make_ledger()  # another process starting on the same database
    assert second.schema_version() == MIGRATIONS[-1].version


@pytest.mark.slow
def test_concurrent_first_start_migrates_once(ledger_url: str) -> None:
    """Workers starting together on an empty database: every one opens it, each migration once."""
    code = (
        "import sys; from paywire.ledger import open_ledger; "
        "l = open_ledger(sys.argv[1]); print(l.schema_version()); l.close()"
    )
    procs = [subprocess.Popen([sys.executable, "-c", code, ledger_url], stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, cwd=ROOT) for _ in range(4)]
    outputs = [p.communicate(timeout=60) for p in procs]
    assert [p.returncode for p in procs] == [0] * 4, outputs
    assert {out.strip() for out, _ in outputs} == {str(MIGRATIONS[-1].version)}
    ledger = open_ledger(ledger_url)
    try:
        rows = ledger.execute(ledger.connection(), "SELECT version FROM paywire_schema").fetchall()  # type: ignore[attr-defined]
        assert sorted(r[0] for r in rows) == [m.version for m in MIGRATIONS]
    finally:
        ledger.close()


# -- payments -----------------------------------------------------------------------------------------
@pytest.mark.parametrize(("currency", "minor"), [("EUR", 1999), ("JPY", 500), ("BHD", 12_345), ("CLF", 1_0001)])
def test_payment_round_trips_with_money_as_minor_units(ledger: Ledger, currency: str, minor: int) -> None:
    stored = payment(currency=currency, minor=minor, references={"payment": "fp_1", "authorization": "au_1"},
                     reference="fp_1", customer_reference="cus_1", token="vt_1", capture_closed=True,
                     action=BuyerAction("https://3ds.example/x", "https://shop.example/back"))
    with ledger.unit() as u:
        u.insert_payment(stored)
    assert ledger.get_payment("pay_1") == stored
    row = ledger.execute(ledger.connection(), "SELECT amount_minor, currency FROM paywire_payments").fetchone()  # type: ignore[attr-defined]
    assert (int(row[0]), row[1]) == (minor, currency)


def test_an_action_for_the_providers_sdk_round_trips_without_its_client_secret(ledger: Ledger) -> None:
    """A buyer action with no redirect (Stripe's `use_stripe_sdk`) is still an action: the payment
    read again waits for it. Its client secret is not stored."""
    secret = "pi_3Sdk0000000000_secret_Sdk0000000000000000"
    stored = payment(state=PaymentState.ACTION_REQUIRED, reference="pi_3Sdk0000000000",
                     action=BuyerAction("", None, "use_stripe_sdk", client_secret=secret))
    with ledger.unit() as u:
        u.insert_payment(stored)
    read = ledger.get_payment("pay_1")
    assert read == stored and read is not None and read.action is not None
    assert (read.action.redirect_url, read.action.kind, read.action.client_secret) == ("", "use_stripe_sdk", None)
    rows = ledger.execute(ledger.connection(), "SELECT * FROM paywire_payments").fetchall()  # type: ignore[attr-defined]
    assert secret not in repr(rows)


def test_payment_update_and_listing(ledger: Ledger) -> None:
    with ledger.unit() as u:
        for index in range(5):
            u.insert_payment(payment(f"pay_{index}", order_id=f"A-{index % 2}",
                                     created_at=T0 + timedelta(seconds=index)))
    with ledger.unit() as u:
        current = u.payment("pay_3", lock=True)
        assert current is not None
        u.update_payment(attrs.evolve(current, state=PaymentState.AUTHORIZED, authorized=Money(10_000, "EUR")))
    assert ledger.get_payment("pay_3").state == PaymentState.AUTHORIZED  # type: ignore[union-attr]
    assert [p.id for p in ledger.list_payments()] == ["pay_4", "pay_3", "pay_2", "pay_1", "pay_0"]
    assert [p.id for p in ledger.list_payments(order_id="A-1")] == ["pay_3", "pay_1"]
    assert [p.id for p in ledger.list_payments(state=PaymentState.AUTHORIZED)] == ["pay_3"]
    assert [p.id for p in ledger.list_payments(limit=2, offset=1)] == ["pay_3", "pay_2"]
    assert len(list(ledger.iter_payments(page=2))) == 5
    assert ledger.get_payment("nope") is None


def test_payment_invariant_is_a_database_constraint(ledger: Ledger) -> None:
    with ledger.unit() as u:
        u.insert_payment(payment())
    broken = payment(authorized=Money(1_000, "EUR"), captured=Money(2_000, "EUR"))
    with pytest.raises(LedgerIntegrityError), ledger.unit() as u:
        u.update_payment(broken)
    assert ledger.get_payment("pay_1").captured == Money(0, "EUR")  # type: ignore[union-attr]


def test_a_failed_unit_writes_nothing(ledger: Ledger) -> None:
    with pytest.raises(RuntimeError, match="boom"), ledger.unit() as u:
        u.insert_payment(payment())
        u.insert_transaction(txn())
        raise RuntimeError("boom")
    assert ledger.get_payment("pay_1") is None
    assert ledger.list_transactions() == []


def test_every_statement_of_a_long_unit_keeps_its_own_answer(ledger: Ledger) -> None:
    """Units longer than any the service runs, one after another on one connection: each write
    is checked at the end of its unit (where statements are batched, by then its answer is one
    of many), and every read answers its own statement."""
    ids = [f"pay_{i:02}" for i in range(45)]
    with ledger.unit() as u:
        for pid in ids:
            u.insert_payment(payment(pid))
        assert [u.payment(pid).id for pid in ids] == ids  # type: ignore[union-attr]
    for minor in (2_000, 3_000):
        with ledger.unit() as u:
            for pid in ids:
                u.update_payment(payment(pid, authorized=Money(minor, "EUR")))
            assert {u.payment(pid).authorized.minor for pid in ids} == {minor}  # type: ignore[union-attr]
    with pytest.raises(LedgerIntegrityError, match="pay_missing"), ledger.unit() as u:
        for pid in ids:
            u.update_payment(payment(pid, authorized=Money(7, "EUR")))
        u.update_payment(payment("pay_missing"))  # checked with the rest at the end: all roll back
    assert {ledger.get_payment(pid).authorized.minor for pid in ids} == {3_000}  # type: ignore[union-attr]


@pytest.mark.parametrize("then", ["nothing", "a read", "a write"])
def test_a_write_the_database_refuses_rolls_back_its_whole_unit(ledger: Ledger, then: str) -> None:
    """Where statements are batched, the refusal comes with the next answer the unit waits for
    (a read, or the commit): whenever it comes, nothing of the unit stays, and the connection
    serves the next unit."""
    with ledger.unit() as u:
        u.insert_payment(payment("pay_0"))
    with pytest.raises(LedgerIntegrityError), ledger.unit() as u:
        u.insert_payment(payment("pay_1"))
        u.insert_transaction(txn("txn_1", key="k"))
        u.insert_transaction(txn("txn_2", key="k"))  # the same key and attempt: refused
        if then == "a read":
            u.payment("pay_0")
        elif then == "a write":
            u.update_payment(payment("pay_0", authorized=Money(500, "EUR")))
    assert ledger.get_payment("pay_1") is None
    assert ledger.list_transactions() == []
    with ledger.unit() as u:
        u.insert_payment(payment("pay_2"))
        assert u.payment("pay_0").authorized.minor == 0  # type: ignore[union-attr]
    assert {p.id for p in ledger.list_payments()} == {"pay_0", "pay_2"}


def test_units_do_not_nest(ledger: Ledger) -> None:
    with ledger.unit(), pytest.raises(RuntimeError, match="nest"), ledger.unit():
        pass


# -- marks --------------------------------------------------------------------------------------------
def _commit_elsewhere(how: str, ledger: Ledger, make_ledger: Callable[[], Ledger], url: str) -> None:
    """Something that happens between a marking unit and the next one on this thread."""
    if how == "a write on this thread":
        with ledger.unit() as u:
            u.insert_payment(payment("pay_other"))
    elif how == "a read-only unit on this thread":
        with ledger.unit() as u:
            u.payment("pay_1")
    elif how == "another thread":
        worker = threading.Thread(target=_commit_elsewhere, args=("a write on this thread", ledger, make_ledger, url))
        worker.start()
        worker.join()
    elif how == "another connection":
        other = make_ledger()
        with other.unit() as u:
            u.insert_payment(payment("pay_other"))
        other.close()
    elif how == "another process":
        code = ("import sys; from paywire.ledger import open_ledger; from tests.ledger.test_storage_conformance "
                "import payment; ledger = open_ledger(sys.argv[1]); u = ledger.unit(); unit = u.__enter__(); "
                "unit.insert_payment(payment('pay_other')); u.__exit__(None, None, None); ledger.close()")
        subprocess.run([sys.executable, "-c", code, url], check=True, cwd=ROOT, timeout=60)


@pytest.mark.parametrize("between", ["nothing", "a write on this thread", "a read-only unit on this thread",
                                     "another thread", "another connection", "another process"])
def test_a_mark_vouches_for_a_units_writes_only_while_nothing_else_committed(
    ledger: Ledger, make_ledger: Callable[[], Ledger], ledger_url: str, backend: str, between: str,
) -> None:
    with ledger.unit() as u:
        u.insert_payment(payment())
        mark = u.mark()
    if backend == "sqlite":
        assert mark is not None  # SQLite can tell (data_version); a backend that cannot says None
    _commit_elsewhere(between, ledger, make_ledger, ledger_url)
    with ledger.unit() as u:
        assert u.unchanged_since(mark) is (mark is not None and between == "nothing")
        assert u.unchanged_since(None) is False


def test_a_mark_of_a_unit_that_rolled_back_vouches_for_nothing(ledger: Ledger) -> None:
    with pytest.raises(RuntimeError, match="boom"), ledger.unit() as u:
        u.insert_payment(payment())
        mark = u.mark()
        raise RuntimeError("boom")
    with ledger.unit() as u:
        assert u.unchanged_since(mark) is False


# -- transactions -----------------------------------------------------------------------------------
def test_transaction_round_trip_and_lookup_by_key(ledger: Ledger) -> None:
    with ledger.unit() as u:
        u.insert_payment(payment())
        first = txn(status=TransactionStatus.FAILED, retryable=True, error_type="ProviderUnavailable",
                    error_code="server_error", error_message="503", response={"error": "x"}, finished_at=now())
        u.insert_transaction(first)
        second = txn("txn_2", attempt=2, created_at=T0 + timedelta(milliseconds=1))
        u.insert_transaction(second)
        vault = txn("txn_3", pid=None, key="vault-1", kind="vault", amount=None, token="vt_1",
                    created_at=T0 + timedelta(milliseconds=2))
        u.insert_transaction(vault)
        assert u.transaction_by_key("fakepay", "key-1") == second  # the latest attempt
        assert u.transaction_by_key("other", "key-1") is None  # keys are per method
        assert u.transactions("pay_1") == [first, second]
    assert ledger.get_transaction("txn_1") == first
    assert ledger.get_transaction("txn_3") == vault
    assert [t.id for t in ledger.list_transactions(statuses=[TransactionStatus.PENDING])] == ["txn_2", "txn_3"]
    assert [t.id for t in ledger.list_transactions(payment_id="pay_1")] == ["txn_1", "txn_2"]
    assert len(ledger.list_transactions(updated_before=T0 + timedelta(seconds=5))) == 3
    assert ledger.list_transactions(updated_before=T0) == []


def test_a_payments_history_reads_oldest_first_then_by_id_whichever_way_it_is_read(ledger: Ledger) -> None:
    # Inserted out of order, several in one instant (ids break the tie, as `new_id`'s time prefix
    # orders them), on every read of a payment's history: the service decides from its order.
    times = {"txn_c": 0, "txn_a": 1, "txn_e": 1, "txn_b": 1, "txn_d": 2, "txn_0": 3}
    with ledger.unit() as u:
        u.insert_payment(payment())
        for n, (tid, ms) in enumerate(times.items()):
            u.insert_transaction(txn(tid, key=f"key-{n}", created_at=T0 + timedelta(milliseconds=ms)))
    expected = ["txn_c", "txn_a", "txn_b", "txn_e", "txn_d", "txn_0"]
    with ledger.unit() as u:
        assert [t.id for t in u.transactions("pay_1")] == expected
        for lock in (False, True):
            found, history = u.payment_and_transactions("pay_1", lock=lock)
            assert found is not None and found.id == "pay_1"
            assert [t.id for t in history] == expected
        u.insert_payment(payment("pay_2"))
        assert u.payment_and_transactions("pay_2", lock=False)[1] == []
        assert u.payment_and_transactions("pay_2", lock=True)[1] == []
        assert u.payment_and_transactions("pay_none", lock=False) == (None, [])
    assert [t.id for t in ledger.list_transactions(payment_id="pay_1")] == expected


def test_open_transactions_by_look_never_looked_at_first_then_by_next_look_then_oldest(ledger: Ledger) -> None:
    from paywire.ledger.model import Look

    U = TransactionStatus.UNKNOWN
    with ledger.unit() as u:
        u.insert_payment(payment())
        u.insert_payment(payment("pay_2"))
        for n, status in enumerate([U, U, U, TransactionStatus.ACCEPTED, TransactionStatus.SUCCEEDED, U]):
            u.insert_transaction(txn(f"txn_{n}", pid="pay_2" if n == 5 else "pay_1", key=f"key-{n}", status=status,
                                     created_at=T0 + timedelta(milliseconds=n)))
        u.set_looks({"txn_0": Look(3, T0 + timedelta(seconds=9)), "txn_1": Look(1, T0 + timedelta(seconds=5)),
                     "txn_4": Look(1, T0)})
    open_ = [TransactionStatus.UNKNOWN, TransactionStatus.ACCEPTED]
    assert [t.id for t in ledger.list_by_look(statuses=open_)] == ["txn_2", "txn_3", "txn_5", "txn_1", "txn_0"]
    assert [t.id for t in ledger.list_by_look(statuses=open_, limit=2)] == ["txn_2", "txn_3"]
    assert [t.id for t in ledger.list_by_look(statuses=[U], payment_id="pay_1")] == ["txn_2", "txn_1", "txn_0"]


def test_owed_reads_by_next_look_due_by_and_limit_and_cleared(ledger: Ledger) -> None:
    from paywire.ledger.model import Look

    with ledger.unit() as u:
        for n in range(4):
            u.insert_payment(payment(f"pay_{n}"))
        u.set_owed_read("pay_0", Look(2, T0 + timedelta(seconds=9)))
        u.set_owed_read("pay_1", Look(0, T0 + timedelta(seconds=5)))
        u.set_owed_read("pay_2", Look(0, T0))
        assert u.owed_read("pay_1") == Look(0, T0 + timedelta(seconds=5)) and u.owed_read("pay_3") is None
    assert list(ledger.owed_reads()) == ["pay_2", "pay_1", "pay_0"]
    assert ledger.owed_reads(limit=2) == {"pay_2": Look(0, T0), "pay_1": Look(0, T0 + timedelta(seconds=5))}
    assert list(ledger.owed_reads(due_by=T0 + timedelta(seconds=5))) == ["pay_2", "pay_1"]
    assert list(ledger.owed_reads(payment_id="pay_0")) == ["pay_0"] and ledger.owed_reads(payment_id="pay_3") == {}
    with ledger.unit() as u:
        u.set_owed_read("pay_2", Look(1, T0 + timedelta(seconds=60)))  # replaced, not added
        u.set_owed_read("pay_1", None)
        u.set_owed_read("pay_3", None)  # owing none: nothing to clear
    assert ledger.owed_reads() == {"pay_0": Look(2, T0 + timedelta(seconds=9)),
                                   "pay_2": Look(1, T0 + timedelta(seconds=60))}


def test_owed_reads_are_read_through_their_index_in_order_never_sorted_whole(
        ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """Reconcile asks for them on every run: the plan walks the marks' own index in order and stops
    at `limit`, so a ledger with no marks (or many payments) pays nothing for the question."""
    run = ledger.execute  # type: ignore[attr-defined]
    seen: list[tuple[str, tuple[object, ...]]] = []

    def execute(conn: object, sql: str, params: Sequence[object] = ()) -> object:
        seen.append((sql, tuple(params)))
        return run(conn, sql, params)

    monkeypatch.setattr(ledger, "execute", execute)
    ledger.owed_reads(limit=10)
    ledger.owed_reads(due_by=T0, limit=10)
    queries = [q for q in seen if "paywire_owed_reads" in q[0]]
    monkeypatch.undo()
    assert len(queries) == 2
    conn = ledger.connection()  # type: ignore[attr-defined]
    sqlite = ledger.dialect == "sqlite"  # type: ignore[attr-defined]
    if not sqlite:
        ledger.execute(conn, "SET enable_seqscan = off")  # type: ignore[attr-defined]  # an empty table: say what it would use
    for sql, params in queries:
        rows = ledger.execute(conn, ("EXPLAIN QUERY PLAN " if sqlite else "EXPLAIN ") + sql, params).fetchall()  # type: ignore[attr-defined]
        plan = " ".join(str(r[-1] if sqlite else r[0]) for r in rows)
        assert "paywire_owed_reads_next" in plan, plan
        assert "TEMP B-TREE" not in plan and "Sort" not in plan, plan


def test_a_key_is_looked_up_across_the_accounts_methods_the_method_itself_first(ledger: Ledger) -> None:
    """With `siblings` (the other methods of one provider account) the lookup finds the key on
    any of them; the method's own latest attempt wins over a sibling's."""
    with ledger.unit() as u:
        u.insert_payment(payment())
        cards = txn(key="order-1", method="cards")
        sepa = [txn(f"txn_sepa_{n}", key="order-1", method="sepa", attempt=n) for n in (1, 2)]
        for t in (cards, *sepa):
            u.insert_transaction(t)
        assert u.transaction_by_key("wallet", "order-1", siblings=["cards"]) == cards
        assert u.transaction_by_key("cards", "order-1", siblings=["sepa"]) == cards
        assert u.transaction_by_key("sepa", "order-1", siblings=["cards"]) == sepa[1]
        assert u.transaction_by_key("wallet", "order-1", siblings=["sepa", "cards"]) in (cards, sepa[1])
        assert u.transaction_by_key("wallet", "order-1") is None
        assert u.transaction_by_key("wallet", "order-1", siblings=["other"]) is None
        assert u.transaction_by_key("cards", "order-2", siblings=["sepa"]) is None


def test_a_key_and_attempt_are_unique(ledger: Ledger) -> None:
    with ledger.unit() as u:
        u.insert_payment(payment())
        u.insert_transaction(txn())
    with pytest.raises(LedgerIntegrityError), ledger.unit() as u:
        u.insert_transaction(txn("txn_other"))
    assert [t.id for t in ledger.list_transactions()] == ["txn_1"]


def test_open_transactions_may_finish_once(ledger: Ledger) -> None:
    original = txn()
    with ledger.unit() as u:
        u.insert_payment(payment())
        u.insert_transaction(original)
    unknown = attrs.evolve(original, status=TransactionStatus.UNKNOWN, error_type="OutcomeUnknown")
    done = attrs.evolve(original, status=TransactionStatus.SUCCEEDED, provider_reference="cap_1", finished_at=now())
    with ledger.unit() as u:
        u.update_transaction(unknown)  # pending -> unknown
        u.update_transaction(done)  # unknown -> succeeded
    assert ledger.get_transaction("txn_1") == done
    with pytest.raises(LedgerIntegrityError), ledger.unit() as u:
        u.update_transaction(attrs.evolve(done, status=TransactionStatus.FAILED))
    assert ledger.get_transaction("txn_1") == done


def test_finishing_needs_the_claim_it_was_sent_under(ledger: Ledger) -> None:
    original = txn()
    with ledger.unit() as u:
        u.insert_payment(payment())
        u.insert_transaction(original)
    done = attrs.evolve(original, status=TransactionStatus.SUCCEEDED, updated_at=T0 + timedelta(seconds=1),
                        finished_at=T0 + timedelta(seconds=1))
    with ledger.unit(durable=False) as u:  # outcomes may skip the disk flush; they still commit
        assert not u.finish_transaction(done, claimed_at=T0 - timedelta(seconds=1))  # re-claimed since
        assert u.finish_transaction(done, claimed_at=T0)
        assert not u.finish_transaction(done, claimed_at=done.updated_at)  # finished now
    assert ledger.get_transaction("txn_1") == done
    with ledger.unit() as u:  # a durable unit after a relaxed one works as before
        u.insert_transaction(txn("txn_2", key="key-2"))
    assert len(ledger.list_transactions()) == 2


def test_a_time_two_columns_share_is_read_as_one(ledger: Ledger) -> None:
    """A new transaction's creation and update, and an answer's update and finish, are one time
    (as the service records them): read back, each pair is one datetime, decoded once, and
    written back as it was."""
    answered = txn("txn_2", key="key-2", status=TransactionStatus.SUCCEEDED, updated_at=T0 + timedelta(seconds=1),
                   finished_at=T0 + timedelta(seconds=1))
    with ledger.unit() as u:
        u.insert_payment(payment())
        u.insert_transaction(txn())
        u.insert_transaction(answered)
    with ledger.unit() as u:
        pending, done = u.transactions("pay_1")
    assert (pending, done) == (txn(), answered)
    assert pending.updated_at is pending.created_at and pending.finished_at is None
    assert done.finished_at is done.updated_at and done.updated_at is not done.created_at


@pytest.mark.parametrize("sql", [
    "DELETE FROM paywire_transactions",
    "UPDATE paywire_transactions SET status = 'failed' WHERE id = 'txn_done'",
    "UPDATE paywire_transactions SET amount_minor = 1 WHERE id = 'txn_open'",
    "UPDATE paywire_transactions SET idempotency_key = 'other' WHERE id = 'txn_open'",
])
def test_history_is_append_only_in_the_database_itself(ledger: Ledger, sql: str) -> None:
    with ledger.unit() as u:
        u.insert_payment(payment())
        u.insert_transaction(txn("txn_done", key="k1", status=TransactionStatus.SUCCEEDED, finished_at=now()))
        u.insert_transaction(txn("txn_open", key="k2"))
    with pytest.raises(Exception, match=r"append-only|cannot change"):
        raw(ledger, sql)
    assert len(ledger.list_transactions()) == 2


# -- references and events --------------------------------------------------------------------------
def test_references_index_payments(ledger: Ledger) -> None:
    with ledger.unit() as u:
        u.insert_payment(payment())
        u.insert_payment(payment("pay_2"))
        u.add_references("fakepay", "pay_1", ["fp_1", "cap_1", "", "fp_1"])
        u.add_references("fakepay", "pay_2", ["fp_1", "fp_2"])  # a known id keeps its payment
    with ledger.unit() as u:
        assert u.payment_by_reference("fakepay", ["nothing", "cap_1"]) == "pay_1"
        assert u.payment_by_reference("fakepay", ["fp_1"]) == "pay_1"
        assert u.payment_by_reference("fakepay", ["fp_2"]) == "pay_2"
        assert u.payment_by_reference("other", ["fp_1"]) is None
        assert u.payment_by_reference("fakepay", []) is None


def test_waiting_events_are_found_by_any_of_many_references(ledger: Ledger) -> None:
    """However many references and methods a payment's look names (a long history of refunds,
    an account's sibling methods), each unmatched event naming one of them comes once, in order."""
    with ledger.unit() as u:
        u.insert_payment(payment())
        assert u.insert_event(event("evt_1", reference="ref_29", references={"payment": "ref_3"}))
        assert u.insert_event(event("evt_2", reference="ref_0", references={}, received_at=T0 + timedelta(seconds=1)))
        assert u.insert_event(event("evt_3", reference="ref_40", references={}))  # named by no reference asked
    for count in (2, 4, 8, 30):
        refs = [f"ref_{n}" for n in range(count)][::-1]
        with ledger.unit() as u:
            found = u.waiting_events(methods=["other", "fakepay", "third"], payment_id="pay_1", references=refs)
        assert [e.event_id for e in found] == (["evt_1", "evt_2"] if count > 3 else ["evt_2"])


def test_sqlite_waiting_events_build_no_temporary_table(sqlite_ledger: SQLiteLedger) -> None:
    """The look for waiting events follows every operation: on SQLite its few (method,
    reference) pairs are index lookups, not IN lists, which SQLite copies into a temporary
    table on every run."""
    sqlite_ledger.migrate()
    sql, params = sqlite_ledger.waiting_query("pay_1", ["fakepay", "other"], ["ref_1", "ref_2", "ref_3"])
    with closing(sqlite3.connect(sqlite_ledger.path)) as conn:
        program = [row[1] for row in conn.execute(f"EXPLAIN {sql}", params)]
    assert "OpenEphemeral" not in program


def test_events_are_stored_once_and_found_while_waiting(ledger: Ledger) -> None:
    with ledger.unit() as u:
        u.insert_payment(payment())
        assert u.insert_event(event())
        assert not u.insert_event(event(type="changed"))  # (provider, id) is stored once
        assert u.insert_event(event("evt_2", status=EventStatus.DEFERRED, payment_id="pay_1", reference="x"))
        assert u.insert_event(event("evt_3", reference="elsewhere", references={}))
    with ledger.unit() as u:
        waiting = u.waiting_events(methods=["fakepay"], payment_id="pay_1", references=["fp_1"])
        assert [e.event_id for e in waiting] == ["evt_1", "evt_2"]
        both = u.waiting_events(methods=["fakepay"], payment_id="pay_1", references=["cap_1", "fp_1"])
        assert [e.event_id for e in both] == ["evt_1", "evt_2"]  # named twice, returned once
        assert u.waiting_events(methods=["other"], references=["fp_1"]) == []
        # Through any of several methods (one provider account's endpoints): still each once.
        siblings = u.waiting_events(methods=["other", "fakepay", "fakepay"], payment_id="pay_1", references=["fp_1"])
        assert [e.event_id for e in siblings] == ["evt_1", "evt_2"]
        assert [e.event_id for e in u.waiting_events(methods=["other"], payment_id="pay_1")] == ["evt_2"]
        assert [e.event_id for e in u.waiting_events(methods=[], payment_id="pay_1", references=["fp_1"])] == ["evt_2"]
        assert u.waiting_events(methods=[], references=["fp_1"]) == []
        applied = attrs.evolve(event(), status=EventStatus.APPLIED, payment_id="pay_1", applied_at=now(), note="ok")
        u.update_event(applied)
        assert u.event("fakepay", "evt_1") == applied
    assert ledger.get_event("fakepay", "evt_1") == applied
    assert [e.event_id for e in ledger.list_events(statuses=[EventStatus.UNMATCHED])] == ["evt_3"]
    assert [e.event_id for e in ledger.list_events(payment_id="pay_1")] == ["evt_1", "evt_2"]



def test_matchable_events_are_the_unmatched_naming_an_indexed_id(ledger: Ledger) -> None:
    with ledger.unit() as u:
        u.insert_payment(payment())
        u.add_references("fakepay", "pay_1", ["fp_1"])
        assert u.insert_event(event("evt_elsewhere", reference="cap_9", references={"payment": "fp_9"}))
        assert u.insert_event(event("evt_other_method", method="other"))
        assert u.insert_event(event("evt_applied", status=EventStatus.APPLIED, payment_id="pay_1"))
        assert u.insert_event(event("evt_late", received_at=T0 + timedelta(seconds=1)))
        assert u.insert_event(event("evt_early", references={"payment": "fp_1", "capture": "cap_1"}))
    assert [e.event_id for e in ledger.matchable_events()] == ["evt_early", "evt_late"]  # each once, oldest first
    assert [e.event_id for e in ledger.matchable_events(limit=1)] == ["evt_early"]
    # Through one of an account's methods, naming an id indexed under another of them.
    assert [e.event_id for e in ledger.matchable_events(methods=["other", "fakepay", "other"])] == [
        "evt_early", "evt_other_method", "evt_late"]
    assert ledger.matchable_events(methods=["other"]) == []

# -- locking ------------------------------------------------------------------------------------------
def test_units_serialise_read_modify_write_across_threads(make_ledger: Callable[[], Ledger]) -> None:
    """Each thread (own ledger object, own connection) adds 1 to a total under the payment lock;
    no increment may be lost."""
    setup = make_ledger()
    with setup.unit() as u:
        u.insert_payment(payment(minor=10**9))
    workers, rounds = 4, 15
    errors: list[BaseException] = []

    def work() -> None:
        ledger = make_ledger()
        try:
            for _ in range(rounds):
                with ledger.unit() as u:
                    current = u.payment("pay_1", lock=True)
                    assert current is not None
                    more = current.authorized + Money(1, "EUR")
                    u.update_payment(attrs.evolve(current, authorized=more))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors
    assert setup.get_payment("pay_1").authorized == Money(workers * rounds, "EUR")  # type: ignore[union-attr]


def test_key_locks_make_check_then_insert_atomic(make_ledger: Callable[[], Ledger]) -> None:
    """Threads racing to record the first transaction under one key: exactly one inserts it."""
    setup = make_ledger()
    with setup.unit() as u:
        u.insert_payment(payment())
    inserted: list[str] = []
    barrier = threading.Barrier(4)

    def work(index: int) -> None:
        ledger = make_ledger()
        barrier.wait()
        with ledger.unit() as u:
            u.lock_key("fakepay", "shared-key")
            if u.transaction_by_key("fakepay", "shared-key") is None:
                u.insert_transaction(txn(f"txn_{index}", key="shared-key"))
                inserted.append(f"txn_{index}")

    threads = [threading.Thread(target=work, args=(i,)) for i in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(inserted) == 1
    assert [t.id for t in setup.list_transactions()] == inserted



@pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="counts this process's open files in /proc")
def test_a_thread_that_ends_leaves_no_connection_open(ledger: Ledger) -> None:
    """A server that starts a thread per request (or retires idle pool threads) must not leak a
    database connection (an SQLite file's handles, a PostgreSQL session) for each thread."""

    def read() -> None:
        with ledger.unit() as u:
            u.payment("pay_1")

    def open_files_after_threads(count: int) -> int:
        for _ in range(count):
            worker = threading.Thread(target=read)
            worker.start()
            worker.join()
        gc.collect()  # what only the cycle collector frees is not held
        return len(list(Path("/proc/self/fd").iterdir()))

    read()
    settled = open_files_after_threads(5)  # whatever a backend keeps once (SQLite may keep a closed handle to reuse)
    assert open_files_after_threads(20) <= settled
    read()  # the ledger still works, on this thread's connection

def test_sqlite_binds_none_and_bools_as_it_always_did_and_keeps_an_adapter_of_the_shops() -> None:
    """The SQLite ledger registers adapters for None and bool (a faster way to what sqlite3 binds
    anyway); a shop's own adapter for either, registered first, stays in force."""
    code = (
        "import sqlite3\n"
        "sqlite3.register_adapter(bool, lambda value: 'yes' if value else 'no')\n"
        "import paywire.ledger.sqlite\n"
        "row = sqlite3.connect(':memory:').execute('SELECT ?, typeof(?), ?', (True, None, None)).fetchone()\n"
        "print(row)\n"
    )
    shop = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True, cwd=ROOT)
    assert shop.stdout.strip() == "('yes', 'null', None)"
    import sqlite3

    import paywire.ledger.sqlite  # noqa: F401 - what registers them

    row = sqlite3.connect(":memory:").execute("SELECT ?, ?, typeof(?), ?, typeof(?)", (True, False, True, None, None))
    assert row.fetchone() == (1, 0, "integer", None, "null")


# -- opening ------------------------------------------------------------------------------------------
def test_open_ledger_urls(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match="the directory 'rel' does not exist"):
        open_ledger("sqlite:///rel/ledger.db")  # a typo in a URL never creates directories
    assert not (tmp_path / "rel").exists()
    (tmp_path / "rel").mkdir()
    relative = open_ledger("sqlite:///rel/ledger.db")
    assert isinstance(relative, SQLiteLedger) and relative.path == Path("rel/ledger.db")
    absolute = open_ledger(f"sqlite:///{tmp_path}/abs.db")
    assert isinstance(absolute, SQLiteLedger) and absolute.path == tmp_path / "abs.db"
    bare = open_ledger(str(tmp_path / "bare.db"))
    assert isinstance(bare, SQLiteLedger)
    for ledger in (relative, absolute, bare):
        assert ledger.schema_version() == MIGRATIONS[-1].version
        ledger.close()
    with pytest.raises(ConfigurationError, match="scheme"):
        open_ledger("mysql://localhost/db")
    with pytest.raises(ConfigurationError, match="in-memory"):
        SQLiteLedger(":memory:")


def _ledger_is_there(ledger_url: str) -> bool:
    """Whether anything of a ledger exists where `ledger_url` points: the SQLite file, or the
    PostgreSQL schema."""
    if ledger_url.startswith("sqlite:///"):
        return Path(ledger_url.removeprefix("sqlite:///")).exists()
    import psycopg

    dsn, _, schema = ledger_url.partition("?schema=")
    with psycopg.connect(dsn) as conn:
        return conn.execute("SELECT count(*) FROM pg_namespace WHERE nspname = %s", (schema,)).fetchone() != (0,)


def test_opening_only_a_ledger_that_exists_creates_none(ledger_url: str) -> None:
    """`create=False` (the commands that only read): where there is no ledger (a mistyped file,
    database or schema), a ConfigurationError and nothing made, not a new ledger that looks like
    one with no payments; a ledger that exists opens as usual."""
    with pytest.raises(ConfigurationError, match="no ledger"):
        open_ledger(ledger_url, create=False)
    assert not _ledger_is_there(ledger_url)
    open_ledger(ledger_url).close()
    ledger = open_ledger(ledger_url, create=False)
    try:
        assert ledger.schema_version() == MIGRATIONS[-1].version and ledger.list_payments() == []
    finally:
        ledger.close()


def test_a_place_that_holds_no_ledger_is_no_ledger_and_is_left_as_it_was(ledger_url: str) -> None:
    """An SQLite file or a PostgreSQL schema that exists but holds no ledger (another program's
    database, an empty file, a schema of other tables) is no ledger for `create=False` either:
    refused, and not turned into a ledger (nor the SQLite file switched to WAL)."""
    if ledger_url.startswith("sqlite:///"):
        path = Path(ledger_url.removeprefix("sqlite:///"))
        with closing(sqlite3.connect(path)) as other:
            other.execute("CREATE TABLE notes (body TEXT)")
            other.commit()
        before = path.read_bytes()
        with pytest.raises(ConfigurationError, match=f"there is no ledger at {re.escape(repr(str(path)))}"):
            open_ledger(ledger_url, create=False)
        assert path.read_bytes() == before and sorted(p.name for p in path.parent.iterdir()) == [path.name]
        path.write_bytes(b"")
        with pytest.raises(ConfigurationError, match="no ledger"):
            SQLiteLedger(path, create=False)
        assert path.read_bytes() == b""
        return
    import psycopg

    dsn, _, schema = ledger_url.partition("?schema=")
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{schema}"')
        conn.execute(f'CREATE TABLE "{schema}".notes (body TEXT)')
    with pytest.raises(ConfigurationError, match="no ledger"):
        open_ledger(ledger_url, create=False)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                            (schema,)).fetchall() == [("notes",)]


def test_an_sqlite_ledger_opened_only_if_it_exists_makes_no_file_nor_directory(tmp_path: Path) -> None:
    """`SQLiteLedger(path, create=False)`, as `PostgresLedger(create=False)`: a path where nothing
    is gets a ConfigurationError naming it; neither the file nor its directory is made."""
    for path in (tmp_path / "ledgr.db", tmp_path / "typo" / "ledger.db"):
        with pytest.raises(ConfigurationError, match=f"there is no ledger at {re.escape(repr(str(path)))}"):
            SQLiteLedger(path, create=False)
    assert list(tmp_path.iterdir()) == []
    SQLiteLedger(tmp_path / "ledger.db").close()
    ledger = SQLiteLedger(tmp_path / "ledger.db", create=False)
    try:
        assert ledger.schema_version() == MIGRATIONS[-1].version and ledger.list_payments() == []
    finally:
        ledger.close()


@pytest.mark.parametrize(("url", "why"), [
    ("host=127.0.0.1 port=5432 dbname=test user=postgres password=hunter2", "libpq keyword string"),
    ("dbname=test", "libpq keyword string"),
    ("postgresql://[::1/test", "malformed"),
    ("sqlite://[x/ledger.db", "malformed"),
    ("postgresql://postgres:hunter2@[::1/test", "malformed"),
])
def test_a_url_that_names_no_ledger_as_given_is_a_configuration_error_with_its_password_masked(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, url: str, why: str,
) -> None:
    """A libpq keyword string is what PostgresLedger takes, but as a ledger URL it has no scheme:
    taken for a file path it opened an empty SQLite ledger named after it, password and all, one
    per working directory. Now it is refused, like a URL urlsplit cannot take apart."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match=why) as refused:
        open_ledger(url)
    assert "hunter2" not in str(refused.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("password", ["hun/ter2", "hun#ter2", "hun?ter2", "hun@ter2"])
def test_a_password_with_a_character_urls_reserve_is_refused_masked(password: str) -> None:
    """Unencoded, such a character ends the host part early: libpq would be asked to reach a host
    named after half the password, and the message would show the other half."""
    url = f"postgresql://shop:{password}@127.0.0.1:5432/test"
    assert masked_url(url) == "postgresql://shop:***@127.0.0.1:5432/test"
    with pytest.raises(ConfigurationError, match="percent-encode") as refused:
        open_ledger(url)
    assert "ter2" not in str(refused.value) and "hun" not in str(refused.value)


@pytest.mark.parametrize("url", [
    "postgresql://postgres@127.0.0.1:5432/test?password=hunter2&sslmode=bogus",
    "postgresql://postgres:hunter2@127.0.0.1:5432/test?sslmode=bogus",
    "postgresql://postgres@127.0.0.1:5432/test?PASSWORD=hunter2&sslmode=bogus",
])
def test_a_password_is_masked_wherever_the_url_gives_it(url: str) -> None:
    assert "hunter2" not in masked_url(url) and "***" in masked_url(url)
    with pytest.raises(ConfigurationError, match="sslmode") as refused:
        open_ledger(url)
    assert "hunter2" not in str(refused.value)


@pytest.mark.postgres
@pytest.mark.parametrize("schema", ["s" * 64, "pwtest_" + "é" * 29, "pw\x00x"])
def test_a_schema_name_postgresql_would_cut_short_is_refused(postgres_dsn: str, schema: str) -> None:
    """PostgreSQL cuts identifiers at 63 bytes: two names alike that far would share tables while
    their key locks (which carry the whole name) differ."""
    with pytest.raises(ConfigurationError, match="63 bytes"):
        PostgresLedger(postgres_dsn, schema=schema)


@pytest.mark.postgres
def test_postgres_url_with_schema(postgres_dsn: str) -> None:
    import os

    schema = f"pwtest_{os.getpid()}_url"
    ledger = open_ledger(f"{postgres_dsn}?schema={schema}&application_name=paywire-test")
    try:
        assert ledger.schema_version() == MIGRATIONS[-1].version
        assert "password" not in repr(ledger) and schema in repr(ledger)
        row = ledger.execute(ledger.connection(), "SELECT current_schema()").fetchone()  # type: ignore[attr-defined]
        assert row[0] == schema
    finally:
        ledger.close()


@pytest.mark.postgres
def test_postgres_url_passes_libpq_its_other_parameters_as_written(postgres_dsn: str) -> None:
    """libpq reads a URL's query as percent-encoded, with no "+" for a space: `options` setting
    the ledger's lock_timeout (the way to bound its lock waits per ledger) reaches the server as
    given, and so does a literal "+" in another parameter."""
    import os
    from urllib.parse import quote

    schema = f"pwtest_{os.getpid()}_options"
    options = quote("-c lock_timeout=1234 -c statement_timeout=5678", safe="")
    ledger = open_ledger(f"{postgres_dsn}?options={options}&schema={schema}&application_name=paywire+test")
    try:
        row = ledger.execute(ledger.connection(),  # type: ignore[attr-defined]
                             "SELECT current_setting('lock_timeout'), current_setting('statement_timeout'), "
                             "current_setting('application_name'), current_schema()").fetchone()
        assert row == ("1234ms", "5678ms", "paywire+test", schema)
    finally:
        ledger.close()
