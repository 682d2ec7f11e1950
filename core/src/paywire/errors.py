"""Typed errors with one root, `PaywireError`.

Every error says whether retrying can help (`retryable`) and whether the request may already have
reached the provider (`may_have_been_sent`): the two facts a caller needs to decide between
retrying with the same idempotency key, reconciling, and giving up. Provider codes are kept, never
hidden behind a generic message. Messages never contain secrets.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "AuthenticationError",
    "BuyerActionRequired",
    "ConfigurationError",
    "Declined",
    "IdempotencyConflict",
    "InvalidRequest",
    "LedgerBusy",
    "LedgerUnavailable",
    "OutcomeUnknown",
    "PaywireError",
    "PluginError",
    "ProviderUnavailable",
    "RateLimited",
    "StateError",
    "TransportError",
    "UnsupportedOperation",
    "WebhookVerificationError",
]


class PaywireError(Exception):
    """Root of every paywire error.

    :param message: what went wrong and what to do about it.
    :param provider: the gateway code the error came from, if any.
    :param code: the provider's own error code (or paywire's where there is none).
    :param retryable: whether sending again (with the same idempotency key) may succeed.
    :param may_have_been_sent: whether the request may have taken effect at the provider. For a
        `TransportError` or `ProviderUnavailable` it decides between a failure (False: the
        provider did not and will not apply it) and an unknown outcome (True); the other errors
        are the provider's definite answer and never leave the outcome unknown.
    :param state_conflict: the provider refused because its payment is not in the state the
        request presumes (an authorization that lapsed, or was captured, voided or refunded
        without a word to the ledger yet): what the ledger holds of the payment is behind the
        provider. A plugin's error mapping sets it; the payment service records the refusal and
        then reads the provider for the payment (see `PaymentService`).
    :param capture_closed: a capture refused because the provider's authorization takes no
        further capture, for good (Braintree's partial capture of an authorization a final
        capture closed, which nothing it reports tells): the payment service closes the
        payment's capture, so the next is refused before anything is sent.
    :param reference: the provider's id of what the refused request made nonetheless (a payment
        object a decline leaves behind, which the buyer may still pay); the ledger records it on
        the failed transaction so that the provider's later events about it find the payment.
    """

    retryable: bool = False
    may_have_been_sent: bool = False
    default_customer_message = "The payment could not be processed."
    # Set by the payment service: the ledger records the error is about (see PaymentService).
    payment_id: str | None = None
    transaction_id: str | None = None

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        code: str | None = None,
        retryable: bool | None = None,
        may_have_been_sent: bool | None = None,
        state_conflict: bool = False,
        customer_message: str | None = None,
        debug_id: str | None = None,
        status: int | None = None,
        details: dict[str, Any] | None = None,
        reference: str | None = None,
        capture_closed: bool = False,
    ) -> None:
        # Masked as every log record is: a provider may echo a card number or a credential in its
        # error text, and a refusal may quote the caller's value, and the error travels further
        # (raised to the caller, printed by the command line, shown to the buyer). So are the
        # provider's code, debug id and details, read from the same answer (the code goes into
        # the ledger, and `str` shows it and the debug id).
        from paywire.security import redact  # here: paywire.security imports this module

        message = redact(message)
        super().__init__(message)
        self.message = message
        self.provider = provider
        self.code = redact(code) if code else code
        if retryable is not None:
            self.retryable = retryable
        if may_have_been_sent is not None:
            self.may_have_been_sent = may_have_been_sent
        self.state_conflict = state_conflict
        self.customer_message = redact(customer_message) if customer_message else self.default_customer_message
        self.debug_id = redact(debug_id) if debug_id else debug_id
        self.status = status
        self.details = redact(details) if details else {}
        self.reference = reference
        self.capture_closed = capture_closed

    def __str__(self) -> str:
        parts = [self.message]
        if self.provider:
            parts.append(f"provider={self.provider}")
        if self.code:
            parts.append(f"code={self.code}")
        if self.debug_id:
            parts.append(f"debug_id={self.debug_id}")
        return " | ".join(parts)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, provider={self.provider!r}, code={self.code!r})"


class ConfigurationError(PaywireError):
    """paywire is set up wrongly: a missing credential, an unknown method, an unsafe URL."""


class InvalidRequest(PaywireError):
    """The request is wrong and was refused; nothing was sent or changed. `param` names the field."""

    default_customer_message = "The payment details are not valid."

    def __init__(self, message: str, *, param: str | None = None, **kwargs: Any) -> None:
        from paywire.security import redact

        super().__init__(message, **kwargs)
        self.param = redact(param) if param else param  # a provider's, read from its answer as the code is


class StateError(InvalidRequest):
    """The operation is impossible in the payment's current state (e.g. refund above captured)."""


class UnsupportedOperation(InvalidRequest):
    """The gateway or method does not offer this command or capability."""


class Declined(PaywireError):
    """The provider declined the payment. Not retryable; `decline_code` keeps the provider's reason."""

    may_have_been_sent = True
    default_customer_message = "Your payment was declined. Please use another payment method."

    def __init__(self, message: str, *, decline_code: str | None = None, **kwargs: Any) -> None:
        from paywire.security import redact

        super().__init__(message, **kwargs)
        self.decline_code = redact(decline_code) if decline_code else decline_code


class BuyerActionRequired(PaywireError):
    """The buyer must act (3-D Secure, approval) before the operation can finish."""

    may_have_been_sent = True
    default_customer_message = "Please complete the verification requested by your bank."

    def __init__(self, message: str, *, redirect_url: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.redirect_url = redirect_url


class AuthenticationError(PaywireError):
    """The provider refused the credentials. Fix the configuration; retrying will not help."""


class RateLimited(PaywireError):
    """The provider asked to slow down. Retryable; `retry_after` is in seconds when given."""

    retryable = True

    def __init__(self, message: str, *, retry_after: float | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        self.retry_after = retry_after


class ProviderUnavailable(PaywireError):
    """The provider answered with a failure of its own (5xx, maintenance). Retryable with the same
    idempotency key.

    Its outcome is unknown by default: a 5xx can come after the provider acted (a gateway timeout
    in front of it, a crash after the write), so `may_have_been_sent` is True unless the plugin
    knows from the provider's documentation or answer that the request was not applied (then it
    passes `may_have_been_sent=False` and the ledger records a retryable failure).
    """

    retryable = True
    may_have_been_sent = True


class TransportError(PaywireError):
    """The request could not be completed on the network; see `may_have_been_sent`."""

    retryable = True


class OutcomeUnknown(TransportError):
    """The request may have taken effect but no answer arrived: reconcile, never resend with a new key."""

    may_have_been_sent = True

    @classmethod
    def instead_of(cls, error: PaywireError, why: str, *, status: int | None = None) -> OutcomeUnknown:
        """`error` read as no evidence that the request was not applied (`why` says what makes it
        so): its provider, codes and details kept, and it the cause."""
        unknown = cls(f"{error.message}; {why}", provider=error.provider, code=error.code,
                      status=error.status if status is None else status, debug_id=error.debug_id,
                      details=dict(error.details))
        unknown.__cause__ = error
        return unknown


class LedgerBusy(PaywireError):
    """The ledger could not take a lock in time: another worker held it longer than the database
    lets one wait (PostgreSQL's `lock_timeout` or `statement_timeout`, SQLite's busy timeout), or
    the database broke a deadlock or a serialization conflict by rolling this unit back. Nothing
    of the unit was written; retry the same call. (After a request was sent, the payment service
    raises `OutcomeUnknown` caused by it instead: the request stays open, never failed.)
    """

    retryable = True


class LedgerUnavailable(PaywireError):
    """The ledger's database cannot be reached or refuses writes before anything was sent: a
    connection refused or lost, the server shutting down, starting or out of resources (connection
    slots, disk), a read-only standby after a failover; an SQLite file full, read-only, unopenable
    or failing to read or write. Nothing was sent to the provider by the call: retry the same call
    (the same idempotency key) once the database is back. The payment service raises it too for a
    read that failed so (a payment, a listing, `reconcile()` before it asks the provider), for a
    call under a key whose recorded outcome could not be read back (it names the payment and
    transaction recorded: the operation was made before, and is not made again), and for a
    webhook delivery not stored. (After a request was sent, the payment service raises
    `OutcomeUnknown` caused by it instead: the request stays open, never failed.)
    """

    retryable = True


class IdempotencyConflict(PaywireError):
    """An idempotency key was reused with different parameters, or is still in flight."""


class WebhookVerificationError(PaywireError):
    """A webhook failed verification (signature, timestamp, size or format); nothing was applied."""


class PluginError(PaywireError):
    """A plugin failed to load or broke the hook contract; `plugin` and `distribution` name it."""

    def __init__(
        self, message: str, *, plugin: str | None = None, distribution: str | None = None, **kw: Any
    ) -> None:
        super().__init__(message, **kw)
        self.plugin = plugin
        self.distribution = distribution
