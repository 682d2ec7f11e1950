"""Orders v2: creation and its validation, links, buyer approval, authorize and capture rules, patch."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest


def rels(view):
    return {link["rel"]: link for link in view["links"]}


def order_body(value="100.00", currency="USD", intent="CAPTURE", **unit):
    return {"intent": intent, "purchase_units": [{"amount": {"currency_code": currency, "value": value}, **unit}]}


# -- creation -----------------------------------------------------------------------------------
def test_created_order_is_minimal_with_approve_link_on_the_emulator(api):
    order = api.create_order()
    assert set(order) == {"id", "status", "links"}
    assert order["status"] == "CREATED"
    links = rels(order)
    assert set(links) == {"self", "approve", "update", "capture"}
    assert links["approve"]["href"] == f"{api.url}/checkoutnow?token={order['id']}"
    assert links["update"]["method"] == "PATCH"
    assert len(order["id"]) == 17 and order["id"].isalnum() and order["id"].isupper()


def test_prefer_representation_returns_the_whole_order(api):
    body = order_body(
        "30.00",
        reference_id="cart-1",
        invoice_id="INV-1",
        custom_id="C-1",
        description="Two things",
        items=[{"name": "thing", "quantity": "2", "unit_amount": {"currency_code": "USD", "value": "15.00"}}],
        shipping={"name": {"full_name": "A B"}, "address": {"country_code": "DE"}},
    )
    body["purchase_units"][0]["amount"]["breakdown"] = {"item_total": {"currency_code": "USD", "value": "30.00"}}
    response = api.post("/v2/checkout/orders", body, headers={"Prefer": "return=representation"})
    assert response.status == 201
    order = response.json()
    assert (order["intent"], order["status"]) == ("CAPTURE", "CREATED")
    unit = order["purchase_units"][0]
    assert unit["reference_id"] == "cart-1"
    assert unit["amount"]["breakdown"]["item_total"]["value"] == "30.00"
    assert (unit["invoice_id"], unit["custom_id"], unit["description"]) == ("INV-1", "C-1", "Two things")
    assert unit["items"][0]["quantity"] == "2"
    assert unit["shipping"]["address"]["country_code"] == "DE"
    assert {"create_time", "update_time"} <= set(order)


def test_authorize_intent_offers_an_authorize_link(api):
    assert "authorize" in rels(api.create_order(intent="AUTHORIZE"))


def test_paypal_payment_source_makes_the_order_wait_for_payer_action(api):
    body = order_body()
    body["payment_source"] = {"paypal": {"experience_context": {"return_url": "https://shop.example/ok"}}}
    order = api.post("/v2/checkout/orders", body).json()
    assert order["status"] == "PAYER_ACTION_REQUIRED"
    assert order["payment_source"] == {"paypal": {}}
    assert rels(order)["payer-action"]["href"] == f"{api.url}/checkoutnow?token={order['id']}"


def test_get_order_is_the_full_representation(api):
    created = api.create_order(value="10.5")
    order = api.get(f"/v2/checkout/orders/{created['id']}").json()
    assert order["purchase_units"][0]["amount"] == {"currency_code": "USD", "value": "10.50"}
    assert order["purchase_units"][0]["payee"]["merchant_id"]


def test_unknown_order_is_resource_not_found(api):
    response = api.get("/v2/checkout/orders/5O190127TN364715T")
    assert response.status == 404
    body = response.json()
    assert (body["name"], response.issue) == ("RESOURCE_NOT_FOUND", "INVALID_RESOURCE_ID")
    assert body["links"][0]["rel"] == "information_link"


@pytest.mark.parametrize(
    ("body", "status", "issue", "field"),
    [
        (
            {"purchase_units": [{"amount": {"currency_code": "USD", "value": "1.00"}}]},
            400,
            "MISSING_REQUIRED_PARAMETER",
            "/intent",
        ),
        (order_body(intent="SALE"), 400, "INVALID_PARAMETER_VALUE", "/intent"),
        ({"intent": "CAPTURE"}, 400, "MISSING_REQUIRED_PARAMETER", "/purchase_units"),
        ({"intent": "CAPTURE", "purchase_units": []}, 400, "INVALID_ARRAY_MIN_ITEMS", "/purchase_units"),
        (order_body("1,00"), 400, "INVALID_PARAMETER_SYNTAX", "/purchase_units/@reference_id=='default'/amount/value"),
        (order_body("ten"), 400, "INVALID_PARAMETER_SYNTAX", None),
        (order_body("10.00\n"), 400, "INVALID_PARAMETER_SYNTAX", None),  # the pattern's $, not a line's end
        (order_body(" 10.00"), 400, "INVALID_PARAMETER_SYNTAX", None),
        (order_body("0.00"), 422, "CANNOT_BE_ZERO_OR_NEGATIVE", None),
        (order_body("-5.00"), 422, "CANNOT_BE_ZERO_OR_NEGATIVE", None),
        (order_body("10.001"), 422, "DECIMAL_PRECISION", None),
        (order_body("100.50", "JPY"), 422, "DECIMAL_PRECISION", None),
        (order_body("100.00", "HUF"), 422, "DECIMAL_PRECISION", None),
        (order_body("100.5", "TWD"), 422, "DECIMAL_PRECISION", None),
        (order_body("1000000000000000.00"), 422, "MAX_VALUE_EXCEEDED", None),
        (
            order_body("10.00", "KRW"),
            422,
            "CURRENCY_NOT_SUPPORTED",
            "/purchase_units/@reference_id=='default'/amount/currency_code",
        ),
        (order_body("10.00", "XYZ"), 422, "INVALID_CURRENCY_CODE", None),
        (order_body("10.00", "US"), 400, "INVALID_STRING_LENGTH", None),
        (
            order_body(invoice_id="x" * 128),
            400,
            "INVALID_STRING_LENGTH",
            "/purchase_units/@reference_id=='default'/invoice_id",
        ),
    ],
)
def test_order_validation_errors(api, body, status, issue, field):
    response = api.post("/v2/checkout/orders", body)
    assert response.status == status, response
    assert response.json()["name"] == {400: "INVALID_REQUEST", 422: "UNPROCESSABLE_ENTITY"}[status]
    detail = response.json()["details"][0]
    assert detail["issue"] == issue
    assert detail["description"]
    if field is not None:
        assert (detail["field"], detail["location"]) == (field, "body")


def test_whole_numbers_are_fine_for_no_decimal_currencies(api):
    order = api.create_order("1500", "JPY")
    full = api.get(f"/v2/checkout/orders/{order['id']}").json()
    assert full["purchase_units"][0]["amount"] == {"currency_code": "JPY", "value": "1500"}


def with_breakdown(value, breakdown, items=None):
    body = order_body(value)
    unit = body["purchase_units"][0]
    unit["amount"]["breakdown"] = {k: {"currency_code": "USD", "value": v} for k, v in breakdown.items()}
    if items is not None:
        unit["items"] = items
    return body


def item(price, quantity="1", tax=None):
    entry = {"name": "x", "quantity": quantity, "unit_amount": {"currency_code": "USD", "value": price}}
    if tax is not None:
        entry["tax"] = {"currency_code": "USD", "value": tax}
    return entry


@pytest.mark.parametrize(
    ("body", "issue"),
    [
        (with_breakdown("10.00", {"item_total": "8.00", "shipping": "1.00"}), "AMOUNT_MISMATCH"),
        (with_breakdown("10.00", {"item_total": "10.00", "discount": "-1.00"}), "CANNOT_BE_NEGATIVE"),
        (with_breakdown("10.00", {"item_total": "10.00"}, [item("4.00", "2")]), "ITEM_TOTAL_MISMATCH"),
        (
            {
                **order_body("10.00"),
                "purchase_units": [{**order_body("10.00")["purchase_units"][0], "items": [item("10.00")]}],
            },
            "ITEM_TOTAL_REQUIRED",
        ),
        (
            with_breakdown("11.00", {"item_total": "10.00", "tax_total": "1.00"}, [item("5.00", "2", "0.40")]),
            "TAX_TOTAL_MISMATCH",
        ),
        (with_breakdown("10.00", {"item_total": "10.00"}, [item("5.00", "2", "0.50")]), "TAX_TOTAL_REQUIRED"),
    ],
)
def test_breakdown_and_items_must_add_up(api, body, issue):
    response = api.post("/v2/checkout/orders", body)
    assert (response.status, response.issue) == (422, issue), response


def test_consistent_breakdown_with_items_and_discounts_is_accepted(api):
    body = with_breakdown(
        "21.50",
        {"item_total": "20.00", "tax_total": "1.00", "shipping": "2.00", "discount": "1.50"},
        [item("5.00", "4", "0.25")],
    )
    assert api.post("/v2/checkout/orders", body).status == 201


def test_several_purchase_units_need_unique_reference_ids_and_one_currency(api):
    unit = {"amount": {"currency_code": "USD", "value": "5.00"}}
    no_ref = api.post("/v2/checkout/orders", {"intent": "CAPTURE", "purchase_units": [unit, unit]})
    assert (no_ref.status, no_ref.issue) == (422, "REFERENCE_ID_REQUIRED")
    duplicate = api.post(
        "/v2/checkout/orders",
        {"intent": "CAPTURE", "purchase_units": [{**unit, "reference_id": "a"}, {**unit, "reference_id": "a"}]},
    )
    assert duplicate.issue == "DUPLICATE_REFERENCE_ID"
    mixed = api.post(
        "/v2/checkout/orders",
        {
            "intent": "CAPTURE",
            "purchase_units": [
                {**unit, "reference_id": "a"},
                {"reference_id": "b", "amount": {"currency_code": "EUR", "value": "5.00"}},
            ],
        },
    )
    assert mixed.issue == "MULTI_CURRENCY_ORDER"
    authorize = api.post(
        "/v2/checkout/orders",
        {"intent": "AUTHORIZE", "purchase_units": [{**unit, "reference_id": "a"}, {**unit, "reference_id": "b"}]},
    )
    assert authorize.issue == "UNSUPPORTED_INTENT"


def test_multiple_purchase_units_are_each_captured(api):
    unit = {"amount": {"currency_code": "USD", "value": "5.00"}}
    order = api.post(
        "/v2/checkout/orders",
        {"intent": "CAPTURE", "purchase_units": [{**unit, "reference_id": "a"}, {**unit, "reference_id": "b"}]},
    ).json()
    api.app.approve(order["id"])
    captured = api.post(f"/v2/checkout/orders/{order['id']}/capture").json()
    assert [u["reference_id"] for u in captured["purchase_units"]] == ["a", "b"]
    assert all(u["payments"]["captures"][0]["status"] == "COMPLETED" for u in captured["purchase_units"])


def test_malformed_json_is_malformed_request_json(api):
    response = api.request(
        "POST", "/v2/checkout/orders", raw=b"{not json", headers={"Content-Type": "application/json"}
    )
    assert (response.status, response.issue) == (400, "MALFORMED_REQUEST_JSON")


def test_card_numbers_are_refused_outside_the_vault(api):
    body = order_body()
    body["payment_source"] = {"card": {"number": "4111111111111111", "expiry": "2030-01"}}
    response = api.post("/v2/checkout/orders", body)
    assert (response.status, response.issue) == (422, "NOT_ENABLED_FOR_CARD_PROCESSING")
    assert "4111111111111111" not in response.body.decode()


# -- approval -----------------------------------------------------------------------------------
def test_capture_or_authorize_before_approval_is_order_not_approved(api):
    order = api.create_order()
    response = api.post(f"/v2/checkout/orders/{order['id']}/capture")
    assert (response.status, response.json()["name"], response.issue) == (
        422,
        "UNPROCESSABLE_ENTITY",
        "ORDER_NOT_APPROVED",
    )
    auth_order = api.create_order(intent="AUTHORIZE")
    assert api.post(f"/v2/checkout/orders/{auth_order['id']}/authorize").issue == "ORDER_NOT_APPROVED"


def test_buyer_approval_by_visiting_the_link_redirects_to_return_url(api):
    body = order_body()
    body["payment_source"] = {
        "paypal": {
            "experience_context": {
                "return_url": "https://shop.example/return?cart=9",
                "cancel_url": "https://shop.example/cancel",
            }
        }
    }
    order = api.post("/v2/checkout/orders", body).json()
    visit = api.get(rels(order)["payer-action"]["href"], auth=False)
    assert visit.status == 302
    location = urlsplit(visit.headers["Location"])
    query = parse_qs(location.query)
    assert (location.netloc, location.path) == ("shop.example", "/return")
    assert query["cart"] == ["9"] and query["token"] == [order["id"]]
    full = api.get(f"/v2/checkout/orders/{order['id']}").json()
    assert full["status"] == "APPROVED"
    assert query["PayerID"] == [full["payer"]["payer_id"]]
    assert full["payment_source"]["paypal"]["account_id"] == full["payer"]["payer_id"]
    assert set(rels(full)) == {"self", "update", "capture"}


def test_approval_page_answers_json_without_return_url_and_accepts_post(api):
    order = api.create_order()
    response = api.request("POST", f"/checkoutnow?token={order['id']}", auth=False)
    assert response.status == 200
    assert response.json()["status"] == "APPROVED"
    assert response.headers["Paypal-Debug-Id"]


def test_buyer_cancelling_changes_nothing_and_goes_to_cancel_url(api):
    body = order_body()
    body["application_context"] = {"return_url": "https://shop.example/ok", "cancel_url": "https://shop.example/no"}
    order = api.post("/v2/checkout/orders", body).json()
    visit = api.get(f"/checkoutnow?token={order['id']}&payer=cancel", auth=False)
    assert visit.status == 302 and visit.headers["Location"].startswith("https://shop.example/no?token=")
    assert api.get(f"/v2/checkout/orders/{order['id']}").json()["status"] == "CREATED"


def test_approval_page_refuses_unknown_orders_and_payer_choices(api):
    assert api.get("/checkoutnow?token=NOPE", auth=False).status == 404
    order = api.create_order()
    response = api.get(f"/checkoutnow?token={order['id']}&payer=rich", auth=False)
    assert (response.status, response.issue) == (400, "INVALID_PARAMETER_VALUE")


def test_approve_control_endpoint(api):
    order = api.create_order()
    response = api.request("POST", "/_paywire/paypal/approve", {"order_id": order["id"]}, auth=False)
    assert response.status == 200
    assert api.get(f"/v2/checkout/orders/{order['id']}").json()["status"] == "APPROVED"
    missing = api.request("POST", "/_paywire/paypal/approve", {"order_id": "NOPE"}, auth=False)
    assert missing.status == 404


# -- capture and authorize ------------------------------------------------------------------------
def test_capture_completes_the_order_with_a_full_capture(api):
    order_id = api.approved_order("25.00")
    response = api.post(f"/v2/checkout/orders/{order_id}/capture")
    assert response.status == 201
    order = response.json()
    assert order["status"] == "COMPLETED"
    assert set(rels(order)) == {"self"}
    capture = order["purchase_units"][0]["payments"]["captures"][0]
    assert (capture["status"], capture["final_capture"]) == ("COMPLETED", True)
    assert capture["amount"] == {"currency_code": "USD", "value": "25.00"}
    breakdown = capture["seller_receivable_breakdown"]
    fee, net = breakdown["paypal_fee"]["value"], breakdown["net_amount"]["value"]
    assert float(fee) > 0 and round(float(fee) + float(net), 2) == 25.00
    assert capture["supplementary_data"]["related_ids"] == {"order_id": order_id}
    assert {link["rel"] for link in capture["links"]} == {"self", "refund", "up"}


def test_second_capture_is_order_already_captured(api):
    order_id = api.approved_order()
    assert api.post(f"/v2/checkout/orders/{order_id}/capture").status == 201
    again = api.post(f"/v2/checkout/orders/{order_id}/capture")
    assert (again.status, again.issue) == (422, "ORDER_ALREADY_CAPTURED")
    assert len(api.app.captures) == 1


def test_authorize_creates_an_authorization_once(api):
    order_id = api.approved_order(intent="AUTHORIZE")
    order = api.post(f"/v2/checkout/orders/{order_id}/authorize").json()
    assert order["status"] == "COMPLETED"
    auth = order["purchase_units"][0]["payments"]["authorizations"][0]
    assert auth["status"] == "CREATED"
    assert {"capture", "void", "reauthorize", "up"} <= {link["rel"] for link in auth["links"]}
    assert auth["expiration_time"] > auth["create_time"]
    again = api.post(f"/v2/checkout/orders/{order_id}/authorize")
    assert (again.status, again.issue) == (422, "ORDER_ALREADY_AUTHORIZED")


def test_action_must_match_intent(api):
    order_id = api.approved_order(intent="AUTHORIZE")
    response = api.post(f"/v2/checkout/orders/{order_id}/capture")
    assert (response.status, response.issue) == (422, "ACTION_DOES_NOT_MATCH_INTENT")


def test_declining_payer_gives_instrument_declined_with_a_redirect_back_to_paypal(api):
    order_id = api.approved_order(payer="decline")
    response = api.post(f"/v2/checkout/orders/{order_id}/capture")
    assert (response.status, response.issue) == (422, "INSTRUMENT_DECLINED")
    redirect = rels(response.json())["redirect"]
    assert redirect["href"] == f"{api.url}/checkoutnow?token={order_id}"
    assert api.get(f"/v2/checkout/orders/{order_id}").json()["status"] == "APPROVED"
    api.get(redirect["href"], auth=False)  # the buyer picks another funding source
    assert api.post(f"/v2/checkout/orders/{order_id}/capture").status == 201


def test_payer_action_required_sends_the_order_back_to_the_buyer(api):
    order_id = api.approved_order(payer="payer_action")
    response = api.post(f"/v2/checkout/orders/{order_id}/capture")
    assert (response.status, response.issue) == (422, "PAYER_ACTION_REQUIRED")
    order = api.get(f"/v2/checkout/orders/{order_id}").json()
    assert order["status"] == "PAYER_ACTION_REQUIRED"
    assert "payer-action" in rels(order)
    api.app.approve(order_id)
    assert api.post(f"/v2/checkout/orders/{order_id}/capture").json()["status"] == "COMPLETED"


def test_denying_payer_gives_a_declined_capture(api):
    capture = api.capture(payer="deny")
    assert capture["status"] == "DECLINED"
    assert "seller_receivable_breakdown" not in capture
    assert [e["event_type"] for e in api.app.events][-1] == "PAYMENT.CAPTURE.DENIED"


def test_pending_capture_settles_later(api):
    capture = api.capture(payer="pending")
    assert (capture["status"], capture["status_details"]) == ("PENDING", {"reason": "PENDING_REVIEW"})
    refund = api.post(f"/v2/payments/captures/{capture['id']}/refund")
    assert (refund.status, refund.issue) == (422, "PENDING_CAPTURE")
    api.app.settle_capture(capture["id"], "COMPLETED")
    assert api.get(f"/v2/payments/captures/{capture['id']}").json()["status"] == "COMPLETED"
    assert [e["event_type"] for e in api.app.events][-2:] == ["PAYMENT.CAPTURE.PENDING", "PAYMENT.CAPTURE.COMPLETED"]


def test_duplicate_invoice_id_is_refused_on_a_second_order(api):
    first = api.create_order(unit={"invoice_id": "INV-42"})
    second = api.create_order(unit={"invoice_id": "INV-42"})
    for order in (first, second):
        api.app.approve(order["id"])
    assert api.post(f"/v2/checkout/orders/{first['id']}/capture").status == 201
    response = api.post(f"/v2/checkout/orders/{second['id']}/capture")
    assert (response.status, response.issue) == (422, "DUPLICATE_INVOICE_ID")


def test_authorization_voided_whole_voids_the_order(api):
    auth = api.authorization()
    assert api.post(f"/v2/payments/authorizations/{auth['id']}/void").status == 204
    order_id = auth["supplementary_data"]["related_ids"]["order_id"]
    assert api.get(f"/v2/checkout/orders/{order_id}").json()["status"] == "VOIDED"


# -- patch --------------------------------------------------------------------------------------
def test_patch_replaces_amount_and_description_before_capture(api):
    order = api.create_order("10.00")
    path = "/purchase_units/@reference_id=='default'"
    response = api.request(
        "PATCH",
        f"/v2/checkout/orders/{order['id']}",
        [
            {"op": "replace", "path": f"{path}/amount", "value": {"currency_code": "USD", "value": "12.00"}},
            {"op": "add", "path": f"{path}/description", "value": "Now with gift wrap"},
        ],
    )
    assert response.status == 204
    unit = api.get(f"/v2/checkout/orders/{order['id']}").json()["purchase_units"][0]
    assert (unit["amount"]["value"], unit["description"]) == ("12.00", "Now with gift wrap")
    api.app.approve(order["id"])
    captured = api.post(f"/v2/checkout/orders/{order['id']}/capture").json()
    assert captured["purchase_units"][0]["payments"]["captures"][0]["amount"]["value"] == "12.00"


def test_patch_errors(api):
    order = api.create_order("10.00")
    url = f"/v2/checkout/orders/{order['id']}"
    path = "/purchase_units/@reference_id=='default'"

    def patch(*ops):
        return api.request("PATCH", url, list(ops))

    assert (
        patch({"op": "replace", "path": "/purchase_units/0/amount", "value": {}}).issue == "INVALID_JSON_POINTER_FORMAT"
    )
    assert patch({"op": "replace", "path": f"{path}/payee"}).issue == "PATCH_VALUE_REQUIRED"
    assert patch({"op": "replace", "value": 1}).issue == "PATCH_PATH_REQUIRED"
    assert patch({"op": "replace", "path": f"{path}/description", "value": "x"}).issue == "INVALID_PATCH_OPERATION"
    assert patch({"op": "add", "path": f"{path}/payee", "value": {}}).issue == "NOT_PATCHABLE"
    bad_amount = patch({"op": "replace", "path": f"{path}/amount", "value": {"currency_code": "USD", "value": "1.234"}})
    assert (bad_amount.status, bad_amount.issue) == (422, "DECIMAL_PRECISION")
    assert api.get(url).json()["purchase_units"][0]["amount"]["value"] == "10.00"  # nothing applied
    api.app.approve(order["id"])
    api.post(f"{url}/capture")
    done = patch({"op": "add", "path": f"{path}/description", "value": "late"})
    assert (done.status, done.issue) == (422, "ORDER_ALREADY_COMPLETED")
