"""The ledger's records as values: the JSON form stored and fingerprinted, and `replace`."""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paywire import Money
from paywire.ledger._sql import SQLUnit, _payment_from_row, _written, payment_from_row, payment_row, transaction_row
from paywire.ledger.model import Payment, StoredJSON, Transaction, build, canonical_json, replace
from paywire.security import _MASK, redact, sensitive_key
from paywire.service.keys import fingerprint, new_id
from paywire.service.payments import PaymentService, _Op
from paywire.subject import BuyerAction
from tests.ledger.support import Opaque

_JSON = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)


@given(_JSON)
def test_canonical_json_is_json_dumps_with_sorted_keys_and_no_spaces(value: Any) -> None:
    assert canonical_json(value) == json.dumps(value, sort_keys=True, separators=(",", ":"), default=str)


@given(st.text(max_size=8), st.text(max_size=8), st.none() | st.text(max_size=8),
       st.dictionaries(st.text(max_size=8), _JSON, max_size=4) | st.builds(MappingProxyType, st.dictionaries(
           st.text(max_size=8), _JSON, max_size=4)))
def test_a_fingerprint_is_the_hash_of_the_whole_operations_canonical_json(kind: str, method: str, scope: str | None,
                                                                          params: Any) -> None:
    """Put together key by key, the text hashed is the one the encoder writes for the whole
    operation: the fingerprints the ledger holds (of this release and earlier ones) stay its own."""
    text = canonical_json({"kind": kind, "method": method, "scope": scope, "params": params})
    assert fingerprint(kind, method, scope, params) == hashlib.sha256(text.encode()).hexdigest()


@given(st.sampled_from(["pay", "txn"]))
def test_an_id_is_its_prefix_then_its_milliseconds_in_twelve_hex_digits_then_eighty_random_bits(prefix: str) -> None:
    before = time.time_ns() // 1_000_000
    identifier = new_id(prefix)
    after = time.time_ns() // 1_000_000
    found = re.fullmatch(rf"{prefix}_([0-9a-f]{{12}})([0-9a-f]{{20}})", identifier)
    assert found is not None, identifier
    assert before <= int(found.group(1), 16) <= after
    assert re.search(r"[0-9]{12}", identifier) is None  # never a card number's run of digits


# A request summary's parameters: names the service uses, names that say they are secret, and
# values not given (None, "", {}), flags, numbers, text holding a card number and nested ones.
_PARAM_NAMES = st.sampled_from(["source", "order_id", "vaulted", "final", "reason", "metadata", "options", "amount",
                                "currency", "api_key", "client_secret", "token", "customer_reference"])
_PARAM_VALUES = (st.sampled_from([None, "", {}, True, False, 0, 1, "4242424242424242", "tok_ok", "sk_live_abc123"])
                 | st.text(max_size=12) | st.dictionaries(st.sampled_from(["note", "password", "card"]),
                                                         st.text(max_size=20) | st.booleans(), max_size=3))


@given(st.dictionaries(_PARAM_NAMES, _PARAM_VALUES, max_size=8), st.booleans())
def test_a_request_summary_keeps_each_given_parameter_as_redact_keeps_a_mappings_item(params: dict[str, Any],
                                                                                       with_amount: bool) -> None:
    """What `redact` makes of the parameters given (not None, "" or {}), but the amount and the
    currency, which the summary writes in its own words: the summaries the ledger holds read the same."""
    amount = Money.of("19.99", "EUR") if with_amount else None
    op = _Op("authorize", "acme", None, amount, params, None)
    expected: dict[str, Any] = {"command": "authorize"}
    for name, value in params.items():
        if value not in (None, "", {}) and name not in ("amount", "currency"):
            expected[name] = _MASK if sensitive_key(name) else redact(value)
    if amount is not None:
        expected.update(amount="19.99", currency="EUR")
    summary = PaymentService._request_summary(op, None)
    assert summary == expected
    assert canonical_json(summary) == canonical_json(expected)


@given(st.dictionaries(st.text(max_size=8), _JSON, max_size=4), st.text(max_size=8), st.booleans())
def test_stored_json_get_answers_as_the_decoded_object(value: dict[str, Any], key: str, ascii_only: bool) -> None:
    """`get` skips decoding a text that cannot hold the key: the answer is the decoded object's,
    for the ledger's own text and for a database's (spaces, unescaped non-ASCII)."""
    texts = [canonical_json(value), json.dumps(value, ensure_ascii=ascii_only)]
    for text in texts:
        for asked in (key, *value):
            assert StoredJSON(text).get(asked, "absent") == json.loads(text).get(asked, "absent")


def test_canonical_json_writes_other_values_as_str_and_refuses_a_cycle() -> None:
    when = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert canonical_json({"at": when, "b": [Money.of("1.00", "EUR").currency]}) == f'{{"at":"{when}","b":["EUR"]}}'
    cycle: list[Any] = []
    cycle.append(cycle)
    with pytest.raises(RecursionError):
        canonical_json(cycle)


def _disguised(value: Any, draw: Callable[[st.SearchStrategy[Any]], Any]) -> Any:
    """`value` with each object held in a mapping of another type, in a drawn insertion order."""
    if isinstance(value, list):
        return [_disguised(item, draw) for item in value]
    if isinstance(value, dict):
        items = draw(st.permutations([(key, _disguised(item, draw)) for key, item in value.items()]))
        return draw(st.sampled_from([dict, MappingProxyType, Opaque]))(dict(items))
    return value


@given(_JSON, st.data())
def test_canonical_json_writes_any_mapping_as_the_object_it_holds(value: Any, data: st.DataObject) -> None:
    """The form (and so every fingerprint) depends on what a mapping holds, not on its type nor
    on the order its keys were given in."""
    assert canonical_json(_disguised(value, data.draw)) == canonical_json(value)


@given(st.frozensets(st.text(max_size=4) | st.integers(), max_size=6), st.randoms())
def test_canonical_json_writes_a_set_in_one_order(members: frozenset[Any], random: Any) -> None:
    shuffled = list(members)
    random.shuffle(shuffled)
    assert canonical_json({"s": set(shuffled)}) == canonical_json({"s": members})
    assert json.loads(canonical_json({"s": members}))["s"] == sorted(members, key=canonical_json)


def test_canonical_json_one_value_on_many_threads_at_once() -> None:
    """The encoder is shared: one value encoded by several threads together is never taken for a
    cycle (a shared record of containers seen would)."""
    shared = {"items": [{"n": n, "tags": ["a", "b"]} for n in range(2000)]}
    expected = json.dumps(shared, sort_keys=True, separators=(",", ":"))
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.extend(canonical_json(shared) for _ in range(20)))
               for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == [expected] * 80


def _transaction(**changes: Any) -> Transaction:
    at = datetime(2026, 1, 2, tzinfo=UTC)
    fields: dict[str, Any] = {
        "id": "txn_1", "payment_id": "pay_1", "method": "m", "kind": "authorize", "amount": Money(100, "EUR"),
        "status": "pending", "idempotency_key": "k", "fingerprint": "f", "request": {"amount": "1.00"},
        "created_at": at, "updated_at": at,
    }
    return Transaction(**{**fields, **changes})


def test_replace_is_evolve_converters_included() -> None:
    import attrs

    txn = _transaction()
    changes = {"status": "succeeded", "response": {"reference": "ch_1"}, "provider_reference": "ch_1"}
    replaced, evolved = replace(txn, **changes), attrs.evolve(txn, **changes)
    assert replaced == evolved
    assert type(replaced.response) is type(evolved.response)  # read-only, as __init__ makes it
    with pytest.raises(TypeError):
        replaced.response["reference"] = "ch_2"  # type: ignore[index]
    assert txn.status == "pending" and txn.response == {}  # the original is untouched
    assert replace(txn, request=StoredJSON('{"a":1}')).request.text == '{"a":1}'  # stored text kept as read


def test_replace_refuses_a_field_the_record_does_not_have() -> None:
    with pytest.raises(TypeError, match="'stauts'"):
        replace(_transaction(), stauts="succeeded")


_OPTIONAL = {"provider_reference": st.none() | st.text(max_size=6), "attempt": st.integers(1, 5),
             "retryable": st.booleans(), "response": st.dictionaries(st.text(max_size=4), st.integers(), max_size=2),
             "settled_by": st.none() | st.sampled_from(["answer", "webhook"])}


@given(st.fixed_dictionaries({}, optional=_OPTIONAL))
def test_build_is_the_records_init(given_fields: dict[str, Any]) -> None:
    """`build` makes what `__init__` makes: every default, converters run, read-only summaries;
    and a default shared between records cannot be changed through either."""
    at = datetime(2026, 1, 2, tzinfo=UTC)
    fields: dict[str, Any] = {
        "id": "txn_1", "payment_id": "pay_1", "method": "m", "kind": "authorize", "amount": Money(100, "EUR"),
        "status": "pending", "idempotency_key": "k", "fingerprint": "f", "request": {"amount": "1.00"},
        "created_at": at, "updated_at": at, **given_fields,
    }
    built, made = build(Transaction, **fields), Transaction(**fields)
    assert built == made and vars(built) == vars(made)
    assert {name: type(value) for name, value in vars(built).items()} == {
        name: type(value) for name, value in vars(made).items()}
    with pytest.raises(TypeError):
        built.response["x"] = 1  # type: ignore[index]
    assert build(Transaction, **fields).response == made.response


def test_build_refuses_what_init_refuses() -> None:
    at = datetime(2026, 1, 2, tzinfo=UTC)
    with pytest.raises(TypeError, match="fingerprint"):
        build(Transaction, id="t", payment_id=None, method="m", kind="vault", amount=None, status="pending",
              idempotency_key="k", created_at=at, updated_at=at)
    with pytest.raises(TypeError, match="stauts"):
        _ = build(Transaction, **{**vars(_transaction()), "stauts": "pending"})


def _payment(**changes: Any) -> Payment:
    at = datetime(2026, 1, 2, 3, 4, 5, 6, tzinfo=UTC)
    eur = Money(0, "EUR")
    fields: dict[str, Any] = {
        "id": "pay_1", "method": "m", "flow": "authorize", "amount": Money(1999, "EUR"), "state": "authorized",
        "authorized": Money(1999, "EUR"), "captured": eur, "refunded": eur, "observed_authorized": eur,
        "observed_captured": eur, "observed_refunded": eur, "capture_closed": True, "reference": "pi_1",
        "references": {"payment": "pi_1", "authorization": "pi_1"}, "created_at": at, "updated_at": at,
    }
    return Payment(**{**fields, **changes})


def _as_read(row: tuple[Any, ...]) -> tuple[Any, ...]:
    """`row` as SQLite gives it back: flags as integers."""
    return tuple(int(value) if type(value) is bool else value for value in row)


def test_a_payment_row_written_reads_back_as_its_decoding() -> None:
    """A row the ledger just wrote is not decoded again when read: what the read gives is what
    decoding it gives."""
    payment = _payment()
    row = payment_row(payment)
    _written(row, payment)
    read = payment_from_row(_as_read(row))
    assert read is payment
    assert read == _payment_from_row(_as_read(row)) and vars(read) == vars(_payment_from_row(_as_read(row)))


def test_a_payment_waiting_for_its_buyer_is_decoded_from_its_row() -> None:
    """An action's client secret is never stored, so a read never gives it back."""
    waiting = _payment(state="action_required", authorized=Money(0, "EUR"), capture_closed=False,
                       action=BuyerAction("", None, "use_stripe_sdk", client_secret="pi_1_secret_abcdef123456"))
    row = payment_row(waiting)
    _written(row, waiting)
    read = payment_from_row(_as_read(row))
    assert read is not waiting and read.action is not None and read.action.client_secret is None


_TIMES = st.datetimes(min_value=datetime(1900, 1, 1), max_value=datetime(2200, 1, 1), timezones=st.just(UTC))


def _us(value: datetime) -> int:
    return (value - datetime(1970, 1, 1, tzinfo=UTC)) // timedelta(microseconds=1)


@given(_TIMES, _TIMES, st.sampled_from(["one", "equal", "apart"]), st.booleans())
def test_a_rows_times_are_each_its_own_microseconds(created: datetime, other: datetime, how: str,
                                                    finished: bool) -> None:
    """A row converts a time its record shares between fields once; each column still holds
    the microseconds of its own field, whether the fields are one object, equal or apart."""
    updated = {"one": created, "equal": created + timedelta(0), "apart": other}[how]
    txn = _transaction(created_at=created, updated_at=updated, finished_at=updated if finished else None,
                       settle_after=other)
    row = transaction_row(txn)
    assert row[20:24] == (_us(created), _us(updated), _us(updated) if finished else None, _us(other))
    assert SQLUnit._outcome(txn)[8:11] == (_us(updated), _us(updated) if finished else None, _us(other))
    assert payment_row(_payment(created_at=created, updated_at=updated))[23:] == (_us(created), _us(updated))
