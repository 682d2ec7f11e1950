"""Which capture a refund acts on (`rules.capture_parents`, `rules.check_refund`), as pure functions
of a payment and its history: a refund recorded without a parent (its event came before the
capture's, or it acted on the payment) counts against the capture it named once the ledger holds
that capture, and a refund acting on the payment is refused while the capture it would go to is
one the provider took back. Never a capture the provider holds less on than the refund."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from paywire import Capabilities, Money, StateError
from paywire.ledger import Transaction, TransactionStatus
from paywire.ledger.model import Payment, replace
from paywire.service import rules
from tests.ledger.ledger_rows import authorized, row

S = TransactionStatus
CAPS = Capabilities(capture_multiple=True)


def _capture(payment: Payment, minor: int, ref: str) -> Transaction:
    return row(payment, "capture", minor, S.SUCCEEDED, provider_reference=ref)


def _refund(payment: Payment, minor: int, status: str = S.SUCCEEDED, **more: Any) -> Transaction:
    return row(payment, "refund", minor, status, **more)


def _reversal(payment: Payment, of: Transaction) -> Transaction:
    assert of.amount is not None
    return row(payment, "reversal", of.amount.minor, S.SUCCEEDED, parent_id=of.id,
               request={of.kind: of.provider_reference})


def _left(payment: Payment, txns: list[Transaction]) -> dict[str | None, int]:
    return {parent.provider_reference: left.minor for parent, left in rules.capture_parents(payment, txns)}


@pytest.mark.parametrize("named", [
    {"capture": "cap_beside"},  # its event named the capture, which the ledger did not hold yet
    {"reference": "cap_beside"},  # it acted on the payment, sent to the payment's latest capture
])
@pytest.mark.parametrize("status", [S.SUCCEEDED, S.UNKNOWN])
def test_a_refund_without_a_parent_counts_against_the_capture_it_named(named: dict[str, str], status: str) -> None:
    payment = authorized(10_000)
    own = _capture(payment, 1_000, "cap_own")
    txns = [row(payment, "authorize", 10_000, S.SUCCEEDED, provider_reference=payment.reference), own,
            _refund(payment, 1_000, status, request=named), _capture(payment, 1_000, "cap_beside")]
    payment = rules.derive(payment, txns)
    assert _left(payment, txns) == {"cap_beside": 0, "cap_own": 1_000}
    assert rules.check_refund(payment, txns, Money(1_000, "EUR"), CAPS) == own
    with pytest.raises(StateError):  # 2,000 captured, 1,000 of it refunded or being refunded
        rules.check_refund(payment, txns, Money(1_001, "EUR"), CAPS)


def test_a_refund_with_a_parent_counts_against_it_alone() -> None:
    payment = authorized(10_000)
    first, second = _capture(payment, 1_000, "cap_1"), _capture(payment, 1_000, "cap_2")
    txns = [first, second, _refund(payment, 400, parent_id=first.id, request={"reference": "cap_2"})]
    assert _left(rules.derive(payment, txns), txns) == {"cap_1": 600, "cap_2": 1_000}


def _on_floor(references: dict[str, str]) -> tuple[Payment, list[Transaction]]:
    """A payment whose own capture the provider took back (a chargeback), with 1,000 more captured
    that only the provider's running total knows of (a capture made in its dashboard)."""
    payment = authorized(10_000)
    own = _capture(payment, 1_000, "cap_own")
    txns = [row(payment, "authorize", 10_000, S.SUCCEEDED, provider_reference=payment.reference), own,
            _reversal(payment, own)]
    payment = replace(payment, references={**payment.references, **references})
    return rules.derive(payment, txns, observed_captured=Money(1_000, "EUR")), txns


def test_a_refund_acting_on_the_payment_is_not_sent_to_a_capture_the_provider_took_back() -> None:
    payment, txns = _on_floor({"capture": "cap_own"})
    assert payment.captured == Money(1_000, "EUR")
    with pytest.raises(StateError) as refused:
        rules.check_refund(payment, txns, Money(500, "EUR"), CAPS)
    assert refused.value.code == "capture_taken_back"
    assert "cap_own" in str(refused.value) and "reconcile" in str(refused.value)


@pytest.mark.parametrize("references", [{"capture": "cap_beside"}, {}])
def test_a_refund_acting_on_the_payment_goes_where_no_capture_was_taken_back(references: dict[str, str]) -> None:
    payment, txns = _on_floor(references)
    assert rules.check_refund(payment, txns, Money(500, "EUR"), CAPS) is None
    assert rules.refund_target(payment, None) == references.get("capture", payment.reference)


def test_a_capture_taken_back_whose_object_a_standing_capture_names_still_takes_refunds() -> None:
    """One provider object holding several captures (a payment the provider refunds as a whole):
    undoing one of them leaves the object holding the others' money, and what its total holds
    beyond them."""
    payment = authorized(10_000, reference="pi_1")
    undone, standing = _capture(payment, 1_000, "pi_1"), _capture(payment, 1_000, "pi_1")
    txns = [undone, standing, _reversal(payment, undone)]
    payment = rules.derive(payment, txns, observed_captured=Money(3_000, "EUR"))
    assert rules.check_refund(payment, txns, Money(1_000, "EUR"), CAPS) == standing
    assert rules.check_refund(payment, txns, Money(1_500, "EUR"), CAPS) is None  # acts on pi_1


@st.composite
def _histories(draw: st.DrawFn) -> tuple[Payment, list[Transaction], dict[str, int]]:
    """Captures (each its own provider object), refunds of them the provider applied, each recorded
    with a parent, naming its capture by its event, or sent to it acting on the payment; before or
    after the ledger holds the capture. Returns what the provider has left on each capture."""
    payment = authorized(100_000)
    amounts = draw(st.lists(st.integers(1, 5_000), min_size=1, max_size=4))
    captures = [_capture(payment, minor, f"cap_{i}") for i, minor in enumerate(amounts)]
    left = {f"cap_{i}": minor for i, minor in enumerate(amounts)}
    txns: list[Transaction] = []
    for capture in captures:
        txns.append(capture)
        for _ in range(draw(st.integers(0, 2))):
            ref = capture.provider_reference
            assert ref is not None
            if left[ref] == 0:
                break
            minor = draw(st.integers(1, left[ref]))
            left[ref] -= minor
            how = draw(st.sampled_from(["parent", "event", "sent"]))
            refund = _refund(payment, minor, draw(st.sampled_from([S.SUCCEEDED, S.UNKNOWN])),
                             parent_id=capture.id if how == "parent" else None,
                             request={"capture": ref} if how == "event" else {"reference": ref})
            # An event naming a capture may come before the capture's own.
            txns.insert(draw(st.integers(0, len(txns))) if how == "event" else len(txns), refund)
    return rules.derive(payment, txns), txns, left


@given(_histories(), st.integers(1, 5_000))
def test_a_refund_never_goes_to_a_capture_the_provider_holds_less_on(
        history: tuple[Payment, list[Transaction], dict[str, int]], minor: int) -> None:
    payment, txns, left = history
    assert _left(payment, txns) == left
    try:
        parent = rules.check_refund(payment, txns, Money(minor, "EUR"), CAPS)
    except StateError:
        assert all(held < minor for held in left.values())
        return
    assert parent is not None and parent.provider_reference is not None
    assert left[parent.provider_reference] >= minor
