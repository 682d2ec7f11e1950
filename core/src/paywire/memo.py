"""Answers remembered on hot paths: what a short text redacts to, whether it can hold a card
number, how a form field encodes. Each is a pure function of its text, asked again and again
with the same few texts (keys, states, constant headers), and answering once is the saving."""

from __future__ import annotations

from typing import Generic, TypeVar

__all__ = ["Memo"]

K = TypeVar("K")
V = TypeVar("V")


class Memo(dict[K, V], Generic[K, V]):
    """A dict of answers, bounded: answers for texts longer than `longest` are not kept, and all
    are forgotten at once when `size` are held (cheaper on every hit than an LRU's bookkeeping).

    Slotted: an instance without a `__dict__` has its `get` looked up as quickly as a dict's."""

    __slots__ = ("longest", "size")

    def __init__(self, size: int = 4096, longest: int = 256) -> None:
        super().__init__()
        self.size = size
        self.longest = longest

    def remember(self, key: K, value: V, text: str | bytes) -> V:
        """Keep `value` for `key` when `text` (what the answer was computed from) is short."""
        if len(text) <= self.longest:
            if len(self) >= self.size:
                self.clear()
            self[key] = value
        return value
