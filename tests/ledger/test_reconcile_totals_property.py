"""A property of reconciliation from running totals alone (a fetch that lists no operations), or
from operations listed without the keys they were sent with (matched by amount): for any open
captures or refunds, each applied by the provider in full, in part or not at all, what `settle`
records never fails one that applied, never records one succeeded that did not, never
notes one applied at another amount than the provider's, and never claims more than the provider
holds; settled again from the same reading, nothing changes."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from paywire import Money
from paywire.command.result import CommandResult, ProviderOperation, ProviderState
from paywire.ledger import SQLiteLedger, Transaction, TransactionStatus
from paywire.ledger.model import Payment
from paywire.service.held import held_minor
from paywire.service.reconcile import settle
from tests.ledger.ledger_rows import authorized, row

S = TransactionStatus
AUTHORIZED = 100_000


def _eur(minor: int) -> Money:
    return Money(minor, "EUR")


# Each open operation: (amount asked, what the provider applied of it: 0 for nothing); small
# amounts, so that what one applied in part often equals what another asked.
_asked_applied = st.integers(1, 4).flatmap(
    lambda asked: st.tuples(st.just(asked), st.one_of(st.just(0), st.just(asked), st.integers(1, asked))))


@settings(max_examples=150, deadline=None)
@given(kind=st.sampled_from(["capture", "refund"]), done=st.integers(0, 4),
       open_ops=st.lists(_asked_applied, min_size=1, max_size=3), listed=st.booleans())
def test_totals_never_fail_what_applied_nor_claim_more_than_held(
    tmp_path_factory: pytest.TempPathFactory, kind: str, done: int, open_ops: list[tuple[int, int]], listed: bool,
) -> None:
    path = tmp_path_factory.mktemp("totals") / "ledger.db"
    ledger = SQLiteLedger(path)
    try:
        payment = authorized(AUTHORIZED)
        pid = payment.id
        captured_before = done + (sum(a for a, _ in open_ops) if kind == "refund" else 0)
        rows = [row(payment, "authorize", AUTHORIZED, S.SUCCEEDED, provider_reference="fp_1")]
        if captured_before:
            rows.append(row(payment, "capture", captured_before, S.SUCCEEDED, provider_reference="cap_0"))
        if kind == "refund" and done:
            rows.append(row(payment, "refund", done, S.SUCCEEDED, provider_reference="ref_0"))
        opened = [row(payment, kind, asked, S.UNKNOWN) for asked, _ in open_ops]
        with ledger.unit() as u:
            u.insert_payment(payment)
            for txn in rows + opened:
                u.insert_transaction(txn)
        applied = sum(a for _, a in open_ops)
        captured = captured_before + (applied if kind == "capture" else 0)
        refunded = (done + applied) if kind == "refund" else 0
        operations = []
        if listed:  # what the ledger holds by reference, and each open one that applied, with no key
            operations += [ProviderOperation(kind="capture", reference="cap_0", amount=_eur(captured_before),
                                             status="succeeded")] if captured_before else []
            operations += [ProviderOperation(kind="refund", reference="ref_0", amount=_eur(done),
                                             status="succeeded")] if kind == "refund" and done else []
            operations += [ProviderOperation(kind=kind, reference=f"{kind}_{i}", amount=_eur(got), status="succeeded")
                           for i, (_, got) in enumerate(open_ops) if got]
        reading = CommandResult(reference="fp_1", state=ProviderState.PARTIALLY_CAPTURED, authorized=_eur(AUTHORIZED),
                                captured=_eur(captured), refunded=_eur(refunded), references={"payment": "fp_1"},
                                operations=tuple(operations))

        def once() -> tuple[Payment, list[Transaction]]:
            with ledger.unit() as u:
                current = u.payment(pid, lock=True)
                assert current is not None
                settle(u, current, reading)
            return ledger.get_payment(pid), ledger.list_transactions(payment_id=pid)  # type: ignore[return-value]

        after, txns = once()
        by_id = {t.id: t for t in txns}
        for txn, (_asked, got) in zip(opened, open_ops, strict=True):
            status = by_id[txn.id].status
            assert not (got and status == S.FAILED), (open_ops, by_id[txn.id])
            assert not (not got and status == S.SUCCEEDED), (open_ops, by_id[txn.id])
            if status == S.SUCCEEDED:
                assert held_minor(by_id[txn.id]) == got, (open_ops, by_id[txn.id])
        assert (after.captured.minor, after.refunded.minor) == (captured, refunded)  # the provider's floors
        own = sum(held_minor(t) for t in txns if t.kind == kind and t.status == S.SUCCEEDED)
        assert own <= (captured if kind == "capture" else refunded)
        again, txns_again = once()
        assert (again.captured, again.refunded, again.state) == (after.captured, after.refunded, after.state)
        assert [(t.id, t.status, t.response.get("held")) for t in txns_again] == \
            [(t.id, t.status, t.response.get("held")) for t in txns]
    finally:
        ledger.close()
