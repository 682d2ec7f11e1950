"""Reconciliation from the provider's running totals alone (a plugin whose fetch lists no
captures or refunds): what the provider holds beyond the ledger's succeeded operations may be
an operation made outside paywire whose event has not come yet, so a total larger than every open
operation together is no evidence that they all took effect."""

from __future__ import annotations

from typing import Any

import attrs
import pytest

from paywire import CommandPool, HandlerChain, MethodConfig, OutcomeUnknown, Plugins, Retry, Subject
from paywire.gateway import Gateway
from paywire.ledger import Ledger, TransactionStatus
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import (
    CREDENTIALS,
    FAKEPAY,
    FakePayApp,
    FakePayPlugin,
    _fetch_result,
    build_commands,
    make_gateway,
)
from tests.ledger.support import FAST, eur, wait_out_life

S = TransactionStatus


def _totals_only(settings: Any) -> CommandPool:
    """FakePay's commands, with a fetch that reports the running totals and nothing else about
    the captures and refunds (no list, no id of the latest capture)."""
    pool = build_commands(settings)

    def fetched(subject: Any, response: Any) -> dict[str, Any]:
        result = _fetch_result(subject, response)
        result.pop("operations", None)
        result["references"] = {k: v for k, v in result.get("references", {}).items() if k != "capture"}
        return result

    return CommandPool({**pool, "fetch": attrs.evolve(pool["fetch"], handler=HandlerChain([fetched]))},
                       gateway=settings.gateway)


def test_a_total_beyond_every_open_capture_does_not_settle_them_and_nothing_counts_twice(
    fakepay: tuple[FakePayApp, str], ledger: Ledger,
) -> None:
    app, url = fakepay
    plugins = Plugins()
    plugins.register(FakePayPlugin(FAKEPAY._replace(build=_totals_only)), "fakepay")
    gateway = Gateway([MethodConfig(code="fakepay", base_url=url, credentials=dict(CREDENTIALS), **FAST)],
                      plugins=plugins, retry=Retry.never())
    dashboard = make_gateway(url)  # the merchant's own tool, outside paywire
    service = PaymentService(gateway, ledger, margin=0)
    try:
        payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
        app.inject(Fault("status", status=500, path="/captures$", method="POST"))  # answered before any effect
        with pytest.raises(OutcomeUnknown) as lost:
            service.capture(payment.id, eur("10.00"), final=False)
        outside = dashboard.execute("fakepay", "capture", Subject(reference=payment.reference, amount=eur("15.00"),
                                                                  final=False, idempotency_key="dashboard-1"))
        provider = app.totals(payment.reference or "")[1]
        assert provider == 1500 and app.count("capture") == 1

        wait_out_life(service, [lost.value.transaction_id or ""])
        report = service.reconcile()
        assert lost.value.transaction_id not in {s.transaction_id for s in report.settled if s.status == S.SUCCEEDED}
        assert service.get_payment(payment.id).captured.minor <= provider
        for event in app.events_about(outside.reference or ""):  # the outside capture's event comes late
            service.receive_webhook("fakepay", *event)
        service.reconcile()
        assert service.get_payment(payment.id).captured.minor == provider
        assert service.get_transaction(lost.value.transaction_id or "").status != S.SUCCEEDED
    finally:
        gateway.close()
        dashboard.close()
