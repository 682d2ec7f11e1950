"""A 2xx PayPal would never send (no resource id: an error-shaped or empty object from something in
front of PayPal) is an unknown outcome, never a crash in a handler and never a refusal."""

from __future__ import annotations

import json

import pytest

import paywire_paypal
from paywire import Money, Response, Subject
from paywire.errors import OutcomeUnknown
from paywire.service.outcome import is_unknown
from paywire.testing.emulator import EmulatorServer
from paywire.testing.harness import GatewayFactory
from paywire.testing.recorder import TransferRecorder
from paywire.testing.sandbox import load_sandbox
from paywire_paypal import PAYPAL

BODIES = [b"{}", json.dumps({"error": {"code": "card_declined", "message": "declined"}}).encode()]


@pytest.mark.parametrize("body", BODIES)
@pytest.mark.parametrize("command", ["sale", "capture", "refund", "void", "fetch"])
def test_a_2xx_without_the_resource_id_is_an_unknown_outcome(command: str, body: bytes) -> None:
    sandbox = load_sandbox(PAYPAL)
    recorder = TransferRecorder()
    with EmulatorServer(sandbox.app) as server:
        factory = GatewayFactory(paywire_paypal, sandbox.method("paypal", server.url), recorder)
        gateway = factory()
        try:
            subject = Subject(
                reference=None if command == "sale" else "5O190127TN364715T",
                amount=Money.of("10.00", "USD"), source=sandbox.sources["ok"], idempotency_key="k-unreadable",
            )
            with recorder.answering(Response(status=200, headers={"content-type": "application/json"}, body=body)):
                with pytest.raises(OutcomeUnknown) as raised:
                    gateway.execute("paypal", command, subject)
            assert is_unknown(raised.value)
        finally:
            factory.close()
