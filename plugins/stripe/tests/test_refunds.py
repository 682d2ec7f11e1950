"""Refunds: partial and repeated, never above what was captured and not yet refunded."""

from __future__ import annotations

import threading
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st


def _paid(api: Any, amount: int = 1000, **params: Any) -> dict[str, Any]:
    return api.intent(amount=amount, payment_method="pm_card_visa", confirm=True, **params)  # type: ignore[no-any-return]


def test_full_refund_by_payment_intent(api: Any) -> None:
    intent = _paid(api)
    refund = api.ok(
        "POST",
        "/v1/refunds",
        {"payment_intent": intent["id"], "reason": "requested_by_customer", "metadata": {"ticket": "T-1"}},
    )
    assert refund["object"] == "refund" and refund["id"].startswith("re_")
    assert (refund["amount"], refund["status"], refund["reason"], refund["currency"]) == (
        1000,
        "succeeded",
        "requested_by_customer",
        "usd",
    )
    assert (refund["charge"], refund["payment_intent"], refund["metadata"]) == (
        intent["latest_charge"],
        intent["id"],
        {"ticket": "T-1"},
    )
    charge = api.ok("GET", f"/v1/charges/{intent['latest_charge']}", {"expand": ["refunds"]})
    assert (charge["amount_refunded"], charge["refunded"]) == (1000, True)
    assert [r["id"] for r in charge["refunds"]["data"]] == [refund["id"]]


def test_several_partial_refunds_by_charge(api: Any) -> None:
    intent = _paid(api)
    for amount in (300, 300, 400):
        api.ok("POST", "/v1/refunds", {"charge": intent["latest_charge"], "amount": amount})
    charge = api.ok("GET", f"/v1/charges/{intent['latest_charge']}")
    assert (charge["amount_refunded"], charge["refunded"]) == (1000, True)
    listed = api.ok("GET", "/v1/refunds", {"payment_intent": intent["id"]})
    assert [r["amount"] for r in listed["data"]] == [400, 300, 300]


def test_refund_above_the_charge_amount(api: Any) -> None:
    intent = _paid(api)
    response = api.post("/v1/refunds", {"payment_intent": intent["id"], "amount": 1500})
    assert (response.status, response.error["code"], response.error["param"]) == (400, "amount_too_large", "amount")
    assert response.error["message"] == "Refund amount ($15.00) is greater than charge amount ($10.00)"


def test_refund_above_what_is_left(api: Any) -> None:
    intent = _paid(api)
    api.ok("POST", "/v1/refunds", {"payment_intent": intent["id"], "amount": 700})
    response = api.post("/v1/refunds", {"payment_intent": intent["id"], "amount": 301})
    assert response.error["message"] == "Refund amount ($3.01) is greater than unrefunded amount on charge ($3.00)"


def test_refunding_a_fully_refunded_charge(api: Any) -> None:
    intent = _paid(api)
    api.ok("POST", "/v1/refunds", {"payment_intent": intent["id"]})
    response = api.post("/v1/refunds", {"payment_intent": intent["id"]})
    assert (response.error["code"], response.error["message"]) == (
        "charge_already_refunded",
        f"Charge {intent['latest_charge']} has already been refunded.",
    )


def test_refunds_after_a_partial_capture_are_limited_to_the_captured_amount(api: Any) -> None:
    intent = _paid(api, capture_method="manual")
    api.ok("POST", f"/v1/payment_intents/{intent['id']}/capture", {"amount_to_capture": 600})
    refund = api.ok("POST", "/v1/refunds", {"payment_intent": intent["id"]})
    assert refund["amount"] == 600
    charge = api.ok("GET", f"/v1/charges/{intent['latest_charge']}")
    assert (charge["amount_captured"], charge["amount_refunded"], charge["refunded"]) == (600, 1000, True)


def test_an_uncaptured_or_unpaid_intent_has_nothing_to_refund(api: Any) -> None:
    authorized = _paid(api, capture_method="manual")
    response = api.post("/v1/refunds", {"payment_intent": authorized["id"]})
    assert response.error["message"] == (
        f"This PaymentIntent ({authorized['id']}) does not have a successful charge to refund."
    )
    unpaid = api.intent()
    assert api.post("/v1/refunds", {"payment_intent": unpaid["id"]}).status == 400


def test_refund_needs_a_payment_intent_or_a_charge(api: Any) -> None:
    response = api.post("/v1/refunds", {"amount": 100})
    assert "payment_intent or charge" in response.error["message"]
    assert api.post("/v1/refunds", {"charge": "ch_nope"}).error["code"] == "resource_missing"


def test_refund_reason_is_an_enum(api: Any) -> None:
    intent = _paid(api)
    response = api.post("/v1/refunds", {"payment_intent": intent["id"], "reason": "changed_mind"})
    assert response.error["message"] == (
        "Invalid reason: must be one of duplicate, fraudulent, or requested_by_customer"
    )


def test_retrieve_update_and_list_refunds(api: Any) -> None:
    intent = _paid(api)
    refund = api.ok("POST", "/v1/refunds", {"payment_intent": intent["id"], "amount": 100})
    assert api.ok("GET", f"/v1/refunds/{refund['id']}")["amount"] == 100
    updated = api.ok("POST", f"/v1/refunds/{refund['id']}", {"metadata": {"note": "late"}})
    assert updated["metadata"] == {"note": "late"}
    assert [r["id"] for r in api.ok("GET", "/v1/refunds", {"charge": intent["latest_charge"]})["data"]] == [
        refund["id"]
    ]
    expanded = api.ok("GET", f"/v1/refunds/{refund['id']}", {"expand": ["charge", "payment_intent"]})
    assert expanded["charge"]["amount_refunded"] == 100 and expanded["payment_intent"]["status"] == "succeeded"


# -- invariants ---------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    amount=st.integers(min_value=50, max_value=5000),
    capture=st.one_of(st.none(), st.integers(min_value=1, max_value=6000)),
    refunds=st.lists(st.one_of(st.none(), st.integers(min_value=1, max_value=6000)), max_size=5),
)
def test_refunded_never_exceeds_captured(api: Any, amount: int, capture: int | None, refunds: list[int | None]) -> None:
    intent = api.intent(amount=amount, payment_method="pm_card_visa", confirm=True, capture_method="manual")
    response = api.post(
        f"/v1/payment_intents/{intent['id']}/capture", {} if capture is None else {"amount_to_capture": capture}
    )
    captured = amount if capture is None else capture
    if captured > amount:
        assert response.status == 400
        assert api.ok("GET", f"/v1/payment_intents/{intent['id']}")["amount_capturable"] == amount
        return
    assert response.status == 200
    refunded = 0
    for requested in refunds:
        left = captured - refunded
        answer = api.post("/v1/refunds", {"payment_intent": intent["id"], "amount": requested})
        expected = left if requested is None else requested
        if left == 0:
            assert answer.error["code"] == "charge_already_refunded"
        elif expected > left:
            assert answer.error["code"] == "amount_too_large"
        else:
            assert answer.body["amount"] == expected
            refunded += expected
    final = api.ok("GET", f"/v1/payment_intents/{intent['id']}", {"expand": ["latest_charge"]})
    charge = final["latest_charge"]
    assert (final["status"], final["amount_received"], final["amount_capturable"]) == ("succeeded", captured, 0)
    assert charge["amount_captured"] == captured
    assert charge["amount_refunded"] == (amount - captured) + refunded
    assert refunded <= captured
    assert charge["refunded"] == (charge["amount_refunded"] == amount)
    listed = api.ok("GET", "/v1/refunds", {"payment_intent": intent["id"], "limit": 100})
    # At the pinned 2023-08-16 a partial capture books what it released as a Refund too (until 2025-03-31.basil)
    assert sum(r["amount"] for r in listed["data"]) == refunded + (amount - captured)


OPERATIONS = st.lists(st.sampled_from(["confirm", "capture", "cancel", "refund", "decline"]), max_size=6)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(manual=st.booleans(), operations=OPERATIONS)
def test_amounts_stay_consistent_with_the_status(api: Any, manual: bool, operations: list[str]) -> None:
    intent = api.intent(amount=2000, capture_method="manual" if manual else "automatic")
    path = f"/v1/payment_intents/{intent['id']}"
    for operation in operations:
        if operation == "confirm":
            api.post(f"{path}/confirm", {"payment_method": "pm_card_visa"})
        elif operation == "decline":
            api.post(f"{path}/confirm", {"payment_method": "pm_card_chargeDeclined"})
        elif operation == "capture":
            api.post(f"{path}/capture", {"amount_to_capture": 1500})
        elif operation == "cancel":
            api.post(f"{path}/cancel")
        else:
            api.post("/v1/refunds", {"payment_intent": intent["id"], "amount": 700})
        state = api.ok("GET", path, {"expand": ["latest_charge"]})
        status, charge = state["status"], state["latest_charge"]
        assert (state["amount_capturable"] > 0) == (status == "requires_capture")
        assert (state["amount_received"] > 0) == (status == "succeeded")
        assert state["amount_capturable"] + state["amount_received"] <= state["amount"]
        if status == "succeeded":
            assert charge["captured"] and charge["amount_captured"] == state["amount_received"]
            refunds = api.ok("GET", "/v1/refunds", {"payment_intent": intent["id"], "limit": 100})["data"]
            # the refunds (with the release of a partial capture, before 2025-03-31.basil) are what the charge counts
            assert sum(r["amount"] for r in refunds) == charge["amount_refunded"]
        if status == "requires_payment_method" and charge is not None:
            assert charge["status"] == "failed"


def test_concurrent_refunds_never_over_refund(api: Any) -> None:
    intent = _paid(api, amount=1000)
    answers: list[int] = []

    def refund() -> None:
        answers.append(api.post("/v1/refunds", {"payment_intent": intent["id"], "amount": 100}).status)

    threads = [threading.Thread(target=refund) for _ in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(answers) == [200] * 10 + [400] * 6
    charge = api.ok("GET", f"/v1/charges/{intent['latest_charge']}")
    assert (charge["amount_refunded"], charge["refunded"]) == (1000, True)


BASIL = {"Stripe-Version": "2025-03-31.basil"}


def test_from_basil_a_partial_capture_books_no_refund_and_refunds_stay_within_what_was_captured(api: Any) -> None:
    """From 2025-03-31.basil a partial capture creates no Refund and leaves the charge's
    `amount_refunded` alone (https://docs.stripe.com/changelog/basil/2025-03-31/remove-refund-from-partial-capture-and-payment-cancellation-flow):
    the charge counts only real refunds, and what is left to refund is still what was captured."""
    intent = api.intent(amount=2000, payment_method="pm_card_visa", confirm=True, capture_method="manual")
    api.ok("POST", f"/v1/payment_intents/{intent['id']}/capture", {"amount_to_capture": 1500}, headers=BASIL)
    charge = api.ok("GET", f"/v1/charges/{intent['latest_charge']}", headers=BASIL)
    assert (charge["amount_captured"], charge["amount_refunded"], charge["refunded"]) == (1500, 0, False)
    assert api.ok("GET", "/v1/refunds", {"payment_intent": intent["id"]}, headers=BASIL)["data"] == []
    api.ok("POST", "/v1/refunds", {"payment_intent": intent["id"], "amount": 1000}, headers=BASIL)
    refused = api.post("/v1/refunds", {"payment_intent": intent["id"], "amount": 501}, headers=BASIL)
    assert (refused.status, refused.error["code"]) == (400, "amount_too_large")
    api.ok("POST", "/v1/refunds", {"payment_intent": intent["id"]}, headers=BASIL)  # the rest: 500
    charge = api.ok("GET", f"/v1/charges/{intent['latest_charge']}", headers=BASIL)
    assert (charge["amount_refunded"], charge["refunded"]) == (1500, True)


def test_from_basil_a_cancellation_refunds_nothing(api: Any, app: Any) -> None:
    intent = api.intent(amount=2000, payment_method="pm_card_visa", confirm=True, capture_method="manual")
    api.ok("POST", f"/v1/payment_intents/{intent['id']}/cancel", headers=BASIL)
    charge = api.ok("GET", f"/v1/charges/{intent['latest_charge']}", headers=BASIL)
    assert (charge["amount_captured"], charge["amount_refunded"], charge["refunded"]) == (0, 0, False)
    assert not app.store.refunds
    assert "charge.refunded" not in [e["type"] for e in app.store.events.values()]


def test_a_release_booked_as_a_refund_never_fails_on_a_card_whose_refunds_fail(api: Any, app: Any) -> None:
    """The Refund Stripe books for what a partial capture released is Stripe's own bookkeeping, no
    money sent back: it never fails, even on `pm_card_refundFail` (whose real refunds do), so what
    is left to refund stays what was captured."""
    intent = api.intent(amount=1000, payment_method="pm_card_refundFail", confirm=True, capture_method="manual")
    api.ok("POST", f"/v1/payment_intents/{intent['id']}/capture", {"amount_to_capture": 1})
    [release] = api.ok("GET", "/v1/refunds", {"payment_intent": intent["id"]})["data"]
    assert (release["amount"], release["status"]) == (999, "succeeded")
    with pytest.raises(ValueError, match="nothing is left to settle"):
        app.settle(release["id"])
    with pytest.raises(ValueError, match="nothing is left to settle"):
        app.settle(release["id"], False)
    assert app.store.refunds[release["id"]]["status"] == "succeeded"
    refused = api.post("/v1/refunds", {"payment_intent": intent["id"], "amount": 2})
    assert (refused.status, refused.error["code"]) == (400, "amount_too_large")
    refund = api.ok("POST", "/v1/refunds", {"payment_intent": intent["id"], "amount": 1})
    app.settle(refund["id"])  # a real refund of that card fails after it succeeded
    charge = api.ok("GET", f"/v1/charges/{intent['latest_charge']}")
    assert (charge["amount_captured"], charge["amount_refunded"], app.store.refunds[refund["id"]]["status"]) == (
        1, 999, "failed")
