"""Response handlers and the handler chain (Magento's HandlerInterface and HandlerChain).

A handler reads a successful answer and returns the result fields it knows (`reference`,
`state`, `action`, ...); the chain merges them in order into one `CommandResult`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import attrs

from paywire.command.result import CommandResult
from paywire.http.response import Response
from paywire.subject import Subject

__all__ = ["Handler", "HandlerChain"]

Handler = Callable[[Subject, Response], Mapping[str, Any]]


def _handlers(value: tuple[Handler, ...] | list[Handler]) -> tuple[Handler, ...]:
    return tuple(value)


@attrs.frozen
class HandlerChain:
    handlers: tuple[Handler, ...] = attrs.field(converter=_handlers)

    def __call__(self, subject: Subject, response: Response) -> CommandResult:
        fields: dict[str, Any] = {}
        for handler in self.handlers:
            fields.update(handler(subject, response))
        fields.setdefault("raw", response.data)
        return CommandResult(**fields)
