"""The command line's tests share the ledger tests' PostgreSQL server (and its cleanup)."""

from tests.ledger.conftest import postgres_dsn

__all__ = ["postgres_dsn"]
