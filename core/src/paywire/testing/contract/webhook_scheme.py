"""What a provider's webhook signature binds, declared by the plugin so the kit tampers with
exactly that: every byte of the raw body (Stripe, Acme; PayPal's CRC32 of it), or only some
fields inside it (Adyen's HMAC over selected fields, Braintree's signed `bt_payload`), with or
without a signed timestamp, the signature in headers or in the body."""

from __future__ import annotations

import re
from collections.abc import Callable, Collection, Iterable, Sequence

import attrs

__all__ = ["Span", "WebhookScheme", "field_spans"]

Span = tuple[str, int, int]
"""A labelled byte range `(label, start, end)` of a webhook body."""


@attrs.frozen(kw_only=True)
class WebhookScheme:
    """How a provider signs its webhooks.

    :param signed_spans: None when the signature binds every byte of the raw body: every single
        byte change must then be refused. Otherwise a function of a genuine body giving the byte
        ranges the signature binds (the signed fields' values, a signed payload) and the
        signature itself when the body carries it: a change inside them must be refused, and a
        change anywhere else (whitespace, an unsigned field) may be accepted only if the event
        parsed from it is the genuine one (the verifier reads nothing unsigned). `field_spans`
        finds JSON and form-encoded values by name.
    :param headers: the headers carrying the signature or signed values (None: every header the
        signer sets but Content-Type; empty when the signature travels in the body).
    :param timestamp: whether the scheme signs a time the verifier must hold to a tolerance;
        False (Adyen) skips the stale-timestamp check, as there is nothing to be stale.
    :param event_ids: whether the provider's events carry an id of their own. False (Braintree's
        notifications have none) when the plugin derives the id from what the signature binds:
        the kit then checks that a delivery parses to the same non-empty id every time, instead
        of comparing it with the rendered payload's.
    :param amounts: whether the provider's events that move money (captured, refunded, reversed)
        say how much: an amount or a running total. The kit then refuses such an event parsed
        without either. False only for a provider whose events carry no amount at all.
    """

    signed_spans: Callable[[bytes], Sequence[Span]] | None = None
    headers: Collection[str] | None = None
    timestamp: bool = True
    event_ids: bool = True
    amounts: bool = True


def field_spans(body: bytes, names: Iterable[str]) -> list[Span]:
    """The byte ranges of every value named `names` in `body`: JSON members (`"name": value`,
    the text inside a string's quotes) and form pairs (`name=value`)."""
    spans: list[Span] = []
    for name in names:
        key = re.escape(name.encode())
        for match in re.finditer(rb'"' + key + rb'"\s*:\s*("(?:[^"\\]|\\.)*"|[^\s,}\]]+)', body):
            start, end = match.span(1)
            quoted = body[start:start + 1] == b'"'
            spans.append((name, start + quoted, end - quoted))
        for match in re.finditer(rb"(?:^|&)" + key + rb"=([^&]*)", body):
            spans.append((name, *match.span(1)))
    return [span for span in spans if span[2] > span[1]]
