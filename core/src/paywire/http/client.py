"""Clients send transfers (Magento's ClientInterface). The default speaks HTTP with urllib3.

A client turns every network failure into a paywire error that says whether the request may have
reached the provider, which is what the retry policy and the ledger decide on.
"""

from __future__ import annotations

import re
import ssl
import threading
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from paywire.errors import ConfigurationError, OutcomeUnknown, TransportError
from paywire.http.response import Response
from paywire.http.transfer import Transfer

if TYPE_CHECKING:
    import urllib3

__all__ = ["Client", "Urllib3Client"]


@runtime_checkable
class Client(Protocol):
    """Sends one transfer and returns the raw answer (`data` left None; the command decodes).

    Raises `TransportError` with `may_have_been_sent=False` when nothing reached the provider, and
    `OutcomeUnknown` when the request may have been delivered but no answer came back. A client
    may also offer `prepare()`, which raises `ConfigurationError` when it could not send (bad
    certificates): the payment service calls it before recording an operation.
    """

    def send(self, transfer: Transfer) -> Response: ...

    def close(self) -> None: ...


class Urllib3Client:
    """One urllib3 PoolManager for one gateway: pooled keep-alive connections, TLS verified.

    :param ca_certs: a PEM bundle to trust instead of the system's (a test CA, a corporate proxy).
    :param pool_size: connections kept per host; raise it for many threads.
    """

    def __init__(self, *, ca_certs: str | None = None, pool_size: int = 16) -> None:
        self._ca_certs = ca_certs
        self._pool_size = pool_size
        self._pool: urllib3.PoolManager | None = None
        self._hosts: dict[str, urllib3.HTTPConnectionPool] = {}
        self._timeouts: dict[tuple[float, float], urllib3.Timeout] = {}
        self._no_retries: urllib3.Retry | None = None
        self._errors: Any = None  # urllib3.exceptions, bound with the pool: no import statement per send
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"Urllib3Client(ca_certs={self._ca_certs!r})"

    def _manager(self) -> urllib3.PoolManager:
        # urllib3 is imported on the first request, not when paywire is imported.
        pool = self._pool
        if pool is None:
            with self._lock:
                if self._pool is None:
                    import urllib3
                    import urllib3.exceptions

                    try:
                        context = ssl.create_default_context(cafile=self._ca_certs)
                    except (OSError, ssl.SSLError) as exc:
                        raise ConfigurationError(
                            f"the trusted certificates {self._ca_certs!r} (ca_certs) cannot be loaded "
                            f"({type(exc).__name__}: {exc}); point ca_certs at a readable PEM bundle; "
                            "nothing was sent"
                        ) from exc
                    # What `retries=False, redirect=False` makes on every request, made once:
                    # a Retry is immutable, and its `increment` returns a new one.
                    self._no_retries = urllib3.Retry(total=False, redirect=False)
                    self._errors = urllib3.exceptions
                    self._pool = urllib3.PoolManager(
                        num_pools=8,
                        maxsize=self._pool_size,
                        block=False,
                        ssl_context=context,
                        retries=False,
                    )
                pool = self._pool
        return pool

    def prepare(self) -> None:
        """Load the certificates and the pool now: a bad `ca_certs` is a `ConfigurationError`
        raised before the operation is recorded, not an error after it was."""
        self._manager()

    def _route(self, transfer: Transfer) -> tuple[urllib3.HTTPConnectionPool, str, urllib3.Timeout]:
        """The connection pool for the transfer's origin, its path, and its timeout (all cached)."""
        url = transfer.url
        cut = url.find("/", url.find("//") + 2)
        origin, path = (url, "/") if cut < 0 else (url[:cut], url[cut:])
        pool = self._hosts.get(origin)
        if pool is None:
            pool = self._hosts.setdefault(origin, self._manager().connection_from_url(origin))
        key = (transfer.timeout.connect, transfer.timeout.read)
        timeout = self._timeouts.get(key)
        if timeout is None:
            import urllib3

            timeout = self._timeouts.setdefault(key, urllib3.Timeout(connect=key[0], read=key[1]))
        return pool, path, timeout

    def send(self, transfer: Transfer) -> Response:
        pool, path, timeout = self._route(transfer)  # makes the pool, and binds `_errors`, on first use
        e = self._errors
        unsendable: str | None = None
        try:
            raw = pool.urlopen(
                transfer.method,
                path,
                body=transfer.body,
                headers=transfer.all_headers(),
                timeout=timeout,
                retries=self._no_retries or False,
                redirect=False,
                assert_same_host=False,
                preload_content=True,
            )
        except e.SSLError as exc:
            if not _while_connecting(exc):
                raise OutcomeUnknown(
                    f"TLS with {_host(transfer)} failed after sending {transfer.method} ({_reason(exc)}); "
                    "the provider may have acted on it",
                ) from exc
            raise TransportError(
                f"TLS with {_host(transfer)} failed ({_reason(exc)}); check the endpoint and the "
                "trusted certificates (ca_certs); nothing was sent",
                retryable=False,
                may_have_been_sent=False,
            ) from exc
        except (e.NewConnectionError, e.ConnectTimeoutError) as exc:
            raise TransportError(
                f"could not connect to {_host(transfer)} ({_reason(exc)}); nothing was sent",
                may_have_been_sent=False,
            ) from exc
        except (e.ReadTimeoutError, e.ProtocolError, e.TimeoutError, OSError) as exc:
            raise OutcomeUnknown(
                f"no answer from {_host(transfer)} after sending {transfer.method} "
                f"({_reason(exc)}); the provider may have acted on it",
            ) from exc
        except e.HTTPError as exc:
            raise OutcomeUnknown(
                f"HTTP failure talking to {_host(transfer)} ({_reason(exc)}); the provider may "
                "have acted on it",
            ) from exc
        except ValueError:  # http.client refuses to write a header, before anything is sent
            unsendable = _unsendable_header(transfer)
            if unsendable is None:
                raise
        if unsendable is not None:
            # Raised out of the handler, with no cause: http.client's error quotes the value, a
            # credential when the header is Authorization.
            raise TransportError(
                f"the {unsendable} header of {transfer.method} to {_host(transfer)} holds a line break or a "
                "character outside Latin-1, which HTTP cannot carry; check the credential or value it is made "
                "from (a newline read from a file with the secret is the usual cause); nothing was sent",
                code="unsendable_header", retryable=False, may_have_been_sent=False,
            )
        # urllib3's header dict already looks names up case-insensitively.
        return Response(raw.status, raw.headers, raw.data)

    def close(self) -> None:
        if self._pool is not None:
            self._pool.clear()
        self._hosts.clear()


def _host(transfer: Transfer) -> str:
    """Where the request went, for messages: host and port, never the URL's user and password."""
    from urllib.parse import urlsplit

    return urlsplit(transfer.url).netloc.rpartition("@")[2]


# What http.client refuses in a header value once encoded (its own rule): a line break that does
# not continue the header on the next line.
_ILLEGAL_HEADER_VALUE = re.compile(rb"\n(?![ \t])|\r(?![ \t\n])")


def _unsendable_header(transfer: Transfer) -> str | None:
    """The name of the first header of `transfer` http.client cannot write (a value with a line
    break, or a character outside Latin-1), or None: asked only after it refused one."""
    for name, value in transfer.all_headers().items():
        try:
            encoded = value.encode("latin-1")
        except UnicodeEncodeError:
            return name
        if _ILLEGAL_HEADER_VALUE.search(encoded):
            return name
    return None


def _while_connecting(exc: BaseException) -> bool:
    """Whether a TLS failure happened while the connection was made (the handshake, the
    certificate check), before any of the request could be written. urllib3 raises the same
    `SSLError` for a TLS failure while writing the request or reading the answer (a broken record,
    a reset inside TLS), after which the provider may have acted on it; only the traceback of the
    TLS library's error shows where it happened."""
    from urllib3.connection import HTTPConnection, HTTPSConnection

    connects = {HTTPConnection.connect.__code__, HTTPSConnection.connect.__code__}
    seen: set[int] = set()
    error: BaseException | None = exc
    while error is not None and id(error) not in seen:
        seen.add(id(error))
        trace = error.__traceback__
        while trace is not None:
            if trace.tb_frame.f_code in connects:
                return True
            trace = trace.tb_next
        error = error.__cause__ or error.__context__
    return False


def _reason(exc: Any) -> str:
    return type(exc).__name__ + (f": {exc.args[-1]}" if getattr(exc, "args", None) else "")
