"""A vault the caller settled (`settle_vault`) while its own request was still in flight, and the
answer that request then gets from the provider."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from paywire import OutcomeUnknown, PaymentService
from paywire.ledger import Ledger, TransactionStatus
from paywire.testing.emulator import Fault
from tests.ledger.fakepay import FakePayApp, make_gateway

S = TransactionStatus


@pytest.mark.parametrize("found", [{"token": "tok_the_caller_found"}, {"nothing_stored": True}],
                         ids=["another_token", "nothing_stored"])
def test_a_late_answer_the_caller_recorded_otherwise_is_not_passed_off_as_the_callers_finding(
        fakepay: tuple[FakePayApp, str], ledger: Ledger, found: dict[str, Any]) -> None:
    """settle_vault() recorded the caller's finding while the vault's own request, taken for
    abandoned, was still in flight; the provider then answered it otherwise (another token, or
    the method stored after all). The call once returned the caller's finding as its own answer
    (a token the provider never named, or a failure although it stored the method). The caller's
    record stands, and the call is told of the disagreement."""
    app, url = fakepay
    gateway = make_gateway(url, connect_timeout=30.0, read_timeout=30.0, key_lives={"vault": 0})
    # A margin far below the request's life: the vault in flight is past its settle_after at once,
    # so reconcile() takes it for abandoned while the provider still holds it (no clock to wait).
    service = PaymentService(gateway, ledger, margin=-3600.0)
    outcomes: list[Any] = []

    def vault() -> None:
        try:
            outcomes.append(service.vault("fakepay", "tok_ok", idempotency_key="vault-late"))
        except Exception as exc:  # what the call got is the assertion
            outcomes.append(exc)

    app.inject(Fault("hold", method="POST", path=r"^/v1/vault$"))
    worker = threading.Thread(target=vault)
    try:
        worker.start()
        assert app.wait_until_held(1), "the vault reached the provider"
        (txn,) = service.list_transactions()
        assert txn.id in service.reconcile().marked_unknown
        assert service.get_transaction(txn.id).status == S.UNKNOWN
        assert service.settle_vault(txn.id, **found).settled_by == "caller"
    finally:
        app.release_held()
        worker.join(60)
    (token,) = app.vaulted  # what the provider stored, and answered with
    (outcome,) = outcomes
    assert isinstance(outcome, OutcomeUnknown) and outcome.code == "settled_by_caller", outcome
    assert "the caller's record stands" in str(outcome) and token not in str(outcome)
    recorded = service.get_transaction(txn.id)
    assert (recorded.settled_by, recorded.token) == ("caller", found.get("token"))
