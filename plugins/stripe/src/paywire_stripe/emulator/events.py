"""Events and webhook delivery: Stripe's event objects, signed and POSTed in order.

Every state change the emulator makes is recorded as an event (`GET /v1/events`) shaped as
Stripe's, with a snapshot of the object at that moment. When a webhook URL is configured, one
background thread delivers events in the order they happened, signing each delivery at send time
(`Stripe-Signature: t=...,v1=...`) as Stripe does. A failed delivery is recorded, not retried
(Stripe retries for days; `redeliver` sends one again on demand).
"""

from __future__ import annotations

import json
import queue
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from typing import Any

from paywire_stripe.emulator.store import Store, StripeObject
from paywire_stripe.signature import signature_header

__all__ = ["Deliveries", "build_event", "encode_event", "signed_headers"]

USER_AGENT = "Stripe/1.0 (+https://stripe.com/docs/webhooks)"


def build_event(
    store: Store,
    event_type: str,
    obj: StripeObject,
    *,
    api_version: str,
    request_id: str | None,
    idempotency_key: str | None,
    pending_webhooks: int,
) -> StripeObject:
    """A Stripe event for `obj` as it is now; stored by the caller."""
    return {
        "id": store.new_id("evt"),
        "object": "event",
        "api_version": api_version,
        "created": store.now(),
        "data": {"object": store.render(obj)},
        "livemode": False,
        "pending_webhooks": pending_webhooks,
        "request": {"id": request_id, "idempotency_key": idempotency_key},
        "type": event_type,
    }


def encode_event(event: Mapping[str, Any]) -> bytes:
    """The delivered body: pretty-printed JSON, as Stripe sends it."""
    return json.dumps(event, indent=2).encode("utf-8")


def signed_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json; charset=utf-8",
        "User-Agent": USER_AGENT,
        "Stripe-Signature": signature_header(secret, stamp, body),
    }


class Deliveries:
    """Ordered delivery from one daemon thread, started by the first delivery queued and ending
    once nothing is left to send (the next delivery starts another): an emulator that is done
    leaves no thread waiting for work that never comes.

    :param prepare: turns a queued item into `(url, body, headers)` at send time, or None to skip.
    :param record: receives `(item, status, body)` after each attempt (status None: no answer).
    """

    def __init__(
        self,
        prepare: Callable[[Any], tuple[str, bytes, dict[str, str]] | None],
        record: Callable[[Any, int | None, bytes], None],
        timeout: float = 10.0,
    ) -> None:
        self._prepare = prepare
        self._record = record
        self._timeout = timeout
        self._queue: queue.Queue[Any] = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # one thread at a time: queued with a thread sure to take it
        self.errors: list[str] = []

    def put(self, item: Any) -> None:
        with self._lock:
            self._queue.put(item)
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="stripe-emulator-webhooks", daemon=True)
                self._thread.start()

    def wait(self, timeout: float = 5.0) -> bool:
        """Block until everything queued so far was attempted; False on timeout."""
        deadline = time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not self._queue.all_tasks_done.wait(remaining):
                    return not self._queue.unfinished_tasks
        return True

    def _run(self) -> None:
        while True:
            with self._lock:
                try:
                    item = self._queue.get_nowait()
                except queue.Empty:
                    self._thread = None  # the next put starts another
                    return
            try:
                prepared = self._prepare(item)
                if prepared is not None:
                    url, body, headers = prepared
                    self._record(item, self._send(url, body, headers), body)
            except Exception as exc:  # noqa: BLE001 - a broken receiver must not stop later deliveries
                self.errors.append(f"{type(exc).__name__}: {exc}")
            finally:
                self._queue.task_done()

    def _send(self, url: str, body: bytes, headers: Mapping[str, str]) -> int | None:
        if not url.startswith(("http://", "https://")):
            raise ValueError("the webhook URL must be http:// or https://")
        request = urllib.request.Request(url, data=body, method="POST", headers=dict(headers))  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:  # noqa: S310
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return int(exc.code)
        except OSError:
            return None
