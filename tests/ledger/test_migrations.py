"""A ledger written by the previous release is upgraded in place, every row kept as it was.

The previous release's schema is built by its own migration (version 1, unchanged in
`MIGRATIONS`), filled with rows through plain SQL as that release wrote them, and then opened by
the current code, which migrates it. On SQLite and PostgreSQL alike.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import attrs
import pytest

from paywire import Money
from paywire.ledger import Ledger, LedgerIntegrityError, TransactionStatus, _sql, open_ledger
from paywire.ledger.migrations import MIGRATIONS
from paywire.ledger.model import LEGACY_LIFE, Look, PaymentState, SettledBy, now
from paywire.service.waiting import DEFAULT_BUYER_WAIT
from tests.ledger.test_storage_conformance import payment, raw, txn

V1_TRANSACTION_COLUMNS = (
    "id, payment_id, method, kind, currency, amount_minor, status, idempotency_key, attempt, fingerprint, "
    "provider_reference, parent_id, origin, error_type, error_code, error_message, retryable, token, "
    "request, response, created_at, updated_at, finished_at"
)
# The columns of the events every release wrote (migration 7 added `closes_capture`).
V1_EVENT_COLUMNS = (
    "provider, event_id, method, type, kind, reference, refs, currency, amount_minor, total_minor, status, "
    "payment_id, note, received_at, applied_at"
)
T = 1_764_000_000_000_000  # microseconds since the epoch, as the ledger stores times

V1_ROWS = [  # one transaction in every status the previous release wrote
    ("txn_a", "pay_1", "fakepay", "authorize", "EUR", 10_000, "succeeded", "k-auth", 1, "f" * 64, "fp_1", None,
     "service", None, None, None, False, None, '{"command":"authorize"}', '{"status":"succeeded"}', T, T + 5, T + 5),
    ("txn_c", "pay_1", "fakepay", "capture", "EUR", 2_500, "unknown", "k-cap", 1, "c" * 64, None, None,
     "service", "OutcomeUnknown", None, "no answer", True, None, '{"command":"capture"}', '{}', T + 10, T + 11,
     None),
    ("txn_r", "pay_1", "fakepay", "refund", "EUR", 500, "pending", "k-ref", 1, "r" * 64, None, "txn_a",
     "service", None, None, None, False, None, '{"command":"refund"}', '{}', T + 20, T + 20, None),
    ("txn_v", "pay_1", "fakepay", "void", None, None, "failed", "k-void", 1, "v" * 64, None, None,
     "service", "StateError", "payment_final", "cannot void", False, None, '{}', '{"error":"StateError"}',
     T + 30, T + 31, T + 31),
    ("txn_x", "pay_1", "fakepay", "complete", "EUR", 10_000, "action_required", "k-x", 1, "x" * 64, "fp_1",
     None, "service", None, None, None, False, None, '{}', '{"status":"action_required"}', T + 40, T + 41, T + 41),
]


@pytest.fixture
def previous_release(ledger_url: str) -> str:
    """A ledger URL holding the previous release's schema (migration 1 only) and its rows."""
    def fill(old: Ledger) -> None:
        with old.unit() as u:
            u.insert_payment(payment(references={"payment": "fp_1"}))
        _write(old, f"INSERT INTO paywire_transactions ({V1_TRANSACTION_COLUMNS}) VALUES "
                    f"({', '.join(['?'] * 23)})", V1_ROWS)
        _write(old, f"INSERT INTO paywire_events ({V1_EVENT_COLUMNS}) VALUES ({', '.join(['?'] * 15)})",
               [("fakepay", "evt_1", "fakepay", "payment.captured", "captured", "cap_9", '{"payment":"fp_1"}', "EUR",
                 2_500, None, "unmatched", None, None, T + 50, None)])

    return written_by(1, ledger_url, fill)


def _write(ledger: Ledger, sql: str, rows: list[tuple[Any, ...]]) -> None:
    conn = ledger.connection()  # type: ignore[attr-defined]
    ledger.execute(conn, "BEGIN")  # type: ignore[attr-defined]
    for row in rows:
        ledger.execute(conn, sql, row)  # type: ignore[attr-defined]
    ledger.execute(conn, "COMMIT")  # type: ignore[attr-defined]


def _rows(ledger: Ledger, sql: str) -> list[tuple[Any, ...]]:
    conn = ledger.connection()  # type: ignore[attr-defined]
    return [tuple(r) for r in ledger.execute(conn, sql).fetchall()]  # type: ignore[attr-defined]


def _snapshot(ledger: Ledger) -> dict[str, list[tuple[Any, ...]]]:
    return {
        "payments": _rows(ledger, f"SELECT {_sql.PAYMENT_COLUMNS} FROM paywire_payments ORDER BY id"),
        "transactions": _rows(ledger, f"SELECT {V1_TRANSACTION_COLUMNS} FROM paywire_transactions ORDER BY id"),
        "references": _rows(ledger, "SELECT method, reference, payment_id FROM paywire_references ORDER BY reference"),
        "events": _rows(ledger, f"SELECT {V1_EVENT_COLUMNS} FROM paywire_events ORDER BY event_id"),
    }


@contextmanager
def schema(version: int) -> Iterator[None]:
    """The code of the release that wrote schema `version` (its migrations, no later one)."""
    assert [m.version for m in MIGRATIONS[:version]] == list(range(1, version + 1))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_sql, "MIGRATIONS", MIGRATIONS[:version])
        yield


def written_by(version: int, ledger_url: str, fill: Callable[[Ledger], None]) -> str:
    """`ledger_url`, holding schema `version` and the rows `fill` writes with that release's code."""
    with schema(version):
        old = open_ledger(ledger_url)
        assert old.schema_version() == version
        fill(old)
        old.close()
    return ledger_url


def snapshot_of(version: int, ledger_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of the ledger, read by the code of the release that wrote schema `version`."""
    with schema(version):
        old = open_ledger(ledger_url)
        rows = _snapshot(old)
        old.close()
    return rows


def test_upgrading_keeps_every_row_of_the_previous_release(previous_release: str) -> None:
    before = snapshot_of(1, previous_release)
    ledger = open_ledger(previous_release)
    try:
        assert ledger.schema_version() == MIGRATIONS[-1].version
        assert _snapshot(ledger) == before
        assert len(before["transactions"]) == len(V1_ROWS)
        for row in V1_ROWS:  # read through the current code: every field as written, the new ones empty
            stored = ledger.get_transaction(row[0])
            assert stored is not None
            assert (stored.status, stored.idempotency_key, stored.provider_reference) == (row[6], row[7], row[10])
            assert stored.amount == (Money(row[5], row[4]) if row[4] else None)
            assert stored.settle_after is None and stored.settled_by is None
        assert open_ledger(previous_release).schema_version() == MIGRATIONS[-1].version  # a second start: no-op
    finally:
        ledger.close()


def test_a_command_that_only_reads_upgrades_the_previous_release_as_any_start_does(previous_release: str) -> None:
    """Opening only a ledger that exists (`create=False`) takes the previous release's ledger as
    it is there and migrates it, on PostgreSQL as on SQLite: it is not "no ledger"."""
    before = snapshot_of(1, previous_release)
    ledger = open_ledger(previous_release, create=False)
    try:
        assert ledger.schema_version() == MIGRATIONS[-1].version and _snapshot(ledger) == before
    finally:
        ledger.close()


def test_an_upgraded_ledger_keeps_its_guards_and_gains_the_new_statuses(previous_release: str) -> None:
    ledger = open_ledger(previous_release)
    try:
        for sql in ("DELETE FROM paywire_transactions",
                    "UPDATE paywire_transactions SET status = 'failed' WHERE id = 'txn_a'",
                    "UPDATE paywire_transactions SET amount_minor = 1 WHERE id = 'txn_c'"):
            with pytest.raises(Exception, match=r"append-only|cannot change"):
                raw(ledger, sql)
        with ledger.unit() as u:
            u.insert_transaction(txn("txn_new", key="k-new", status=TransactionStatus.ACCEPTED,
                                     provider_reference="cap_2", settle_after=now()))
        assert [t.id for t in ledger.list_transactions(statuses=sorted(TransactionStatus.OPEN))] == [
            "txn_c", "txn_r", "txn_new"]
        legacy = ledger.get_transaction("txn_r")
        assert legacy is not None and legacy.expired(legacy.updated_at + LEGACY_LIFE)
        assert not legacy.expired(legacy.updated_at + LEGACY_LIFE - timedelta(seconds=1))
    finally:
        ledger.close()


# -- the two changes a finished row still allows ---------------------------------------------------
def test_a_finished_row_may_learn_its_reference_and_nothing_else(ledger: Ledger) -> None:
    done = txn(status=TransactionStatus.SUCCEEDED, finished_at=now(), settled_by=SettledBy.RECONCILE)
    with ledger.unit() as u:
        u.insert_payment(payment())
        u.insert_transaction(done)
    with ledger.unit() as u:
        u.learn_reference(done.id, "re_1")
        u.learn_reference(done.id, "re_2")  # a reference once known is kept
    assert ledger.get_transaction(done.id) == attrs.evolve(done, provider_reference="re_1")
    with pytest.raises(Exception, match="cannot change"):
        raw(ledger, "UPDATE paywire_transactions SET provider_reference = NULL, status = 'failed'")


_REWRITES = {  # a change to each column the reference may not bring along
    "status": "status = 'failed'", "settled_by": "settled_by = 'webhook'", "error_type": "error_type = 'X'",
    "error_code": "error_code = 'x'", "error_message": "error_message = 'rewritten'",
    "retryable": "retryable = NOT retryable", "token": "token = 'tok_x'",
    "request": """request = '{"command":"rewritten"}'""", "response": """response = '{"status":"rewritten"}'""",
    "updated_at": "updated_at = 1", "finished_at": "finished_at = 1", "settle_after": "settle_after = 1",
}


@pytest.mark.parametrize("column", list(_REWRITES))
def test_a_finished_row_learning_its_reference_cannot_bring_another_change(ledger: Ledger, column: str) -> None:
    done = txn(status=TransactionStatus.SUCCEEDED, finished_at=now(), settled_by=SettledBy.ANSWER,
               response={"status": "succeeded"})
    with ledger.unit() as u:
        u.insert_payment(payment())
        u.insert_transaction(done)
    with pytest.raises(Exception, match="cannot change"):
        raw(ledger, f"UPDATE paywire_transactions SET provider_reference = 'cap_forged', {_REWRITES[column]}")
    assert ledger.get_transaction(done.id) == done


@pytest.fixture
def release_3(ledger_url: str) -> str:
    """A ledger URL holding schema 3 (the release before migration 4) and rows in it."""
    def fill(old: Ledger) -> None:
        with old.unit() as u:
            u.insert_payment(payment(references={"payment": "fp_1"}))
            u.insert_transaction(txn("txn_open", key="k-open", status=TransactionStatus.ACCEPTED, settle_after=now()))
            u.insert_transaction(txn("txn_done", key="k-done", status=TransactionStatus.SUCCEEDED, finished_at=now(),
                                     settled_by=SettledBy.ANSWER))
        _write(old, "UPDATE paywire_transactions SET provider_reference = 'cap_1', response = '{\"forged\":1}' "
                    "WHERE id = 'txn_done'", [()])  # what schema 3's guard let through: kept as it is

    return written_by(3, ledger_url, fill)


def test_migration_4_keeps_every_row_and_holds_a_learning_row_to_its_reference(release_3: str) -> None:
    before = snapshot_of(3, release_3)
    ledger = open_ledger(release_3)
    try:
        assert ledger.schema_version() == MIGRATIONS[-1].version >= 4
        assert _snapshot(ledger) == before and len(before["transactions"]) == 2
        with ledger.unit() as u:
            u.insert_transaction(txn("txn_new", key="k-new", status=TransactionStatus.SUCCEEDED, finished_at=now(),
                                     settled_by=SettledBy.ANSWER))
        with pytest.raises(Exception, match="cannot change"):
            raw(ledger, "UPDATE paywire_transactions SET provider_reference = 'cap_2', response = '{\"x\":1}' "
                        "WHERE id = 'txn_new'")
        with ledger.unit() as u:
            u.learn_reference("txn_new", "cap_2")  # learning the reference alone still works
        learnt = ledger.get_transaction("txn_new")
        assert learnt is not None and learnt.provider_reference == "cap_2"
        assert open_ledger(release_3).schema_version() == MIGRATIONS[-1].version  # a second start: no-op
    finally:
        ledger.close()


@pytest.fixture
def release_4(ledger_url: str) -> str:
    """A ledger URL holding schema 4 (the release before migration 5) and rows in it: payments,
    an open transaction and its look, a finished one."""
    def fill(old: Ledger) -> None:
        with old.unit() as u:
            u.insert_payment(payment(references={"payment": "fp_1"}))
            u.insert_payment(payment("pay_2"))
            u.insert_transaction(txn("txn_open", key="k-open", status=TransactionStatus.UNKNOWN, settle_after=now()))
            u.insert_transaction(txn("txn_done", pid="pay_2", key="k-done", status=TransactionStatus.SUCCEEDED,
                                     finished_at=now(), settled_by=SettledBy.ANSWER, provider_reference="cap_1"))
            u.set_looks({"txn_open": Look(2, now())})

    return written_by(4, ledger_url, fill)


def test_migration_5_keeps_every_row_and_adds_no_owed_read(release_4: str) -> None:
    """Upgraded, the release-4 ledger holds every row as it was (its looks too), and no payment
    owes a read: none was marked by a release that kept no marks."""
    looks_sql = "SELECT transaction_id, looks, next_at FROM paywire_reconcile_looks ORDER BY transaction_id"
    with schema(4):
        old = open_ledger(release_4)
        before, looks = _snapshot(old), _rows(old, looks_sql)
        old.close()
    ledger = open_ledger(release_4)
    try:
        assert ledger.schema_version() == MIGRATIONS[-1].version >= 5
        assert _snapshot(ledger) == before and _rows(ledger, looks_sql) == looks
        assert (len(before["payments"]), len(before["transactions"]), len(looks)) == (2, 2, 1)
        assert ledger.owed_reads() == {}
        with ledger.unit() as u:  # an old payment may owe a read now
            u.set_owed_read("pay_2", Look(0, now()))
        assert list(ledger.owed_reads()) == ["pay_2"]
        assert _snapshot(ledger) == before
        assert open_ledger(release_4).schema_version() == MIGRATIONS[-1].version  # a second start: no-op
    finally:
        ledger.close()


@pytest.fixture
def release_5(ledger_url: str) -> str:
    """A ledger URL holding schema 5 (the release before migration 6): two payments waiting for
    their buyer, one of them already owing a read, and one pending."""
    def fill(old: Ledger) -> None:
        with old.unit() as u:
            u.insert_payment(payment("pay_waiting", state=PaymentState.ACTION_REQUIRED))
            u.insert_payment(payment("pay_marked", state=PaymentState.ACTION_REQUIRED))
            u.insert_payment(payment("pay_pending"))
            u.set_owed_read("pay_marked", Look(3, now()))

    return written_by(5, ledger_url, fill)


def test_migration_6_marks_each_payment_an_earlier_release_left_waiting_as_owing_a_read(release_5: str) -> None:
    """A payment left waiting for its buyer by a release that scheduled no read of it owes one an
    hour (the default `buyer_wait`) after its last change, as one that starts waiting now does; a
    mark already there stands, and every other row is kept as it was."""
    owed_sql = "SELECT payment_id, looks, next_at FROM paywire_owed_reads ORDER BY payment_id"
    with schema(5):
        old = open_ledger(release_5)
        before, owed = _snapshot(old), _rows(old, owed_sql)
        waiting = old.get_payment("pay_waiting")
        old.close()
    assert waiting is not None and [row[0] for row in owed] == ["pay_marked"]
    ledger = open_ledger(release_5)
    try:
        assert ledger.schema_version() == MIGRATIONS[-1].version >= 6
        assert _snapshot(ledger) == before
        assert _rows(ledger, owed_sql) == sorted([*owed, ("pay_waiting", 0, _sql.to_us(waiting.updated_at)
                                                          + int(DEFAULT_BUYER_WAIT) * 1_000_000)])
        assert ledger.owed_reads()["pay_waiting"] == Look(0, waiting.updated_at + timedelta(seconds=DEFAULT_BUYER_WAIT))
        assert open_ledger(release_5).schema_version() == MIGRATIONS[-1].version  # a second start: no-op
    finally:
        ledger.close()


@pytest.fixture
def release_6(ledger_url: str) -> str:
    """A ledger URL holding schema 6 (the release before migration 7): a payment and its captured
    events as that release stored them, applied, deferred and unmatched, none saying whether its
    capture was final (that release kept no such word)."""
    def fill(old: Ledger) -> None:
        with old.unit() as u:
            u.insert_payment(payment(references={"payment": "fp_1"}, state=PaymentState.AUTHORIZED))
        _write(old, f"INSERT INTO paywire_events ({V1_EVENT_COLUMNS}) VALUES ({', '.join(['?'] * 15)})", [
            ("fakepay", f"evt_{status}", "fakepay", "payment.captured", "captured", f"cap_{n}",
             '{"payment":"fp_1"}', "EUR", 1_000 + n, None, status, None if status == "unmatched" else "pay_1",
             None, T + n, T + n + 1 if status == "applied" else None)
            for n, status in enumerate(("applied", "deferred", "unmatched"))])
        _write(old, "INSERT INTO paywire_event_references (provider, event_id, method, reference) VALUES (?, ?, ?, ?)",
               [("fakepay", "evt_unmatched", "fakepay", "cap_2")])

    return written_by(6, ledger_url, fill)


def test_migration_7_keeps_every_event_and_reads_the_old_ones_as_closing_nothing(release_6: str) -> None:
    """Upgraded, the release-6 ledger holds every row as it was; its events' new column is empty
    and read as "closes nothing", as release 6 applied them; an event stored from then on keeps
    whether its capture was final, through every read of events."""
    before = snapshot_of(6, release_6)
    ledger = open_ledger(release_6)
    try:
        assert ledger.schema_version() == MIGRATIONS[-1].version >= 7
        assert _snapshot(ledger) == before and len(before["events"]) == 3
        assert _rows(ledger, "SELECT event_id, closes_capture FROM paywire_events ORDER BY event_id") == [
            ("evt_applied", None), ("evt_deferred", None), ("evt_unmatched", None)]
        old = ledger.list_events()
        assert [(e.event_id, e.closes_capture) for e in old] == [
            ("evt_applied", False), ("evt_deferred", False), ("evt_unmatched", False)]
        with ledger.unit() as u:
            u.insert_event(attrs.evolve(old[2], event_id="evt_final", closes_capture=True))
            u.insert_event(attrs.evolve(old[2], event_id="evt_not_final", closes_capture=False))
            waiting = u.waiting_events(methods=["fakepay"], payment_id="pay_1", references=["cap_2"])
        assert [(e.event_id, e.closes_capture) for e in waiting] == [
            ("evt_deferred", False), ("evt_final", True), ("evt_not_final", False), ("evt_unmatched", False)]
        final = ledger.get_event("fakepay", "evt_final")
        assert final is not None and final.closes_capture and final == attrs.evolve(old[2], event_id="evt_final",
                                                                                     closes_capture=True)
        assert [row for row in _snapshot(ledger)["events"] if row[1] in {"evt_applied", "evt_deferred",
                                                                         "evt_unmatched"}] == before["events"]
        assert open_ledger(release_6).schema_version() == MIGRATIONS[-1].version  # a second start: no-op
    finally:
        ledger.close()


def test_undoing_migration_7_as_the_docs_say_lets_release_6_open_the_ledger_again(release_6: str) -> None:
    """Going back to release 6 (docs/ledger.md): the column dropped and the step forgotten, release
    6 opens the ledger with every row it knew kept, an event stored since among them; the release
    migrates it again afterwards."""
    ledger = open_ledger(release_6)
    with ledger.unit() as u:
        u.insert_event(attrs.evolve(ledger.list_events()[2], event_id="evt_since", closes_capture=True))
    before = _snapshot(ledger)
    _write(ledger, "ALTER TABLE paywire_events DROP COLUMN closes_capture", [()])
    _write(ledger, "DELETE FROM paywire_schema WHERE version = 7", [()])
    ledger.close()
    assert snapshot_of(6, release_6) == before and len(before["events"]) == 4
    again = open_ledger(release_6)
    try:
        assert again.schema_version() == MIGRATIONS[-1].version and _snapshot(again) == before
        assert not any(e.closes_capture for e in again.list_events())  # kept by no release that knew it
    finally:
        again.close()


def test_release_4_keeps_working_on_a_ledger_migration_5_upgraded_until_restarted_then_after_undoing_it(
        release_4: str) -> None:
    """What docs/ledger.md says of upgrading several workers: a release-4 worker already running
    goes on writing to a ledger a release-5 worker has migrated (migration 5 only adds a table),
    one started afterwards refuses the ledger, and undoing migration 5 by hand (the statements
    the docs give) lets it start again with every row kept."""
    from paywire.errors import ConfigurationError

    with schema(4):
        running = open_ledger(release_4)  # a worker of the previous release, started before the upgrade
    upgraded = open_ledger(release_4)
    with upgraded.unit() as u:
        u.set_owed_read("pay_2", Look(0, now()))
    with schema(4):
        with running.unit() as u:
            u.insert_payment(payment("pay_3"))
            u.insert_transaction(txn("txn_new", pid="pay_3", key="k-new"))
        assert running.get_transaction("txn_new") is not None
        with pytest.raises(ConfigurationError, match="newer than this paywire release"):
            open_ledger(release_4)  # restarted after the upgrade
        running.close()
    before = _snapshot(upgraded)
    _write(upgraded, "DROP TABLE paywire_owed_reads", [()])
    _write(upgraded, "DELETE FROM paywire_schema WHERE version >= 5", [()])  # 5 and what came after it
    upgraded.close()
    with schema(4):
        restarted = open_ledger(release_4)
        assert restarted.schema_version() == 4 and _snapshot(restarted) == before
        assert "pay_3" in {row[0] for row in before["payments"]}
        restarted.close()


def test_only_reconciliations_not_applied_gives_way_to_the_requests_own_answer(ledger: Ledger) -> None:
    guessed = txn("txn_g", key="k-g", status=TransactionStatus.FAILED, finished_at=now(),
                  settled_by=SettledBy.RECONCILE, retryable=True)
    answered = txn("txn_h", key="k-h", status=TransactionStatus.FAILED, finished_at=now(),
                   settled_by=SettledBy.ANSWER)
    with ledger.unit() as u:
        u.insert_payment(payment())
        u.insert_transaction(guessed)
        u.insert_transaction(answered)
    late = attrs.evolve(guessed, status=TransactionStatus.SUCCEEDED, provider_reference="cap_1",
                        settled_by=SettledBy.ANSWER, retryable=False)
    with ledger.unit() as u:
        assert not u.overrule(late, status=TransactionStatus.UNKNOWN)  # the row is not unknown
        assert u.overrule(late, status=TransactionStatus.FAILED)
    assert ledger.get_transaction("txn_g") == late
    with pytest.raises(LedgerIntegrityError), ledger.unit() as u:  # a provider's own failure stands
        u.overrule(attrs.evolve(answered, status=TransactionStatus.SUCCEEDED), status=TransactionStatus.FAILED)
    with pytest.raises(LedgerIntegrityError), ledger.unit() as u:  # and so does the late answer, once recorded
        u.overrule(attrs.evolve(late, status=TransactionStatus.FAILED), status=TransactionStatus.SUCCEEDED)
    assert ledger.get_transaction("txn_h") == answered


# -- a ledger newer than the code ------------------------------------------------------------------
def test_a_ledger_newer_than_the_code_is_refused_clearly(ledger_url: str) -> None:
    """A ledger migrated by a later release (a schema version this code does not know) is refused
    at start-up with a ConfigurationError naming both versions."""
    from paywire.errors import ConfigurationError

    current = open_ledger(ledger_url)
    newer = MIGRATIONS[-1].version + 1
    _write(current, "INSERT INTO paywire_schema (version, description, applied_at) VALUES (?, ?, ?)",
           [(newer, "a later release's migration", T)])
    current.close()
    with pytest.raises(ConfigurationError, match=rf"{newer}.*{MIGRATIONS[-1].version}|"
                                                 rf"{MIGRATIONS[-1].version}.*{newer}"):
        open_ledger(ledger_url)


@contextmanager
def later_release(*compatible_with: int | None) -> Iterator[tuple[Any, ...]]:
    """The code of a later release (its migrations, yielded): this one's and one more step per
    `compatible_with`, each only adding a table of its own, declared as it says."""
    from paywire.ledger.migrations import Migration

    known = MIGRATIONS[-1].version
    steps = tuple(Migration(known + n, f"a later release's table {n}", compatible_with=oldest,
                            sqlite=(f"CREATE TABLE paywire_later_{n} (x INTEGER)",),
                            postgresql=(f"CREATE TABLE paywire_later_{n} (x INTEGER)",))
                  for n, oldest in enumerate(compatible_with, start=1))
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(_sql, "MIGRATIONS", MIGRATIONS + steps)
        yield MIGRATIONS + steps


@pytest.mark.parametrize(("compatible_with", "runs"), [
    ((MIGRATIONS[-1].version,), True),  # an added table this release may run beside
    ((MIGRATIONS[-1].version, MIGRATIONS[-1].version - 1), True),
    ((MIGRATIONS[-1].version + 1,), False),  # the later release's own step: its code only
    ((None,), False),
    ((MIGRATIONS[-1].version, None), False),  # one step this release may not run with is enough
])
def test_a_later_release_s_steps_declared_compatible_with_this_release_let_it_run(
        ledger_url: str, compatible_with: tuple[int | None, ...], runs: bool) -> None:
    """What docs/ledger.md says of going back a release: a ledger a later release migrated opens
    with this release when every step this release does not know declared it may run with it
    (`Migration.compatible_with`); otherwise it is refused, naming the step, as before. Opened,
    every row is kept and the ledger is written and read as usual."""
    from paywire.errors import ConfigurationError

    with later_release(*compatible_with) as later:
        upgraded = open_ledger(ledger_url)
        with upgraded.unit() as u:
            u.insert_payment(payment())
        before = _snapshot(upgraded)
        assert upgraded.schema_version() == later[-1].version
        upgraded.close()
    if not runs:
        barred = next(m.version for m in later if (m.compatible_with or m.version) > MIGRATIONS[-1].version)
        with pytest.raises(ConfigurationError, match=rf"newer than this paywire release.*migration {barred} may not"):
            open_ledger(ledger_url)
        return
    rolled_back = open_ledger(ledger_url)
    try:
        assert rolled_back.schema_version() == later[-1].version  # nothing undone, nothing applied
        assert _snapshot(rolled_back) == before
        with rolled_back.unit() as u:
            u.insert_transaction(txn("txn_1", key="k-1"))
        assert rolled_back.get_transaction("txn_1") == txn("txn_1", key="k-1")
        assert _rows(rolled_back, "SELECT version FROM paywire_schema ORDER BY version") == [
            (m.version,) for m in later]
    finally:
        rolled_back.close()


def test_workers_starting_together_upgrade_the_previous_release_once(previous_release: str) -> None:
    """Several workers opening a ledger of the previous release at once: every one starts, each
    migration is applied exactly once, and every row is kept."""
    import threading

    opened: list[Ledger] = []
    failures: list[BaseException] = []
    start = threading.Barrier(6)

    def worker() -> None:
        start.wait()
        try:
            opened.append(open_ledger(previous_release))
        except BaseException as exc:  # reported below
            failures.append(exc)

    threads = [threading.Thread(target=worker) for _ in range(6)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    try:
        assert failures == [] and len(opened) == 6
        ledger = opened[0]
        assert _rows(ledger, "SELECT version FROM paywire_schema ORDER BY version") == [
            (m.version,) for m in MIGRATIONS]
        assert sorted(t.id for t in ledger.list_transactions()) == sorted(r[0] for r in V1_ROWS)
    finally:
        for ledger in opened:
            ledger.close()


# -- a worker that may use the ledger but not change its schema -----------------------------------
@pytest.mark.parametrize("backend", [pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_role_that_may_only_read_and_write_opens_an_up_to_date_ledger(ledger_url: str) -> None:
    """Workers often run as a role that may read and write the ledger's tables but create
    nothing (the schema's owner migrates). A ledger already at this release's version needs no
    DDL, so such a worker starts; PostgreSQL checks the right to create before it looks whether
    the thing exists, so even `CREATE ... IF NOT EXISTS` would refuse it."""
    import os
    import secrets
    from urllib.parse import urlsplit, urlunsplit

    import psycopg

    owner = open_ledger(ledger_url)
    schema = owner.schema  # type: ignore[attr-defined]
    owner.close()
    parts = urlsplit(ledger_url)
    role = f"pwtest_{os.getpid()}_{secrets.token_hex(4)}_app"
    admin = urlunsplit((parts.scheme, parts.netloc, parts.path, "", ""))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'GRANT USAGE ON SCHEMA "{schema}" TO "{role}"')
        conn.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{schema}" TO "{role}"')
    host = parts.netloc.rsplit("@", 1)[-1]
    try:
        worker = open_ledger(urlunsplit((parts.scheme, f"{role}@{host}", parts.path, parts.query, "")))
        try:
            assert worker.schema_version() == MIGRATIONS[-1].version
            with worker.unit() as u:
                u.insert_payment(payment())
            assert worker.get_payment("pay_1") == payment()
        finally:
            worker.close()
    finally:
        with psycopg.connect(admin, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')
