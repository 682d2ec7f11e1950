"""PayPal's error answers become exactly one typed error each, with the issue, debug id and retryability."""

from __future__ import annotations

import json
import threading

import attrs
import pytest

from paywire import (
    AuthenticationError,
    BuyerActionRequired,
    Declined,
    IdempotencyConflict,
    InvalidRequest,
    Money,
    OutcomeUnknown,
    PaywireError,
    ProviderUnavailable,
    RateLimited,
    Response,
    Result,
    Retry,
    StateError,
    Subject,
    TransportError,
    hookimpl,
)
from paywire.service.outcome import is_unknown
from paywire.testing.emulator import Fault
from paywire.testing.ports import refusing_port
from paywire_paypal.errors import COMPLETION_ERRORS, ERRORS
from paywire_paypal.validators import answered

from .conftest import holding_its_token

EUR10 = Money.of("10.00", "EUR")


def paypal_error(status, name, issue=None, *, field=None, value=None, links=(), debug_id="f00dcafe12345"):
    body = {"name": name, "message": f"{name} message", "debug_id": debug_id}
    if issue:
        detail = {"issue": issue, "description": f"{issue} description"}
        if field:
            detail |= {"field": field, "location": "body"}
        if value:
            detail["value"] = value
        body["details"] = [detail]
    body["links"] = [{"href": f"https://developer.paypal.com/docs/api/orders/v2/#error-{issue or name}",
                      "rel": "information_link", "method": "GET"}, *links]
    return Response(status, {"content-type": "application/json"}, json.dumps(body).encode(), body)


def mapped(response, subject=None):
    subject = subject or Subject(amount=EUR10)
    return ERRORS(subject, response, answered(subject, response))


CASES = [
    (paypal_error(422, "UNPROCESSABLE_ENTITY", "INSTRUMENT_DECLINED"), Declined, "INSTRUMENT_DECLINED", False),
    (paypal_error(422, "UNPROCESSABLE_ENTITY", "PAYER_CANNOT_PAY"), Declined, "PAYER_CANNOT_PAY", False),
    (paypal_error(422, "UNPROCESSABLE_ENTITY", "TRANSACTION_REFUSED"), Declined, "TRANSACTION_REFUSED", False),
    (paypal_error(422, "UNPROCESSABLE_ENTITY", "PAYER_ACTION_REQUIRED"), BuyerActionRequired,
     "PAYER_ACTION_REQUIRED", False),
    (paypal_error(422, "UNPROCESSABLE_ENTITY", "ORDER_NOT_APPROVED"), BuyerActionRequired, "ORDER_NOT_APPROVED", False),
    (paypal_error(422, "UNPROCESSABLE_ENTITY", "AUTHORIZATION_ALREADY_CAPTURED"), StateError,
     "AUTHORIZATION_ALREADY_CAPTURED", False),
    (paypal_error(422, "UNPROCESSABLE_ENTITY", "MAX_CAPTURE_AMOUNT_EXCEEDED", field="/amount/value"), StateError,
     "MAX_CAPTURE_AMOUNT_EXCEEDED", False),
    (paypal_error(422, "UNPROCESSABLE_ENTITY", "REFUND_AMOUNT_EXCEEDED"), StateError, "REFUND_AMOUNT_EXCEEDED", False),
    (paypal_error(422, "UNPROCESSABLE_ENTITY", "DUPLICATE_INVOICE_ID"), InvalidRequest, "DUPLICATE_INVOICE_ID", False),
    (paypal_error(400, "INVALID_REQUEST", "INVALID_PARAMETER_VALUE", field="/intent"), InvalidRequest,
     "INVALID_PARAMETER_VALUE", False),
    (paypal_error(404, "RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID"), InvalidRequest, "INVALID_RESOURCE_ID", False),
    (paypal_error(401, "AUTHENTICATION_FAILURE"), AuthenticationError, "AUTHENTICATION_FAILURE", False),
    (paypal_error(403, "NOT_AUTHORIZED", "PERMISSION_DENIED"), AuthenticationError, "PERMISSION_DENIED", False),
    (paypal_error(409, "RESOURCE_CONFLICT", "PREVIOUS_REQUEST_IN_PROGRESS"), IdempotencyConflict,
     "PREVIOUS_REQUEST_IN_PROGRESS", True),
    (paypal_error(429, "RATE_LIMIT_REACHED"), RateLimited, "RATE_LIMIT_REACHED", True),
    (paypal_error(500, "INTERNAL_SERVER_ERROR"), ProviderUnavailable, "INTERNAL_SERVER_ERROR", True),
    (paypal_error(503, "SERVICE_UNAVAILABLE"), ProviderUnavailable, "SERVICE_UNAVAILABLE", True),
    (Response(401, body=b'{"error":"invalid_client","error_description":"Client Authentication failed"}',
              data={"error": "invalid_client", "error_description": "Client Authentication failed"}),
     AuthenticationError, "invalid_client", False),
    (Response(502, body=b"<html>Bad Gateway</html>"), ProviderUnavailable, None, True),
    (Response(303, {"location": "https://proxy.example/done"}, b"<html>See Other</html>"), OutcomeUnknown, None, True),
    (Response(200, body=b"<html>maintenance</html>"), OutcomeUnknown, "unreadable_answer", True),
]


@pytest.mark.parametrize(("response", "error", "code", "retryable"), CASES,
                         ids=[f"{case[0].status}-{case[2]}" for case in CASES])
def test_each_answer_maps_to_one_typed_error(response, error, code, retryable):
    mapped_error = mapped(response)
    assert type(mapped_error) is error
    assert (mapped_error.code, mapped_error.retryable, mapped_error.provider) == (code, retryable, "paypal")
    assert mapped_error.customer_message
    if response.data and "debug_id" in response.data:
        assert mapped_error.debug_id == "f00dcafe12345" and "debug_id=f00dcafe12345" in str(mapped_error)


# What a repeat of a request that took effect is refused with, by the Orders v2 and Payments v2
# specifications' 422 issues of the endpoint it repeats.
REPEATED = [
    "PREVIOUSLY_VOIDED",  # void
    "AUTHORIZATION_ALREADY_CAPTURED", "MAX_CAPTURE_AMOUNT_EXCEEDED", "MAX_CAPTURE_COUNT_EXCEEDED",  # capture
    "CAPTURE_FULLY_REFUNDED", "REFUND_AMOUNT_EXCEEDED", "MAX_NUMBER_OF_REFUNDS_EXCEEDED",  # refund
    "ORDER_ALREADY_CAPTURED", "ORDER_ALREADY_AUTHORIZED", "ORDER_COMPLETED_OR_VOIDED",  # complete
    "MAX_AUTHORIZATION_COUNT_EXCEEDED", "DUPLICATE_INVOICE_ID",
]


@pytest.mark.parametrize("issue", REPEATED)
def test_a_refusal_a_repeat_gets_is_unknown_after_an_attempt_that_may_have_taken_effect(issue):
    """PayPal replays a request only while it keeps its PayPal-Request-Id (none for a void) and
    may fail a duplicate that arrives while the first runs: after an earlier attempt that may have
    taken effect, "already done" may be that attempt's doing. On a first attempt it is a refusal."""
    answer = paypal_error(422, "UNPROCESSABLE_ENTITY", issue)
    resent = mapped(attrs.evolve(answer, unsure=True))
    assert isinstance(resent, OutcomeUnknown) and is_unknown(resent), f"{resent!r} is recorded failed"
    assert (resent.code, resent.debug_id) == (issue, "f00dcafe12345")
    first = mapped(answer)
    assert isinstance(first, InvalidRequest) and not is_unknown(first) and not first.retryable


@pytest.mark.parametrize(("status", "name", "issue"), [
    (422, "UNPROCESSABLE_ENTITY", "PAYPAL_REQUEST_ID_PREVIOUSLY_USED"),  # Vault v3
    (400, "DUPLICATE_REQUEST_ID", None),
])
@pytest.mark.parametrize("unsure", [False, True])
def test_a_paypal_request_id_used_before_is_a_key_conflict_never_a_refusal(status, name, issue, unsure):
    """PayPal refuses a PayPal-Request-Id it has seen ("already been used for another request"):
    a request under that key reached it, maybe this one's earlier attempt, so it is applied or
    the key is another request's: recorded failed, a request that took effect would be lost."""
    error = mapped(attrs.evolve(paypal_error(status, name, issue), unsure=unsure))
    assert type(error) is IdempotencyConflict and is_unknown(error), f"{error!r} is recorded failed"
    assert (error.code, error.retryable) == (issue or name, False)


def test_a_vault_request_resent_under_a_used_request_id_stays_open(paypal):
    """Through the gateway: Vault v3 refuses the resent setup-token request's PayPal-Request-Id."""
    with paypal.recorder.answering(paypal_error(422, "UNPROCESSABLE_ENTITY", "PAYPAL_REQUEST_ID_PREVIOUSLY_USED")), \
            pytest.raises(IdempotencyConflict) as raised:
        paypal.run("vault", source="paypal", return_url="https://shop.example/back", idempotency_key=paypal.key())
    assert is_unknown(raised.value) and raised.value.code == "PAYPAL_REQUEST_ID_PREVIOUSLY_USED"


@pytest.mark.parametrize(("issue", "conflict"), [
    ("ORDER_ALREADY_AUTHORIZED", True), ("ORDER_ALREADY_CAPTURED", True), ("ORDER_COMPLETED_OR_VOIDED", True),
    ("ORDER_EXPIRED", True), ("ORDER_NOT_APPROVED", False),
])
def test_a_completion_refused_for_an_order_that_moved_on_says_the_ledger_is_behind(issue, conflict):
    """A completion reads the order first and answers a completed or voided one from it: refused
    as completed, voided or expired, the order moved on without the ledger, which reads PayPal
    (`state_conflict`). Not yet approved, the buyer still has to act: no conflict."""
    first = mapped(paypal_error(422, "UNPROCESSABLE_ENTITY", issue))
    assert not is_unknown(first) and first.state_conflict is conflict


def test_the_issue_names_the_error_and_the_field_its_param():
    error = mapped(paypal_error(422, "UNPROCESSABLE_ENTITY", "MAX_CAPTURE_AMOUNT_EXCEEDED", field="/amount/value"))
    assert error.param == "/amount/value" and str(error).startswith("MAX_CAPTURE_AMOUNT_EXCEEDED: ")


def test_values_paypal_echoes_from_the_request_stay_out_of_messages():
    error = mapped(paypal_error(400, "INVALID_REQUEST", "INVALID_STRING_LENGTH", field="/purchase_units/0/custom_id",
                                value="shop-secret-value"))
    assert "shop-secret-value" not in str(error) and "shop-secret-value" not in repr(error)


def test_a_declined_vaulted_charge_that_needs_the_buyer_is_declined_not_redirected():
    error = mapped(paypal_error(422, "UNPROCESSABLE_ENTITY", "PAYER_ACTION_REQUIRED"),
                   Subject(amount=EUR10, vaulted=True, source="tok"))
    assert type(error) is Declined and error.decline_code == "PAYER_ACTION_REQUIRED"


def test_buyer_action_keeps_paypals_link_for_the_buyer():
    link = {"href": "https://www.paypal.com/checkoutnow?token=5O190127TN364715T", "rel": "payer-action",
            "method": "GET"}
    error = mapped(paypal_error(422, "UNPROCESSABLE_ENTITY", "PAYER_ACTION_REQUIRED", links=[link]))
    assert error.redirect_url == link["href"]


REDIRECT = {"href": "https://www.sandbox.paypal.com/checkoutnow?token=2GG04258RD4047935", "rel": "redirect",
            "method": "GET"}


@pytest.mark.parametrize("issue", ["INSTRUMENT_DECLINED", "REDIRECT_PAYER_FOR_ALTERNATE_FUNDING"])
def test_a_funding_failure_completing_an_order_with_a_link_for_the_buyer_is_buyer_action(issue):
    """As PayPal answers it (an `information_link`, then the `redirect` to the approval page): the
    buyer picks another funding source there and the order is completed again."""
    answer = paypal_error(422, "UNPROCESSABLE_ENTITY", issue, links=[REDIRECT])
    subject = Subject(reference="2GG04258RD4047935", amount=EUR10)
    error = COMPLETION_ERRORS(subject, answer, answered(subject, answer))
    assert type(error) is BuyerActionRequired and not error.retryable
    assert (error.code, error.redirect_url, error.debug_id) == (issue, REDIRECT["href"], "f00dcafe12345")


@pytest.mark.parametrize("issue", ["INSTRUMENT_DECLINED", "REDIRECT_PAYER_FOR_ALTERNATE_FUNDING"])
def test_a_funding_failure_is_a_decline_without_the_link_without_the_buyer_or_outside_a_completion(issue):
    linked = paypal_error(422, "UNPROCESSABLE_ENTITY", issue, links=[REDIRECT])
    present, absent = Subject(amount=EUR10), Subject(amount=EUR10, vaulted=True, source="tok")
    for mapper, response, subject in (
        (COMPLETION_ERRORS, paypal_error(422, "UNPROCESSABLE_ENTITY", issue), present),  # no link for the buyer
        (COMPLETION_ERRORS, linked, absent),  # a charge from the vault: nobody to send there
        (ERRORS, linked, present),  # a capture of an authorization, an order paid as it is created
    ):
        error = mapper(subject, response, answered(subject, response))
        assert type(error) is Declined and (error.code, error.decline_code) == (issue, issue)


def test_the_debug_id_comes_from_the_header_when_the_body_has_none():
    response = Response(500, {"paypal-debug-id": "abc123def4567"}, b"")
    assert mapped(response).debug_id == "abc123def4567"


def test_rate_limits_keep_retry_after():
    response = paypal_error(429, "RATE_LIMIT_REACHED")
    limited = mapped(Response(429, {"retry-after": "7"}, response.body, response.data))
    assert limited.retry_after == 7.0


# -- through the pipeline, from the emulator ------------------------------------------------------
def test_a_server_error_is_retried_with_the_same_request_id_and_takes_effect_once(paypal):
    authorization = paypal.authorized()
    paypal.app.inject(Fault(kind="status", status=500, path="/capture$"))
    gateway = paypal.gateway_with(retry=Retry(total=2, backoff_factor=0))
    capture = paypal.run("capture", gateway=gateway, reference=authorization.reference, idempotency_key="cap-500")
    assert capture.amount == Money.of("100.00", "EUR")
    sent = [t for t in paypal.sent if t.url.endswith("/capture")]
    assert [t.headers["PayPal-Request-Id"] for t in sent] == ["cap-500", "cap-500"]
    assert len(paypal.app.captures) == 1


def test_a_rate_limit_from_paypal_is_retryable_with_its_retry_after(paypal):
    authorization = paypal.authorized()
    paypal.app.inject(Fault(kind="status", status=429, retry_after=3, path="/capture$"))
    with pytest.raises(RateLimited) as raised:
        paypal.run("capture", reference=authorization.reference, idempotency_key=paypal.key())
    assert (raised.value.retryable, raised.value.retry_after, raised.value.code) == (True, 3.0, "RATE_LIMIT_REACHED")
    assert raised.value.debug_id


def test_an_answer_lost_after_paypal_acted_is_outcome_unknown_and_settled_by_the_same_key(paypal):
    capture = paypal.captured()
    paypal.app.inject(Fault(kind="drop_after", path="/refund$"))
    with pytest.raises(OutcomeUnknown) as raised:
        paypal.run("refund", reference=capture.reference, idempotency_key="lost-refund")
    assert raised.value.may_have_been_sent
    settled = paypal.run("refund", reference=capture.reference, idempotency_key="lost-refund")
    assert settled.amount == Money.of("100.00", "EUR") and len(paypal.app.refunds) == 1


def test_a_read_timeout_is_outcome_unknown(paypal):
    """Only the void goes unanswered (held, not answered late: a client descheduled past a
    latency would read the answer), and the short-lived gateway holds its token beforehand."""
    authorization = paypal.authorized()
    hurried = paypal.gateway_with(read_timeout=1.0)
    holding_its_token(paypal, hurried, authorization.references["payment"])
    paypal.app.inject(Fault(kind="hold", path="/void$"))
    try:
        with pytest.raises(OutcomeUnknown):
            paypal.run("void", gateway=hurried, reference=authorization.reference, idempotency_key=paypal.key())
    finally:
        assert paypal.app.release_held(30)


def test_nothing_listening_is_a_retryable_transport_error_and_nothing_was_sent(paypal):
    with refusing_port() as port, pytest.raises(TransportError) as raised:
        paypal.run("sale", gateway=paypal.gateway_with(base_url=f"http://127.0.0.1:{port}"), amount=EUR10,
                   source="paypal", idempotency_key=paypal.key())
    assert raised.value.retryable and not raised.value.may_have_been_sent
    assert not isinstance(raised.value, OutcomeUnknown)


def test_a_request_still_in_flight_at_paypal_is_a_retryable_conflict(paypal):
    authorization = paypal.authorized()
    with paypal.recorder.answering(paypal_error(409, "RESOURCE_CONFLICT", "PREVIOUS_REQUEST_IN_PROGRESS")), \
            pytest.raises(IdempotencyConflict) as raised:
        paypal.run("capture", reference=authorization.reference, idempotency_key=paypal.key())
    assert raised.value.retryable


def test_a_capture_sent_again_while_the_first_is_in_flight_is_unknown_and_the_retry_captures_once(paypal):
    """The first capture is held at the emulator once applied, its PayPal-Request-Id still in use:
    the duplicate's 409 PREVIOUS_REQUEST_IN_PROGRESS must leave the outcome open (the first
    captured), and the retry with the id, once the first is answered, gets the one capture."""
    authorization = paypal.authorized()
    key = paypal.key()
    paypal.app.inject(Fault(kind="hold", contains=key))
    firsts = []
    first = threading.Thread(target=lambda: firsts.append(
        paypal.run("capture", reference=authorization.reference, amount=EUR10, idempotency_key=key)))
    first.start()
    try:
        assert paypal.app.wait_until_held()
        with pytest.raises(IdempotencyConflict) as raised:
            paypal.run("capture", gateway=paypal.gateway_with(), reference=authorization.reference, amount=EUR10,
                       idempotency_key=key)
    finally:
        paypal.app.release_held()
        first.join()
    assert (raised.value.code, raised.value.status, raised.value.retryable) == ("PREVIOUS_REQUEST_IN_PROGRESS", 409, True)
    assert is_unknown(raised.value)
    again = paypal.run("capture", reference=authorization.reference, amount=EUR10, idempotency_key=key)
    assert again.reference == firsts[0].reference and len(paypal.app.captures) == 1


def test_an_unreadable_success_is_outcome_unknown(paypal):
    authorization = paypal.authorized()
    with paypal.recorder.answering(Response(201, {"content-type": "text/html"}, b"<html>ok</html>")), \
            pytest.raises(OutcomeUnknown) as raised:
        paypal.run("capture", reference=authorization.reference, idempotency_key=paypal.key())
    assert raised.value.may_have_been_sent and raised.value.code == "unreadable_answer"


class RefuseEverything:
    """A shop's answer policy (what the `validate_response` hook is for: a fraud or risk check)
    that refuses every PayPal answer of `command`, with `code`."""

    def __init__(self, command: str, code: str = "policy_refused") -> None:
        self.command = command
        self.code = code

    @hookimpl
    def validate_response(self, command: str, response: Response) -> Result | None:
        return Result.failure("the shop's policy refuses this answer", self.code) if command == self.command else None


@pytest.mark.parametrize("command", ["sale", "capture", "refund"])
def test_a_success_the_shops_validator_refuses_is_unknown_never_a_definite_failure(paypal, command):
    """PayPal applied the request (money captured or refunded): a refusal of its answer by another
    validator is no evidence that it did not, so the outcome is unknown, never failed."""
    fields = {"amount": EUR10, "idempotency_key": paypal.key()}
    if command == "sale":
        fields["source"] = paypal.app.vault_card()
    else:
        fields["reference"] = (paypal.authorized() if command == "capture" else paypal.captured()).reference
    paypal.gateway.plugins.register(RefuseEverything(command), name="policy")
    refused = paypal.attempt(command, **fields)
    assert isinstance(refused, PaywireError) and is_unknown(refused), f"{refused!r} is recorded failed"
    assert refused.code == "policy_refused"


@pytest.mark.parametrize("code", ["DECLINED", "INSTRUMENT_DECLINED", "AUTHORIZATION_VOIDED", "PAYER_ACTION_REQUIRED"])
def test_a_success_refused_under_a_name_paypal_also_uses_is_still_unknown(paypal, code):
    """A shop's policy may name its refusal as PayPal names a decline or an issue: the answer is
    PayPal's success all the same (the capture was made), so the name decides nothing."""
    authorization = paypal.authorized()
    paypal.gateway.plugins.register(RefuseEverything("capture", code), name="policy")
    refused = paypal.attempt("capture", reference=authorization.reference, amount=EUR10, idempotency_key=paypal.key())
    assert len(paypal.app.captures) == 1
    assert isinstance(refused, PaywireError) and is_unknown(refused), f"{refused!r} is recorded failed"
    assert refused.code == code
