"""Plain-text tables and JSON for the command line."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable, Sequence
from typing import Any, TextIO

from paywire.money import Money


def plain(value: Any) -> Any:
    """A JSON-ready copy: Money as {"amount": "19.99", "currency": "EUR", "minor": 1999}."""
    if isinstance(value, Money):
        return {"amount": value.format(), "currency": value.currency, "minor": value.minor}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, set, frozenset)):
        return [plain(v) for v in value]
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def text(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, Money):
        return str(value)
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ", ".join(text(v) for v in value) or "-"
    if hasattr(value, "isoformat"):
        return str(value.isoformat(timespec="seconds"))
    return str(value)


def table(headers: Sequence[str], rows: Iterable[Sequence[Any]], out: TextIO | None = None) -> None:
    out = out or sys.stdout
    cells = [[text(v) for v in row] for row in rows]
    widths = [max([len(h), *(len(r[i]) for r in cells)]) for i, h in enumerate(headers)]
    line = "  ".join("{:<%d}" % w for w in widths)  # noqa: UP031
    print(line.format(*headers).rstrip(), file=out)
    print(line.format(*("-" * w for w in widths)).rstrip(), file=out)
    for row in cells:
        print(line.format(*row).rstrip(), file=out)


def emit_json(value: Any, out: TextIO | None = None) -> None:
    print(json.dumps(plain(value), indent=2, sort_keys=True), file=out or sys.stdout)
