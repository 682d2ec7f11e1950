"""A forged refund webhook that keeps the genuine CRC32 verifies, and moves no money.

PayPal signs `transmission id|time|webhook id|CRC32(body)`. CRC32 is affine over GF(2), so an
attacker holding one genuine signed PAYMENT.CAPTURE.REFUNDED delivery can rewrite its event id,
refund id and amount, then flip filler characters in an unused string field (`summary`) until
the CRC32 is the genuine one again: the transmission headers still verify. The plugin must then
read the refund from PayPal and refuse the event (or report only what PayPal holds).
"""

from __future__ import annotations

import json
import sys
import zlib
from collections.abc import Callable

import pytest

from paywire import EventKind, Money, WebhookVerificationError
from paywire_paypal import signature

RETURN_URL = "https://shop.example/paypal/return"

FILLER = 48  # filler characters, each 'a' or 'c' (one bit apart): more than the 32 bits to force


def _filler(bits: list[int]) -> str:
    return "".join("c" if bit else "a" for bit in bits)


def _with_filler(event: dict, bits: list[int]) -> bytes:
    forged = dict(event, summary=event["summary"] + " " + _filler(bits))
    return json.dumps(forged, separators=(",", ":")).encode()


def force_crc32(event: dict, target: int) -> bytes:
    """The event's compact JSON with `summary` filler chosen so that its CRC32 is `target`."""
    return forced_crc32(lambda bits: _with_filler(event, bits), target)


def forced_crc32(body: Callable[[list[int]], bytes], target: int) -> bytes:
    """`body(bits)` for the FILLER bits that make its CRC32 `target` (each bit one filler character)."""
    base = body([0] * FILLER)
    start = zlib.crc32(base)
    # For one length, crc(m XOR d) = crc(m) XOR crc(d) XOR crc(0): each filler bit flips a fixed mask.
    columns = []
    for i in range(FILLER):
        bits = [0] * FILLER
        bits[i] = 1
        columns.append(zlib.crc32(body(bits)) ^ start)
    # Gaussian elimination over GF(2): pick filler bits whose masks XOR to start ^ target.
    rows: list[tuple[int, int]] = []  # (mask, which filler bits make it)
    for i, column in enumerate(columns):
        combo = 1 << i
        for mask, made in rows:
            if column ^ mask < column:
                column, combo = column ^ mask, combo ^ made
        if column:
            rows.append((column, combo))
            rows.sort(reverse=True)
    want, chosen = start ^ target, 0
    for mask, made in rows:
        if want ^ mask < want:
            want, chosen = want ^ mask, chosen ^ made
    assert want == 0, "the filler cannot reach this CRC32"
    forged = body([(chosen >> i) & 1 for i in range(FILLER)])
    assert zlib.crc32(forged) == target
    return forged


def genuine_refund(paypal, value="40.00"):
    """A real refund of a real capture, and the delivery PayPal sends for it."""
    capture = paypal.captured("40.00")
    refund = paypal.run("refund", reference=capture.reference, amount=Money.of(value, "EUR"),
                        idempotency_key=paypal.key())
    event = next(e for e in reversed(paypal.app.events) if e["event_type"] == "PAYMENT.CAPTURE.REFUNDED")
    body, headers = paypal.app.signed_event(event)
    return capture, refund, json.loads(body), body, headers


def forge(genuine: dict, body: bytes, **resource) -> bytes:
    event = dict(genuine, id="WH-FORGED-" + genuine["id"][-8:], resource={**genuine["resource"], **resource})
    return force_crc32(event, zlib.crc32(body))


def still_verifies(paypal, headers, forged: bytes) -> bool:
    """The genuine headers verify the forged body, offline and by PayPal's API (the emulator's)."""
    lowered = {name.lower(): value for name, value in headers.items()}
    offline = signature.verify_transmission(
        paypal.app.certificate_pem, lowered["paypal-transmission-sig"], lowered["paypal-transmission-id"],
        lowered["paypal-transmission-time"], paypal.app.webhook_id, forged, signature.AUTH_ALGO)
    fields = {"auth_algo": signature.AUTH_ALGO, "cert_url": lowered["paypal-cert-url"],
              "transmission_id": lowered["paypal-transmission-id"],
              "transmission_sig": lowered["paypal-transmission-sig"],
              "transmission_time": lowered["paypal-transmission-time"], "webhook_id": paypal.app.webhook_id}
    return offline and paypal.app.verify(fields, json.loads(forged))


@pytest.fixture(params=["offline", "api"])
def gateway(request, paypal):
    return paypal.gateway_with(options={"webhook_verification": request.param})


def test_a_genuine_refund_event_still_parses_from_what_paypal_holds(paypal, gateway):
    capture, refund, _, body, headers = genuine_refund(paypal, "15.00")
    event = gateway.parse_webhook("paypal", headers, body)
    assert (event.kind, event.reference, event.amount) == (EventKind.REFUNDED, refund.reference,
                                                           Money.of("15.00", "EUR"))
    assert event.references["capture"] == capture.reference
    assert paypal.calls(f"/v2/payments/refunds/{refund.reference}", "GET") == 1  # confirmed by reading it


def test_a_crc32_preserving_phantom_refund_verifies_but_is_refused(paypal, gateway):
    _, refund, genuine, body, headers = genuine_refund(paypal, "15.00")
    forged = forge(genuine, body, id="9XP12345AB6789012", amount={"currency_code": "EUR", "value": "900.00"})
    assert forged != body and still_verifies(paypal, headers, forged)
    with pytest.raises(WebhookVerificationError) as raised:
        gateway.parse_webhook("paypal", headers, forged)
    assert raised.value.code == "unconfirmed_event"
    assert list(paypal.app.refunds) == [refund.reference]  # nothing was made up on either side


def test_a_forged_amount_on_a_real_refund_reports_only_what_paypal_holds(paypal, gateway):
    capture, refund, genuine, body, headers = genuine_refund(paypal, "15.00")
    other = paypal.captured("40.00")
    forged = forge(genuine, body, amount={"currency_code": "EUR", "value": "40.00"},
                   links=[{"href": f"{paypal.url}/v2/payments/captures/{other.reference}", "rel": "up",
                           "method": "GET"}])
    assert still_verifies(paypal, headers, forged)
    event = gateway.parse_webhook("paypal", headers, forged)
    assert event.id != genuine["id"]  # a new event id, but about the real refund as PayPal holds it
    assert (event.kind, event.reference, event.amount) == (EventKind.REFUNDED, refund.reference,
                                                           Money.of("15.00", "EUR"))
    assert event.references["capture"] == capture.reference and event.data["resource"]["amount"]["value"] == "15.00"


def test_a_refund_event_rewritten_to_name_a_capture_is_refused(paypal, gateway):
    capture, _, genuine, body, headers = genuine_refund(paypal, "15.00")
    forged = forge(genuine, body, id=capture.reference)  # a real id, but of a capture, not a refund
    assert still_verifies(paypal, headers, forged)
    with pytest.raises(WebhookVerificationError):
        gateway.parse_webhook("paypal", headers, forged)


def test_a_completed_capture_event_about_a_declined_capture_is_refused(paypal, gateway):
    """A genuine PAYMENT.CAPTURE.COMPLETED rewritten to name a capture PayPal declined."""
    paypal.captured("40.00")
    event = next(e for e in reversed(paypal.app.events) if e["event_type"] == "PAYMENT.CAPTURE.COMPLETED")
    body, headers = paypal.app.signed_event(event)
    paypal.attempt("sale", amount=Money.of("5.00", "EUR"), source=paypal.app.vault_card(name="CCREJECT-SF"),
                   idempotency_key=paypal.key())
    declined = next(cap for cap in paypal.app.captures.values() if cap.status == "DECLINED")
    forged = forge(json.loads(body), body, id=declined.id)
    assert still_verifies(paypal, headers, forged)
    with pytest.raises(WebhookVerificationError) as raised:
        gateway.parse_webhook("paypal", headers, forged)
    assert raised.value.code == "event_contradicted"


def test_events_that_move_no_money_are_taken_as_they_come(paypal, gateway):
    paypal.checkout(Money.of("30.00", "EUR"))
    event = next(e for e in reversed(paypal.app.events) if e["event_type"] == "CHECKOUT.ORDER.APPROVED")
    body, headers = paypal.app.signed_event(event)
    reads = paypal.calls("/v2/", "GET")
    assert gateway.parse_webhook("paypal", headers, body).kind == EventKind.APPROVED
    assert paypal.calls("/v2/", "GET") == reads  # nothing read from PayPal for it


def approved_order(paypal) -> str:
    started = paypal.run("sale", amount=Money.of("25.00", "EUR"), source="paypal", return_url=RETURN_URL,
                         idempotency_key=paypal.key())
    paypal.app.approve(started.reference)
    return started.reference


def test_an_approval_reversal_is_confirmed_by_reading_the_order_paypal_cancelled(paypal, gateway):
    reversed_order = approved_order(paypal)
    paypal.app.reverse_approval(reversed_order)
    body, headers = paypal.app.signed_event(paypal.app.events[-1])
    event = gateway.parse_webhook("paypal", headers, body)
    assert (event.kind, event.reference, event.references["order"]) == (EventKind.FAILED, reversed_order,
                                                                        reversed_order)
    assert paypal.calls(f"/v2/checkout/orders/{reversed_order}", "GET") == 1


def test_an_approval_reversal_rewritten_to_name_an_order_still_waiting_is_refused(paypal, gateway):
    """A genuine reversal rewritten, CRC32 kept, to name another approved order: PayPal holds that
    order APPROVED, so the event is refused; an `id` slipped in beside `order_id` is not read."""
    reversed_order = approved_order(paypal)
    paypal.app.reverse_approval(reversed_order)
    waiting = approved_order(paypal)
    genuine = paypal.app.events[-2]
    assert genuine["event_type"] == "CHECKOUT.PAYMENT-APPROVAL.REVERSED"
    body, headers = paypal.app.signed_event(genuine)
    forged = forge(json.loads(body), body, order_id=waiting)
    assert still_verifies(paypal, headers, forged)
    with pytest.raises(WebhookVerificationError) as raised:
        gateway.parse_webhook("paypal", headers, forged)
    assert raised.value.code == "event_contradicted"
    assert paypal.app.orders[waiting].status == "APPROVED"
    beside = forge(json.loads(body), body, id=waiting)
    assert still_verifies(paypal, headers, beside)
    assert gateway.parse_webhook("paypal", headers, beside).references["order"] == reversed_order


def test_an_order_approved_event_rewritten_as_a_reversal_is_refused(paypal, gateway):
    waiting = approved_order(paypal)
    genuine = next(e for e in reversed(paypal.app.events) if e["event_type"] == "CHECKOUT.ORDER.APPROVED")
    body, headers = paypal.app.signed_event(genuine)
    event = dict(json.loads(body), id="WH-FORGED-" + genuine["id"][-8:],
                 event_type="CHECKOUT.PAYMENT-APPROVAL.REVERSED", resource={"order_id": waiting})
    forged = force_crc32(event, zlib.crc32(body))
    assert still_verifies(paypal, headers, forged)
    with pytest.raises(WebhookVerificationError) as raised:
        gateway.parse_webhook("paypal", headers, forged)
    assert raised.value.code == "event_contradicted"



def _forged_approval(paypal, rewrite) -> tuple[dict, bytes]:
    """A genuine CHECKOUT.ORDER.APPROVED delivery's headers, and its body rewritten, CRC32 kept."""
    paypal.checkout(Money.of("30.00", "EUR"))
    genuine = next(e for e in reversed(paypal.app.events) if e["event_type"] == "CHECKOUT.ORDER.APPROVED")
    body, headers = paypal.app.signed_event(genuine)
    forged = force_crc32(rewrite(json.loads(body)), zlib.crc32(body))
    assert still_verifies(paypal, headers, forged)
    return headers, forged


def _huge_amount(event: dict) -> dict:
    units = [{**event["resource"]["purchase_units"][0], "amount": {"currency_code": "EUR", "value": "9" * 5000}}]
    return dict(event, resource={**event["resource"], "purchase_units": units})


@pytest.mark.parametrize("rewrite", [lambda event: dict(event, resource_type=["capture"]), _huge_amount],
                         ids=["resource_type", "amount"])
def test_a_forged_event_taken_as_it_comes_in_a_shape_paypal_never_sends_is_refused_as_malformed(
        paypal, gateway, rewrite):
    """An event that moves no money is read from the body, which the signature binds only by its
    CRC32: rewritten with a list for its resource_type, or an amount of thousands of digits, it is
    refused as malformed (the endpoint's 400), never an error (its 500)."""
    headers, forged = _forged_approval(paypal, rewrite)
    with pytest.raises(WebhookVerificationError) as raised:
        gateway.parse_webhook("paypal", headers, forged)
    assert raised.value.code == "malformed_event"


def test_a_forged_event_whose_supplementary_data_is_no_object_names_nothing_from_it(paypal, gateway):
    headers, forged = _forged_approval(paypal, lambda event: dict(
        event, resource_type="sale", resource={**event["resource"], "supplementary_data": ["x"]}))
    event = gateway.parse_webhook("paypal", headers, forged)
    assert event.kind == EventKind.APPROVED and "authorization" not in event.references


def test_a_forged_body_nested_too_deep_for_the_json_parser_is_refused_as_malformed(paypal, gateway):
    """Python's JSON parser recurses: arrays nested 100000 deep raise RecursionError, no ValueError.
    Offline, the genuine headers verify such a body once filler fixes its CRC32; by PayPal's API,
    the body is read before PayPal is asked. Either way a refusal (400), never an error (500)."""
    paypal.checkout(Money.of("30.00", "EUR"))
    genuine = next(e for e in reversed(paypal.app.events) if e["event_type"] == "CHECKOUT.ORDER.APPROVED")
    body, headers = paypal.app.signed_event(genuine)
    forged = forced_crc32(lambda bits: b"[" * 100_000 + _filler(bits).encode(), zlib.crc32(body))
    with pytest.raises(WebhookVerificationError) as raised:
        gateway.parse_webhook("paypal", headers, forged)
    assert raised.value.code == "malformed_event"


def test_a_body_nested_near_the_stack_limit_is_refused_by_the_api_mode_before_paypal_is_asked(paypal):
    """The API mode parses the body and encodes it again for PayPal, deeper in the stack: at some
    depth near the recursion limit the parse succeeded and the encoding raised RecursionError (a
    500), before any signature was checked. Every depth is refused as malformed now."""
    gateway = paypal.gateway_with(options={"webhook_verification": "api"})
    paypal.checkout(Money.of("30.00", "EUR"))
    genuine = next(e for e in reversed(paypal.app.events) if e["event_type"] == "CHECKOUT.ORDER.APPROVED")
    body, headers = paypal.app.signed_event(genuine)
    asked = paypal.calls("/v1/notifications/verify-webhook-signature")
    top, outcomes = sys.getrecursionlimit(), set()
    for depth in range(max(40, top - 300), top):
        nested = body[:-1] + b',"x":' + b"[" * depth + b"]" * depth + b"}"
        try:
            gateway.parse_webhook("paypal", headers, nested)
        except WebhookVerificationError as refused:
            outcomes.add(refused.code)
        except RecursionError:
            outcomes.add("RecursionError")
    assert outcomes == {"malformed_event"}
    assert paypal.calls("/v1/notifications/verify-webhook-signature") == asked
