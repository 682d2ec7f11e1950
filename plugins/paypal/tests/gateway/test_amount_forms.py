"""PayPal's amounts read as money, not as text: an answer that writes the amount asked for
another way ("60.0" for "60.00") is the answer to this request, not a sign that its
PayPal-Request-Id was used for another one. Taken for a reused key, the capture or refund would be
recorded failed although PayPal made it."""

from __future__ import annotations

import re
from typing import Any

import attrs
import pytest

from paywire import Money
from paywire.command.result import ProviderState
from paywire.testing.emulator import Reply
from paywire_paypal.emulator import PayPalEmulator

from .conftest import CLIENT_ID, CLIENT_SECRET, WEBHOOK_ID


class _UnpaddedAmounts(PayPalEmulator):
    """PayPal's emulator, except that its answers write amounts without trailing zeros."""

    rewritten: list[str] = []  # the paths whose answers were written so

    def handle(self, request: Any) -> Reply:
        reply = super().handle(request)
        text = re.sub(r'("value": ?)"(\d+)\.(\d*?)0+"', lambda m: f'{m[1]}"{m[2]}{"." + m[3] if m[3] else ""}"',
                      reply.body.decode())
        if text != reply.body.decode():
            self.rewritten = [*self.rewritten, request.path]
        return attrs.evolve(reply, body=text.encode())


@pytest.fixture
def unpadded(serve_paypal: Any) -> Any:
    return serve_paypal(_UnpaddedAmounts(client_id=CLIENT_ID, client_secret=CLIENT_SECRET, webhook_id=WEBHOOK_ID))


def test_an_amount_written_without_its_trailing_zeros_is_the_amount_asked_for(unpadded: Any) -> None:
    authorized = unpadded.authorized("100.00")
    captured = unpadded.run("capture", reference=authorized.reference, amount=Money.of("60.00", "EUR"), final=False,
                            idempotency_key=unpadded.key())
    assert captured.succeeded and captured.amount == Money.of("60.00", "EUR")
    refunded = unpadded.run("refund", reference=captured.reference, amount=Money.of("10.50", "EUR"),
                            idempotency_key=unpadded.key())
    assert refunded.succeeded and refunded.amount == Money.of("10.50", "EUR")
    sale = unpadded.run("sale", amount=Money.of("20.00", "EUR"), source=unpadded.app.vault_card(),
                        idempotency_key=unpadded.key())
    assert sale.succeeded and sale.state == ProviderState.CAPTURED
    assert {path.rsplit("/", 1)[-1] for path in unpadded.app.rewritten} >= {"orders", "capture", "refund"}
