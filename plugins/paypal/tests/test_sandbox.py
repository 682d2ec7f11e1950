"""The emulator as a paywire sandbox: credentials and seeded test sources that behave as named."""

from __future__ import annotations

import base64
import json

import pytest
import urllib3

from paywire_paypal.emulator import PayPalEmulator
from paywire_paypal.emulator.sandbox import approve_as_buyer, sandbox


@pytest.fixture
def served():
    box = sandbox()
    with box.app.serve() as server:
        pool = urllib3.PoolManager()
        basic = base64.b64encode(f"{box.credentials['client_id']}:{box.credentials['client_secret']}".encode()).decode()
        token = json.loads(
            pool.request(
                "POST",
                f"{server.url}/v1/oauth2/token",
                body=b"grant_type=client_credentials",
                headers={"Authorization": f"Basic {basic}"},
            ).data
        )["access_token"]

        def order(source, request_id):
            body = {
                "intent": "CAPTURE",
                "purchase_units": [{"amount": {"currency_code": "USD", "value": "9.99"}}],
                "payment_source": source,
            }
            response = pool.request(
                "POST",
                f"{server.url}/v2/checkout/orders",
                body=json.dumps(body),
                headers={
                    "Authorization": f"Bearer {token}",
                    "Content-Type": "application/json",
                    "PayPal-Request-Id": request_id,
                },
            )
            return response.status, json.loads(response.data)

        yield box, order, pool, server.url, token


def test_sandbox_sources_behave_as_their_roles(served):
    box, order, *_ = served
    assert not box.app.events
    status, ok = order({"card": {"vault_id": box.sources["ok"]}}, "ok")
    assert (status, ok["purchase_units"][0]["payments"]["captures"][0]["status"]) == (201, "COMPLETED")
    _, declined = order({"card": {"vault_id": box.sources["decline"]}}, "decline")
    assert declined["purchase_units"][0]["payments"]["captures"][0]["status"] == "DECLINED"
    _, vaulted = order({"paypal": {"vault_id": box.sources["vault"]}}, "vault")
    assert vaulted["status"] == "COMPLETED"
    assert box.credentials["webhook_id"] == box.app.webhook_id


def test_sandbox_buyer_approves_at_the_payer_action_link(served):
    _, order, pool, url, token = served
    status, created = order({"paypal": {"experience_context": {"return_url": "https://shop.invalid/ok"}}}, "buyer")
    assert (status, created["status"]) == (201, "PAYER_ACTION_REQUIRED")
    link = next(link["href"] for link in created["links"] if link["rel"] == "payer-action")
    approve_as_buyer(link)  # stops at the redirect to the (unreachable) shop
    captured = pool.request(
        "POST", f"{url}/v2/checkout/orders/{created['id']}/capture", headers={"Authorization": f"Bearer {token}"}
    )
    assert captured.status == 201


def test_vault_controls_refuse_unknown_payers(app):
    with pytest.raises(ValueError, match="payer must be"):
        app.vault_paypal(payer="cancel")


def test_public_url_is_used_for_links_behind_a_proxy(serve):
    app = PayPalEmulator(
        client_id="test-client-id", client_secret="test-client-secret", public_url="https://paypal.proxy.example/"
    )
    api = serve(app)
    order = api.create_order()
    assert {link["href"].split("/v2")[0].split("/checkoutnow")[0] for link in order["links"]} == {
        "https://paypal.proxy.example"
    }
    assert app.cert_url().startswith("https://paypal.proxy.example/v1/notifications/certs/CERT-")
