"""The validation result (Magento's ResultInterface) and the validator protocol."""

from __future__ import annotations

from typing import Protocol

import attrs

from paywire.http.response import Response
from paywire.subject import Subject

__all__ = ["Result", "Validator"]


def _strings(value: tuple[str, ...] | list[str]) -> tuple[str, ...]:
    return tuple(value)


@attrs.frozen
class Result:
    """Whether an answer is acceptable; if not, the messages and the provider's error codes."""

    ok: bool
    messages: tuple[str, ...] = attrs.field(default=(), converter=_strings)
    codes: tuple[str, ...] = attrs.field(default=(), converter=_strings)

    @classmethod
    def success(cls) -> Result:
        return _SUCCESS

    @classmethod
    def failure(cls, message: str, *codes: str) -> Result:
        return cls(False, (message,), codes)

    def __add__(self, other: Result) -> Result:
        # Results are immutable, and adding the plain success changes nothing: most validators
        # answer it, so a composite need not build a new result for each.
        if other is _SUCCESS and type(self) is Result:
            return self
        if self is _SUCCESS and type(other) is Result:
            return other
        return Result(self.ok and other.ok, self.messages + other.messages, self.codes + other.codes)


_SUCCESS = Result(True)


class Validator(Protocol):
    def __call__(self, subject: Subject, response: Response) -> Result: ...
