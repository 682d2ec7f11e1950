"""Watching for secrets: everything a run shows a person (log records, errors, reprs) is kept
and searched for the plugin's secret values.

A report names where a secret appeared but never prints it: the report itself ends up in CI logs.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import logging
import os
import sqlite3
import threading
import traceback
import types
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

import attrs

from paywire.errors import PaywireError
from paywire.security import Secret, secret_variants  # the forms redaction masks are the forms leaks are looked for in

if TYPE_CHECKING:
    from paywire.service.payments import PaymentService

__all__ = ["LeakWatch", "SecretValues", "error_texts", "secret_variants"]


def error_texts(error: BaseException) -> list[tuple[str, str]]:
    """What an error shows whoever reads it, with where: the message, repr, arguments, details
    and traceback line of it and of everything chained to it."""
    texts: list[tuple[str, str]] = []
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        where = f"{type(current).__name__} raised"
        texts.append((where, str(current)))
        texts.append((where, repr(current)))
        texts.append((where, repr(current.args)))
        texts.append((where, repr(vars(current)) if hasattr(current, "__dict__") else ""))
        texts.append((where, "".join(traceback.format_exception_only(type(current), current))))
        current = current.__cause__ or current.__context__
    return texts


class SecretValues(frozenset[str]):
    """The secret values to look for; shown as a count, since failure reports print fixtures."""

    def __repr__(self) -> str:
        return f"SecretValues({len(self)} values)"

    __str__ = __repr__


_LEAVES = (str, bytes, bytearray, int, float, complex, bool, type(None))


def _parts(path: str, value: object) -> list[tuple[str, object]]:
    """What `value` holds, each named by how it was reached."""
    if isinstance(value, (list, tuple, set, frozenset)):
        return [(f"{path}[{index}]", item) for index, item in enumerate(value)]
    if isinstance(value, (dict, types.MappingProxyType)):
        return [(f"{path}[{key!r}]", item) for key, item in value.items()]
    if isinstance(value, types.MethodType):
        return [(f"{path}.__self__", value.__self__)]
    if isinstance(value, functools.partial):
        return [(f"{path}.func", value.func), (f"{path}.args", value.args), (f"{path}.keywords", value.keywords)]
    if isinstance(value, types.FunctionType):
        held = []
        for name, cell in zip(value.__code__.co_freevars, value.__closure__ or (), strict=False):
            with contextlib.suppress(ValueError):  # a cell not filled yet
                held.append((f"{path} (closing over {name})", cell.cell_contents))
        return held
    kind = type(value)
    if attrs.has(kind):
        return [(f"{path}.{field.name}", getattr(value, field.name, None)) for field in attrs.fields(kind)]
    if dataclasses.is_dataclass(value):
        return [(f"{path}.{field.name}", getattr(value, field.name, None)) for field in dataclasses.fields(value)]
    return []


def _cell(value: object) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _mask(secret: str) -> str:
    return f"{secret[:2]}…({len(secret)} characters)"


class LeakWatch(logging.Handler):
    """Collects the text of log records (any logger, DEBUG and up), errors and reprs."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self._seen: list[tuple[str, str]] = []
        self._checked = 0
        self._guard = threading.Lock()
        self.setFormatter(logging.Formatter("%(name)s %(levelname)s %(message)s"))

    def __repr__(self) -> str:
        return f"LeakWatch({len(self._seen)} texts)"

    def note(self, where: str, text: str) -> None:
        with self._guard:
            self._seen.append((where, text))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            text = self.format(record)
        except Exception as exc:  # noqa: BLE001 - a broken record is kept as what can be shown
            text = f"{record.msg!r} {record.args!r} ({type(exc).__name__})"
        self.note(f"log record of {record.name!r} at {record.levelname}", text)

    def note_error(self, error: BaseException) -> None:
        """An error and everything chained to it: message, repr, arguments, details, traceback."""
        for where, text in error_texts(error):
            self.note(where, text)

    def note_repr(self, what: str, value: object) -> None:
        self.note(f"repr of {what}", repr(value))
        self.note(f"str of {what}", str(value))

    def call(self, call: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        """Calls `call`, noting what it returned or the `PaywireError` it raised, which is returned:
        a leak test drives unhappy paths too, and each answer is something a caller shows."""
        try:
            result = call(*args, **kwargs)
        except PaywireError as error:
            self.note_error(error)
            return error
        self.note_repr(f"what {call.__name__} returned", result)
        return result

    def note_parts(self, what: str, value: object, *, limit: int = 2000) -> None:
        """The repr of every object `value` holds, hidden or not: attrs fields (`repr=False` ones
        too), dataclass fields, what functions close over, bound methods' objects, containers.

        A field left out of its holder's repr is hidden only until something shows the field
        itself: a log of the object, a debugger, an error tracker capturing frame locals. Text
        values are left alone (a hidden string is the holder's to hide); `Secret`s are skipped.
        """
        seen: set[int] = set()
        todo: list[tuple[str, object]] = [(what, value)]
        while todo and len(seen) < limit:
            path, current = todo.pop()
            if id(current) in seen or isinstance(current, (*_LEAVES, Secret, type, types.ModuleType)):
                continue
            seen.add(id(current))
            if not isinstance(current, (types.FunctionType, types.MethodType, functools.partial,
                                        list, tuple, dict, set, frozenset, types.MappingProxyType)):
                self.note_repr(f"{path} (a {type(current).__name__})", current)
            todo.extend(_parts(path, current))

    def note_reads(self, service: PaymentService) -> None:
        """Every payment of the service's ledger and its transactions, as a caller reads them back."""
        for payment in service.list_payments():
            self.note_repr("a payment read again", payment)
            for txn in service.list_transactions(payment.id):
                self.note_repr("a transaction read again", txn)

    def note_sqlite(self, path: str | os.PathLike[str]) -> None:
        """Every row of every table of a SQLite file (a ledger), each cell as the file holds it, and
        the file's bytes (with its journal), where rows written over or deleted may still lie."""
        for file in (os.fspath(path), f"{os.fspath(path)}-wal", f"{os.fspath(path)}-journal"):
            if os.path.exists(file):
                with open(file, "rb") as raw:
                    self.note(f"the bytes of {os.path.basename(file)}", raw.read().decode("latin-1"))
        with contextlib.closing(sqlite3.connect(f"file:{os.fspath(path)}?mode=ro", uri=True)) as db:
            tables = [name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")]
            for table in tables:
                for row in db.execute(f'SELECT * FROM "{table}"'):  # noqa: S608 - the file's own table names
                    self.note(f"the ledger's {table} table", " | ".join(_cell(cell) for cell in row))

    def leaks(self, secrets: Iterable[str]) -> list[str]:
        """Where each secret appeared since the last call, once per place, the secret masked."""
        with self._guard:
            seen, self._checked = self._seen[self._checked:], len(self._seen)
        wanted = {secret: secret_variants(secret) for secret in secrets if secret}
        every_variant = sorted(set().union(*wanted.values()), key=len, reverse=True)
        findings: dict[tuple[str, str], str] = {}
        for secret, variants in wanted.items():
            for where, text in seen:
                if (secret, where) not in findings and any(variant in text for variant in variants):
                    excerpt = text
                    for variant in every_variant:
                        excerpt = excerpt.replace(variant, "<SECRET>")
                    findings[(secret, where)] = f"secret {_mask(secret)} in {where}: {excerpt[:300]}"
        return list(findings.values())

    @contextlib.contextmanager
    def watching(self) -> Iterator[LeakWatch]:
        """Capture every log record at DEBUG while the block runs (levels restored afterwards)."""
        root = logging.getLogger()
        paywire = logging.getLogger("paywire")
        levels = root.level, paywire.level
        root.addHandler(self)
        root.setLevel(logging.DEBUG)
        paywire.setLevel(logging.DEBUG)
        try:
            yield self
        finally:
            root.removeHandler(self)
            root.setLevel(levels[0])
            paywire.setLevel(levels[1])
