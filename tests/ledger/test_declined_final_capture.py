"""A final capture the provider made, held undecided (accepted) and then declined: where the
gateway declares `declined_final_capture_closes` (Braintree: a bank account's final partial
capture declined from SETTLEMENT_PENDING), the authorization takes no further capture, whichever
of the capture's failed event and reconciliation's reading tells it; elsewhere (PayPal: a DECLINED
capture took nothing) the rest is capturable again. Either way a payment whose capture is closed
with nothing captured is refused a void before anything is sent: nothing is left to release; and
once such a capture of all of it fails, the service reads what the authorization still holds."""

from __future__ import annotations

from pathlib import Path

import attrs
import pytest

from paywire import Capabilities, Money, StateError
from paywire.command.result import CommandResult, ProviderOperation, ProviderState
from paywire.ledger import SQLiteLedger, TransactionStatus
from paywire.ledger.model import Payment, SettledBy, StoredEvent, now
from paywire.service import rules
from paywire.service.payments import _offers_undone, _undone_captures
from paywire.service.webhooks import apply_event
from tests.ledger.ledger_rows import authorized, history, row, settle_reading, write

S = TransactionStatus
CLOSES = Capabilities(capture_multiple=True, declined_final_capture_closes=True)
REOPENS = Capabilities(capture_multiple=True)


def _accepted(ledger: SQLiteLedger, final: bool) -> tuple[Payment, str]:
    """An authorization of 100.00 with a capture of 30.00 the provider made (cap_1) and holds undecided."""
    payment = authorized(10_000)
    capture = row(payment, "capture", 3_000, S.ACCEPTED, provider_reference="cap_1", request={"final": final})
    write(ledger, payment, *history(payment, "capture"), capture)
    return payment, capture.idempotency_key


def _declined_event(ledger: SQLiteLedger, payment: Payment, caps: Capabilities) -> Payment:
    """The provider's failed event of cap_1, applied to the locked payment."""
    event = StoredEvent(provider="fakepay", event_id="evt_1", method="fakepay", type="capture.declined",
                        kind="failed", reference="cap_1", references={"capture": "cap_1"},
                        amount=Money(3_000, "EUR"), status="unmatched", received_at=now())
    with ledger.unit() as u:
        assert u.insert_event(event)
        current = u.payment(payment.id, lock=True)
        assert current is not None
        applied, _ = apply_event(u, current, attrs.evolve(event, payment_id=payment.id), caps)
    return applied


def _declined_reading(ledger: SQLiteLedger, payment: Payment, key: str, caps: Capabilities) -> Payment:
    """Reconciliation's reading listing cap_1 failed, the authorization open to capture as far as it says."""
    listed = ProviderOperation(kind="capture", reference="cap_1", amount=Money(3_000, "EUR"), status="failed",
                               idempotency_key=key)
    reading = CommandResult(reference="fp_1", state=ProviderState.AUTHORIZED, authorized=Money(10_000, "EUR"),
                            captured=Money(0, "EUR"), operations=(listed,))
    settled, _, _ = settle_reading(ledger, payment, reading, caps)
    return settled


@pytest.mark.parametrize("told_by", ["event", "reading"])
@pytest.mark.parametrize(("final", "caps", "closed"), [
    (True, CLOSES, True),
    (True, REOPENS, False),  # the provider's declined capture took nothing
    (False, CLOSES, False),  # not final: the rest stays, as the provider holds it
])
def test_a_final_capture_made_then_declined_closes_where_the_provider_keeps_it_closed(
        tmp_path: Path, told_by: str, final: bool, caps: Capabilities, closed: bool) -> None:
    ledger = SQLiteLedger(tmp_path / "ledger.db")
    try:
        payment, key = _accepted(ledger, final)
        after = _declined_event(ledger, payment, caps) if told_by == "event" \
            else _declined_reading(ledger, payment, key, caps)
        stored = ledger.get_payment(payment.id)
        assert stored is not None and stored == after
        assert (stored.captured.minor, stored.capture_closed) == (0, closed)
        txns = ledger.list_transactions(payment_id=payment.id)
        assert [t.status for t in txns if t.kind == "capture"] == [S.FAILED]
        if closed:
            with pytest.raises(StateError) as refused:
                rules.check_capture(stored, txns, Money(1, "EUR"), caps)
            assert refused.value.code == "capture_closed"
        else:
            rules.check_capture(stored, txns, Money(10_000, "EUR"), caps)
    finally:
        ledger.close()


def test_a_capture_refused_when_asked_closes_nothing(tmp_path: Path) -> None:
    """Failed by the provider's answer (no object made), a final capture released nothing."""
    payment = authorized(10_000)
    txns = [*history(payment, "capture"), row(payment, "capture", 3_000, S.FAILED, request={"final": True})]
    assert not rules.closed_by_declined(txns[-1], CLOSES)
    rules.check_capture(rules.derive(payment, txns), txns, Money(10_000, "EUR"), CLOSES)


def test_a_payment_whose_capture_is_closed_with_nothing_captured_is_refused_a_void() -> None:
    """A capture the provider holds undecided took the authorization (known from its reading only),
    or a final capture released the rest and was undone since: nothing is left to void."""
    payment = authorized(10_000)
    txns = history(payment, "capture")
    closed = rules.derive(payment, txns, capture_closed=True)
    assert (closed.state, closed.captured.minor) == ("authorized", 0)
    for caps in (CLOSES, REOPENS, Capabilities(capture_multiple=True, void_after_capture=True)):
        with pytest.raises(StateError) as refused:
            rules.check_void(closed, txns, caps)
        assert refused.value.code == "void_after_capture"
    rules.check_void(rules.derive(payment, txns), txns, CLOSES)  # open: the void releases it


@pytest.mark.parametrize(("settled_by", "retryable", "reads"), [
    (SettledBy.WEBHOOK, False, True),  # its event failed the capture the provider made
    (SettledBy.RECONCILE, False, True),  # its reading listed it failed
    (SettledBy.ANSWER, False, False),  # refused when asked: nothing made
    (SettledBy.RECONCILE, True, False),  # concluded not applied: nothing made
])
def test_a_capture_of_all_of_it_made_then_failed_makes_the_service_read_the_payment(
        settled_by: str, retryable: bool, reads: bool) -> None:
    """What the authorization still holds after the provider failed a capture of all of it that it
    had made (and held undecided) is the provider's to say, as after one it undid: the ledger,
    offering it all again, reads the payment (`_offers_undone`)."""
    payment = authorized(10_000)
    capture = row(payment, "capture", 10_000, S.FAILED, provider_reference="cap_1", settled_by=settled_by,
                  retryable=retryable)
    txns = [*history(payment, "capture"), capture]
    derived = rules.derive(payment, txns)
    assert derived.capturable.minor == 10_000
    assert _offers_undone(derived, txns, frozenset()) is reads
    assert _offers_undone(derived, txns, _undone_captures(txns)) is False  # known before: read already
