"""Webhooks: notifications signed by Braintree's own SDK (its webhook-testing helper) verify and
parse; any change to the signed form, another key pair, a stale notification, an oversized or
malformed body and an XML bomb are refused with `WebhookVerificationError`."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from decimal import Decimal
from urllib.parse import parse_qsl, urlencode

import braintree
import pytest
from hypothesis import given
from hypothesis import strategies as st

import paywire_braintree
from paywire import EventKind, Gateway, Money, Plugins, WebhookEvent
from paywire.errors import WebhookVerificationError
from paywire.testing.contract.webhooks import byte_tampers, text_tampers
from paywire_braintree.emulator.model import Transaction
from paywire_braintree.emulator.webhooks import notification_body, notification_xml
from paywire_braintree.ids import global_id
from paywire_braintree.notification import parse_notification
from paywire_braintree.signature import sign
from paywire_braintree.states import operation_status
from paywire_braintree.webhook import MAX_BODY

PUBLIC, PRIVATE = "webhook_public_key", "webhook_private_key_0123456789"
FORM = {"content-type": "application/x-www-form-urlencoded"}


def sdk(public: str = PUBLIC, private: str = PRIVATE) -> braintree.BraintreeGateway:
    return braintree.BraintreeGateway(braintree.Configuration(
        braintree.Environment.Sandbox, merchant_id="paywire_merchant", public_key=public, private_key=private))


def form(notification: dict[str, object]) -> bytes:
    return urlencode(notification).encode()


def sample(kind: str, identifier: str = "kj9e3zg3", **keys: str) -> bytes:
    return form(sdk(**keys).webhook_testing.sample_notification(kind, identifier))


def signed_xml(xml: str) -> bytes:
    payload = base64.encodebytes(xml.encode())
    return form({"bt_signature": sign(PUBLIC, PRIVATE, payload), "bt_payload": payload})


@pytest.fixture
def gateway() -> Iterator[Gateway]:
    plugins = Plugins()
    plugins.register(paywire_braintree)
    method = {"provider": "braintree", "environment": "sandbox", "base_url": "http://127.0.0.1:9",
              "credentials": {"public_key": PUBLIC, "private_key": PRIVATE}}
    with Gateway.from_config({"methods": {"braintree": method}}, plugins=plugins) as gateway:
        yield gateway


def parse(gateway: Gateway, body: bytes, headers: dict[str, str] | None = None) -> WebhookEvent:
    return gateway.parse_webhook("braintree", FORM if headers is None else headers, body)


def test_a_settled_sale_signed_by_braintrees_sdk_is_a_capture_of_that_transaction(gateway: Gateway) -> None:
    event = parse(gateway, sample(braintree.WebhookNotification.Kind.TransactionSettled))
    assert (event.kind, event.type, event.amount) == (EventKind.CAPTURED, "transaction_settled", Money.of("100.00", "USD"))
    assert event.reference == global_id("transaction", "kj9e3zg3")
    assert event.references["legacy_id"] == "kj9e3zg3"


def test_a_declined_settlement_undoes_that_transaction(gateway: Gateway) -> None:
    """Declined after it was submitted for settlement, which the ledger records as done: reversed."""
    event = parse(gateway, sample(braintree.WebhookNotification.Kind.TransactionSettlementDeclined))
    assert (event.kind, event.reference) == (EventKind.REVERSED, global_id("transaction", "kj9e3zg3"))


@pytest.mark.parametrize("kind", ["check", "transaction_disbursed", "dispute_opened", "subscription_went_active"])
def test_notifications_that_move_no_money_in_the_ledger_are_other_events(gateway: Gateway, kind: str) -> None:
    event = parse(gateway, sample(kind))
    assert (event.kind, event.type) == (EventKind.OTHER, kind)


def test_a_redelivered_notification_is_the_same_event(gateway: Gateway) -> None:
    body = sample(braintree.WebhookNotification.Kind.TransactionSettled)
    assert parse(gateway, body).id == parse(gateway, body).id


def test_every_single_byte_change_of_the_signed_form_is_refused(gateway: Gateway) -> None:
    body = sample(braintree.WebhookNotification.Kind.TransactionSettled)
    accepted = []
    for label, tampered in byte_tampers(body):
        try:
            parse(gateway, tampered)
        except WebhookVerificationError:
            continue
        accepted.append(label)
    assert not accepted, f"{len(accepted)} tampered bodies verified, e.g. {accepted[:5]}"


def test_every_changed_character_of_bt_signature_is_refused(gateway: Gateway) -> None:
    notification = sdk().webhook_testing.sample_notification("transaction_settled", "kj9e3zg3")
    accepted = []
    for label, signature in text_tampers(notification["bt_signature"]):
        try:
            parse(gateway, form({**notification, "bt_signature": signature}))
        except WebhookVerificationError:
            continue
        accepted.append(label)
    assert not accepted, accepted[:5]


def test_another_key_pair_is_refused(gateway: Gateway) -> None:
    with pytest.raises(WebhookVerificationError):
        parse(gateway, sample("transaction_settled", private="another_private_key"))
    with pytest.raises(WebhookVerificationError):
        parse(gateway, sample("transaction_settled", public="another_public_key"))


def test_during_a_key_rotation_the_pair_for_our_public_key_must_match(gateway: Gateway) -> None:
    notification = sdk().webhook_testing.sample_notification("transaction_settled", "kj9e3zg3")
    old = sign("retired_public_key", "retired_private_key", notification["bt_payload"])
    rotated = {**notification, "bt_signature": f"{old}&{notification['bt_signature']}"}
    assert parse(gateway, form(rotated)).kind == EventKind.CAPTURED
    forged = {**notification, "bt_signature": f"{notification['bt_signature'].split('|')[0]}|{'0' * 40}&{old}"}
    with pytest.raises(WebhookVerificationError):
        parse(gateway, form(forged))


def test_a_stale_notification_is_refused(gateway: Gateway) -> None:
    stale = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 3 * 24 * 3600))
    xml = (f'<notification><timestamp type="datetime">{stale}</timestamp><kind>transaction_settled</kind>'
           "<subject><transaction><id>kj9e3zg3</id><type>sale</type><amount>1.00</amount>"
           "<currency-iso-code>EUR</currency-iso-code></transaction></subject></notification>")
    with pytest.raises(WebhookVerificationError, match="tolerance"):
        parse(gateway, signed_xml(xml))


def test_entities_in_a_signed_payload_are_refused_not_expanded(gateway: Gateway) -> None:
    bomb = ('<?xml version="1.0"?><!DOCTYPE n [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;">]>'
            "<notification><kind>&b;</kind></notification>")
    with pytest.raises(WebhookVerificationError, match="malformed"):
        parse(gateway, signed_xml(bomb))


@pytest.mark.parametrize("body", [
    b"", b"bt_signature=x", b"bt_payload=x", b"\xff\xfe", b"bt_signature=a&bt_signature=b&bt_payload=c",
    b"bt_signature=a|b&bt_payload=<notification/>", b"a" * (MAX_BODY + 1),
])
def test_malformed_and_oversized_bodies_are_refused(gateway: Gateway, body: bytes) -> None:
    with pytest.raises(WebhookVerificationError):
        parse(gateway, body)


def test_a_body_not_posted_as_a_form_is_refused(gateway: Gateway) -> None:
    body = sample("transaction_settled")
    for headers in ({}, {"content-type": "application/json"}):
        with pytest.raises(WebhookVerificationError, match="form"):
            parse(gateway, body, headers)


def test_errors_never_show_the_private_key(gateway: Gateway) -> None:
    try:
        parse(gateway, sample("transaction_settled", private="another_private_key"))
    except WebhookVerificationError as error:
        assert PRIVATE not in str(error) and PRIVATE not in repr(error)


@pytest.mark.parametrize(("amount", "currency"), [("1.005", "EUR"), ("ten", "EUR"), ("1.00", "ZZZ")])
def test_a_signed_notification_with_an_amount_paywire_cannot_hold_is_refused_as_malformed(
        gateway: Gateway, amount: str, currency: str) -> None:
    """Signed by the documented algorithm (Braintree's SDK's own HMAC), but not an amount paywire can
    hold: refused as a malformed notification, like every other shape it cannot read."""
    from braintree.util.crypto import Crypto

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    xml = (f'<notification><timestamp type="datetime">{now}</timestamp><kind>transaction_settled</kind>'
           f"<subject><transaction><id>kj9e3zg3</id><type>sale</type><amount>{amount}</amount>"
           f"<currency-iso-code>{currency}</currency-iso-code></transaction></subject></notification>")
    payload = base64.encodebytes(xml.encode())
    body = form({"bt_signature": f"{PUBLIC}|{Crypto.sha1_hmac_hash(PRIVATE, payload)}", "bt_payload": payload})
    with pytest.raises(WebhookVerificationError, match="malformed"):
        parse(gateway, body)


def test_a_failed_refund_is_about_that_refund_though_braintrees_sdk_names_no_type(gateway: Gateway) -> None:
    """Braintree's own refund_failed sample carries no `<type>credit</type>`: the kind alone says
    its subject is a refund, the object the ledger holds as `refund_<id>`."""
    event = parse(gateway, sample(braintree.WebhookNotification.Kind.RefundFailed, "kj9e3zg3"))
    assert (event.kind, event.reference) == (EventKind.FAILED, global_id("refund", "kj9e3zg3"))
    assert event.references == {"refund": global_id("refund", "kj9e3zg3"), "legacy_id": "kj9e3zg3"}


@pytest.mark.parametrize("kind", ["transaction_settled", "transaction_settlement_declined"])
def test_a_notification_about_an_authorization_settled_in_parts_moves_no_money(gateway: Gateway, kind: str) -> None:
    """The parent of partial settlements carries what it authorized; what moved is its children's,
    each notified on its own. The emulator lists them as Braintree does (its SDK reads them)."""
    parent = Transaction(legacy="parent12", kind="sale", amount=Decimal("50.00"), currency="EUR", exponent=2,
                         status="SETTLED", merchant_account="eur_account",
                         children=[global_id("transaction", "child123"), global_id("transaction", "child456")])
    body = notification_body(PUBLIC, PRIVATE, kind, parent)
    fields = dict(parse_qsl(body.decode()))
    read = sdk().webhook_notification.parse(fields["bt_signature"], fields["bt_payload"])
    assert read.transaction.partial_settlement_transaction_ids == ["child123", "child456"]
    event = parse(gateway, body)
    assert (event.kind, event.type, event.amount) == (EventKind.OTHER, kind, None)
    assert event.reference == global_id("transaction", "parent12")
    child = Transaction(legacy="child123", kind="sale", amount=Decimal("20.00"), currency="EUR", exponent=2,
                        status="SETTLED", merchant_account="eur_account", parent=parent.id)
    event = parse(gateway, notification_body(PUBLIC, PRIVATE, "transaction_settled", child))
    assert (event.kind, event.amount) == (EventKind.CAPTURED, Money.of("20.00", "EUR"))


@pytest.mark.parametrize(("history", "credit", "kind"), [
    (("AUTHORIZED", "SUBMITTED_FOR_SETTLEMENT", "SETTLEMENT_DECLINED"), False, EventKind.REVERSED),
    (("AUTHORIZED", "SUBMITTED_FOR_SETTLEMENT", "SETTLING", "SETTLEMENT_DECLINED"), True, EventKind.REVERSED),
    (("AUTHORIZED", "SETTLEMENT_PENDING", "SETTLEMENT_DECLINED"), False, EventKind.FAILED),
    (("AUTHORIZED", "SETTLEMENT_PENDING", "SETTLEMENT_DECLINED"), True, EventKind.FAILED),
    ((), False, EventKind.REVERSED),  # no history told: taken as submitted, as most are
])
def test_a_settlement_declined_is_a_reversal_only_of_what_was_submitted_for_settlement(
        gateway: Gateway, history: tuple[str, ...], credit: bool, kind: str) -> None:
    """Declined after it was submitted for settlement (reported done), a sale, capture or refund
    took effect and was undone: reversed. Declined while it only waited for settlement (reported
    accepted), it never took effect: failed. The notification's status-history, which
    Braintree's SDK reads, tells them apart."""
    declined = Transaction(legacy="declined1", kind="credit" if credit else "sale", amount=Decimal("20.00"),
                           currency="EUR", exponent=2, status="SETTLEMENT_DECLINED", merchant_account="eur_account",
                           history=[{"status": status, "timestamp": "2026-01-01T00:00:00Z"} for status in history])
    body = notification_body(PUBLIC, PRIVATE, "transaction_settlement_declined", declined)
    fields = dict(parse_qsl(body.decode()))
    read = sdk().webhook_notification.parse(fields["bt_signature"], fields["bt_payload"])
    assert [event.status for event in read.transaction.status_history] == [status.lower() for status in history]
    event = parse(gateway, body)
    assert (event.kind, event.reference, event.amount) == (
        kind, global_id("refund" if credit else "transaction", "declined1"), Money.of("20.00", "EUR"))


_STATUSES = ("AUTHORIZING", "AUTHORIZED", "SUBMITTED_FOR_SETTLEMENT", "SETTLEMENT_PENDING", "SETTLING",
             "SETTLEMENT_CONFIRMED", "SETTLED")


@given(history=st.lists(st.sampled_from(_STATUSES), min_size=1, max_size=5), credit=st.booleans())
def test_a_settlement_declined_notification_and_reconcile_read_one_history_alike(
        history: list[str], credit: bool) -> None:
    """One transaction declined at settlement, one status-history: its notification and `fetch`
    (`states.operation_status`, what reconcile reads) must agree on whether it was undone
    (reversed) or never took effect (failed), or a lost request would be settled one way or the
    other by whichever came first. A history holding SETTLED or SETTLEMENT_CONFIRMED (reported
    done, as `states.CAPTURED` lists them) was undone."""
    history = [*history, "SETTLEMENT_DECLINED"]
    declined = Transaction(legacy="declined2", kind="credit" if credit else "sale", amount=Decimal("20.00"),
                           currency="EUR", exponent=2, status="SETTLEMENT_DECLINED", merchant_account="eur_account",
                           history=[{"status": status, "timestamp": "2026-01-01T00:00:00Z"} for status in history])
    event, _ = parse_notification(notification_xml("transaction_settlement_declined", declined))
    fetched = operation_status("SETTLEMENT_DECLINED", [{"status": status} for status in history])
    assert (event.kind, fetched) in ((EventKind.REVERSED, "reversed"), (EventKind.FAILED, "failed"))
