"""The validator composite: runs validators in order and aggregates their results.

A validator marked as chain-breaking stops the chain when it fails, so that later validators,
which may assume a well-formed answer, do not run on a broken one.
"""

from __future__ import annotations

from collections.abc import Iterable

import attrs

from paywire.http.response import Response
from paywire.subject import Subject
from paywire.validator.result import _SUCCESS, Result, Validator

__all__ = ["ValidatorComposite"]


def _entries(value: Iterable[Validator | tuple[Validator, bool]]) -> tuple[tuple[Validator, bool], ...]:
    return tuple(item if isinstance(item, tuple) else (item, False) for item in value)


@attrs.frozen
class ValidatorComposite:
    """`validators` are validators, or `(validator, breaks_chain)` pairs."""

    validators: tuple[tuple[Validator, bool], ...] = attrs.field(converter=_entries)

    def __call__(self, subject: Subject, response: Response) -> Result:
        result: Result = _SUCCESS
        for validator, breaks_chain in self.validators:
            outcome = validator(subject, response)
            if outcome is _SUCCESS:  # adding the plain success to a Result changes nothing
                continue
            result = result + outcome
            if not outcome.ok and breaks_chain:
                break
        return result
