"""A provider keeps an idempotency key for a while (Stripe 24 hours; PayPal 3 hours to 45 days by
API): a request sent again with its key after that is a new request to it. An operation whose
outcome is unknown is therefore resent with its key only while the resend would land before the
key may be gone; later, the payment service refuses (nothing sent) and reconciliation settles it,
so a lost charge is never made twice."""

from __future__ import annotations

import pytest

from paywire import OutcomeUnknown
from paywire.ledger import Ledger, TransactionStatus
from paywire.service import PaymentService
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import FakePayApp, make_gateway
from tests.ledger.support import PATIENT, agree, eur

S = TransactionStatus
PATHS = {"authorize": "/v1/payments$", "capture": "/captures$"}


@pytest.mark.parametrize("resend", ["same_call", "retry"])
@pytest.mark.parametrize("kind", ["authorize", "capture"])
def test_an_unknown_operation_is_not_resent_once_the_provider_may_have_dropped_its_key(
    fakepay: tuple[FakePayApp, str], ledger: Ledger, kind: str, resend: str,
) -> None:
    app, url = fakepay
    app.idempotency.ttl = 0.0  # the provider prunes keys at once: a resend would be applied again
    gateway = make_gateway(url, key_lives={kind: 0.0}, **PATIENT)
    service = PaymentService(gateway, ledger, margin=0)
    try:
        payment_id = service.authorize("fakepay", eur("50.00"), source="tok_ok").id if kind == "capture" else None
        app.inject(Fault("drop_after", path=PATHS[kind], method="POST"))

        def call() -> object:
            if kind == "capture":
                assert payment_id is not None
                return service.capture(payment_id, eur("20.00"), idempotency_key="op-1")
            return service.authorize("fakepay", eur("50.00"), source="tok_ok", idempotency_key="op-1")

        with pytest.raises(OutcomeUnknown) as lost:
            call()
        assert app.count(kind) == 1  # applied, its answer lost
        txn_id = lost.value.transaction_id or ""
        before = service.get_transaction(txn_id)

        with pytest.raises(OutcomeUnknown) as refused:
            service.retry(txn_id) if resend == "retry" else call()
        assert refused.value.code == "idempotency_key_expired"
        assert refused.value.transaction_id == txn_id
        assert "reconcile()" in str(refused.value) and "nothing was sent" in str(refused.value)
        assert app.count(kind) == 1, "the resend reached the provider, which applied it a second time"
        assert service.get_transaction(txn_id) == before  # nothing recorded either

        report = service.reconcile()
        assert [(s.transaction_id, s.status) for s in report.settled] == [(txn_id, S.SUCCEEDED)]
        payment = call()  # settled: the same call replays the outcome, sends nothing
        assert app.count(kind) == 1
        agree(service, app, getattr(payment, "id", payment_id))
    finally:
        gateway.close()


@pytest.mark.parametrize("kind", ["authorize", "capture"])
def test_an_unknown_operation_is_resent_with_its_key_while_the_provider_keeps_it(
    fakepay: tuple[FakePayApp, str], ledger: Ledger, kind: str,
) -> None:
    app, url = fakepay
    gateway = make_gateway(url, key_lives={kind: 24 * 3600.0}, **PATIENT)  # the emulator keeps keys 24 hours too
    service = PaymentService(gateway, ledger, margin=0)
    try:
        payment_id = service.authorize("fakepay", eur("50.00"), source="tok_ok").id if kind == "capture" else None
        app.inject(Fault("drop_after", path=PATHS[kind], method="POST"))
        if kind == "capture":
            assert payment_id is not None
            with pytest.raises(OutcomeUnknown):
                service.capture(payment_id, eur("20.00"), idempotency_key="op-1")
            payment = service.capture(payment_id, eur("20.00"), idempotency_key="op-1")
        else:
            with pytest.raises(OutcomeUnknown):
                service.authorize("fakepay", eur("50.00"), source="tok_ok", idempotency_key="op-1")
            payment = service.authorize("fakepay", eur("50.00"), source="tok_ok", idempotency_key="op-1")
        assert app.count(kind) == 1  # resent under its key: the provider answered what it had done
        assert [t.status for t in service.list_transactions(payment.id) if t.kind == kind] == [S.SUCCEEDED]
        agree(service, app, payment.id)
    finally:
        gateway.close()
