"""The card-number guard: card numbers as the networks define them are refused in every written
form and place, before anything is sent or stored; ordinary shop data and paywire's ids never are."""

from __future__ import annotations

import dataclasses
import re
import sqlite3
from decimal import Decimal
from pathlib import Path
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from paywire import Gateway, InvalidRequest, MethodConfig, Money, PaymentService, SQLiteLedger, Subject
from paywire.card_numbers import (
    brand_of,
    find_card_number,
    find_card_span,
    luhn_valid,
    mask_card_numbers,
    may_hold_card_numbers,
)
from paywire.plugins import Plugins
from paywire.security import redact, refuse_card_numbers
from paywire.service.keys import derived_key, new_id
from paywire.subject import Customer, Order
from paywire.testing.strategies import card_numbers, shop_strings
from tests.core.conftest import EchoApp
from tests.core.fake_gateway import FakePlugin

# Card numbers the networks publish for testing, one per brand.
NETWORK_TEST_NUMBERS = {
    "4242424242424242": "Visa", "4222222222222": "Visa", "5555555555554444": "Mastercard",
    "2223003122003222": "Mastercard", "378282246310005": "American Express", "6011111111111117": "Discover",
    "3056930009020004": "Diners Club", "36227206271667": "Diners Club", "3566002020360505": "JCB",
    "6200000000000005": "UnionPay", "6759649826438453": "Maestro", "2200000000000004": "Mir",
}


def digits_of(text: str) -> str:
    return "".join(str(int(char)) for char in text if char.isdecimal())


@pytest.mark.parametrize(("number", "brand"), NETWORK_TEST_NUMBERS.items())
def test_network_test_numbers_are_recognised_by_brand(number: str, brand: str) -> None:
    assert brand_of(number) == brand


@pytest.mark.parametrize("text", [
    "2024120300007",            # an order number made of a date and a counter: no network issues 2024...
    "ORD-2024120300007", "checkout-2024120300007",
    "8815329842815468",         # a 16-digit provider reference (Adyen): 88 is no issuer's prefix
    "4242424242424241",         # a Visa-shaped number with a wrong check digit
    "42424242424242",           # Luhn-valid but 14 digits: Visa issues 13, 16 or 19
    "+49 151 23456789",         # a phone number in international form
    "DE89 3704 0044 0532 0130 00",  # a valid IBAN
    "9400 4242 4242 4242 4242 78",  # a 22-digit tracking number in blocks of four
    "JJD4242424242424242",      # digits glued to an identifier's letters
    "123e4567-e89b-12d3-4242-424242424242",  # a UUID
])
def test_strings_no_network_could_have_issued_are_not_card_numbers(text: str) -> None:
    assert find_card_number(text) is None


@given(card_numbers(grouped=False))
def test_generated_numbers_are_cards_and_one_changed_check_digit_is_not(number: str) -> None:
    assert brand_of(number) is not None and luhn_valid(number)
    wrong = number[:-1] + str((int(number[-1]) + 1) % 10)
    assert brand_of(wrong) is None


PLACES = [
    lambda pan: {"source": pan},
    lambda pan: {"metadata": {"note": f"card {pan} thanks"}},         # after a space
    lambda pan: {"metadata": {"note": f"ref 12 {pan} 7"}},            # next to other digits
    lambda pan: {"metadata": {f"k {pan}": "x"}},                      # in a metadata key
    lambda pan: {"refund": {"reason": f"customer typed {pan}"}},
    lambda pan: {"items": [{"sku": "A-1"}, {"name": f"({pan})"}]},
]


@given(card_numbers(every_form=True), st.sampled_from(range(len(PLACES))))
def test_a_card_number_in_any_written_form_and_field_is_refused_without_showing_it(pan: str, place: int) -> None:
    with pytest.raises(InvalidRequest) as caught:
        refuse_card_numbers(PLACES[place](pan))
    assert caught.value.code == "raw_card_number" and caught.value.param
    assert digits_of(pan) not in digits_of(str(caught.value))


@given(card_numbers(every_form=True))
def test_a_card_number_in_a_header_or_percent_encoded_url_is_refused(pan: str) -> None:
    with pytest.raises(InvalidRequest, match="header 'Idempotency-Key'"):
        refuse_card_numbers({}, headers={"Idempotency-Key": f"order-{pan}"[6:]})
    from urllib.parse import quote_plus

    with pytest.raises(InvalidRequest):
        refuse_card_numbers({}, wire=[f"https://api.example/v1/orders?note=x+{quote_plus(pan)}"])


@given(card_numbers(every_form=True), st.booleans())
def test_a_card_number_percent_encoded_in_a_url_the_caller_gives_is_refused(pan: str, plus: bool) -> None:
    """Whoever follows a return URL reads its query decoded: a card number written there
    percent-encoded is one all the same (it was sent, stored and handed on)."""
    from urllib.parse import quote, quote_plus

    encoded = quote_plus(pan) if plus else quote(pan, safe="")
    with pytest.raises(InvalidRequest, match="field 'return_url'"):
        refuse_card_numbers({"return_url": f"https://shop.example/back?n={encoded}"})


@given(card_numbers(every_form=True))
def test_redaction_masks_every_written_form(pan: str) -> None:
    masked = redact({"note": f"paid with {pan} today"})["note"]
    assert find_card_number(masked) is None and masked.startswith("paid with ") and masked.endswith(" today")
    assert mask_card_numbers(pan) == "***"


def _verdict(values: Any, headers: dict[str, str], wire: list[str]) -> str | None:
    try:
        refuse_card_numbers(values, headers=headers, wire=wire)
    except InvalidRequest as refused:
        return str(refused)
    return None


@given(st.lists(st.one_of(shop_strings(), card_numbers(every_form=True),
                          card_numbers(every_form=True).map(lambda pan: pan.replace(" ", "+"))),
                min_size=1, max_size=6),
       st.lists(st.tuples(st.integers(0, 5), st.integers(0, 2)), min_size=1, max_size=8))
def test_what_was_screened_before_never_changes_a_verdict(texts: list[str], checks: list[tuple[int, int]]) -> None:
    """Texts found clean are remembered (in the role they were checked in: a value, or an encoded
    part read after percent-decoding); every verdict is still the one a fresh screening gives."""
    import paywire.security as security

    def request(index: int, role: int) -> tuple[Any, dict[str, str], list[str]]:
        text = texts[index % len(texts)]
        return [({"note": text}, {}, []), ({}, {"Idempotency-Key": text}, []), ({}, {}, [text])][role]

    fresh = []
    for index, role in checks:
        security._clean_texts.clear()
        security._clean_wire.clear()
        fresh.append(_verdict(*request(index, role)))
    security._clean_texts.clear()
    security._clean_wire.clear()
    assert [_verdict(*request(index, role)) for index, role in checks] == fresh


def test_the_texts_remembered_clean_stay_bounded() -> None:
    """The screen remembers short clean texts only, and forgets them all when it holds too many."""
    import paywire.security as security

    security._clean_texts.clear()
    long_text = "x" * (security._CLEAN_LONGEST + 1)
    refuse_card_numbers({"note": long_text})
    assert long_text not in security._clean_texts
    for index in range(security._CLEAN_SIZE + 10):
        refuse_card_numbers({"note": f"order note number {index}"})
        assert len(security._clean_texts) <= security._CLEAN_SIZE
    assert "order note number 4105" in security._clean_texts


@given(shop_strings())
def test_ordinary_shop_data_is_never_refused(text: str) -> None:
    refuse_card_numbers({"order_id": text, "metadata": {"note": text}}, headers={"Idempotency-Key": text})


def test_paywire_ids_and_derived_keys_are_never_card_numbers() -> None:
    for _ in range(20_000):
        payment = new_id("pay")
        refuse_card_numbers({"id": payment, "key": derived_key(payment, "refund", 2), "txn": new_id("txn")})


# -- through the payment service: refused means nothing sent and nothing stored --------------------
@pytest.fixture
def shop(echo: tuple[EchoApp, str], tmp_path: Path) -> Any:
    app, url = echo
    plugins = Plugins()
    plugins.register(FakePlugin(), "fake")
    gateway = Gateway([MethodConfig(code="fake", base_url=url, credentials={"api_key": "k_test_123456"})],
                      plugins=plugins)
    path = tmp_path / "ledger.db"
    service = PaymentService(gateway, SQLiteLedger(str(path)))
    yield app, service, path
    service.ledger.close()
    gateway.close()


CALLS = {
    "order id": lambda pan: {"order_id": f"A {pan}"},
    "idempotency key": lambda pan: {"idempotency_key": f"key-{pan}"[4:]},
    "metadata key": lambda pan: {"metadata": {pan: "x"}},
    "metadata value": lambda pan: {"metadata": {"note": f"4 {pan}"}},
    "customer phone": lambda pan: {"customer": Customer(phone=pan)},
    "order description": lambda pan: {"order": Order(id="A-1", description=f"card: {pan}")},
    "source": lambda pan: {"source": pan},
}


@pytest.mark.parametrize("where", CALLS)
def test_a_refused_payment_sends_nothing_and_stores_nothing(shop: Any, where: str) -> None:
    app, service, path = shop
    pan = "4242.4242.4242.4242"
    arguments = {"source": "tok_visa", **CALLS[where](pan)}
    with pytest.raises(InvalidRequest, match="raw card number"):
        service.sale("fake", Money.of("10.00", "EUR"), **arguments)
    assert app.seen == []
    assert service.list_payments() == [] and service.list_transactions() == []
    service.ledger.close()
    stored = b"".join(Path(f).read_bytes() for f in path.parent.iterdir() if f.name.startswith("ledger.db"))
    assert b"4242" not in stored
    with sqlite3.connect(path) as db:
        assert db.execute("select count(*) from paywire_transactions").fetchone() == (0,)


def test_the_gateway_refuses_a_card_number_the_provider_would_not_even_send(shop: Any) -> None:
    app, service, _ = shop
    subject = Subject(amount=Money.of("1.00", "EUR"), source="tok_visa", metadata={"n": "\uff14\uff12" * 8})
    with pytest.raises(InvalidRequest, match=r"field 'metadata\.n'"):
        service.gateway.execute("fake", "sale", subject)
    assert app.seen == []


# What the screen's fast paths must agree with: the condition as first written, with Unicode
# classes and ordinary (backtracking) repeats.
_CONDITION = re.compile(r"\d(?:(?:\s|[-\u00ad\u200b\u200c\u200d\u2060\ufeff\u2010\u2011\u2012\u2013\u2014\u2015\u2212\ufe58\ufe63\uff0d"
                        r".\u00b7\u2024\u2027\u3002\uff0e\uff61\u30fb/\u2044\u2215\uff0f]){0,3}\d){12}")


def _written(digits: str, gaps: str, other: str) -> st.SearchStrategy[str]:
    """Chains of digit groups and gaps, as card numbers and their near misses are written (a gap
    one too long, a digit too few), between other text."""
    group = st.tuples(st.text(alphabet=st.sampled_from(digits), min_size=1, max_size=16),
                      st.text(alphabet=st.sampled_from(gaps), max_size=4)).map("".join)
    chain = st.lists(group, max_size=6).map("".join)
    return st.lists(st.tuples(st.text(alphabet=st.sampled_from(other), max_size=3), chain).map("".join),
                    min_size=1, max_size=3).map("".join)


_SCREENED = st.one_of(  # ASCII text takes a path of its own
    _written("0123456789", " -./\t\n", "+abcx_Z\0:"),
    _written("0123456789\uff14\u0664\u06f4", " -./\t\u00a0\u2013\uff0e\u2044\u200b\u00ad", "+abc_\0\u00e9"),
)


@given(st.lists(_SCREENED, max_size=4))
@example(["4242424242424"])  # the shortest: thirteen digits, nothing around them
@example(["a\uff14242424242424b", "x4 2 4 2 4 2 4 2 4 2 4 2 4"])
@example(["1234 5678 9012", "3"])  # twelve digits, and one more only in another text
def test_the_screen_admits_exactly_the_texts_the_condition_admits(texts: list[str]) -> None:
    """The one-pass screen (ASCII fast path, digit-run prefilter, possessive repeats) answers
    as the plain condition does, text by text and for texts joined."""
    for text in texts:
        assert (find_card_span(text) is not None) <= (_CONDITION.search(text) is not None)
        assert may_hold_card_numbers([text]) == (_CONDITION.search(text) is not None)
    assert may_hold_card_numbers(texts) == any(_CONDITION.search(text) for text in texts)


@pytest.mark.parametrize("separator", ["\u200b", "\u00ad", "\u2060", "\ufeff", "\u200c\u200d"])
def test_a_card_number_with_invisible_characters_between_its_groups_is_found(separator: str) -> None:
    """Copied from a page or a PDF, a number carries zero-width characters between its groups."""
    text = f"card {separator.join(['4111', '1111', '1111', '1111'])} please"
    assert find_card_span(text) is not None and may_hold_card_numbers([text])
    assert find_card_span(f"order {separator.join(['2024', '0117'])}") is None


@dataclasses.dataclass
class _Note:
    text: str


@pytest.mark.parametrize(("value", "field"), [
    ({"metadata": {4111111111111111: "x"}}, "metadata.*** (the key)"),
    ({"metadata": {"note": 4111111111111111.0}}, "metadata.note"),
    ({"options": {"note": b"4111111111111111"}}, "options.note"),
    ({"options": {"note": bytearray(b"4111 1111 1111 1111")}}, "options.note"),
    ({"options": {"note": Decimal("4111111111111111")}}, "options.note"),
    ({"options": {"note": {"4111111111111111"}}}, "options.note[0]"),
    ({"options": {"note": frozenset({4111111111111111})}}, "options.note[0]"),
    ({"options": {"note": _Note("4111111111111111")}}, "options.note"),
])
def test_a_card_number_in_a_value_of_any_type_is_refused_naming_its_field(value: dict[str, Any], field: str) -> None:
    """Whatever its type, a value is written on the wire and in the ledger as text: the guard
    reads it as that text, and a card number in a mapping key of any type is one too."""
    with pytest.raises(InvalidRequest) as refused:
        refuse_card_numbers(value)
    assert refused.value.code == "raw_card_number"
    assert f"field '{field}'" in str(refused.value)
    assert "4111111111111111" not in str(refused.value)
    refuse_card_numbers({"metadata": {20240117: 19.99, "n": Decimal("10.00"), "b": b"abc", "s": {1, 2}}})


# Trees shaped as subjects and requests are (mappings, read-only mappings, lists, tuples, attrs
# values, with None, flags, numbers, amounts and text around), and one place in them for a card
# number: the guard's walk takes shortcuts by exact type, and must reach every place all the same.
_LEAVES = st.one_of(st.none(), st.booleans(), st.integers(-10**6, 10**6), shop_strings(),
                    st.just(Money.of("1.00", "EUR")))
_TREES = st.recursive(_LEAVES, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.lists(inner, max_size=3).map(tuple),
    st.dictionaries(st.text(max_size=6), inner, max_size=3),
    st.dictionaries(st.text(max_size=6), inner, max_size=3).map(MappingProxyType),
), max_leaves=6)
_HOLDERS: list[Any] = [  # (holder of what holds the card number, its siblings)
    lambda inner, other: [other, inner],
    lambda inner, other: (inner, other),
    lambda inner, other: {"a": other, "b": inner},
    lambda inner, other: MappingProxyType({"b": inner, "a": other}),
    lambda inner, other: Subject(amount=Money.of("1.00", "EUR"), source="tok_visa", options={"x": inner, "y": other}),
    lambda inner, other: Subject(metadata={"note": inner}, order=Order(id="A-1", description=other)),
    lambda inner, other: Order(id="A-1", customer=Customer(phone=inner), description=other),
    lambda inner, other: Subject(order=Order(id="A-1", items=()), reference=other, return_url=inner),
]
_SPOTS: list[Any] = [  # how the card number sits where it is
    lambda pan: pan, lambda pan: f"note {pan} thanks", lambda pan: {pan: "x"}, lambda pan: [None, pan, True],
]


@given(card_numbers(every_form=True), st.sampled_from(_SPOTS),
       st.lists(st.tuples(st.sampled_from(_HOLDERS), _TREES), min_size=1, max_size=4))
def test_a_card_number_anywhere_in_a_subject_or_request_is_refused(pan: str, spot: Any,
                                                                   holders: list[tuple[Any, Any]]) -> None:
    value = spot(pan)
    for hold, other in holders:
        value = hold(value, other)
    with pytest.raises(InvalidRequest) as refused:
        refuse_card_numbers(value)
    assert refused.value.code == "raw_card_number"
    assert digits_of(pan) not in digits_of(str(refused.value))


@given(st.lists(st.tuples(st.sampled_from(_HOLDERS), _TREES), min_size=1, max_size=4))
def test_a_subject_or_request_without_a_card_number_passes(holders: list[tuple[Any, Any]]) -> None:
    value: Any = "tok_visa"
    for hold, other in holders:
        value = hold(value, other)
    refuse_card_numbers(value)
