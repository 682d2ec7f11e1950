"""What the builders put in the variables: amounts in Braintree's format, the order and the key
where a replay can find them, metadata only as configured custom fields, vaulted charges as
merchant-initiated."""

from __future__ import annotations

import pytest
from hypothesis import given

import paywire_braintree
from paywire import ConfigurationError, Customer, Gateway, InvalidRequest, Money, Order, Plugins, Subject
from paywire.testing.strategies import money
from paywire_braintree.amounts import from_braintree, to_braintree
from paywire_braintree.builders import capture_variables, refund_variables, transaction_variables
from paywire_braintree.currencies import CURRENCIES


@given(money(currency=sorted(CURRENCIES)))
def test_amounts_travel_exactly_in_the_currencys_own_exponent(amount: Money) -> None:
    wire = to_braintree(amount)
    assert from_braintree({"value": wire, "currencyCode": amount.currency}) == amount
    assert ("." not in wire) if amount.exponent == 0 else len(wire.split(".")[1]) == amount.exponent


@pytest.mark.parametrize(("amount", "wire"), [(Money.of("1000", "JPY"), "1000"), (Money.of("1.25", "KWD"), "1.250"),
                                              (Money.of("10", "EUR"), "10.00")])
def test_examples_of_braintrees_amount_format(amount: Money, wire: str) -> None:
    assert to_braintree(amount) == wire


@pytest.mark.parametrize("amount", [Money.of("1.0000", "CLF"), Money.zero("EUR")])
def test_amounts_braintree_cannot_hold_are_refused_before_sending(amount: Money) -> None:
    with pytest.raises(InvalidRequest):
        to_braintree(amount)


def test_a_charge_carries_its_order_its_key_and_only_the_configured_custom_fields() -> None:
    subject = Subject(amount=Money.of("10.00", "EUR"), source="fake-valid-nonce", order=Order(id="A-1"),
                      idempotency_key="key-1", metadata={"order_note": "gift", "internal": "x"},
                      options={"descriptor_name": "SHOP*ORDER"})
    transaction = transaction_variables(subject, {"EUR": "shop_eur"}, {"order_note"})["input"]["transaction"]
    assert transaction == {
        "amount": "10.00", "merchantAccountId": "shop_eur", "orderId": "A-1",
        "customFields": [{"name": "paywire_key", "value": "key-1"}, {"name": "order_note", "value": "gift"}],
        "descriptor": {"name": "SHOP*ORDER"},
    }


def test_without_an_order_the_key_is_the_order_id_so_search_can_find_it() -> None:
    subject = Subject(amount=Money.of("1.00", "USD"), source="fake-valid-nonce", idempotency_key="key-2")
    assert transaction_variables(subject, {})["input"]["transaction"]["orderId"] == "key-2"


def test_a_vaulted_charge_is_merchant_initiated_for_the_customer() -> None:
    subject = Subject(amount=Money.of("1.00", "USD"), source="cGF5bWVudG1ldGhvZF9jY19hYmM", vaulted=True,
                      customer=Customer(reference="Y3VzdG9tZXJfYWJj"))
    transaction = transaction_variables(subject, {})["input"]["transaction"]
    assert (transaction["paymentInitiator"], transaction["customerId"]) == ("UNSCHEDULED", "Y3VzdG9tZXJfYWJj")


def test_captures_and_refunds_carry_their_key_as_their_order_id() -> None:
    capture = capture_variables(Subject(reference="t", amount=Money.of("5.00", "EUR"), final=False,
                                        idempotency_key="cap-key"))
    assert capture["input"]["transaction"] == {"amount": "5.00", "finalCapture": False, "orderId": "cap-key"}
    refund = refund_variables(Subject(reference="t", amount=Money.of("2.00", "EUR"), idempotency_key="ref-key",
                                      reason="returned"))
    assert refund["input"]["refund"] == {"amount": "2.00", "orderId": "ref-key", "reason": "returned"}


def test_a_misspelt_option_is_a_configuration_error_naming_the_right_one() -> None:
    plugins = Plugins()
    plugins.register(paywire_braintree)
    method = {"environment": "sandbox", "base_url": "http://127.0.0.1:9",
              "credentials": {"public_key": "a", "private_key": "b"}, "options": {"merchant_acounts": {}}}
    with pytest.raises(ConfigurationError, match="merchant_accounts"):
        Gateway.from_config({"methods": {"braintree": method}}, plugins=plugins)
