"""Decoding Stripe's form encoding: `a[b][c]=v`, `list[]=v`, `list[0]=v` into nested values.

Hashes become dicts; `[]` appends to a list; numeric keys stay dict keys (`{"0": ...}`) until a
parameter table says the field is a list, because the same shape is a hash elsewhere
(`metadata[0]=x` is a metadata key "0").
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import Any

from paywire_stripe.emulator.errors import invalid_request

__all__ = ["decode", "split_key"]

_SEGMENT = re.compile(r"\[([^\[\]]*)\]")


def split_key(key: str) -> list[str]:
    """`"a[b][]"` -> `["a", "b", ""]`; a malformed key is one opaque name (reported as unknown)."""
    head, bracket, _ = key.partition("[")
    if not bracket:
        return [key]
    rest = key[len(head) :]
    segments = _SEGMENT.findall(rest)
    if "".join(f"[{s}]" for s in segments) != rest or not head:
        return [key]
    return [head, *segments]


def decode(pairs: Iterable[tuple[str, str]]) -> dict[str, Any]:
    """Nest decoded form pairs; a later duplicate of the same key wins, as in Stripe."""
    root: dict[str, Any] = {}
    for key, value in pairs:
        _insert(root, split_key(key), value, key)
    return root


def _insert(root: dict[str, Any], path: list[str], value: str, key: str) -> None:
    node: Any = root
    for index, segment in enumerate(path[:-1]):
        following = path[index + 1]
        if isinstance(node, list):  # a[][x]=...: fill the last hash, or start a new one
            if not node or not isinstance(node[-1], dict) or following in node[-1]:
                node.append({})
            node = node[-1]
            continue
        child = node.get(segment)
        if child is None or isinstance(child, str):
            if isinstance(child, str) and child != "":
                raise invalid_request(
                    f"Invalid value for {key}: {segment} is both a value and a hash", param=segment, saved=False
                )
            child = [] if following == "" else {}
            node[segment] = child
        elif isinstance(child, list) and following != "":
            child = {str(i): item for i, item in enumerate(child)}
            node[segment] = child
        node = child
    last = path[-1]
    if isinstance(node, list):
        node.append(value)
    elif last in node and isinstance(node[last], (dict, list)):
        if value != "":
            raise invalid_request(
                f"Invalid value for {key}: {last} is both a value and a hash", param=last, saved=False
            )
    else:
        node[last] = value
