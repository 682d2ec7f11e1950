"""authorize, sale, capture, void, refund and fetch against the emulator: what goes on the wire and
what comes back."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from typing import Any

import pytest

from paywire import (
    Address,
    Customer,
    IdempotencyConflict,
    InvalidRequest,
    Money,
    Order,
    ProviderState,
    StateError,
    Subject,
    UnsupportedOperation,
)

EUR = "EUR"


def eur(amount: str) -> Money:
    return Money.of(amount, EUR)


# -- authorize and sale --------------------------------------------------------------------------
def test_authorize_sends_a_confirmed_manual_capture_payment_intent(stripe: Any, form: Any, api_key: str) -> None:
    subject = stripe.payment(eur("19.99"), metadata={"cart": "42"})
    result = stripe.run("authorize", subject)

    [transfer] = stripe.sent()
    assert (transfer.method, transfer.url.rsplit("/", 2)[-2:]) == ("POST", ["v1", "payment_intents"])
    assert form(transfer) == {
        "amount": "1999",
        "currency": "eur",
        "payment_method": "pm_card_visa",
        "payment_method_types[0]": "card",
        "capture_method": "manual",
        "confirm": "true",
        "metadata[cart]": "42",
        "metadata[paywire_order]": subject.order.id,
        "metadata[paywire_idempotency_key]": subject.idempotency_key,
        "expand[0]": "latest_charge",
        "return_url": "https://shop.example/return",
    }
    headers = transfer.all_headers()
    assert headers["Authorization"] == f"Bearer {api_key}"
    assert headers["Stripe-Version"] == "2023-08-16"
    assert headers["Idempotency-Key"] == subject.idempotency_key
    assert headers["Content-Type"] == "application/x-www-form-urlencoded"

    intent = stripe.app.get(result.reference)
    assert intent["status"] == "requires_capture"
    assert result.succeeded and result.state == ProviderState.AUTHORIZED
    assert result.references["payment"] == result.reference == intent["id"]
    assert result.references["charge"] == intent["latest_charge"]
    assert (result.amount, result.authorized, result.captured, result.refunded) == (
        eur("19.99"), eur("19.99"), eur("0.00"), eur("0.00"))


def test_sale_captures_at_once(stripe: Any, form: Any) -> None:
    result = stripe.sale(eur("25.00"))
    assert form(stripe.sent()[0])["capture_method"] == "automatic"
    assert stripe.app.get(result.reference)["status"] == "succeeded"
    assert result.state == ProviderState.CAPTURED
    assert (result.amount, result.captured) == (eur("25.00"), eur("25.00"))


def test_the_order_customer_and_shipping_address_go_with_the_payment(stripe: Any, form: Any) -> None:
    order = Order(id="A-1001", description="Two mugs",
                  shipping=Address(line1="Hauptstr. 1", city="Berlin", postal_code="10115", country="DE"))
    stripe.authorize(eur("10.00"), order=order, customer=Customer(name="Ada Lovelace", phone="+4930123456",
                                                                  reference=None))
    sent = form(stripe.sent()[0])
    assert sent["description"] == "Two mugs"
    assert sent["shipping[name]"] == "Ada Lovelace"
    assert sent["shipping[phone]"] == "+4930123456"
    assert (sent["shipping[address][line1]"], sent["shipping[address][country]"]) == ("Hauptstr. 1", "DE")
    assert "shipping[address][line2]" not in sent  # None is dropped, not sent empty


def test_a_long_phone_ships_and_shipping_details_longer_than_stripe_takes_are_refused_before_sending(
    stripe: Any, form: Any
) -> None:
    """A buyer phone of more than 20 characters refused the whole payment, although a PaymentIntent's
    shipping phone takes 5000 (20 is a Customer's limit); and an address line longer than the 5000
    Stripe takes was sent, to be refused there, the payment recorded as failed."""
    phone = "+44 (0) 20 7946 0958 ext. 1234"  # 30 characters
    address = Address(line1="Hauptstr. 1", city="Berlin", country="DE")
    stripe.authorize(eur("10.00"), order=Order(id="A-1003", shipping=address),
                     customer=Customer(name="Ada", phone=phone, reference=None))
    assert form(stripe.sent()[0])["shipping[phone]"] == phone
    for shipping, customer, param in (
        (Address(line1="x" * 5001, country="DE"), Customer(name="Ada"), "order.shipping.line1"),
        (Address(city="Berlin", name="y" * 5001), None, "order.shipping.name"),
        (Address(city="Berlin"), Customer(name="z" * 5001), "customer.name"),
        (Address(city="Berlin"), Customer(name="Ada", phone="1" * 5001), "customer.phone"),
    ):
        with pytest.raises(InvalidRequest) as refused:
            stripe.authorize(eur("10.00"), order=Order(id="A-1004", shipping=shipping), customer=customer)
        assert refused.value.param == param
    assert len(stripe.sent()) == 1


def test_a_shipping_address_without_a_name_is_not_sent(stripe: Any, form: Any) -> None:
    stripe.authorize(eur("10.00"), order=Order(id="A-1002", shipping=Address(city="Berlin")))
    assert not any(key.startswith("shipping") for key in form(stripe.sent()[0]))


def test_the_return_url_option_stands_in_for_the_subjects(gateway_at: Any, server: Any, recorder: Any,
                                                          form: Any) -> None:
    gateway = gateway_at(server.url, options={"return_url": "https://shop.example/3ds",
                                              "payment_method_types": ["card", "link"]})
    gateway.execute("stripe", "authorize", Subject(amount=eur("5.00"), source="pm_card_visa", idempotency_key="rk-1"))
    sent = form(recorder.sent[0].transfer)
    assert sent["return_url"] == "https://shop.example/3ds"
    assert (sent["payment_method_types[0]"], sent["payment_method_types[1]"]) == ("card", "link")


@pytest.mark.parametrize("metadata, param", [
    ({"paywire_order": "not-the-order"}, "metadata.paywire_order"),
    ({"k" * 41: "v"}, "metadata"),
    ({"a[b]": "v"}, "metadata"),
    ({"note": "x" * 501}, "metadata.note"),
    ({f"key{i}": "v" for i in range(49)}, "metadata"),
])
def test_metadata_stripe_would_refuse_is_refused_before_sending(stripe: Any, metadata: dict[str, str],
                                                                 param: str) -> None:
    with pytest.raises(InvalidRequest) as refused:
        stripe.authorize(eur("10.00"), metadata=metadata)
    assert refused.value.param == param
    assert stripe.sent() == [] and stripe.app.calls == []


def test_a_payment_without_amount_or_source_is_refused_before_sending(stripe: Any) -> None:
    with pytest.raises(InvalidRequest) as no_source:
        stripe.run("authorize", Subject(amount=eur("1.00"), idempotency_key="k"))
    with pytest.raises(InvalidRequest) as no_amount:
        stripe.run("sale", Subject(source="pm_card_visa", idempotency_key="k"))
    assert (no_source.value.param, no_amount.value.param) == ("source", "amount")
    assert stripe.sent() == []


def test_an_idempotency_key_longer_than_stripe_keeps_is_refused(stripe: Any) -> None:
    with pytest.raises(InvalidRequest) as refused:
        stripe.authorize(eur("1.00"), idempotency_key="k" * 256)
    assert refused.value.param == "idempotency_key" and stripe.sent() == []


def test_replaying_an_authorize_with_its_key_returns_the_same_intent(stripe: Any) -> None:
    subject = stripe.payment(eur("12.00"))
    first, again = stripe.run("authorize", subject), stripe.run("authorize", subject)
    assert again.reference == first.reference
    assert len(stripe.app.store.payment_intents) == 1


def test_the_same_key_with_another_amount_is_an_idempotency_conflict(stripe: Any) -> None:
    subject = stripe.payment(eur("12.00"))
    stripe.run("authorize", subject)
    with pytest.raises(IdempotencyConflict) as conflict:
        stripe.run("authorize", Subject(amount=eur("13.00"), source=subject.source, order=subject.order,
                                        idempotency_key=subject.idempotency_key, return_url=subject.return_url))
    assert conflict.value.code == "idempotency_error" and not conflict.value.retryable


# -- capture -------------------------------------------------------------------------------------
def test_a_full_capture_captures_what_was_authorized(stripe: Any, form: Any) -> None:
    authorized = stripe.authorize(eur("30.00"))
    subject = stripe.on(authorized.reference)
    captured = stripe.run("capture", subject)
    assert form(stripe.sent()[-1]) == {"expand[0]": "latest_charge",  # the key names the capture for fetch
                                       "metadata[paywire_capture_key]": subject.idempotency_key}
    assert captured.reference == authorized.reference  # refunds act on the PaymentIntent
    assert (captured.state, captured.amount, captured.captured) == (ProviderState.CAPTURED, eur("30.00"),
                                                                     eur("30.00"))


def test_a_partial_authorization_reports_what_stripe_holds_not_what_was_asked(
        stripe: Any, partial_authorization: Callable[[int], None]) -> None:
    partial_authorization(600)
    authorized = stripe.authorize(eur("10.00"))
    assert (authorized.state, authorized.amount, authorized.authorized) == (ProviderState.AUTHORIZED, eur("6.00"),
                                                                            eur("6.00"))
    fetched = stripe.run("fetch", stripe.on(authorized.reference))
    assert (fetched.authorized, fetched.captured) == (eur("6.00"), eur("0.00"))
    captured = stripe.run("capture", stripe.on(authorized.reference))  # Stripe captures what it holds
    assert (captured.amount, captured.authorized, captured.captured, captured.refunded) == (
        eur("6.00"), eur("6.00"), eur("6.00"), eur("0.00"))


def test_a_partial_capture_sends_amount_to_capture_and_releases_the_rest(stripe: Any, form: Any) -> None:
    authorized = stripe.authorize(eur("30.00"))
    captured = stripe.run("capture", stripe.on(authorized.reference, eur("12.50")))
    assert form(stripe.sent()[-1])["amount_to_capture"] == "1250"
    assert (captured.amount, captured.authorized, captured.captured, captured.refunded) == (
        eur("12.50"), eur("30.00"), eur("12.50"), eur("0.00"))
    assert captured.state == ProviderState.CAPTURED
    with pytest.raises(StateError) as again:
        stripe.run("capture", stripe.on(authorized.reference, eur("1.00")))
    assert again.value.code == "payment_intent_unexpected_state" and not again.value.retryable


def test_a_capture_beyond_the_authorization_is_refused_and_changes_nothing(stripe: Any) -> None:
    authorized = stripe.authorize(eur("30.00"))
    with pytest.raises(InvalidRequest) as refused:
        stripe.run("capture", stripe.on(authorized.reference, eur("30.01")))
    assert (refused.value.code, refused.value.param) == ("amount_too_large", "amount_to_capture")
    assert stripe.fetch(authorized.reference).state == ProviderState.AUTHORIZED


def test_a_non_final_capture_is_refused_because_stripe_captures_once(stripe: Any) -> None:
    authorized = stripe.authorize(eur("30.00"))
    before = len(stripe.sent())
    with pytest.raises(UnsupportedOperation) as refused:
        stripe.run("capture", stripe.on(authorized.reference, eur("10.00"), final=False))
    assert refused.value.param == "final" and len(stripe.sent()) == before


def test_capture_void_and_refund_without_a_reference_send_nothing(stripe: Any) -> None:
    for command in ("capture", "void", "refund"):
        with pytest.raises(InvalidRequest) as refused:
            stripe.run(command, stripe.on(None, eur("1.00")))
        assert refused.value.param == "reference"
    assert stripe.sent() == []


# -- void ----------------------------------------------------------------------------------------
@pytest.mark.parametrize("reason, sent", [
    ("requested_by_customer", "requested_by_customer"),
    ("Fraud", "fraudulent"),
    ("duplicate", "duplicate"),
    ("expired", "abandoned"),
    ("the shop changed its mind", None),
    (None, None),
])
def test_void_cancels_with_stripes_reason(stripe: Any, form: Any, reason: str | None, sent: str | None) -> None:
    authorized = stripe.authorize(eur("8.00"))
    voided = stripe.run("void", stripe.on(authorized.reference, reason=reason))
    assert form(stripe.sent()[-1]).get("cancellation_reason") == sent
    assert stripe.app.get(authorized.reference)["cancellation_reason"] == sent
    assert (voided.state, voided.authorized, voided.captured) == (ProviderState.VOIDED, eur("8.00"), eur("0.00"))


def test_a_void_after_a_capture_is_refused(stripe: Any) -> None:
    sold = stripe.sale(eur("8.00"))
    with pytest.raises(StateError):
        stripe.run("void", stripe.on(sold.reference))
    assert stripe.fetch(sold.reference).state == ProviderState.CAPTURED


# -- refund --------------------------------------------------------------------------------------
def test_several_partial_refunds_up_to_the_capture(stripe: Any, form: Any) -> None:
    sold = stripe.sale(eur("20.00"))
    subject = stripe.on(sold.reference, eur("5.00"), reason="requested_by_customer")
    first = stripe.run("refund", subject)
    assert form(stripe.sent()[-1]) == {"payment_intent": sold.reference, "amount": "500",
                                       "reason": "requested_by_customer", "expand[0]": "charge",
                                       "metadata[paywire_idempotency_key]": subject.idempotency_key}
    assert first.reference.startswith("re_") and first.references["payment"] == sold.reference
    assert (first.amount, first.refunded, first.state) == (eur("5.00"), eur("5.00"), ProviderState.PARTIALLY_REFUNDED)
    rest = stripe.run("refund", stripe.on(sold.reference))  # no amount: all that is left
    assert "amount" not in form(stripe.sent()[-1])
    assert (rest.amount, rest.refunded, rest.state) == (eur("15.00"), eur("20.00"), ProviderState.REFUNDED)
    with pytest.raises(StateError) as nothing_left:
        stripe.run("refund", stripe.on(sold.reference, eur("0.01")))
    assert nothing_left.value.code == "charge_already_refunded"


def test_a_refund_beyond_the_capture_is_refused(stripe: Any) -> None:
    authorized = stripe.authorize(eur("20.00"))
    stripe.run("capture", stripe.on(authorized.reference, eur("15.00")))
    with pytest.raises(InvalidRequest) as refused:
        stripe.run("refund", stripe.on(authorized.reference, eur("15.01")))
    assert refused.value.code == "amount_too_large"
    fetched = stripe.fetch(authorized.reference)
    assert (fetched.captured, fetched.refunded) == (eur("15.00"), eur("0.00"))


def test_refunds_after_a_partial_capture_count_only_what_was_captured(stripe: Any) -> None:
    authorized = stripe.authorize(eur("20.00"))
    stripe.run("capture", stripe.on(authorized.reference, eur("15.00")))
    refund = stripe.run("refund", stripe.on(authorized.reference, eur("15.00")))
    assert (refund.captured, refund.refunded, refund.state) == (eur("15.00"), eur("15.00"), ProviderState.REFUNDED)


def test_a_reason_stripe_does_not_know_is_kept_in_the_refunds_metadata(stripe: Any, form: Any) -> None:
    sold = stripe.sale(eur("20.00"))
    subject = stripe.on(sold.reference, eur("1.00"), reason="item arrived broken")
    refund = stripe.run("refund", subject)
    sent = form(stripe.sent()[-1])
    assert "reason" not in sent and sent["metadata[paywire_reason]"] == "item arrived broken"
    assert stripe.app.get(refund.reference)["metadata"] == {"paywire_reason": "item arrived broken",
                                                            "paywire_idempotency_key": subject.idempotency_key}


def test_a_refund_can_name_the_charge(stripe: Any, form: Any) -> None:
    sold = stripe.sale(eur("20.00"))
    refund = stripe.run("refund", stripe.on(sold.references["charge"], eur("2.00")))
    assert form(stripe.sent()[-1])["charge"] == sold.references["charge"]
    assert refund.references["payment"] == sold.reference


def test_refunding_an_uncaptured_authorization_is_refused(stripe: Any) -> None:
    authorized = stripe.authorize(eur("20.00"))
    with pytest.raises(InvalidRequest):
        stripe.run("refund", stripe.on(authorized.reference, eur("1.00")))


# -- fetch ---------------------------------------------------------------------------------------
def test_fetch_reads_the_intent_with_its_latest_charge(stripe: Any, form: Any) -> None:
    authorized = stripe.authorize(eur("40.00"))
    stripe.run("capture", stripe.on(authorized.reference, eur("25.00")))
    stripe.run("refund", stripe.on(authorized.reference, eur("5.00")))
    fetched = stripe.fetch(authorized.reference)
    transfer, refunds = stripe.sent()[-2:]
    assert transfer.method == "GET" and transfer.url.split("?")[0].endswith(f"/v1/payment_intents/{authorized.reference}")
    assert form(transfer) == {"expand[0]": "latest_charge"}
    assert transfer.idempotency_key is None and "Idempotency-Key" not in transfer.headers
    assert refunds.method == "GET" and refunds.url.split("?")[0].endswith("/v1/refunds")
    assert form(refunds) == {"payment_intent": authorized.reference, "limit": "100"}
    assert (fetched.state, fetched.authorized, fetched.captured, fetched.refunded) == (
        ProviderState.PARTIALLY_REFUNDED, eur("40.00"), eur("25.00"), eur("5.00"))


def test_fetch_finds_an_intent_by_the_key_it_was_created_with(stripe: Any, form: Any) -> None:
    subject = stripe.payment(eur("9.00"))
    created = stripe.run("authorize", subject)
    stripe.authorize(eur("9.00"), order=subject.order)  # same order, another key
    found = stripe.run("fetch", Subject(idempotency_key=subject.idempotency_key, order=subject.order))
    query = form(stripe.sent()[-1])
    assert query["query"] == (f"metadata['paywire_idempotency_key']:'{subject.idempotency_key}' AND "
                              f"metadata['paywire_order']:'{subject.order.id}'")
    assert query["expand[0]"] == "data.latest_charge"
    assert (found.reference, found.state, found.authorized) == (created.reference, ProviderState.AUTHORIZED,
                                                                eur("9.00"))


@pytest.mark.parametrize("key", ["order-7's auth", "a AND b OR c", "back\\slash-'quote'", 'say "hi"'])
def test_fetch_by_key_searches_for_keys_with_quotes_backslashes_and_search_words(
    stripe: Any, form: Any, key: str
) -> None:
    """The emulator's search ended a quoted value at its first quote (an escaped one included) and
    split the query at every AND or OR, even inside quotes: the intent of such a key was not found
    (fetch fell back to listing the latest intents) or the query was refused, where Stripe's search
    (a backslash escapes a quote) finds it."""
    subject = stripe.payment(eur("9.00"), idempotency_key=key, order=Order(id=f"{key} order"))
    created = stripe.run("authorize", subject)
    found = stripe.run("fetch", Subject(idempotency_key=key, order=subject.order))
    assert (found.reference, found.state) == (created.reference, ProviderState.AUTHORIZED)
    assert stripe.sent()[-1].url.split("?")[0].endswith("/v1/payment_intents/search")


def test_fetch_by_a_key_nothing_was_created_with_is_not_found(stripe: Any, form: Any) -> None:
    stripe.authorize(eur("9.00"))
    found = stripe.run("fetch", Subject(idempotency_key="never-used"))
    assert found.state == ProviderState.NOT_FOUND and found.reference is None
    search, recent = stripe.sent()[-2:]
    assert search.url.split("?")[0].endswith("/v1/payment_intents/search")
    assert recent.url.split("?")[0].endswith("/v1/payment_intents")
    assert form(recent) == {"limit": "100", "expand[0]": "data.latest_charge"}


def test_fetch_by_key_finds_a_recent_intent_the_search_index_has_not_caught_up_with(
    stripe: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    from paywire_stripe.emulator import search

    subject = stripe.payment(eur("9.00"))
    created = stripe.run("authorize", subject)
    stripe.authorize(eur("9.00"))  # a later intent of another key
    monkeypatch.setattr(search.Query, "matches", lambda self, intent: False)  # Stripe's index lags writes
    found = stripe.run("fetch", Subject(idempotency_key=subject.idempotency_key, order=subject.order))
    assert (found.reference, found.state, found.authorized) == (created.reference, ProviderState.AUTHORIZED,
                                                                eur("9.00"))


def test_fetch_by_key_since_the_first_send_pages_through_every_intent_created_since(
    stripe: Any, app: Any, api: Any, form: Any
) -> None:
    """Stripe's search index lags writes (for long during an outage), and a busy account makes more
    than the 100 intents one list page holds after the one whose answer was lost: fetch then
    reported not_found for an intent Stripe holds, and reconciliation recorded it failed. Given
    when the first request was sent, fetch lists every intent created since (less the clock skew)
    page by page, and reports not_found only once Stripe has no more."""
    from paywire.ledger.model import now

    app.search_lag = 3600.0  # search finds nothing of the last hour
    sent_at = now()
    subject = stripe.payment(eur("9.00"))
    created = stripe.run("authorize", subject)
    later = [api.intent()["id"] for _ in range(120)]
    since = str(int(sent_at.timestamp()) - 600)  # less 10 minutes for Stripe's clock being behind ours

    mark = len(stripe.sent())
    found = stripe.run("fetch", Subject(idempotency_key=subject.idempotency_key, order=subject.order,
                                        sent_at=sent_at))
    assert (found.reference, found.state, found.authorized) == (created.reference, ProviderState.AUTHORIZED,
                                                                eur("9.00"))
    search, first, second = stripe.sent()[mark:]
    assert search.url.split("?")[0].endswith("/v1/payment_intents/search")
    assert form(first) == {"limit": "100", "created[gte]": since, "expand[0]": "data.latest_charge"}
    assert form(second) == {"limit": "100", "created[gte]": since, "starting_after": later[-100],
                            "expand[0]": "data.latest_charge"}

    mark = len(stripe.sent())
    missing = stripe.run("fetch", Subject(idempotency_key="never-sent", sent_at=sent_at))
    assert missing.state == ProviderState.NOT_FOUND
    assert [form(t).get("starting_after") for t in stripe.sent()[mark + 1:]] == [None, later[-100]]
    # Only what was created since is looked at: sent an hour later, the request made nothing before.
    after = stripe.run("fetch", Subject(idempotency_key=subject.idempotency_key, order=subject.order,
                                        sent_at=sent_at + timedelta(hours=1)))
    assert after.state == ProviderState.NOT_FOUND


def test_fetch_by_key_with_no_time_of_sending_reads_only_the_latest_intents(stripe: Any, app: Any, api: Any) -> None:
    """Without `sent_at` (a caller of the gateway's own), the list is not paged through: an account's
    whole history is no lookup; its not_found is the search's and the latest 100's."""
    app.search_lag = 3600.0
    subject = stripe.payment(eur("9.00"))
    stripe.run("authorize", subject)
    for _ in range(100):
        api.intent()
    mark = len(stripe.sent())
    found = stripe.run("fetch", Subject(idempotency_key=subject.idempotency_key, order=subject.order))
    assert found.state == ProviderState.NOT_FOUND and len(stripe.sent()) == mark + 2


def test_fetch_without_reference_or_key_is_refused(stripe: Any) -> None:
    with pytest.raises(InvalidRequest) as refused:
        stripe.run("fetch", Subject())
    assert refused.value.param == "reference" and stripe.sent() == []


def test_fetch_of_an_unknown_intent_is_an_invalid_request_naming_it(stripe: Any) -> None:
    with pytest.raises(InvalidRequest) as refused:
        stripe.fetch("pi_unknown0000")
    assert (refused.value.code, refused.value.param, refused.value.status) == ("resource_missing", "intent", 404)


def test_a_declined_payment_is_fetched_as_failed(stripe: Any) -> None:
    with pytest.raises(Exception) as declined:
        stripe.authorize(eur("9.00"), "pm_card_chargeDeclined")
    reference = declined.value.details["payment_intent"]
    fetched = stripe.fetch(reference)
    assert (fetched.state, fetched.authorized) == (ProviderState.FAILED, eur("0.00"))
