"""A void or a final capture the provider accepts and decides later (a modification answered
"received", FakePay's `tok_async` captures): in flight until the provider's event or
reconciliation settles it, like every accepted operation. The payment is neither voided nor
closed for capture meanwhile (nothing else may be captured while it is in flight), and one the
provider then refuses leaves the authorization as it was: capturable, not stuck."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import attrs
import pytest

from paywire import CommandPool, EventKind, HandlerChain, MethodConfig, Plugins, Retry, StateError, hookimpl
from paywire.gateway import Gateway
from paywire.http.response import Response
from paywire.ledger import Ledger, PaymentState, TransactionStatus
from paywire.service import PaymentService
from tests.ledger.fakepay import CREDENTIALS, FAKEPAY, FakePayApp, FakePayPlugin, build_commands
from tests.ledger.support import agree, eur

S = TransactionStatus


def _build(settings: Any) -> CommandPool:
    """FakePay's commands, with a void whose answer says the provider decides later."""
    pool = build_commands(settings)
    void = attrs.evolve(pool["void"], handler=HandlerChain([lambda s, r: {"reference": r.data["id"],
                                                                          "status": "accepted"}]))
    return CommandPool({**pool, "void": void}, gateway=settings.gateway)


class VoidReceived:
    """The provider takes the void and answers 202 without voiding yet."""

    @hookimpl
    def send_transfer(self, command: str, transfer: Any) -> Response | None:
        if command != "void":
            return None
        payment = transfer.url.rsplit("/", 2)[-2]
        return Response(202, {"content-type": "application/json"},
                        b'{"id": "%s", "status": "pending"}' % payment.encode())


@pytest.fixture
def received(fakepay: tuple[FakePayApp, str], ledger: Ledger) -> Iterator[PaymentService]:
    plugins = Plugins()
    plugins.register(FakePayPlugin(FAKEPAY._replace(build=_build)), "fakepay")
    plugins.register(VoidReceived(), "received")
    gateway = Gateway([MethodConfig(code="fakepay", base_url=fakepay[1], credentials=dict(CREDENTIALS))],
                      plugins=plugins, retry=Retry.never())
    yield PaymentService(gateway, ledger)
    gateway.close()


@pytest.mark.parametrize("decision", ["refused", "voided"])
def test_an_accepted_void_is_in_flight_until_the_provider_decides(
    received: PaymentService, app: FakePayApp, decision: str,
) -> None:
    service = received
    payment = service.authorize("fakepay", eur("50.00"), source="tok_ok")
    waiting = service.void(payment.id)
    (void,) = [t for t in service.list_transactions(payment.id) if t.kind == "void"]
    assert void.status == S.ACCEPTED and void.provider_reference
    assert waiting.state == PaymentState.AUTHORIZED  # not voided before the provider says so
    with pytest.raises(StateError, match="being voided"):  # but nothing may start meanwhile
        service.capture(payment.id, eur("10.00"))
    kind = EventKind.FAILED if decision == "refused" else EventKind.VOIDED
    service.receive_webhook("fakepay", *app.event(f"evt_void_{decision}", kind, void.provider_reference or ""))
    after = service.get_payment(payment.id)
    if decision == "refused":
        assert service.get_transaction(void.id).status == S.FAILED
        assert after.state == PaymentState.AUTHORIZED and after.authorized == eur("50.00")
        assert service.capture(payment.id, eur("50.00")).captured == eur("50.00")
    else:
        assert service.get_transaction(void.id).status == S.SUCCEEDED
        assert after.state == PaymentState.VOIDED


@pytest.mark.parametrize("decision", ["refused", "captured"])
def test_an_accepted_final_capture_closes_the_payment_only_once_the_provider_decides(
    service: PaymentService, app: FakePayApp, decision: str,
) -> None:
    payment = service.authorize("fakepay", eur("50.00"), source="tok_async")
    service.capture(payment.id, eur("20.00"), final=True)
    with pytest.raises(StateError, match="final capture"):  # nothing else while it is in flight
        service.capture(payment.id, eur("10.00"))
    (capture,) = app.undecided()
    service.receive_webhook("fakepay", *app.decide(capture, succeed=decision == "captured"))
    after = service.get_payment(payment.id)
    if decision == "captured":
        assert after.capture_closed and after.state == PaymentState.CAPTURED
        with pytest.raises(StateError, match="no further capture"):
            service.capture(payment.id, eur("10.00"))
    else:  # the provider still holds the whole authorization: so may the ledger's owner
        assert not after.capture_closed and after.state == PaymentState.AUTHORIZED
        service.capture(payment.id, eur("50.00"))
        (again,) = app.undecided()
        service.receive_webhook("fakepay", *app.decide(again))
    agree(service, app, payment.id)
