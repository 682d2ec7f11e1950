"""Payments v2: authorization capture/void/reauthorize, refunds, and PayPal's amount rules."""

from __future__ import annotations

import pytest

USD = "USD"


def money(value, currency=USD):
    return {"currency_code": currency, "value": value}


def capture_auth(api, auth_id, value=None, final=None, **extra):
    body = dict(extra)
    if value is not None:
        body["amount"] = money(value)
    if final is not None:
        body["final_capture"] = final
    return api.post(f"/v2/payments/authorizations/{auth_id}/capture", body)


# -- authorizations -------------------------------------------------------------------------------
def test_get_authorization(api):
    auth = api.authorization("50.00")
    fetched = api.get(f"/v2/payments/authorizations/{auth['id']}").json()
    assert (fetched["status"], fetched["amount"]) == ("CREATED", money("50.00"))
    assert fetched["supplementary_data"]["related_ids"]["order_id"]
    assert api.get("/v2/payments/authorizations/NOPE").status == 404


def test_capture_without_amount_takes_the_whole_authorization(api):
    auth = api.authorization("50.00")
    response = capture_auth(api, auth["id"])
    assert response.status == 201
    assert set(response.json()) == {"id", "status", "links"}  # return=minimal by default
    capture = api.get(f"/v2/payments/captures/{response.json()['id']}").json()
    assert (capture["amount"], capture["status"]) == (money("50.00"), "COMPLETED")
    assert capture["supplementary_data"]["related_ids"] == {
        "order_id": auth["supplementary_data"]["related_ids"]["order_id"],
        "authorization_id": auth["id"],
    }
    assert api.get(f"/v2/payments/authorizations/{auth['id']}").json()["status"] == "CAPTURED"
    again = capture_auth(api, auth["id"], "1.00")
    assert (again.status, again.issue) == (422, "AUTHORIZATION_ALREADY_CAPTURED")


def test_capture_without_amount_after_a_partial_capture_takes_the_whole_authorization_again(api):
    """Payments v2: "If amount is not specified, the full authorized amount is captured", not what
    is left: within the 115% overage a second full capture goes through."""
    auth = api.authorization("100.00")
    assert capture_auth(api, auth["id"], "10.00").status == 201
    response = capture_auth(api, auth["id"])
    assert response.status == 201
    assert api.get(f"/v2/payments/captures/{response.json()['id']}").json()["amount"] == money("100.00")
    over = api.authorization("100.00")
    assert capture_auth(api, over["id"], "30.00").status == 201
    assert capture_auth(api, over["id"]).issue == "MAX_CAPTURE_AMOUNT_EXCEEDED"  # 130.00 is above 115%


def test_partial_captures_until_final_capture(api):
    auth = api.authorization("100.00")
    first = capture_auth(api, auth["id"], "30.00")
    assert first.status == 201
    assert api.get(f"/v2/payments/authorizations/{auth['id']}").json()["status"] == "PARTIALLY_CAPTURED"
    second = capture_auth(api, auth["id"], "20.00", final=True, invoice_id="INV-2", note_to_payer="Thanks")
    assert second.status == 201
    capture = api.get(f"/v2/payments/captures/{second.json()['id']}").json()
    assert (capture["final_capture"], capture["invoice_id"], capture["note_to_payer"]) == (True, "INV-2", "Thanks")
    assert api.get(f"/v2/payments/authorizations/{auth['id']}").json()["status"] == "CAPTURED"
    assert capture_auth(api, auth["id"], "1.00").issue == "AUTHORIZATION_ALREADY_CAPTURED"


def test_captures_may_exceed_the_authorization_up_to_115_percent(api):
    auth = api.authorization("100.00")
    over = capture_auth(api, auth["id"], "115.01")
    assert (over.status, over.issue) == (422, "MAX_CAPTURE_AMOUNT_EXCEEDED")
    assert capture_auth(api, auth["id"], "60.00").status == 201
    assert capture_auth(api, auth["id"], "55.01").issue == "MAX_CAPTURE_AMOUNT_EXCEEDED"
    assert capture_auth(api, auth["id"], "55.00").status == 201
    assert api.get(f"/v2/payments/authorizations/{auth['id']}").json()["status"] == "CAPTURED"


def test_an_over_capture_leaves_the_authorization_at_its_amount_and_captured(api):
    """Payments v2: the authorization's `amount` is what was authorized; captures above it leave
    it CAPTURED, with that amount."""
    auth = api.authorization("100.00")
    assert capture_auth(api, auth["id"], "110.00", final=False).status == 201
    after = api.get(f"/v2/payments/authorizations/{auth['id']}").json()
    assert (after["status"], after["amount"]) == ("CAPTURED", money("100.00"))


@pytest.mark.parametrize(("authorized", "most", "beyond"), [("100.00", "115.00", "115.01"),
                                                            ("1000.00", "1075.00", "1075.01")])
def test_an_overage_is_at_most_115_percent_or_usd_75_whichever_is_less(api, authorized, most, beyond):
    """PayPal: "you can capture up to 115% of or $75 USD more than the original authorized amount,
    whichever is less"; a reauthorization is bounded alike."""
    auth = api.authorization(authorized)
    assert capture_auth(api, auth["id"], beyond).issue == "MAX_CAPTURE_AMOUNT_EXCEEDED"
    api.days_pass(3)  # past the honor period: PayPal reauthorizes from day 4
    refused = api.post(f"/v2/payments/authorizations/{auth['id']}/reauthorize", {"amount": money(beyond)})
    assert (refused.status, refused.issue) == (422, "AUTHORIZATION_AMOUNT_EXCEEDED")
    assert capture_auth(api, auth["id"], most).status == 201


def test_the_usd_75_cap_applies_to_usd_only_unless_configured(new_app, serve):
    """PayPal converts its USD 75 for other currencies; the emulator converts none."""
    api = serve(new_app())
    euros = api.authorization("1000.00", currency="EUR")
    body = {"amount": money("1150.00", "EUR")}
    assert api.post(f"/v2/payments/authorizations/{euros['id']}/capture", body).status == 201
    capped = serve(new_app(capture_overage_max={"EUR": 5000}))
    auth = capped.authorization("1000.00", currency="EUR")
    path = f"/v2/payments/authorizations/{auth['id']}/capture"
    assert capped.post(path, {"amount": money("1050.01", "EUR")}).issue == "MAX_CAPTURE_AMOUNT_EXCEEDED"
    assert capped.post(path, {"amount": money("1050.00", "EUR")}).status == 201


def test_overage_limit_is_configurable(new_app, serve):
    api = serve(new_app(capture_overage_percent=100))
    auth = api.authorization("10.00")
    assert capture_auth(api, auth["id"], "10.01").issue == "MAX_CAPTURE_AMOUNT_EXCEEDED"


def test_the_accounts_number_of_captures_per_authorization_is_enforced(new_app, serve):
    api = serve(new_app(max_captures=2))
    auth = api.authorization("100.00")
    assert capture_auth(api, auth["id"], "10.00", final=False).status == 201
    assert capture_auth(api, auth["id"], "20.00", final=False).status == 201
    refused = capture_auth(api, auth["id"], "30.00", final=False)
    assert (refused.status, refused.json()["name"], refused.issue) == (
        422,
        "UNPROCESSABLE_ENTITY",
        "MAX_CAPTURE_COUNT_EXCEEDED",
    )
    assert refused.json()["details"][0]["description"].startswith("Maxmimum number of allowable captures")
    # Nothing changed: the authorization keeps its two captures, and its rest can be voided.
    assert api.get(f"/v2/payments/authorizations/{auth['id']}").json()["status"] == "PARTIALLY_CAPTURED"
    assert len(api.app.authorizations[auth["id"]].capture_ids) == 2
    assert api.post(f"/v2/payments/authorizations/{auth['id']}/void").status == 204


def test_a_declined_capture_is_not_one_of_the_accounts_captures(new_app, serve):
    api = serve(new_app(max_captures=1))
    auth = api.authorization("100.00", payer="echeck")
    pending = capture_auth(api, auth["id"], "10.00", final=False).json()
    assert pending["status"] == "PENDING"
    api.app.settle_capture(pending["id"], "DECLINED")
    assert capture_auth(api, auth["id"], "10.00", final=False).status == 201


@pytest.mark.parametrize(
    ("amount", "issue"),
    [
        (money("10.00", "EUR"), "AUTH_CAPTURE_CURRENCY_MISMATCH"),
        (money("0"), "CANNOT_BE_ZERO_OR_NEGATIVE"),
        (money("1.005"), "DECIMAL_PRECISION"),
    ],
)
def test_capture_amount_rules(api, amount, issue):
    auth = api.authorization("100.00")
    response = api.post(f"/v2/payments/authorizations/{auth['id']}/capture", {"amount": amount})
    assert (response.status, response.issue) == (422, issue)
    assert response.json()["details"][0]["field"].startswith("/amount")


def test_no_decimal_currency_in_payments_is_decimals_not_supported(api):
    auth = api.authorization("1000", "JPY")
    response = api.post(f"/v2/payments/authorizations/{auth['id']}/capture", {"amount": money("10.50", "JPY")})
    assert (response.status, response.issue) == (422, "DECIMALS_NOT_SUPPORTED")
    assert api.post(f"/v2/payments/authorizations/{auth['id']}/capture", {"amount": money("400", "JPY")}).status == 201


def test_void_before_capture(api):
    auth = api.authorization()
    response = api.post(f"/v2/payments/authorizations/{auth['id']}/void", headers={"Prefer": "return=representation"})
    assert (response.status, response.json()["status"]) == (200, "VOIDED")
    again = api.post(f"/v2/payments/authorizations/{auth['id']}/void")
    assert (again.status, again.issue) == (422, "PREVIOUSLY_VOIDED")
    assert capture_auth(api, auth["id"]).issue == "AUTHORIZATION_VOIDED"
    assert [e["event_type"] for e in api.app.events][-1] == "PAYMENT.AUTHORIZATION.VOIDED"


def test_void_after_full_capture_is_refused_after_partial_capture_allowed(api):
    full = api.authorization()
    capture_auth(api, full["id"])
    refused = api.post(f"/v2/payments/authorizations/{full['id']}/void")
    assert (refused.status, refused.issue) == (422, "PREVIOUSLY_CAPTURED")
    partial = api.authorization()
    capture_auth(api, partial["id"], "10.00")
    assert api.post(f"/v2/payments/authorizations/{partial['id']}/void").status == 204
    assert capture_auth(api, partial["id"], "10.00").issue == "AUTHORIZATION_VOIDED"
    order_id = partial["supplementary_data"]["related_ids"]["order_id"]
    assert api.get(f"/v2/checkout/orders/{order_id}").json()["status"] == "COMPLETED"  # something was captured


def test_expired_authorization_cannot_be_captured(api):
    auth = api.authorization()
    api.app.expire_authorization(auth["id"])
    assert api.get(f"/v2/payments/authorizations/{auth['id']}").json()["status"] == "EXPIRED"
    assert capture_auth(api, auth["id"]).issue == "AUTHORIZATION_EXPIRED"


def test_authorizations_expire_after_29_days(new_app, serve):
    now = [1_700_000_000.0]
    api = serve(new_app(clock=lambda: now[0], token_ttl=60 * 86400))
    auth = api.authorization()
    now[0] += 28 * 86400
    assert api.get(f"/v2/payments/authorizations/{auth['id']}").json()["status"] == "CREATED"
    now[0] += 86400
    assert api.get(f"/v2/payments/authorizations/{auth['id']}").json()["status"] == "EXPIRED"


def test_denied_authorization(api):
    auth = api.authorization(payer="deny")
    assert auth["status"] == "DENIED"
    assert capture_auth(api, auth["id"]).issue == "AUTHORIZATION_DENIED"


def test_reauthorize_creates_a_new_authorization(api):
    auth = api.authorization("100.00")
    api.days_pass(3)  # past the honor period: PayPal reauthorizes from day 4
    response = api.post(f"/v2/payments/authorizations/{auth['id']}/reauthorize", {"amount": money("110.00")})
    assert response.status == 201
    child_id = response.json()["id"]
    assert child_id != auth["id"]
    child = api.get(f"/v2/payments/authorizations/{child_id}").json()
    assert (child["status"], child["amount"]) == ("CREATED", money("110.00"))
    refused = capture_auth(api, auth["id"])
    assert refused.issue == "TRANSACTION_REFUSED"
    assert api.post(f"/v2/payments/authorizations/{child_id}/void").issue == "CANNOT_BE_VOIDED"
    assert api.post(f"/v2/payments/authorizations/{child_id}/reauthorize").issue == "REAUTHORIZATION_NOT_SUPPORTED"
    too_much = api.post(f"/v2/payments/authorizations/{auth['id']}/reauthorize", {"amount": money("116.00")})
    assert too_much.issue == "AUTHORIZATION_AMOUNT_EXCEEDED"
    assert capture_auth(api, child_id, "110.00").status == 201


@pytest.mark.parametrize(("days", "issue"), [(0, "REAUTHORIZATION_TOO_SOON"), (3 - 1 / 86400, "REAUTHORIZATION_TOO_SOON"),
                                             (3, None), (29, "AUTHORIZATION_EXPIRED")])
def test_reauthorize_is_allowed_from_day_4_to_day_29(api, days, issue):
    """PayPal: "A reauthorization is only allowed once from Day 4 to Day 29 since the date of the
    original authorization" (REAUTHORIZATION_TOO_SOON); a refused one leaves the authorization
    as it was."""
    auth = api.authorization("100.00")
    api.days_pass(days)
    response = api.post(f"/v2/payments/authorizations/{auth['id']}/reauthorize", {"amount": money("100.00")})
    if issue is None:
        assert response.status == 201
        return
    assert (response.status, response.issue) == (422, issue)
    assert len(api.app.authorizations) == 1
    if issue == "REAUTHORIZATION_TOO_SOON":
        assert response.json()["details"][0]["description"].startswith("A reauthorization is only allowed once")
        assert api.get(f"/v2/payments/authorizations/{auth['id']}").json()["status"] == "CREATED"
        assert capture_auth(api, auth["id"], "10.00").status == 201


def test_voiding_the_parent_voids_its_reauthorization(api):
    auth = api.authorization()
    api.days_pass(3)
    child_id = api.post(f"/v2/payments/authorizations/{auth['id']}/reauthorize").json()["id"]
    assert api.post(f"/v2/payments/authorizations/{auth['id']}/void").status == 204
    assert api.get(f"/v2/payments/authorizations/{child_id}").json()["status"] == "VOIDED"


# -- refunds --------------------------------------------------------------------------------------
def test_partial_refunds_until_fully_refunded(api):
    capture = api.capture("100.00")
    first = api.post(
        f"/v2/payments/captures/{capture['id']}/refund",
        {"amount": money("30.00"), "invoice_id": "R-1", "note_to_payer": "Sorry"},
        headers={"Prefer": "return=representation"},
    )
    assert first.status == 201
    refund = first.json()
    assert (refund["status"], refund["amount"], refund["invoice_id"]) == ("COMPLETED", money("30.00"), "R-1")
    breakdown = refund["seller_payable_breakdown"]
    assert breakdown["gross_amount"] == money("30.00")
    assert breakdown["total_refunded_amount"] == money("30.00")
    assert {link["rel"] for link in refund["links"]} == {"self", "up"}
    assert api.get(f"/v2/payments/captures/{capture['id']}").json()["status"] == "PARTIALLY_REFUNDED"
    exceeded = api.post(f"/v2/payments/captures/{capture['id']}/refund", {"amount": money("70.01")})
    assert (exceeded.status, exceeded.issue) == (422, "REFUND_AMOUNT_EXCEEDED")
    rest = api.post(f"/v2/payments/captures/{capture['id']}/refund")
    assert rest.status == 201
    final = api.get(f"/v2/payments/refunds/{rest.json()['id']}").json()
    assert final["amount"] == money("70.00")
    assert final["seller_payable_breakdown"]["total_refunded_amount"] == money("100.00")
    assert api.get(f"/v2/payments/captures/{capture['id']}").json()["status"] == "REFUNDED"
    done = api.post(f"/v2/payments/captures/{capture['id']}/refund", {"amount": money("1.00")})
    assert done.issue == "CAPTURE_FULLY_REFUNDED"
    fees = [
        api.get(f"/v2/payments/refunds/{r}").json()["seller_payable_breakdown"]["paypal_fee"]["value"]
        for r in api.app.captures[capture["id"]].refund_ids
    ]
    capture_fee = capture["seller_receivable_breakdown"]["paypal_fee"]["value"]
    assert round(sum(float(f) for f in fees), 2) == float(capture_fee)


def test_refund_rules(api):
    capture = api.capture("100.00")
    mismatch = api.post(f"/v2/payments/captures/{capture['id']}/refund", {"amount": money("1.00", "EUR")})
    assert (mismatch.status, mismatch.issue) == (422, "REFUND_CAPTURE_CURRENCY_MISMATCH")
    declined = api.capture(payer="deny")
    assert api.post(f"/v2/payments/captures/{declined['id']}/refund").issue == "REFUND_NOT_ALLOWED"
    assert api.post("/v2/payments/captures/NOPE/refund").status == 404
    assert api.get("/v2/payments/refunds/NOPE").status == 404


def test_refund_events_carry_the_refund(api):
    capture = api.capture("10.00")
    refund = api.post(f"/v2/payments/captures/{capture['id']}/refund").json()
    event = api.app.events[-1]
    assert (event["event_type"], event["resource_type"]) == ("PAYMENT.CAPTURE.REFUNDED", "refund")
    assert event["resource"]["id"] == refund["id"]
    assert event["summary"] == "A $ 10.00 USD capture payment was refunded"


def test_a_reversed_capture_is_refunded_by_paypal_and_announced_with_that_refund(api):
    capture = api.capture("100.00")
    api.post(f"/v2/payments/captures/{capture['id']}/refund", {"amount": money("30.00")})
    response = api.request("POST", "/_paywire/paypal/reverse", {"capture_id": capture["id"]}, auth=False)
    assert response.status == 200
    reversal = api.get(f"/v2/payments/refunds/{response.json()['refund_id']}").json()
    assert (reversal["status"], reversal["amount"]) == ("COMPLETED", money("70.00"))
    assert reversal["seller_payable_breakdown"]["total_refunded_amount"] == money("100.00")
    assert reversal["links"][-1]["href"].endswith(f"/v2/payments/captures/{capture['id']}")
    assert api.get(f"/v2/payments/captures/{capture['id']}").json()["status"] == "REFUNDED"
    order_id = api.app.captures[capture["id"]].order_id
    listed = api.get(f"/v2/checkout/orders/{order_id}").json()["purchase_units"][0]["payments"]["refunds"]
    assert [refund["id"] for refund in listed][-1] == reversal["id"]
    event = api.app.events[-1]
    assert (event["event_type"], event["resource_type"], event["resource"]) == (
        "PAYMENT.CAPTURE.REVERSED",
        "refund",
        reversal,
    )
    assert event["summary"] == "A $ 70.00 USD capture payment was reversed"
    assert api.post(f"/v2/payments/captures/{capture['id']}/refund").issue == "CAPTURE_FULLY_REFUNDED"
    again = api.request("POST", "/_paywire/paypal/reverse", {"capture_id": capture["id"]}, auth=False)
    assert again.status == 400
    with pytest.raises(ValueError):
        api.app.reverse_capture(api.capture(payer="deny")["id"])


def test_payment_calls_need_the_right_scope(api):
    auth = api.authorization()
    only_refunds = "https://uri.paypal.com/services/payments/refund"
    token = api.oauth(form=f"grant_type=client_credentials&scope={only_refunds}").json()["access_token"]
    response = api.get(f"/v2/payments/authorizations/{auth['id']}", headers={"Authorization": f"Bearer {token}"})
    assert (response.status, response.json()["name"]) == (403, "NOT_AUTHORIZED")
