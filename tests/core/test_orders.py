"""Orders, their line items and subjects are typed when they are made: a provider receives their
values as text, and the method's limits are checked on the amounts."""

from __future__ import annotations

from decimal import Decimal

import pytest

from paywire import InvalidRequest, LineItem, Money, Order, Subject


@pytest.mark.parametrize("quantity", [True, False, 2.0, "2", Decimal(2), None])
def test_a_quantity_that_is_no_int_is_refused_naming_it(quantity: object) -> None:
    with pytest.raises(InvalidRequest, match="quantity must be an int") as raised:
        LineItem("Mug", quantity, Money.of("3.50", "EUR"))  # type: ignore[arg-type]
    assert raised.value.param == "order.items.quantity"


@pytest.mark.parametrize("price", [3.5, "3.50", Decimal("3.50"), 350, None])
def test_a_unit_price_that_is_no_money_is_refused_naming_it(price: object) -> None:
    with pytest.raises(InvalidRequest, match="unit_price must be Money") as raised:
        Order(id="A-1", items=[LineItem("Mug", 1, price)])  # type: ignore[arg-type]
    assert raised.value.param == "order.items.unit_price"


def test_an_item_of_ints_and_money_is_made_as_given() -> None:
    item = LineItem("Mug", 2, Money.of("3.50", "EUR"), sku="MUG-1")
    assert (item.quantity, item.unit_price) == (2, Money.of("3.50", "EUR"))


@pytest.mark.parametrize("total", [19.99, Decimal("19.99"), "19.99", 1999])
def test_an_order_total_that_is_no_money_is_refused_naming_it(total: object) -> None:
    """A float total passed silently, or failed with an AttributeError where a method's limits read it."""
    with pytest.raises(InvalidRequest, match=r"order\.amount must be Money") as raised:
        Order(id="A-1", amount=total)  # type: ignore[arg-type]
    assert raised.value.param == "order.amount"


@pytest.mark.parametrize("amount", [19.99, Decimal("19.99"), "19.99", 1999])
def test_a_subject_amount_that_is_no_money_is_refused_naming_it(amount: object) -> None:
    """Gateway.execute with Subject(amount=19.99) failed with an AttributeError on its currency."""
    with pytest.raises(InvalidRequest, match=r"amount must be Money") as raised:
        Subject(amount=amount, source="tok")  # type: ignore[arg-type]
    assert raised.value.param == "amount"
