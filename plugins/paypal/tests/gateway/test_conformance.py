"""Every request the plugin sends conforms to PayPal's published OpenAPI descriptions.

The specifications (Orders v2, Payments v2, Vault v3, Webhooks v1) live in `shared/specs/paypal/`
next to the project. For subjects hypothesis draws, every command runs against the emulator and
every transfer it puts on the wire is checked: the path and method exist, header parameters are
declared (and required ones present), and the JSON body has only declared properties, every
required one, valid enums, string lengths, patterns, array sizes and types. The token endpoint is
not a path in these files (only the tokenUrl of their OAuth scheme), so it is checked by hand.

Two places where PayPal's own server SDK is newer than the 2024 files are listed as errata below;
anything else the checker finds fails the test.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from paywire import Customer, Money, Order, PaywireError, Subject, Transfer
from paywire.testing.strategies import addresses, customers, idempotency_keys, line_items, safe_text
from paywire_paypal import PAYPAL
from paywire_paypal.currencies import CURRENCIES
from paywire_paypal.emulator.sandbox import approve_as_buyer

SPECS = Path(__file__).resolve().parents[4].parent / "shared" / "specs" / "paypal"
FILES = ("checkout_orders_v2.json", "payments_payment_v2.json", "vault_payment_tokens_v3.json",
         "notifications_webhooks_v1.json")
IMPLIED_HEADERS = {"accept", "authorization", "content-type"}

# (method, path template, what) -> why it is allowed although the 2024 files do not declare it.
ERRATA = {
    ("POST", "/v2/payments/authorizations/{authorization_id}/void", "header PayPal-Request-Id"):
        "PayPal's server SDK sends it (paypal-server-sdk 2.x PaymentsController.void_payment, paypal_request_id)",
    ("POST", "/v3/vault/payment-tokens", "enum /payment_source/token/type SETUP_TOKEN"):
        "exchanging a setup token; PayPal's server SDK has VaultTokenRequestType.SETUP_TOKEN",
}

pytestmark = pytest.mark.skipif(
    not SPECS.is_dir(), reason=f"PayPal's OpenAPI files are not available at {SPECS} (a clone without shared/specs)")


# -- a small OpenAPI 3 request checker ------------------------------------------------------------
class Spec:
    def __init__(self, folder: Path) -> None:
        self.operations: list[tuple[str, re.Pattern[str], str, dict[str, Any], dict[str, Any]]] = []
        for name in FILES:
            document = json.loads((folder / name).read_text())
            for template, item in document["paths"].items():
                pattern = re.compile("^" + re.sub(r"\\{[^}]+\\}", "[^/]+", re.escape(template)) + "$")
                for method, operation in item.items():
                    if method != "parameters":
                        self.operations.append((method.upper(), pattern, template, operation, document))

    def _find(self, transfer: Transfer) -> tuple[str, dict[str, Any], dict[str, Any]] | None:
        path = urlsplit(transfer.url).path
        return next(((template, operation, document) for method, pattern, template, operation, document
                     in self.operations if method == transfer.method and pattern.match(path)), None)

    def key_life(self, transfer: Transfer) -> float | None:
        """Seconds PayPal keeps the PayPal-Request-Id of `transfer`'s operation, as its
        specification says ("The server stores keys for 6 hours"); None where it says nothing."""
        found = self._find(transfer)
        assert found is not None, f"{transfer.method} {transfer.url} is not an operation of PayPal's specifications"
        _, operation, document = found
        for parameter in operation.get("parameters", []):
            parameter = Checker(document, ("", "")).resolve(parameter)
            if parameter["name"].lower() == "paypal-request-id":
                kept = re.search(r"stores keys for (\d+) (hours|days)", parameter.get("description", ""))
                if kept:
                    return int(kept.group(1)) * (3600.0 if kept.group(2) == "hours" else 86400.0)
        return None

    def problems(self, transfer: Transfer) -> list[str]:
        found = self._find(transfer)
        if found is None:
            return [f"{transfer.method} {urlsplit(transfer.url).path} is not an operation of PayPal's specifications"]
        template, operation, document = found
        where = (transfer.method, template)
        checker = Checker(document, where)
        checker.parameters(operation, transfer)
        content = (operation.get("requestBody") or {}).get("content") or {}
        if transfer.method in ("GET", "DELETE"):
            if transfer.body:
                checker.problem("a body on a GET or DELETE")
        elif "application/json" in content:
            checker.value(content["application/json"]["schema"], json.loads(transfer.body or b"null"), "")
            if transfer.headers.get("Content-Type") != "application/json":
                checker.problem("JSON sent without Content-Type: application/json")
        elif transfer.body not in (None, b"", b"{}"):
            checker.problem(f"a body although the operation takes none: {transfer.body[:80]!r}")
        return checker.found


class Checker:
    def __init__(self, document: dict[str, Any], where: tuple[str, str]) -> None:
        self.document = document
        self.where = where
        self.found: list[str] = []

    def problem(self, text: str) -> None:
        self.found.append(f"{self.where[0]} {self.where[1]}: {text}")

    def allowed(self, what: str) -> bool:
        return (*self.where, what) in ERRATA

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in schema:
            node: Any = self.document
            for part in schema["$ref"].lstrip("#/").split("/"):
                node = node[part]
            schema = node
        return schema

    def parameters(self, operation: dict[str, Any], transfer: Transfer) -> None:
        declared = {}
        for parameter in operation.get("parameters", []):
            parameter = self.resolve(parameter)
            declared[(parameter["in"], parameter["name"].lower())] = parameter
        for name, value in transfer.headers.items():
            parameter = declared.get(("header", name.lower()))
            if parameter is None:
                if name.lower() not in IMPLIED_HEADERS and not self.allowed(f"header {name}"):
                    self.problem(f"header {name} is not declared")
                continue
            self.value(parameter.get("schema", {}), value, f"header {name}")
        sent_headers = {name.lower() for name in transfer.headers}
        for (place, name), parameter in declared.items():
            if place == "header" and parameter.get("required") and name not in sent_headers:
                self.problem(f"required header {parameter['name']} is missing")
        for name, value in parse_qsl(urlsplit(transfer.url).query):
            parameter = declared.get(("query", name.lower()))
            if parameter is None:
                self.problem(f"query parameter {name} is not declared")
            else:
                self.value(parameter.get("schema", {}), value, f"query {name}")

    def value(self, schema: dict[str, Any], value: Any, at: str) -> None:
        schema = self.resolve(schema)
        parts = [self.resolve(part) for part in schema.get("allOf", [])]
        for part in parts:
            self.value({k: v for k, v in part.items() if k != "properties"}, value, at)
        for keyword in ("oneOf", "anyOf"):
            if keyword in schema and not any(self._fits(option, value, at) for option in schema[keyword]):
                self.problem(f"{at or '/'} matches none of {keyword}")
        kind = schema.get("type") or ("object" if "properties" in schema or any("properties" in p for p in parts)
                                      else None)
        if "enum" in schema and value not in schema["enum"] and not self.allowed(f"enum {at} {value}"):
            self.problem(f"{at} = {value!r} is not one of {schema['enum']}")
        if kind == "object":
            self._object(schema, parts, value, at)
        elif kind == "array":
            self._array(schema, value, at)
        elif kind == "string":
            self._string(schema, value, at)
        elif kind == "boolean" and not isinstance(value, bool):
            self.problem(f"{at} is {value!r}, not a boolean")
        elif kind in ("integer", "number") and (isinstance(value, bool) or not isinstance(value, (int, float))):
            self.problem(f"{at} is {value!r}, not a number")

    def _fits(self, schema: dict[str, Any], value: Any, at: str) -> bool:
        trial = Checker(self.document, self.where)
        trial.value(schema, value, at)
        return not trial.found

    def _object(self, schema: dict[str, Any], parts: list[dict[str, Any]], value: Any, at: str) -> None:
        if not isinstance(value, Mapping):
            self.problem(f"{at or '/'} is {type(value).__name__}, not an object")
            return
        properties = dict(schema.get("properties", {}))
        required = set(schema.get("required", []))
        for part in parts:
            properties |= part.get("properties", {})
            required |= set(part.get("required", []))
        for name in sorted(required - set(value)):
            self.problem(f"{at}/{name} is required")
        free = schema.get("additionalProperties") not in (None, False) or not properties
        for name, item in value.items():
            if name in properties:
                self.value(properties[name], item, f"{at}/{name}")
            elif not free:
                self.problem(f"{at}/{name} is not a declared property")

    def _array(self, schema: dict[str, Any], value: Any, at: str) -> None:
        if not isinstance(value, list):
            self.problem(f"{at} is not an array")
            return
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
            self.problem(f"{at} has {len(value)} items")
        for index, item in enumerate(value):
            self.value(schema.get("items", {}), item, f"{at}/{index}")

    def _string(self, schema: dict[str, Any], value: Any, at: str) -> None:
        if not isinstance(value, str):
            self.problem(f"{at} is {value!r}, not a string")
            return
        if len(value) < schema.get("minLength", 0) or len(value) > schema.get("maxLength", len(value)):
            self.problem(f"{at} has {len(value)} characters")
        pattern = schema.get("pattern")
        if pattern and not re.search(pattern, value) and not self.allowed(f"pattern {at}"):
            self.problem(f"{at} = {value!r} does not match {pattern}")
        if schema.get("format") == "uri" and not (urlsplit(value).scheme and urlsplit(value).netloc):
            self.problem(f"{at} = {value!r} is not an absolute URI")


@pytest.fixture(scope="module")
def spec() -> Spec:
    return Spec(SPECS)


# -- the plugin against the emulator, with everything it sends checked --------------------------------
CONFORMANCE = settings(max_examples=30, deadline=None,
                       suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
RETURN_URL = "https://shop.example/paypal/return"
keys = st.none() | idempotency_keys()


def amounts(currency: str | None = None) -> st.SearchStrategy[Money]:
    """Amounts PayPal takes: whole units for HUF, JPY and TWD."""
    codes = st.just(currency) if currency else st.sampled_from(sorted(CURRENCIES))

    def of(code: str) -> st.SearchStrategy[Money]:
        step = 100 if code in ("HUF", "TWD") else 1
        return st.integers(1, 10**8).map(lambda n: Money.minor_units(n * step, code))

    return codes.flatmap(of)


def orders(amount: Money) -> st.SearchStrategy[Order]:
    return st.builds(Order, id=st.from_regex(r"[A-Za-z0-9\-]{1,32}", fullmatch=True),
                     description=st.none() | safe_text(min_size=1, max_size=200),
                     shipping=st.none() | addresses(), billing=st.none() | addresses(),
                     customer=st.none() | customers(),
                     items=st.lists(line_items(amount.currency), max_size=3).map(tuple))


def checked(paypal: Any, spec: Spec, mark: int, command: str | None = None) -> None:
    """Every transfer since `mark` conforms (the token requests are checked by their own test);
    and `command`'s declared key life (`PAYPAL.key_lives`) is no longer than PayPal keeps the
    PayPal-Request-Id of any request it sent, or the payment service would resend one PayPal no
    longer deduplicates."""
    sent = [transfer for transfer in paypal.sent[mark:] if not transfer.url.endswith("/v1/oauth2/token")]
    problems = [problem for transfer in sent for problem in spec.problems(transfer)]
    assert not problems, "\n".join(problems)
    for transfer in sent:
        kept = spec.key_life(transfer) if command and "PayPal-Request-Id" in transfer.headers else None
        if kept is not None:
            declared = PAYPAL.key_lives.get(command or "")
            assert declared is not None and declared <= kept, (
                f"{command} declares its key kept {declared} s; PayPal keeps that of {transfer.method} "
                f"{urlsplit(transfer.url).path} {kept} s")


def attempt(paypal: Any, command: str, subject: Subject) -> Any:
    try:
        return paypal.gateway.execute("paypal", command, subject)
    except PaywireError as error:
        return error


@st.composite
def payment_subjects(draw: st.DrawFn, sources: list[str]) -> Subject:
    amount = draw(amounts())
    order = draw(st.none() | orders(amount))
    if order is not None and draw(st.booleans()) and order.items:
        # items that add up, so that they are sent
        total = sum((Money.minor_units(i.unit_price.minor * i.quantity, amount.currency) for i in order.items),
                    Money.zero(amount.currency))
        amount = total if total.minor > 0 else amount
    return Subject(amount=amount, order=order, source=draw(st.sampled_from(sources)),
                   vaulted=draw(st.booleans()), return_url=draw(st.none() | st.just(RETURN_URL)),
                   customer=draw(st.none() | customers()), idempotency_key=draw(keys))


@pytest.mark.parametrize("command", ["authorize", "sale"])
def test_orders_conform(paypal, spec, command):
    sources = ["paypal", paypal.app.vault_card(), paypal.app.vault_paypal()]

    @CONFORMANCE
    @given(payment_subjects(sources))
    def conforms(subject: Subject) -> None:
        mark = len(paypal.sent)
        attempt(paypal, command, subject)
        checked(paypal, spec, mark, command)

    conforms()
    assert paypal.calls("/v2/checkout/orders", "POST") > 0


def test_completion_conforms(paypal, spec):
    @CONFORMANCE
    @given(amounts(), st.booleans(), keys)
    def conforms(amount: Money, sale: bool, key: str | None) -> None:
        mark = len(paypal.sent)
        started = paypal.run("sale" if sale else "authorize", amount=amount, source="paypal",
                             return_url=RETURN_URL, idempotency_key=paypal.key())
        checked(paypal, spec, mark, "sale" if sale else "authorize")
        approve_as_buyer(started.action.redirect_url)
        mark = len(paypal.sent)
        assert paypal.run("complete", reference=started.reference, amount=amount, idempotency_key=key).succeeded
        checked(paypal, spec, mark, "complete")

    conforms()


def test_payments_conform(paypal, spec):
    @CONFORMANCE
    @given(st.sampled_from(["capture", "void", "reauthorize", "refund"]), amounts("EUR"), st.booleans(),
           st.none() | safe_text(min_size=1, max_size=300), keys, st.booleans())
    def conforms(command: str, amount: Money, final: bool, reason: str | None, key: str | None,
                 with_amount: bool) -> None:
        mark = len(paypal.sent)
        if command == "refund":
            reference = paypal.captured("1000000.00").reference
        else:
            reference = paypal.authorized("1000000.00").reference
            if command == "reauthorize":
                paypal.days_pass(3)  # past the honor period: PayPal reauthorizes from day 4
        checked(paypal, spec, mark)
        mark = len(paypal.sent)
        attempt(paypal, command, Subject(reference=reference, amount=amount if with_amount else None, final=final,
                                         reason=reason, idempotency_key=key))
        checked(paypal, spec, mark, command)

    conforms()
    assert paypal.app.captures and paypal.app.refunds


def test_reads_conform(paypal, spec):
    authorization = paypal.authorized()
    capture = paypal.run("capture", reference=authorization.reference, idempotency_key=paypal.key())

    @CONFORMANCE
    @given(st.sampled_from([authorization.references["payment"], authorization.reference, capture.reference,
                            "NOSUCHORDERXYZ"]))
    def conforms(reference: str) -> None:
        mark = len(paypal.sent)
        attempt(paypal, "fetch", Subject(reference=reference))
        checked(paypal, spec, mark)

    conforms()


def test_vault_conforms(paypal, spec):
    @CONFORMANCE
    @given(st.sampled_from(["wallet", "setup token", "payment token", "unvault"]),
           st.none() | st.builds(Customer, reference=st.from_regex(r"[0-9a-zA-Z_-]{1,22}", fullmatch=True)),
           st.none() | st.just(RETURN_URL))
    def conforms(kind: str, customer: Customer | None, return_url: str | None) -> None:
        mark = len(paypal.sent)
        if kind == "unvault":
            attempt(paypal, "unvault", Subject(source=paypal.app.vault_paypal()))
        elif kind == "payment token":
            attempt(paypal, "vault", Subject(source=paypal.app.vault_card(), idempotency_key=paypal.key()))
        else:
            started = paypal.run("vault", source="paypal", customer=customer, return_url=return_url,
                                 idempotency_key=paypal.key())
            if kind == "setup token":
                approve_as_buyer(started.action.redirect_url)
                assert paypal.run("vault", source=started.reference, idempotency_key=paypal.key()).token
        checked(paypal, spec, mark, kind if kind == "unvault" else "vault")

    conforms()


def test_webhook_verification_conforms(paypal, spec):
    paypal.captured()
    mark = len(paypal.sent)
    for event in paypal.app.events:
        body, headers = paypal.app.signed_event(event)
        verifier = paypal.gateway_with(options={"webhook_verification": "api"})
        verifier.parse_webhook("paypal", headers, body)
        fields = {"auth_algo": headers["PAYPAL-AUTH-ALGO"], "cert_url": headers["PAYPAL-CERT-URL"],
                  "transmission_id": headers["PAYPAL-TRANSMISSION-ID"],
                  "transmission_sig": headers["PAYPAL-TRANSMISSION-SIG"],
                  "transmission_time": headers["PAYPAL-TRANSMISSION-TIME"], "webhook_id": "8PT597110X687430L",
                  "webhook_event": json.loads(body)}
        assert paypal.run("verify_webhook_signature", options=fields).state == "SUCCESS"
    checked(paypal, spec, mark)
    assert any(t.url.endswith("/verify-webhook-signature") for t in paypal.sent[mark:])


def test_the_token_request_is_paypals_client_credentials_grant(paypal):
    paypal.run("token")
    transfer = paypal.sent[0]
    assert (transfer.method, urlsplit(transfer.url).path) == ("POST", "/v1/oauth2/token")
    assert dict(parse_qsl(transfer.body.decode())) == {"grant_type": "client_credentials"}
    scheme, _, credentials = transfer.all_headers()["Authorization"].partition(" ")
    assert scheme == "Basic" and base64.b64decode(credentials).decode().partition(":")[0] == paypal.app.client_id


def test_the_checker_finds_what_paypal_would_refuse(spec):
    def transfer(method: str, path: str, body: Any, **headers: str) -> Transfer:
        return Transfer(method, "https://api-m.paypal.com" + path, {"Content-Type": "application/json", **headers},
                        json.dumps(body).encode())

    unit = {"amount": {"currency_code": "EUR", "value": "10.00"}}
    assert not spec.problems(transfer("POST", "/v2/checkout/orders", {"intent": "CAPTURE", "purchase_units": [unit]}))
    found = spec.problems(transfer("POST", "/v2/checkout/orders", {"intent": "SELL", "purchase_units": [],
                                                                    "metadata": {}}, **{"X-Custom": "1"}))
    assert len(found) == 4, found  # the enum, the array size, the undeclared property and header
    assert spec.problems(transfer("POST", "/v2/checkout/orders", {"purchase_units": [
        {"amount": {"currency_code": "EUR", "value": "10.005.1"}, "custom_id": "x" * 128}]}))
    assert spec.problems(transfer("POST", "/v2/payments/no-such-path", {}))
    assert spec.problems(transfer("POST", "/v3/vault/setup-tokens", {"payment_source": {"paypal": {}}}))
