"""An open void, read back from a provider that voids what an authorization has left after part of
it was captured (PayPal): a capture made beside paywire (the provider's dashboard) before the void
arrived. The provider then reports the authorization captured, taking no more: the void may be
what released the rest, so it is not concluded not applied. While the provider still lets the
rest be captured, the void did not land. A provider that lists a void after a capture
(`void_after_capture`) says which: the void listed, it succeeded; none listed, the rest was
released otherwise, and the void did not land."""

from __future__ import annotations

from pathlib import Path

import pytest

from paywire import Money
from paywire.command.result import CommandResult, ProviderOperation, ProviderState
from paywire.gateway_definition import Capabilities
from paywire.ledger import SQLiteLedger, TransactionStatus
from tests.ledger.ledger_rows import authorized, history, row, settle_reading, write

S = TransactionStatus


@pytest.mark.parametrize(("state", "captured", "capturable", "concluded"), [
    (ProviderState.CAPTURED, 3_000, 0, None),  # the rest released: perhaps by the void
    (ProviderState.PARTIALLY_CAPTURED, 3_000, 7_000, S.FAILED),  # the rest still capturable: it never landed
    (ProviderState.CAPTURED, 10_000, 0, S.FAILED),  # all of it captured: nothing was left to void
])
def test_an_open_void_beside_a_capture_made_outside(tmp_path: Path, state: str, captured: int, capturable: int,
                                                     concluded: str | None) -> None:
    ledger = SQLiteLedger(tmp_path / "ledger.db")
    try:
        payment = authorized(10_000)
        void = row(payment, "void", 0, S.UNKNOWN)
        write(ledger, payment, *history(payment, "capture"), void)
        outside = ProviderOperation(kind="capture", reference="cap_9", amount=Money(captured, "EUR"), status="succeeded")
        reading = CommandResult(reference="fp_1", state=state, authorized=Money(10_000, "EUR"),
                                captured=Money(captured, "EUR"), refunded=Money(0, "EUR"),
                                capturable=Money(capturable, "EUR"), operations=(outside,))
        _, decisions, _ = settle_reading(ledger, payment, reading)
        (decision,) = [d for d in decisions if d.transaction_id == void.id]
        assert decision.status == concluded, decision
        assert ledger.get_payment(payment.id).captured == Money(captured, "EUR")  # type: ignore[union-attr]
    finally:
        ledger.close()


@pytest.mark.parametrize(("listed", "concluded"), [
    (True, S.SUCCEEDED),  # the provider lists the void that released the rest
    (False, S.FAILED),  # it lists none: a final capture released the rest
])
def test_an_open_void_read_from_a_provider_that_lists_voids_after_a_capture(tmp_path: Path, listed: bool,
                                                                             concluded: str) -> None:
    ledger = SQLiteLedger(tmp_path / "ledger.db")
    try:
        payment = authorized(10_000)
        void = row(payment, "void", 0, S.UNKNOWN)
        write(ledger, payment, *history(payment, "capture"), void)
        ops = (ProviderOperation(kind="capture", reference="cap_9", amount=Money(3_000, "EUR")),
               *([ProviderOperation(kind="void", reference="auth_1", amount=Money(7_000, "EUR"))] if listed else []))
        reading = CommandResult(reference="fp_1", state=ProviderState.CAPTURED, authorized=Money(10_000, "EUR"),
                                captured=Money(3_000, "EUR"), refunded=Money(0, "EUR"),
                                capturable=Money(0, "EUR"), operations=ops)
        _, decisions, _ = settle_reading(ledger, payment, reading, Capabilities(void_after_capture=True))
        (decision,) = [d for d in decisions if d.transaction_id == void.id]
        assert decision.status == concluded, decision
        settled = ledger.get_payment(payment.id)
        assert settled is not None
        assert (settled.captured, settled.capture_closed, settled.voided) == (Money(3_000, "EUR"), True, False)
    finally:
        ledger.close()
