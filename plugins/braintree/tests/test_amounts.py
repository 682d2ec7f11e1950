"""Money in Braintree's Amount: exact both ways for every currency it can hold, and an answer not in
its format unreadable (an unknown outcome where it answers a write), never guessed at."""

from __future__ import annotations

import json
import re
from decimal import Decimal
from typing import Any

import attrs
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from paywire import Gateway, InvalidRequest, Money, Subject, Transfer, hookimpl
from paywire.money import MAX_MINOR
from paywire_braintree.amounts import from_braintree, to_braintree
from paywire_braintree.currencies import CURRENCIES
from paywire_braintree.emulator import BraintreeEmulator

# Braintree's Amount scalar: "either a whole number or a number with exactly two or three decimal places".
AMOUNT = re.compile(r"[0-9]+(?:\.[0-9]{2,3})?")


@given(st.sampled_from(sorted(CURRENCIES)), st.integers(1, MAX_MINOR))
def test_every_amount_of_every_currency_goes_out_and_comes_back_exactly(currency: str, minor: int) -> None:
    money = Money.minor_units(minor, currency)
    wire = to_braintree(money)
    assert AMOUNT.fullmatch(wire) and Decimal(wire) == money.amount
    assert len(wire.partition(".")[2]) == money.exponent
    assert from_braintree({"value": wire, "currencyCode": currency}) == money


@pytest.mark.parametrize("value", ["1e1", "1E+1", " 10.00", "10.00 ", "10.00\n", "+10.00", "1_0.00", "\u0661\u0660.\u0660\u0660",
                                   "\uff11\uff10.\uff10\uff10", "-10.00", "NaN", "Infinity", ".5", ""])
def test_an_answer_amount_not_in_braintrees_format_is_unreadable_not_guessed(value: str) -> None:
    with pytest.raises(ValueError, match="Braintree answered"):
        from_braintree({"value": value, "currencyCode": "EUR"})


def test_an_answer_amount_without_its_currency_is_unreadable() -> None:
    with pytest.raises(ValueError, match="Braintree answered"):
        from_braintree({"value": "10.00", "currencyCode": None})


@example(currency="EUR", value=" 1")
@example(currency="JPY", value="1e3")
@given(st.sampled_from(sorted(CURRENCIES)), st.text(st.sampled_from("0123456789.-+eE_ \n\u0661"), max_size=12))
def test_an_answer_amount_is_read_exactly_as_written_or_not_at_all(currency: str, value: str) -> None:
    """Whatever `from_braintree` reads is unsigned ASCII digits with an optional fraction, and the
    same number exactly."""
    try:
        money = from_braintree({"value": value, "currencyCode": currency})
    except (ValueError, InvalidRequest):  # InvalidRequest: more decimals than the currency has
        return
    assert re.fullmatch(r"[0-9]+(?:\.[0-9]+)?", value), value
    assert money.currency == currency and money.amount == Decimal(value)


@example(currency="EUR", value="19.990")
@example(currency="JPY", value="0001000")
@example(currency="KWD", value="99999999999999.999")
@example(currency="USD", value="99999999999999999.99")
@given(st.sampled_from(sorted(CURRENCIES)), st.from_regex(r"[0-9]{1,20}(\.[0-9]{1,4})?", fullmatch=True))
def test_an_answer_amount_reads_as_money_of_its_decimal(currency: str, value: str) -> None:
    """The digits of the currency's own decimals are read without `Money.of`, to the same Money,
    and anything else is read, or refused, as `Money.of` reads it."""
    try:
        expected: Any = Money.of(Decimal(value), currency)
    except InvalidRequest as error:
        expected = (type(error), error.code, error.param)
    try:
        read: Any = from_braintree({"value": value, "currencyCode": currency})
    except InvalidRequest as error:
        read = (type(error), error.code, error.param)
    assert read == expected


class AmountSent:
    """Sends every mutation with `value` as its amount, as a client other than paywire might."""

    def __init__(self, value: str) -> None:
        self.value = value

    def _rewrite(self, node: Any) -> Any:
        if isinstance(node, dict):
            return {key: self.value if key == "amount" else self._rewrite(item) for key, item in node.items()}
        return [self._rewrite(item) for item in node] if isinstance(node, list) else node

    @hookimpl
    def send_transfer(self, transfer: Transfer, client: Any) -> Any:
        body = json.loads(transfer.body or b"{}")
        if not str(body.get("query", "")).lstrip().startswith("mutation"):
            return None
        body["variables"] = self._rewrite(body.get("variables"))
        return client.send(attrs.evolve(transfer, body=json.dumps(body).encode()))


@pytest.mark.parametrize("served", ["http"], indirect=True)
@pytest.mark.parametrize("value", ["\u0661\u0660.\u0660\u0660", "1_0.00", " 10.00", "+10.00", "10.00\n"])
def test_the_emulator_refuses_an_amount_not_in_braintrees_format(
    gateway: Gateway, emulator: BraintreeEmulator, value: str
) -> None:
    """Braintree's Amount is ASCII digits with two or three decimals or none (81503 otherwise);
    `Decimal` would take each of these as 10."""
    gateway.plugins.register(AmountSent(value), name="amount-sent")
    with pytest.raises(InvalidRequest) as refused:
        gateway.execute("braintree", "sale", Subject(amount=Money.of("10.00", "EUR"), source="fake-valid-nonce"))
    assert refused.value.code == "81503" and not emulator.transactions
