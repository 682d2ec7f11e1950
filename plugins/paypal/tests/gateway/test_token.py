"""The OAuth access token: one fetch, cached, refreshed once after a 401, never shown."""

from __future__ import annotations

import base64
import logging
import threading
import time
from collections.abc import Callable

import pytest

from paywire import AuthenticationError, Money, ProviderUnavailable, Retry, TransportError
from paywire.testing.emulator import Fault

TOKEN = "/v1/oauth2/token"


def test_the_token_request_is_http_basic_with_client_credentials(paypal):
    paypal.run("token")
    token_request = paypal.sent[0]
    assert (token_request.method, token_request.url) == ("POST", paypal.url + TOKEN)
    assert token_request.body == b"grant_type=client_credentials"
    assert token_request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    authorization = token_request.all_headers()["Authorization"]
    assert authorization == "Basic " + base64.b64encode(
        f"{paypal.app.client_id}:gateway-test-client-secret-5c1e9a".encode()).decode()


def test_one_token_serves_every_call_and_is_sent_as_bearer(paypal):
    paypal.authorized()
    paypal.authorized()
    paypal.run("fetch", reference=paypal.authorized().references["payment"])
    assert paypal.calls(TOKEN) == 1
    token = next(iter(paypal.app.tokens))
    api_calls = [transfer for transfer in paypal.sent if TOKEN not in transfer.url]
    assert {transfer.all_headers()["Authorization"] for transfer in api_calls} == {f"Bearer {token}"}


def test_the_token_is_fetched_on_the_first_request_not_when_the_method_is_built(paypal):
    assert len(paypal.gateway.method("paypal").commands) > 0
    assert paypal.calls(TOKEN) == 0


def test_a_token_expiring_mid_flow_is_refreshed_once_and_the_call_sent_again(paypal):
    authorization = paypal.authorized()
    paypal.app.expire_tokens()  # PayPal ends the token while we still hold it
    capture = paypal.run("capture", reference=authorization.reference, amount=Money.of("40.00", "EUR"),
                         idempotency_key=paypal.key())
    assert capture.amount == Money.of("40.00", "EUR")
    assert paypal.calls(TOKEN) == 2
    assert paypal.calls("/capture") == 2  # refused with 401, then sent again with the new token
    assert len(paypal.app.captures) == 1


def test_the_cached_token_is_renewed_shortly_before_it_expires(serve_paypal, emulator):
    # PayPal's clock is the test's: it moves on 1.9 s while the token cache's own clock waits 1.9 s
    # or longer, so however loaded the machine, PayPal's expiry (2 s) never comes first.
    paypal_now = [time.time()]
    paypal = serve_paypal(emulator(token_ttl=2, clock=lambda: paypal_now[0]))
    paypal.authorized()
    time.sleep(1.9)  # within the refresh margin (a tenth of the lifetime) but before PayPal's expiry
    paypal_now[0] += 1.9
    paypal.authorized()
    assert paypal.calls(TOKEN) == 2
    assert paypal.calls("/v2/checkout/orders") == 2  # no call was refused with 401


def test_concurrent_first_requests_fetch_one_token(paypal):
    sources = [paypal.app.vault_card() for _ in range(12)]
    errors = run_in_threads([lambda source=source: paypal.run(
        "authorize", amount=Money.of("5.00", "EUR"), source=source, idempotency_key=f"first-{source}")
        for source in sources])
    assert errors == []
    assert paypal.calls(TOKEN) == 1
    assert len(paypal.app.orders) == 12


def test_concurrent_calls_after_expiry_trigger_one_refresh(paypal):
    orders = [paypal.authorized().references["payment"] for _ in range(12)]
    paypal.app.expire_tokens()
    errors = run_in_threads([lambda order=order: paypal.run("fetch", reference=order) for order in orders])
    assert errors == []
    assert paypal.calls(TOKEN) == 2


def test_wrong_credentials_are_a_final_authentication_error(paypal):
    gateway = paypal.gateway_with(credentials={"client_id": "someone", "client_secret": "wrong-secret-value",
                                               "webhook_id": "X"})
    with pytest.raises(AuthenticationError) as raised:
        paypal.run("authorize", gateway=gateway, amount=Money.of("5.00", "EUR"), source="paypal",
                   idempotency_key=paypal.key())
    assert raised.value.code == "invalid_client" and not raised.value.retryable
    assert paypal.calls("/v2/") == 0


def test_a_401_that_a_new_token_does_not_cure_is_an_authentication_error(paypal):
    paypal.authorized()
    paypal.app.inject(Fault(kind="status", status=401, path="/v2/checkout/orders$", times=5))
    with pytest.raises(AuthenticationError) as raised:
        paypal.authorized()
    assert raised.value.code == "AUTHENTICATION_FAILURE" and not raised.value.retryable
    assert paypal.calls(TOKEN) == 2  # one refresh; PayPal handed back the same token, so no resend


def test_a_token_endpoint_outage_is_retried_and_then_retryable(paypal):
    paypal.app.inject(Fault(kind="status", status=503, path=TOKEN))
    gateway = paypal.gateway_with(retry=Retry(total=2, backoff_factor=0))
    result = paypal.run("authorize", gateway=gateway, amount=Money.of("5.00", "EUR"), source="paypal",
                        idempotency_key=paypal.key())
    assert result.action_required
    paypal.app.inject(Fault(kind="status", status=503, path=TOKEN, times=3))
    with pytest.raises(ProviderUnavailable) as raised:
        paypal.run("authorize", gateway=paypal.gateway_with(), amount=Money.of("5.00", "EUR"), source="paypal",
                   idempotency_key=paypal.key())
    assert raised.value.retryable and not raised.value.may_have_been_sent


def test_a_token_request_whose_answer_was_lost_is_sent_again_without_a_key(paypal):
    """The token request changes nothing at PayPal, so its factory declares it repeatable: the
    retry policy resends it after a dropped answer, although it carries no idempotency key."""
    paypal.app.inject(Fault(kind="drop_after", path=TOKEN))
    gateway = paypal.gateway_with(retry=Retry(total=2, backoff_factor=0))
    result = paypal.run("authorize", gateway=gateway, amount=Money.of("5.00", "EUR"), source="paypal",
                        idempotency_key=paypal.key())
    assert result.action_required and paypal.calls(TOKEN) == 2
    tokens = [transfer for transfer in paypal.sent if transfer.url.endswith(TOKEN)]
    assert [(t.idempotent, t.idempotency_key) for t in tokens] == [(True, None)] * 2
    assert not any("request-id" in name.lower() for t in tokens for name in t.headers)


def test_a_token_lost_on_the_network_means_the_call_was_not_sent(paypal):
    paypal.app.inject(Fault(kind="drop_after", path=TOKEN))
    with pytest.raises(TransportError) as raised:
        paypal.run("authorize", amount=Money.of("5.00", "EUR"), source="paypal", idempotency_key=paypal.key())
    assert raised.value.retryable and not raised.value.may_have_been_sent
    assert paypal.calls("/v2/") == 0


def test_the_token_never_shows_in_reprs_logs_or_errors(paypal, caplog):
    caplog.set_level(logging.DEBUG)
    paypal.authorized()
    paypal.app.expire_tokens()
    paypal.authorized()
    failure = paypal.attempt("capture", reference="UNKNOWN0000000000", amount=Money.of("1.00", "EUR"),
                             idempotency_key=paypal.key())
    method = paypal.gateway.method("paypal")
    shown = [caplog.text, repr(failure), str(failure), repr(vars(failure)), repr(method.commands),
             *map(repr, method.commands.values()), *map(repr, paypal.sent), repr(paypal.run("token"))]
    for token in paypal.app.tokens:
        assert not [text for text in shown if token in text]
    assert not [text for text in shown if "gateway-test-client-secret" in text]


def run_in_threads(calls: list[Callable[[], object]]) -> list[BaseException]:
    """Run the calls at once (released together by a barrier); the exceptions they raised."""
    barrier = threading.Barrier(len(calls))
    errors: list[BaseException] = []

    def run(call: Callable[[], object]) -> None:
        barrier.wait()
        try:
            call()
        except BaseException as error:
            errors.append(error)

    threads = [threading.Thread(target=run, args=(call,)) for call in calls]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    return errors
