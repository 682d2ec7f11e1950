"""A subset of Stripe's Search Query Language for `GET /v1/payment_intents/search`.

Supported: clauses `field:'value'` (equality), `field>n`, `>=`, `<`, `<=` on numbers,
`metadata['key']:'value'`, `metadata['key']:null` (no such key), negation with a leading `-`, and
clauses joined by all-`AND` or all-`OR` (Stripe refuses mixing them). Fields: amount, created,
currency, customer, metadata, status. Results are newest first. Unlike Stripe, whose search index
lags writes by up to a minute, results here are immediate.
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
_CLAUSE = re.compile(
    r"""(?P<negate>-)?(?P<field>[a-z_]+)(?:\[(?P<kq>['"])(?P<key>.*?)(?P=kq)\])?"""
    r"""(?P<op>:|>=|<=|>|<)(?:(?P<vq>['"])(?P<text>.*?)(?P=vq)|(?P<number>-?\d+)|(?P<null>null))"""
)
_JOIN = re.compile(r"\s+(AND|OR)\s+")


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
    parts = _JOIN.split(text.strip())
    clauses_text, joins = parts[0::2], set(parts[1::2])
    if len(joins) > 1:
        raise _error("Invalid query: `AND` and `OR` cannot be combined in one query.")
    clauses = []
    for part in clauses_text:
        match = _CLAUSE.fullmatch(part.strip())
        if match is None:
            raise _error(
                f"Invalid query: could not parse `{part.strip()}`. Clauses look like field:'value', "
                "metadata['key']:'value' or amount>1000."
            )
        field = match["field"]
        if field not in FIELDS:
            raise _error(
                f"Field `{field}` is an unsupported search field for resource `{resource}`. See "
                "http://stripe.com/docs/search#query-fields-for-payment-intents for a list of supported "
                "fields."
            )
        if (field == "metadata") != (match["key"] is not None):
            raise _error(f"Invalid query: only metadata takes a key, as in metadata['key']:'value' (`{part}`).")
        if match["op"] != ":" and field not in _NUMERIC:
            raise _error(f"Invalid query: `{field}` only supports the `:` operator.")
        value: str | int | None
        if match["null"] is not None:
            value = None
        elif match["number"] is not None:
            value = int(match["number"])
        elif field in _NUMERIC and re.fullmatch(r"-?\d+", match["text"]):
            value = int(match["text"])
        else:
            value = match["text"]
        clauses.append(Clause(bool(match["negate"]), field, match["key"], match["op"], value))
    return Query(tuple(clauses), joins == {"OR"})
