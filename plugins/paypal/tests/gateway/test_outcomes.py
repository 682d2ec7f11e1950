"""The outcome model against the emulator: unknown vs failed answers, accepted (pending) results,
fetch's list of captures and refunds, and the webhooks that settle pending ones."""

from __future__ import annotations

import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paywire import EventKind, Money, ProviderState, ProviderUnavailable, RateLimited, Response, Result, Subject
from paywire.testing.emulator import Fault
from paywire_paypal.errors import ERRORS
from paywire_paypal.order_state import KEY_NOT_ECHOED


def eur(value: str) -> Money:
    return Money.of(value, "EUR")


def delivered(paypal, event_type):
    event = next(e for e in reversed(paypal.app.events) if e["event_type"] == event_type)
    body, headers = paypal.app.signed_event(event)
    return paypal.gateway.parse_webhook("paypal", headers, body)


# -- unknown vs failed ------------------------------------------------------------------------------
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_after_the_capture_applied_is_unknown_and_the_retry_gets_it_once(paypal, status):
    authorization = paypal.authorized("100.00")
    paypal.app.inject(Fault(kind="status_after", status=status, path="/capture$"))
    fields = {"reference": authorization.reference, "amount": eur("30.00"), "final": False,
              "idempotency_key": paypal.key()}
    with pytest.raises(ProviderUnavailable) as raised:
        paypal.run("capture", **fields)
    error = raised.value
    assert error.may_have_been_sent and error.retryable and error.status == status and error.debug_id
    assert len(paypal.app.captures) == 1  # PayPal did capture
    again = paypal.run("capture", **fields)  # same PayPal-Request-Id: the stored capture, not a second one
    assert again.succeeded and again.reference == next(iter(paypal.app.captures)) and again.amount == eur("30.00")
    assert len(paypal.app.captures) == 1


def test_a_5xx_after_a_refund_applied_is_unknown_and_the_retry_gets_it_once(paypal):
    capture = paypal.captured("40.00")
    paypal.app.inject(Fault(kind="status_after", status=500, path="/refund$"))
    fields = {"reference": capture.reference, "amount": eur("10.00"), "idempotency_key": paypal.key()}
    with pytest.raises(ProviderUnavailable) as raised:
        paypal.run("refund", **fields)
    assert raised.value.may_have_been_sent and raised.value.code == "INTERNAL_SERVER_ERROR"
    again = paypal.run("refund", **fields)
    assert list(paypal.app.refunds) == [again.reference] and again.amount == eur("10.00")


def test_paypals_own_503_is_unknown_even_when_nothing_was_captured(paypal):
    """PayPal's SERVICE_UNAVAILABLE body does not say the capture was not made (the answer after
    one that was is the same, see above): the outcome is left to the resend or to reconciliation."""
    authorization = paypal.authorized("100.00")
    paypal.app.inject(Fault(kind="status", status=503, path="/capture$"))
    with pytest.raises(ProviderUnavailable) as raised:
        paypal.run("capture", reference=authorization.reference, idempotency_key=paypal.key())
    assert raised.value.may_have_been_sent and raised.value.retryable
    assert raised.value.code == "SERVICE_UNAVAILABLE" and not paypal.app.captures


def test_a_bare_503_from_a_proxy_stays_unknown():
    error = ERRORS(Subject(), Response(503, body=b"<html>upstream reset</html>"), Result(False, (), ()))
    assert isinstance(error, ProviderUnavailable) and error.may_have_been_sent


def test_429_is_a_definite_retryable_failure(paypal):
    authorization = paypal.authorized("100.00")
    paypal.app.inject(Fault(kind="status", status=429, retry_after=3, path="/capture$"))
    with pytest.raises(RateLimited) as raised:
        paypal.run("capture", reference=authorization.reference, idempotency_key=paypal.key())
    assert raised.value.retryable and not raised.value.may_have_been_sent and raised.value.retry_after == 3
    assert not paypal.app.captures


# -- accepted: PayPal decides later -----------------------------------------------------------------
def test_an_echeck_capture_is_accepted_and_settles_by_webhook(paypal):
    sale = paypal.checkout(eur("20.00"), sale=True, payer="echeck")
    assert sale.accepted and sale.state == ProviderState.PROCESSING
    capture_id = sale.references["capture"]
    fetched = paypal.run("fetch", reference=sale.references["payment"])
    assert fetched.state == ProviderState.PROCESSING and fetched.captured == eur("0.00")
    assert [(op.kind, op.reference, op.status) for op in fetched.operations] == [("capture", capture_id, "accepted")]
    paypal.app.settle_capture(capture_id, "COMPLETED")
    event = delivered(paypal, "PAYMENT.CAPTURE.COMPLETED")
    assert event.kind == EventKind.CAPTURED and event.references["capture"] == capture_id
    assert paypal.run("fetch", reference=sale.references["payment"]).state == ProviderState.CAPTURED


def test_a_pending_capture_denied_later_is_a_failed_event_about_that_capture(paypal):
    authorization = paypal.checkout(eur("20.00"), payer="pending")
    capture = paypal.run("capture", reference=authorization.reference, idempotency_key=paypal.key())
    assert capture.accepted
    paypal.app.settle_capture(capture.reference, "DECLINED")
    event = delivered(paypal, "PAYMENT.CAPTURE.DENIED")
    assert (event.kind, event.reference) == (EventKind.FAILED, capture.reference)
    fetched = paypal.run("fetch", reference=capture.references["payment"])
    assert [op.status for op in fetched.operations] == ["failed"] and fetched.captured == eur("0.00")


@pytest.mark.parametrize(("settled", "event_type", "kind"), [
    ("COMPLETED", "PAYMENT.CAPTURE.REFUNDED", EventKind.REFUNDED),
    ("FAILED", "PAYMENT.REFUND.FAILED", EventKind.FAILED),
    ("CANCELLED", "PAYMENT.REFUND.CANCELLED", EventKind.FAILED),
])
def test_a_pending_refund_is_accepted_and_settles_by_webhook(paypal, settled, event_type, kind):
    sale = paypal.checkout(eur("30.00"), sale=True, payer="refund_pending")
    refund = paypal.run("refund", reference=sale.reference, amount=eur("12.00"), idempotency_key=paypal.key())
    assert refund.accepted and refund.state == ProviderState.PROCESSING and refund.amount == eur("12.00")
    assert refund.raw["status_details"] == {"reason": "ECHECK"}
    pending = delivered(paypal, "PAYMENT.REFUND.PENDING")
    assert (pending.kind, pending.reference, pending.amount) == (EventKind.REFUND_PENDING, refund.reference,
                                                                 eur("12.00"))
    assert paypal.run("fetch", reference=sale.references["payment"]).refunded == eur("0.00")
    paypal.app.settle_refund(refund.reference, settled)
    event = delivered(paypal, event_type)
    assert (event.kind, event.reference) == (kind, refund.reference)
    fetched = paypal.run("fetch", reference=sale.references["payment"])
    assert fetched.refunded == (eur("12.00") if settled == "COMPLETED" else eur("0.00"))


def test_settling_delivers_the_signed_webhook_to_the_webhook_url(paypal):
    received: list[tuple[dict, bytes]] = []

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers["Content-Length"]))
            received.append(({k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(200)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, *args) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        sale = paypal.checkout(eur("20.00"), sale=True, payer="pending")
        paypal.app.webhook_url = f"http://127.0.0.1:{server.server_address[1]}/hook"
        paypal.app.settle_capture(sale.references["capture"], "COMPLETED")
        for _ in range(200):
            if received:
                break
            threading.Event().wait(0.02)
    finally:
        server.shutdown()
    headers, body = received[0]
    event = paypal.gateway.parse_webhook("paypal", headers, body)
    assert (event.type, event.kind, event.references["capture"]) == (
        "PAYMENT.CAPTURE.COMPLETED", EventKind.CAPTURED, sale.references["capture"])


# -- fetch lists captures and refunds -------------------------------------------------------------
def test_fetch_lists_every_capture_and_refund_with_its_key(paypal):
    authorization = paypal.authorized("100.00")
    first = paypal.run("capture", reference=authorization.reference, amount=eur("60.00"), final=False,
                       idempotency_key=paypal.key())
    second = paypal.run("capture", reference=authorization.reference, amount=eur("40.00"),
                        idempotency_key=paypal.key())
    key = "order-A-1001-refund-1"
    refund = paypal.run("refund", reference=first.reference, amount=eur("25.00"), idempotency_key=key)
    fetched = paypal.run("fetch", reference=authorization.references["payment"])
    assert [(op.kind, op.reference, op.amount, op.status, op.idempotency_key) for op in fetched.operations] == [
        ("capture", first.reference, eur("60.00"), "succeeded", None),
        ("capture", second.reference, eur("40.00"), "succeeded", None),
        ("refund", refund.reference, eur("25.00"), "succeeded", key),
    ]


def test_fetch_names_the_capture_each_refund_gives_money_back_from(paypal):
    """Refunds of one amount on two captures, one made without a key (as the dashboard makes
    them): each names its own capture, from its `up` link."""
    authorization = paypal.authorized("100.00")
    first = paypal.run("capture", reference=authorization.reference, amount=eur("60.00"), final=False,
                       idempotency_key=paypal.key())
    second = paypal.run("capture", reference=authorization.reference, amount=eur("40.00"),
                        idempotency_key=paypal.key())
    made = {}
    for capture, key in ((second, paypal.key()), (first, paypal.key()), (first, None)):
        refund = paypal.run("refund", reference=capture.reference, amount=eur("10.00"), idempotency_key=key)
        made[refund.reference] = capture.reference
    fetched = paypal.run("fetch", reference=authorization.references["payment"])
    assert {op.reference: op.parent for op in fetched.operations if op.kind == "refund"} == made
    assert {op.parent for op in fetched.operations if op.kind == "capture"} == {None}


def test_a_key_paypal_cannot_echo_is_not_sent_as_custom_id(paypal):
    """Its mark is, in its place: the refund is still known to be paywire's (one without any
    custom_id is not), made under a key fetch cannot name."""
    capture = paypal.captured("40.00")
    paypal.run("refund", reference=capture.reference, amount=eur("5.00"), idempotency_key="refund:1/with spaces")
    sent = [t for t in paypal.api_sent if t.url.endswith("/refund")][-1]
    assert json.loads(sent.body)["custom_id"] == KEY_NOT_ECHOED != "refund:1/with spaces"
    fetched = paypal.run("fetch", reference=capture.references["payment"])
    assert [op.idempotency_key for op in fetched.operations if op.kind == "refund"] == [None]


# -- the invariant: fetch's operations add up to its totals -----------------------------------------
step = st.tuples(st.integers(min_value=1, max_value=30), st.sampled_from(["complete", "pending", "fail"]))


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(captures=st.lists(step, min_size=1, max_size=3), refunds=st.lists(step, max_size=3))
def test_fetchs_operations_add_up_to_its_totals(paypal, captures, refunds):
    app = paypal.app
    authorization = paypal.authorized("100.00")
    made = []
    for value, fate in captures:
        capture = paypal.run("capture", reference=authorization.reference, amount=eur(f"{value}.00"), final=False,
                             idempotency_key=paypal.key())
        made.append(capture.reference)
        if fate != "complete":
            with app.lock:  # the capture is held for review, then maybe declined
                app.captures[capture.reference].status = "PENDING"
            if fate == "fail":
                app.settle_capture(capture.reference, "DECLINED")
    target = next((ref for ref in made if app.captures[ref].status == "COMPLETED"), None)
    order = app.orders[app.authorizations[authorization.reference].order_id]
    for value, fate in refunds:
        if target is None:
            break
        order.outcome = "approve" if fate == "complete" else "refund_pending"
        refund = paypal.attempt("refund", reference=target, amount=eur(f"{value}.00"), idempotency_key=paypal.key())
        if fate == "fail" and getattr(refund, "accepted", False):
            app.settle_refund(refund.reference, "FAILED")
    fetched = paypal.run("fetch", reference=authorization.references["payment"])

    def total(kind: str, status: str) -> Money:
        return sum((op.amount for op in fetched.operations if op.kind == kind and op.status == status), eur("0.00"))

    assert total("capture", "succeeded") == fetched.captured
    assert total("refund", "succeeded") == fetched.refunded
    assert {op.reference for op in fetched.operations if op.kind == "capture"} == set(made)
    assert fetched.refunded <= fetched.captured
    if fetched.captured.minor == 0 and any(op.status == "accepted" for op in fetched.operations):
        assert fetched.state == ProviderState.PROCESSING
