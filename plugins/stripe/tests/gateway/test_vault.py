"""vault and unvault: a payment method attached to a Stripe customer, charged later off-session."""

from __future__ import annotations

from typing import Any

import pytest

from paywire import Customer, Declined, InvalidRequest, Money, ProviderState, Subject


def eur(amount: str) -> Money:
    return Money.of(amount, "EUR")


def test_vault_creates_a_customer_and_attaches_the_method(stripe: Any, form: Any) -> None:
    buyer = Customer(email="ada@shop.example", name="Ada", phone="+4930123456", id="shop-customer-7")
    stored = stripe.run("vault", Subject(source="pm_card_visa", customer=buyer, idempotency_key="vault-1"))

    create, attach = stripe.sent()
    assert create.url.endswith("/v1/customers") and form(create) == {
        "email": "ada@shop.example", "name": "Ada", "phone": "+4930123456",
        "metadata[paywire_customer]": "shop-customer-7"}
    customer = stored.references["customer"]
    assert attach.url.endswith("/v1/payment_methods/pm_card_visa/attach") and form(attach) == {"customer": customer}
    assert (create.idempotency_key, attach.idempotency_key) == ("vault-1:customer", "vault-1:attach")

    method = stripe.app.get(stored.token)
    assert stored.token.startswith("pm_") and stored.reference == stored.token
    assert method["customer"] == customer == stripe.app.get(customer)["id"]


def test_vault_for_a_known_customer_only_attaches(stripe: Any) -> None:
    first = stripe.run("vault", Subject(source="pm_card_visa", customer=Customer(email="a@shop.example"),
                                        idempotency_key=stripe.key()))
    customer = first.references["customer"]
    second = stripe.run("vault", Subject(source="pm_card_mastercard", customer=Customer(reference=customer),
                                         idempotency_key=stripe.key()))
    assert len(stripe.sent()) == 3 and stripe.sent()[-1].url.endswith("/attach")
    assert second.references["customer"] == customer and len(stripe.app.store.customers) == 1


def test_retrying_a_vault_with_its_key_makes_no_second_customer(stripe: Any) -> None:
    subject = Subject(source="pm_card_visa", customer=Customer(email="a@shop.example"), idempotency_key="vault-2")
    first, again = stripe.run("vault", subject), stripe.run("vault", subject)
    assert again.token == first.token and len(stripe.app.store.customers) == 1


def test_a_vaulted_method_is_charged_off_session_for_its_customer(stripe: Any, form: Any) -> None:
    stored = stripe.run("vault", Subject(source="pm_card_visa", customer=Customer(email="a@shop.example"),
                                         idempotency_key=stripe.key()))
    customer = Customer(reference=stored.references["customer"])
    sold = stripe.sale(eur("15.00"), stored.token, vaulted=True, customer=customer)
    sent = form(stripe.sent()[-1])
    assert (sent["off_session"], sent["confirm"], sent["customer"], sent["payment_method"]) == (
        "true", "true", customer.reference, stored.token)
    assert "return_url" not in sent  # the buyer is not there to come back
    assert (sold.state, sold.captured) == (ProviderState.CAPTURED, eur("15.00"))
    assert sold.references["customer"] == customer.reference
    again = stripe.authorize(eur("5.00"), stored.token, vaulted=True, customer=customer)
    assert again.state == ProviderState.AUTHORIZED  # reusable


def test_a_vaulted_charge_without_the_customer_is_refused_before_sending(stripe: Any) -> None:
    with pytest.raises(InvalidRequest) as refused:
        stripe.authorize(eur("5.00"), "pm_123", vaulted=True)
    assert refused.value.param == "customer.reference" and stripe.sent() == []


def test_a_card_that_fails_validation_cannot_be_vaulted(stripe: Any) -> None:
    with pytest.raises(Declined) as declined:
        stripe.run("vault", Subject(source="pm_card_chargeDeclined", customer=Customer(email="a@shop.example"),
                                    idempotency_key=stripe.key()))
    assert declined.value.decline_code == "generic_decline"


def test_a_vaulted_card_that_declines_charges_is_declined_off_session(stripe: Any) -> None:
    stored = stripe.run("vault", Subject(source="pm_card_chargeCustomerFail", customer=Customer(name="C"),
                                         idempotency_key=stripe.key()))
    with pytest.raises(Declined):
        stripe.sale(eur("5.00"), stored.token, vaulted=True, customer=Customer(reference=stored.references["customer"]))


def test_unvault_detaches_and_the_method_cannot_be_charged_again(stripe: Any) -> None:
    stored = stripe.run("vault", Subject(source="pm_card_visa", customer=Customer(email="a@shop.example"),
                                         idempotency_key=stripe.key()))
    removed = stripe.run("unvault", Subject(source=stored.token, idempotency_key=stripe.key()))
    assert stripe.sent()[-1].url.endswith(f"/v1/payment_methods/{stored.token}/detach")
    assert removed.reference == stored.token and stripe.app.get(stored.token)["customer"] is None
    with pytest.raises(InvalidRequest):
        stripe.sale(eur("5.00"), stored.token, vaulted=True, customer=Customer(reference=stored.references["customer"]))


def test_unvault_without_a_token_sends_nothing(stripe: Any) -> None:
    with pytest.raises(InvalidRequest) as refused:
        stripe.run("unvault", Subject(idempotency_key=stripe.key()))
    assert refused.value.param == "source" and stripe.sent() == []
