"""capture, void, reauthorize, refund and fetch on PayPal's authorizations and captures."""

from __future__ import annotations

import json

import pytest

from paywire import InvalidRequest, Money, ProviderState, Response, StateError

EUR = "EUR"


def eur(value: str) -> Money:
    return Money.of(value, EUR)


def last_post(paypal):
    return [t for t in paypal.sent if t.method == "POST"][-1]


# -- capture --------------------------------------------------------------------------------------
def test_a_full_capture_takes_the_rest_and_closes_the_authorization(paypal):
    authorization = paypal.authorized("100.00")
    capture = paypal.run("capture", reference=authorization.reference, idempotency_key="cap-1")
    sent = last_post(paypal)
    assert sent.url.endswith(f"/v2/payments/authorizations/{authorization.reference}/capture")
    assert json.loads(sent.body) == {"final_capture": True}
    assert (sent.headers["PayPal-Request-Id"], sent.headers["Prefer"]) == ("cap-1", "return=representation")
    assert capture.amount == eur("100.00") and capture.reference == capture.references["capture"]
    assert capture.references["authorization"] == authorization.reference
    assert capture.references["payment"] == authorization.references["payment"]
    fetched = paypal.run("fetch", reference=authorization.references["payment"])
    assert (fetched.state, fetched.captured) == (ProviderState.CAPTURED, eur("100.00"))


def test_a_partial_final_capture_releases_the_rest(paypal):
    authorization = paypal.authorized("100.00")
    paypal.run("capture", reference=authorization.reference, amount=eur("30.00"), final=True,
               idempotency_key=paypal.key())
    assert json.loads(last_post(paypal).body) == {"amount": {"currency_code": EUR, "value": "30.00"},
                                                  "final_capture": True}
    fetched = paypal.run("fetch", reference=authorization.references["payment"])
    assert (fetched.state, fetched.authorized, fetched.captured) == (ProviderState.CAPTURED, eur("100.00"),
                                                                     eur("30.00"))
    with pytest.raises(StateError) as raised:
        paypal.run("capture", reference=authorization.reference, amount=eur("1.00"), idempotency_key=paypal.key())
    assert raised.value.code == "AUTHORIZATION_ALREADY_CAPTURED"


def test_several_partial_captures_add_up(paypal):
    authorization = paypal.authorized("90.00")
    payment = authorization.references["payment"]
    for final in (False, False):
        paypal.run("capture", reference=authorization.reference, amount=eur("30.00"), final=final,
                   idempotency_key=paypal.key())
        assert paypal.run("fetch", reference=payment).state == ProviderState.PARTIALLY_CAPTURED
    last = paypal.run("capture", reference=authorization.reference, amount=eur("30.00"), final=True,
                      idempotency_key=paypal.key())
    fetched = paypal.run("fetch", reference=payment)
    assert (fetched.state, fetched.captured, fetched.references["capture"]) == (
        ProviderState.CAPTURED, eur("90.00"), last.reference)
    assert len(paypal.app.captures) == 3


def test_a_capture_beyond_paypals_limit_is_refused_naming_the_issue(paypal):
    authorization = paypal.authorized("100.00")
    with pytest.raises(StateError) as raised:
        paypal.run("capture", reference=authorization.reference, amount=eur("200.00"), idempotency_key=paypal.key())
    assert raised.value.code == "MAX_CAPTURE_AMOUNT_EXCEEDED" and "MAX_CAPTURE_AMOUNT_EXCEEDED" in str(raised.value)
    assert raised.value.param == "/amount/value" and raised.value.debug_id and not raised.value.retryable


def test_a_capture_in_another_currency_is_refused(paypal):
    authorization = paypal.authorized("100.00")
    with pytest.raises(InvalidRequest) as raised:
        paypal.run("capture", reference=authorization.reference, amount=Money.of("10.00", "USD"),
                   idempotency_key=paypal.key())
    assert raised.value.code == "AUTH_CAPTURE_CURRENCY_MISMATCH"


def test_a_pending_capture_is_accepted_not_succeeded(paypal):
    authorization = paypal.checkout(eur("20.00"), payer="pending")
    capture = paypal.run("capture", reference=authorization.reference, idempotency_key=paypal.key())
    assert capture.accepted and capture.state == ProviderState.PROCESSING and capture.amount == eur("20.00")
    assert capture.raw["status_details"] == {"reason": "PENDING_REVIEW"}


def test_a_replayed_capture_answers_the_same_capture(paypal):
    authorization = paypal.authorized("100.00")
    fields = {"reference": authorization.reference, "amount": eur("10.00"), "idempotency_key": "cap-replay"}
    first, again = paypal.run("capture", **fields), paypal.run("capture", **fields)
    assert (again.reference, again.amount) == (first.reference, first.amount)
    assert len(paypal.app.captures) == 1


# -- void and reauthorize ---------------------------------------------------------------------------
def test_a_void_paypal_answers_204_without_a_body_is_the_void(paypal):
    """PayPal answers a void with 204 No Content (its minimal answer, which it also gives in
    practice): the authorization is voided, not an unreadable answer left for reconciliation."""
    authorization = paypal.authorized()
    with paypal.recorder.answering(Response(204)):
        voided = paypal.run("void", reference=authorization.reference, idempotency_key=paypal.key())
    assert (voided.status, voided.state, voided.reference) == ("succeeded", ProviderState.VOIDED,
                                                                authorization.reference)


def test_a_void_releases_the_authorization(paypal):
    authorization = paypal.authorized()
    voided = paypal.run("void", reference=authorization.reference, idempotency_key="void-1")
    sent = last_post(paypal)
    assert sent.url.endswith(f"/v2/payments/authorizations/{authorization.reference}/void")
    assert sent.headers["PayPal-Request-Id"] == "void-1"
    assert (voided.state, voided.reference) == (ProviderState.VOIDED, authorization.reference)
    fetched = paypal.run("fetch", reference=authorization.references["payment"])
    assert (fetched.state, fetched.authorized, fetched.captured) == (ProviderState.VOIDED, eur("100.00"),
                                                                     Money.zero(EUR))
    with pytest.raises(StateError) as raised:
        paypal.run("capture", reference=authorization.reference, idempotency_key=paypal.key())
    assert raised.value.code == "AUTHORIZATION_VOIDED"
    replayed = paypal.run("void", reference=authorization.reference, idempotency_key="void-1")
    assert replayed.state == ProviderState.VOIDED
    with pytest.raises(StateError) as raised:
        paypal.run("void", reference=authorization.reference, idempotency_key=paypal.key())
    assert raised.value.code == "PREVIOUSLY_VOIDED"


def test_a_void_after_a_full_capture_is_refused(paypal):
    authorization = paypal.authorized()
    paypal.run("capture", reference=authorization.reference, idempotency_key=paypal.key())
    with pytest.raises(StateError) as raised:
        paypal.run("void", reference=authorization.reference, idempotency_key=paypal.key())
    assert raised.value.code == "PREVIOUSLY_CAPTURED"


def test_a_reauthorization_is_a_new_authorization_captures_act_on(paypal):
    authorization = paypal.authorized("50.00")
    paypal.days_pass(3)  # past the honor period: PayPal reauthorizes from day 4
    renewed = paypal.run("reauthorize", reference=authorization.reference, amount=eur("55.00"),
                         idempotency_key="reauth-1")
    assert json.loads(last_post(paypal).body) == {"amount": {"currency_code": EUR, "value": "55.00"}}
    assert renewed.reference != authorization.reference and renewed.amount == eur("55.00")
    assert renewed.state == ProviderState.AUTHORIZED
    assert renewed.references["reauthorized"] == authorization.reference
    fetched = paypal.run("fetch", reference=authorization.references["payment"])
    assert (fetched.reference, fetched.authorized) == (renewed.reference, eur("55.00"))
    capture = paypal.run("capture", reference=renewed.reference, idempotency_key=paypal.key())
    assert capture.amount == eur("55.00")


def test_reauthorizing_a_captured_authorization_is_refused(paypal):
    authorization = paypal.authorized()
    paypal.run("capture", reference=authorization.reference, idempotency_key=paypal.key())
    with pytest.raises(StateError):
        paypal.run("reauthorize", reference=authorization.reference, idempotency_key=paypal.key())


# -- refund -----------------------------------------------------------------------------------------
def test_a_full_refund_refunds_what_is_left(paypal):
    capture = paypal.captured("40.00")
    refund = paypal.run("refund", reference=capture.reference, idempotency_key="ref-1")
    sent = last_post(paypal)
    assert sent.url.endswith(f"/v2/payments/captures/{capture.reference}/refund")
    # the key goes as custom_id too: PayPal echoes it on the refund, fetch reports it
    assert json.loads(sent.body) == {"custom_id": "ref-1"} and sent.headers["PayPal-Request-Id"] == "ref-1"
    assert refund.amount == eur("40.00") and refund.references == {"refund": refund.reference,
                                                                   "capture": capture.reference}
    fetched = paypal.run("fetch", reference=capture.references["payment"])
    assert (fetched.state, fetched.refunded) == (ProviderState.REFUNDED, eur("40.00"))


def test_several_partial_refunds_add_up_and_no_further(paypal):
    capture = paypal.captured("40.00")
    payment = capture.references["payment"]
    key = paypal.key()
    first = paypal.run("refund", reference=capture.reference, amount=eur("15.00"), reason="one mug broke",
                       idempotency_key=key)
    assert json.loads(last_post(paypal).body) == {"amount": {"currency_code": EUR, "value": "15.00"},
                                                  "note_to_payer": "one mug broke", "custom_id": key}
    assert paypal.run("fetch", reference=payment).state == ProviderState.PARTIALLY_REFUNDED
    second = paypal.run("refund", reference=capture.reference, amount=eur("25.00"), idempotency_key=paypal.key())
    assert first.reference != second.reference
    fetched = paypal.run("fetch", reference=payment)
    assert (fetched.state, fetched.captured, fetched.refunded) == (ProviderState.REFUNDED, eur("40.00"),
                                                                   eur("40.00"))
    with pytest.raises(StateError) as raised:
        paypal.run("refund", reference=capture.reference, amount=eur("0.01"), idempotency_key=paypal.key())
    assert raised.value.code == "CAPTURE_FULLY_REFUNDED"


def test_a_refund_beyond_the_capture_is_refused(paypal):
    capture = paypal.captured("40.00")
    with pytest.raises(StateError) as raised:
        paypal.run("refund", reference=capture.reference, amount=eur("40.01"), idempotency_key=paypal.key())
    assert raised.value.code == "REFUND_AMOUNT_EXCEEDED"
    assert not paypal.app.refunds


def test_refunds_of_partial_captures_are_counted_per_payment(paypal):
    authorization = paypal.authorized("100.00")
    captures = [paypal.run("capture", reference=authorization.reference, amount=eur("50.00"), final=False,
                           idempotency_key=paypal.key()) for _ in range(2)]
    for capture in captures:
        paypal.run("refund", reference=capture.reference, amount=eur("10.00"), idempotency_key=paypal.key())
    fetched = paypal.run("fetch", reference=authorization.references["payment"])
    assert (fetched.state, fetched.captured, fetched.refunded) == (ProviderState.PARTIALLY_REFUNDED, eur("100.00"),
                                                                   eur("20.00"))


def test_refunding_a_pending_capture_is_refused(paypal):
    capture = paypal.checkout(eur("20.00"), sale=True, payer="pending")
    # PayPal holds it undecided: accepted, nothing counted as captured yet
    assert capture.accepted and capture.state == ProviderState.PROCESSING and capture.captured == eur("0.00")
    with pytest.raises(StateError) as raised:
        paypal.run("refund", reference=capture.reference, idempotency_key=paypal.key())
    assert raised.value.code == "PENDING_CAPTURE"


# -- fetch ------------------------------------------------------------------------------------------
def test_fetch_reads_an_order_waiting_for_the_buyer(paypal):
    started = paypal.run("authorize", amount=eur("10.00"), source="paypal", idempotency_key=paypal.key())
    fetched = paypal.run("fetch", reference=started.reference)
    assert fetched.state == ProviderState.ACTION_REQUIRED and fetched.captured is None
    paypal.app.approve(started.reference)
    assert paypal.run("fetch", reference=started.reference).state == ProviderState.PENDING


def test_fetch_by_authorization_or_capture_reads_their_order(paypal):
    authorization = paypal.authorized("60.00")
    capture = paypal.run("capture", reference=authorization.reference, amount=eur("20.00"), final=False,
                         idempotency_key=paypal.key())
    by_order = paypal.run("fetch", reference=authorization.references["payment"])
    for reference in (authorization.reference, capture.reference):
        fetched = paypal.run("fetch", reference=reference)
        assert (fetched.state, fetched.authorized, fetched.captured, fetched.references) == (
            by_order.state, by_order.authorized, by_order.captured, by_order.references)
    assert by_order.state == ProviderState.PARTIALLY_CAPTURED


def test_fetch_of_a_declined_sale_reports_failed(paypal):
    started = paypal.run("sale", amount=eur("10.00"), source="paypal", idempotency_key=paypal.key())
    paypal.app.approve(started.reference, "deny")
    paypal.attempt("complete", reference=started.reference, idempotency_key=paypal.key())
    fetched = paypal.run("fetch", reference=started.reference)
    assert (fetched.state, fetched.captured) == (ProviderState.FAILED, Money.zero(EUR))


def test_fetch_of_an_unknown_id_or_without_one_is_an_invalid_request(paypal):
    with pytest.raises(InvalidRequest) as raised:
        paypal.run("fetch", reference="NOSUCHORDER123456")
    assert raised.value.code == "INVALID_RESOURCE_ID" and raised.value.status == 404
    assert paypal.calls("/v2/") == 3  # the order, then an authorization, then a capture of that id
    with pytest.raises(InvalidRequest) as raised:
        paypal.run("fetch", idempotency_key="lost-answer")
    assert raised.value.param == "reference"


def test_commands_without_the_reference_they_act_on_send_nothing(paypal):
    for command in ("capture", "void", "refund", "reauthorize", "complete"):
        with pytest.raises(InvalidRequest) as raised:
            paypal.run(command, amount=eur("1.00"), idempotency_key=paypal.key())
        assert raised.value.param == "reference"
    assert paypal.calls() == 0
