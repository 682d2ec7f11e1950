"""A credential of awkward shape, refused by a provider that quotes it back, shows nowhere.

Each provider's emulator on loopback, behind a proxy-like wrapper whose error answers repeat the
credential the request carried (the Authorization header as sent, and the key or password in
it decoded), as some providers and the proxies in front of them do. The gateway is configured
with a wrong credential that starts like a key (a shape redaction knows) and goes on with
characters the shape does not take, or holds both quotes, a backslash, a control character.
Everything the run shows is searched: log records of every logger at DEBUG (urllib3's too),
every error and its chain, every row of the ledger.
"""

from __future__ import annotations

import base64
import binascii
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import attrs
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from paywire import (
    ConfigurationError,
    Gateway,
    Money,
    PaymentService,
    PaywireError,
    Plugins,
    Retry,
    SQLiteLedger,
)
from paywire.settings import env_name
from paywire.testing.emulator import EmulatorApp, EmulatorRequest, EmulatorServer, Fault, Reply
from paywire.testing.leaks import LeakWatch
from paywire.testing.sandbox import Sandbox, load_sandbox

PROVIDERS = {"stripe": "secret_key", "paypal": "client_secret", "braintree": "private_key"}
MESSAGE_KEYS = frozenset({"message", "description", "error_description"})
# Starts that are shapes redaction recognises, and what is sure to follow none of them.
PREFIXES = ("sk_test_51Hx9zQ", "whsec_Zm9vYmFyYmF6", "rk_test_4eC39Hq", "Bearer x")
TAIL = st.text(st.sampled_from("!#$%&'()*+,/:;=?@[]\\^{|}.-\"~ é€\x01"), min_size=1, max_size=3)


class QuotingProvider:
    """An emulator whose error answers quote the credential they were sent: in their messages,
    or, `everywhere`, in every text of the error answer (its code, its type, the parameter it
    names) and in the debug id headers too."""

    def __init__(self, app: EmulatorApp) -> None:
        self.app = app
        self.everywhere = False

    def __getattr__(self, name: str) -> Any:
        return getattr(self.app, name)

    @property
    def base_url(self) -> str:
        return str(self.app.base_url)

    @base_url.setter
    def base_url(self, url: str) -> None:
        self.app.base_url = url

    def answer(self, request: EmulatorRequest) -> tuple[Reply | None, bool]:
        reply, drop = self.app.answer(request)
        if reply is None or "json" not in reply.headers.get("Content-Type", ""):
            return reply, drop
        payload = json.loads(reply.body or b"null")
        if reply.status < 400 and not (isinstance(payload, dict) and payload.get("errors")):
            return reply, drop
        authorization = request.header("authorization") or ""
        echo = f" (you sent Authorization: {authorization}, that is {_credential(authorization)!r})"
        if not self.everywhere:
            return attrs.evolve(reply, body=json.dumps(_echoed(payload, echo)).encode()), drop
        headers = {**reply.headers, "Request-Id": "req_1" + echo, "PayPal-Debug-Id": "f00d" + echo}
        return attrs.evolve(reply, body=json.dumps(_echoed(payload, echo, every=True)).encode(),
                            headers=headers), drop


def _credential(authorization: str) -> str:
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() != "basic":
        return value
    try:
        return base64.b64decode(value).decode()
    except (binascii.Error, UnicodeDecodeError):
        return value


def _echoed(value: Any, echo: str, key: str = "", *, every: bool = False) -> Any:
    if isinstance(value, dict):
        return {name: _echoed(item, echo, name, every=every) for name, item in value.items()}
    if isinstance(value, list):
        return [_echoed(item, echo, key, every=every) for item in value]
    return value + echo if isinstance(value, str) and (every or key in MESSAGE_KEYS) else value


@attrs.define
class Served:
    name: str
    module: ModuleType
    sandbox: Sandbox
    url: str
    quoting: QuotingProvider


@pytest.fixture(params=sorted(PROVIDERS))
def served(request: pytest.FixtureRequest) -> Iterator[Served]:
    name = str(request.param)
    module = pytest.importorskip(f"paywire_{name}", reason=f"the {name} plugin is not installed")
    plugins = Plugins()
    plugins.register(module, name=name)
    sandbox = load_sandbox(plugins.gateway(name))
    quoting = QuotingProvider(sandbox.app)
    with EmulatorServer(quoting) as server:  # type: ignore[arg-type]
        yield Served(name, module, sandbox, server.url, quoting)



@st.composite
def wrong_credentials(draw: st.DrawFn) -> str:
    secret = draw(st.sampled_from(PREFIXES)) + draw(TAIL) + "tail" + draw(st.text("0123456789abcdef", min_size=6,
                                                                                  max_size=6))
    assume("\x01" not in secret or "'" in secret)  # the control character where a repr escapes it
    return secret


@pytest.mark.usefixtures("known_secrets_restored")
@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(wrong=wrong_credentials())
def test_a_refused_credential_quoted_back_shows_nowhere(served: Served, tmp_path_factory: pytest.TempPathFactory,
                                                         wrong: str) -> None:
    plugins = Plugins()
    plugins.register(served.module, name=served.name)
    credentials = {**served.sandbox.credentials, PROVIDERS[served.name]: wrong}
    method = served.sandbox.method(served.name, served.url, credentials=credentials)
    path = tmp_path_factory.mktemp("ledger") / "ledger.db"
    watch = LeakWatch()
    urllib3 = logging.getLogger("urllib3")
    level = urllib3.level
    urllib3.setLevel(logging.DEBUG)
    try:
        with Gateway([method], plugins=plugins, retry=Retry.never()) as gateway, watch.watching():
            ledger = SQLiteLedger(path)
            try:
                error = watch.call(PaymentService(gateway, ledger).sale, served.name, Money.of("3.00", "EUR"),
                                   source=served.sandbox.sources["ok"])
            finally:
                ledger.close()
    finally:
        urllib3.setLevel(level)
    assert isinstance(error, PaywireError)
    watch.note_sqlite(path)
    tail = wrong[wrong.index("tail") - 1:]  # what no shape takes: left whole when a shape masks the start
    findings = watch.leaks([wrong, tail])
    assert not findings, "the credential showed:\n" + "\n".join(findings)


def test_the_credential_is_quoted_back(served: Served, tmp_path: Path) -> None:
    """The wrapper does quote the credential: without it the test above would prove nothing."""
    plugins = Plugins()
    plugins.register(served.module, name=served.name)
    wrong = "sk_test_51Hx9zQ!tail0a1b2c"
    credentials = {**served.sandbox.credentials, PROVIDERS[served.name]: wrong}
    method = served.sandbox.method(served.name, served.url, credentials=credentials)
    with Gateway([method], plugins=plugins, retry=Retry.never()) as gateway:
        ledger = SQLiteLedger(tmp_path / "ledger.db")
        try:
            with pytest.raises(PaywireError) as raised:
                PaymentService(gateway, ledger).sale(served.name, Money.of("3.00", "EUR"),
                                                     source=served.sandbox.sources["ok"])
        finally:
            ledger.close()
    assert "you sent Authorization" in str(raised.value)


def test_a_credential_quoted_in_the_error_code_and_debug_id_shows_nowhere(served: Served, tmp_path: Path) -> None:
    """The provider's code, type, parameter and debug id are read from the same answer as its
    message, and shown as much (`str` of the error, the ledger's error code): masked as well."""
    served.quoting.everywhere = True
    plugins = Plugins()
    plugins.register(served.module, name=served.name)
    wrong = "wrong-credential-5e2f8a1d9c"
    good = served.sandbox.method(served.name, served.url)
    refused = served.sandbox.method(served.name, served.url,
                                    credentials={**served.sandbox.credentials, PROVIDERS[served.name]: wrong})
    watch = LeakWatch()
    ledger = SQLiteLedger(tmp_path / "ledger.db")
    try:
        with Gateway([good], plugins=plugins, retry=Retry.never()) as gateway, \
                Gateway([refused], plugins=plugins, retry=Retry.never()) as wrong_gateway, watch.watching():
            service = PaymentService(gateway, ledger)
            errors = [watch.call(PaymentService(wrong_gateway, ledger).sale, served.name, Money.of("3.00", "EUR"),
                                 source=served.sandbox.sources["ok"])]
            errors.append(watch.call(service.sale, served.name, Money.of("8.00", "EUR"),
                                     source=served.sandbox.sources["decline"]))
            errors.append(watch.call(service.sale, served.name, Money.of("2.00", "EUR"),
                                     source="no-such-payment-method"))  # refused naming its parameter
            for status in (400, 500):
                served.sandbox.app.inject(Fault("status", status=status))
                errors.append(watch.call(service.sale, served.name, Money.of("2.50", "EUR"),
                                         source=served.sandbox.sources["ok"]))
            watch.note_reads(service)
    finally:
        ledger.close()
    assert all(isinstance(error, PaywireError) for error in errors), errors
    assert any("you sent Authorization" in (error.code or "") for error in errors)  # the codes did quote it
    watch.note_sqlite(tmp_path / "ledger.db")
    tokens = list(getattr(served.sandbox.app, "tokens", {}))  # PayPal's access tokens
    findings = watch.leaks([*served.sandbox.credentials.values(), wrong, *tokens])
    assert not findings, "a credential showed:\n" + "\n".join(findings)


def test_a_credential_read_with_bytes_not_utf8_is_refused_without_showing_it(
        served: Served, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An environment variable written in another encoding: Python reads its bytes as lone
    surrogates, which UTF-8 cannot write. Refused as a configuration error carrying nothing of
    the value (the encoding error Python raises holds all of it in its arguments)."""
    field = PROVIDERS[served.name]
    value = served.sandbox.credentials[field] + "\udce9"  # b"\xe9", Latin-1's é, as os.environ decodes it
    monkeypatch.setenv(env_name(served.name, field), value)
    plugins = Plugins()
    plugins.register(served.module, name=served.name)
    credentials = {name: secret for name, secret in served.sandbox.credentials.items() if name != field}
    method = served.sandbox.method(served.name, served.url, credentials=credentials)
    watch = LeakWatch()
    ledger = SQLiteLedger(tmp_path / "ledger.db")
    try:
        with Gateway([method], plugins=plugins, retry=Retry.never()) as gateway, watch.watching():
            try:
                PaymentService(gateway, ledger).sale(served.name, Money.of("3.00", "EUR"),
                                                     source=served.sandbox.sources["ok"])
            except BaseException as error:  # whatever is raised is searched
                raised: BaseException = error
                watch.note_error(error)
    finally:
        ledger.close()
    assert isinstance(raised, ConfigurationError), repr(raised)
    watch.note_sqlite(tmp_path / "ledger.db")
    findings = watch.leaks([served.sandbox.credentials[field]])  # all of the value but its last character
    assert not findings, "the credential showed:\n" + "\n".join(findings)
