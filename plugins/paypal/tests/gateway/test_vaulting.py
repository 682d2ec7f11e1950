"""vault and unvault: a PayPal wallet stored after the buyer approved, charged later without them."""

from __future__ import annotations

import json

import pytest

from paywire import BuyerActionRequired, Customer, InvalidRequest, Money, ProviderState, Retry, StateError
from paywire.testing.emulator import Fault
from paywire_paypal.emulator.sandbox import approve_as_buyer

RETURN_URL = "https://shop.example/paypal/vaulted"


def started_setup(paypal, **fields):
    started = paypal.run("vault", source="paypal", return_url=RETURN_URL, idempotency_key=paypal.key(), **fields)
    assert started.action_required and started.reference == started.references["setup_token"]
    return started


def test_a_wallet_is_vaulted_after_the_buyer_approves_and_charged_without_them(paypal):
    started = started_setup(paypal)
    setup = json.loads(paypal.api_sent[-1].body)
    assert setup == {"payment_source": {"paypal": {"usage_type": "MERCHANT", "customer_type": "CONSUMER",
                                                   "experience_context": {"return_url": RETURN_URL,
                                                                          "cancel_url": RETURN_URL}}}}
    assert started.action.redirect_url.endswith(f"/agreements/approve?approval_session_id={started.reference}")
    approve_as_buyer(started.action.redirect_url)  # the buyer approves on PayPal's page
    stored = paypal.run("vault", source=started.reference, idempotency_key=paypal.key())
    assert json.loads(paypal.api_sent[-1].body) == {"payment_source": {"token": {"id": started.reference,
                                                                            "type": "SETUP_TOKEN"}}}
    assert stored.token in paypal.app.payment_tokens
    assert stored.references["customer"] == started.references["customer"]
    charged = paypal.run("sale", amount=Money.of("9.99", "EUR"), source=stored.token, vaulted=True,
                         customer=Customer(reference=stored.references["customer"]), idempotency_key=paypal.key())
    assert charged.state == ProviderState.CAPTURED


def test_the_customer_paypal_knows_is_named_on_the_setup_token(paypal):
    started_setup(paypal, customer=Customer(email="a@shop.example", reference="cust_42"))
    assert json.loads(paypal.api_sent[-1].body)["customer"] == {"id": "cust_42"}


def test_a_setup_token_the_buyer_has_not_approved_asks_for_the_buyer(paypal):
    started = started_setup(paypal)
    with pytest.raises(BuyerActionRequired) as raised:
        paypal.run("vault", source=started.reference, idempotency_key=paypal.key())
    assert raised.value.code == "PAYER_ACTION_REQUIRED"


def test_a_setup_token_is_exchanged_once(paypal):
    started = started_setup(paypal)
    approve_as_buyer(started.action.redirect_url)
    key = paypal.key()
    first = paypal.run("vault", source=started.reference, idempotency_key=key)
    assert paypal.run("vault", source=started.reference, idempotency_key=key).token == first.token
    with pytest.raises(StateError) as raised:
        paypal.run("vault", source=started.reference, idempotency_key=paypal.key())
    assert raised.value.code == "SETUP_TOKEN_ALREADY_TOKENIZED"


def test_a_payment_token_is_already_vaulted(paypal):
    token = paypal.app.vault_card()
    stored = paypal.run("vault", source=token, idempotency_key=paypal.key())
    assert stored.token == token and stored.references["customer"]
    assert [t.method for t in paypal.api_sent] == ["GET"]


def test_an_unknown_token_is_an_invalid_request(paypal):
    for source in ("NOSUCHSETUPTOKEN", "nosuchtoken"):
        with pytest.raises(InvalidRequest) as raised:
            paypal.run("vault", source=source, idempotency_key=paypal.key())
        assert raised.value.code == "INVALID_RESOURCE_ID"
    with pytest.raises(InvalidRequest):
        paypal.run("vault", idempotency_key=paypal.key())


def test_unvault_deletes_the_token_and_later_charges_fail(paypal):
    token = paypal.app.vault_paypal()
    removed = paypal.run("unvault", source=token)
    assert removed.reference == token and token not in paypal.app.payment_tokens
    assert (paypal.api_sent[-1].method, paypal.api_sent[-1].url) == ("DELETE", f"{paypal.url}/v3/vault/payment-tokens/{token}")
    with pytest.raises(InvalidRequest):
        paypal.run("sale", amount=Money.of("1.00", "EUR"), source=token, vaulted=True, idempotency_key=paypal.key())
    with pytest.raises(InvalidRequest):
        paypal.run("unvault", source=token)


def test_vault_calls_without_the_request_id_paypal_requires_send_nothing(paypal):
    for source in ("paypal", "ABCDEFGHIJ1234567"):
        with pytest.raises(InvalidRequest) as raised:
            paypal.run("vault", source=source)
        assert raised.value.param == "idempotency_key"
    assert paypal.calls() == 0


def test_an_unvault_whose_answer_was_lost_is_not_refused_by_its_retry(paypal):
    """The retry policy sends a keyed DELETE again after a dropped answer; PayPal, having deleted
    the token the first time, answers the second 404: the token is gone, which is what was asked."""
    token = paypal.app.vault_paypal()
    retrying = paypal.gateway_with(retry=Retry(total=2, backoff_factor=0))
    paypal.app.inject(Fault("drop_after", method="DELETE", path="/v3/vault/payment-tokens/"))
    removed = paypal.run("unvault", gateway=retrying, source=token, idempotency_key=paypal.key())
    assert removed.reference == token and token not in paypal.app.payment_tokens
    assert paypal.calls("/v3/vault/payment-tokens/", method="DELETE") == 2
    with pytest.raises(InvalidRequest):  # a token that was never there, asked once, stays refused
        paypal.run("unvault", gateway=retrying, source="nosuchtoken", idempotency_key=paypal.key())
