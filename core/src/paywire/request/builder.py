"""Builders and the builder composite (Magento's BuilderInterface and BuilderComposite).

A builder is any callable `subject -> Mapping` returning part of the request. The composite
deep-merges the parts; two builders writing the same leaf is an error that names both, because
silently letting the later one win hides bugs in payment requests.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from typing import Any

import attrs

from paywire.errors import PluginError
from paywire.subject import Subject

__all__ = ["Builder", "BuilderComposite", "deep_merge"]

Builder = Callable[[Subject], Mapping[str, Any]]


def _builders(value: tuple[Builder, ...] | list[Builder]) -> tuple[Builder, ...]:
    return tuple(value)


def _name(builder: object) -> str:
    return getattr(builder, "__qualname__", None) or type(builder).__qualname__


def deep_merge(
    target: dict[str, Any],
    part: Mapping[str, Any],
    *,
    owners: dict[tuple[str, ...], str],
    source: str,
    path: tuple[str, ...] = (),
) -> None:
    """Merge `part` into `target` in place; `owners` remembers which source wrote each leaf."""
    for key, value in part.items():
        here = (*path, key)
        if isinstance(value, Mapping) and isinstance(target.get(key), dict):
            deep_merge(target[key], value, owners=owners, source=source, path=here)
            continue
        if key in target:
            raise PluginError(
                f"request builders {owners.get(here, '?')!r} and {source!r} both set "
                f"{'.'.join(here)!r}; each field must come from exactly one builder"
            )
        if isinstance(value, Mapping):
            target[key] = {}
            deep_merge(target[key], value, owners=owners, source=source, path=here)
            owners.setdefault(here, source)
        else:
            target[key] = value
            owners[here] = source


@attrs.frozen
class BuilderComposite:
    """Runs its builders in order and deep-merges what they return."""

    builders: tuple[Builder, ...] = attrs.field(converter=_builders)

    def __call__(self, subject: Subject) -> dict[str, Any]:
        if len(self.builders) == 1:
            return dict(self.builders[0](subject))
        return self.merge((_name(builder), builder(subject)) for builder in self.builders)

    @staticmethod
    def merge(parts: Iterable[tuple[str, Mapping[str, Any]]]) -> dict[str, Any]:
        """Deep-merge `(source name, part)` pairs, refusing conflicting leaves."""
        request: dict[str, Any] = {}
        owners: dict[tuple[str, ...], str] = {}
        for source, part in parts:
            if part:
                deep_merge(request, part, owners=owners, source=source)
        return request
