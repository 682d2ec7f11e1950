"""What the plugin takes for a JSON object: Braintree's answers decode to dicts, which
`isinstance(value, OBJECT)` recognises by its first type, in C, without the Mapping ABC's
Python-level check (a dozen of them on every answer); any other mapping still passes by the
second."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["OBJECT"]

OBJECT = (dict, Mapping)
