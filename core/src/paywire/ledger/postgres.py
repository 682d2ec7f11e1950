"""The shared ledger: PostgreSQL through psycopg 3 (install `paywire[postgresql]`).

Several workers or hosts can share it. A unit is one READ COMMITTED transaction that takes its
locks explicitly: a transaction-scoped advisory lock per idempotency key (so duplicates of one
request queue behind the first and then see its row), and `SELECT ... FOR UPDATE` on the payment
(so the money check and the pending record of one operation are atomic against every other
worker's). Locks are released by COMMIT or ROLLBACK, also when a worker dies.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

from paywire.errors import ConfigurationError
from paywire.ledger._sql import SELECT_PAYMENT, SQLLedger

__all__ = ["PostgresLedger"]


class PostgresLedger(SQLLedger):
    """A ledger in the PostgreSQL database at `dsn` (a libpq URL or key=value string).

    :param schema: keep the tables in this schema (created if missing) instead of the
        connection's default search path; handy for several shops, or tests, in one database.
    """

    dialect = "postgresql"
    select_payment_locked = SELECT_PAYMENT + " FOR UPDATE"
    select_payment_claimed = SELECT_PAYMENT + " FOR UPDATE SKIP LOCKED"

    def __init__(self, dsn: str, *, schema: str | None = None, connect_timeout: int = 10) -> None:
        super().__init__()
        try:
            import psycopg
        except ImportError:  # pragma: no cover - depends on the installed extras
            raise ConfigurationError(
                "the PostgreSQL ledger needs psycopg 3: pip install 'paywire[postgresql]'"
            ) from None
        self._psycopg = psycopg
        self.dsn = dsn
        self.schema = schema
        self.connect_timeout = connect_timeout
        self._sql_cache: dict[str, str] = {}
        self.migrate()

    def __repr__(self) -> str:
        return f"PostgresLedger(schema={self.schema!r})"  # the DSN may hold a password

    def connection(self) -> Any:
        pid = os.getpid()
        cached = getattr(self._local, "connection", None)
        if cached is not None and cached[0] == pid and cached[2] == self._generation and not cached[1].closed:
            return cached[1]
        conn = self._psycopg.connect(self.dsn, autocommit=True, connect_timeout=self.connect_timeout)
        if self.schema:
            from psycopg import sql

            conn.execute(sql.SQL("SET search_path TO {}").format(sql.Identifier(self.schema)))
        self._local.connection = (pid, conn, self._generation)
        with self._lock:
            self._connections.append((pid, conn))
        return conn

    def execute(self, connection: Any, sql: str, params: Sequence[Any] = ()) -> Any:
        cursors: _Cursors | None = getattr(self._local, "unit_cursors", None)
        runner = cursors.next() if cursors is not None and cursors.connection is connection else connection
        if not params:
            return runner.execute(sql)
        converted = self._sql_cache.get(sql)
        if converted is None:
            converted = self._sql_cache[sql] = sql.replace("?", "%s")
        return runner.execute(converted, tuple(params))

    @contextmanager
    def batch(self, connection: Any) -> Iterator[None]:
        # psycopg's pipeline mode: BEGIN goes with the first read, the last writes with COMMIT.
        cursors: _Cursors | None = getattr(self._local, "cursors", None)
        if cursors is None or cursors.connection is not connection:
            cursors = self._local.cursors = _Cursors(connection)
        cursors.used = 0
        with connection.pipeline() as pipeline:
            self._local.pipeline = pipeline
            self._local.unit_cursors = cursors
            try:
                yield
            finally:
                self._local.pipeline = self._local.unit_cursors = None

    def rowcount(self, connection: Any, cursor: Any) -> int:
        if cursor.pgresult is None:  # sent, not answered yet
            pipeline = getattr(self._local, "pipeline", None)
            if pipeline is not None:
                pipeline.sync()
        return int(cursor.rowcount)

    def begin(self, connection: Any, *, durable: bool = True) -> None:
        self.execute(connection, "BEGIN")
        if not durable:  # the commit returns before its WAL flush; a server crash may lose it, whole
            self.execute(connection, "SET LOCAL synchronous_commit TO OFF")

    def lock_key(self, connection: Any, method: str, key: str) -> None:
        connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))",
            (f"paywire:{self.schema or ''}:{method}:{key}",),
        )

    def lock_migrations(self, connection: Any) -> None:
        connection.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", (f"paywire:migrate:{self.schema or ''}",)
        )
        if self.schema:
            from psycopg import sql

            connection.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(self.schema)))

    def is_integrity_error(self, exc: Exception) -> bool:
        return isinstance(exc, self._psycopg.errors.IntegrityError)


class _Cursors:
    """The cursors a unit's statements run on, kept from unit to unit: making a psycopg cursor
    is a fifth to a third of a statement's client CPU. Each statement of a unit gets its own (in
    a pipeline a statement is answered only when its results are taken); a unit longer than the
    list makes new ones for the rest."""

    LIMIT = 32

    def __init__(self, connection: Any) -> None:
        self.connection = connection
        self.cursors: list[Any] = []
        self.used = 0

    def next(self) -> Any:
        used = self.used
        if used < len(self.cursors):
            self.used = used + 1
            return self.cursors[used]
        cursor = self.connection.cursor()
        if used < self.LIMIT:
            self.cursors.append(cursor)
            self.used = used + 1
        return cursor
