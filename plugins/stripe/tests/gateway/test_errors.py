"""Every kind of Stripe failure, caused at the emulator over loopback HTTP, becomes its typed error."""

from __future__ import annotations

import json
import threading
from typing import Any

import pytest

from paywire import (
    AuthenticationError,
    Declined,
    IdempotencyConflict,
    InvalidRequest,
    Money,
    OutcomeUnknown,
    PaywireError,
    ProviderState,
    ProviderUnavailable,
    RateLimited,
    Response,
    Result,
    Retry,
    Subject,
    TransportError,
    hookimpl,
)
from paywire.service.outcome import is_unknown
from paywire.testing.emulator import Fault
from paywire.testing.ports import refusing_port
from paywire_stripe.emulator import StripeEmulator


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


@pytest.mark.parametrize("card, code, decline_code", [
    ("pm_card_chargeDeclined", "card_declined", "generic_decline"),
    ("pm_card_chargeDeclinedInsufficientFunds", "card_declined", "insufficient_funds"),
    ("pm_card_chargeDeclinedLostCard", "card_declined", "lost_card"),
    ("pm_card_chargeDeclinedStolenCard", "card_declined", "stolen_card"),
    ("pm_card_chargeDeclinedExpiredCard", "expired_card", "expired_card"),
    ("pm_card_chargeDeclinedIncorrectCvc", "incorrect_cvc", "incorrect_cvc"),
    ("pm_card_chargeDeclinedProcessingError", "processing_error", "processing_error"),
])
def test_a_card_error_is_declined_with_stripes_codes(stripe: Any, card: str, code: str, decline_code: str) -> None:
    with pytest.raises(Declined) as declined:
        stripe.authorize(eur("10.00"), card)
    error = declined.value
    assert (error.code, error.decline_code, error.status, error.provider) == (code, decline_code, 402, "stripe")
    assert not error.retryable and error.may_have_been_sent
    assert error.customer_message == error.message  # Stripe writes card messages for the buyer
    assert error.debug_id and error.debug_id.startswith("req_")
    assert error.details["type"] == "card_error" and error.details["payment_intent"].startswith("pi_")


def test_an_unknown_reference_is_an_invalid_request_naming_the_param(stripe: Any) -> None:
    with pytest.raises(InvalidRequest) as refused:
        stripe.run("capture", stripe.on("pi_doesnotexist0001", eur("1.00")))
    assert (refused.value.code, refused.value.param, refused.value.retryable) == ("resource_missing", "intent", False)


def test_an_amount_below_stripes_minimum_is_an_invalid_request_on_amount(stripe: Any) -> None:
    with pytest.raises(InvalidRequest) as refused:
        stripe.authorize(eur("0.10"))
    assert (refused.value.code, refused.value.param) == ("amount_too_small", "amount")


def test_a_currency_stripe_lacks_is_refused_before_sending(stripe: Any) -> None:
    with pytest.raises(InvalidRequest) as refused:
        stripe.authorize(Money.of("10.000", "IQD"))
    assert refused.value.code == "currency_not_supported" and stripe.sent() == []


def test_a_wrong_key_is_a_final_authentication_error_that_never_shows_the_key(
    gateway_at: Any, webhook_secret: str
) -> None:
    key = "sk_test_wrong_0123456789abcdef"
    with StripeEmulator(api_key="sk_test_the_right_one_0123456789").serve() as server:
        gateway = gateway_at(server.url, credentials={"secret_key": key, "webhook_secret": webhook_secret})
        with pytest.raises(AuthenticationError) as refused:
            gateway.execute("stripe", "authorize", Subject(amount=eur("1.00"), source="pm_card_visa",
                                                           idempotency_key="a"))
    assert refused.value.status == 401 and not refused.value.retryable
    shown = " ".join([str(refused.value), repr(refused.value), repr(refused.value.details)])
    assert key not in shown and key[8:] not in shown


def test_a_key_reused_on_another_endpoint_is_an_idempotency_conflict(stripe: Any) -> None:
    authorized = stripe.authorize(eur("10.00"), idempotency_key="shared-key")
    with pytest.raises(IdempotencyConflict) as conflict:
        stripe.run("capture", stripe.on(authorized.reference, idempotency_key="shared-key"))
    assert (conflict.value.code, conflict.value.retryable) == ("idempotency_error", False)


def test_a_duplicate_still_in_flight_is_a_retryable_idempotency_conflict(stripe: Any) -> None:
    """The first request is held at the emulator after it claimed its key and was applied; the
    duplicate meets the key in use. It must stay unknown (the first was applied), and its retry
    with the key, once the first is answered, replays the one payment."""
    subject = stripe.payment(eur("10.00"))
    stripe.app.inject(Fault(kind="hold", contains=subject.idempotency_key))
    outcomes: list[Any] = []
    first = threading.Thread(target=lambda: outcomes.append(stripe.run("authorize", subject)))
    first.start()
    try:
        assert stripe.app.wait_until_held()
        with pytest.raises(IdempotencyConflict) as in_flight:
            stripe.run("authorize", subject)
    finally:
        stripe.app.release_held()
        first.join()
    assert (in_flight.value.code, in_flight.value.status, in_flight.value.retryable) == (
        "idempotency_key_in_use", 409, True)
    assert in_flight.value.details["type"] == "idempotency_error" and is_unknown(in_flight.value)
    assert stripe.run("authorize", subject).reference == outcomes[0].reference
    assert len(stripe.app.store.payment_intents) == 1


@pytest.mark.parametrize("code", ["idempotency_key_in_use", None])
def test_a_key_in_use_is_unknown_and_retryable_without_stripe_should_retry(stripe: Any, code: str | None) -> None:
    """Stripe-Should-Retry is optional; a key in use means the same with or without it (Stripe's
    409 `idempotency_error`, its code or not)."""
    error = {"type": "idempotency_error", "message": "There is currently another in-progress request using this "
             "Idempotent Key.", **({"code": code} if code else {})}
    answer = Response(409, {"content-type": "application/json"}, json.dumps({"error": error}).encode())
    with stripe.recorder.answering(answer), pytest.raises(IdempotencyConflict) as in_flight:
        stripe.authorize(eur("10.00"))
    assert in_flight.value.retryable and is_unknown(in_flight.value)


def test_a_rate_limit_is_retryable_and_keeps_retry_after(stripe: Any) -> None:
    stripe.app.inject(Fault(kind="status", status=429, retry_after=3))
    with pytest.raises(RateLimited) as limited:
        stripe.authorize(eur("10.00"))
    assert (limited.value.code, limited.value.retry_after, limited.value.retryable) == ("rate_limit", 3.0, True)


@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_server_error_is_a_retryable_provider_unavailable(stripe: Any, status: int) -> None:
    stripe.app.inject(Fault(kind="status", status=status))
    with pytest.raises(ProviderUnavailable) as failed:
        stripe.authorize(eur("10.00"))
    assert (failed.value.code, failed.value.status, failed.value.retryable) == ("api_error", status, True)
    assert stripe.app.store.payment_intents == {}


@pytest.mark.parametrize("status, header, expected", [(500, "false", False), (400, "true", True)])
def test_stripe_should_retry_decides_retryable(stripe: Any, status: int, header: str, expected: bool) -> None:
    body = b'{"error": {"type": "api_error", "message": "x"}}' if status == 500 else (
        b'{"error": {"type": "invalid_request_error", "code": "lock_timeout", "message": "x"}}')
    answer = Response(status, {"content-type": "application/json", "stripe-should-retry": header}, body)
    with stripe.recorder.answering(answer), pytest.raises(PaywireError) as failed:
        stripe.authorize(eur("10.00"))
    assert failed.value.retryable is expected


def test_the_retry_policy_resends_a_server_error_with_the_same_key_once_applied(
    gateway_at: Any, server: Any, app: Any, recorder: Any
) -> None:
    gateway = gateway_at(server.url, retry=Retry(total=2, backoff_factor=0))
    app.inject(Fault(kind="status", status=503))
    result = gateway.execute("stripe", "authorize", Subject(amount=eur("7.00"), source="pm_card_visa",
                                                            idempotency_key="retried-1"))
    assert result.state == ProviderState.AUTHORIZED and len(app.store.payment_intents) == 1
    assert [record.transfer.idempotency_key for record in recorder.sent] == ["retried-1", "retried-1"]


def test_a_dropped_answer_is_outcome_unknown_and_the_payment_is_found_by_its_key(stripe: Any) -> None:
    subject = stripe.payment(eur("11.00"))
    stripe.app.inject(Fault(kind="drop_after", path=r"^/v1/payment_intents$"))
    with pytest.raises(OutcomeUnknown) as lost:
        stripe.run("authorize", subject)
    assert lost.value.may_have_been_sent and lost.value.retryable
    found = stripe.run("fetch", Subject(idempotency_key=subject.idempotency_key, order=subject.order))
    assert (found.state, found.authorized) == (ProviderState.AUTHORIZED, eur("11.00"))
    assert stripe.run("authorize", subject).reference == found.reference  # resending replays, no second intent
    assert len(stripe.app.store.payment_intents) == 1


def test_an_answer_slower_than_the_read_timeout_is_outcome_unknown(gateway_at: Any, server: Any, app: Any) -> None:
    """The answer is held at the emulator (applied, not sent) until the read timed out: however
    slow this process, the read cannot find it waiting."""
    gateway = gateway_at(server.url, read_timeout=0.2)
    app.inject(Fault(kind="hold", contains="slow-1"))
    try:
        with pytest.raises(OutcomeUnknown):
            gateway.execute("stripe", "authorize", Subject(amount=eur("7.00"), source="pm_card_visa",
                                                           idempotency_key="slow-1"))
    finally:
        app.clear_faults()


def test_no_listener_is_a_transport_error_with_nothing_sent(gateway_at: Any) -> None:
    with refusing_port() as port:
        gateway = gateway_at(f"http://127.0.0.1:{port}")
        with pytest.raises(TransportError) as failed:
            gateway.execute("stripe", "authorize", Subject(amount=eur("7.00"), source="pm_card_visa"))
    assert not isinstance(failed.value, OutcomeUnknown) and not failed.value.may_have_been_sent


@pytest.mark.parametrize("status, body, expected", [
    (502, b"<html>Bad Gateway</html>", ProviderUnavailable),
    (400, b"not json", InvalidRequest),
    (200, b"<html>a proxy page</html>", OutcomeUnknown),
    (200, b'{"object": "customer", "id": "cus_1"}', OutcomeUnknown),
    (200, b'{"object": "payment_intent", "id": "pi_1"}', OutcomeUnknown),
])
def test_answers_that_are_not_stripes_still_map_to_typed_errors(
    stripe: Any, status: int, body: bytes, expected: type[PaywireError]
) -> None:
    with stripe.recorder.answering(Response(status, {"content-type": "text/html"}, body)), pytest.raises(expected):
        stripe.authorize(eur("10.00"))


@pytest.mark.parametrize("status, header", [(402, "true"), (402, "false"), (402, None)])
def test_a_decline_is_never_retryable_whatever_stripe_should_retry_says(
    stripe: Any, status: int, header: str | None
) -> None:
    """A retry under the same key replays the decline, and a new key is a new payment attempt, not
    a retry: a `card_error` is final even when Stripe's header suggests trying again."""
    body = (b'{"error": {"type": "card_error", "code": "processing_error", "decline_code": "processing_error", '
            b'"message": "An error occurred while processing your card. Try again in a little bit."}}')
    headers = {"content-type": "application/json", **({"stripe-should-retry": header} if header else {})}
    with stripe.recorder.answering(Response(status, headers, body)), pytest.raises(Declined) as declined:
        stripe.authorize(eur("10.00"))
    assert (declined.value.retryable, declined.value.decline_code) == (False, "processing_error")


class RefuseEverything:
    """A shop's answer policy (the `validate_response` hook's documented use: a CVC or fraud
    check) that refuses every Stripe answer of `command`."""

    def __init__(self, command: str) -> None:
        self.command = command

    @hookimpl
    def validate_response(self, command: str, response: Response) -> Result | None:
        return Result.failure("the shop's policy refuses this answer", "policy_refused") if command == self.command else None


@pytest.mark.parametrize("command", ["authorize", "sale", "refund"])
def test_a_success_the_shops_validator_refuses_is_unknown_never_a_definite_failure(stripe: Any, command: str) -> None:
    """Stripe applied the request (the money is held or moved): a refusal of its answer by another
    validator is no evidence that it did not, so the outcome is unknown, never failed."""
    paid = stripe.sale(eur("10.00")) if command == "refund" else None
    stripe.gateway.plugins.register(RefuseEverything(command), name="policy")
    subject = stripe.on(paid.reference, eur("4.00")) if paid is not None else stripe.payment(eur("10.00"))
    with pytest.raises(PaywireError) as refused:
        stripe.run(command, subject)
    assert is_unknown(refused.value), f"{refused.value!r} is recorded failed although Stripe applied it"
    assert refused.value.code == "policy_refused"


def test_a_success_is_never_sent_again_whatever_stripe_should_retry_says(
    gateway_at: Any, server: Any, recorder: Any,
) -> None:
    """`Stripe-Should-Retry` is Stripe's word on an error; on a success (a proxy's header, a
    misread) it must not make the gateway send the request again."""
    import json

    gateway = gateway_at(server.url, retry=Retry(total=3, backoff_factor=0))
    paid = gateway.execute("stripe", "sale", Subject(amount=eur("10.00"), source="pm_card_visa",
                                                     idempotency_key="should-retry-sale"))
    body = json.dumps({"id": "re_should_retry_1", "object": "refund", "amount": 400, "currency": "eur",
                       "status": "succeeded", "payment_intent": paid.reference, "charge": None,
                       "metadata": {}}).encode()
    answer = Response(200, {"content-type": "application/json", "stripe-should-retry": "true"}, body)
    before = len(recorder.sent)
    with recorder.answering(answer):
        result = gateway.execute("stripe", "refund", Subject(reference=paid.reference, amount=eur("4.00"),
                                                             idempotency_key="should-retry-refund"))
    assert result.reference == "re_should_retry_1"
    assert [record.command for record in recorder.since(before)] == ["refund"]
