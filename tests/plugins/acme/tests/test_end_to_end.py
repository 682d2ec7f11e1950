"""A third-party plugin, pip-installed, discovered through its entry point and run end to end
against its emulator over real HTTP, with another installed plugin extending its requests."""

from __future__ import annotations

import json

import pytest

from paywire import Declined, Gateway, MethodConfig, Money, Plugins, Subject
from paywire.testing.emulator import EmulatorServer
from paywire_acme.emulator import AcmeEmulator


@pytest.fixture
def acme():
    app = AcmeEmulator()
    with EmulatorServer(app) as server:
        yield app, server.url


def test_discovered_and_run_without_touching_the_core(acme) -> None:
    app, url = acme
    plugins = Plugins().load_entry_points()
    assert {"acme", "acme_tagger"} <= {info.name for info in plugins.loaded}
    assert plugins.owner("acme").distribution == "paywire-acme"
    gateway = Gateway([MethodConfig(code="acme", base_url=url, credentials={"api_key": "acme_test_key", "webhook_secret": "acme_whsec"})],
                      plugins=plugins)

    auth = gateway.execute("acme", "authorize", Subject(amount=Money.of("30.00", "EUR"), source="tok_ok", idempotency_key="e2e-1"))
    assert auth.state == "authorized" and auth.authorized == Money.of("30.00", "EUR")
    assert app.payments[auth.reference]["metadata"] == {"channel": "web-shop"}  # added by paywire-acme-tagger

    capture = gateway.execute("acme", "capture", Subject(reference=auth.reference, amount=Money.of("10.00", "EUR"), final=False, idempotency_key="e2e-2"))
    assert capture.amount == Money.of("10.00", "EUR") and capture.state == "partially_captured"
    refund = gateway.execute("acme", "refund", Subject(reference=auth.reference, amount=Money.of("4.00", "EUR"), idempotency_key="e2e-3"))
    assert refund.amount == Money.of("4.00", "EUR")
    fetched = gateway.execute("acme", "fetch", Subject(reference=auth.reference))
    assert (fetched.captured, fetched.refunded) == (Money.of("10.00", "EUR"), Money.of("4.00", "EUR"))

    with pytest.raises(Declined) as caught:
        gateway.execute("acme", "sale", Subject(amount=Money.of("1.00", "EUR"), source="tok_decline"))
    assert caught.value.decline_code is None or caught.value.code in ("card_declined", "insufficient_funds")

    body, headers = app.events[-1]
    event = gateway.parse_webhook("acme", headers, body)
    assert event.kind == "refunded" and event.reference == auth.reference
    assert json.loads(body)["type"] == "payment.refunded"
