"""Opening a ledger from a URL, as configuration files and the command line name it."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from paywire.errors import ConfigurationError
from paywire.ledger.interface import Ledger

__all__ = ["open_ledger"]


def open_ledger(url: str) -> Ledger:
    """The ledger a URL names, migrated and ready.

    - `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` (or a bare file path);
    - `postgresql://user@host:5432/dbname` (also `postgres://`), with an optional
      `?schema=name` to keep the tables in that schema; other query parameters go to libpq.
    """
    parts = urlsplit(url)
    if parts.scheme in ("", "file") or (len(parts.scheme) == 1 and url[1:3] in (":\\", ":/")):
        from paywire.ledger.sqlite import SQLiteLedger

        return SQLiteLedger(parts.path if parts.scheme == "file" else url)
    if parts.scheme == "sqlite":
        from paywire.ledger.sqlite import SQLiteLedger

        path = url[len("sqlite://"):]
        if path.startswith("/"):
            path = path[1:]  # sqlite:///x.db is relative, sqlite:////x.db absolute
        path = path.split("?", 1)[0]
        if not path:
            raise ConfigurationError(f"ledger URL {url!r} names no file: use sqlite:///path/to/ledger.db")
        return SQLiteLedger(path)
    if parts.scheme in ("postgresql", "postgres"):
        from paywire.ledger.postgres import PostgresLedger

        query = parse_qsl(parts.query, keep_blank_values=True)
        schema = next((value for name, value in query if name == "schema"), None)
        rest = urlencode([(name, value) for name, value in query if name != "schema"])
        dsn = urlunsplit((parts.scheme, parts.netloc, parts.path, rest, parts.fragment))
        return PostgresLedger(dsn, schema=schema or None)
    raise ConfigurationError(
        f"unsupported ledger URL scheme {parts.scheme!r}: use sqlite:///path.db or postgresql://host/db"
    )
