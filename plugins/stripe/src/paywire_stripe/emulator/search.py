"""A subset of Stripe's Search Query Language for `GET /v1/payment_intents/search`.

Supported: clauses `field:'value'` (equality), `field>n`, `>=`, `<`, `<=` on numbers,
`metadata['key']:'value'`, `metadata['key']:null` (no such key), negation with a leading `-`, and
clauses joined by all-`AND` or all-`OR` (Stripe refuses mixing them); in a quoted value a backslash
escapes a quote (or itself), and AND or OR are text. Fields: amount, created,
currency, customer, metadata, status. Results are newest first. Stripe's search index lags writes
(under a minute normally, longer during an outage); here an object is found once the emulator's
`search_lag` seconds (default 0: at once) have passed since it was created, so a test can make
search miss what the list endpoints already show.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

import attrs

from paywire_stripe.emulator.errors import StripeError, invalid_request

__all__ = ["Query", "parse"]

FIELDS = frozenset(("amount", "created", "currency", "customer", "metadata", "status"))
_NUMERIC = frozenset(("amount", "created"))
# A quoted string: single or double quotes, a backslash escaping the next character (`'it\'s'`).
_QUOTED = r"'(?P<{0}1>(?:[^'\\]|\\.)*)'" + "|" + r'"(?P<{0}2>(?:[^"\\]|\\.)*)"'
_CLAUSE = re.compile(
    r"""(?P<negate>-)?(?P<field>[a-z_]+)(?:\[(?:""" + _QUOTED.format("key") + r""")\])?"""
    r"""(?P<op>:|>=|<=|>|<)(?:""" + _QUOTED.format("text") + r"""|(?P<number>-?\d+)|(?P<null>null))""",
    re.DOTALL,
)
_JOIN = re.compile(r"\s+(AND|OR)\s+")
_ESCAPED = re.compile(r"\\(.)", re.DOTALL)


def _unquoted(match: re.Match[str], name: str) -> str | None:
    """The text of a quoted string of the clause, its escapes undone; None when it has none."""
    text = match[name + "1"] if match[name + "1"] is not None else match[name + "2"]
    return None if text is None else _ESCAPED.sub(r"\1", text)


def _clauses(text: str) -> tuple[list[re.Match[str]], set[str]]:
    """The clauses of a query and the words joining them; quoted strings may hold spaces, quotes
    (escaped) and the words AND and OR."""
    clauses: list[re.Match[str]] = []
    joins: set[str] = set()
    position, end = 0, len(text)
    while True:
        match = _CLAUSE.match(text, position)
        if match is None or (match.end() < end and not _JOIN.match(text, match.end())):
            rest = _JOIN.split(text[position:], maxsplit=1)[0]
            raise _error(
                f"Invalid query: could not parse `{rest.strip()}`. Clauses look like field:'value', "
                "metadata['key']:'value' or amount>1000."
            )
        clauses.append(match)
        if match.end() == end:
            return clauses, joins
        join = _JOIN.match(text, match.end())
        assert join is not None
        joins.add(join[1])
        position = join.end()


@attrs.frozen
class Clause:
    negate: bool
    field: str
    key: str | None
    op: str
    value: str | int | None

    def matches(self, obj: Mapping[str, Any]) -> bool:
        return self._test(obj) != self.negate

    def _test(self, obj: Mapping[str, Any]) -> bool:
        if self.field == "metadata":
            found = obj.get("metadata", {}).get(self.key or "")
            return found is None if self.value is None else found == self.value
        actual = obj.get(self.field)
        if self.field in _NUMERIC:
            if not isinstance(self.value, int) or not isinstance(actual, int):
                return False
            return {
                ":": actual == self.value,
                ">": actual > self.value,
                ">=": actual >= self.value,
                "<": actual < self.value,
                "<=": actual <= self.value,
            }[self.op]
        if self.field == "currency" and isinstance(self.value, str):
            return actual == self.value.lower()
        return bool(actual == self.value)


@attrs.frozen
class Query:
    clauses: tuple[Clause, ...]
    any_of: bool

    def matches(self, obj: Mapping[str, Any]) -> bool:
        results = (clause.matches(obj) for clause in self.clauses)
        return any(results) if self.any_of else all(results)


def _error(message: str) -> StripeError:
    return invalid_request(message, param="query", saved=False)


def parse(text: str, resource: str = "payment_intents") -> Query:
    matches, joins = _clauses(text.strip())
    if len(joins) > 1:
        raise _error("Invalid query: `AND` and `OR` cannot be combined in one query.")
    clauses = []
    for match in matches:
        part = match[0]
        field = match["field"]
        if field not in FIELDS:
            raise _error(
                f"Field `{field}` is an unsupported search field for resource `{resource}`. See "
                "http://stripe.com/docs/search#query-fields-for-payment-intents for a list of supported "
                "fields."
            )
        key, text_value = _unquoted(match, "key"), _unquoted(match, "text")
        if (field == "metadata") != (key is not None):
            raise _error(f"Invalid query: only metadata takes a key, as in metadata['key']:'value' (`{part}`).")
        if match["op"] != ":" and field not in _NUMERIC:
            raise _error(f"Invalid query: `{field}` only supports the `:` operator.")
        value: str | int | None
        if match["null"] is not None:
            value = None
        elif match["number"] is not None:
            value = int(match["number"])
        elif field in _NUMERIC and text_value is not None and re.fullmatch(r"-?\d+", text_value):
            value = int(text_value)
        else:
            value = text_value
        clauses.append(Clause(bool(match["negate"]), field, key, match["op"], value))
    return Query(tuple(clauses), joins == {"OR"})
