"""A misconfigured method never shows its credentials: each installed provider's method set up
wrongly in every way a person does (an endpoint refused, with its password; a credential of the
wrong type or missing; a credential written among the options, or as an option's value; a bad
timeout or environment holding a secret), every error raised (message, repr, details, chain and
traceback) and every repr of what was built (the method's configuration, its settings, the
gateway's method, the payment service, a ledger opened from a URL with a password, and the error of
one that cannot be opened) searched for the secrets."""

from __future__ import annotations

import traceback
from functools import partial
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from paywire import Gateway, MethodConfig, Money, PaymentService, PaywireError, Plugins, Retry, SQLiteLedger, Subject
from paywire.ledger import open_ledger
from paywire.testing.leaks import LeakWatch
from paywire.testing.ports import refusing_port
from paywire.testing.sandbox import load_sandbox

PROVIDERS = ("stripe", "paypal", "braintree")
URL_PASSWORD = "url-pa55word-7788aa"
DSN_PASSWORD = "dsn-pa55word-41c9e2"


@pytest.fixture(params=PROVIDERS)
def provider(request: pytest.FixtureRequest) -> tuple[str, ModuleType]:
    name = str(request.param)
    return name, pytest.importorskip(f"paywire_{name}", reason=f"the {name} plugin is not installed")


def _noted(watch: LeakWatch, error: BaseException) -> None:
    watch.note_error(error)
    watch.note("its traceback", "".join(traceback.format_exception(error)))


def test_no_misconfiguration_shows_a_credential(provider: tuple[str, ModuleType], tmp_path: Path) -> None:
    name, module = provider
    plugins = Plugins()
    plugins.register(module, name=name)
    sandbox = load_sandbox(plugins.gateway(name))
    credentials = dict(sandbox.credentials)
    first = next(iter(credentials.values()))
    with refusing_port() as port:  # nothing listens there, and nothing can take it meanwhile
        cases: list[dict[str, Any]] = [
            {},
            {"base_url": f"http://shop:{URL_PASSWORD}@127.0.0.1:{port}"},
            {"base_url": f"http://shop:{URL_PASSWORD}@127.0.0.1:{port}", "environment": "live"},
            {"base_url": f"ftp://shop:{URL_PASSWORD}@127.0.0.1:{port}"},
            {"base_url": f"http://shop:{URL_PASSWORD}@api.example.com"},
            {"credentials": {key: 4111111111111111 for key in credentials}},
            {"credentials": {}},
            {"options": {**sandbox.options, "secret_key": first, "client_secret": first}},
            {"options": {**sandbox.options, "webhook_tolerance": first}},
            {"timeout": first},
            {"environment": first},
            {first: "x"},
        ]
        watch = LeakWatch()
        with watch.watching():
            for index, case in enumerate(cases):
                settings: dict[str, Any] = {"base_url": f"http://127.0.0.1:{port}", "environment": "sandbox",
                                            "credentials": credentials, "options": dict(sandbox.options), **case}
                try:
                    config = MethodConfig.from_mapping(name, settings)
                    watch.note_repr("a method's configuration", config)
                    with Gateway([config], plugins=plugins, retry=Retry.never()) as gateway:
                        method = gateway.method(name)
                        watch.note_repr("the gateway's method", method)
                        watch.note_repr("its settings", method.settings)
                        ledger = SQLiteLedger(tmp_path / f"ledger-{index}.db")
                        service = PaymentService(gateway, ledger)
                        watch.note_repr("the payment service", service)
                        subject = Subject(amount=Money.of("1.00", "EUR"), source="tok_x", idempotency_key="k")
                        for run in (partial(service.sale, name, Money.of("1.00", "EUR"), source="tok_x"),
                                    partial(gateway.execute, name, "sale", subject),
                                    partial(gateway.parse_webhook, name, {"Stripe-Signature": "t=1,v1=00"}, b"{}")):
                            try:
                                run()
                            except PaywireError as error:
                                _noted(watch, error)
                        ledger.close()
                except PaywireError as error:
                    _noted(watch, error)
            for url in (f"postgresql://paywire:{DSN_PASSWORD}@127.0.0.1:{port}/test",
                        f"postgresql://paywire:{DSN_PASSWORD}@127.0.0.1:{port}/test?sslmode=bogus",
                        f"postgresql://paywire:{DSN_PASSWORD}/x@127.0.0.1:{port}/test",
                        f"host=127.0.0.1 port={port} password={DSN_PASSWORD} dbname=test"):
                try:
                    open_ledger(url).close()
                except PaywireError as error:
                    _noted(watch, error)
    findings = watch.leaks([*credentials.values(), URL_PASSWORD, DSN_PASSWORD, "4111111111111111"])
    assert not findings, "secrets showed:\n" + "\n".join(findings)
