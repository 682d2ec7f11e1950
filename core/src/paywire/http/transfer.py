"""The immutable HTTP transfer (Magento's TransferInterface) and the factory that builds it."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from types import MappingProxyType
from typing import Any
from urllib.parse import quote, urlencode

import attrs

from paywire.converter import FORM, Converter, form_pairs
from paywire.errors import InvalidRequest
from paywire.http.auth import Auth
from paywire.security import shown_url
from paywire.subject import Subject

__all__ = ["Timeout", "Transfer", "TransferFactory"]

_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})


@attrs.frozen
class Timeout:
    """Seconds to wait for the connection, and for each read of the answer."""

    connect: float = 5.0
    read: float = 30.0


def _headers(value: Mapping[str, str]) -> Mapping[str, str]:
    return MappingProxyType(dict(value))


def _safe_method(transfer: Transfer) -> bool:
    return transfer.method in _SAFE_METHODS


@attrs.frozen
class Transfer:
    """One HTTP request, ready to send. Credentials live in `auth`, which repr never shows.

    `idempotency_key` is the key sent in the provider's idempotency header (Idempotency-Key,
    PayPal-Request-Id), None when no header carried one. `idempotent` says whether sending it
    twice cannot do anything twice, which is what lets the retry policy resend it after it may
    have arrived: its factory says so for a safe method, a key in that header, or an endpoint
    declared repeatable; a transfer built by hand is idempotent for a safe method unless told.
    """

    method: str
    url: str = attrs.field(repr=shown_url)
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_headers)
    body: bytes | None = attrs.field(default=None, repr=False)
    auth: Auth | None = attrs.field(default=None, repr=False)
    timeout: Timeout = Timeout()
    idempotency_key: str | None = None
    idempotent: bool = attrs.field(default=attrs.Factory(_safe_method, takes_self=True))

    def all_headers(self) -> dict[str, str]:
        headers = dict(self.headers)
        if self.auth is not None:
            headers.update(self.auth.headers())
        return headers


def _no_extra_headers(subject: Subject) -> Mapping[str, str]:
    return {}


@attrs.frozen
class TransferFactory:
    """Turns a built request into a `Transfer` for one endpoint.

    :param method: HTTP method.
    :param path: a path template filled from the subject (`{reference}`, `{source}`, and the
        subject's `options`), each value percent-encoded; or a callable of the subject.
    :param converter: encodes the request; GET and DELETE send it as the query string instead.
    :param idempotency_header: the provider's header for the idempotency key, if it has one: a
        transfer carrying the subject's key there is idempotent (the provider deduplicates on it).
    :param repeatable: the endpoint is safe to send twice although its method is not (a token
        request, a read over POST, a DELETE): its transfers are idempotent with or without a key.
        A key the provider does not read (none in `idempotency_header`) makes nothing repeatable.
    :param headers: constant headers (API version, Prefer, ...).
    :param extra_headers: headers computed from the subject.
    """

    base_url: str = attrs.field(repr=shown_url)
    method: str
    path: str | Callable[[Subject], str]
    auth: Auth | None = attrs.field(default=None, repr=False)
    converter: Converter = FORM
    idempotency_header: str | None = None
    headers: Mapping[str, str] = attrs.field(factory=dict, converter=_headers)
    extra_headers: Callable[[Subject], Mapping[str, str]] = _no_extra_headers
    timeout: Timeout = Timeout()
    repeatable: bool = False
    # Made once, as they are the same for every transfer: Accept and the constant headers merged,
    # the URL of a path without placeholders, whether a transfer is idempotent without a key, and
    # the header the key goes in (none for a safe method).
    _constant_headers: Mapping[str, str] = attrs.field(init=False, repr=False, eq=False)
    _fixed_url: str | None = attrs.field(init=False, repr=False, eq=False)
    _idempotent: bool = attrs.field(init=False, repr=False, eq=False)
    _key_header: str | None = attrs.field(init=False, repr=False, eq=False)

    def __attrs_post_init__(self) -> None:
        object.__setattr__(self, "_constant_headers", {"Accept": "application/json", **self.headers})
        safe = self.method in _SAFE_METHODS
        object.__setattr__(self, "_idempotent", safe or self.repeatable)
        object.__setattr__(self, "_key_header", None if safe else self.idempotency_header)
        path = self.path
        fixed = self.base_url.rstrip("/") + path if isinstance(path, str) and "{" not in path else None
        object.__setattr__(self, "_fixed_url", fixed)

    def url_for(self, subject: Subject, query: Mapping[str, Any] | None = None) -> str:
        if callable(self.path):
            path = self.path(subject)
        elif "{" not in self.path:
            path = self.path
        else:
            fields = {"reference": subject.reference, "source": subject.source, **subject.options}
            values = {key: quote(str(value), safe="") for key, value in fields.items() if value is not None}
            try:
                path = self.path.format_map(values)
            except KeyError as missing:
                raise InvalidRequest(
                    f"this command needs subject.{missing.args[0]} (the provider's id of the object "
                    "it acts on); nothing was sent",
                    param=str(missing.args[0]),
                ) from None
        url = self.base_url.rstrip("/") + path
        if query:
            url += "?" + urlencode(list(form_pairs(query)))
        return url

    def create(self, request: Mapping[str, Any], subject: Subject) -> Transfer:
        headers = dict(self._constant_headers)
        if self.extra_headers is not _no_extra_headers:
            headers.update(self.extra_headers(subject))
        key = None
        if self._key_header and subject.idempotency_key:
            key = subject.idempotency_key
            if not (key.isascii() and key.isprintable()):  # a header cannot carry it: refused before sending
                raise InvalidRequest(f"idempotency key {key!r} must be printable ASCII (it is sent as the "
                                     f"{self._key_header} header); nothing was sent", param="idempotency_key")
            headers[self._key_header] = key
        if self.method in ("GET", "DELETE", "HEAD"):
            url, body = self.url_for(subject, request), None
        else:
            url, body = self._fixed_url or self.url_for(subject), self.converter.encode(request)
            headers["Content-Type"] = self.converter.content_type
        # In the fields' order, by position: a keyword call to an attrs class costs a fifth more.
        idempotent = self._idempotent or key is not None
        return Transfer(self.method, url, headers, body, self.auth, self.timeout, key, idempotent)
