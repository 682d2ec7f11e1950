"""uvicorn's HTTP protocol with a limit on how long a request's head may take to arrive.

uvicorn sets none: a connection that sends nothing, or sends a request's head a byte at a time
(slowloris), or trickles a body the application answered without reading, is held for as long as
its sender keeps it open. Each one costs the process a file descriptor: enough of them, from
anyone who can reach the port, and it can accept no provider's delivery nor open a connection to
its ledger or a provider. Its keep-alive timeout covers only a connection that sends nothing
after a response.
"""

from __future__ import annotations

import asyncio
from typing import Any

__all__ = ["HEADER_TIMEOUT", "with_header_timeout"]

HEADER_TIMEOUT = 10.0  # seconds for a request's head to arrive: a provider sends it at once


def with_header_timeout(timeout: float = HEADER_TIMEOUT, base: type[asyncio.Protocol] | None = None
                        ) -> type[asyncio.Protocol]:
    """A subclass of uvicorn's HTTP protocol (`base`: the one uvicorn picks by default) that closes
    a connection whose next request's head has not arrived whole within `timeout` seconds of its
    opening or of the previous response; a request once begun is never cut by it (the webhook
    endpoint bounds the time its body takes)."""
    if base is None:
        from uvicorn.protocols.http.auto import AutoHTTPProtocol

        base = AutoHTTPProtocol

    class HeaderTimeout(base):  # type: ignore[valid-type,misc]
        _head_timer: asyncio.TimerHandle | None = None
        _head_after: object = None  # the request before the head the timer waits for (None: the first)

        def connection_made(self, transport: Any, *args: Any, **kwargs: Any) -> None:
            super().connection_made(transport, *args, **kwargs)
            self._await_head()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._await_head()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._await_head()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._head_timer is not None:
                self._head_timer.cancel()
                self._head_timer = None
            super().connection_lost(exc)

        def _await_head(self) -> None:
            """Arm the timer when the connection waits for a request's head: none has begun, or the
            last one's response is complete (with its body read or not)."""
            cycle = self.cycle
            waiting = cycle is None or cycle.response_complete
            if not waiting or self.transport is None or self.transport.is_closing():
                return
            if self._head_timer is not None and self._head_after is cycle:
                return  # already counting for this head
            if self._head_timer is not None:
                self._head_timer.cancel()
            self._head_after = cycle
            self._head_timer = asyncio.get_running_loop().call_later(timeout, self._head_late, cycle)

        def _head_late(self, after: object) -> None:
            self._head_timer = None
            if self.cycle is after and not self.transport.is_closing():  # no request began since
                self.transport.close()

    HeaderTimeout.__name__ = HeaderTimeout.__qualname__ = f"HeaderTimeout{base.__name__}"
    return HeaderTimeout
