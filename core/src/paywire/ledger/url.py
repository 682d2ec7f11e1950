"""Opening a ledger from a URL, as configuration files and the command line name it.

Every way a URL can be unusable (empty, malformed, a directory that does not exist, a file that
cannot be written, a PostgreSQL server that refuses or lacks the database) is one
`ConfigurationError` naming the URL (its password masked) and what to do.
"""

from __future__ import annotations

import os
import re
import sqlite3
from pathlib import Path
from urllib.parse import parse_qsl, unquote, unquote_plus, urlsplit

from paywire.errors import ConfigurationError
from paywire.ledger.interface import Ledger
from paywire.security import masked_url, url_passwords

__all__ = ["masked_url", "open_ledger"]


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_LIBPQ_KEYWORD = re.compile(r"(?i)(?:^|\s)(?:host|hostaddr|port|dbname|user|password|service|sslmode)\s*=")


def open_ledger(url: str, *, create: bool = True) -> Ledger:
    """The ledger a URL names, migrated and ready.

    With `create=False` (commands that only read), an SQLite file that does not exist, or a
    PostgreSQL database or schema without a ledger, is a `ConfigurationError` instead of a new,
    empty ledger; a ledger that exists is migrated as usual.

    - `sqlite:///relative/path.db`, `sqlite:////absolute/path.db` (or a bare file path, or a
      percent-encoded `file:///absolute/path.db`, no host but localhost); the directory must exist (a typo never
      creates directories); a leading `~` is the user's home, as a shell would read it (a
      configuration file's path never went through one); no query, which the file name would
      otherwise silently lose;
    - `postgresql://user@host:5432/dbname` (also `postgres://`), with an optional
      `?schema=name` to keep the tables in that schema; other query parameters go to libpq.
    """
    if not url or not url.strip():
        raise ConfigurationError("the ledger URL is empty: use sqlite:///path/to/ledger.db or postgresql://host/db")
    if url != url.strip() or _CONTROL.search(url):
        # A URL read from a file or a secret keeps its newline: "ledger.db\n" is another file,
        # a new, empty ledger beside the real one; urlsplit drops a leading space, the path does not.
        raise ConfigurationError(f"ledger URL {masked_url(url)!r} has spaces at its start or end, or a control "
                                 "character (a line break read with it from a file?); remove them")
    try:
        parts = urlsplit(url)
    except ValueError as exc:  # e.g. an unclosed [ of an IPv6 host
        raise ConfigurationError(f"ledger URL {masked_url(url)!r} is malformed ({exc}); use "
                                 "sqlite:///path/to/ledger.db or postgresql://user@host:5432/db") from None
    if not parts.scheme and _LIBPQ_KEYWORD.search(url):
        raise ConfigurationError(f"ledger URL {masked_url(url)!r} is a libpq keyword string; write it as a URL, "
                                 "postgresql://user@host:5432/dbname (a bare path is an SQLite file)")
    if parts.scheme == "file":
        _check_file_url(url, parts.netloc, bool(parts.query or parts.fragment or url.endswith(("?", "#"))))
    if parts.scheme in ("", "file") or (len(parts.scheme) == 1 and url[1:3] in (":\\", ":/")):
        # A file: URL is percent-encoded (as `Path.as_uri()` writes it); a bare path is taken as written.
        return _sqlite(url, unquote(parts.path) if parts.scheme == "file" else os.path.expanduser(url), create)
    if parts.scheme == "sqlite":
        # Shown with any password masked: a URL meant for a server (user:password@host,
        # ?password=...) may be given an sqlite: scheme by mistake.
        shown = masked_url(url)
        if parts.netloc:
            host = urlsplit(shown).netloc
            raise ConfigurationError(
                f"ledger URL {shown!r} has a host part ({host!r}); write sqlite:///{host}{parts.path} "
                "for a path relative to the working directory, or sqlite:////absolute/path.db"
            )
        path = url[len("sqlite://"):]
        if path.startswith("/"):
            path = path[1:]  # sqlite:///x.db is relative, sqlite:////x.db absolute
        if parts.query or parts.fragment or url.endswith(("?", "#")):
            raise ConfigurationError(
                f"ledger URL {shown!r} has a query or fragment, which an SQLite ledger takes none of (paywire sets "
                "its own connection options); remove it, or for a file name holding '?' or '#' use its "
                "percent-encoded file: URL (pathlib.Path.as_uri())"
            )
        if not path:
            raise ConfigurationError(f"ledger URL {shown!r} names no file: use sqlite:///path/to/ledger.db")
        return _sqlite(url, os.path.expanduser(path), create)
    if parts.scheme in ("postgresql", "postgres"):
        if any(reserved in password for password in url_passwords(url)[:1] for reserved in "/?#@"):
            raise ConfigurationError(f"the password in ledger URL {masked_url(url)!r} holds a character URLs reserve "
                                     "(/ ? # @): percent-encode it, e.g. urllib.parse.quote(password, safe='')")
        _check_ports(url, parts.netloc)
        return _postgres(url, create)
    raise ConfigurationError(
        f"unsupported ledger URL scheme {parts.scheme!r} in {masked_url(url)!r}: use sqlite:///path.db or "
        "postgresql://host/db"
    )


def _check_file_url(url: str, netloc: str, query: bool) -> None:
    """Refuse what a file: URL's path alone would silently lose: a host other than this machine
    (the ledger meant elsewhere would be made here) and a query or fragment (`?mode=ro`)."""
    if netloc and netloc.lower() != "localhost":
        raise ConfigurationError(f"ledger URL {masked_url(url)!r} names a host; an SQLite ledger is a file on this "
                                 "machine: write file:///absolute/path.db (or use postgresql:// for a server)")
    if query:
        raise ConfigurationError(f"ledger URL {masked_url(url)!r} has a query or fragment, which an SQLite ledger "
                                 "takes none of; remove it, percent-encoding a '?' or '#' of the file name "
                                 "(pathlib.Path.as_uri())")


def _sqlite(url: str, path: str, create: bool) -> Ledger:
    from paywire.ledger.sqlite import SQLiteLedger

    file = Path(path)
    folder = file.parent
    if create and not folder.is_dir():  # without `create`, SQLiteLedger says there is no ledger
        raise ConfigurationError(f"ledger URL {url!r}: the directory {str(folder)!r} does not exist; create it, or "
                                 "fix --ledger, PAYWIRE_LEDGER or [paywire] ledger")
    try:
        return SQLiteLedger(file, create=create)
    except (sqlite3.Error, OSError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigurationError(f"ledger URL {url!r}: cannot open {path!r} ({reason}); check that the file and "
                                 "its directory are writable") from None


def _hosts(netloc: str) -> str:
    """The host part of a URL's netloc, as written: libpq takes several (`h1:5432,h2:5433`)."""
    return netloc.rpartition("@")[2]


def _check_ports(url: str, netloc: str) -> None:
    """Refuse a port that is no TCP port (letters, out of range, non-ASCII digits) before libpq
    is asked: urllib's own reading of it raises a bare ValueError, and takes full-width digits for ASCII ones."""
    for host in _hosts(netloc).split(","):
        port = host.rpartition("]")[2] if host.startswith("[") else host
        if ":" not in port:
            continue
        port = port.rpartition(":")[2]
        if port and not (port.isascii() and port.isdigit() and 0 < int(port) <= 65535):
            raise ConfigurationError(f"the port {port!r} in ledger URL {masked_url(url)!r} is not a number from 1 to "
                                     "65535; fix it (PostgreSQL listens on 5432 unless configured otherwise)")


def _postgres(url: str, create: bool) -> Ledger:
    from paywire.ledger.postgres import PostgresLedger

    parts = urlsplit(url)
    query = parse_qsl(parts.query, keep_blank_values=True)
    schema = next((value for name, value in query if name == "schema"), None)
    # The rest as written: libpq decodes no "+" (urlencode's space), so `options=-c%20lock_timeout%3D5000`
    # re-encoded would reach the server as "-c+lock_timeout=5000", and a literal "+" as a space.
    rest = "&".join(piece for piece in parts.query.split("&")
                    if piece and unquote_plus(piece.split("=", 1)[0]) != "schema")
    # Joined by hand: urlunsplit drops the `//` of an empty host part (postgresql:///db?host=/run/pg),
    # and libpq reads what is left as a keyword string.
    dsn = f"{parts.scheme}://{parts.netloc}{parts.path}" + (f"?{rest}" if rest else "")
    dsn += f"#{parts.fragment}" if parts.fragment else ""
    try:
        return PostgresLedger(dsn, schema=schema or None, create=create)
    except ConfigurationError:
        raise
    except Exception as exc:  # psycopg's OperationalError and friends, whatever their module
        if type(exc).__module__.split(".")[0] != "psycopg":
            raise
        reason = " ".join(str(exc).split())
    # Raised here, out of the handler: psycopg's error, which would stay the context even when
    # suppressed, holds the connection's parameters, the password among them.
    raise _refused(url, parts.path, _hosts(parts.netloc), reason)


def _refused(url: str, path: str, hosts: str, reason: str) -> ConfigurationError:
    """The error for a PostgreSQL ledger psycopg could not open, saying why (`reason`, psycopg's
    text) and what to do, the URL's password masked wherever it shows."""
    if "does not exist" in reason and "database" in reason:
        advice = f"create it (createdb {path.lstrip('/') or '<name>'}) or fix the URL"
    elif "refused" in reason or "timeout" in reason or "could not translate host" in reason:
        advice = f"is PostgreSQL running and reachable at {_where(hosts)}?"
    elif "permission denied" in reason:
        advice = ("grant this role USAGE on the ledger's schema and SELECT, INSERT, UPDATE, DELETE on its tables "
                  "(its owner migrates it), or connect as the owner")
    elif "password" in reason or "authentication" in reason or "role" in reason:
        advice = "check the user and password in the URL"
    else:
        advice = "check the URL and the server"
    for secret in url_passwords(url):
        reason = reason.replace(secret, "***")
    return ConfigurationError(f"cannot open the PostgreSQL ledger {masked_url(url)!r}: {reason}; {advice}")


def _where(hosts: str) -> str:
    """Where libpq looked, as the URL writes it (several hosts as written), its defaults filled in."""
    if not hosts:
        return "localhost:5432"
    if "," in hosts:
        return hosts
    name = hosts.rpartition("]")[0] + "]" if hosts.startswith("[") else hosts.partition(":")[0]
    port = hosts[len(name):].lstrip(":")
    return f"{unquote(name) or 'localhost'}:{port or 5432}"
