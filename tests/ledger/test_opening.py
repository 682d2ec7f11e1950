"""Opening a ledger: a place that is no paywire ledger is refused with a ConfigurationError and left
exactly as it was; a ledger another worker is upgrading is LedgerBusy, not a driver error; a file
URL names the file it encodes. On real SQLite files and PostgreSQL schemas.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import pytest

from paywire.errors import ConfigurationError, LedgerBusy, LedgerUnavailable
from paywire.ledger import SQLiteLedger, open_ledger
from paywire.ledger.migrations import MIGRATIONS
from tests.ledger.support import open_past_upgrades, read_only
from tests.ledger.test_migration_history import _fill
from tests.ledger.test_migrations import schema, written_by
from tests.ledger.test_storage_conformance import payment


def _files(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def _pg(ledger_url: str) -> tuple[str, str]:
    """The DSN without the schema parameter, and the schema."""
    dsn, _, name = ledger_url.partition("?schema=")
    return dsn, name


def _another_programs_table(ledger_url: str, table: str, row: str) -> None:
    """`table` and its `row` where the ledger URL points, as another program would make them."""
    if ledger_url.startswith("sqlite:///"):
        with closing(sqlite3.connect(ledger_url.removeprefix("sqlite:///"))) as other:
            other.execute(table)
            other.execute(row)
            other.commit()
        return
    import psycopg

    dsn, name = _pg(ledger_url)
    with psycopg.connect(dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{name}"')
        conn.execute(f'SET search_path TO "{name}"')
        conn.execute(table)
        conn.execute(row)


@pytest.mark.parametrize("table", [
    "CREATE TABLE paywire_schema (name TEXT, applied TEXT)",  # another program's, without a version column
    "CREATE TABLE paywire_schema (version TEXT, description TEXT)",  # versions that are no numbers
])
def test_a_paywire_schema_table_another_program_made_is_no_ledger_and_is_left_as_it_was(
        ledger_url: str, table: str) -> None:
    """A table named paywire_schema that paywire did not make was read as the ledger's versions:
    the driver's error (no such column, a failed int()) escaped untyped, or, through a URL, was
    told as a file that cannot be written; on SQLite the file was switched to WAL first."""
    row = "INSERT INTO paywire_schema VALUES ('v1.2', 'theirs')"
    _another_programs_table(ledger_url, table, row)
    if ledger_url.startswith("sqlite:///"):
        path = Path(ledger_url.removeprefix("sqlite:///"))
        before = _files(path.parent)
        for create in (True, False):
            with pytest.raises(ConfigurationError, match=r"paywire_schema that paywire did not make.*not a paywire "
                                                         "ledger, and nothing was changed"):
                open_ledger(ledger_url, create=create)
            with pytest.raises(ConfigurationError, match="not a paywire ledger"):
                SQLiteLedger(path, create=create)
        assert _files(path.parent) == before
        return
    import psycopg

    dsn, name = _pg(ledger_url)
    for create in (True, False):
        with pytest.raises(ConfigurationError, match=r"paywire_schema that paywire did not make.*not a paywire "
                                                     "ledger, and nothing was changed"):
            open_ledger(ledger_url, create=create)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                            (name,)).fetchall() == [("paywire_schema",)]
        assert conn.execute(f'SELECT * FROM "{name}".paywire_schema').fetchall() == [("v1.2", "theirs")]


def test_a_place_holding_a_table_of_the_ledger_s_name_but_no_paywire_schema_is_no_ledger(ledger_url: str) -> None:
    """Another program's paywire_payments (or a ledger whose paywire_schema was dropped) was taken
    for a place to create a ledger in: on SQLite the file was switched to WAL, and then migration 1
    stopped at the table, its error telling of an upgrade to roll back to the release that wrote it."""
    table, row = "CREATE TABLE paywire_payments (id TEXT, note TEXT)", "INSERT INTO paywire_payments VALUES ('p', 'x')"
    _another_programs_table(ledger_url, table, row)
    if ledger_url.startswith("sqlite:///"):
        path = Path(ledger_url.removeprefix("sqlite:///"))
        before = _files(path.parent)
        for create in (True, False):
            with pytest.raises(ConfigurationError, match="holds a table paywire_payments but no paywire_schema: it "
                                                         "is not a paywire ledger"):
                open_ledger(ledger_url, create=create)
        assert _files(path.parent) == before
        return
    import psycopg

    dsn, name = _pg(ledger_url)
    for create in (True, False):  # create=False said "no ledger yet: nothing has been recorded there"
        with pytest.raises(ConfigurationError, match="holds a table paywire_payments but no paywire_schema: it "
                                                     "is not a paywire ledger"):
            open_ledger(ledger_url, create=create)
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s",
                            (name,)).fetchall() == [("paywire_payments",)]


def test_a_file_that_is_no_sqlite_database_is_refused_and_left_as_it_was(tmp_path: Path) -> None:
    """A ledger path naming some other file (a typo that hit a log, a backup archive) raised
    sqlite3's DatabaseError from SQLiteLedger, and through a URL the advice to check that the
    file is writable."""
    path = tmp_path / "ledger.db"
    path.write_bytes(b"not a database\n" * 400)
    before = _files(tmp_path)
    for create in (True, False):
        with pytest.raises(ConfigurationError, match=r"is not an SQLite database.*left as it was") as refused:
            open_ledger(f"sqlite:///{path}", create=create)
        assert "writable" not in str(refused.value)
        with pytest.raises(ConfigurationError, match="is not an SQLite database"):
            SQLiteLedger(path, create=create)
    assert _files(tmp_path) == before


def test_a_file_url_names_the_file_it_percent_encodes(tmp_path: Path) -> None:
    """`Path.as_uri()` writes a file URL percent-encoded: the ledger at "my ledger é.db" was looked
    for at "my%20ledger%20%C3%A9.db", and a new, empty ledger made there."""
    path = tmp_path / "my ledger é.db"
    ledger = SQLiteLedger(path)
    with ledger.unit() as u:
        u.insert_payment(payment())
    ledger.close()
    files = sorted(p.name for p in tmp_path.iterdir())
    reopened = open_ledger(path.as_uri(), create=False)
    try:
        assert reopened.get_payment("pay_1") == payment()
    finally:
        reopened.close()
    assert sorted(p.name for p in tmp_path.iterdir()) == files


def test_an_sqlite_ledger_another_worker_is_upgrading_is_busy_and_left_as_it_was(tmp_path: Path) -> None:
    """The migrations' lock is SQLite's write lock: held by another worker past the timeout, the
    open raised sqlite3's "database is locked" (through a URL: a file to check for writing),
    where docs/ledger.md promises LedgerBusy."""
    path = tmp_path / "ledger.db"
    with schema(MIGRATIONS[-1].version - 1):
        SQLiteLedger(path).close()
    with closing(sqlite3.connect(path, isolation_level=None)) as upgrading:
        upgrading.execute("BEGIN IMMEDIATE")
        with pytest.raises(LedgerBusy, match="busy"):
            SQLiteLedger(path, timeout=0.01)
        upgrading.execute("ROLLBACK")
    with closing(sqlite3.connect(path)) as conn:
        assert conn.execute("SELECT MAX(version) FROM paywire_schema").fetchone() == (MIGRATIONS[-1].version - 1,)
    ledger = SQLiteLedger(path)
    try:
        assert ledger.schema_version() == MIGRATIONS[-1].version
    finally:
        ledger.close()


@pytest.mark.postgres
def test_a_postgres_ledger_another_worker_is_upgrading_is_busy_past_lock_timeout(postgres_dsn: str) -> None:
    """The same on PostgreSQL, whose migrations' lock is an advisory lock: with a lock_timeout,
    waiting past it is LedgerBusy, and the ledger stays at its version."""
    import os
    import secrets

    import psycopg

    name = f"pwtest_{os.getpid()}_{secrets.token_hex(4)}_Up"  # a name PostgreSQL must quote
    url = f"{postgres_dsn}?schema={name}"
    with schema(MIGRATIONS[-1].version - 1):
        open_ledger(url).close()
    parts = urlsplit(postgres_dsn)
    impatient = urlunsplit((parts.scheme, parts.netloc, parts.path, "options=-c%20lock_timeout%3D10", ""))
    with psycopg.connect(postgres_dsn, autocommit=True) as upgrading:
        upgrading.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (f"paywire:migrate:{name}",))
        with pytest.raises(LedgerBusy, match="busy"):
            open_ledger(f"{impatient}&schema={name}")
        upgrading.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (f"paywire:migrate:{name}",))
        assert upgrading.execute(f'SELECT MAX(version) FROM "{name}".paywire_schema').fetchone() == (
            MIGRATIONS[-1].version - 1,)
    ledger = open_ledger(url)
    try:
        assert ledger.schema_version() == MIGRATIONS[-1].version
    finally:
        ledger.close()


@pytest.mark.parametrize("suffix", ["?mode=ro", "?", "#main", "?journal_mode=DELETE#x"])
def test_an_sqlite_url_with_a_query_is_refused_and_nothing_is_made(tmp_path: Path, suffix: str) -> None:
    """The query was dropped: `?mode=ro` opened the file for writing, and a file named "a?b.db"
    opened "a" instead."""
    url = f"sqlite:///{tmp_path / 'ledger.db'}{suffix}"
    with pytest.raises(ConfigurationError, match=r"has a query or fragment.*file: URL"):
        open_ledger(url)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("form", ["file://{}?mode=ro", "file://{}#main", "file://{}?", "file://dbhost{}",
                                  "file://shop:Pw9xSecret@dbhost{}"])
def test_a_file_url_with_a_query_or_a_remote_host_is_refused_and_nothing_is_made(tmp_path: Path, form: str) -> None:
    """As for sqlite: URLs, the query was dropped (`?mode=ro` opened the file for writing), and so
    was a host: the ledger meant on another machine was made on this one, under the same path."""
    url = form.format(tmp_path / "ledger.db")
    with pytest.raises(ConfigurationError) as raised:
        open_ledger(url)
    assert "Pw9xSecret" not in str(raised.value) and ("query" in str(raised.value) or "host" in str(raised.value))
    assert list(tmp_path.iterdir()) == []


def test_a_file_url_naming_localhost_is_this_machines_file(tmp_path: Path) -> None:
    """RFC 8089: `file://localhost/path` is `file:///path`."""
    ledger = open_ledger(f"file://localhost{(tmp_path / 'ledger.db').as_uri()[len('file://'):]}")
    try:
        assert (tmp_path / "ledger.db").exists()
    finally:
        ledger.close()


@pytest.mark.parametrize("form", ["{}", "sqlite:///{}"])
def test_a_ledger_path_under_the_home_directory_is_read_as_a_shell_reads_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, form: str) -> None:
    """A configuration file's `ledger = "~/shop/ledger.db"` never goes through a shell: it was
    refused for a directory "~" that does not exist, or, where one did, opened a ledger there."""
    home, elsewhere = tmp_path / "home", tmp_path / "cwd"
    (home / "shop").mkdir(parents=True)
    (elsewhere / "~" / "shop").mkdir(parents=True)
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.chdir(elsewhere)
    ledger = open_ledger(form.format("~/shop/ledger.db"))
    try:
        with ledger.unit() as u:
            u.insert_payment(payment())
    finally:
        ledger.close()
    assert (home / "shop" / "ledger.db").exists()
    assert list((elsewhere / "~" / "shop").iterdir()) == []


def test_a_ledger_another_worker_creates_while_this_one_looks_is_no_foreign_place(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Workers starting together on a new file: one looked for paywire_schema (none yet), another
    then created the ledger, and the first, looking on for tables of the ledger's names, found
    them and refused the ledger as another program's."""
    path = tmp_path / "ledger.db"
    with closing(sqlite3.connect(path)) as conn:  # the file the first worker made, in WAL, no table yet
        conn.execute("PRAGMA journal_mode = WAL")
    looked = SQLiteLedger.refuse_foreign_tables

    def another_worker_creates_it_meanwhile(self: SQLiteLedger, connection: object) -> None:
        monkeypatch.setattr(SQLiteLedger, "refuse_foreign_tables", looked)
        SQLiteLedger(path, timeout=5).close()
        looked(self, connection)

    monkeypatch.setattr(SQLiteLedger, "refuse_foreign_tables", another_worker_creates_it_meanwhile)
    ledger = SQLiteLedger(path, timeout=5)
    try:
        assert ledger.schema_version() == MIGRATIONS[-1].version
    finally:
        ledger.close()


def test_a_damaged_sqlite_ledger_is_told_damaged_not_another_program_s_and_left_as_it_was(tmp_path: Path) -> None:
    """A ledger whose paywire_schema page was damaged (a disk fault, a torn copy) was refused as
    "a table paywire_schema that paywire did not make: not a paywire ledger; name another SQLite
    file": advice that starts an empty ledger beside the shop's, whose backup it needs."""
    path = tmp_path / "ledger.db"
    with SQLiteLedger(path) as made, made.unit() as u:
        u.insert_payment(payment())
    with closing(sqlite3.connect(path)) as conn:
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = 'paywire_schema'").fetchone()[0]
    data = bytearray(path.read_bytes())
    data[(root - 1) * page_size:root * page_size] = b"\xff" * page_size
    path.write_bytes(bytes(data))
    for create in (True, False):
        for through_url in (True, False):
            with pytest.raises(ConfigurationError, match=r"is damaged \(database disk image is malformed\).*left as "
                                                         "it was: restore the ledger from a backup") as refused:
                if through_url:
                    open_ledger(f"sqlite:///{path}", create=create)
                else:
                    SQLiteLedger(path, create=create)
            assert "not a paywire ledger" not in str(refused.value) and "writable" not in str(refused.value)
    assert path.read_bytes() == data  # (a read in WAL mode may leave an empty log and its index beside it)
    assert not (tmp_path / "ledger.db-wal").exists() or (tmp_path / "ledger.db-wal").stat().st_size == 0


@pytest.mark.postgres
def test_a_ledger_this_role_may_not_read_is_no_foreign_place_and_no_new_ledger_is_made(postgres_dsn: str) -> None:
    """A worker's role missing a grant on the ledger: without SELECT on paywire_schema its error
    was told as another program's table ("not a paywire ledger; name another schema"); without
    USAGE on the schema (which PostgreSQL then leaves out of the search path) the ledger looked
    absent ("no ledger yet"), and opening to create one failed as an upgrade. Both say which
    grant is missing, and nothing changes."""
    import os
    import secrets

    import psycopg

    name = f"pwtest_{os.getpid()}_{secrets.token_hex(4)}"
    open_ledger(f"{postgres_dsn}?schema={name}").close()
    role = f"pwtest_{os.getpid()}_{secrets.token_hex(4)}_app"
    parts = urlsplit(postgres_dsn)
    as_role = urlunsplit((parts.scheme, f"{role}@{parts.netloc.rsplit('@', 1)[-1]}", parts.path,
                          f"schema={name}", ""))

    def state() -> object:
        with psycopg.connect(postgres_dsn) as conn:
            # What the role made anywhere (a schema, a table: a new ledger beside the real one), and
            # the ledger's own tables and versions; other tests' schemas come and go meanwhile.
            return (conn.execute("SELECT nspname FROM pg_namespace n JOIN pg_roles r ON n.nspowner = r.oid "
                                 "WHERE r.rolname = %s", (role,)).fetchall(),
                    conn.execute("SELECT schemaname, tablename FROM pg_tables WHERE tableowner = %s", (role,)).fetchall(),
                    conn.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = %s "
                                 "ORDER BY 1", (name,)).fetchall(),
                    conn.execute(f'SELECT version FROM "{name}".paywire_schema ORDER BY 1').fetchall())

    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE ROLE "{role}" LOGIN')
        conn.execute(f'GRANT USAGE ON SCHEMA "{name}" TO "{role}"')
        conn.execute(f'GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA "{name}" TO "{role}"')
        conn.execute(f'REVOKE ALL ON "{name}".paywire_schema FROM "{role}"')
    try:
        before = state()
        for create in (True, False):
            with pytest.raises(ConfigurationError, match=r"permission denied for table paywire_schema; grant this "
                                                         "role") as refused:
                open_ledger(as_role, create=create)
            assert "not a paywire ledger" not in str(refused.value)
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'REVOKE USAGE ON SCHEMA "{name}" FROM "{role}"')
        for create in (True, False):
            with pytest.raises(ConfigurationError, match=rf"this role may not use the ledger schema '{name}', which "
                                                         r"exists; nothing was changed: grant it USAGE"):
                open_ledger(as_role, create=create)
        assert state() == before
    finally:
        with psycopg.connect(postgres_dsn, autocommit=True) as conn:
            conn.execute(f'DROP OWNED BY "{role}"')
            conn.execute(f'DROP ROLE "{role}"')


def test_an_older_sqlite_ledger_on_a_read_only_file_is_unavailable_and_left_as_it_was(tmp_path: Path) -> None:
    """An upgrade that cannot write (a read-only file; likewise a connection lost or a server going
    down mid-upgrade on PostgreSQL) was told as a migration gone wrong, a ConfigurationError
    advising to keep running the old release; it is the database's state, retryable, as the
    same file refuses an operation (`LedgerUnavailable`), and the ledger stays whole."""
    path = tmp_path / "ledger.db"
    with schema(MIGRATIONS[-1].version - 1):
        SQLiteLedger(path).close()
    data = path.read_bytes()
    with read_only(path):
        for create in (True, False):
            with pytest.raises(LedgerUnavailable, match=r"attempt to write a readonly database.*try again"):
                open_ledger(f"sqlite:///{path}", create=create)
            with pytest.raises(LedgerUnavailable, match="readonly"):
                SQLiteLedger(path, create=create)
    assert path.read_bytes() == data
    ledger = SQLiteLedger(path)
    try:
        assert ledger.schema_version() == MIGRATIONS[-1].version
    finally:
        ledger.close()


@pytest.mark.postgres
def test_a_worker_naming_the_ledger_s_schema_through_its_search_path_waits_for_one_upgrading_it(
        postgres_dsn: str) -> None:
    """Workers naming one schema two ways (`?schema=name`, or no schema and a search_path in the
    URL's options) took migrations' locks of different names: they upgraded the ledger together,
    and one failed half-way ("column settle_after already exists"). One naming no schema waits
    for the lock of the schema it finds the ledger in (LedgerBusy past its lock_timeout)."""
    import os
    import secrets

    import psycopg

    name = f"pwtest_{os.getpid()}_{secrets.token_hex(4)}"
    with schema(MIGRATIONS[-1].version - 1):
        open_ledger(f"{postgres_dsn}?schema={name}").close()
    parts = urlsplit(postgres_dsn)
    through_path = urlunsplit((parts.scheme, parts.netloc, parts.path,
                               f"options=-c%20lock_timeout%3D10%20-c%20search_path%3D{name}", ""))
    with psycopg.connect(postgres_dsn, autocommit=True) as upgrading:
        upgrading.execute("SELECT pg_advisory_lock(hashtextextended(%s, 0))", (f"paywire:migrate:{name}",))
        with pytest.raises(LedgerBusy, match="busy"):
            open_ledger(through_path)
        upgrading.execute("SELECT pg_advisory_unlock(hashtextextended(%s, 0))", (f"paywire:migrate:{name}",))
        assert upgrading.execute(f'SELECT MAX(version) FROM "{name}".paywire_schema').fetchone() == (
            MIGRATIONS[-1].version - 1,)
    ledger = open_past_upgrades(through_path)
    try:
        assert ledger.schema_version() == MIGRATIONS[-1].version
    finally:
        ledger.close()


@pytest.mark.postgres
def test_a_worker_finding_the_ledger_after_an_empty_schema_upgrades_it_where_it_is(postgres_dsn: str) -> None:
    """A URL naming no schema, whose search path finds the ledger after another schema holding
    none, upgraded the ledger across both: what later migrations make (tables, an index, the guard
    function replaced) went into the first schema, where CREATE puts it. Workers with
    `?schema=name` then lacked those tables and the payments' owed reads, and the trigger kept
    migration 2's guard."""
    import os
    import secrets

    import psycopg

    name, empty = (f"pwtest_{os.getpid()}_{secrets.token_hex(4)}" for _ in range(2))
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        conn.execute(f'CREATE SCHEMA "{empty}"')
    written_by(1, f"{postgres_dsn}?schema={name}", _fill(1))
    parts = urlsplit(postgres_dsn)
    through_path = urlunsplit((parts.scheme, parts.netloc, parts.path,
                               f"options=-c%20search_path%3D{empty},{name}", ""))
    ledger = open_past_upgrades(through_path)
    try:
        assert ledger.schema_version() == MIGRATIONS[-1].version
    finally:
        ledger.close()
    with psycopg.connect(postgres_dsn, autocommit=True) as conn:
        def held(schema: str, catalog: str, column: str, field: str) -> set[str]:
            rows = conn.execute(f"SELECT {field} FROM {catalog} WHERE {column} = "
                                "(SELECT oid FROM pg_namespace WHERE nspname = %s)", (schema,)).fetchall()
            return {str(row[0]) for row in rows}

        assert held(empty, "pg_class", "relnamespace", "relname") == set()
        assert held(empty, "pg_proc", "pronamespace", "proname") == set()
        assert {"paywire_reconcile_looks", "paywire_owed_reads"} <= held(name, "pg_class", "relnamespace", "relname")
        owed = conn.execute(f'SELECT count(*) FROM "{name}".paywire_owed_reads').fetchone()
        waiting = conn.execute(f"SELECT count(*) FROM \"{name}\".paywire_payments WHERE state = 'action_required'")
        assert owed == waiting.fetchone() != (0,)
        guard = conn.execute("SELECT prosrc FROM pg_proc WHERE oid = (SELECT tgfoid FROM pg_trigger WHERE tgrelid = "
                             "%s::regclass AND tgname = 'paywire_transactions_guard')",
                             (f'"{name}".paywire_transactions',)).fetchone()
        assert guard is not None and "NEW.request IS NOT DISTINCT FROM OLD.request" in guard[0]  # migration 4's


@pytest.mark.parametrize("form", ["sqlite:///{}\n", "sqlite:///{}\r\n", " sqlite:///{}", "\tsqlite:///{}",
                                  "sqlite:///{} ", "{}\n", "file://{}\n", "sqlite:///{}\x00x"])
def test_a_ledger_url_with_spaces_or_a_line_break_around_it_is_refused_and_nothing_is_made(
        tmp_path: Path, form: str) -> None:
    """A URL read from a file or a secret keeps its newline: it made another ledger, "ledger.db\\n",
    beside the real one (which then looked empty); a leading space read sqlite:///x.db, relative,
    as /x.db at the root of the file system (the paths here are absolute, so nothing lands there)."""
    url = form.format(tmp_path / "ledger.db")
    with pytest.raises(ConfigurationError) as raised:
        open_ledger(url)
    assert "space" in str(raised.value) or "control" in str(raised.value), raised.value
    assert list(tmp_path.iterdir()) == []
