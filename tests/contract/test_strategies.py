"""The kit's hypothesis strategies produce what their names promise."""

from __future__ import annotations

import pytest
from hypothesis import find, given
from hypothesis import strategies as st

from paywire.money import CURRENCY_EXPONENTS, Money
from paywire.security import find_card_number, luhn_valid
from paywire.testing import strategies as pst


@pytest.mark.parametrize("exponent", [0, 2, 3, 4])
def test_money_comes_in_currencies_of_every_exponent(exponent: int) -> None:
    assert find(pst.money(), lambda amount: amount.exponent == exponent).exponent == exponent


@given(pst.money(currency=["JPY", "BHD"], bounds=lambda code: (5, 50)))
def test_money_keeps_to_the_currencies_and_bounds_given(amount: Money) -> None:
    assert amount.currency in ("JPY", "BHD") and 5 <= amount.minor <= 50


def test_asking_for_no_known_currency_is_an_error() -> None:
    with pytest.raises(ValueError, match="no known currency"):
        pst.currencies(among=["XXX"])


@given(pst.currencies(exponents=[3]))
def test_currencies_keep_to_the_exponents_given(code: str) -> None:
    assert CURRENCY_EXPONENTS[code] == 3


@given(pst.card_numbers())
def test_card_numbers_are_what_the_core_refuses(number: str) -> None:
    digits = number.replace(" ", "").replace("-", "")
    assert 13 <= len(digits) <= 19 and luhn_valid(digits)
    assert find_card_number(number) == digits


@given(st.data())
def test_subjects_hold_what_their_command_reads_and_never_a_card_number(data: st.DataObject) -> None:
    command = data.draw(st.sampled_from(["authorize", "sale", "capture", "void", "refund", "fetch", "complete", "vault"]))
    subject = data.draw(pst.subjects(command))
    assert find_card_number(repr(subject)) is None
    if command in ("authorize", "sale"):
        assert subject.amount is not None and subject.source
    elif command != "vault":
        assert subject.reference


@given(pst.orders("KWD"))
def test_orders_are_in_the_currency_asked_for(order: object) -> None:
    from paywire import Order

    assert isinstance(order, Order)
    assert all(item.unit_price.currency == "KWD" for item in order.items)
    assert order.amount is None or order.amount.currency == "KWD"


@given(pst.operations(), st.integers(1, 10**8))
def test_operation_amounts_stay_within_what_is_available(steps: list[pst.Operation], available: int) -> None:
    for step in steps:
        assert 1 <= step.amount_of(available) <= available


@given(pst.webhook_payloads(kinds=["captured"], currency=["EUR"]))
def test_webhook_payloads_keep_to_the_kinds_and_currencies_given(payload: pst.WebhookPayload) -> None:
    assert payload.kind == "captured" and payload.amount.currency == "EUR"
    assert find_card_number(payload.id) is None and find_card_number(payload.reference) is None
