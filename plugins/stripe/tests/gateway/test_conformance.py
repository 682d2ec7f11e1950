"""Every request the gateway can emit conforms to Stripe's OpenAPI description (2023-08-16).

Hypothesis draws subjects for every command (payments in every currency, orders with addresses,
metadata, vaulted charges, references to real and unknown objects, intents in each state); each
command runs against the emulator and every transfer it sends is checked against
`../shared/specs/stripe/spec3.json`: the path template and method exist, every form or query
parameter is declared for that operation at its nesting, enum values are allowed, integers,
booleans and strings are what the schema says, lists are indexed from 0, required parameters are
there, and the headers are Stripe's (pinned version, Bearer key, form content, idempotency key).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import paywire_stripe
from paywire import Customer, Money, Order, PaywireError, Subject, Transfer
from paywire.testing.strategies import idempotency_keys, provider_ids, subjects

CURRENCIES = paywire_stripe.STRIPE.currencies
CARDS = ["pm_card_visa", "pm_card_mastercard", "pm_card_chargeDeclined", "pm_card_threeDSecure2Required",
         "pm_card_chargeDeclinedInsufficientFunds", "tok_visa"]
RETURN = "https://shop.example/return"
EXPECTED_OPERATIONS = {
    ("POST", "/v1/payment_intents"),
    ("GET", "/v1/payment_intents/{intent}"),
    ("POST", "/v1/payment_intents/{intent}/confirm"),
    ("POST", "/v1/payment_intents/{intent}/capture"),
    ("POST", "/v1/payment_intents/{intent}/cancel"),
    ("GET", "/v1/payment_intents/search"),
    ("GET", "/v1/payment_intents"),
    ("POST", "/v1/refunds"),
    ("GET", "/v1/refunds"),
    ("POST", "/v1/customers"),
    ("POST", "/v1/payment_methods/{payment_method}/attach"),
    ("POST", "/v1/payment_methods/{payment_method}/detach"),
}
INTENT = "/v1/payment_intents/{intent}"
PAYMENT_METHOD = "/v1/payment_methods/{payment_method}"
OPERATIONS = {
    "authorize": {("POST", "/v1/payment_intents")},
    "sale": {("POST", "/v1/payment_intents")},
    "capture": {("POST", INTENT + "/capture")},
    "void": {("POST", INTENT + "/cancel")},
    "refund": {("POST", "/v1/refunds")},
    "complete": {("GET", INTENT), ("POST", INTENT + "/confirm")},
    "fetch": {("GET", INTENT), ("GET", "/v1/payment_intents/search"), ("GET", "/v1/payment_intents"),
              ("GET", "/v1/refunds")},
    "vault": {("POST", "/v1/customers"), ("POST", PAYMENT_METHOD + "/attach")},
    "unvault": {("POST", PAYMENT_METHOD + "/detach")},
}
_KEY = re.compile(r"^([^\[\]]+)((?:\[[^\[\]]*\])*)$")


class StripeSpec:
    """Stripe's OpenAPI document, asked whether one transfer is a request it describes."""

    def __init__(self, document: Mapping[str, Any]) -> None:
        self.document = document
        self.version = document["info"]["version"]
        templates = []
        for template in document["paths"]:
            pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
            templates.append((template.count("{"), re.compile(f"^{pattern}$"), template))
        self.templates = sorted(templates, key=lambda entry: (entry[0], entry[2]))  # /search before /{intent}

    def resolve(self, schema: Mapping[str, Any]) -> Mapping[str, Any]:
        while "$ref" in schema:
            node: Any = self.document
            for part in schema["$ref"].lstrip("#/").split("/"):
                node = node[part]
            schema = node
        return schema

    def operation(self, method: str, path: str) -> tuple[str, Mapping[str, Any]]:
        for _, pattern, template in self.templates:
            if pattern.match(path):
                operation = self.document["paths"][template].get(method.lower())
                assert operation is not None, f"{method} is not an operation of {template}"
                return template, operation
        raise AssertionError(f"no path template of Stripe's API matches {path}")

    def problems(self, transfer: Transfer) -> list[str]:
        url = urlsplit(transfer.url)
        template, operation = self.operation(transfer.method, url.path)
        where = f"{transfer.method} {template}"
        if transfer.method == "GET":
            pairs = parse_qsl(url.query, keep_blank_values=True)
            declared = {p["name"]: p for p in operation.get("parameters", []) if p["in"] == "query"}
            schema: Mapping[str, Any] = {"type": "object", "properties": {n: p["schema"] for n, p in declared.items()}}
            required = {n for n, p in declared.items() if p.get("required")}
            problems = [f"{where}: a GET has a body"] if transfer.body else []
        else:
            pairs = parse_qsl((transfer.body or b"").decode(), keep_blank_values=True)
            body = operation["requestBody"]["content"]["application/x-www-form-urlencoded"]["schema"]
            schema, required = self.resolve(body), set(self.resolve(body).get("required", ()))
            problems = [] if not url.query else [f"{where}: a POST has a query string"]
        names: dict[str, list[str]] = {}
        for key, value in pairs:
            parsed = _KEY.match(key)
            if parsed is None:
                problems.append(f"{where}: malformed parameter name {key!r}")
                continue
            path = [parsed.group(1), *re.findall(r"\[([^\[\]]*)\]", parsed.group(2))]
            names.setdefault(path[0], []).append(key)
            problems += [f"{where}: {key}={value!r}: {why}" for why in self.value_problems(schema, path, value)]
        problems += [f"{where}: required parameter {name!r} is missing" for name in sorted(required - set(names))]
        problems += _index_problems(where, [key for key, _ in pairs])
        return problems + self.header_problems(where, transfer)

    def value_problems(self, schema: Mapping[str, Any], path: list[str], value: str) -> list[str]:
        schema = self.resolve(schema)
        if "anyOf" in schema:
            tries = [self.value_problems(option, path, value) for option in schema["anyOf"]]
            return [] if any(not found for found in tries) else min(tries, key=len)
        kind = schema.get("type")
        if path:
            step, rest = path[0], path[1:]
            if kind == "array":
                return self.value_problems(schema["items"], rest, value) if step.isdigit() else [
                    f"list index {step!r} is not a number"]
            if kind == "object" or "properties" in schema:
                properties = schema.get("properties", {})
                if step in properties:
                    return self.value_problems(properties[step], rest, value)
                extra = schema.get("additionalProperties")
                if extra:
                    return self.value_problems(extra if isinstance(extra, Mapping) else {}, rest, value)
                return [f"{step!r} is not a parameter Stripe declares here"]
            return [f"{step!r} is nested under a {kind or 'untyped'} value"]
        if kind in ("object", "array"):
            return [f"a {kind} is sent as the single value {value!r}"]
        if "enum" in schema and value not in schema["enum"]:
            return [f"{value!r} is not one of {schema['enum']}"]
        if kind == "integer" and not re.fullmatch(r"-?\d+", value):
            return [f"{value!r} is not an integer"]
        if kind == "boolean" and value not in ("true", "false"):
            return [f"{value!r} is not a boolean"]
        if kind == "string" and len(value) > schema.get("maxLength", 5000):
            return [f"{len(value)} characters, more than {schema['maxLength']}"]
        return []

    def header_problems(self, where: str, transfer: Transfer) -> list[str]:
        headers = transfer.all_headers()
        problems = []
        if headers.get("Stripe-Version") != self.version:
            problems.append(f"{where}: Stripe-Version {headers.get('Stripe-Version')!r}, the spec is {self.version}")
        if not re.fullmatch(r"Bearer (sk|rk)_(test|live)_\w+", headers.get("Authorization", "")):
            problems.append(f"{where}: no Bearer secret key")
        if transfer.method == "POST":
            if headers.get("Content-Type") != "application/x-www-form-urlencoded":
                problems.append(f"{where}: Content-Type {headers.get('Content-Type')!r}")
            if headers.get("Idempotency-Key") != transfer.idempotency_key:
                problems.append(f"{where}: Idempotency-Key differs from the transfer's key")
            if transfer.idempotency_key is not None and not 1 <= len(transfer.idempotency_key) <= 255:
                problems.append(f"{where}: an idempotency key Stripe does not keep")
        elif "Idempotency-Key" in headers:
            problems.append(f"{where}: an Idempotency-Key on a GET")
        return problems


def _index_problems(where: str, keys: list[str]) -> list[str]:
    """Every list is indexed 0, 1, 2, ... without gaps."""
    indexes: dict[str, set[int]] = {}
    for key in keys:
        for match in re.finditer(r"\[(\d+)\]", key):
            indexes.setdefault(key[: match.start()], set()).add(int(match.group(1)))
    return [f"{where}: {prefix} is indexed {sorted(found)}" for prefix, found in indexes.items()
            if found != set(range(len(found)))]


@functools.cache
def _load(path: Path) -> StripeSpec:
    return StripeSpec(json.loads(path.read_text(encoding="utf-8")))


@pytest.fixture
def spec(specs: Path) -> StripeSpec:
    """Stripe's spec, read once; `specs` skips, saying why, where ../shared/specs is absent."""
    return _load(specs / "spec3.json")


@pytest.fixture
def seen() -> set[tuple[str, str]]:
    return set()


@pytest.fixture
def conforms(stripe: Any, spec: StripeSpec, seen: set[tuple[str, str]]) -> Any:
    """Runs a command and checks every transfer it sent; Stripe's answer does not matter here."""

    def run(command: str, subject: Subject) -> None:
        mark = len(stripe.recorder.sent)
        try:
            stripe.run(command, subject)
        except PaywireError:
            pass
        for record in stripe.recorder.sent[mark:]:
            transfer = record.transfer
            seen.add((transfer.method, spec.operation(transfer.method, urlsplit(transfer.url).path)[0]))
            problems = spec.problems(transfer)
            assert not problems, f"{command} sent a request Stripe does not describe:\n" + "\n".join(problems)

    return run


def _payments(command: str) -> st.SearchStrategy[Subject]:
    plain = subjects(command, sources=st.sampled_from(CARDS), currency=CURRENCIES)

    def vaulted(subject: Subject, customer: str) -> Subject:
        return Subject(amount=subject.amount, source=subject.source, order=subject.order, vaulted=True,
                       customer=Customer(reference=customer), metadata=subject.metadata,
                       idempotency_key=subject.idempotency_key)

    return st.one_of(plain, st.builds(vaulted, plain, provider_ids("cus")))


class World:
    """Real objects in every state the commands meet, made through the emulator, and the subjects
    to draw for each command: those, plus generated ones naming objects Stripe does not have."""

    def __init__(self, stripe: Any, api: Any) -> None:
        eur = Money.of("25.00", "EUR")
        self.authorized = [stripe.authorize(eur).reference for _ in range(3)]
        self.sold = [stripe.sale(eur).reference for _ in range(2)]
        self.waiting = [stripe.authorize(eur, "pm_card_threeDSecure2Required").reference for _ in range(2)]
        stripe.app.complete_challenge(self.waiting[0])
        self.manual = api.intent(payment_method="pm_card_threeDSecure2Required", confirmation_method="manual",
                                 confirm=True, capture_method="manual", return_url="https://shop.example/return")["id"]
        stripe.app.complete_challenge(self.manual)
        self.vaulted = stripe.run("vault", Subject(source="pm_card_visa", customer=Customer(email="c@shop.example"),
                                                   idempotency_key="conformance-vault"))

    def example(self, command: str) -> Subject:
        """A subject that takes `command` down its every request."""
        eur = Money.of("10.00", "EUR")
        examples = {
            "authorize": Subject(amount=eur, source="pm_card_visa", idempotency_key="x-1", return_url=RETURN),
            "sale": Subject(amount=eur, source="pm_card_visa", idempotency_key="x-2", return_url=RETURN),
            "capture": Subject(reference=self.authorized[0], amount=eur, idempotency_key="x-3"),
            "void": Subject(reference=self.authorized[1], reason="duplicate", idempotency_key="x-4"),
            "refund": Subject(reference=self.sold[0], amount=eur, reason="fraud", idempotency_key="x-5"),
            "complete": Subject(reference=self.manual, idempotency_key="x-6", return_url=RETURN),
            "fetch": Subject(idempotency_key="conformance-vault", order=Order(id="conformance"),
                             sent_at=datetime.now(UTC)),
            "vault": Subject(source="pm_card_visa", customer=Customer(name="Ada"), idempotency_key="x-7"),
            "unvault": Subject(source=self.vaulted.token, idempotency_key="x-8"),
        }
        return examples[command]

    def subjects(self, command: str) -> st.SearchStrategy[Subject]:
        if command in ("authorize", "sale"):
            return _payments(command)
        if command == "vault":
            return st.one_of(
                subjects("vault", sources=st.sampled_from(CARDS)),
                st.builds(Subject, source=st.sampled_from(CARDS), idempotency_key=st.none() | idempotency_keys(),
                          customer=st.builds(Customer, reference=st.just(self.vaulted.references["customer"]))),
            )
        if command == "unvault":
            return st.builds(Subject, source=st.sampled_from([self.vaulted.token, "pm_unknown0001"]),
                             idempotency_key=st.none() | idempotency_keys())
        real = {
            "capture": self.authorized + self.waiting,
            "void": self.authorized + self.waiting,
            "refund": self.sold,
            "complete": [*self.waiting, self.manual],
            "fetch": [*self.authorized, *self.sold, *self.waiting, self.manual],
        }[command]
        drawn = _referenced(command, real)
        if command == "fetch":
            orders = st.none() | st.builds(Order, id=st.from_regex(r"[A-Za-z0-9\-]{1,32}", fullmatch=True))
            sent = st.none() | st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2100, 1, 1),
                                            timezones=st.just(UTC))
            return st.one_of(drawn, st.builds(Subject, idempotency_key=idempotency_keys(), order=orders,
                                              sent_at=sent))
        return drawn


def _referenced(command: str, real: list[str]) -> st.SearchStrategy[Subject]:
    generated = subjects(command, currency=CURRENCIES)

    def on(subject: Subject, reference: str) -> Subject:
        return Subject(reference=reference, amount=subject.amount, reason=subject.reason,
                       idempotency_key=subject.idempotency_key, return_url=subject.return_url)

    references = st.one_of(st.sampled_from(real), provider_ids("pi"), provider_ids("ch"))
    return st.one_of(generated, st.builds(on, generated, references))


_SETTINGS = settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                             HealthCheck.too_slow])


def test_the_commands_together_use_exactly_the_operations_listed(gateway: Any) -> None:
    assert set(OPERATIONS) == set(gateway.method("stripe").commands)
    assert set().union(*OPERATIONS.values()) == EXPECTED_OPERATIONS


@pytest.mark.parametrize("command", sorted(OPERATIONS))
def test_every_request_of_the_command_is_one_stripe_describes(
    command: str, stripe: Any, api: Any, conforms: Any, seen: set[tuple[str, str]]
) -> None:
    world = World(stripe, api)
    seen.clear()
    conforms(command, world.example(command))
    if command == "fetch":  # a captured payment: its refunds are listed too
        conforms(command, Subject(reference=world.sold[1]))
        # by key, the search missing it: the intents created since its first send, page by page
        stripe.app.search_lag = 3600.0
        for _ in range(100):
            api.intent()
        mark = len(stripe.recorder.sent)
        conforms(command, Subject(idempotency_key="x-1", sent_at=datetime.now(UTC) - timedelta(minutes=5)))
        assert any("starting_after" in record.transfer.url for record in stripe.recorder.sent[mark:])
        stripe.app.search_lag = 0.0

    @_SETTINGS
    @given(world.subjects(command))
    def each(subject: Subject) -> None:
        conforms(command, subject)

    each()
    assert seen == OPERATIONS[command], f"{command} used {sorted(seen)}"


def test_the_checker_refuses_what_stripe_does_not_describe(spec: StripeSpec, api_key: str) -> None:
    """The checker itself: each kind of deviation is caught."""

    def transfer(method: str, path: str, body: str = "", **headers: str) -> Transfer:
        base = {"Stripe-Version": "2023-08-16", "Authorization": f"Bearer {api_key}",
                "Content-Type": "application/x-www-form-urlencoded"}
        return Transfer(method, "https://api.stripe.com" + path, {**base, **headers}, body.encode() or None)

    def problems(*args: str, **headers: str) -> Iterator[str]:
        yield from spec.problems(transfer(*args, **headers))

    assert not list(problems("POST", "/v1/payment_intents", "amount=100&currency=eur&metadata[a]=b&expand[0]=x"))
    assert list(problems("POST", "/v1/payment_intents", "amount=100&currency=eur&colour=red"))  # undeclared
    assert list(problems("POST", "/v1/payment_intents", "amount=1.5&currency=eur"))  # not an integer
    assert list(problems("POST", "/v1/payment_intents", "currency=eur"))  # amount is required
    assert list(problems("POST", "/v1/payment_intents", "amount=1&currency=eur&capture_method=later"))  # enum
    assert list(problems("POST", "/v1/payment_intents", "amount=1&currency=eur&confirm=yes"))  # boolean
    assert list(problems("POST", "/v1/payment_intents", "amount=1&currency=eur&expand[1]=x"))  # index gap
    assert list(problems("POST", "/v1/payment_intents", "amount=1&currency=eur&shipping[colour]=red"))
    assert list(problems("POST", "/v1/payment_intents/pi_1/cancel", "cancellation_reason=bored"))
    assert list(problems("POST", "/v1/refunds", "amount=1", **{"Stripe-Version": "2020-08-27"}))
    assert not list(problems("GET", "/v1/payment_intents/search?query=x&expand[0]=data.latest_charge"))
    assert list(problems("GET", "/v1/payment_intents/search?expand[0]=data.latest_charge"))  # query is required
    assert not list(problems("GET", "/v1/payment_intents?limit=100&created[gte]=1700000000&starting_after=pi_1"))
    assert list(problems("GET", "/v1/payment_intents?created[since]=1700000000"))  # no such range operator
    assert list(problems("GET", "/v1/payment_intents?created[gte]=2023-11-14"))  # a timestamp is an integer
    with pytest.raises(AssertionError, match="is not an operation"):
        list(problems("DELETE", "/v1/payment_intents/pi_1"))
    with pytest.raises(AssertionError, match="no path template"):
        list(problems("POST", "/v1/payment_intents/pi_1/refund"))
