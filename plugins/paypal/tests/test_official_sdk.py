"""PayPal's own Python server SDK (paypal-server-sdk 2.4.0) works against the emulator.

The SDK has no base-URL option: its `Configuration.get_base_uri` picks sandbox or production, so
a subclass answers the emulator's URL instead.
"""

from __future__ import annotations

import pytest

sdk = pytest.importorskip(
    "paypalserversdk", reason="paypal-server-sdk is a test extra: pip install paywire-paypal[test]"
)

from paypalserversdk.configuration import Configuration, Server  # noqa: E402
from paypalserversdk.exceptions.error_exception import ErrorException  # noqa: E402
from paypalserversdk.http.auth.o_auth_2 import ClientCredentialsAuthCredentials  # noqa: E402
from paypalserversdk.models.amount_with_breakdown import AmountWithBreakdown  # noqa: E402
from paypalserversdk.models.checkout_payment_intent import CheckoutPaymentIntent  # noqa: E402
from paypalserversdk.models.order_request import OrderRequest  # noqa: E402
from paypalserversdk.models.purchase_unit_request import PurchaseUnitRequest  # noqa: E402
from paypalserversdk.paypal_serversdk_client import PaypalServersdkClient  # noqa: E402

CLIENT_ID = "test-client-id"
CLIENT_SECRET = "test-client-secret"


class EmulatorConfiguration(Configuration):
    """The SDK's configuration, pointed at the emulator instead of api-m.(sandbox.)paypal.com."""

    def __init__(self, base_url: str, **kwargs):
        self.base_url = base_url
        super().__init__(**kwargs)

    def get_base_uri(self, server=Server.DEFAULT):
        return self.base_url


@pytest.fixture
def client(api):
    credentials = ClientCredentialsAuthCredentials(o_auth_client_id=CLIENT_ID, o_auth_client_secret=CLIENT_SECRET)
    config = EmulatorConfiguration(api.url, client_credentials_auth_credentials=credentials, timeout=10)
    return PaypalServersdkClient(config=config)


def order_request(value="10.00"):
    return OrderRequest(
        intent=CheckoutPaymentIntent.CAPTURE,
        purchase_units=[PurchaseUnitRequest(amount=AmountWithBreakdown(currency_code="USD", value=value))],
    )


def test_sdk_gets_a_token(client):
    token = client.o_auth_authorization.request_token({"authorization": client.oauth_2.build_basic_auth_header()}).body
    assert token.token_type == "Bearer"
    assert token.access_token.startswith("A21AA")
    assert token.expires_in > 0


def test_sdk_creates_gets_and_captures_an_order(client, api):
    created = client.orders.create_order({"body": order_request("10.00"), "prefer": "return=representation"})
    assert created.status_code == 201
    order = created.body
    assert order.status == "CREATED"
    assert order.purchase_units[0].amount.value == "10.00"
    assert any(link.rel == "approve" and link.href.startswith(api.url) for link in order.links)
    assert api.app.orders[order.id].status == "CREATED"

    fetched = client.orders.get_order({"id": order.id}).body
    assert fetched.id == order.id

    with pytest.raises(ErrorException) as declined:
        client.orders.capture_order({"id": order.id})
    assert declined.value.response.status_code == 422
    assert declined.value.details[0].issue == "ORDER_NOT_APPROVED"

    api.app.approve(order.id)
    captured = client.orders.capture_order({"id": order.id, "paypal_request_id": "sdk-capture-1"}).body
    assert captured.status == "COMPLETED"
    capture = captured.purchase_units[0].payments.captures[0]
    assert (capture.status, capture.amount.value) == ("COMPLETED", "10.00")

    refund = client.payments.refund_captured_payment({"capture_id": capture.id, "prefer": "return=representation"}).body
    assert refund.status == "COMPLETED"


def test_sdk_reads_a_funding_failure_and_captures_the_order_once_the_buyer_picked_another_source(client, api):
    """PayPal's "Handle funding failures" as its SDK reads it: 422 INSTRUMENT_DECLINED whose
    `redirect` link sends the buyer back to the approval page; the same order captures after."""
    order_id = api.approved_order(payer="decline")
    with pytest.raises(ErrorException) as declined:
        client.orders.capture_order({"id": order_id, "paypal_request_id": "sdk-funding-1"})
    error = declined.value
    assert (error.response.status_code, error.name, error.details[0].issue) == (
        422, "UNPROCESSABLE_ENTITY", "INSTRUMENT_DECLINED")
    links = {link.rel: link for link in error.links}
    assert "information_link" in links
    assert (links["redirect"].href, links["redirect"].method) == (f"{api.url}/checkoutnow?token={order_id}", "GET")
    assert client.orders.get_order({"id": order_id}).body.status == "APPROVED"
    api.get(links["redirect"].href, auth=False)  # the buyer picks another funding source
    captured = client.orders.capture_order({"id": order_id, "paypal_request_id": "sdk-funding-2"}).body
    assert captured.status == "COMPLETED" and len(api.app.captures) == 1
