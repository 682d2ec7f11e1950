"""The emulator's disputes: a chargeback withdraws funds and makes the charge unrefundable, an
inquiry does neither, and neither touches what the charge captured or refunded."""

from __future__ import annotations

from typing import Any

import pytest

from paywire_stripe.emulator import StripeEmulator


def _sale(api: Any, amount: int = 5000) -> dict[str, Any]:
    return api.ok("POST", "/v1/payment_intents", {"amount": amount, "currency": "eur", "payment_method": "pm_card_visa",
                                                  "payment_method_types": ["card"], "confirm": True})


@pytest.mark.parametrize("won", [True, False])
def test_a_chargeback_refuses_refunds_and_leaves_the_charges_amounts(app: StripeEmulator, api: Any,
                                                                      won: bool) -> None:
    intent = _sale(api)
    api.ok("POST", "/v1/refunds", {"payment_intent": intent["id"], "amount": 1000})
    dispute = app.dispute(intent["id"])
    assert (dispute["amount"], dispute["status"], dispute["is_charge_refundable"]) == (4000, "needs_response", False)
    assert dispute["payment_intent"] == intent["id"]
    refused = api.post("/v1/refunds", {"payment_intent": intent["id"], "amount": 500})
    assert (refused.status, refused.error["code"]) == (400, "charge_disputed")
    app.close_dispute(dispute["id"], won)
    charge = app.get(intent["latest_charge"])
    assert (charge["disputed"], charge["amount_captured"], charge["amount_refunded"]) == (True, 5000, 1000)
    types = [e["type"] for e in app.store.events.values() if e["type"].startswith("charge.dispute.")]
    assert types == ["charge.dispute.created", "charge.dispute.funds_withdrawn",
                     *(["charge.dispute.funds_reinstated"] if won else []), "charge.dispute.closed"]
    assert app.get(dispute["id"])["status"] == ("won" if won else "lost")
    with pytest.raises(ValueError, match="decided already"):
        app.close_dispute(dispute["id"], won)


def test_an_inquiry_withdraws_nothing_and_the_charge_stays_refundable(app: StripeEmulator, api: Any) -> None:
    intent = _sale(api)
    dispute = app.dispute(intent["id"], inquiry=True)
    assert api.post("/v1/refunds", {"payment_intent": intent["id"], "amount": 500}).status == 200
    assert app.close_dispute(dispute["id"], False)["status"] == "warning_closed"
    assert [e["type"] for e in app.store.events.values() if e["type"].startswith("charge.dispute.")] == [
        "charge.dispute.created", "charge.dispute.closed"]


def test_only_captured_money_is_disputed(app: StripeEmulator, api: Any) -> None:
    intent = api.ok("POST", "/v1/payment_intents", {"amount": 5000, "currency": "eur", "payment_method": "pm_card_visa",
                                                    "payment_method_types": ["card"], "confirm": True,
                                                    "capture_method": "manual"})
    with pytest.raises(ValueError, match="no captured money"):
        app.dispute(intent["id"])
