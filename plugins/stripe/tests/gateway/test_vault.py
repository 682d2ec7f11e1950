"""vault and unvault: a payment method attached to a Stripe customer, charged later off-session."""

from __future__ import annotations

import hashlib
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
    # In paywire's own key space, which the payment service refuses to callers.
    assert (create.idempotency_key, attach.idempotency_key) == ("paywire:customer:vault-1", "paywire:attach:vault-1")

    method = stripe.app.get(stored.token)
    assert stored.token.startswith("pm_") and stored.reference == stored.token
    assert method["customer"] == customer == stripe.app.get(customer)["id"]


LONG = "k" * 250  # its steps' keys would pass the 255 characters Stripe keeps


@pytest.mark.parametrize(("key", "earlier", "keys"), [
    ("vault-1", False, ("paywire:customer:vault-1", "paywire:attach:vault-1")),
    (LONG, False, (f"paywire:customer#{hashlib.sha256(LONG.encode()).hexdigest()}",
                   f"paywire:attach#{hashlib.sha256(LONG.encode()).hexdigest()}")),
    ("vault-1", True, ("vault-1:customer", "vault-1:attach")),
    (LONG, True, (f"paywire:{hashlib.sha256(LONG.encode()).hexdigest()}:customer",
                  f"paywire:{hashlib.sha256(LONG.encode()).hexdigest()}:attach")),
])
def test_the_keys_of_a_vaults_steps(stripe: Any, key: str, earlier: bool, keys: tuple[str, str]) -> None:
    """Each step's key is made from the vault's, within Stripe's limit; a vault an earlier release
    sent (`earlier_step_keys`) sends its steps under the keys that release made, which Stripe
    answers from what it stored then."""
    subject = Subject(source="pm_card_visa", customer=Customer(email="a@shop.example"), idempotency_key=key,
                      earlier_step_keys=earlier)
    stored = stripe.run("vault", subject)
    assert tuple(t.idempotency_key for t in stripe.sent()) == keys
    assert [e["request"]["idempotency_key"] for e in stripe.app.events_of_type("customer.created")] == [keys[0]]
    assert [e["request"]["idempotency_key"] for e in stripe.app.events_of_type("payment_method.attached")] == [keys[1]]
    assert stripe.run("vault", subject).token == stored.token and len(stripe.app.store.customers) == 1


@pytest.mark.parametrize("first", ["sale", "vault"])
def test_a_sale_keyed_like_a_vaults_step_is_its_own_operation(stripe: Any, first: str) -> None:
    """The steps went under `{key}:customer` and `{key}:attach`, keys a caller may give: whichever
    came second was refused by Stripe as a key used on another endpoint."""
    vault = Subject(source="pm_card_visa", customer=Customer(email="a@shop.example"), idempotency_key="vault-3")
    sales = [Subject(amount=eur("5.00"), source="pm_card_visa", idempotency_key=f"vault-3:{step}")
             for step in ("customer", "attach")]
    if first == "vault":
        stored = stripe.run("vault", vault)
    sold = [stripe.run("sale", sale) for sale in sales]
    if first == "sale":
        stored = stripe.run("vault", vault)
    assert [s.state for s in sold] == [ProviderState.CAPTURED] * 2 and len({s.reference for s in sold}) == 2
    assert stored.token.startswith("pm_") and len(stripe.app.store.customers) == 1


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
