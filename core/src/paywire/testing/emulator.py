"""Building blocks for provider emulators: stateful local HTTP(S) servers of a provider's API.

A plugin's emulator subclasses `EmulatorApp`, declares routes with `@route`, and is served by
`EmulatorServer` on loopback. The base gives every emulator the same test controls, so the
contract kit can drive any of them alike:

- fault injection (`inject(Fault(...))` or `POST /_paywire/faults`): latency, an HTTP error status
  (with Retry-After) before or after the operation took effect, dropping the connection after
  the operation took effect, or holding a request the provider handled until the test releases it
  (`wait_until_held`, `release_held`: in the same process only), at `hold_point`;
- a count of requests that reached the provider's logic (`calls`, `GET /_paywire/calls`);
- an idempotency store with the usual semantics (replay, conflict, in flight);
- webhook delivery to a configured URL.

Its command line (`python -m paywire_<provider>.emulator`) is `emulator_parser` and `serve`;
`failed_starts` runs it where it cannot start, for a plugin's tests to check it says so in one line.
"""

from __future__ import annotations

import argparse
import json
import re
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable, Mapping, Sequence
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, ClassVar
from urllib.parse import parse_qsl, urlsplit

import attrs

__all__ = [
    "EmulatorApp",
    "EmulatorRequest",
    "EmulatorServer",
    "Fault",
    "IdempotencyStore",
    "Reply",
    "emulator_parser",
    "failed_starts",
    "main",
    "route",
    "serve",
]


@attrs.frozen
class EmulatorRequest:
    """One request as the emulator's handlers see it."""

    method: str
    path: str
    query: tuple[tuple[str, str], ...]
    headers: Mapping[str, str]  # lower-cased names
    body: bytes
    params: Mapping[str, str] = attrs.field(factory=dict)  # named groups of the route pattern

    def header(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def json(self) -> Any:
        return json.loads(self.body or b"null")

    def form(self) -> list[tuple[str, str]]:
        return parse_qsl(self.body.decode("utf-8"), keep_blank_values=True)

    def carries(self, text: str) -> bool:
        """Whether `text` appears in a header value, the query or the body (as sent)."""
        return (any(text in value for value in self.headers.values())
                or any(text in value for _, value in self.query)
                or text.encode() in self.body)


@attrs.frozen
class Reply:
    status: int
    body: bytes = b""
    headers: Mapping[str, str] = attrs.field(factory=dict)

    @classmethod
    def json(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> Reply:
        return cls(status, json.dumps(payload).encode(), {"Content-Type": "application/json", **(headers or {})})


@attrs.frozen
class Fault:
    """A fault to inject into the next `times` matching requests.

    :param kind: "latency" (sleep `seconds`, then answer normally), "status" (answer `status`
        without touching state), "status_after" (run the operation, then answer `status` instead
        of its answer: a gateway in front of the provider timing out after the write), or
        "drop_after" (run the operation, then close the connection without answering). The last
        two are the outcome-unknown cases. "hold" runs the operation, then parks the request at
        `EmulatorApp.hold_point` (its effect applied, its idempotency key still in flight) until
        `EmulatorApp.release_held()`: a client's read timeout, or a duplicate arriving while the
        first is in progress, without guessing at durations.
    :param path: a regular expression the request path must match (any path when None).
    :param method: the HTTP method to match (any when None).
    :param contains: a text the request must carry in a header value or its body (any request
        when None): an operation's idempotency key aims the fault at that operation's write, where
        every call goes to one path (GraphQL) or a read comes first.
    """

    kind: str
    status: int = 500
    seconds: float = 0.0
    retry_after: int | None = None
    path: str | None = None
    method: str | None = None
    times: int = 1
    contains: str | None = None

    def __attrs_post_init__(self) -> None:
        if self.kind not in ("latency", "status", "status_after", "drop_after", "hold"):
            raise ValueError(f"unknown fault kind {self.kind!r}: use latency, status, status_after, drop_after or hold")

    def matches(self, method: str, path: str, request: EmulatorRequest | None = None) -> bool:
        return (self.method is None or self.method == method) and (
            self.path is None or re.search(self.path, path) is not None
        ) and (self.contains is None or (request is not None and request.carries(self.contains)))


Handler = Callable[[Any, EmulatorRequest], Reply]


def route(method: str, pattern: str) -> Callable[[Handler], Handler]:
    """Declare a handler for `method` and a path regex with named groups (`(?P<id>[^/]+)`)."""

    def mark(fn: Handler) -> Handler:
        fn.__dict__.setdefault("_routes", []).append((method, pattern))
        return fn

    return mark


class IdempotencyStore:
    """Stored replies by (scope, key) with the body fingerprint that produced them.

    `begin` answers ("new", None), ("replay", reply), ("conflict", None) or ("in_flight", None);
    every "new" must be followed by `finish` or `abandon`. The emulator calls
    `EmulatorApp.hold_point` between the operation and `finish`, so that a held request keeps its
    key in flight.
    """

    def __init__(self, ttl: float = 24 * 3600) -> None:
        self._lock = threading.Lock()
        self._entries: dict[tuple[str, str], tuple[str, Reply | None, float]] = {}
        self.ttl = ttl

    def begin(self, scope: str, key: str, fingerprint: str) -> tuple[str, Reply | None]:
        now = time.monotonic()
        with self._lock:
            entry = self._entries.get((scope, key))
            if entry is not None and now - entry[2] > self.ttl:
                entry = None
            if entry is None:
                self._entries[(scope, key)] = (fingerprint, None, now)
                return "new", None
            stored_fingerprint, reply, _ = entry
            if stored_fingerprint != fingerprint:
                return "conflict", None
            if reply is None:
                return "in_flight", None
            return "replay", reply

    def finish(self, scope: str, key: str, reply: Reply) -> None:
        with self._lock:
            fingerprint, _, created = self._entries[(scope, key)]
            self._entries[(scope, key)] = (fingerprint, reply, created)

    def abandon(self, scope: str, key: str) -> None:
        with self._lock:
            self._entries.pop((scope, key), None)


class EmulatorApp:
    """Base of a provider emulator: routing, fault injection, call counting, webhooks."""

    _route_table: ClassVar[list[tuple[str, re.Pattern[str], str]]]

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        table: list[tuple[str, re.Pattern[str], str]] = []
        for klass in reversed(cls.__mro__):
            for name, fn in vars(klass).items():
                for method, pattern in getattr(fn, "_routes", ()):
                    table.append((method, re.compile(f"^{pattern}$"), name))
        cls._route_table = table

    HOLD_LIMIT = 30.0
    """Seconds a held request waits for `release_held` at most (a test that forgot to release)."""

    def __init__(self) -> None:
        self.lock = threading.RLock()
        # Faults have a lock of their own: a request held inside a provider's handler (which may
        # hold `lock`) must not stop other requests from being matched against faults.
        self._fault_lock = threading.RLock()
        self._faults: list[list[Any]] = []  # [Fault, remaining]
        self._hold = threading.Condition()
        self._holding = 0  # requests parked by a "hold" fault and not yet answered
        self._hold_gate = threading.Event()
        self._held_here = threading.local()
        self.calls: list[tuple[str, str]] = []
        self.idempotency = IdempotencyStore()
        self.webhook_url: str | None = None
        self.webhook_deliveries: list[tuple[int | None, bytes]] = []
        self._webhooks_pending = 0  # deliveries started and not yet answered (or failed)
        self._webhooks_done = threading.Condition(self.lock)
        self.base_url = ""  # set by the server, for absolute links (redirects, approval pages)

    # -- test controls -------------------------------------------------------------------------
    def inject(self, fault: Fault) -> None:
        with self._fault_lock:
            self._faults.append([fault, fault.times])

    def clear_faults(self) -> None:
        """Put the emulator back to answering normally: remove every fault, then release every
        request a "hold" fault parked and wait until each is answered (`release_held`). It is the
        one reset (between scenarios, at teardown, and `DELETE /_paywire/faults` for a remote one).
        To let held requests go on while the faults stay, call `release_held`; to stop a fault
        while a request it holds stays held, inject it with `times` (a fault used up is gone)."""
        with self._fault_lock:
            self._faults.clear()
        self.release_held()

    def wait_until_held(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Wait until `count` requests are parked by a "hold" fault; False on timeout."""
        with self._hold:
            return self._hold.wait_for(lambda: self._holding >= count, timeout)

    def release_held(self, timeout: float = 10.0) -> bool:
        """Let every held request go on, and wait until each has been answered (its idempotency
        key finished or abandoned); False on timeout."""
        with self._hold:
            if not self._holding:
                return True
            self._hold_gate.set()
            try:
                return self._hold.wait_for(lambda: self._holding == 0, timeout)
            finally:
                self._hold_gate.clear()

    def hold_point(self, request: EmulatorRequest) -> None:
        """Park `request` here if a "hold" fault aims at it, until `release_held` (at most once per
        request).

        Call it where the operation has been applied and its idempotency key is still claimed:
        after the handler, before `IdempotencyStore.finish`. A duplicate arriving meanwhile then
        meets the key in flight, and gets the provider's "in progress" answer, as it would at the
        provider while the first request is still being handled. `answer` calls it for every
        request once the emulator handled it, which is the point for a request with no key.
        """
        if getattr(self._held_here, "held", False):
            return  # one hold per request, wherever the emulator calls for it first
        if self._take_fault(request.method, request.path, ("hold",), request=request) is None:
            return
        with self._hold:
            self._holding += 1
            self._held_here.held = True
            self._hold.notify_all()
        self._hold_gate.wait(self.HOLD_LIMIT)

    def _take_fault(
        self, method: str, path: str,
        kinds: tuple[str, ...] = ("latency", "status", "status_after", "drop_after", "hold"),
        *, request: EmulatorRequest | None = None,
    ) -> Fault | None:
        with self._fault_lock:
            for entry in self._faults:
                fault, remaining = entry
                if remaining > 0 and fault.kind in kinds and fault.matches(method, path, request):
                    entry[1] = remaining - 1
                    return fault  # type: ignore[no-any-return]
            return None

    def deliver_webhook(self, body: bytes, headers: Mapping[str, str]) -> None:
        """POST a signed event to `webhook_url` from a background thread (as providers do)."""
        url = self.webhook_url
        if not url:
            return

        def send() -> None:
            request = urllib.request.Request(url, data=body, method="POST", headers=dict(headers))  # noqa: S310
            status: int | None = None
            try:
                with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - URL set by the test
                    status = response.status
            except urllib.error.HTTPError as exc:
                status = exc.code
            except OSError:
                status = None
            finally:
                with self.lock:
                    self.webhook_deliveries.append((status, body))
                    self._webhooks_pending -= 1
                    self._webhooks_done.notify_all()

        with self.lock:
            self._webhooks_pending += 1
        threading.Thread(target=send, daemon=True).start()

    def wait_for_webhooks(self, timeout: float = 5.0) -> bool:
        """Wait until every delivery started so far was answered (or failed); False on timeout.
        Deliveries start while the request that caused them is handled, so once its answer is
        back, waiting here sees them: tests need not guess how long a quiet spell must last."""
        with self._webhooks_done:
            return self._webhooks_done.wait_for(lambda: self._webhooks_pending == 0, timeout)

    # -- dispatch ------------------------------------------------------------------------------
    def answer(self, request: EmulatorRequest) -> tuple[Reply | None, bool]:
        """Answer one request; the flag says to drop the connection instead of answering.

        A `drop_after` or `status_after` fault acts on the connection, so it applies to every matching request,
        replays of idempotent requests included; latency and error statuses are the provider's
        own behaviour and apply inside `dispatch`.
        """
        control = request.path.startswith("/_paywire/")
        after = None if control else self._take_fault(request.method, request.path, ("drop_after", "status_after"),
                                                         request=request)
        try:
            reply, drop = self.dispatch(request)
            if not control:
                self.hold_point(request)  # a request the emulator did not hold at its key
        finally:
            if getattr(self._held_here, "held", False):
                self._held_here.held = False
                with self._hold:
                    self._holding -= 1
                    self._hold.notify_all()
        if after is not None and after.kind == "status_after" and not drop:
            headers = {"Retry-After": str(after.retry_after)} if after.retry_after is not None else {}
            return self.fault_reply(after.status, headers), False
        return reply, drop or after is not None

    def dispatch(self, request: EmulatorRequest) -> tuple[Reply | None, bool]:
        """The provider's handling of one request (override for provider-wide concerns such as
        authentication, idempotency or request ids, calling this one); the flag says to drop the
        connection."""
        if request.path.startswith("/_paywire/"):
            return self._control(request), False
        fault = self._take_fault(request.method, request.path, ("latency", "status"), request=request)
        if fault is not None and fault.kind == "latency":
            time.sleep(fault.seconds)
        elif fault is not None and fault.kind == "status":
            headers = {"Retry-After": str(fault.retry_after)} if fault.retry_after is not None else {}
            return self.fault_reply(fault.status, headers), False
        return self.handle(request), False

    def handle(self, request: EmulatorRequest) -> Reply:
        for method, pattern, name in self._route_table:
            match = pattern.match(request.path)
            if match and method == request.method:
                request = attrs.evolve(request, params=match.groupdict())
                with self.lock:
                    self.calls.append((request.method, request.path))
                reply: Reply = getattr(self, name)(request)
                return reply
        return self.not_found(request)

    def not_found(self, request: EmulatorRequest) -> Reply:
        return Reply.json(404, {"error": {"message": f"Unrecognized request URL ({request.method}: {request.path})"}})

    def fault_reply(self, status: int, headers: Mapping[str, str]) -> Reply:
        """The body of an injected error status, in the provider's error shape (override)."""
        return Reply.json(status, {"error": {"message": "injected fault", "status": status}}, headers)

    def _control(self, request: EmulatorRequest) -> Reply:
        if request.path == "/_paywire/faults" and request.method == "POST":
            self.inject(Fault(**request.json()))
            return Reply.json(200, {"ok": True})
        if request.path == "/_paywire/faults" and request.method == "DELETE":
            self.clear_faults()
            return Reply.json(200, {"ok": True})
        if request.path == "/_paywire/calls" and request.method == "GET":
            with self.lock:
                return Reply.json(200, {"calls": [list(call) for call in self.calls]})
        if request.path == "/_paywire/webhook-url" and request.method == "POST":
            self.webhook_url = request.json()["url"]
            return Reply.json(200, {"ok": True})
        return Reply.json(404, {"error": {"message": "unknown control endpoint"}})


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # headers and body go out as two writes: no 40 ms delayed-ACK stall
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # quiet by default
        pass

    def _serve(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        parts = urlsplit(self.path)
        request = EmulatorRequest(
            method=self.command,
            path=parts.path,
            query=tuple(parse_qsl(parts.query, keep_blank_values=True)),
            headers={k.lower(): v for k, v in self.headers.items()},
            body=body,
        )
        reply, drop = self.server.app.answer(request)
        if drop or reply is None:
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            return
        try:
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            self.wfile.write(reply.body)
        except (BrokenPipeError, ConnectionResetError):
            # The client gave up first (its read timeout): the operation took effect, the answer
            # is lost on the way, as with a real provider.
            self.close_connection = True

    do_GET = do_POST = do_DELETE = do_PATCH = do_PUT = _serve


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], app: EmulatorApp, context: ssl.SSLContext | None) -> None:
        self.app = app
        self.ssl_context = context
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def close_connections(self) -> None:
        """End every connection still open (a client's keep-alive): a stopped server must not go on
        answering on them. A client pooling connections by address would otherwise send its next
        request to this stopped server's app, even after a new server took the same port."""
        with self._open_lock:
            open_now, self._open = list(self._open), set()
        for connection in open_now:
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass  # already closed by its handler

    def finish_request(self, request: Any, client_address: Any) -> None:
        # The TLS handshake runs here, in the request's own thread, not in the accept loop.
        if self.ssl_context is None:
            super().finish_request(request, client_address)
            return
        try:
            connection = self._secure(request)
        except (ssl.SSLError, OSError):
            return
        try:
            super().finish_request(connection, client_address)
        finally:
            self.shutdown_request(connection)

    def _secure(self, accepted: socket.socket) -> ssl.SSLSocket:
        """The TLS socket that takes over `accepted` (left detached), in its place among the open
        connections, so that `close_connections` ends it too; OSError if that already ran."""
        assert self.ssl_context is not None
        connection = self.ssl_context.wrap_socket(accepted, server_side=True)
        with self._open_lock:
            if accepted in self._open:
                self._open.discard(accepted)
                self._open.add(connection)
                return connection
        connection.close()
        raise OSError("the server stopped during the TLS handshake")


class EmulatorServer:
    """Serves an `EmulatorApp` on loopback over HTTP, or HTTPS when given an `ssl.SSLContext`.

    Use as a context manager; `url` is the base URL to point a gateway at.
    """

    def __init__(
        self,
        app: EmulatorApp,
        host: str = "127.0.0.1",
        port: int = 0,
        ssl_context: ssl.SSLContext | None = None,
    ) -> None:
        self.app = app
        self._server = _Server((host, port), app, ssl_context)
        self._tls = ssl_context is not None
        app.base_url = self.url
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        host = host.decode() if isinstance(host, bytes) else host
        return f"{'https' if self._tls else 'http'}://{host}:{port}"

    def start(self) -> EmulatorServer:
        # A short poll interval keeps stop() (and so each test's teardown) well under a second.
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()
        return self

    def serve_forever(self) -> None:
        self._server.serve_forever()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._server.close_connections()

    def __enter__(self) -> EmulatorServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def emulator_parser(prog: str | None, description: str) -> argparse.ArgumentParser:
    """The options every emulator's command line takes; a provider adds its own to it, so
    `--help` lists them all and is answered before anything else happens."""
    parser = argparse.ArgumentParser(prog=prog, description=description)
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="port to listen on (default: any free port)")
    parser.add_argument("--certfile", help="serve HTTPS with this certificate chain (PEM)")
    parser.add_argument("--keyfile", help="the private key of --certfile (PEM)")
    parser.add_argument("--webhook-url", help="POST signed webhook events here")
    return parser


def serve(app: EmulatorApp, args: argparse.Namespace, *, prog: str | None = None,
          announce: Sequence[str] = ()) -> int:
    """Serve `app` as `args` (from `emulator_parser`) say until interrupted: print `announce`
    (test credentials, a webhook secret) and the URL once listening. A certificate that cannot be
    loaded or an address that cannot be bound is one line on stderr and exit status 1."""
    name = prog or type(app).__name__
    context = None
    if args.certfile:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        try:
            context.load_cert_chain(args.certfile, args.keyfile)
        except (OSError, ssl.SSLError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            print(f"{name}: cannot load the certificate {args.certfile!r} (key {args.keyfile!r}): {reason}",
                  file=sys.stderr)
            return 1
    app.webhook_url = args.webhook_url
    try:
        server = EmulatorServer(app, args.host, args.port, ssl_context=context)
    except OSError as exc:
        print(f"{name}: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
    for line in announce:
        print(line, flush=True)
    print(f"{type(app).__name__} listening on {server.url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


def main(app: EmulatorApp, argv: list[str] | None = None, *, prog: str | None = None) -> None:
    """Command line of an emulator with no options of its own: `python -m paywire_<provider>.emulator
    --host H --port N` (`--certfile`/`--keyfile` serve HTTPS; `--webhook-url` sets where signed
    events are sent)."""
    parser = emulator_parser(prog, f"{type(app).__name__}: a local provider emulator")
    status = serve(app, parser.parse_args(argv), prog=prog)
    if status:
        sys.exit(status)


def failed_starts(module: str) -> list[tuple[str, subprocess.CompletedProcess[str]]]:
    """Run `python -m module` (an emulator command line built on `serve`) on a port in use and with a
    certificate that does not exist; for each, what its stderr must contain and the finished process.

    `serve` promises one line on stderr and exit status 1 for both; a plugin's test asserts that its
    own command line keeps the promise::

        for message, result in failed_starts("paywire_acme.emulator"):
            assert result.returncode == 1 and message in result.stderr
            assert len(result.stderr.strip().splitlines()) == 1
    """
    runs = []
    with socket.socket() as taken, tempfile.TemporaryDirectory() as folder:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        for args, message in (
            (["--port", str(port)], f"cannot listen on 127.0.0.1:{port}"),
            (["--certfile", f"{folder}/missing.pem"], "cannot load the certificate"),
        ):
            result = subprocess.run(
                [sys.executable, "-m", module, *args], capture_output=True, text=True, timeout=60, check=False
            )
            runs.append((message, result))
    return runs
