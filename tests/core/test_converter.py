import json
from types import MappingProxyType
from typing import Any
from urllib.parse import parse_qsl, quote

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paywire import FORM, JSON, GraphQLConverter, InvalidRequest
from paywire.converter import form_pairs

names = st.text(alphabet="abcxyz_", min_size=1, max_size=4)
scalars = st.one_of(st.integers(-(10**9), 10**9), st.text(max_size=8), st.booleans())
values = st.recursive(
    scalars, lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(names, inner, max_size=3)), max_leaves=10
)


def expected_pairs(value: Any, prefix: str) -> list[tuple[str, str]]:
    if isinstance(value, dict):
        return [pair for key, item in value.items() for pair in expected_pairs(item, f"{prefix}[{key}]")]
    if isinstance(value, list):
        return [pair for i, item in enumerate(value) for pair in expected_pairs(item, f"{prefix}[{i}]")]
    return [(prefix, "true" if value is True else "false" if value is False else str(value))]


@given(st.dictionaries(names, values, max_size=4))
def test_form_encoding_round_trips_through_a_standard_parser(request: dict[str, Any]) -> None:
    body = FORM.encode(request).decode()
    pairs = [pair for key, item in request.items() for pair in expected_pairs(item, key)]
    assert parse_qsl(body, keep_blank_values=True) == pairs


# What a request may also hold: other mappings and sequences, None (dropped), and values that
# form bodies refuse (floats).
odd_values = st.recursive(
    st.one_of(scalars, st.none(), st.floats(allow_nan=False)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.lists(inner, max_size=3).map(tuple),
                            st.dictionaries(names, inner, max_size=3),
                            st.dictionaries(names, inner, max_size=3).map(MappingProxyType)),
    max_leaves=10,
)


@given(st.dictionaries(names, odd_values, max_size=4))
def test_form_encoding_writes_exactly_the_pairs_form_pairs_gives(request: dict[str, Any]) -> None:
    """The body encoder walks requests itself (remembering pieces); it writes what form_pairs
    flattens, percent-encoded, and refuses what it refuses."""
    try:
        pairs = list(form_pairs(request))
    except InvalidRequest as refused:
        with pytest.raises(InvalidRequest) as also:
            FORM.encode(request)
        assert str(also.value) == str(refused)
        return
    expected = "&".join(f"{quote(key, safe='[]')}={quote(text, safe='')}" for key, text in pairs)
    assert FORM.encode(request).decode() == expected
    assert FORM.encode(request).decode() == expected  # the second time from the remembered pieces


def test_form_encoding_matches_stripe_conventions() -> None:
    body = FORM.encode({"amount": 1999, "metadata": {"order id": "A&1"}, "expand": ["latest_charge"],
                        "confirm": True, "description": None, "items": [{"price": 5}]}).decode()
    assert body == ("amount=1999&metadata[order%20id]=A%261&expand[0]=latest_charge&confirm=true&items[0][price]=5")


def test_form_refuses_floats() -> None:
    with pytest.raises(InvalidRequest, match="amount"):
        FORM.encode({"amount": 19.99})
    assert list(form_pairs({"a": None})) == []


def test_json_and_graphql() -> None:
    assert JSON.decode(JSON.encode({"a": [1, "x"]})) == {"a": [1, "x"]}
    with pytest.raises(InvalidRequest):
        JSON.encode({"a": float("nan")})
    graphql = GraphQLConverter("mutation Charge($input: ChargeInput!) { charge(input: $input) { id } }")
    payload = JSON.decode(graphql.encode({"input": {"amount": "1.00"}}))
    assert payload["variables"] == {"input": {"amount": "1.00"}} and payload["query"].startswith("mutation Charge")


json_values = st.recursive(
    st.one_of(st.none(), st.booleans(), st.integers(), st.text(), st.floats(allow_nan=False, allow_infinity=False)),
    lambda inner: st.one_of(st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=4), inner, max_size=3)),
    max_leaves=10,
)


@given(st.text(), st.dictionaries(st.text(max_size=4), json_values, max_size=4), st.booleans())
def test_graphql_bodies_are_the_bytes_json_writes_for_the_whole_object(document: str, variables: dict[str, Any],
                                                                         proxied: bool) -> None:
    """The document's part is encoded once, ahead of the variables: the body is still exactly
    what encoding `{"query": document, "variables": variables}` in one go writes."""
    whole = json.dumps({"query": document, "variables": variables}, separators=(",", ":"), allow_nan=False)
    request = MappingProxyType(variables) if proxied else variables
    assert GraphQLConverter(document).encode(request) == whole.encode()
    assert json.loads(GraphQLConverter(document).encode(request)) == {"query": document, "variables": variables}


def test_graphql_refuses_what_json_cannot_hold() -> None:
    with pytest.raises(InvalidRequest, match="cannot be encoded as JSON"):
        GraphQLConverter("query { a }").encode({"x": float("inf")})


def test_the_remembered_form_pieces_stay_bounded() -> None:
    """Pieces are remembered for short keys and values only, and forgotten at once when full."""
    from paywire import converter

    for index in range(converter._PIECE_KEYS + 10):
        assert FORM.encode({f"field{index}": "v", "note": f"value {index}"}) == f"field{index}=v&note=value%20{index}".encode()
        assert len(converter._PIECES) <= converter._PIECE_KEYS
        assert all(len(known) <= converter._PIECE_VALUES for known in converter._PIECES.values())
    long_value = "y" * (converter._PIECE_LONGEST + 1)
    assert FORM.encode({"note": long_value}) == f"note={long_value}".encode()
    assert long_value not in converter._PIECES.get("note", {})
