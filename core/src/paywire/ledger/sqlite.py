"""The embedded ledger: one SQLite file (standard library), in WAL mode.

Every unit runs under `BEGIN IMMEDIATE`, which takes SQLite's single write lock up front, so
checks and writes of one unit are serialised against every other thread and process using the
same file; readers keep reading (WAL) meanwhile. Each thread, and each process after a fork,
opens its own connection: sqlite3 connections are never shared.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import time
from collections.abc import Callable, Sequence
from itertools import chain, product
from pathlib import Path
from typing import Any

from paywire.errors import ConfigurationError
from paywire.ledger._sql import SQLLedger, waiting_sql_by_pair

__all__ = ["SQLiteLedger"]

_SYNCHRONOUS = ("FULL", "NORMAL")
_BUSY_CODES = (sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED)
# The file cannot take writes: the disk (or `max_page_count`) full, an I/O error, a read-only
# file or directory, a file that cannot be opened (gone, its directory unreadable).
_UNAVAILABLE_CODES = (sqlite3.SQLITE_FULL, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_CANTOPEN)
# Copy the log back into the database (two fsyncs) every 10,000 pages (40 MB) rather than
# SQLite's 1,000: an operation appends about 13 pages, so the commit that happens to checkpoint
# comes ten times less often, and the pages every operation rewrites (the newest leaves of each
# index) are copied once per checkpoint, not ten times. Durability is the same: only when the
# log is folded back changes, not when a commit is safe.
_CHECKPOINT_PAGES = 10_000
# The most (method, reference) pairs the waiting events are looked up by one by one.
_PAIRED_LOOKUPS = 16

# sqlite3 binds a parameter that is not exactly an int, float, str or bytearray (None, a bool)
# through its adapter registry, and with no adapter registered it looks up `__adapt__` on its
# protocol class, which raises and swallows an AttributeError each time: a third of a ledger
# row's parameters are None or bools, and that was 5% of an operation's cost. Adapters that
# give what sqlite3 binds anyway (NULL; 0 and 1) skip the search. Any adapter already
# registered for these types is left as it is.
_NOTHING: dict[None, None] = {}
if (type(None), sqlite3.PrepareProtocol) not in sqlite3.adapters:
    sqlite3.register_adapter(type(None), _NOTHING.get)  # None -> None, in C
if (bool, sqlite3.PrepareProtocol) not in sqlite3.adapters:
    sqlite3.register_adapter(bool, int)


class SQLiteLedger(SQLLedger):
    """A ledger in the SQLite database at `path` (created, and migrated, on first use).

    :param create: False to open only a ledger that exists (migrated if it is older): a path
        where there is none (no file, or a file without a ledger) is a `ConfigurationError`,
        and neither the file nor its directory is made (a mistyped path must not look like a
        ledger with no payments), as with `PostgresLedger(create=False)`.
    :param timeout: seconds a unit waits for another worker's write lock before failing.
    :param synchronous: "NORMAL" (the default) or "FULL". Either way a commit survives a
        process crash. With NORMAL an operating-system crash or power loss can lose the last
        commits (never corrupt the file): a lost pending record of a follow-up operation is
        recovered because its derived key comes back the same and the provider deduplicates it,
        and reconciliation restores lost outcomes; first operations need the caller's
        idempotency key for that, as for any retry. FULL also survives a power loss, at the cost
        of one fsync per operation (the pending record; outcomes never wait for the disk).
    """

    dialect = "sqlite"
    serialised = True  # BEGIN IMMEDIATE
    flags = (0, 1)  # what SQLite stores for a flag, bound without the adapter a bool goes through

    def __init__(self, path: str | os.PathLike[str], *, timeout: float = 30.0, synchronous: str = "NORMAL",
                 create: bool = True) -> None:
        super().__init__()
        if str(path) == ":memory:":
            raise ConfigurationError("an in-memory SQLite ledger cannot be shared between connections; use a file")
        if synchronous.upper() not in _SYNCHRONOUS:
            raise ConfigurationError(f"synchronous must be one of {_SYNCHRONOUS}, not {synchronous!r}")
        self.path = Path(path)
        self.timeout = timeout
        self.synchronous = synchronous.upper()
        try:
            if not self._exists() and not create:
                raise ConfigurationError(f"there is no ledger at {str(self.path)!r} yet: nothing has been recorded "
                                         "there; check the path the ledger URL names")
            if create:
                self.path.parent.mkdir(parents=True, exist_ok=True)
            self.migrate()
        except sqlite3.DatabaseError as exc:
            code = (getattr(exc, "sqlite_errorcode", 0) or 0) & 0xFF
            if code not in (sqlite3.SQLITE_NOTADB, sqlite3.SQLITE_CORRUPT):
                raise
            self.close()
            if code == sqlite3.SQLITE_CORRUPT:
                raise ConfigurationError(f"the SQLite file {str(self.path)!r} is damaged ({exc}); it was left as it "
                                         "was: restore the ledger from a backup (PRAGMA integrity_check says what "
                                         "is wrong) rather than start a new one") from None
            raise ConfigurationError(f"{str(self.path)!r} is not an SQLite database, so it holds no paywire ledger; "
                                     "it was left as it was: check the path the ledger URL names") from None

    def _exists(self) -> bool:
        """Whether a ledger is in the file (of any schema version: an older one is migrated as
        usual), looked at read-only: a missing file is not created, nor another program's
        database (one that is no SQLite file, or holds a paywire_schema table of its own, is
        refused here) switched to WAL."""
        if not self.path.is_file():
            return False
        uri = f"{self.path.resolve().as_uri()}?mode=ro"
        with contextlib.closing(sqlite3.connect(uri, uri=True, timeout=self.timeout)) as conn:
            # One read transaction: its statements see one state of the file. Each on its own, a
            # worker starting beside another that creates the ledger between two of them would
            # find its tables without paywire_schema, and refuse it as another program's.
            conn.execute("BEGIN")
            row = conn.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = 'paywire_schema'")
            if row.fetchone() is None:
                self.refuse_foreign_tables(conn)
                return False
            self._versions(conn)
            return True

    def __repr__(self) -> str:
        return f"SQLiteLedger({str(self.path)!r})"

    def connection(self) -> sqlite3.Connection:
        pid = os.getpid()
        cached = self._local.__dict__.get("connection")
        if cached is not None and cached[0] == pid and cached[2] == self._generation:
            conn: sqlite3.Connection = cached[1]
            return conn
        conn = sqlite3.connect(self.path, timeout=self.timeout, isolation_level=None, check_same_thread=False)
        conn.execute(f"PRAGMA busy_timeout = {int(self.timeout * 1000)}")
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            self._to_wal(conn)
        conn.execute(f"PRAGMA synchronous = {self.synchronous}")
        self._local.synchronous = (conn, self.synchronous)
        conn.execute("PRAGMA foreign_keys = ON")
        conn.execute(f"PRAGMA wal_autocheckpoint = {_CHECKPOINT_PAGES}")
        self.keep(pid, conn)
        return conn

    def _to_wal(self, conn: sqlite3.Connection) -> None:
        """Switch a new database to WAL. The switch needs the file to itself, and SQLite answers
        "database is locked" at once, without its busy handler, when workers starting together
        race for it: try again until the ledger's timeout."""
        deadline = time.monotonic() + self.timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    def execute(self, connection: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        return connection.execute(sql, params if type(params) is tuple else tuple(params))

    def runner(self, connection: Any) -> Callable[[str, Sequence[Any]], Any]:
        # A unit passes a tuple or a list, which sqlite3 binds as they are: its own call, without
        # `execute`'s frame around each of an operation's statements.
        run: Callable[[str, Sequence[Any]], Any] = connection.execute
        return run

    def waiting_query(self, payment_id: str | None, methods: Sequence[str],
                      references: Sequence[str]) -> tuple[str, tuple[Any, ...]]:
        """One equality lookup per (method, reference) pair, not IN lists (see
        `waiting_sql_by_pair`): asked after every operation, with two or three references. A
        payment with many (a long history of refunds) keeps the IN lists, one statement of a
        bounded size."""
        if len(methods) * len(references) > _PAIRED_LOOKUPS:
            return super().waiting_query(payment_id, methods, references)
        # each method with each reference, in that order (`product`, in C: no comprehension's call)
        return (waiting_sql_by_pair(len(methods) * len(references)),
                (payment_id, *chain.from_iterable(product(methods, references))))

    def begin(self, connection: Any, *, durable: bool = True) -> None:
        # In WAL mode the level may change between transactions; a later FULL commit also
        # flushes every NORMAL one before it, since the log is written in order.
        level = self.synchronous if durable else "NORMAL"
        thread = self._local.__dict__
        if thread.get("synchronous") != (connection, level):
            connection.execute(f"PRAGMA synchronous = {level}")
            thread["synchronous"] = (connection, level)
        connection.execute("BEGIN IMMEDIATE")

    def version(self, connection: Any) -> object | None:
        # `data_version` moves when any other connection, in any process, commits to the file.
        return int(connection.execute("PRAGMA data_version").fetchone()[0])

    def is_integrity_error(self, exc: Exception) -> bool:
        return isinstance(exc, sqlite3.IntegrityError)

    def is_undefined_column(self, exc: Exception) -> bool:
        # SQLite has no code of its own for it: SQLITE_ERROR, saying so.
        return isinstance(exc, sqlite3.OperationalError) and str(exc).startswith("no such column")

    def is_busy(self, exc: Exception) -> bool:
        # SQLITE_BUSY (another connection held the write lock past `timeout`) and SQLITE_LOCKED,
        # with their extended codes.
        code = getattr(exc, "sqlite_errorcode", None)
        return isinstance(exc, sqlite3.OperationalError) and code is not None and code & 0xFF in _BUSY_CODES

    def unavailable(self, exc: BaseException) -> str | None:
        # With their extended codes (SQLITE_IOERR_WRITE, SQLITE_READONLY_DIRECTORY, ...).
        code = getattr(exc, "sqlite_errorcode", None)
        if not isinstance(exc, sqlite3.Error) or code is None or code & 0xFF not in _UNAVAILABLE_CODES:
            return None
        return f"{exc} ({getattr(exc, 'sqlite_errorname', code)})"
