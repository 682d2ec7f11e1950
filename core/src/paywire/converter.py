"""Wire codecs (Magento's converters): a request mapping to body bytes and back.

- `JSON`: PayPal, most REST APIs.
- `FORM`: application/x-www-form-urlencoded with nested brackets (`metadata[key]=v`, indexed
  lists `expand[0]=...`, booleans as true/false, None dropped), as Stripe expects.
- `GraphQL`: a document plus variables posted as JSON (Braintree).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from typing import Any, Protocol
from urllib.parse import quote

import attrs

from paywire.errors import InvalidRequest
from paywire.memo import Memo

__all__ = ["FORM", "JSON", "Converter", "FormConverter", "GraphQLConverter", "JSONConverter", "form_pairs"]


class Converter(Protocol):
    @property
    def content_type(self) -> str: ...

    def encode(self, request: Mapping[str, Any]) -> bytes: ...

    def decode(self, body: bytes) -> Any: ...


# Made once: `json.dumps` with any option builds a new encoder on every call.
_JSON_ENCODER = json.JSONEncoder(separators=(",", ":"), allow_nan=False)


def _json(value: Any) -> bytes:
    try:
        return _JSON_ENCODER.encode(value).encode()
    except (TypeError, ValueError) as exc:
        raise InvalidRequest(f"request cannot be encoded as JSON: {exc}") from exc


@attrs.frozen
class JSONConverter:
    content_type: str = "application/json"

    def encode(self, request: Mapping[str, Any]) -> bytes:
        return _json(request)

    def decode(self, body: bytes) -> Any:
        return json.loads(body) if body else None


def _scalar(value: Any, key: str) -> str:
    if value is True:
        return "true"
    if value is False:
        return "false"
    if isinstance(value, (str, int)):
        return str(value)
    raise InvalidRequest(
        f"form field {key!r} has a {type(value).__name__}; form bodies take str, int or bool "
        "(amounts must already be integers of minor units)",
        param=key,
    )


def form_pairs(value: Any, prefix: str = "") -> Iterator[tuple[str, str]]:
    """Flatten nested mappings and lists into bracketed form keys, dropping None."""
    pairs: list[tuple[str, str]] = []
    _flatten(value, prefix, pairs)
    return iter(pairs)


def _flatten(value: Any, prefix: str, pairs: list[tuple[str, str]]) -> None:
    """`form_pairs` into a list: a call per container, not a generator per value (it runs on
    every request); the usual types are recognised by exact type first."""
    cls = type(value)
    if cls is str:
        pairs.append((prefix, value))
    elif value is None:
        return
    elif cls is dict or (cls not in _SCALARS and isinstance(value, Mapping)):
        for key, item in value.items():
            name = f"{prefix}[{key}]" if prefix else str(key)
            kind = type(item)
            if kind is str:  # the usual leaves written here, without a call for each
                pairs.append((name, item))
            elif kind is int:
                pairs.append((name, str(item)))
            elif kind is bool:
                pairs.append((name, "true" if item else "false"))
            elif item is not None:
                _flatten(item, name, pairs)
    elif cls is list or cls is tuple or isinstance(value, (list, tuple)):
        for index, item in enumerate(value):
            if type(item) is str:
                pairs.append((f"{prefix}[{index}]", item))
            else:
                _flatten(item, f"{prefix}[{index}]", pairs)
    elif cls is int:
        pairs.append((prefix, str(value)))
    else:
        pairs.append((prefix, _scalar(value, prefix)))


_SCALARS = frozenset({str, int, bool, list, tuple})
_UNRESERVED = re.compile(r"[A-Za-z0-9_.~-]*").fullmatch  # what quote() leaves as it is
_QUOTED_KEYS: Memo[str, str] = Memo()  # form keys repeat from request to request


def _quote_key(key: str) -> str:
    quoted = _QUOTED_KEYS.get(key)
    if quoted is None:
        quoted = _QUOTED_KEYS.remember(key, quote(key, safe="[]"), key)
    return quoted


# What quote(text, safe="") writes for each UTF-8 byte, read as Latin-1 so that one str.translate
# does it: urllib's quote looks every byte up in a Python loop.
_PERCENT = {byte: chr(byte) if _UNRESERVED(chr(byte)) else f"%{byte:02X}" for byte in range(256)}


def _quote_value(text: str) -> str:
    """`quote(text, safe="")`, quicker."""
    return text if _UNRESERVED(text) else text.encode().decode("latin-1").translate(_PERCENT)


# Encoded `key=value` pieces by form key, then by value: most of a request's fields (currency,
# flags, expansions, return addresses) are the same from request to request. Keyed by the two
# strings, whose hashes Python keeps, rather than by a pair, which is hashed anew each time.
# Bounded both ways as a `Memo` is (256 keys of 32 values each at most), but plain dicts: a
# dict's own `get` is called quicker than a subclass's, twice for every field of every request.
_PIECES: dict[str, dict[str, str]] = {}
_NO_PIECES: dict[str, str] = {}  # stays empty: what a key not seen before has
_PIECE_KEYS, _PIECE_VALUES, _PIECE_LONGEST = 256, 32, 256


def _piece(key: str, text: str) -> str:
    """The encoded `key=text`, remembered (forgotten all at once when full, as a `Memo`)."""
    known = _PIECES.get(key)
    if known is None:
        known = {}
        if len(key) <= _PIECE_LONGEST:
            if len(_PIECES) >= _PIECE_KEYS:
                _PIECES.clear()
            _PIECES[key] = known
    piece = known.get(text)
    if piece is None:
        try:
            piece = f"{_quote_key(key)}={_quote_value(text)}"
        except UnicodeEncodeError:  # a lone surrogate: no bytes to send for it
            raise InvalidRequest(f"form field {key!r} is not valid Unicode text (a lone surrogate); nothing was "
                                 "sent", param=key) from None
        if len(text) <= _PIECE_LONGEST:
            if len(known) >= _PIECE_VALUES:
                known.clear()
            known[text] = piece
    return piece


def _encode(value: Any, prefix: str, pieces: list[str]) -> None:
    """`_flatten`, each pair written as its encoded piece where it is met (FormConverter.encode).

    The usual mappings, lists and leaves are walked here, the remembered piece looked up in
    place, with no pair made for it; anything else is left to `_flatten`, so that both write
    the same pairs (tests/core/test_converter.py checks it)."""
    cls = type(value)
    if cls is dict:
        for key, item in value.items():
            name = f"{prefix}[{key}]" if prefix else str(key)
            kind = type(item)
            if kind is str:
                text = item
            elif kind is int:
                text = str(item)
            elif kind is bool:
                text = "true" if item else "false"
            elif item is None:
                continue
            else:
                _encode(item, name, pieces)
                continue
            pieces.append(_PIECES.get(name, _NO_PIECES).get(text) or _piece(name, text))
    elif cls is list or cls is tuple:
        for index, item in enumerate(value):
            name = f"{prefix}[{index}]"
            if type(item) is str:
                pieces.append(_PIECES.get(name, _NO_PIECES).get(item) or _piece(name, item))
            else:
                _encode(item, name, pieces)
    else:
        pairs: list[tuple[str, str]] = []
        _flatten(value, prefix, pairs)
        pieces.extend(_piece(key, text) for key, text in pairs)


@attrs.frozen
class FormConverter:
    content_type: str = "application/x-www-form-urlencoded"

    def encode(self, request: Mapping[str, Any]) -> bytes:
        pieces: list[str] = []
        _encode(request, "", pieces)
        return "&".join(pieces).encode()

    def decode(self, body: bytes) -> Any:
        return json.loads(body) if body else None  # form APIs answer in JSON


@attrs.frozen
class GraphQLConverter:
    """Posts `{"query": <document>, "variables": <request>}`; answers are JSON."""

    document: str
    content_type: str = "application/json"
    # The document's part of every body, encoded once (the bytes `json.dumps` writes for the
    # whole object: the query first, then the variables).
    _head: bytes = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_head", b'{"query":' + _json(self.document) + b',"variables":')

    def encode(self, request: Mapping[str, Any]) -> bytes:
        return self._head + _json(request if type(request) is dict else dict(request)) + b"}"

    def decode(self, body: bytes) -> Any:
        return json.loads(body) if body else None


JSON = JSONConverter()
FORM = FormConverter()
