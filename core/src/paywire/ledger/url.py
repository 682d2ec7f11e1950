"""Opening a ledger from a URL, as configuration files and the command line name it."""

from __future__ import annotations

from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from paywire.errors import ConfigurationError
from paywire.ledger.interface import Ledger

__all__ = ["open_ledger"]


def open_ledger(url: str, *, create: bool = True) -> Ledger:
    """The ledger a URL names, migrated and ready.

    With `create=False` (commands that only read), an SQLite file that does not exist is a
    `ConfigurationError` instead of a new, empty ledger.

    - `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` (or a bare file path);
    - `postgresql://user@host:5432/dbname` (also `postgres://`), with an optional
      `?schema=name` to keep the tables in that schema; other query parameters go to libpq.
    """
    parts = urlsplit(url)
    if parts.scheme in ("", "file") or (len(parts.scheme) == 1 and url[1:3] in (":\\", ":/")):
        return _sqlite(parts.path if parts.scheme == "file" else url, create)
    if parts.scheme == "sqlite":
        path = url[len("sqlite://"):]
        if path.startswith("/"):
            path = path[1:]  # sqlite:///x.db is relative, sqlite:////x.db absolute
        path = path.split("?", 1)[0]
        if not path:
            raise ConfigurationError(f"ledger URL {url!r} names no file: use sqlite:///path/to/ledger.db")
        return _sqlite(path, create)
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


def _sqlite(path: str, create: bool) -> Ledger:
    from pathlib import Path

    from paywire.ledger.sqlite import SQLiteLedger

    if not create and not Path(path).exists():
        raise ConfigurationError(f"there is no ledger at {path!r} yet: nothing has been recorded there; check "
                                 "--ledger, PAYWIRE_LEDGER or [paywire] ledger")
    return SQLiteLedger(path)
