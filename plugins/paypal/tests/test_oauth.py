"""OAuth client credentials: PayPal's token response, its errors, expiry, and scopes."""

from __future__ import annotations


def test_token_response_has_paypals_fields(api):
    response = api.oauth()
    assert response.status == 200
    body = response.json()
    assert set(body) == {"scope", "access_token", "token_type", "app_id", "expires_in", "nonce"}
    assert body["token_type"] == "Bearer"
    assert body["app_id"].startswith("APP-")
    assert 0 < body["expires_in"] <= 32400
    assert "https://uri.paypal.com/services/payments/payment/authcapture" in body["scope"].split()


def test_a_valid_token_is_handed_out_again_until_it_expires(api):
    first, second = api.oauth().json(), api.oauth().json()
    assert first["access_token"] == second["access_token"]
    api.app.expire_tokens()
    assert api.oauth().json()["access_token"] != first["access_token"]


def test_wrong_secret_is_invalid_client(api):
    response = api.oauth(secret="not-the-secret")
    assert response.status == 401
    assert response.json() == {"error": "invalid_client", "error_description": "Client Authentication failed"}


def test_unknown_client_and_missing_basic_auth_are_invalid_client(api):
    assert api.oauth(client_id="someone-else").status == 401
    response = api.request("POST", "/v1/oauth2/token", raw=b"grant_type=client_credentials", auth=False)
    assert response.status == 401
    assert response.json()["error"] == "invalid_client"


def test_grant_type_must_be_client_credentials(api):
    assert api.oauth(form="").json()["error"] == "unsupported_grant_type"
    response = api.oauth(form="grant_type=password")
    assert (response.status, response.json()["error"]) == (400, "unsupported_grant_type")


def test_api_call_without_authorization_header_is_authentication_failure(api):
    response = api.get("/v2/checkout/orders/ANY", auth=False)
    assert response.status == 401
    assert response.json()["name"] == "AUTHENTICATION_FAILURE"
    assert response.json()["debug_id"] == response.headers["Paypal-Debug-Id"]


def test_unknown_token_is_invalid_token(api):
    response = api.get("/v2/checkout/orders/ANY", headers={"Authorization": "Bearer A21AAnot-a-token"})
    assert response.status == 401
    assert response.json() == {"error": "invalid_token", "error_description": "Access Token not found in cache"}


def test_token_expiring_mid_flow_is_refused_then_a_new_token_works(api):
    order = api.create_order()
    api.app.expire_tokens()
    response = api.get(f"/v2/checkout/orders/{order['id']}")
    assert (response.status, response.json()["error"]) == (401, "invalid_token")
    api._token = None  # the client fetches a new token, as a real one does on invalid_token
    assert api.get(f"/v2/checkout/orders/{order['id']}").status == 200


def test_tokens_expire_after_the_configured_lifetime(new_app, serve):
    now = [1_700_000_000.0]
    api = serve(new_app(token_ttl=60, clock=lambda: now[0]))
    body = api.oauth().json()
    assert body["expires_in"] == 60
    now[0] += 59
    assert api.oauth().json()["expires_in"] == 1
    assert api.get("/v2/checkout/orders/ANY").status == 404  # still valid: reaches the API
    now[0] += 1
    assert api.get("/v2/checkout/orders/ANY").status == 401


def test_expire_tokens_control_endpoint(api):
    api.token()
    assert api.request("POST", "/_paywire/paypal/expire-tokens", auth=False).status == 200
    assert api.get("/v2/checkout/orders/ANY").status == 401


def test_token_limited_to_requested_scopes_is_not_authorized_elsewhere(api):
    orders_only = "https://uri.paypal.com/services/payments/payment"
    body = api.oauth(form=f"grant_type=client_credentials&scope={orders_only}").json()
    assert body["scope"] == orders_only
    headers = {"Authorization": f"Bearer {body['access_token']}"}
    assert (
        api.post(
            "/v2/checkout/orders",
            {"intent": "CAPTURE", "purchase_units": [{"amount": {"currency_code": "USD", "value": "1.00"}}]},
            headers=headers,
        ).status
        == 201
    )
    response = api.get("/v3/vault/payment-tokens?customer_id=abcdefg", headers=headers)
    assert response.status == 403
    assert (response.json()["name"], response.issue) == ("NOT_AUTHORIZED", "PERMISSION_DENIED")


def test_oauth_over_https(tls_api):
    assert tls_api.url.startswith("https://127.0.0.1:")
    assert tls_api.oauth().status == 200
    order = tls_api.create_order()
    assert all(link["href"].startswith(tls_api.url) for link in order["links"])


def test_secrets_stay_out_of_reprs(api):
    token = api.token()
    assert "test-client-secret" not in repr(api.app)
    assert token not in repr(api.app.tokens[token])
