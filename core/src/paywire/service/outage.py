"""The ledger's database out of reach or refusing writes, told as `LedgerUnavailable`.

`Ledger.unavailable()` tells the driver's errors that mean it from faults. Wherever a call sent
nothing (a read, a replay of a recorded operation, a webhook delivery not stored) the payment
service raises `LedgerUnavailable` for them, saying what became of the call, so that a caller
tells "nothing happened: try again later" from a bug. Once a call's request was sent, the
service raises `OutcomeUnknown` instead, never this.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TYPE_CHECKING, Concatenate, ParamSpec, Protocol, TypeVar

from paywire.errors import LedgerUnavailable

if TYPE_CHECKING:
    from paywire.ledger.interface import Ledger

__all__ = ["reads", "unavailable"]

P = ParamSpec("P")
R = TypeVar("R")


class _OnLedger(Protocol):
    ledger: Ledger


Owner = TypeVar("Owner", bound=_OnLedger)


def unavailable(ledger: Ledger, exc: BaseException, said: str) -> LedgerUnavailable | None:
    """`exc` as the `LedgerUnavailable` it is, `said` telling what became of the call (what was
    not done, and what to do); None when it is not the database being unavailable (a fault to
    look into, or one of paywire's own errors). One raised by a call within is told again, for
    the call the caller made, with the driver's error as its cause."""
    cause = exc.__cause__ if isinstance(exc, LedgerUnavailable) and exc.__cause__ is not None else exc
    reason = ledger.unavailable(cause)
    if reason is None:
        return None
    error = LedgerUnavailable(f"the ledger's database is unavailable ({reason}); {said}", code="ledger_unavailable")
    error.__cause__ = cause
    return error


def reads(said: str) -> Callable[[Callable[Concatenate[Owner, P], R]], Callable[Concatenate[Owner, P], R]]:
    """A method of an object with a `ledger` that sends nothing, raising `LedgerUnavailable`
    (`said`) for the database being unavailable, and any other error as it is."""
    def decorate(method: Callable[Concatenate[Owner, P], R]) -> Callable[Concatenate[Owner, P], R]:
        @functools.wraps(method)
        def read(self: Owner, /, *args: P.args, **kwargs: P.kwargs) -> R:
            try:
                return method(self, *args, **kwargs)
            except Exception as exc:
                error = unavailable(self.ledger, exc, said)
                if error is None:
                    raise
                raise error from error.__cause__
        return read
    return decorate
