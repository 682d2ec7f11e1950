"""Braintree's two ids for one object: the GraphQL id is base64 of "<type>_<legacy id>" (unpadded),
and webhooks and the Control Panel name objects by the legacy id."""

from __future__ import annotations

import base64
import binascii

__all__ = ["global_id", "legacy_id"]


def global_id(kind: str, legacy: str) -> str:
    """The GraphQL id of a legacy id: `global_id("transaction", "kj9e3zg3")`."""
    return base64.b64encode(f"{kind}_{legacy}".encode()).decode().rstrip("=")


def legacy_id(identifier: str) -> tuple[str, str] | None:
    """(kind, legacy id) of a GraphQL id, or None when it is not one."""
    try:
        text = base64.b64decode(identifier + "=" * (-len(identifier) % 4), validate=True).decode("ascii")
    except (binascii.Error, UnicodeDecodeError, ValueError):
        return None
    kind, sep, legacy = text.partition("_")
    if not sep or not legacy or not kind.isalpha():
        return None
    return kind, legacy
