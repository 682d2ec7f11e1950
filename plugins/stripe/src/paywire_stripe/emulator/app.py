"""`StripeEmulator`: the HTTP face of the emulator, on paywire's emulator base.

Every `/v1/` request goes through the same steps as at Stripe: authentication, API version,
idempotency (replay with `Idempotent-Replayed: true`, 400 `idempotency_error` for a key reused
with other parameters or on another endpoint, 409 `idempotency_error` `idempotency_key_in_use` while
the first request is still running: a held request, see `hold_point`, keeps its key running),
parameter validation against the endpoint's table, then the operation under the emulator's lock.
Responses carry `Request-Id`, `Stripe-Version` and, on errors where Stripe sends it,
`Stripe-Should-Retry`.

Idempotency follows Stripe's rule that a result is stored once the endpoint began executing:
parameter errors, authentication failures and injected error statuses (the request never ran)
are not stored; declines and state errors are. A `drop_after` or `status_after` fault runs the
operation and stores its result before dropping the connection or answering the injected status
(in Stripe's error shape: a 5xx is an `api_error`), so retrying with the same key replays the
real result, as Stripe does when a load balancer's 502/504 hid it; `fail_after_executing` is Stripe's
own 500 after the operation, which Stripe stores under the key and replays like any other answer.

What Stripe decides later (a bank debit in `processing`, a `pending` refund, a `refundFail`
card's refund) waits for `settle(id, succeed=None)` or `POST /_paywire/stripe/settle`
(`{"id": "pi_..." | "re_...", "succeed": true | false | null}`); the events it makes are
delivered, signed, to the webhook URL like every other. What a cardholder does through their bank
waits for `dispute(id)` and `close_dispute(dp, won)` (see `disputes`).
"""

from __future__ import annotations

import copy
import json
import re
import secrets
import threading
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urlsplit

import attrs

from paywire.testing.emulator import EmulatorApp, EmulatorRequest, EmulatorServer, Fault, Reply
from paywire_stripe.emulator import auth, disputes, events, payment_intents, refunds
from paywire_stripe.emulator.errors import StripeError, invalid_request
from paywire_stripe.emulator.replies import error_reply
from paywire_stripe.emulator.routes import StripeRoutes
from paywire_stripe.emulator.store import Context, Store, StripeObject

__all__ = ["DEFAULT_API_VERSION", "StripeEmulator"]

DEFAULT_API_VERSION = "2023-08-16"
_VERSION = re.compile(r"\d{4}-\d{2}-\d{2}(\.[a-z]+)?")
_PREFIX_KINDS = {
    "pi": "payment_intent",
    "ch": "charge",
    "re": "refund",
    "dp": "dispute",
    "cus": "customer",
    "pm": "payment_method",
    "seti": "setup_intent",
    "evt": "event",
    "txn": "balance_transaction",
}


@attrs.define
class _RequestInfo:
    """What the current request's thread knows about it, for events and idempotency."""

    request_id: str | None
    version: str
    host: str
    idempotency_key: str | None = None
    executed: bool = False
    saved: bool = True


def _canonical(pairs: list[tuple[str, str]]) -> str:
    # Parameter order does not matter to Stripe, the order of list items does: sort by key, stably.
    return json.dumps(sorted(pairs, key=lambda pair: pair[0]))


class StripeEmulator(StripeRoutes, EmulatorApp):
    """A stateful local Stripe.

    :param webhook_secret: the endpoint secret events are signed with (`whsec_...`); a random one
        when None (read it back from `webhook_secret`).
    :param api_key: the only key accepted; None accepts any `sk_test_`/`rk_test_` key.
    :param api_version: the account's default API version, used when a request sends no
        `Stripe-Version` and for events.
    :param webhook_url: where signed events are POSTed (None: recorded only).
    :param search_lag: seconds after its creation before search finds an object (Stripe's index
        lags writes); the list endpoints show it at once. Settable later as `search_lag`.
    """

    def __init__(
        self,
        webhook_secret: str | None = None,
        api_key: str | None = None,
        *,
        api_version: str = DEFAULT_API_VERSION,
        webhook_url: str | None = None,
        clock: Callable[[], float] = time.time,
        search_lag: float = 0.0,
    ) -> None:
        super().__init__()
        self.webhook_secret = webhook_secret or "whsec_" + secrets.token_hex(24)
        self._api_key = api_key
        self.api_version = api_version
        self.webhook_url = webhook_url
        self.store = Store(clock, search_lag)
        self.internal_errors: list[str] = []
        self._local = threading.local()
        self._idempotency_endpoints: dict[tuple[str, str], str] = {}
        self._failing_after: list[list[Any]] = []  # [Fault, remaining], see `fail_after_executing`
        self._deliveries = events.Deliveries(self._prepare_delivery, self._record_delivery)

    def __repr__(self) -> str:
        return f"StripeEmulator(api_version={self.api_version!r}, webhook_url={self.webhook_url!r})"

    @property
    def search_lag(self) -> float:
        """Seconds after its creation before search finds an object (see `search`)."""
        return self.store.search_lag

    @search_lag.setter
    def search_lag(self, seconds: float) -> None:
        with self.lock:
            self.store.search_lag = seconds

    # -- serving -------------------------------------------------------------------------------------
    def serve(self, host: str = "127.0.0.1", port: int = 0, ssl_context: Any = None) -> EmulatorServer:
        """An `EmulatorServer` for this app on loopback (a free port by default), not yet started."""
        return EmulatorServer(self, host, port, ssl_context=ssl_context)

    # -- test helpers --------------------------------------------------------------------------------
    def get(self, object_id: str) -> StripeObject:
        """A copy of any stored object by id (`pi_...`, `ch_...`, `evt_...`, ...)."""
        with self.lock:
            kind = _PREFIX_KINDS.get(object_id.split("_")[0])
            found = self.store.collection(kind).get(object_id) if kind else None
            if found is None:
                raise KeyError(object_id)
            return copy.deepcopy(found)

    def events_of_type(self, event_type: str) -> list[StripeObject]:
        with self.lock:
            return [copy.deepcopy(e) for e in self.store.events.values() if e["type"] == event_type]

    def signed_event(
        self, event: str | Mapping[str, Any], timestamp: int | None = None
    ) -> tuple[bytes, dict[str, str]]:
        """The exact body and headers a delivery of `event` (an event or its id) would carry now."""
        with self.lock:
            stored = self.store.events[event if isinstance(event, str) else event["id"]]
            body = events.encode_event(stored)
        return body, events.signed_headers(self.webhook_secret, body, timestamp)

    def wait_for_webhooks(self, timeout: float = 5.0) -> bool:
        """Wait until every event so far was delivered (or failed to be); False on timeout."""
        return self._deliveries.wait(timeout)

    def redeliver(self, event_id: str) -> None:
        with self.lock:
            self.store.get("event", event_id, "id")
        self._deliveries.put(event_id)

    def deliver_webhook(self, body: bytes, headers: Mapping[str, str]) -> None:
        """Queue an already-signed body for the webhook URL (kept in order with events)."""
        self._deliveries.put((body, dict(headers)))

    def fail_after_executing(self, path: str | None = None, *, status: int = 500, method: str = "POST",
                             contains: str | None = None, times: int = 1) -> None:
        """Stripe's own server error for the next `times` matching requests, each after it executed.

        The operation takes effect and the answer is an `api_error` of `status` with
        `Stripe-Should-Retry: false`, which Stripe keeps under the request's idempotency key as it
        keeps every answer of an endpoint that began executing, "including 500 errors" (its
        "Idempotent requests" page): a retry with the key gets the same error, and only reading
        the object tells what happened. A `status_after` fault is the other case, a load balancer's
        502/504 hiding the real answer stored under the key.
        """
        with self.lock:
            self._failing_after.append([Fault(kind="status_after", status=status, path=path, method=method,
                                              contains=contains, times=times), times])

    def _fails_after(self, request: EmulatorRequest) -> int | None:
        """The status of a `fail_after_executing` aimed at `request`, taking it (under `lock`)."""
        for entry in self._failing_after:
            fault, remaining = entry
            if remaining > 0 and fault.matches(request.method, request.path, request):
                entry[1] = remaining - 1
                return int(fault.status)
        return None

    def complete_challenge(self, intent_id: str, succeed: bool = True) -> StripeObject:
        """Finish the pending 3-D Secure challenge of a PaymentIntent or SetupIntent, as the buyer would."""
        with self.lock:
            notes = self.store.intent_notes.get(intent_id)
            if notes is None or notes.challenge is None:
                raise ValueError(f"{intent_id} has no pending 3-D Secure challenge")
            challenge = self.store.challenges[notes.challenge]
            self._finish_challenge(challenge, succeed, self._context_for(None))
            return self.get(intent_id)

    def settle(self, object_id: str, succeed: bool | None = None) -> StripeObject:
        """Finish what Stripe decides later: a `processing` PaymentIntent (`pi_...`) or a refund
        (`re_...`). `succeed=None` follows the test method (`pm_usBankAccount_insufficientFunds`
        fails, `pm_card_refundFail`'s refund fails, ...); True or False forces the outcome."""
        with self.lock:
            ctx = self._context_for(None)
            if object_id.startswith("pi_"):
                payment_intents.settle(ctx, self.store.get("payment_intent", object_id, "id"), succeed)
            elif object_id.startswith("re_"):
                refunds.settle(ctx, self.store.get("refund", object_id, "id"), succeed)
            else:
                raise ValueError(f"{object_id} is neither a PaymentIntent nor a refund")
            return self.get(object_id)

    def expire(self, intent_id: str) -> StripeObject:
        """Let an uncaptured authorization lapse, as Stripe does when it is not captured in time: the
        intent is canceled (`cancellation_reason` `automatic`) and `charge.expired` sent."""
        with self.lock:
            payment_intents.expire(self._context_for(None), self.store.get("payment_intent", intent_id, "id"))
            return self.get(intent_id)

    def dispute(self, object_id: str, amount: int | None = None, *, inquiry: bool = False,
                reason: str = "fraudulent") -> StripeObject:
        """The cardholder disputes the captured charge of a PaymentIntent (`pi_...`) or a charge
        (`ch_...`): for `amount` (default: what is not refunded), a chargeback unless `inquiry`."""
        with self.lock:
            if object_id.startswith("pi_"):
                object_id = self.store.get("payment_intent", object_id, "id")["latest_charge"] or ""
            charge = self.store.get("charge", object_id, "id")
            return copy.deepcopy(disputes.open_dispute(self._context_for(None), charge, amount, inquiry, reason))

    def close_dispute(self, dispute_id: str, won: bool) -> StripeObject:
        """The bank decides a dispute (`dp_...`): won gives a chargeback's funds back."""
        with self.lock:
            return copy.deepcopy(disputes.close(self._context_for(None), self.store.get("dispute", dispute_id, "id"), won))

    def _control(self, request: EmulatorRequest) -> Reply:
        if request.path == "/_paywire/stripe/settle" and request.method == "POST":
            fields = request.json() or {}
            try:
                settled = self.settle(str(fields.get("id")), fields.get("succeed"))
            except (KeyError, ValueError, StripeError) as exc:
                return Reply.json(400, {"error": {"message": str(exc)}})
            return Reply.json(200, settled)
        return super()._control(request)

    # -- delivery ------------------------------------------------------------------------------------
    def _emit(self, event_type: str, obj: StripeObject) -> None:
        info: _RequestInfo | None = getattr(self._local, "info", None)
        event = events.build_event(
            self.store,
            event_type,
            obj,
            api_version=self.api_version,
            request_id=info.request_id if info else None,
            idempotency_key=info.idempotency_key if info else None,
            pending_webhooks=1 if self.webhook_url else 0,
        )
        self.store.events[event["id"]] = event
        if self.webhook_url:
            self._deliveries.put(event["id"])

    def _prepare_delivery(self, item: Any) -> tuple[str, bytes, dict[str, str]] | None:
        url = self.webhook_url
        if not url:
            return None
        if isinstance(item, tuple):
            return url, item[0], item[1]
        body, headers = self.signed_event(item)
        return url, body, headers

    def _record_delivery(self, item: Any, status: int | None, body: bytes) -> None:
        with self.lock:
            self.webhook_deliveries.append((status, body))
            if isinstance(item, str) and status is not None and 200 <= status < 300:
                self.store.events[item]["pending_webhooks"] = 0

    # -- request pipeline ----------------------------------------------------------------------------
    def dispatch(self, request: EmulatorRequest) -> tuple[Reply | None, bool]:
        if not request.path.startswith("/v1/"):
            self._local.info = _RequestInfo(None, self.api_version, request.header("host") or "")
            return super().dispatch(request)
        version = request.header("stripe-version") or self.api_version
        info = _RequestInfo(Store.new_id("req", 14), version, request.header("host") or "")
        self._local.info = info
        try:
            auth.authenticate(request.header("authorization"), self._api_key)
            if not _VERSION.fullmatch(version):
                raise invalid_request(f"Invalid Stripe API version: {version}", saved=False)
        except StripeError as error:
            return self._decorate(error_reply(error), info), False
        key = request.header("idempotency-key") if request.method == "POST" else None
        if key is None:
            reply, drop = super().dispatch(request)
            return (self._decorate(reply, info) if reply is not None else None), drop
        info.idempotency_key = key
        return self._idempotent(request, info, key)

    def _idempotent(self, request: EmulatorRequest, info: _RequestInfo, key: str) -> tuple[Reply | None, bool]:
        if len(key) > 255:
            error = invalid_request(
                "The idempotency key provided is too long; it must be at most 255 characters.", saved=False
            )
            return self._decorate(error_reply(error), info), False
        scope = (request.header("stripe-account") or "acct_emulator", key)
        endpoint = f"{request.method} {request.path}"
        state, stored = self.idempotency.begin(scope[0], key, endpoint + "\n" + _canonical(request.form()))
        if state == "replay" and stored is not None:
            headers = {
                **stored.headers,
                "Request-Id": info.request_id or "",
                "Idempotent-Replayed": "true",
                "Original-Request": stored.headers.get("Request-Id", ""),
            }
            return attrs.evolve(stored, headers=headers), False
        if state == "conflict":
            first = self._idempotency_endpoints.get(scope, endpoint)
            if first != endpoint:
                message = (
                    f"Keys for idempotent requests can only be used for the same endpoint they were first used "
                    f"for ('{first}' vs '{endpoint}'). Try using a key other than '{key}' if you meant to "
                    "execute a different request."
                )
            else:
                message = (
                    "Keys for idempotent requests can only be used with the same parameters they were first "
                    f"used with. Try using a key other than '{key}' if you meant to execute a different "
                    "request."
                )
            return self._decorate(error_reply(StripeError(400, "idempotency_error", message)), info), False
        if state == "in_flight":
            error = StripeError(
                409,
                "idempotency_error",
                "There is currently another in-progress request using this Idempotent Key (that probably means you "
                f"submitted twice, and the other request is still going through): {key}. Please try again later.",
                code="idempotency_key_in_use",
                should_retry=True,
            )
            return self._decorate(error_reply(error), info), False
        self._idempotency_endpoints[scope] = endpoint
        try:
            reply, drop = super().dispatch(request)
            self.hold_point(request)  # applied, its key still claimed: a duplicate now gets the 409 above
        except BaseException:
            self.idempotency.abandon(scope[0], key)
            raise
        if reply is None:
            self.idempotency.abandon(scope[0], key)
            return None, drop
        decorated = self._decorate(reply, info)
        if info.executed and info.saved:
            self.idempotency.finish(scope[0], key, decorated)
        else:
            self.idempotency.abandon(scope[0], key)
        return decorated, drop

    def _decorate(self, reply: Reply, info: _RequestInfo) -> Reply:
        headers = {
            **reply.headers,
            "Request-Id": info.request_id or "",
            "Stripe-Version": info.version,
            "Cache-Control": "no-cache, no-store",
        }
        if info.idempotency_key is not None:
            headers["Idempotency-Key"] = info.idempotency_key
        return attrs.evolve(reply, headers=headers)

    def handle(self, request: EmulatorRequest) -> Reply:
        info: _RequestInfo | None = getattr(self._local, "info", None)
        with self.lock:
            if info is not None:
                info.executed, info.saved = True, True
            try:
                reply = super().handle(request)
                failed = self._fails_after(request) if info is None or info.executed else None
                if failed is None:
                    return reply
                # Kept under the key like the answer it replaces (`info.saved` stays as it is).
                return error_reply(StripeError(failed, "api_error", "An unknown error occurred. Please try again "
                                               "later.", should_retry=False))
            except StripeError as error:
                if info is not None:
                    info.saved = error.saved
                return error_reply(error)
            except Exception as exc:  # noqa: BLE001 - an emulator bug: answer Stripe's 500, keep the trace
                self.internal_errors.append(traceback.format_exc())
                if info is not None:
                    info.saved = False
                return error_reply(StripeError(500, "api_error", f"An unknown error occurred ({type(exc).__name__})."))

    def not_found(self, request: EmulatorRequest) -> Reply:
        info: _RequestInfo | None = getattr(self._local, "info", None)
        if info is not None:
            info.executed = False
        return error_reply(
            invalid_request(
                f"Unrecognized request URL ({request.method}: {request.path}). Please see https://stripe.com/docs or we "
                "can help at https://support.stripe.com/.",
                status=404,
                saved=False,
            )
        )

    def fault_reply(self, status: int, headers: Mapping[str, str]) -> Reply:
        if status == 429:
            error = StripeError(
                429,
                "invalid_request_error",
                "Request rate limit exceeded. Learn more about rate limits here https://stripe.com/docs/rate-limits.",
                code="rate_limit",
                headers=headers,
            )
        elif status >= 500:  # Stripe's word: indeterminate, retry with the same key
            error = StripeError(
                status,
                "api_error",
                "An unknown error occurred. Retry the request with the same idempotency key to learn its outcome.",
                should_retry=True,
                headers={"Request-Id": Store.new_id("req", 14), **headers},
            )
        elif status == 409:
            error = StripeError(
                409,
                "invalid_request_error",
                "This object cannot be accessed right now because "
                "another API request or Stripe process is currently accessing it. Please try again.",
                code="lock_timeout",
                should_retry=True,
                headers=headers,
            )
        else:
            error = StripeError(status, "invalid_request_error", f"Injected fault: HTTP {status}.", headers=headers)
        return error_reply(error)

    # -- the request context routes use -------------------------------------------------------------
    def _context_for(self, info: _RequestInfo | None) -> Context:
        # The scheme from the serving socket (the base sets `base_url`), the host as the client
        # addressed it, so 3-D Secure links work for a browser even when bound to 0.0.0.0.
        served = urlsplit(self.base_url) if self.base_url else None
        scheme = served.scheme if served else "http"
        host = (info.host if info else "") or (served.netloc if served else "") or "127.0.0.1"
        version = info.version if info and info.version else self.api_version
        return Context(self.store, self._emit, f"{scheme}://{host}", version)

    def _context(self) -> Context:
        return self._context_for(getattr(self._local, "info", None))
