"""A payment the Janitor cannot even claim (its method is no longer configured: the claim unit
fails and rolls back) is looked at again on its backoff, whether its open transaction was left
pending past its life (a worker stopped after sending) or already unknown."""

from __future__ import annotations

from datetime import timedelta

import pytest

from paywire import MethodConfig, OutcomeUnknown, Plugins, Retry
from paywire.gateway import Gateway
from paywire.ledger import Ledger
from paywire.ledger.model import TransactionStatus, now, replace
from paywire.serve import Janitor
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import CREDENTIALS, FAKEPAY, FakePayApp, FakePayPlugin
from tests.ledger.support import FAST, eur

S = TransactionStatus


@pytest.mark.parametrize("status", [S.PENDING, S.UNKNOWN])
def test_a_payment_whose_claim_fails_waits_its_backoff(service: PaymentService, app: FakePayApp, ledger: Ledger,
                                                       fakepay: tuple[FakePayApp, str], status: str) -> None:
    payment = service.authorize("fakepay", eur("100.00"), source="tok_ok")
    app.inject(Fault("drop_after", path="/captures$"))
    with pytest.raises(OutcomeUnknown) as lost:
        service.capture(payment.id, eur("30.00"))
    txn = service.get_transaction(lost.value.transaction_id or "")
    with ledger.unit() as u:  # as a worker stopped after sending would leave it, its life over
        u.payment(payment.id, lock=True)
        u.update_transaction(replace(txn, status=status, updated_at=now(), settle_after=now() - timedelta(seconds=1)))
    # the shop's configuration no longer has the method (renamed, removed)
    plugins = Plugins()
    plugins.register(FakePayPlugin(FAKEPAY), "fakepay")
    gateway = Gateway([MethodConfig(code="fakepay_new", provider="fakepay", base_url=fakepay[1],
                                    credentials=dict(CREDENTIALS), **FAST)], plugins=plugins, retry=Retry.never())
    try:
        janitor = Janitor(PaymentService(gateway, ledger, margin=0))
        errors = [janitor.run_pass().errors for _ in range(3)]
    finally:
        gateway.close()
    assert errors[0] and errors[1:] == [(), ()], errors  # one failed look, then its backoff (15 s)
    look = ledger.looks([txn.id])[txn.id]
    assert look.looks == 1 and look.next_at > now()
    assert service.get_transaction(txn.id).status == status  # nothing else changed it
