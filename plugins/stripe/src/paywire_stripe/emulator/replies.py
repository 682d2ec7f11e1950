"""Building replies: Stripe's pretty-printed JSON, its error bodies, and the small HTML pages of
the 3-D Secure challenge."""

from __future__ import annotations

import html
import json
from collections.abc import Mapping
from typing import Any

from paywire.testing.emulator import Reply
from paywire_stripe.emulator.errors import StripeError

__all__ = ["error_reply", "html_page", "json_reply"]


def json_reply(status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Reply:
    body = json.dumps(payload, indent=2).encode("utf-8")
    return Reply(status, body, {"Content-Type": "application/json", **(headers or {})})


def error_reply(error: StripeError) -> Reply:
    return json_reply(error.status, error.body(), error.response_headers())


def html_page(status: int, title: str, text: str) -> Reply:
    body = (
        f"<!doctype html><html><head><title>{html.escape(title)}</title></head>"
        f"<body><h1>{html.escape(title)}</h1><p>{html.escape(text)}</p></body></html>"
    ).encode()
    return Reply(status, body, {"Content-Type": "text/html; charset=utf-8"})
