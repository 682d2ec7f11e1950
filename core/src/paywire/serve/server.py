"""Running `paywire serve`: the application on uvicorn, with the Janitor beside it.

uvicorn handles SIGTERM and SIGINT: it stops accepting connections, lets the requests in flight
finish (each webhook's ledger unit commits or rolls back whole; one still waiting on a database
that stopped answering after `graceful_timeout` is left behind in its daemon thread, answered no
2xx, its unit rolled back when the connection goes with the process), and runs the lifespan shutdown,
which tells the Janitor to stop after the payment it is settling. The Janitor is then joined (for
`graceful_timeout` at most: a provider that does not answer its fetch would hold the process as
long as the method's read timeout) and the ledger closed, so nothing is left half-written: a unit
the process leaves open is rolled back whole, and a look left unfinished keeps its payment under
a lease that expires.
"""

from __future__ import annotations

import asyncio
import logging
import math
import signal
import socket
import threading
import time
from typing import Any

import attrs

from paywire.config_schema import check_keys
from paywire.errors import ConfigurationError
from paywire.gateway import MAX_WEBHOOK_BYTES, Gateway
from paywire.security import get_logger
from paywire.serve.app import serve_app
from paywire.serve.janitor import Backoff, Janitor
from paywire.serve.metrics import Metrics
from paywire.serve.protocol import with_header_timeout
from paywire.service.payments import PaymentService
from paywire.web import MAX_BODY, MAX_IN_HAND

__all__ = ["ServeOptions", "bind", "require_server", "serve"]

log = get_logger("paywire.serve")


@attrs.frozen
class ServeOptions:
    """What `paywire serve` runs, from `[paywire.serve]` in paywire.toml and the command line."""

    host: str = "127.0.0.1"
    port: int = 8080
    webhooks: bool = True  # False: the Janitor alone (the shop mounts the endpoint in its own app)
    janitor: bool = True
    prefix: str = "/webhooks"
    max_body: int = MAX_BODY
    max_in_hand: int = MAX_IN_HAND  # webhook deliveries held at once; more are answered 503
    interval: float = 5.0  # seconds between reconcile passes
    backoff: Backoff = attrs.field(factory=Backoff)
    stale_after: float = 300.0  # /healthz fails when the last pass is older
    graceful_timeout: float = 30.0  # seconds requests in flight get after SIGTERM

    @classmethod
    def from_settings(cls, settings: Any, **overrides: Any) -> ServeOptions:
        """Options from the `[paywire.serve]` table, then the command line's (non-None) values."""
        table = dict(settings or {})
        if "backoff" in table and not isinstance(table["backoff"], Backoff):
            if not isinstance(table["backoff"], dict):
                raise ConfigurationError(f"[paywire.serve] backoff = {table['backoff']!r}: must be a table, such as "
                                         "backoff = { first = 15, factor = 2, cap = 900 }")
            check_keys(table["backoff"], [f.name for f in attrs.fields(Backoff)], "[paywire.serve] backoff")
            table["backoff"] = Backoff(**table["backoff"])
        check_keys(table, [f.name for f in attrs.fields(cls)], "[paywire.serve]")
        table.update({k: v for k, v in overrides.items() if v is not None})
        try:
            options = cls(**table)
        except TypeError as exc:
            raise ConfigurationError(f"[paywire.serve]: {exc}") from None
        options._check()
        return options

    def _check(self) -> None:
        """Refuse values that cannot work, rather than serve something else: a port out of range,
        a flag or an address of the wrong type (the string "false" is true), a prefix no request
        path starts with, a wait that is not a positive number of seconds a clock can count (a
        Janitor spinning without pause, or dying on its first wait), a health check that fails
        between two healthy passes, a body limit above what the gateway reads, room for no delivery."""
        def bad(name: str, value: object, allowed: str) -> ConfigurationError:
            return ConfigurationError(f"[paywire.serve] {name} = {value!r}: must be {allowed}")

        if not isinstance(self.host, str) or not self.host:
            raise bad("host", self.host, "an address, such as '127.0.0.1' or '0.0.0.0'")
        if type(self.port) is not int or not 0 <= self.port <= 65535:
            raise bad("port", self.port, "a port number (0 to 65535)")
        for name in ("webhooks", "janitor"):
            if type(getattr(self, name)) is not bool:
                raise bad(name, getattr(self, name), "true or false")
        if not isinstance(self.prefix, str) or not self.prefix.startswith("/"):
            raise bad("prefix", self.prefix, "a path starting with /, such as '/webhooks'")
        if type(self.max_body) is not int or not 1 <= self.max_body <= MAX_WEBHOOK_BYTES:
            raise bad("max_body", self.max_body, f"a whole number of bytes from 1 to {MAX_WEBHOOK_BYTES} (what the "
                                                 "gateway reads of a webhook)")
        if type(self.max_in_hand) is not int or self.max_in_hand < 1:
            raise bad("max_in_hand", self.max_in_hand, "a whole number of webhook deliveries of at least 1 (held at "
                                                       "once; more are answered 503)")
        waits = {"interval": self.interval, "stale_after": self.stale_after,
                 "graceful_timeout": self.graceful_timeout, "backoff first": self.backoff.first,
                 "backoff cap": self.backoff.cap}
        for name, value in waits.items():
            if not _positive_seconds(value):
                raise bad(name, value, f"a number of seconds above zero and at most {_LONGEST_WAIT:.0f} (a year)")
        if self.graceful_timeout < 1:
            raise bad("graceful_timeout", self.graceful_timeout, "at least 1 second (the server counts whole seconds)")
        if not _positive_seconds(self.backoff.factor) or self.backoff.factor < 1:
            raise bad("backoff factor", self.backoff.factor, "a number of at least 1")
        if self.backoff.first > self.backoff.cap:
            raise bad("backoff first", self.backoff.first, f"at most the backoff cap ({self.backoff.cap})")
        if self.janitor and self.stale_after <= self.interval:
            raise bad("stale_after", self.stale_after, f"longer than interval ({self.interval}): /healthz would fail "
                                                       "between two passes of a healthy Janitor")


_LONGEST_WAIT = 365 * 24 * 3600.0  # seconds: past this, waits and schedules overflow the clock's types


def _positive_seconds(value: object) -> bool:
    return (isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
            and 0 < value <= _LONGEST_WAIT)


def webhook_gaps(gateway: Gateway) -> list[str]:
    """Why each method that takes webhooks cannot verify them yet (a webhook secret missing):
    every delivery to it would be answered 500 and redelivered for days. Said at start; not
    refused, since a method whose provider sends it no webhooks needs no secret."""
    gaps = []
    for config in gateway.methods:
        method = gateway.method(config.code)
        if method.definition.webhook is None or not method.capabilities.webhooks:
            continue
        try:
            method.webhook_verifier()
            for name in method.definition.webhook_secrets:
                method.settings.secret(name)
        except ConfigurationError as exc:
            gaps.append(f"webhooks for method {config.code!r} will be refused (500) until this is fixed: {exc.message}")
    return gaps


def _not_cancelled_at_shutdown(record: logging.LogRecord) -> bool:
    """Drop uvicorn's "Exception in ASGI application" trace of a request it cancelled because its
    graceful timeout ran out: an expected way to stop, no fault, which the webhook endpoint says
    in one line (the method, and that the delivery comes again) and uvicorn in its own."""
    return not (record.exc_info and isinstance(record.exc_info[1], asyncio.CancelledError))


_JOIN_STEP = 0.1  # seconds between two looks at whether a second signal came while the Janitor is joined


def _stop_janitor(janitor: Janitor, timeout: float, heard: list[int]) -> None:
    """Let the Janitor finish the payment in hand, `timeout` seconds at most, unless a second
    signal (SIGTERM or SIGINT: an operator or an orchestrator insisting) came or comes meanwhile:
    the process then stops at once, the look in hand left to its lease, which expires."""
    janitor.stopping.set()
    if janitor.running and len(heard) < 2:
        log.warning("stopping: the Janitor finishes the payment in hand (%ss at most; signal again to stop now)",
                    timeout)
    deadline = time.monotonic() + timeout
    while janitor.running and len(heard) < 2 and (left := deadline - time.monotonic()) > 0:
        janitor.stop(min(left, _JOIN_STEP))


def require_server() -> None:
    """Refuse unless uvicorn, which `serve` runs on (`paywire[server]`), is installed; asked before
    anything is opened, so that a start that cannot run creates nothing (the ledger among them)."""
    try:
        import uvicorn  # noqa: F401
    except ImportError:
        raise ConfigurationError("paywire serve needs uvicorn: pip install 'paywire[server]'") from None


def bind(options: ServeOptions) -> socket.socket:
    """The listening socket for `options`' address, bound before anything else is opened, so that
    an address that cannot be served (a name that resolves to nothing, a port in use or not
    allowed) fails the start with nothing created (the ledger among them)."""
    sock: socket.socket | None = None
    try:
        # The family as uvicorn picks it: "localhost" is IPv4 wherever the resolver lists ::1 first.
        family, kind, proto, _, address = socket.getaddrinfo(
            options.host, options.port, socket.AF_INET6 if ":" in options.host else socket.AF_INET,
            socket.SOCK_STREAM, flags=socket.AI_PASSIVE)[0]
        sock = socket.socket(family, kind, proto)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
    except (OSError, UnicodeError) as exc:
        if sock is not None:
            sock.close()
        raise ConfigurationError(
            f"paywire serve cannot listen on {options.host}:{options.port} ({exc}); choose another address or "
            "port (--host, --port, or [paywire.serve] host and port), or stop what is listening there") from None
    return sock


def serve(service: PaymentService, options: ServeOptions, *, metrics: Metrics | None = None,
          sock: socket.socket | None = None) -> None:
    """Serve until SIGTERM or SIGINT (needs `paywire[server]`), on `sock` (from `bind(options)`,
    which this calls without it); the socket is closed when it returns."""
    require_server()
    import uvicorn

    sock = sock if sock is not None else bind(options)
    for gap in webhook_gaps(service.gateway) if options.webhooks else ():
        log.warning("%s", gap)

    class _Server(uvicorn.Server):
        """Says where it listens: with port 0 (any free port) nothing else tells it."""

        async def startup(self, sockets: Any = None) -> None:
            await super().startup(sockets)
            for server in getattr(self, "servers", []):
                for sock in server.sockets:
                    host, port = sock.getsockname()[:2]
                    log.info("paywire serve listening on http://%s:%d", f"[{host}]" if ":" in host else host, port)

    metrics = metrics or Metrics()
    metrics.instrument(service)
    janitor = Janitor(service, interval=options.interval, backoff=options.backoff,
                      on_pass=metrics.reconcile_pass) if options.janitor else None
    app = serve_app(service, janitor=janitor, metrics=metrics, webhooks=options.webhooks, prefix=options.prefix,
                    max_body=options.max_body, max_in_hand=options.max_in_hand,
                    stale_after=options.stale_after)
    config = uvicorn.Config(app, host=options.host, port=options.port, lifespan="on", access_log=False,
                            timeout_graceful_shutdown=math.ceil(options.graceful_timeout), log_level="warning",
                            http=with_header_timeout())
    # uvicorn re-raises the signals it caught once it has stopped; heard here by a handler that
    # counts them, so the Janitor is joined and the ledger closed before the process exits (0),
    # unless a second signal says not to wait for the Janitor.
    uvicorn_log = logging.getLogger("uvicorn.error")
    uvicorn_log.addFilter(_not_cancelled_at_shutdown)
    quiet = threading.current_thread() is threading.main_thread()
    heard: list[int] = []
    previous = {sig: signal.signal(sig, lambda sig, _: heard.append(sig))
                for sig in (signal.SIGINT, signal.SIGTERM)} if quiet else {}
    try:
        try:
            _Server(config).run(sockets=[sock])
        except SystemExit:  # uvicorn's exit when it cannot start: its reason is the line it logged
            raise ConfigurationError(
                f"paywire serve could not start on {options.host}:{options.port} (the reason is logged above); "
                "choose another address or port (--host, --port, or [paywire.serve] host and port), or stop "
                "what is listening there") from None
    finally:
        if janitor is not None:
            _stop_janitor(janitor, options.graceful_timeout, heard)
            if janitor.running:  # a provider slow to answer: its look is left to its lease, which expires
                log.warning("the Janitor was still asking the provider (or the ledger) after %ss; stopping without it",
                            options.graceful_timeout)
        service.ledger.close()
        sock.close()
        uvicorn_log.removeFilter(_not_cancelled_at_shutdown)
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        log.info("paywire serve stopped")
