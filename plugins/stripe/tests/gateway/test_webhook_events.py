"""The events the emulator emits for real operations, parsed: what each means for the payment."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import EventKind, Money


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")



def test_an_authorization_and_its_capture(stripe: Any, events: Any) -> None:
    authorized = stripe.authorize(eur("30.00"))
    event = events("payment_intent.amount_capturable_updated")
    assert (event.kind, event.reference, event.amount, event.total) == (
        EventKind.AUTHORIZED, authorized.reference, eur("30.00"), None)
    assert event.references["payment_intent"] == authorized.reference
    assert event.references["charge"] == authorized.references["charge"]
    charge = events("charge.succeeded")
    assert (charge.kind, charge.reference, charge.amount) == (EventKind.AUTHORIZED, authorized.reference, eur("30.00"))

    stripe.run("capture", stripe.on(authorized.reference, eur("20.00")))
    succeeded = events("payment_intent.succeeded")
    assert (succeeded.kind, succeeded.amount, succeeded.total) == (EventKind.CAPTURED, eur("20.00"), eur("20.00"))
    captured = events("charge.captured")
    assert (captured.kind, captured.reference, captured.total) == (EventKind.CAPTURED, authorized.reference,
                                                                   eur("20.00"))
    assert captured.references["charge"] == authorized.references["charge"]


def test_a_sale_is_captured_at_once(stripe: Any, events: Any) -> None:
    sold = stripe.sale(eur("12.00"))
    charge = events("charge.succeeded")
    assert (charge.kind, charge.reference, charge.total) == (EventKind.CAPTURED, sold.reference, eur("12.00"))


def test_refunds_name_the_refund_and_the_charges_running_total_is_no_floor(stripe: Any, events: Any) -> None:
    authorized = stripe.authorize(eur("30.00"))
    stripe.run("capture", stripe.on(authorized.reference, eur("20.00")))  # releases 10.00
    refund = stripe.run("refund", stripe.on(authorized.reference, eur("5.00")))
    created = events("refund.created")
    assert (created.kind, created.reference, created.amount) == (EventKind.REFUNDED, refund.reference, eur("5.00"))
    assert created.references["payment_intent"] == authorized.reference
    assert created.references["refund"] == refund.reference
    # charge.refunded's amount_refunded counts pending refunds too, which may still fail: the
    # refund events say what each refund did, so the charge's total raises nothing.
    refunded = events("charge.refunded")
    assert (refunded.kind, refunded.amount, refunded.total) == (EventKind.OTHER, None, None)


def test_a_void_and_the_released_authorization(stripe: Any, events: Any) -> None:
    authorized = stripe.authorize(eur("30.00"))
    stripe.run("void", stripe.on(authorized.reference))
    canceled = events("payment_intent.canceled")
    assert (canceled.kind, canceled.reference) == (EventKind.VOIDED, authorized.reference)
    released = events("charge.refunded")  # Stripe releases an uncaptured charge as refunded
    assert (released.kind, released.total) == (EventKind.VOIDED, None)


def test_a_decline_and_a_3ds_challenge(stripe: Any, events: Any) -> None:
    with pytest.raises(Exception):
        stripe.authorize(eur("30.00"), "pm_card_chargeDeclined")
    assert events("payment_intent.payment_failed").kind == EventKind.FAILED
    assert events("charge.failed").kind == EventKind.FAILED
    started = stripe.authorize(eur("30.00"), "pm_card_threeDSecure2Required")
    waiting = events("payment_intent.requires_action")
    assert (waiting.kind, waiting.reference) == (EventKind.ACTION_REQUIRED, started.reference)


def test_events_about_other_objects_change_no_payment(stripe: Any, events: Any, app: Any) -> None:
    from paywire import Customer, Subject

    stripe.run("vault", Subject(source="pm_card_visa", customer=Customer(email="a@shop.example"),
                                idempotency_key=stripe.key()))
    attached = events("payment_method.attached")
    assert attached.kind == EventKind.OTHER
    assert attached.references["payment_method"] == attached.reference
    assert attached.references["customer"].startswith("cus_")
    created = events("payment_intent.created") if app.events_of_type("payment_intent.created") else None
    assert created is None or created.kind == EventKind.OTHER


def test_the_event_time_and_raw_data_are_kept(stripe: Any, events: Any) -> None:
    stripe.authorize(eur("30.00"))
    event = events("payment_intent.amount_capturable_updated")
    assert event.occurred_at is not None and event.occurred_at.tzinfo is not None
    assert event.data["data"]["object"]["object"] == "payment_intent"
