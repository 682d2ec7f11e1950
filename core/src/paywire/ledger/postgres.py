"""The shared ledger: PostgreSQL through psycopg 3 (install `paywire[postgresql]`).

Several workers or hosts can share it. A unit is one READ COMMITTED transaction that takes its
locks explicitly: a transaction-scoped advisory lock per idempotency key (so duplicates of one
request queue behind the first and then see its row), `SELECT ... FOR UPDATE` on the payment
(so the money check and the pending record of one operation are atomic against every other
worker's), and a shared advisory lock per provider id it indexes (so a webhook event stored
unmatched meanwhile is seen by the unit, or sees the id: `wait_out_references`). Locks are
released by COMMIT or ROLLBACK, also when a worker dies. Advisory locks are named after the
schema the ledger's tables are in, however the URL names it (`PostgresLedger._read_lock_schemas`,
`PostgresLedger.lock_migrations`).

Statements go through psycopg's libpq layer rather than its cursors, batched per unit (`_Session`).

Times go by the database server's clock (`paywire.ledger.clock`), not the hosts' own.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Sequence
from datetime import datetime
from functools import lru_cache
from typing import Any

from paywire.errors import ConfigurationError
from paywire.ledger._sql import SELECT_PAYMENT, SQLLedger, from_us
from paywire.ledger.clock import DatabaseClock
from paywire.security import url_passwords

__all__ = ["PostgresLedger"]

_NAME_BYTES = 63  # PostgreSQL's longest identifier (NAMEDATALEN - 1)
_BUSY_STATES = frozenset({"55P03", "57014"})  # lock_not_available, query_canceled
_REASON_CHARS = 200  # of the reason a lost connection is logged with
_GONE_STATES = frozenset({"57P01", "57P02", "57P03"})  # admin_shutdown, crash_shutdown, cannot_connect_now
_UNDEFINED_COLUMN = "42703"  # another program's paywire_schema, without a version column
_READ_ONLY = "25006"  # read_only_sql_transaction: a standby after a failover, a database set read-only
# The server's clock, as microseconds since the epoch (the ledger's own form): whatever the session's time zone.
_CLOCK = "SELECT (EXTRACT(EPOCH FROM clock_timestamp()) * 1000000)::BIGINT"

# The search path's first schema (where a new table goes) and the schema the ledger's tables are in,
# or the first where there are none.
_MIGRATION_SCHEMAS = ("SELECT current_schema(), coalesce((SELECT nspname FROM pg_namespace WHERE oid = (SELECT "
                      "relnamespace FROM pg_class WHERE oid = to_regclass('paywire_schema'))), current_schema())")


class PostgresLedger(SQLLedger):
    """A ledger in the PostgreSQL database at `dsn` (a libpq URL or key=value string).

    :param schema: keep the tables in this schema (created if missing) instead of the
        connection's default search path; handy for several shops, or tests, in one database.
    :param create: False to open only a ledger that exists (migrated if it is older): where
        there is none, a `ConfigurationError` instead of a new, empty one (a mistyped schema or
        database must not look like a ledger with no payments).

    `clock` is the database server's clock as this host reads it (`now`, `deadline`).
    """

    dialect = "postgresql"
    select_payment_locked = SELECT_PAYMENT + " FOR UPDATE"
    select_payment_claimed = SELECT_PAYMENT + " FOR UPDATE SKIP LOCKED"

    def __init__(self, dsn: str, *, schema: str | None = None, connect_timeout: int = 10,
                 create: bool = True) -> None:
        super().__init__()
        try:
            import psycopg
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise ConfigurationError(
                "the PostgreSQL ledger needs psycopg 3: pip install 'paywire[postgresql]'"
            ) from None
        if schema is not None and (len(schema.encode()) > _NAME_BYTES or "\x00" in schema):
            # PostgreSQL would cut the name at 63 bytes (a NOTICE only): two names alike that far
            # would share tables while their locks, which carry the whole name, differ.
            raise ConfigurationError(_long_schema(schema) if "\x00" not in schema else
                                     f"the ledger schema name {schema!r} is longer than PostgreSQL's {_NAME_BYTES} "
                                     "bytes (or holds a NUL); choose a shorter one")
        self._psycopg = psycopg
        self.clock = DatabaseClock()
        self.dsn = dsn
        self.schema = schema
        self.connect_timeout = connect_timeout
        try:
            exists = create or self._exists()
        except BaseException:
            self.close()
            raise
        if not exists:
            self.close()
            where = f"schema {schema!r}" if schema else "the search path"
            raise ConfigurationError(f"there is no ledger in {where} of this database yet: nothing has been recorded "
                                     "there; check the database and the schema the ledger URL names")
        try:
            self.migrate()
            self._lock_schemas = self._read_lock_schemas()
        except BaseException:
            self.close()
            raise

    def _read_lock_schemas(self) -> tuple[str, ...]:
        """The schema names the key and provider-id locks are named by: the URL's spelling of the
        ledger's schema ('' for none), as earlier releases name them, then the schema its tables
        are in, read once here. Workers naming one schema two ways (`?schema=name`, or none and a
        search_path in the URL's options; `?schema=public` and none) lock one name; workers of an
        earlier release still running beside this one lock the first. One name where both are
        the same: always with `?schema=` (its search_path holds that schema alone)."""
        row = self._read_one("SELECT nspname FROM pg_namespace WHERE oid = "
                             "(SELECT relnamespace FROM pg_class WHERE oid = to_regclass('paywire_schema'))", ())
        spelled = self.schema or ""
        found = str(row[0]) if row else spelled
        return (spelled,) if found == spelled else (spelled, found)

    def _exists(self) -> bool:
        """Whether a ledger is there (of any schema version: an older one is migrated as usual)."""
        row = self._read_one("SELECT to_regclass('paywire_schema') IS NOT NULL", ())
        if row and row[0]:
            return True
        connection = self.connection()
        self._refuse_unusable_schema(connection)
        self.refuse_foreign_tables(connection)  # not "nothing recorded": a ledger's tables, or another program's
        return False

    def _refuse_unusable_schema(self, connection: Any) -> None:
        """Refuse a schema that exists but that this role may not use: PostgreSQL leaves such a
        schema out of the search path, so the ledger in it looks absent (and a new one would be
        made, or its making fail, with no word of the missing grant)."""
        if not self.schema:
            return
        row = self.execute(connection, "SELECT has_schema_privilege(oid, 'USAGE') FROM pg_namespace WHERE nspname = ?",
                           (self.schema,)).fetchone()
        if row is not None and not row[0]:
            raise ConfigurationError(f"this role may not use the ledger schema {self.schema!r}, which exists; nothing "
                                     "was changed: grant it USAGE on the schema and SELECT, INSERT, UPDATE, DELETE "
                                     "on its tables, or connect as the schema's owner")

    def __repr__(self) -> str:
        return f"PostgresLedger(schema={self.schema!r})"  # the DSN may hold a password

    @staticmethod
    def close_connection(pid: int, connection: Any) -> None:
        """Close a connection this process opened, unless another thread waits in it for an answer
        (a unit left behind at shutdown on a database that stopped answering): freed under that
        thread, libpq would read freed memory once an answer came. That one is left to its thread,
        which ends its unit on it and then drops it (`connection`), or to the process's exit."""
        if os.getpid() != pid:
            return
        with contextlib.suppress(Exception):  # already broken: nothing left to release
            from psycopg import pq

            if connection.pgconn.transaction_status != pq.TransactionStatus.ACTIVE:
                connection.close()

    def connection(self) -> Any:
        pid = os.getpid()
        cached = getattr(self._local, "connection", None)
        if cached is not None and cached[0] == pid and cached[2] == self._generation and not cached[1].closed:
            session = self._session(cached[1])
            if not session.hung_up():
                if session.idle() and self.clock.stale():  # never inside a unit: between two
                    self._read_clock(cached[1])
                return cached[1]
            # The server ended it while it sat idle (a restart, pg_terminate_backend): replaced
            # before the unit's BEGIN, as a pool checks a connection on checkout, so no unit fails
            # for it. Once: a server still away fails the connect below.
        if cached is not None and cached[0] == pid:  # one `close()` left to this thread (see `close_connection`)
            cached[1].close()
        # UTF-8 whatever the URL, PGCLIENTENCODING or the role's settings say: `_text` binds UTF-8.
        conn = self._psycopg.connect(self.dsn, autocommit=True, connect_timeout=self.connect_timeout,
                                     client_encoding="UTF8")
        if self.schema:
            from psycopg import sql

            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        # Commits the database or role makes lazy (synchronous_commit off): durable units ask for the flush.
        self._local.lazy_commits = conn if conn.execute("SHOW synchronous_commit").fetchone() == ("off",) else None
        self.keep(pid, conn)
        if self.clock.stale():
            self._read_clock(conn)
        return conn

    def _read_clock(self, connection: Any) -> None:
        """Read the server's clock for `clock`, on an idle connection (one statement of its own)."""
        self.clock.measure(lambda: _at_us(self.execute(connection, _CLOCK).fetchone()))

    def now(self) -> datetime:
        return self.clock.now()

    def deadline(self, seconds: float) -> datetime:
        return self.clock.deadline(seconds)

    def execute(self, connection: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._session(connection).run(sql, params)

    def _session(self, connection: Any) -> _Session:
        session: _Session | None = getattr(self._local, "session", None)
        if session is None or session.connection is not connection:
            session = self._local.session = _Session(connection)
        return session

    def begin(self, connection: Any, *, durable: bool = True) -> None:
        # Not durable: the commit returns before its WAL flush; a server crash may lose the unit, whole.
        # Durable where the database's default is not: flushed locally (a pending record must survive
        # a crash), without waiting for standbys the database chose not to wait for.
        then = None
        if not durable:
            then = "SET LOCAL synchronous_commit TO OFF"
        elif getattr(self._local, "lazy_commits", None) is connection:
            then = "SET LOCAL synchronous_commit TO LOCAL"
        self._session(connection).begin(then)

    def commit(self, connection: Any) -> None:
        self._session(connection).commit()  # no marks to keep: PostgreSQL has no `version`

    def rollback(self, connection: Any) -> None:
        self._session(connection).rollback()

    def lock_key(self, connection: Any, method: str, key: str) -> None:
        # Both names in one statement, in `_lock_schemas`' order: a worker of an earlier release
        # locks only the first, and no worker takes the second before the first.
        self.execute(connection, _lock_all(len(self._lock_schemas)),
                     [f"paywire:{schema}:{method}:{key}" for schema in self._lock_schemas])

    def index_references(self, method: str, payment_id: str, references: Sequence[str]) -> tuple[str, list[Any]]:
        # The insert takes each id's locks itself (no statement more): shared, so units indexing
        # ids never wait for one another, only for `wait_out_references`; held until commit,
        # so from before the unit's look for waiting events.
        values = [value for ref in sorted(references) for value in (method, ref, payment_id)]
        return (_insert_held(len(references), len(self._lock_schemas)),
                [*values, *(self._reference_lock(schema, "") for schema in self._lock_schemas)])

    def wait_out_references(self, references: Sequence[str]) -> bool:
        # Each lock of each id taken alone, outside any unit (its statement is its transaction): it
        # holds nothing while it waits, so it closes no cycle of waits with a unit holding several.
        if getattr(self._local, "in_unit", False):
            raise RuntimeError("wait_out_references waits outside any unit: finish the open unit first")
        refs = sorted({r for r in references if r})
        connection = self.connection()
        for reference in refs:
            for schema in self._lock_schemas:
                self.execute(connection, _lock_all(1), (self._reference_lock(schema, reference),)).fetchall()
        return bool(refs)

    @staticmethod
    def _reference_lock(schema: str, reference: str) -> str:
        """The name of a provider id's lock: by id alone, whatever method indexes it (a webhook
        looks through its provider's other methods too), in a schema of `_lock_schemas`."""
        return f"paywire-ref:{schema}:{reference}"

    @staticmethod
    def table_sql(name: str) -> str:
        return f"SELECT 1 WHERE to_regclass('{name}') IS NOT NULL"

    def lock_migrations(self, connection: Any) -> None:
        """Take the migrations' locks: by the schema the URL names (as earlier releases lock it),
        and, for a URL naming none, by the search path's first schema (as earlier releases lock it
        too) and by the schema the ledger's tables are in (or go to, where there are none). So workers
        naming one schema any two ways (`?schema=name`, or none and a search_path in the URL's
        options that finds the ledger after an empty schema) upgrade it one at a time. Looked up
        again once locked, until no name is new: the ledger may have been made meanwhile.

        Where the ledger is not in the search path's first schema, the transaction's search path
        is that schema alone: the tables, indexes and functions an upgrade makes go beside the
        ledger's, not into the first schema, where no other worker would find them (and where a
        guard function replaced would leave the trigger with its old one).

        Only a URL naming no schema locks several names, the first always '': no two workers wait
        in a cycle."""
        self.execute(connection, _lock_all(1), (f"paywire:migrate:{self.schema or ''}",))
        if self.schema:
            return  # its search path holds that schema alone: the ledger is there, or goes there
        held = {""}
        while True:
            row = self.execute(connection, _MIGRATION_SCHEMAS).fetchone()
            first, ledger = row if row else (None, None)
            new = [name for name in dict.fromkeys((first, ledger)) if name is not None and name not in held]
            if not new:
                break
            self.execute(connection, _lock_all(len(new)), [f"paywire:migrate:{name}" for name in new])
            held.update(new)
        if ledger != first:
            self.execute(connection, "SELECT set_config('search_path', quote_ident(?), true)", (ledger,)).fetchall()

    def create_namespace(self, connection: Any) -> None:
        self._refuse_unusable_schema(connection)
        if self.schema:
            from psycopg import sql

            create = sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema))
            self.execute(connection, create.as_string(connection))

    def database_time(self) -> datetime | None:
        return _at_us(self._read_one(_CLOCK, ()))

    def is_integrity_error(self, exc: Exception) -> bool:
        return isinstance(exc, self._psycopg.errors.IntegrityError)

    def is_undefined_column(self, exc: Exception) -> bool:
        return isinstance(exc, self._psycopg.Error) and exc.sqlstate == _UNDEFINED_COLUMN

    def is_busy(self, exc: Exception) -> bool:
        # lock_timeout (55P03); statement_timeout while waiting (57014); class 40, transaction
        # rollback: serialization failures (40001) and deadlocks (40P01).
        state = getattr(exc, "sqlstate", None) if isinstance(exc, self._psycopg.Error) else None
        return state is not None and (state in _BUSY_STATES or state.startswith("40"))

    def unavailable(self, exc: BaseException) -> str | None:
        # psycopg gives no SQLSTATE when libpq could not connect or lost the connection (refused,
        # reset, timed out; a server that shut down mid-statement: the connection is then bad);
        # the server's own are class 08 (connection exception), its shutdown or start-up, class 53
        # (insufficient resources: disk full, out of memory, too many connections) and a
        # transaction refused writes (a standby: a failover moved the address to one).
        if not isinstance(exc, self._psycopg.Error):
            return None
        state = exc.sqlstate
        if state is None:
            if not isinstance(exc, self._psycopg.OperationalError):
                return None
        elif not state.startswith(("08", "53")) and state not in _GONE_STATES and state != _READ_ONLY:
            return None
        lines = str(exc).strip().splitlines()  # libpq's first line says it; the next ones guess at why
        reason = lines[0].strip() if lines else type(exc).__name__
        for secret in url_passwords(self.dsn):
            reason = reason.replace(secret, "***")
        return reason[:_REASON_CHARS]


def _at_us(row: Sequence[Any] | None) -> datetime:
    """The time a `_CLOCK` row holds."""
    at = from_us(int(row[0])) if row else None
    if at is None:
        raise RuntimeError("the database's clock read no row")
    return at


@lru_cache(maxsize=2)
def _lock_all(names: int) -> str:
    """A statement taking the transaction-scoped advisory locks of so many names, in order."""
    return "SELECT " + ", ".join(["pg_advisory_xact_lock(hashtextextended(?, 0))"] * names)


@lru_cache(maxsize=32)
def _insert_held(count: int, names: int) -> str:
    """`index_references`' statement for so many ids (one, after most operations); its last
    parameters are the ids' lock names' prefixes (`_reference_lock`), `names` of them. Each lock
    is a condition always true, evaluated for each id before its row is inserted, a conflicting
    one too."""
    rows = ", ".join(["(?, ?, ?)"] * count)  # placeholders only: every value is a bound parameter
    held = " AND ".join(["pg_advisory_xact_lock_shared(hashtextextended(? || v.reference, 0)) IS NOT NULL"] * names)
    return ("INSERT INTO paywire_references (method, reference, payment_id) SELECT v.method, v.reference, "  # noqa: S608
            f"v.payment_id FROM (VALUES {rows}) AS v (method, reference, payment_id) WHERE {held} "
            "ON CONFLICT DO NOTHING")


def _long_schema(schema: str) -> str:
    """Earlier releases took such a name, and PostgreSQL kept their ledger under the name cut
    short (at a character's end): a shop upgrading must be sent there, not to a new, empty one."""
    kept = schema.encode()[:_NAME_BYTES].decode(errors="ignore")
    return (f"the ledger schema name {schema!r} is longer than PostgreSQL's {_NAME_BYTES} bytes, which keeps only "
            f"{kept!r} of it: a ledger made under the long name by an earlier paywire release is in schema "
            f"{kept!r}, so name that one in the URL (?schema=...); for a new ledger choose a shorter name")


class _Answer:
    """A statement's answer: its rows (decoded by psycopg's loaders) and how many rows it hit.
    Inside a unit it is sent with the next statement whose answer is needed; asking for it
    sends whatever waits and reads the answers in order."""

    __slots__ = ("_rowcount", "_rows", "params", "prepared", "session", "sql")

    def __init__(self, session: _Session, sql: bytes, params: list[bytes | None] | None, prepared: bool) -> None:
        self.session = session
        self.sql = sql  # the prepared statement's name, when prepared
        self.params = params
        self.prepared = prepared
        self._rows: list[tuple[Any, ...]] | None = None
        self._rowcount = -1

    def take(self, result: Any, loader: Any) -> None:
        count = result.ntuples
        rows: list[tuple[Any, ...]] = []
        if count:
            loader.set_pgresult(result)
            rows = loader.load_rows(0, count, tuple)
        self._rows = rows
        affected = result.command_tuples
        self._rowcount = -1 if affected is None else affected

    @property
    def rows(self) -> list[tuple[Any, ...]]:
        if self._rows is None:
            self.session.send()
        assert self._rows is not None
        return self._rows

    @property
    def rowcount(self) -> int:
        if self._rows is None:
            self.session.send()
        return self._rowcount

    def fetchone(self) -> tuple[Any, ...] | None:
        rows = self.rows
        return rows[0] if rows else None

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self.rows


class _Session:
    """A connection's statements, through psycopg's libpq layer (`pgconn`) rather than cursors.

    Why: psycopg's cursor machinery (query conversion, its generators, its pipeline queue)
    costs about 68,000 instructions per statement, 83,000 in pipeline mode, against 14,000 for
    the statement itself at this layer; an operation is a dozen statements, and with several
    workers on two cores that was a third of an operation's client CPU.

    - A statement with parameters is prepared once per connection, then executed by name (the
      first `PREPARED` of them; any others are sent whole). Parameters go as text and the server
      infers their types from the statement: the ledger binds only str, int, bool and None.
    - Inside a unit, statements wait in `pending` until an answer is asked for (or the unit
      commits); then everything waiting goes in one pipeline, up to one sync, and the answers
      are read in order. `BEGIN` thus travels with the first statement and `COMMIT` with the
      last writes. The first error is raised once every answer of the batch is read; the
      transaction is then aborted, and the unit rolls back.
    - Waiting is done in `selectors` (or in `exec_prepared`), with the GIL released.
    """

    PREPARED = 256  # statements differ only in how many values an IN list holds: few anyway

    def __init__(self, connection: Any) -> None:
        import selectors

        from psycopg import pq
        from psycopg.adapt import Transformer

        self.connection = connection
        self._pgconn = connection.pgconn
        self._loader = Transformer(connection)
        self._names: dict[str, bytes] = {}  # statement -> its prepared name
        self._pending: list[_Answer] = []
        self._in_unit = False
        self._ok = (pq.ExecStatus.COMMAND_OK, pq.ExecStatus.TUPLES_OK)
        self._aborted = pq.ExecStatus.PIPELINE_ABORTED  # after an error, until the sync
        self._idle = pq.TransactionStatus.IDLE
        self._selector = selectors.DefaultSelector()
        self._readable = selectors.EVENT_READ
        self._writable = selectors.EVENT_WRITE
        self._selector.register(self._pgconn.socket, self._readable)

    def run(self, sql: str, params: Sequence[Any]) -> _Answer:
        if params:
            name = self._names.get(sql)
            values = [_text(value) for value in params]
            if name is None and len(self._names) < self.PREPARED:
                if self._pending:  # it is parsed against the catalog as the server has it: what waits runs first
                    self.send()
                name = self._prepare(sql)
            answer = _Answer(self, name, values, True) if name else _Answer(self, _numbered(sql), values, False)
        else:
            answer = _Answer(self, sql.encode(), None, False)
        self._pending.append(answer)
        if not self._in_unit:
            self.send()
        return answer

    def idle(self) -> bool:
        """Whether no unit is open on the connection (nothing waits to be sent)."""
        return not self._in_unit and not self._pending

    def hung_up(self) -> bool:
        """Whether the server has spoken on this idle connection unasked: on a ledger connection
        (which listens for no notifications) that is its goodbye, an error saying why and the end
        of the stream. Looks only at what has arrived, without a round trip."""
        return self.idle() and bool(self._selector.select(0))

    def begin(self, then: str | None) -> None:
        self._in_unit = True
        # Whatever the database's or role's default: under REPEATABLE READ a unit's snapshot predates
        # the locks it waits for, and it would miss what the holder recorded (a capture in flight).
        self.run("BEGIN ISOLATION LEVEL READ COMMITTED", ())
        if then:
            self.run(then, ())

    def commit(self) -> None:
        self.run("COMMIT", ())
        self._in_unit = False
        self.send()

    def rollback(self) -> None:
        """Forget what was never sent; roll back what was."""
        self._pending.clear()
        self._in_unit = False
        if self._pgconn.transaction_status != self._idle:
            self.run("ROLLBACK", ())

    def send(self) -> None:
        pending, self._pending = self._pending, []
        if len(pending) == 1:
            answer = pending[0]
            pgconn = self._pgconn
            # One statement: libpq waits for its answer with the GIL released.
            if answer.prepared:
                result = pgconn.exec_prepared(answer.sql, answer.params)
            elif answer.params is None:
                result = pgconn.exec_(answer.sql)
            else:
                result = pgconn.exec_params(answer.sql, answer.params)
            self._check(result)
            answer.take(result, self._loader)
        elif pending:
            self._pipeline(pending)

    def _pipeline(self, pending: list[_Answer]) -> None:
        pgconn = self._pgconn
        pgconn.enter_pipeline_mode()
        error: Exception | None = None
        try:
            for answer in pending:
                if answer.prepared:
                    pgconn.send_query_prepared(answer.sql, answer.params)
                else:
                    pgconn.send_query_params(answer.sql, answer.params)
            pgconn.pipeline_sync()
            self._flush()
            for answer in pending:
                result = self._result()
                self._next()  # the end of this statement's results
                if result.status in self._ok:
                    answer.take(result, self._loader)
                elif error is None and result.status != self._aborted:
                    error = self._error(result)
            self._result()  # the sync
        except BaseException:
            # Answers left unread: the connection cannot be used again; the next call opens another.
            self._in_unit = False
            self.connection.close()
            raise
        pgconn.exit_pipeline_mode()
        if error is not None:
            raise error

    def _result(self) -> Any:
        result = self._next()
        if result is None:
            from psycopg import OperationalError

            raise OperationalError("PostgreSQL answered fewer results than statements sent")
        return result

    def _next(self) -> Any:
        """The next result, or None at the end of a statement's results."""
        pgconn = self._pgconn
        while pgconn.is_busy():  # no read while a whole answer is already in hand
            self._selector.select()
            pgconn.consume_input()
        return pgconn.get_result()

    def _flush(self) -> None:
        pgconn = self._pgconn
        if pgconn.flush():  # the socket's buffer is full: wait until it drains
            self._selector.modify(pgconn.socket, self._writable)
            try:
                while pgconn.flush():
                    self._selector.select()
            finally:
                self._selector.modify(pgconn.socket, self._readable)

    def _prepare(self, sql: str) -> bytes:
        name = f"paywire_{len(self._names)}".encode()
        self._check(self._pgconn.prepare(name, _numbered(sql)))
        self._names[sql] = name
        return name

    def _check(self, result: Any) -> None:
        if result.status not in self._ok:
            raise self._error(result)

    def _error(self, result: Any) -> Exception:
        from psycopg import OperationalError, pq
        from psycopg.errors import error_from_result

        if self._pgconn.status == pq.ConnStatus.BAD:  # as psycopg reports a lost connection
            return OperationalError(result.error_message.decode(errors="replace").strip())
        return error_from_result(result, encoding=self.connection.info.encoding)


def _numbered(sql: str) -> bytes:
    """The statement with PostgreSQL's numbered placeholders: the ledger's statements hold "?"
    only as placeholders."""
    pieces = sql.split("?")
    return (pieces[0] + "".join(f"${n}{piece}" for n, piece in enumerate(pieces[1:], 1))).encode()


def _text(value: Any) -> bytes | None:
    """A parameter in PostgreSQL's text form."""
    if value is None:
        return None
    if isinstance(value, str):
        if "\x00" in value:  # libpq ends a text parameter there: refused, never cut short
            raise ValueError("the ledger cannot keep text holding a NUL character (PostgreSQL ends text at one)")
        return value.encode()
    if isinstance(value, bool):  # before int: a bool is an int
        return b"t" if value else b"f"
    if isinstance(value, int):
        return int.__str__(value).encode()
    raise TypeError(f"the ledger binds str, int, bool or None, not {type(value).__name__}")
