"""Adds the shop's channel to every Acme request, without touching the Acme plugin or the core."""

from __future__ import annotations

from typing import TYPE_CHECKING

from paywire import hookimpl

if TYPE_CHECKING:
    from paywire import Subject


@hookimpl
def build_request(provider: str, command: str, subject: Subject) -> dict[str, object] | None:
    if provider == "acme" and command in ("authorize", "sale"):
        return {"metadata": {"channel": "web-shop"}}
    return None
