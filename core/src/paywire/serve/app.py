"""The ASGI application `paywire serve` runs: the webhook endpoint, `GET /healthz` and
`GET /metrics`, and the Janitor started and stopped with the server's lifespan."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from paywire.daemon_pool import DaemonPool
from paywire.errors import PaywireError
from paywire.ledger.interface import Ledger
from paywire.serve.janitor import Janitor
from paywire.serve.metrics import CONTENT_TYPE, Metrics
from paywire.service.payments import PaymentService
from paywire.web import MAX_BODY, ASGIApp, Receive, Send, webhook_asgi

__all__ = ["LEDGER_WAIT", "serve_app"]

LEDGER_WAIT = 5.0  # seconds /healthz waits for the ledger to answer before calling it unreachable


def _ledger_check(ledger: Ledger) -> dict[str, Any]:
    """Whether the ledger answers (its schema version read) and takes writes (a standby after a
    failover, or a read-only file, answers reads and refuses every payment), as `/healthz`
    tells it: what failed by its type, and the database's reason when it is unavailable (its
    first line, without the URL's password); paywire's own errors by their code (`ledger_busy`)
    and message, which say what to do, rather than the driver's class."""
    def failed(exc: Exception) -> dict[str, Any]:
        if isinstance(exc, PaywireError):
            return {"error": exc.code or type(exc).__name__, "reason": exc.message}
        reason = ledger.unavailable(exc)
        return {"error": type(exc).__name__, **({"reason": reason} if reason else {})}

    try:
        version = ledger.schema_version()
    except Exception as exc:  # noqa: BLE001 - reported as not ready, never raised
        return {"reachable": False, **failed(exc)}
    try:
        ledger.check_writes()
    except Exception as exc:  # noqa: BLE001 - as above
        return {"reachable": True, "schema_version": version, "writable": False, **failed(exc)}
    return {"reachable": True, "schema_version": version, "writable": True}


async def _answer(send: Send, status: int, body: bytes, content_type: str = "application/json",
                  extra: list[tuple[bytes, bytes]] | None = None) -> None:
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode()),
                            *(extra or [])]})
    await send({"type": "http.response.body", "body": body})


def serve_app(service: PaymentService, *, janitor: Janitor | None, metrics: Metrics, webhooks: bool = True,
              prefix: str = "/webhooks", max_body: int = MAX_BODY, stale_after: float = 300.0,
              max_in_hand: int | None = None) -> ASGIApp:
    """The application; `janitor` (None: none runs here) starts at startup and is told to stop
    at the lifespan's shutdown, which the server runs once it has waited for the requests in
    flight; the threads that run the ledger work of webhooks and `/healthz` end then too, with
    their ledger connections.

    `/healthz` is a readiness check: 200 when the ledger answers and takes writes (within
    `LEDGER_WAIT` seconds) and the Janitor is running and has made progress (begun a pass or a
    payment) within `stale_after` seconds and the webhook endpoint has room for a delivery (fewer
    than `max_in_hand` in hand: see `webhook_asgi`; at the bound it refuses every one, while the
    ledger may still answer the check), 503 otherwise, with the details as JSON (why the ledger is
    not ready, the last pass's age, the deliveries in hand among them).
    """
    metrics.label_methods(service.gateway)  # the webhook counter's method labels: this service's codes
    hooks = webhook_asgi(service, prefix=prefix, max_body=max_body, max_in_hand=max_in_hand,
                         observe=lambda method, status: metrics.webhook(method, status)) if webhooks else None
    if hooks is not None:
        metrics.watch_in_hand(hooks)

    # One daemon thread of its own, which keeps its connection between checks: the loop's
    # executor would keep the server from exiting after SIGTERM while the database never answers.
    asker = DaemonPool(1, name="paywire-health")
    probe: list[tuple[asyncio.AbstractEventLoop, float, asyncio.Future[dict[str, Any]]]] = []  # the one in flight

    async def ledger_state() -> dict[str, Any]:
        """The ledger's state (`_ledger_check`), asked in one thread at a time: a database that
        stops answering (a network dropping its packets) would hold every check's thread for
        good. A check waits for the question in flight, `LEDGER_WAIT` seconds after it was asked
        at most."""
        loop = asyncio.get_running_loop()
        if not probe or probe[0][0] is not loop or probe[0][2].done():
            probe[:] = [(loop, loop.time(), asker.run(_ledger_check, service.ledger))]
        _, asked, future = probe[0]
        try:
            return await asyncio.wait_for(asyncio.shield(future), max(0.0, asked + LEDGER_WAIT - loop.time()))
        except TimeoutError:
            return {"reachable": False, "error": "no_answer"}

    async def health() -> tuple[int, dict[str, Any]]:
        body: dict[str, Any] = {"ledger": await ledger_state()}
        ok = bool(body["ledger"]["reachable"] and body["ledger"]["writable"])
        if janitor is not None:
            age, idle = janitor.last_pass_age(), janitor.idle_for()
            skew = janitor.last_pass.clock_skew if janitor.last_pass is not None else None
            body["janitor"] = {"running": janitor.running, "last_pass_age_seconds": age, "idle_seconds": idle,
                               "clock_skew_seconds": skew}
            ok = ok and janitor.running and (idle is None or idle <= stale_after)
        if hooks is not None:
            body["webhooks"] = {"in_hand": hooks.in_hand, "max_in_hand": hooks.max_in_hand}
            ok = ok and hooks.in_hand < hooks.max_in_hand
        body["status"] = "ok" if ok else "unhealthy"
        return (200 if ok else 503), body

    async def app(scope: Any, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while True:
                message = await receive()
                if message["type"] == "lifespan.startup":
                    if janitor is not None:
                        janitor.start()
                    await send({"type": "lifespan.startup.complete"})
                elif message["type"] == "lifespan.shutdown":
                    if janitor is not None:  # stops between two payments; joined after the server stops
                        janitor.stopping.set()
                    asker.close()  # the threads end, and their ledger connections with them
                    if hooks is not None:
                        hooks.close()
                    await send({"type": "lifespan.shutdown.complete"})
                    return
        path, verb = scope.get("path", ""), scope.get("method", "GET")
        if scope["type"] == "http" and path in ("/healthz", "/metrics"):
            if verb not in ("GET", "HEAD"):
                await _answer(send, 405, b'{"error":"method_not_allowed"}', extra=[(b"allow", b"GET, HEAD")])
            elif path == "/healthz":
                status, body = await health()
                await _answer(send, status, json.dumps(body).encode())
            else:
                await _answer(send, 200, metrics.exposition(), CONTENT_TYPE)
            return
        if hooks is None:
            await _answer(send, 404, b'{"error":"not_found"}')
            return
        await hooks(scope, receive, send)

    return app
