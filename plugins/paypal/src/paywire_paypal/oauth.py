"""PayPal's OAuth access token: fetched by a gateway command, cached, refreshed once after a 401.

Every PayPal call carries `Authorization: Bearer <token>`. The token comes from
`POST /v1/oauth2/token` (HTTP Basic with the client id and secret, `grant_type=client_credentials`),
run as the pool's `token` command through the ordinary pipeline, so retries, hooks and error
mapping apply to it as to any call. Its handler keeps the token until shortly before it expires
(PayPal hands back the same token until then; a renewal that gets it back keeps it until PayPal
refuses it, rather than asking again on every call).

`BearerToken` is the `Auth` of every other command. Its headers are computed when a request is
sent, so the first request fetches the token (once, under a lock, however many threads ask), and
when PayPal answers 401 the pipeline calls `refresh()`: the first thread to get there fetches a new
token, threads that sent the same stale token meanwhile reuse it, and a token PayPal hands back
unchanged means retrying cannot help. The token is a `Secret`: it never shows in a repr, a log
record or an error.
"""

from __future__ import annotations

import contextlib
import contextvars
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from paywire import (
    BasicAuth,
    CommandContext,
    ConfigurationError,
    GatewayCommand,
    ProviderUnavailable,
    Response,
    Result,
    Secret,
    Subject,
    TransportError,
)
from paywire_paypal.errors import UNREADABLE

__all__ = ["AccessTokens", "BearerToken", "client_auth", "client_credentials", "has_token"]

_MAX_MARGIN = 60.0  # refresh this many seconds (at most a tenth of the lifetime) before expiry


def client_credentials(subject: Subject) -> dict[str, str]:
    """The token request's form body."""
    return {"grant_type": "client_credentials"}


def has_token(subject: Subject, response: Response) -> Result:
    """A successful token answer holds the token and its lifetime in seconds."""
    data = response.data
    if response.ok and isinstance(data, Mapping) and (
        not isinstance(data.get("access_token"), str) or not data["access_token"]
        or not isinstance(data.get("expires_in"), (int, float))
    ):
        return Result.failure("PayPal's token endpoint answered without an access token and its lifetime",
                              UNREADABLE)
    return Result.success()


def client_auth(client_id: Secret, client_secret: Secret) -> BasicAuth:
    """HTTP Basic with the app's client id and secret, for the token endpoint only."""
    return BasicAuth(client_id.reveal(), client_secret)


class AccessTokens:
    """One gateway's access token, the command that fetches it, and the lock that serialises fetches.

    :param clock: monotonic seconds (tests pass their own).
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self._token: Secret | None = None
        self._expires_at = 0.0
        self._generation = 0
        self._command: GatewayCommand | None = None
        self._context: CommandContext | None = None
        self._bound_to: CommandContext | None = None
        # The generation of the token this command's requests sent, so refresh() can tell a stale
        # one; and whether a command of the pool is running in this thread (only then is a token fetched).
        self._sent: contextvars.ContextVar[int] = contextvars.ContextVar("paypal_token_generation", default=-1)
        self._running: contextvars.ContextVar[bool] = contextvars.ContextVar("paypal_command_running", default=False)

    def __repr__(self) -> str:
        return f"AccessTokens(cached={self._valid()})"

    def use(self, command: GatewayCommand) -> None:
        """The `token` command this cache fetches through (its handler is `self.store`)."""
        self._command = command

    @contextlib.contextmanager
    def running(self, context: CommandContext) -> Iterator[None]:
        """While a command of the pool runs: the token command runs in its context when needed,
        and none of its requests has carried a token yet (a 401 to a request that carried none is
        no token's fault)."""
        if context is not self._bound_to:
            self._context, self._bound_to = context.for_command("token"), context
        sent, running = self._sent.set(-1), self._running.set(True)
        try:
            yield
        finally:
            self._running.reset(running)
            self._sent.reset(sent)

    def for_request(self) -> Secret | None:
        """The token to send: fetched if needed while a command runs; outside one (a transfer
        inspected after its command ran) only the token held, never a fetch as a side effect."""
        return self.current() if self._running.get() else self._token

    # -- the token command's handler -----------------------------------------------------------
    def store(self, subject: Subject, response: Response) -> Mapping[str, Any]:
        """Cache the token of a successful token answer; the result keeps neither token nor body."""
        data = response.data  # checked by `has_token`
        token, lifetime = Secret(data["access_token"]), data["expires_in"]
        if token == self._token:
            # Renewed ahead of time, PayPal handed back the same token: it gives a new one only
            # once this one has expired, so keep it until PayPal refuses it (401, then refresh).
            self._expires_at = float("inf")
        else:
            self._expires_at = self._clock() + lifetime - min(_MAX_MARGIN, lifetime / 10)
        self._token = token
        self._generation += 1
        return {"reference": data.get("app_id"), "raw": None}

    # -- what BearerToken asks -----------------------------------------------------------------
    def current(self) -> Secret:
        """A valid token, fetched first when none is cached or it is about to expire."""
        if not self._valid():
            with self._lock:
                if not self._valid():
                    self._fetch()
        token, generation = self._token, self._generation
        assert token is not None
        self._sent.set(generation)
        return token

    def refresh(self) -> bool:
        """After a 401: a new token (one fetch for all threads that sent the stale one); False when
        PayPal hands back the same token, so sending again cannot help."""
        sent = self._sent.get()
        if sent < 0:
            return False  # the request carried no token of ours: a new one cannot help
        with self._lock:
            if self._generation != sent and self._valid():
                return True  # another thread refreshed since this request took its token
            stale = self._token
            self._token = None
            self._fetch()
            return self._token != stale

    def _valid(self) -> bool:
        return self._token is not None and self._clock() < self._expires_at

    def _fetch(self) -> None:
        if self._command is None or self._context is None:
            raise ConfigurationError("PayPal's access token is fetched while a PayPal command runs; run one first",
                                     provider="paypal")
        try:
            self._command.execute(Subject(), self._context)
        except TransportError as error:
            # Fetching the token failed on the network: the request it was for never left.
            raise TransportError(
                f"could not get a PayPal access token ({error.message}); the request was not sent",
                provider="paypal", code=error.code, may_have_been_sent=False, retryable=error.retryable,
            ) from error
        except ProviderUnavailable as error:
            # The token endpoint failed: whatever it did, the payment request was never sent.
            raise ProviderUnavailable(
                f"could not get a PayPal access token ({error.message}); the request was not sent",
                provider="paypal", code=error.code, status=error.status, debug_id=error.debug_id,
                may_have_been_sent=False,
            ) from error


class BearerToken:
    """The `Auth` of PayPal's API calls: `Authorization: Bearer <token>` from the shared cache."""

    def __init__(self, tokens: AccessTokens) -> None:
        self._tokens = tokens

    def __repr__(self) -> str:
        return "BearerToken()"

    def headers(self) -> Mapping[str, str]:
        """The bearer header; outside a command run (a transfer inspected afterwards) it shows the
        cached token, or none, rather than fetching one as a side effect."""
        token = self._tokens.for_request()
        return {"Authorization": f"Bearer {token.reveal()}"} if token is not None else {}

    def refresh(self) -> bool:
        return self._tokens.refresh()
