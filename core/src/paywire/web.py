"""The webhook endpoint as an ASGI and a WSGI application (standard library only), to mount in
any web framework or serve on its own: `POST {prefix}/{method}`.

Answers: 200 applied or duplicate, 202 stored for later (unmatched, or waiting for an operation
in flight), 400 a body that does not verify (or a verified event whose ids no ledger can keep:
no delivery of it would ever be stored), 404 an unknown path or payment method, 405 another
HTTP method, 408 a body that did not arrive whole within `body_timeout` (ASGI: a sender that
stalls mid-body holds no connection for longer), 411 a body of no stated length (chunked) on a WSGI
server that cannot tell where it ends (`wsgi.input_terminated` unset: wsgiref), 413 a body over the size limit (refused before it
is read), 503 the ledger busy (another worker held the payment past the database's lock wait:
nothing was stored), its database unavailable (refusing or dropping connections), the provider
not reachable to confirm an event, or as many deliveries in hand as the endpoint takes (answered
at once, its body unread, nothing stored); every 503 with `Retry-After`, 500 anything else (the
provider will deliver again). The response body is a small JSON object, never an error detail.
"""

from __future__ import annotations

import asyncio
import json
import threading
from collections.abc import Awaitable, Callable, Iterable, Mapping, MutableMapping
from http import HTTPStatus
from typing import TYPE_CHECKING, Any

from paywire.daemon_pool import DEFAULT_SIZE, DaemonPool
from paywire.errors import (
    ConfigurationError,
    InvalidRequest,
    LedgerBusy,
    LedgerUnavailable,
    WebhookVerificationError,
)
from paywire.security import get_logger
from paywire.service.inputs import UNSTORABLE_EVENT

if TYPE_CHECKING:
    from paywire.service.payments import PaymentService

__all__ = ["BODY_TIMEOUT", "IN_HAND_PER_THREAD", "MAX_BODY", "MAX_IN_HAND", "RETRY_AFTER", "WebhookApp", "handle_webhook",
           "webhook_asgi", "webhook_wsgi"]

log = get_logger("paywire.web")

MAX_BODY = 1024 * 1024
BODY_TIMEOUT = 30.0  # seconds for a whole body to arrive: a provider sends a webhook's at once
#: Deliveries the ASGI endpoint holds (being handled or waiting for a thread) per thread of its
#: pool before it answers 503 at once: see `webhook_asgi`.
IN_HAND_PER_THREAD = 64
MAX_IN_HAND = DEFAULT_SIZE * IN_HAND_PER_THREAD  # the default bound of both endpoints
RETRY_AFTER = 10  # seconds a delivery refused for want of room is told to wait

Reply = tuple[int, list[tuple[str, str]], bytes]
#: Told (method code, what became of a delivery): "applied", "duplicate", "deferred", "unmatched",
#: "refused" (did not verify: 400), "unavailable" (answered 503, not stored, delivered again: the
#: ledger busy, its database out of reach, the provider not reachable to confirm the event, or the
#: endpoint holding as many deliveries as it takes), "not_found" (404: a method no
#: configuration names) or
#: "error"; metrics count deliveries through it.
Observer = Callable[[str, str], None]


def _reply(status: int, payload: Mapping[str, Any], extra: Iterable[tuple[str, str]] = ()) -> Reply:
    body = json.dumps(payload, separators=(",", ":")).encode()
    headers = [("content-type", "application/json"), ("content-length", str(len(body))), *extra]
    return status, headers, body


def _method_code(path: str, prefix: str) -> str | None:
    base = prefix.rstrip("/") + "/"
    if not path.startswith(base):
        return None
    code = path[len(base):].rstrip("/")
    return code if code and "/" not in code else None


def route(service: PaymentService, verb: str, path: str, prefix: str,
          observe: Observer | None = None) -> tuple[str | None, Reply | None]:
    """The method code a request is for, or the answer that refuses it before the body is read.

    A delivery to a method no configuration names (a provider's dashboard pointing at a mistyped
    URL) is logged and counted (as method "unknown", status "not_found"): otherwise nothing would
    show that the provider's events go nowhere until it gives up on the endpoint."""
    code = _method_code(path, prefix)
    if code is None:
        return None, _reply(404, {"error": "not_found"})
    try:
        service.gateway.methods.get(code)
    except ConfigurationError:
        if verb == "POST":
            log.warning("webhook for unknown method %r refused (404): no payment method of that code is configured; "
                        "check the URL the provider delivers to", code[:64])
            if observe is not None:
                observe(code, "not_found")
        return None, _reply(404, {"error": "unknown_method"})
    if verb != "POST":
        return None, _reply(405, {"error": "method_not_allowed"}, [("allow", "POST")])
    return code, None


def handle_webhook(service: PaymentService, code: str, headers: Mapping[str, str], body: bytes,
                   observe: Observer | None = None) -> Reply:
    """Verify, store and apply one webhook delivery (one event or a provider's batch); the HTTP
    answer: the acknowledgement the provider expects when it names one, else 200 when every event
    was applied (or had been) and 202 when one waits to be matched."""
    try:
        notification = service.receive_notification(code, headers, body)
    except WebhookVerificationError as exc:
        # Retryable: the provider could not be read to confirm the event. It was not refused: not
        # stored, and delivered again, as when the ledger is out of reach.
        log.warning("webhook for %s %s: %s", code, "not stored" if exc.retryable else "refused", exc)
        if observe is not None:
            observe(code, "unavailable" if exc.retryable else "refused")
        if exc.retryable:
            return _unavailable("verification_unavailable")
        return _reply(400, {"error": "verification_failed"})
    except Exception as exc:
        if isinstance(exc, InvalidRequest) and exc.code == UNSTORABLE_EVENT:
            log.warning("webhook for %s refused: %s", code, exc)  # no delivery of it can ever be stored
            if observe is not None:
                observe(code, "refused")
            return _reply(400, {"error": UNSTORABLE_EVENT})
        # The ledger busy or its database out of reach (the service says which): no fault to
        # trace, one line. Nothing was applied (unless the connection went as the database
        # committed: the redelivery is then a duplicate), and the provider delivers it again.
        if isinstance(exc, (LedgerBusy, LedgerUnavailable)):
            log.warning("webhook for %s not stored: %s", code, exc)
            if observe is not None:
                observe(code, "unavailable")
            return _unavailable("ledger_busy" if isinstance(exc, LedgerBusy) else "ledger_unavailable")
        log.exception("webhook for %s could not be processed", code)
        if observe is not None:
            observe(code, "error")
        return _reply(500, {"error": "internal_error"})
    receipts = notification.receipts
    if observe is not None:
        for receipt in receipts:
            observe(code, receipt.status)
    if notification.acknowledgement:
        ack = notification.acknowledgement
        return 200, [("content-type", notification.content_type), ("content-length", str(len(ack)))], ack
    status = 200 if all(r.status in ("applied", "duplicate") for r in receipts) else 202
    if len(receipts) == 1:
        return _reply(status, {"status": receipts[0].status, "event": receipts[0].event_id})
    return _reply(status, {"events": [{"status": r.status, "event": r.event_id} for r in receipts]})


def _unavailable(error: str) -> Reply:
    """503: nothing was stored, and the provider is told when to deliver it again (`RETRY_AFTER`)."""
    return _reply(503, {"error": error}, [("retry-after", str(RETRY_AFTER))])


def _too_large(limit: int) -> Reply:
    return _reply(413, {"error": "too_large", "limit": limit})


# -- WSGI -------------------------------------------------------------------------------------------
WSGIApp = Callable[[MutableMapping[str, Any], Callable[..., Any]], Iterable[bytes]]


def webhook_wsgi(service: PaymentService, *, prefix: str = "/webhooks", max_body: int = MAX_BODY,
                 observe: Observer | None = None, max_in_hand: int | None = None) -> WSGIApp:
    """A WSGI application serving `POST {prefix}/{method}`; `observe` hears what became of each
    delivery that reached the service.

    At most `max_in_hand` deliveries are in hand (their bodies being read or their ledger work
    running, each in one of the server's threads); one more is answered 503 with `Retry-After` at
    once, its body not read and nothing stored, as the ASGI endpoint answers (the same default,
    `IN_HAND_PER_THREAD` x `paywire.daemon_pool.DEFAULT_SIZE`). A server that starts a thread for
    each connection (wsgiref's `ThreadingMixIn`, a development server) otherwise held a thread, and
    a ledger connection, for every delivery of a flood while the ledger did not answer. A server
    with a pool of threads (waitress: `threads`) is bounded by it first: a `max_in_hand` below its
    threads keeps the others free to refuse the rest at once, and to serve the application's
    other routes, instead of queueing every delivery until the ledger answers."""
    bound = _bound(max_in_hand)
    room = threading.BoundedSemaphore(bound)

    def app(environ: MutableMapping[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        code, refused = route(service, environ.get("REQUEST_METHOD", "GET"), environ.get("PATH_INFO", ""), prefix,
                              observe)
        if refused is None and code is not None:
            if not room.acquire(blocking=False):
                refused = _full(code, bound, observe)
            else:
                try:
                    refused = _deliver_wsgi(service, code, environ, max_body, observe)
                finally:
                    room.release()
        assert refused is not None
        status, headers_out, payload = refused
        start_response(f"{status} {HTTPStatus(status).phrase}", headers_out)
        return [payload]

    return app


def _deliver_wsgi(service: PaymentService, code: str, environ: Mapping[str, Any], max_body: int,
                  observe: Observer | None) -> Reply:
    refused, body = _read_wsgi(environ, max_body)
    if refused is not None:
        return refused
    headers = {key[5:].replace("_", "-").lower(): str(value)
               for key, value in environ.items() if key.startswith("HTTP_")}
    for key in ("CONTENT_TYPE", "CONTENT_LENGTH"):
        if environ.get(key):
            headers[key.replace("_", "-").lower()] = str(environ[key])
    return handle_webhook(service, code, headers, body, observe)


def _bound(max_in_hand: int | None) -> int:
    """The deliveries an endpoint holds: a bound below one would refuse every delivery."""
    if max_in_hand is None:
        return MAX_IN_HAND
    if type(max_in_hand) is not int or max_in_hand < 1:
        raise ConfigurationError(f"max_in_hand = {max_in_hand!r} is not allowed: give a whole number of at least 1 "
                                 f"(the deliveries held at once before more are answered 503), or leave it out for "
                                 f"the default {MAX_IN_HAND}")
    return max_in_hand


def _full(code: str, bound: int, observe: Observer | None) -> Reply:
    log.warning("webhook for %s refused: %d deliveries in hand already (the ledger slow or not answering, or "
                "bodies slow to arrive); answered 503, it will be delivered again", code, bound)
    if observe is not None:
        observe(code, "unavailable")
    return _unavailable("busy")


def _read_wsgi(environ: Mapping[str, Any], limit: int) -> tuple[Reply | None, bytes]:
    stream = environ["wsgi.input"]
    length_text = environ.get("CONTENT_LENGTH") or ""
    if length_text.strip():
        try:
            length = int(length_text)
        except ValueError:
            return _reply(400, {"error": "bad_content_length"}), b""
        if length > limit:
            return _too_large(limit), b""
        return None, stream.read(length) if length > 0 else b""
    if not environ.get("wsgi.input_terminated"):
        # No length, and a server whose input does not end with the body (wsgiref): a read would
        # wait for the client to close its connection, holding one of the server's threads.
        return _reply(411, {"error": "length_required"}), b""
    body = stream.read(limit + 1)  # no length given (chunked): never read more than the limit
    if len(body) > limit:
        return _too_large(limit), b""
    return None, body


# -- ASGI -------------------------------------------------------------------------------------------
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGIApp = Callable[[MutableMapping[str, Any], Receive, Send], Awaitable[None]]


def webhook_asgi(service: PaymentService, *, prefix: str = "/webhooks", max_body: int = MAX_BODY,
                 observe: Observer | None = None, body_timeout: float = BODY_TIMEOUT,
                 max_in_hand: int | None = None) -> WebhookApp:
    """An ASGI application serving `POST {prefix}/{method}`. `observe` hears what became of
    each delivery that reached the service; a body not whole within `body_timeout` seconds is
    answered 408 (ASGI servers such as uvicorn set no limit on reading one).

    The ledger work runs in threads, so the event loop is never blocked by the database or the
    provider: daemon threads (`DaemonPool`, as many as asyncio's default executor has) rather
    than the loop's executor, which is joined at exit, so that a unit waiting on a database that
    stopped answering cannot keep the process from exiting once the server has waited for its
    requests in flight. They end with the ASGI lifespan's shutdown or `close()`, and each after
    `paywire.daemon_pool.IDLE` seconds without a delivery.

    At most `max_in_hand` deliveries are held, their bodies arriving, being handled or waiting
    for a thread; one more is answered 503 with `Retry-After` at once, its body not read and
    nothing stored, and the provider delivers it again. Without that bound a ledger whose database hangs held every
    delivery, and the memory and connection each needs, for as long as it hung. The default,
    `IN_HAND_PER_THREAD` (64) per thread, refuses no burst a healthy ledger can answer in time:
    one applied takes milliseconds (about 16 on PostgreSQL over loopback on a busy two-core
    machine, under 1 for a duplicate), so the last of 64 waiting for each thread is answered
    within about a second, inside the several seconds a provider waits for an answer. The bound is reached only when deliveries stop being answered
    (a ledger that hangs), and then each one beyond it is refused at once instead of timing out
    at the provider, which delivers it again in either case. A body arriving counts from its
    request's head on (for `body_timeout` at most): uncounted, senders trickling bodies each held
    up to `max_body` bytes of memory, as many as the process had file descriptors for. The bodies
    held take `max_in_hand` x `max_body` bytes at most (384 MiB with six threads and the 1 MiB
    default): a provider's events take a few KiB, and a lower `max_body` lowers it."""
    return WebhookApp(service, prefix, max_body, observe, body_timeout, max_in_hand)


class WebhookApp:
    """The ASGI application `webhook_asgi` builds. `close()`, which the lifespan's shutdown
    runs, ends its threads and their ledger connections; call it where the lifespan does not
    reach the app (Starlette and FastAPI do not pass it to a mounted one) and the app is done."""

    def __init__(self, service: PaymentService, prefix: str, max_body: int, observe: Observer | None,
                 body_timeout: float, max_in_hand: int | None = None) -> None:
        self._service = service
        self._prefix = prefix
        self._max_body = max_body
        self._observe = observe
        self._body_timeout = body_timeout
        self._workers = DaemonPool(DEFAULT_SIZE, name="paywire-webhook")
        self.max_in_hand = _bound(max_in_hand)
        self._room = threading.Lock()
        self._arriving = 0  # deliveries admitted whose bodies are being read

    @property
    def in_hand(self) -> int:
        """Deliveries whose bodies are arriving, being handled or waiting for a thread."""
        return self._arriving + self._workers.in_hand

    def _admit(self) -> bool:
        """Take room for one delivery whose body is to be read; False when there is none."""
        with self._room:
            if self.in_hand >= self.max_in_hand:
                return False
            self._arriving += 1
            return True

    def _full(self, code: str) -> Reply:
        return _full(code, self.max_in_hand, self._observe)

    def close(self) -> None:
        """End the threads (each busy one once its delivery is handled; never waited for)."""
        self._workers.close()

    async def _deliver(self, code: str, scope: MutableMapping[str, Any], receive: Receive) -> Reply:
        """Read the body of a delivery `_admit` took room for, then hand it to a thread: its room
        passes to the pool's count (counted twice for that instant: never too few)."""
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        try:
            try:
                reply, body = await asyncio.wait_for(_read_asgi(receive, headers, self._max_body),
                                                     self._body_timeout)
            except TimeoutError:
                return _reply(408, {"error": "body_timeout"}, [("connection", "close")])
            if reply is not None:
                return reply
            handled = self._workers.run(handle_webhook, self._service, code, headers, body, self._observe)
        finally:
            with self._room:
                self._arriving -= 1
        return await handled

    async def __call__(self, scope: MutableMapping[str, Any], receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    self.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        if scope["type"] != "http":
            raise ValueError(f"unsupported ASGI scope type {scope['type']!r}")
        code, reply = route(self._service, scope.get("method", "GET"), _route_path(scope), self._prefix,
                            self._observe)
        if reply is None and code is not None and not self._admit():
            reply = self._full(code)  # at once: the body is not read
        if reply is None and code is not None:
            try:
                reply = await self._deliver(code, scope, receive)
            except asyncio.CancelledError:
                # The server stopped waiting for it (its graceful timeout at shutdown ran out while
                # the ledger's database did not answer, say): an expected way to stop, said in one
                # line. Raised on, so that whoever cancelled the request sees it end as cancelled.
                log.warning("webhook for %s left unfinished: the server stopped waiting for it; answered no 2xx, "
                            "it will be delivered again", code)
                raise
        assert reply is not None
        status, headers_out, payload = reply
        await send({"type": "http.response.start", "status": status,
                    "headers": [(k.encode("latin-1"), v.encode("latin-1")) for k, v in headers_out]})
        await send({"type": "http.response.body", "body": payload})


def _route_path(scope: MutableMapping[str, Any]) -> str:
    """The path below where the app is mounted: ASGI's `path` includes `root_path` (Starlette's
    and FastAPI's `mount`, a proxy's prefix)."""
    path, root = str(scope.get("path", "")), str(scope.get("root_path", "") or "")
    return path[len(root):] if root and path.startswith(root) else path


async def _read_asgi(receive: Receive, headers: Mapping[str, str], limit: int) -> tuple[Reply | None, bytes]:
    declared = headers.get("content-length", "").strip()
    if declared:
        try:
            if int(declared) > limit:
                return _too_large(limit), b""
        except ValueError:
            return _reply(400, {"error": "bad_content_length"}), b""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return _reply(400, {"error": "disconnected"}), b""
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            return _too_large(limit), b""
        chunks.append(chunk)
        if not message.get("more_body", False):
            return None, b"".join(chunks)
